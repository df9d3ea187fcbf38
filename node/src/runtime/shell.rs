//! The owner task: reads the socket, the timer deadline, host-name lookups and the shutdown
//! signal, feeds the [`Driver`], and carries out its effects in order (specs/protocol.md §10).
//!
//! Why so little here: every decision is the driver's (or the actor's behind it), so what this
//! file must get right is only the order of effects — a step's [`Effect::Persist`] finishes,
//! fsync included, before the next effect is carried out, so no datagram of the step reaches
//! the socket before its state is durable (§7). The task runs alone on the node's bus thread
//! (node_cmd.rs), so nothing the clients do delays a step, and the clients are served while a
//! step waits for the disk (the write runs on tokio's blocking pool).

use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use slotguard::driver::{Driver, Effect, Event, Now, Save, Setup};
use slotguard_protocol::{cluster_status, Layout, NodeId, Persisted, Role};
use tokio::net::UdpSocket;
use tokio::sync::watch;
use tokio::time::{sleep_until, Instant};
use tracing::{info, warn};

use super::config::NodeConfig;
use super::identity::{self, NodeName};
use super::resolve::{self, Resolver};
use super::storage::{Loaded, StateFile, Store};
use super::wire::{self, MAX_DATAGRAM};
use super::{Operator, OwnerRequest, Shared, Snapshot};

/// A running node.
pub(crate) struct Runtime {
    config: Arc<NodeConfig>,
    driver: Driver,
    /// Where `Persist` effects go: the state file (tests: a recorder).
    store: Arc<dyn Store>,
    socket: UdpSocket,
    /// Peers' bus addresses, host names resolved off the step loop.
    resolver: Resolver,
    shared: Shared,
    /// This node's replication offset, kept by the client port's data plane (admin.rs).
    repl_offset: Arc<AtomicU64>,
    /// Where the driver's trace goes, if asked for (specs/protocol.md §12).
    trace: Option<std::fs::File>,
    /// Operators' requests from the client port, and the end the client port sends to.
    operator: (Operator, tokio::sync::mpsc::Receiver<OwnerRequest>),
    /// Bus payload bytes sent and received (UDP payloads, every datagram read or handed to
    /// the socket): what a node costs the network, reported beside the driver's counters.
    bus_bytes: (u64, u64),
    /// The driver's revision the client port last saw ([`Driver::revision`]).
    published: Option<u64>,
    /// The node's role as last published: the replication link waits on its changes
    /// (replication.rs) rather than polling the snapshot.
    role: watch::Sender<Role>,
}

/// The time of an input, read from the system's clocks.
fn now() -> Now {
    let unix_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    Now {
        at: std::time::Instant::now(),
        unix_ms,
    }
}

impl Runtime {
    /// Recovers (or creates) the node's state, binds the bus socket and runs the start step.
    pub(crate) async fn start(config: Arc<NodeConfig>) -> Result<(Runtime, Shared)> {
        let cluster = wire::cluster_digest(&config.layout);
        let file = StateFile::new(&config.data_dir, config.id, cluster);
        let recovered = recover(&file, &config.layout)?;
        Runtime::start_with(config, recovered, Arc::new(file)).await
    }

    /// [`Runtime::start`] from a recovered state, saving to `store`.
    pub(super) async fn start_with(
        config: Arc<NodeConfig>,
        (name, peer_names, incarnation, stored): Recovered,
        store: Arc<dyn Store>,
    ) -> Result<(Runtime, Shared)> {
        let bus = config.listen_on(&config.me().bus);
        let socket = UdpSocket::bind(bus)
            .await
            .with_context(|| format!("cannot bind the cluster bus on {bus}"))?;
        let mut resolver = Resolver::new(&config.nodes, bus.is_ipv4());
        resolver.look_up_all();
        let trace = config.trace.as_deref().map(open_trace).transpose()?;
        let setup = Setup {
            layout: Arc::clone(&config.layout),
            timing: config.timing,
            durability: config.durability,
            me: NodeId(config.id),
            key: config.key.clone(),
            name,
            peer_names,
            incarnation,
            stored,
            addrs: resolver.addrs().to_vec(),
            trace: trace.is_some(),
        };
        let driver = Driver::start(setup, now());
        let driver_role = driver.state().role;
        let shared = Arc::new(RwLock::new(Snapshot {
            state: driver.state().clone(),
            status: cluster_status(driver.state(), &config.layout),
            incarnation,
            counters: BTreeMap::new(),
            names: driver.names().clone(),
            run_id: identity::run_id()?,
            addrs: resolver.addrs().to_vec(),
        }));
        let mut rt = Runtime {
            config,
            driver,
            store,
            socket,
            resolver,
            shared: Arc::clone(&shared),
            repl_offset: Arc::new(AtomicU64::new(0)),
            trace,
            operator: tokio::sync::mpsc::channel(8),
            bus_bytes: (0, 0),
            published: None,
            role: watch::Sender::new(driver_role),
        };
        rt.carry_out().await?;
        rt.publish();
        Ok((rt, shared))
    }

    /// Where the data plane keeps this node's replication offset for the headers.
    pub(crate) fn replication_offset(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.repl_offset)
    }

    /// The node's role, as published: it changes when the node is promoted or follows
    /// another master.
    pub(crate) fn roles(&self) -> watch::Receiver<Role> {
        self.role.subscribe()
    }

    /// Where the client port sends an operator's `CLUSTER FAILOVER`.
    pub(crate) fn operator(&self) -> Operator {
        self.operator.0.clone()
    }

    /// Hands the client port what it reads: the state and the cluster status only when the
    /// state changed (most steps, a PONG from a healthy peer, change nothing), the counters always.
    fn publish(&mut self) {
        if let Ok(mut s) = self.shared.write() {
            if self.published != Some(self.driver.revision()) {
                self.published = Some(self.driver.revision());
                s.state = self.driver.state().clone();
                s.status = cluster_status(&s.state, &self.config.layout);
                let role = s.state.role;
                self.role
                    .send_if_modified(|r| std::mem::replace(r, role) != role);
            }
            s.counters = self.driver.counters().clone();
            s.counters.insert("bus_bytes_sent", self.bus_bytes.0);
            s.counters.insert("bus_bytes_received", self.bus_bytes.1);
            s.names = self.driver.names().clone();
            s.addrs = self.resolver.addrs().to_vec();
        }
    }

    /// Runs until `shutdown` resolves.
    pub(crate) async fn run(
        mut self,
        shutdown: impl std::future::Future<Output = ()>,
    ) -> Result<()> {
        tokio::pin!(shutdown);
        let mut buf = vec![0u8; MAX_DATAGRAM + 1];
        let every = self.config.timing.node_timeout;
        let mut refresh = tokio::time::interval_at(Instant::now() + every, every);
        refresh.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let offset = self.repl_offset.load(Ordering::Relaxed);
            self.driver.set_replication_offset(offset);
            let deadline = self.driver.poll_timeout().map_or_else(
                || Instant::now() + Duration::from_secs(3600),
                Instant::from_std,
            );
            let mut answer = None;
            tokio::select! {
                Some(request) = self.operator.1.recv() => match request {
                    OwnerRequest::Failover { mode, answer: to } => {
                        let result = self.driver.handle_failover(mode, now());
                        answer = Some((to, result));
                    }
                    OwnerRequest::Copied => self.driver.handle_copied(now()),
                    OwnerRequest::MasterRecreated => self.driver.handle_master_recreated(now()),
                    OwnerRequest::AcceptDataLoss { answer: to } => {
                        let result = self.driver.handle_accept_data_loss(now());
                        let _ = to.send(result);
                    }
                },
                received = self.socket.recv_from(&mut buf) => match received {
                    Ok((n, _from)) => {
                        self.bus_bytes.1 += n as u64;
                        self.driver.handle_datagram(&buf[..n], now());
                    }
                    Err(e) => warn!(error = %e, "receive failed"),
                },
                () = sleep_until(deadline) => self.driver.handle_timeout(now()),
                Some(found) = self.resolver.next() => {
                    let node = found.0;
                    self.resolver.settle(found);
                    self.driver.set_addr(node, self.resolver.addr(node));
                }
                _ = refresh.tick() => self.look_up_silent(),
                () = &mut shutdown => {
                    info!("shutting down: state is on disk, closing sockets");
                    return Ok(());
                }
            }
            self.carry_out().await?;
            self.publish();
            if let Some((to, result)) = answer {
                let _ = to.send(result);
            }
        }
    }

    /// Carries out the driver's effects one at a time, in order: each write is durable before
    /// the next effect starts.
    async fn carry_out(&mut self) -> Result<()> {
        // The steps' records reach the file before their datagrams leave: a receiver's trace
        // never names a datagram its sender's trace lacks, even after a kill -9.
        self.write_trace()?;
        while let Some(effect) = self.driver.poll_effect() {
            match effect {
                Effect::Persist(save) => {
                    self.persist(save).await?;
                    self.driver.on_persisted();
                }
                Effect::Transmit(t) => {
                    let sent = self.socket.send_to(&t.bytes, t.addr).await;
                    match &sent {
                        Ok(n) => self.bus_bytes.0 += *n as u64,
                        Err(e) => tracing::debug!(error = %e, addr = %t.addr, "send failed"),
                    }
                    self.driver.on_transmitted(&t, sent.is_ok(), now());
                }
                Effect::Log(event) => log(event),
            }
        }
        self.write_trace()
    }

    /// Appends what the driver recorded since the last call to the trace file (one write).
    fn write_trace(&mut self) -> Result<()> {
        let Some(file) = &mut self.trace else {
            return Ok(());
        };
        let lines = self.driver.take_trace();
        if !lines.is_empty() {
            file.write_all(&lines)
                .context("cannot write the trace file")?;
        }
        Ok(())
    }

    /// Writes `save` on the blocking pool and waits until it is durable.
    async fn persist(&self, save: Save) -> Result<()> {
        let store = Arc::clone(&self.store);
        tokio::task::spawn_blocking(move || store.write(&save))
            .await
            .context("the state-file writer stopped")??;
        Ok(())
    }

    /// Looks up again the names of nodes silent for node_timeout (and this node's own, until
    /// it has resolved).
    fn look_up_silent(&mut self) {
        let due = resolve::due_for_lookup(
            usize::from(self.config.id),
            self.driver.last_heard(),
            self.resolver.addrs(),
            std::time::Instant::now(),
            self.config.timing.node_timeout,
        );
        for i in due {
            self.resolver.look_up(i);
        }
    }
}

/// Opens a trace file for appending. A file whose last line was cut short (a node killed while
/// writing) gets a line break first, so the next record starts a line of its own.
fn open_trace(path: &std::path::Path) -> Result<std::fs::File> {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .read(true)
        .append(true)
        .open(path)
        .with_context(|| format!("cannot open the trace file {}", path.display()))?;
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    if len > 0 {
        let mut last = [0u8; 1];
        file.seek(SeekFrom::Start(len - 1))
            .and_then(|_| file.read_exact(&mut last))
            .with_context(|| format!("cannot read the trace file {}", path.display()))?;
        if last[0] != b'\n' {
            file.write_all(b"\n")
                .with_context(|| format!("cannot write the trace file {}", path.display()))?;
        }
    }
    Ok(file)
}

/// Logs an [`Event`] with the fields operators know.
fn log(event: Event) {
    match event {
        Event::Started {
            name,
            role,
            config_epoch,
        } => info!(name = %name, role = %role, config_epoch = %config_epoch, "node started"),
        Event::Step(line) => info!("{line}"),
        Event::PeerNamed { peer, name } => info!(peer = %peer, %name, "peer name learnt"),
        Event::PeerRenamed { peer, old, new } => warn!(
            peer = %peer,
            %old,
            new = %new,
            "peer name changed: the node was recreated without its state file"
        ),
    }
}

/// The node's name, incarnation and stored state from its state file. A new node draws its
/// name; a state file of format 2, written before nodes had names, gets one too, and the log
/// says so (the next save writes it).
fn recover(file: &StateFile, layout: &Layout) -> Result<Recovered> {
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
    // The incarnation counts starts: every datagram is stamped with it, so that receivers
    // can tell this run's datagrams from the last one's (wire.rs).
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
pub(super) type Recovered = (NodeName, Vec<Option<NodeName>>, u32, Option<Persisted>);
