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
//! task publishes after every step; so does the Prometheus endpoint (`metrics.rs`).
//!
//! Beside the protocol, the runtime keeps what only operators and clients need: the node's
//! random name and its peers' (`identity.rs`, carried in each datagram's authenticated header, `wire.rs`),
//! PING/PONG times for CLUSTER NODES, the peers' bus addresses with host names looked up in
//! tasks off the step loop (`resolve.rs`), and the log lines each step earns (`events.rs`).
//! None of it feeds back into the actor.

pub(crate) mod admin;
pub(crate) mod command_table;
pub(crate) mod commands;
pub(crate) mod config;
pub(crate) mod events;
pub(crate) mod format;
pub(crate) mod identity;
pub(crate) mod metrics;
pub(crate) mod reply;
pub(crate) mod request;
pub(crate) mod resolve;
pub(crate) mod storage;
pub(crate) mod timers;
pub(crate) mod wire;

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};

use anyhow::{Context, Result};
use slotguard_protocol::state::NodeState;
use slotguard_protocol::validate::message_is_valid;
use slotguard_protocol::{ClusterNode, Msg, NodeId, Timer};
use stateright::actor::{Actor, Command, Id, Out};
use tokio::net::UdpSocket;
use tokio::time::{sleep_until, Instant};
use tracing::{info, warn};

use self::config::NodeConfig;
use self::events::Cause;
use self::identity::{Directory, Learned, NodeName};
use self::resolve::Resolver;
use self::storage::{Loaded, StateFile};
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
    /// Every node's name as far as known, and when PINGs and PONGs last went and came.
    pub(crate) names: Directory,
    /// Random per start of the process (INFO `run_id`).
    pub(crate) run_id: String,
    /// Every node's bus address as resolved so far (resolve.rs).
    pub(crate) addrs: Vec<Option<SocketAddr>>,
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
    /// Names of this node and its peers, and PING/PONG times (identity.rs).
    names: Directory,
    file: StateFile,
    timers: Timers,
    socket: UdpSocket,
    /// What datagrams are sealed and opened under (wire.rs).
    bus_key: wire::BusKey,
    sequence: u64,
    last_seen: BTreeMap<u16, (u32, u64)>,
    /// Peers' bus addresses, host names resolved off the step loop.
    resolver: Resolver,
    /// When an authentic datagram last came from each node: a host name is looked up again
    /// once its node has been silent for node_timeout.
    last_heard: Vec<Option<Instant>>,
    counters: BTreeMap<&'static str, u64>,
    shared: Shared,
}

impl Runtime {
    /// Recovers (or creates) the node's state, binds the bus socket and runs the start step.
    pub(crate) async fn start(config: Arc<NodeConfig>) -> Result<(Runtime, Shared)> {
        let me = NodeId(config.id);
        let actor = ClusterNode::new(Arc::clone(&config.layout), config.timing);
        let cluster = wire::cluster_digest(&config.layout);
        let file = StateFile::new(&config.data_dir, config.id, cluster);
        // The incarnation counts starts: every datagram is stamped with it, so that receivers
        // can tell this run's datagrams from the last one's (wire.rs).
        let (name, peer_names, incarnation, stored) = recover(&file, &config.layout)?;
        let names = Directory::new(me, name, config.layout.len()).knowing(&peer_names);
        let bus = config.listen_on(&config.me().bus);
        let socket = UdpSocket::bind(bus)
            .await
            .with_context(|| format!("cannot bind the cluster bus on {bus}"))?;
        let mut resolver = Resolver::new(&config.nodes, bus.is_ipv4());
        resolver.look_up_all();
        let mut out = Out::new();
        let state = actor.on_start(Id::from(me.index()), &stored, &mut out);
        // The new incarnation must be on disk before the first datagram that carries it leaves.
        // The start step saves first (actor.rs: on_start), and every save writes the
        // incarnation; only if it ever did not would a separate write be needed.
        // The same holds for a name given at this start.
        if !matches!(out.iter().next(), Some(Command::Save(_))) {
            file.save(&name, &names.peer_names(), incarnation, &state.persisted())?;
        }
        let shared = Arc::new(RwLock::new(Snapshot {
            state: state.clone(),
            incarnation,
            counters: BTreeMap::new(),
            names: names.clone(),
            run_id: identity::run_id()?,
            addrs: resolver.addrs().to_vec(),
        }));
        let bus_key = wire::BusKey::new(&config.key, &config.layout);
        let n = config.layout.len();
        let mut rt = Runtime {
            config,
            actor,
            me,
            state,
            incarnation,
            names,
            file,
            timers: Timers::default(),
            socket,
            bus_key,
            sequence: 0,
            last_seen: BTreeMap::new(),
            resolver,
            last_heard: vec![None; n],
            counters: BTreeMap::new(),
            shared: Arc::clone(&shared),
        };
        info!(
            name = %name,
            role = %events::role_text(rt.state.role, &rt.names),
            config_epoch = %rt.state.config_epoch,
            "node started"
        );
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
            s.names = self.names.clone();
            s.addrs = self.resolver.addrs().to_vec();
        }
    }

    /// Runs until `shutdown` resolves.
    pub(crate) async fn run(
        mut self,
        shutdown: impl std::future::Future<Output = ()>,
    ) -> Result<()> {
        tokio::pin!(shutdown);
        let mut buf = vec![0u8; wire::MAX_DATAGRAM + 1];
        let every = self.config.timing.node_timeout;
        let mut refresh = tokio::time::interval_at(Instant::now() + every, every);
        refresh.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
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
                Some(found) = self.resolver.next() => self.resolver.settle(found),
                _ = refresh.tick() => self.look_up_silent(),
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
        let from = NodeId(datagram.sender);
        self.learn_name(from, NodeName(datagram.name))?;
        self.last_heard[from.index()] = Some(Instant::now());
        for msg in datagram.messages {
            if matches!(msg, Msg::Pong(_)) {
                self.names.pong_received(from.index(), identity::now_ms());
            }
            let mut out = Out::new();
            let mut cow = Cow::Borrowed(&self.state);
            self.actor.on_msg(
                Id::from(self.me.index()),
                &mut cow,
                Id::from(from.index()),
                msg.clone(),
                &mut out,
            );
            let cause = Cause::Message { from, msg: &msg };
            self.apply(cow.into_owned_if_changed(), out, cause).await?;
        }
        Ok(())
    }

    /// Records the name an authentic, fresh datagram carried; a changed name means the peer
    /// was recreated from scratch, which an operator should hear of.
    fn learn_name(&mut self, from: NodeId, name: NodeName) -> Result<()> {
        let learned = self.names.learn(from, name);
        if learned != Learned::Same {
            // Kept with the state, so that a restart shows the peer's name at once.
            let persisted = self.state.persisted();
            let peers = self.names.peer_names();
            tokio::task::block_in_place(|| {
                self.file
                    .save(&self.names.my_name(), &peers, self.incarnation, &persisted)
            })?;
        }
        match learned {
            Learned::Same => {}
            Learned::New => info!(peer = %self.names.label(from), %name, "peer name learnt"),
            Learned::Changed(old) => warn!(
                peer = %self.names.label(from),
                %old,
                new = %name,
                "peer name changed: the node was recreated without its state file"
            ),
        }
        Ok(())
    }

    /// Looks up again the names of nodes silent for node_timeout (and this node's own, until
    /// it has resolved).
    fn look_up_silent(&mut self) {
        let due = resolve::due_for_lookup(
            self.me.index(),
            &self.last_heard,
            self.resolver.addrs(),
            Instant::now(),
            self.config.timing.node_timeout,
        );
        for i in due {
            self.resolver.look_up(i);
        }
    }

    async fn on_timer(&mut self, timer: Timer) -> Result<()> {
        let mut out = Out::new();
        let mut cow = Cow::Borrowed(&self.state);
        self.actor
            .on_timeout(Id::from(self.me.index()), &mut cow, &timer, &mut out);
        self.apply(cow.into_owned_if_changed(), out, Cause::Local)
            .await
    }

    /// Adopts a step's new state, logs what the step did (events.rs) and carries out its
    /// commands.
    async fn apply(
        &mut self,
        next: Option<NodeState>,
        out: Out<ClusterNode>,
        cause: Cause<'_>,
    ) -> Result<()> {
        let after = next.as_ref().unwrap_or(&self.state);
        let lines = events::step_lines(&self.state, after, cause, &out, &self.names);
        if let Some(next) = next {
            self.state = next;
        }
        // Logged once the step is carried out: a vote is said granted only once it is on disk
        // and sent.
        self.execute(out).await?;
        for line in lines {
            info!("{line}");
        }
        Ok(())
    }

    /// Carries out commands in order; messages leave after the whole step, so a `Save` (which
    /// the actor puts first) is durable before any of them.
    async fn execute(&mut self, out: Out<ClusterNode>) -> Result<()> {
        let mut batches: BTreeMap<usize, Vec<Msg>> = BTreeMap::new();
        for command in out {
            match command {
                // The step waits for the fsync (persist before promise), but the worker thread
                // is handed over so that client connections are served meanwhile.
                Command::Save(p) => tokio::task::block_in_place(|| {
                    let peers = self.names.peer_names();
                    self.file
                        .save(&self.names.my_name(), &peers, self.incarnation, &p)
                })?,
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
        let Some(addr) = self.resolver.addr(to) else {
            self.count("unresolved");
            return;
        };
        self.sequence += 1;
        let address = wire::Address {
            sender: self.me.0,
            name: self.names.my_name().0,
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
                    if msgs.iter().any(|m| matches!(m, Msg::Ping(_))) {
                        self.names.ping_sent(to, identity::now_ms());
                    }
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

/// The node's name, incarnation and stored state from its state file. A new node draws its
/// name; a state file of format 2, written before nodes had names, gets one too, and the log
/// says so (the next save writes it).
fn recover(file: &StateFile, layout: &slotguard_protocol::Layout) -> Result<Recovered> {
    let path = file.path().display().to_string();
    let Some(Loaded {
        name,
        peers,
        incarnation: previous,
        state: p,
    }) = file.load()?
    else {
        let name = NodeName::random()?;
        info!(file = %path, %name, "no state file: starting as created");
        return Ok((name, Vec::new(), 0, None));
    };
    // Format 2 files carry no cluster identity: the stored state must at least fit the layout.
    p.fits(layout)
        .map_err(|mismatch| file.other_cluster(format!(": {mismatch}")))?;
    let incarnation = previous
        .checked_add(1)
        .with_context(|| format!("state file {path}: incarnation overflow"))?;
    let name = match name {
        Some(name) => name,
        None => {
            let name = NodeName::random()?;
            warn!(file = %path, %name, "state file has no node name (written by an earlier slotguard): named the node now");
            name
        }
    };
    info!(
        file = %path,
        %name,
        current_epoch = %p.current_epoch,
        last_vote_epoch = %p.last_vote_epoch,
        incarnation,
        "recovered state"
    );
    Ok((name, peers, incarnation, Some(p)))
}

/// What a start recovers: the node's name, its peers' names, its incarnation, its state.
type Recovered = (
    NodeName,
    Vec<Option<NodeName>>,
    u32,
    Option<slotguard_protocol::Persisted>,
);
