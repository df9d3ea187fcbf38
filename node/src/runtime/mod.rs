//! The node runtime: an interpreter of the actor's outputs (specs/protocol.md §7).
//!
//! One task owns the actor state. It feeds the actor three kinds of input — datagrams from the
//! cluster bus (one message at a time, each its own step), timer expiries, and the start — and
//! carries out each step's commands in order: `Save` is written durably before anything else of
//! the step happens, timers are (re)armed or cancelled, and the step's messages are packed per
//! destination into authenticated datagrams and sent. Every protocol decision is the actor's;
//! this module only moves bytes, keeps deadlines, and logs what changed.
//!
//! Clients and admins talk RESP on a TCP port (`admin.rs`), reading a snapshot that the owner
//! task publishes after every step.

pub(crate) mod admin;
pub(crate) mod command_table;
pub(crate) mod commands;
pub(crate) mod config;
pub(crate) mod format;
pub(crate) mod reply;
pub(crate) mod request;
pub(crate) mod storage;
pub(crate) mod timers;
pub(crate) mod wire;

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use anyhow::{Context, Result};
use slotguard_model::state::{Election, Health, NodeState, Role};
use slotguard_model::validate::message_is_valid;
use slotguard_model::{ClusterNode, Msg, NodeId, Timer};
use stateright::actor::{Actor, Command, Id, Out};
use tokio::net::UdpSocket;
use tokio::time::{sleep_until, Instant};
use tracing::{info, warn};

use self::config::NodeConfig;
use self::storage::StateFile;
use self::timers::Timers;
use self::wire::Rejection;

/// What the admin port can see: the node's state after its last step, and counters.
#[derive(Clone)]
pub(crate) struct Snapshot {
    /// The actor state.
    pub(crate) state: NodeState,
    /// Starts of this node before this one.
    pub(crate) incarnation: u32,
    /// Datagram counters: received, sent, and drops by reason.
    pub(crate) counters: BTreeMap<&'static str, u64>,
}

/// Shared view for the admin port.
pub(crate) type Shared = Arc<RwLock<Snapshot>>;

/// A running node.
pub(crate) struct Runtime {
    config: Arc<NodeConfig>,
    actor: ClusterNode,
    me: NodeId,
    state: NodeState,
    /// Starts of this node before this one (persisted in the state file; stamped on datagrams).
    incarnation: u32,
    file: StateFile,
    timers: Timers,
    socket: UdpSocket,
    /// What datagrams are sealed and opened under (wire.rs).
    bus_key: wire::BusKey,
    sequence: u64,
    last_seen: BTreeMap<u16, (u32, u64)>,
    counters: BTreeMap<&'static str, u64>,
    shared: Shared,
}

impl Runtime {
    /// Recovers (or creates) the node's state, binds the bus socket and runs the start step.
    pub(crate) async fn start(config: Arc<NodeConfig>) -> Result<(Runtime, Shared)> {
        let me = NodeId(config.id);
        let actor = ClusterNode::new(Arc::clone(&config.layout), config.timing);
        let file = StateFile::new(&config.data_dir, config.id);
        // The incarnation counts starts: every datagram is stamped with it, so that receivers
        // can tell this run's datagrams from the last one's (wire.rs).
        let (incarnation, stored) = match file.load()? {
            Some((previous, p)) => {
                let incarnation = previous.checked_add(1).with_context(|| {
                    format!("state file {}: incarnation overflow", file.path().display())
                })?;
                info!(
                    file = %file.path().display(),
                    current_epoch = %p.current_epoch,
                    last_vote_epoch = %p.last_vote_epoch,
                    incarnation,
                    "recovered state"
                );
                (incarnation, Some(p))
            }
            None => {
                info!(file = %file.path().display(), "no state file: starting as created");
                (0, None)
            }
        };
        let bus = config.nodes[me.index()].bus;
        let socket = UdpSocket::bind(bus)
            .await
            .with_context(|| format!("cannot bind the cluster bus on {bus}"))?;
        let mut out = Out::new();
        let state = actor.on_start(Id::from(me.index()), &stored, &mut out);
        // The new incarnation must be on disk before the first datagram that carries it leaves.
        // The start step saves first (actor.rs: on_start), and every save writes the
        // incarnation; only if it ever did not would a separate write be needed.
        if !matches!(out.iter().next(), Some(Command::Save(_))) {
            file.save(incarnation, &state.persisted())?;
        }
        let shared = Arc::new(RwLock::new(Snapshot {
            state: state.clone(),
            incarnation,
            counters: BTreeMap::new(),
        }));
        let bus_key = wire::BusKey::new(&config.key, &config.layout);
        let mut rt = Runtime {
            config,
            actor,
            me,
            state,
            incarnation,
            file,
            timers: Timers::default(),
            socket,
            bus_key,
            sequence: 0,
            last_seen: BTreeMap::new(),
            counters: BTreeMap::new(),
            shared: Arc::clone(&shared),
        };
        info!(role = ?rt.state.role, config_epoch = %rt.state.config_epoch, "node started");
        rt.execute(out).await?;
        rt.publish();
        Ok((rt, shared))
    }

    fn count(&mut self, what: &'static str) {
        *self.counters.entry(what).or_default() += 1;
    }

    fn publish(&self) {
        if let Ok(mut s) = self.shared.write() {
            s.state = self.state.clone();
            s.counters = self.counters.clone();
        }
    }

    /// Runs until `shutdown` resolves.
    pub(crate) async fn run(
        mut self,
        shutdown: impl std::future::Future<Output = ()>,
    ) -> Result<()> {
        tokio::pin!(shutdown);
        let mut buf = vec![0u8; wire::MAX_DATAGRAM + 1];
        loop {
            let deadline = self
                .timers
                .next_deadline()
                .unwrap_or_else(|| Instant::now() + std::time::Duration::from_secs(3600));
            tokio::select! {
                received = self.socket.recv_from(&mut buf) => {
                    match received {
                        Ok((n, _from)) => {
                            let bytes = buf[..n].to_vec();
                            self.on_datagram(&bytes).await?;
                        }
                        Err(e) => warn!(error = %e, "receive failed"),
                    }
                }
                () = sleep_until(deadline) => {
                    for timer in self.timers.take_due(Instant::now()) {
                        self.on_timer(timer).await?;
                    }
                }
                () = &mut shutdown => {
                    info!("shutting down: state is on disk, closing sockets");
                    return Ok(());
                }
            }
            self.publish();
        }
    }

    async fn on_datagram(&mut self, bytes: &[u8]) -> Result<()> {
        self.count("datagrams_received");
        let datagram = match wire::open(&self.bus_key, self.me.0, bytes) {
            Ok(d) => d,
            Err(reason) => {
                self.count(reason.name());
                return Ok(());
            }
        };
        if usize::from(datagram.sender) >= self.config.layout.len() || datagram.sender == self.me.0
        {
            self.count(Rejection::UnknownSender.name());
            return Ok(());
        }
        if datagram
            .messages
            .iter()
            .any(|m| !message_is_valid(&self.config.layout, m))
        {
            self.count(Rejection::Undecodable.name());
            return Ok(());
        }
        let stamp = (datagram.incarnation, datagram.sequence);
        if self
            .last_seen
            .get(&datagram.sender)
            .is_some_and(|&last| stamp <= last)
        {
            self.count(Rejection::Stale.name());
            return Ok(());
        }
        self.last_seen.insert(datagram.sender, stamp);
        self.count("datagrams_accepted");
        for msg in datagram.messages {
            let mut out = Out::new();
            let mut cow = Cow::Borrowed(&self.state);
            self.actor.on_msg(
                Id::from(self.me.index()),
                &mut cow,
                Id::from(usize::from(datagram.sender)),
                msg,
                &mut out,
            );
            self.apply(cow.into_owned_if_changed(), out).await?;
        }
        Ok(())
    }

    async fn on_timer(&mut self, timer: Timer) -> Result<()> {
        let mut out = Out::new();
        let mut cow = Cow::Borrowed(&self.state);
        self.actor
            .on_timeout(Id::from(self.me.index()), &mut cow, &timer, &mut out);
        self.apply(cow.into_owned_if_changed(), out).await
    }

    /// Adopts a step's new state (logging what changed) and carries out its commands.
    async fn apply(&mut self, next: Option<NodeState>, out: Out<ClusterNode>) -> Result<()> {
        if let Some(next) = next {
            log_changes(&self.state, &next);
            self.state = next;
        }
        self.execute(out).await
    }

    /// Carries out commands in order; messages leave after the whole step, so a `Save` (which
    /// the actor puts first) is durable before any of them.
    async fn execute(&mut self, out: Out<ClusterNode>) -> Result<()> {
        let mut batches: BTreeMap<usize, Vec<Msg>> = BTreeMap::new();
        for command in out {
            match command {
                Command::Save(p) => self.file.save(self.incarnation, &p)?,
                Command::Send(to, msg) => batches.entry(usize::from(to)).or_default().push(msg),
                Command::SetTimer(t, range) => self.timers.set(t, &range),
                Command::CancelTimer(t) => self.timers.cancel(&t),
                Command::ChooseRandom(..) => {}
            }
        }
        for (to, msgs) in batches {
            self.send(to, &msgs).await;
        }
        Ok(())
    }

    async fn send(&mut self, to: usize, msgs: &[Msg]) {
        let Some(peer) = self.config.nodes.get(to) else {
            return;
        };
        let addr = peer.bus;
        self.sequence += 1;
        let address = wire::Address {
            sender: self.me.0,
            destination: to as u16,
            incarnation: self.incarnation,
            sequence: self.sequence,
        };
        let sealed = wire::seal(&self.bus_key, address, msgs);
        match sealed {
            Ok(bytes) if bytes.len() <= wire::MAX_DATAGRAM => {
                if let Err(e) = self.socket.send_to(&bytes, addr).await {
                    self.count("send_errors");
                    tracing::debug!(error = %e, %addr, "send failed");
                } else {
                    self.count("datagrams_sent");
                }
            }
            Ok(_) if msgs.len() > 1 => {
                let (a, b) = msgs.split_at(msgs.len() / 2);
                Box::pin(self.send(to, a)).await;
                Box::pin(self.send(to, b)).await;
            }
            _ => self.count("unsendable"),
        }
    }
}

/// `Cow::into_owned` only when the handler wrote.
trait IntoOwnedIfChanged {
    fn into_owned_if_changed(self) -> Option<NodeState>;
}

impl IntoOwnedIfChanged for Cow<'_, NodeState> {
    fn into_owned_if_changed(self) -> Option<NodeState> {
        match self {
            Cow::Owned(s) => Some(s),
            Cow::Borrowed(_) => None,
        }
    }
}

/// Logs each role change, FAIL, election and slot rebind once, when it happens.
fn log_changes(before: &NodeState, after: &NodeState) {
    if before.role != after.role {
        match after.role {
            Role::Master => info!(config_epoch = %after.config_epoch, "role: now MASTER"),
            Role::Replica { of } => info!(master = %of, "role: now REPLICA"),
        }
    }
    for (i, (b, a)) in before.peers.iter().zip(&after.peers).enumerate() {
        if i == after.me.index() {
            continue;
        }
        match (b.health, a.health) {
            (Health::Ok, Health::PFail) => {
                info!(peer = %NodeId(i as u16), "PFAIL (no pong within node timeout)")
            }
            (h, Health::Fail { .. }) if !h.is_fail() => {
                info!(peer = %NodeId(i as u16), "FAIL (majority of masters agree)")
            }
            (h, Health::Ok) if h.is_fail() => info!(peer = %NodeId(i as u16), "FAIL cleared"),
            _ => {}
        }
    }
    if let Election::Running { epoch, .. } = &after.election {
        if !matches!(&before.election, Election::Running { epoch: e, .. } if e == epoch) {
            info!(%epoch, "election started: asking masters for votes");
        }
    }
    log_slots(before, after);
}

fn log_slots(before: &NodeState, after: &NodeState) {
    let mut moved: BTreeMap<Option<NodeId>, Vec<u16>> = BTreeMap::new();
    for ((slot, was), (_, now)) in before.slots.iter().zip(after.slots.iter()) {
        if was != now {
            moved.entry(now).or_default().push(slot);
        }
    }
    for (owner, slots) in moved {
        let set: slotguard_model::SlotSet = slots.iter().copied().collect();
        info!(
            owner = %owner.map_or("-".to_string(), |o| o.to_string()),
            config_epoch = %owner.map(|o| after.epoch_of(o)).unwrap_or_default(),
            slots = ?set,
            "slots rebound"
        );
    }
}
