//! The node's protocol engine without I/O: the actor, its timers, the replay filter, datagram
//! sealing and batching, peer names and counters, driven by inputs and answering with
//! [`Effect`]s (specs/protocol.md §10).
//!
//! Why sans-IO, in the shape of quinn-proto's `Connection` and raft-rs's `Ready`: everything
//! the node decides can then be exercised by tests that pass datagrams by hand and advance
//! time by hand, and the tokio shell that carries the effects out is too thin to hide a
//! decision. The driver never reads a clock (time is the [`Now`] each input carries), never
//! touches a socket or a file, and makes no protocol decision: those are the actor's
//! (`slotguard_protocol::ClusterNode`), whose commands the driver only translates.
//!
//! Inputs: [`Driver::start`], [`Driver::handle_datagram`], [`Driver::handle_timeout`] (when
//! [`Driver::poll_timeout`] is due), and the shell's reports ([`Driver::on_transmitted`],
//! [`Driver::set_addr`]). Outputs: [`Driver::poll_effect`], to be carried out in order.

mod effect;
mod inbound;
mod outbound;
#[cfg(test)]
mod stepped;
#[cfg(test)]
mod tests;

use std::borrow::Cow;
use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use slotguard_protocol::durability::DataLossRefused;
use slotguard_protocol::protocol::manual::FailoverRefused;
use slotguard_protocol::state::NodeState;
use slotguard_protocol::{
    ClusterNode, Durability, FailoverMode, Layout, Msg, NodeId, Persisted, Timer, Timing,
};
use stateright::actor::{Actor, Command, Id, Out};

pub use self::effect::{Effect, Event, Save, Transmit};
use self::inbound::ReplayFilter;
#[cfg(test)]
pub(crate) use self::stepped::{observe_steps, Stepped};
use crate::events::{self, Cause};
use crate::identity::{Directory, Learned, NodeName};
use crate::timers::Timers;
use crate::trace::{render, Input, Recorder, Start};
use crate::wire::BusKey;

/// The time of an input, read by the caller: a monotonic instant for timers, and the wall
/// clock for what CLUSTER NODES shows (when PINGs left and PONGs came).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Now {
    /// Monotonic time: timer deadlines count from it.
    pub at: Instant,
    /// Milliseconds since the Unix epoch.
    pub unix_ms: u64,
}

/// What a node starts from: its configuration and what its state file held.
#[derive(Clone, Debug)]
pub struct Setup {
    /// The cluster.
    pub layout: Arc<Layout>,
    /// Timer durations.
    pub timing: Timing,
    /// When a write is acknowledged (specs/protocol.md §13).
    pub durability: Durability,
    /// This node.
    pub me: NodeId,
    /// The shared cluster key datagrams are sealed under.
    pub key: Vec<u8>,
    /// This node's name.
    pub name: NodeName,
    /// Its peers' names as stored, by id.
    pub peer_names: Vec<Option<NodeName>>,
    /// This start's incarnation (one more than the stored one; 0 for a new node).
    pub incarnation: u32,
    /// The protocol state stored (`None` for a new node).
    pub stored: Option<Persisted>,
    /// Every node's bus address as far as known, by id.
    pub addrs: Vec<Option<SocketAddr>>,
    /// Record a trace of every step (specs/protocol.md §12), drained with
    /// [`Driver::take_trace`].
    pub trace: bool,
}

/// One node's protocol engine (module docs).
pub struct Driver {
    actor: ClusterNode,
    me: NodeId,
    state: NodeState,
    /// Counts the changes of `state`, so that a reader can tell cheaply whether it moved.
    revision: u64,
    incarnation: u32,
    names: Directory,
    timers: Timers,
    bus_key: BusKey,
    sequence: u64,
    replay: ReplayFilter,
    addrs: Vec<Option<SocketAddr>>,
    /// When an authentic datagram last came from each node.
    last_heard: Vec<Option<Instant>>,
    counters: BTreeMap<&'static str, u64>,
    effects: VecDeque<Effect>,
    /// The trace being recorded, if asked for.
    trace: Option<Recorder>,
    /// Test builds: the steps recorded for the simulation, if asked for (stepped.rs).
    #[cfg(test)]
    steps: Option<Vec<Stepped>>,
    /// Test builds: effects handed out so far.
    #[cfg(test)]
    polled: u64,
}

impl Driver {
    /// Runs the start step (`on_start` with the stored state) and queues its effects, the
    /// [`Event::Started`] line first.
    pub fn start(setup: Setup, now: Now) -> Driver {
        let Setup {
            layout,
            timing,
            durability,
            me,
            key,
            name,
            peer_names,
            incarnation,
            stored,
            addrs,
            trace,
        } = setup;
        let n = layout.len();
        let actor = ClusterNode::new(Arc::clone(&layout), timing).with_durability(durability);
        let mut out = Out::new();
        let state = actor.on_start(Id::from(me.index()), &stored, &mut out);
        let mut driver = Driver {
            actor,
            me,
            state,
            revision: 0,
            incarnation,
            names: Directory::new(me, name, n).knowing(&peer_names),
            timers: Timers::default(),
            bus_key: BusKey::new(&key, &layout),
            sequence: 0,
            replay: ReplayFilter::default(),
            addrs,
            last_heard: vec![None; n],
            counters: BTreeMap::new(),
            effects: VecDeque::new(),
            trace: trace.then(Recorder::default),
            #[cfg(test)]
            steps: stepped::observing().then(Vec::new),
            #[cfg(test)]
            polled: 0,
        };
        #[cfg(test)]
        driver.note_step(None, &out, None);
        if let Some(trace) = &mut driver.trace {
            trace.start(Start {
                node: me.0,
                incarnation,
                slot_count: layout.slot_count() as u16,
                layout: layout.specs().to_vec(),
                timing,
                durability,
                stored,
                t: now.unix_ms,
                out: render(&out),
                digest: String::new(),
                tx: Vec::new(),
            });
        }
        driver.effects.push_back(Effect::Log(Event::Started {
            name,
            role: driver.role_text(),
            config_epoch: driver.state.config_epoch,
        }));
        // The new incarnation (and a name given at this start) must be on disk before the
        // first datagram that carries it leaves. The start step saves first (actor.rs:
        // on_start); only if it ever did not would a separate write be needed.
        if !matches!(out.iter().next(), Some(Command::Save(_))) {
            driver.queue_save(driver.state.persisted());
        }
        driver.interpret(out, now);
        if let Some(trace) = &mut driver.trace {
            trace.close(&driver.state);
        }
        driver
    }

    /// Takes a datagram from the bus: if it passes every check (inbound.rs) each message in
    /// it is one actor step; if not, it is dropped and counted by its [`Rejection`].
    pub fn handle_datagram(&mut self, bytes: &[u8], now: Now) {
        self.count("datagrams_received");
        let accepted = inbound::accept(
            &self.bus_key,
            &self.actor.layout,
            self.me.0,
            &mut self.replay,
            bytes,
        );
        let datagram = match accepted {
            Ok(d) => d,
            Err(reason) => return self.count(reason.name()),
        };
        self.count("datagrams_accepted");
        let from = NodeId(datagram.sender);
        self.learn_name(from, NodeName(datagram.name));
        if let Some(heard) = self.last_heard.get_mut(from.index()) {
            *heard = Some(now.at);
        }
        for (idx, msg) in datagram.messages.into_iter().enumerate() {
            if matches!(msg, Msg::Pong(_)) {
                self.names.pong_received(from.index(), now.unix_ms);
            }
            let mut out = Out::new();
            let mut cow = Cow::Borrowed(&self.state);
            self.actor
                .on_msg_ref(&mut cow, Id::from(from.index()), &msg, &mut out);
            let next = into_owned_if_changed(cow);
            #[cfg(test)]
            self.note_step(None, &out, next.as_ref());
            if self.trace.is_some() {
                let input = Input::Msg {
                    from: from.0,
                    inc: datagram.incarnation,
                    seq: datagram.sequence,
                    idx: idx as u32,
                    msg: msg.clone(),
                };
                self.trace_step(input, &out, next.is_some(), now);
            }
            self.apply(next, out, Cause::Message { from, msg: &msg }, now);
        }
    }

    /// The earliest timer deadline: call [`Driver::handle_timeout`] once it has passed.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next_deadline()
    }

    /// Fires every timer due at `now`, earliest first, each one actor step.
    pub fn handle_timeout(&mut self, now: Now) {
        for timer in self.timers.take_due(now.at) {
            self.on_timer(&timer, now);
        }
    }

    /// An operator's `CLUSTER FAILOVER` in `mode` (specs/protocol.md §6.1), as one actor step;
    /// a refusal changes nothing.
    pub fn handle_failover(&mut self, mode: FailoverMode, now: Now) -> Result<(), FailoverRefused> {
        let mut out = Out::new();
        let mut cow = Cow::Borrowed(&self.state);
        let result = self.actor.on_failover(&mut cow, mode, &mut out);
        let next = into_owned_if_changed(cow);
        #[cfg(test)]
        self.note_step(None, &out, next.as_ref());
        if self.trace.is_some() {
            self.trace_step(Input::Failover(mode), &out, next.is_some(), now);
        }
        self.apply(next, out, Cause::Local, now);
        result
    }

    /// The replication link applied a full copy of the master's data (specs/protocol.md §13).
    pub fn handle_copied(&mut self, now: Now) {
        let mut out = Out::new();
        let mut cow = Cow::Borrowed(&self.state);
        self.actor.on_copied(&mut cow, &mut out);
        let next = into_owned_if_changed(cow);
        #[cfg(test)]
        self.note_step(None, &out, next.as_ref());
        if self.trace.is_some() {
            self.trace_step(Input::Copied, &out, next.is_some(), now);
        }
        self.apply(next, out, Cause::Local, now);
    }

    /// The replication link was offered an empty copy over this node's data: its master was
    /// recreated without its state file (specs/protocol.md §13.1).
    pub fn handle_master_recreated(&mut self, now: Now) {
        let mut out = Out::new();
        let mut cow = Cow::Borrowed(&self.state);
        self.actor.on_master_recreated(&mut cow, &mut out);
        let next = into_owned_if_changed(cow);
        if self.trace.is_some() {
            self.trace_step(Input::MasterRecreated, &out, next.is_some(), now);
        }
        self.apply(next, out, Cause::Local, now);
    }

    /// An operator's `CLUSTER ACCEPT-DATA-LOSS` (specs/protocol.md §13.1).
    pub fn handle_accept_data_loss(&mut self, now: Now) -> Result<(), DataLossRefused> {
        let mut out = Out::new();
        let mut cow = Cow::Borrowed(&self.state);
        let result = self.actor.on_data_loss_accepted(&mut cow, &mut out);
        let next = into_owned_if_changed(cow);
        if self.trace.is_some() {
            self.trace_step(Input::DataLossAccepted, &out, next.is_some(), now);
        }
        self.apply(next, out, Cause::Local, now);
        result
    }

    /// The next effect to carry out, in order.
    pub fn poll_effect(&mut self) -> Option<Effect> {
        let effect = self.effects.pop_front();
        #[cfg(test)]
        if effect.is_some() {
            self.polled += 1;
        }
        effect
    }

    /// The shell's report on a [`Effect::Persist`]: it is durable. (Only a trace reads it.)
    pub fn on_persisted(&mut self) {
        if let Some(trace) = &mut self.trace {
            trace.durable();
        }
    }

    /// The trace lines recorded since the last call (empty unless [`Setup::trace`]): the shell
    /// writes them out before it carries out the effects of the same inputs, so that a trace
    /// never lacks the sending of a message that was received.
    pub fn take_trace(&mut self) -> Vec<u8> {
        self.trace.as_mut().map(Recorder::take).unwrap_or_default()
    }

    /// The shell's report on a [`Transmit`]: whether the socket took it.
    pub fn on_transmitted(&mut self, transmit: &Transmit, sent: bool, now: Now) {
        if let Some(trace) = &mut self.trace {
            trace.sent(transmit.sequence, sent);
        }
        if !sent {
            return self.count("send_errors");
        }
        self.count("datagrams_sent");
        if transmit.pings {
            self.names.ping_sent(transmit.to.index(), now.unix_ms);
        }
    }

    /// Node `node`'s bus address, as the shell resolved it.
    pub fn set_addr(&mut self, node: usize, addr: Option<SocketAddr>) {
        if let Some(slot) = self.addrs.get_mut(node) {
            *slot = addr;
        }
    }

    /// The actor state after the last step.
    pub fn state(&self) -> &NodeState {
        &self.state
    }

    /// How far this node's data has come (replication offset): advertised in every header from
    /// now on, and what the replica rank compares. Data, not a decision (the actor ranks).
    pub fn set_replication_offset(&mut self, offset: u64) {
        if self.state.peer(self.me).map(|me| me.repl_offset) != Some(offset) {
            self.state.note_replication_offset(offset);
            self.revision += 1;
        }
    }

    /// A number that changes whenever the protocol state does ([`Driver::state`]).
    pub fn revision(&self) -> u64 {
        self.revision
    }

    /// This start's incarnation.
    pub fn incarnation(&self) -> u32 {
        self.incarnation
    }

    /// Every node's name as far as known, and PING/PONG times.
    pub fn names(&self) -> &Directory {
        &self.names
    }

    /// Datagram counters: received, accepted, sent, and drops by reason.
    pub fn counters(&self) -> &BTreeMap<&'static str, u64> {
        &self.counters
    }

    /// Every node's bus address as far as known.
    pub fn addrs(&self) -> &[Option<SocketAddr>] {
        &self.addrs
    }

    /// When an authentic datagram last came from each node (`None`: never this start).
    pub fn last_heard(&self) -> &[Option<Instant>] {
        &self.last_heard
    }

    /// This node's role in words, as log lines say it.
    pub fn role_text(&self) -> String {
        events::role_text(self.state.role, &self.names)
    }

    /// Breaks this driver's replay filter: it admits every datagram (for tests that show trace
    /// validation catches a broken runtime).
    #[cfg(test)]
    pub(crate) fn break_replay_filter(&mut self) {
        self.replay.admits_everything = true;
    }

    fn count(&mut self, what: &'static str) {
        *self.counters.entry(what).or_default() += 1;
    }

    /// Records the name an authentic, fresh datagram carried; a changed name means the peer
    /// was recreated from scratch, which an operator should hear of. A new name is kept with
    /// the state, so that a restart shows the peer's name at once.
    fn learn_name(&mut self, from: NodeId, name: NodeName) {
        let event = match self.names.learn(from, name) {
            Learned::Same => return,
            Learned::New => Event::PeerNamed {
                peer: self.names.label(from),
                name,
            },
            Learned::Changed(old) => Event::PeerRenamed {
                peer: self.names.label(from),
                old,
                new: name,
            },
        };
        self.queue_save(self.state.persisted());
        self.effects.push_back(Effect::Log(event));
    }

    fn on_timer(&mut self, timer: &Timer, now: Now) {
        let mut out = Out::new();
        let mut cow = Cow::Borrowed(&self.state);
        self.actor
            .on_timeout(Id::from(self.me.index()), &mut cow, timer, &mut out);
        let next = into_owned_if_changed(cow);
        #[cfg(test)]
        self.note_step(Some(timer), &out, next.as_ref());
        if self.trace.is_some() {
            self.trace_step(Input::Timer(timer.clone()), &out, next.is_some(), now);
        }
        self.apply(next, out, Cause::Local, now);
    }

    /// Opens a trace record for a step about to be applied.
    fn trace_step(&mut self, input: Input, out: &Out<ClusterNode>, changed: bool, now: Now) {
        let offset = self.state.peer(self.me).map_or(0, |me| me.repl_offset);
        if let Some(trace) = &mut self.trace {
            trace.step(input, out, changed, offset, now.unix_ms);
        }
    }

    /// Adopts a step's new state and queues its effects, then its log lines (events.rs): a
    /// vote is said granted only once it is on disk and sent.
    fn apply(
        &mut self,
        next: Option<NodeState>,
        out: Out<ClusterNode>,
        cause: Cause<'_>,
        now: Now,
    ) {
        let lines = match &next {
            Some(after) => events::step_lines(&self.state, after, cause, &out, &self.names),
            None => events::vote_lines(&out, &self.names),
        };
        if let Some(next) = next {
            self.state = next;
            self.revision += 1;
        }
        self.interpret(out, now);
        if let Some(trace) = &mut self.trace {
            trace.close(&self.state);
        }
        for line in lines {
            self.effects.push_back(Effect::Log(Event::Step(line)));
        }
    }
}

/// The handler's new state, only if it wrote.
fn into_owned_if_changed(cow: Cow<'_, NodeState>) -> Option<NodeState> {
    match cow {
        Cow::Owned(s) => Some(s),
        Cow::Borrowed(_) => None,
    }
}
