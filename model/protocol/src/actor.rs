//! [`ClusterNode`]: the protocol as one `stateright::actor::Actor`, run unchanged by the checker
//! and by the deployable node.
//!
//! Inputs are messages and timer expiries; outputs are commands (send, set/cancel timer, save).
//! Handlers never perform I/O. Every handler runs inside a [`Step`], which buffers the commands a
//! handler emits and, when the step ends, puts a `Save` of the durable state *in front of* them
//! if the step changed anything durable. A runtime that executes commands in order therefore
//! always persists a vote or an epoch before the message that depends on it leaves ("persist
//! before you promise", specs/protocol.md §6); the handlers cannot forget to.

use std::borrow::Cow;
use std::sync::Arc;

use stateright::actor::{Actor, Id, Out};

use crate::bugs::{Bug, Bugs};
use crate::durability::Durability;
use crate::ids::NodeId;
use crate::layout::{Layout, Timing};
use crate::message::Msg;
use crate::protocol::heartbeat::announcements;
use crate::state::{NodeState, Persisted};
use crate::timer::Timer;

/// One cluster node: the protocol's static configuration. All mutable knowledge lives in
/// [`NodeState`]; this value is identical on every node of a cluster.
#[derive(Clone, Debug)]
pub struct ClusterNode {
    /// The cluster as created (shared: 16384-slot layouts are not copied per node).
    pub layout: Arc<Layout>,
    /// Timer durations for the runtime; the checker ignores them.
    pub timing: Timing,
    /// Injected bugs (mutation tests only; always none in a real node).
    pub bugs: Bugs,
    /// When a write is acknowledged, and so what a restart costs (specs/protocol.md §13).
    pub durability: Durability,
}

/// An empty command buffer with room for a step's usual commands. stateright's `Out` starts
/// with no room and grows by doubling, which was a few per cent of the checker's time; it has no
/// `with_capacity`, but collecting an unused vector's iterator keeps the vector's allocation.
pub fn out_buffer() -> Out<ClusterNode> {
    Vec::with_capacity(16).into_iter().collect()
}

impl ClusterNode {
    /// [`Actor::on_msg`] on a borrowed message: the checker delivers each envelope in flight
    /// many times, and the handlers only read the message, so copying it for every delivery
    /// was pure cost. `on_msg` is this.
    pub fn on_msg_ref(
        &self,
        state: &mut Cow<'_, NodeState>,
        src: Id,
        msg: &Msg,
        o: &mut Out<Self>,
    ) {
        let Some(from) = NodeId::from_actor_id(src, self.layout.len()) else {
            return;
        };
        if from == state.me || !crate::validate::message_is_valid(&self.layout, msg) {
            return;
        }
        self.step(state, o, |s| {
            s.on_peer_heard(from);
            match msg {
                Msg::Ping(h) => s.on_heartbeat(from, h, false),
                Msg::Pong(h) => s.on_heartbeat(from, h, true),
                Msg::Gossip(e) => s.on_gossip(from, e),
                Msg::Fail { node } => s.on_fail_message(*node),
                Msg::AuthRequest(req) => s.on_vote_request(from, req),
                Msg::AuthAck {
                    epoch, candidate, ..
                } => s.on_vote(from, *epoch, *candidate),
                Msg::FailoverStart => s.on_failover_start(from),
                Msg::Update(claim) => s.on_update(claim),
            }
        });
    }
}

impl ClusterNode {
    /// A correct node of `layout`.
    pub fn new(layout: Arc<Layout>, timing: Timing) -> ClusterNode {
        ClusterNode {
            layout,
            timing,
            bugs: Bugs::NONE,
            durability: Durability::Async,
        }
    }

    /// This node with `durability`.
    pub fn with_durability(self, durability: Durability) -> ClusterNode {
        ClusterNode { durability, ..self }
    }

    /// Whether an injected bug is on (the checker's reductions switch off the rules a bug
    /// breaks).
    pub fn bug(&self, bug: Bug) -> bool {
        self.bugs.has(bug)
    }

    /// Runs `handler` as one atomic step: buffered effects, durable state saved first.
    pub(crate) fn step<'s>(
        &self,
        state: &mut Cow<'s, NodeState>,
        o: &mut Out<Self>,
        handler: impl FnOnce(&mut Step<'_, 's>),
    ) {
        // Both the checker and the runtime hand over a borrowed state; the shared reference it
        // holds stays valid while the handler writes to its own copy.
        let before: Cow<'s, NodeState> = match &*state {
            Cow::Borrowed(s) => Cow::Borrowed(*s),
            Cow::Owned(s) => Cow::Owned(s.clone()),
        };
        let mut step = Step {
            node: self,
            state,
            fx: out_buffer(),
            skip_save: false,
        };
        handler(&mut step);
        let Step {
            mut fx, skip_save, ..
        } = step;
        if let Cow::Owned(after) = &*state {
            if !skip_save && !after.durable_eq(&before) {
                o.save(after.persisted());
            }
        }
        o.append(&mut fx);
        if let Cow::Owned(after) = &*state {
            for (about, msg) in announcements(&before, after) {
                for peer in self.layout.ids() {
                    if peer != after.me && Some(peer) != about {
                        o.send(Id::from(peer), msg.clone());
                    }
                }
            }
        }
    }
}

/// The context of one handler invocation: the node's configuration, its state (copy-on-write,
/// so a handler that changes nothing leaves the step a no-op the checker prunes), and the
/// buffered effects.
pub(crate) struct Step<'n, 's> {
    pub(crate) node: &'n ClusterNode,
    state: &'n mut Cow<'s, NodeState>,
    fx: Out<ClusterNode>,
    /// Set only by [`Bug::UnpersistedEpochBump`].
    pub(crate) skip_save: bool,
}

impl Step<'_, '_> {
    /// The state, read-only.
    pub(crate) fn st(&self) -> &NodeState {
        self.state
    }

    /// The state, for writing (clones it on first write).
    pub(crate) fn st_mut(&mut self) -> &mut NodeState {
        self.state.to_mut()
    }

    /// This node.
    pub(crate) fn me(&self) -> NodeId {
        self.state.me
    }

    /// The layout.
    pub(crate) fn layout(&self) -> &Layout {
        &self.node.layout
    }

    /// Every node but this one.
    pub(crate) fn peers(&self) -> Vec<NodeId> {
        let me = self.me();
        self.layout().ids().filter(|&n| n != me).collect()
    }

    /// Queues a message.
    pub(crate) fn send(&mut self, to: NodeId, msg: Msg) {
        self.fx.send(Id::from(to), msg);
    }

    /// Queues a message to every other node.
    pub(crate) fn broadcast(&mut self, msg: &Msg) {
        for peer in self.peers() {
            self.fx.send(Id::from(peer), msg.clone());
        }
    }

    /// Arms (or re-arms) a timer for `duration` (a range: the runtime draws from it).
    pub(crate) fn set_timer(
        &mut self,
        timer: Timer,
        duration: std::ops::Range<std::time::Duration>,
    ) {
        self.fx.set_timer(timer, duration);
    }

    /// Disarms a timer.
    pub(crate) fn cancel_timer(&mut self, timer: Timer) {
        self.fx.cancel_timer(timer);
    }
}

/// A fixed duration as the range `SetTimer` takes.
pub(crate) fn exactly(d: std::time::Duration) -> std::ops::Range<std::time::Duration> {
    d..d
}

impl Actor for ClusterNode {
    type Msg = Msg;
    type Timer = Timer;
    type State = NodeState;
    type Storage = Persisted;
    type Random = ();

    fn name(&self) -> String {
        String::from("node")
    }

    fn on_start(&self, id: Id, storage: &Option<Persisted>, o: &mut Out<Self>) -> NodeState {
        // Ids come from the runtime's own configuration, never from a peer: an id outside the
        // layout is a programming error of the caller.
        let me = NodeId::from_actor_id(id, self.layout.len())
            .expect("actor id must be an index of the layout");
        let mut state = match storage {
            None => NodeState::fresh(&self.layout, me),
            Some(persisted) => {
                let mut state = NodeState::recovered(&self.layout, me, persisted);
                state.data.complete = self.complete_after_restart(&state);
                state
            }
        };
        if storage.is_some() && self.bug(Bug::ForgetLastVoteOnRestart) {
            state.last_vote_epoch = crate::ids::Epoch(0);
        }
        // Persist at once: a fresh node's first state file exists before it says anything
        // (and the runtime's new start count reaches the disk with it).
        o.save(state.persisted());
        // Announce myself at once (the tick repeats it).
        let h = crate::protocol::heartbeat::header(&state);
        for (_, msg) in crate::protocol::heartbeat::header_announcement(h) {
            for peer in self.layout.ids().filter(|&n| n != me) {
                o.send(Id::from(peer), msg.clone());
            }
        }
        o.set_timer(Timer::Tick, exactly(self.timing.ping_interval));
        for peer in self.layout.ids().filter(|&n| n != me) {
            o.set_timer(Timer::PeerTimeout(peer), exactly(self.timing.node_timeout));
        }
        state
    }

    fn on_msg(
        &self,
        _id: Id,
        state: &mut Cow<'_, NodeState>,
        src: Id,
        msg: Msg,
        o: &mut Out<Self>,
    ) {
        self.on_msg_ref(state, src, &msg, o);
    }

    fn on_timeout(
        &self,
        _id: Id,
        state: &mut Cow<'_, NodeState>,
        timer: &Timer,
        o: &mut Out<Self>,
    ) {
        self.step(state, o, |s| match *timer {
            Timer::Tick => s.on_tick(),
            Timer::PeerTimeout(peer) => s.on_peer_timeout(peer),
            Timer::ReportExpiry { target, reporter } => s.on_report_expiry(target, reporter),
            Timer::FailUndo(node) => s.on_fail_undo(node),
            Timer::ElectionDelay => s.on_election_delay(),
            Timer::ElectionTimeout => s.on_election_timeout(),
            Timer::ManualFailover => s.on_manual_failover_timeout(),
        });
    }
}
