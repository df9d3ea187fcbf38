//! The client and admin port: RESP over TCP, so `redis-cli` and cluster-aware clients work.
//! This module owns connections and their limits; requests are parsed by `request.rs`,
//! answered by `commands.rs`, and encoded by `reply.rs`. Nothing here changes protocol state.
//!
//! Why the limits: a client port faces anything that can connect. Each connection is bounded
//! (`client_query_buffer_limit`, and the parser's `proto_max_bulk_len` and `max_multibulk_len`),
//! the connections together are bounded (`query_buffer_total`: bytes read but not yet parsed
//! into a command, across all connections), and so are their number (`maxclients`) and their
//! idleness (`timeout`). A connection over a limit gets an error reply and is closed.
//!
//! Bad requests: where framing can be recovered (the bad request is one whole line) the client
//! gets an error reply and the connection lives; otherwise the error reply is followed by a
//! close, as Redis always does (request.rs lists which is which).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use anyhow::Result;
use bytes::BytesMut;
use slotguard::data::dataset::{Dataset, ReplId};
use slotguard::data::replication::good_replicas;
use slotguard_protocol::{ClusterNode, NodeId, Role};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Notify};
use tracing::debug;

use super::commands::{self, Session, Then};
use super::config::{ClientLimits, NodeConfig};
use super::format::{Replication, ServerStats};
use super::replication;
use super::reply::Reply;
use super::request::{Limits, Parser};
use super::{Operator, OwnerRequest, Shared};

/// Bytes read from a socket at once: the most a connection can overshoot its budget by.
const READ_CHUNK: usize = 16 * 1024;

/// Replies are flushed once this many bytes wait (pipelined requests are answered in batches).
const FLUSH_AT: usize = 64 * 1024;

/// Bytes of changes a master keeps for replicas that fall behind (Redis's `repl-backlog-size`).
const BACKLOG: usize = 1 << 20;

/// A replica attached to this node, as `INFO`, `WAIT` and `min_replicas_to_write` see it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Attached {
    /// Where it connects from.
    pub(crate) addr: Option<SocketAddr>,
    /// Which node it is, if it said (`PSYNC`).
    pub(crate) node: Option<NodeId>,
    /// The offset it last said it has applied.
    pub(crate) acked: u64,
    /// When it last said so.
    pub(crate) acked_at: Instant,
}

/// How replicas attached (`INFO stats`: Redis's `sync_full`, `sync_partial_ok`).
#[derive(Debug, Default)]
pub(crate) struct SyncCounts {
    /// Replicas sent a full copy.
    pub(crate) full: AtomicU64,
    /// Replicas that continued from their offset.
    pub(crate) partial: AtomicU64,
    /// Replicas that asked to continue and were sent a full copy instead.
    pub(crate) refused: AtomicU64,
}

/// What every connection shares.
pub(crate) struct Server {
    pub(crate) config: Arc<NodeConfig>,
    /// The protocol's actor, asked where each key command goes (keys.rs).
    pub(crate) actor: ClusterNode,
    pub(crate) shared: Shared,
    /// The node's role as the actor last published it (replication.rs follows its changes).
    pub(crate) roles: watch::Receiver<Role>,
    /// The node's keys and the stream of their changes, locked together: a write and its
    /// change enter the stream in the same order (keys.rs routes and runs the commands on
    /// them, replication.rs streams them).
    store: Mutex<Dataset>,
    /// How replicas attached.
    pub(crate) syncs: SyncCounts,
    /// Woken whenever a change enters the backlog (replication.rs).
    pub(crate) appended: Notify,
    /// Notified whenever a replica acknowledges an offset (`sync` writes wait on it).
    pub(crate) acked: Notify,
    /// Replicas attached, by connection id.
    replicas: Mutex<BTreeMap<u64, Attached>>,
    /// As a replica: the master offset applied, while the link to the master is up.
    link: Mutex<Option<u64>>,
    /// This node's replication offset for its bus headers (the shell reads it): the end of
    /// its stream as a master, what it has applied as a replica.
    pub(crate) repl_offset: Arc<AtomicU64>,
    /// Where operators' requests go (the node's owner task, shell.rs).
    operator: Operator,
    pub(crate) limits: ClientLimits,
    started: Instant,
    clients: AtomicUsize,
    next_id: AtomicU64,
    /// Bytes held unparsed by all connections.
    buffered: AtomicUsize,
}

impl Server {
    /// Figures for `INFO`.
    pub(crate) fn stats(&self) -> ServerStats {
        let (keys, expiring, dataset) = self.lock_store().map_or((0, 0, 0), |s| {
            (s.keys.len(), s.keys.expiring(), s.keys.used_memory())
        });
        ServerStats {
            uptime_secs: self.started.elapsed().as_secs(),
            connected_clients: self.clients.load(Ordering::Relaxed),
            maxclients: self.limits.maxclients,
            query_buffers: self.buffered.load(Ordering::Relaxed),
            used_memory: resident_bytes(),
            replication: self.replication(),
            keys: (keys, expiring),
            dataset: (dataset, self.limits.maxmemory),
        }
    }

    fn replication(&self) -> Replication {
        let link = self.link();
        let now = Instant::now();
        let replicas = self.attached();
        let mut r = Replication {
            replicas: replicas
                .iter()
                .map(|r| (r.addr, r.acked, now.duration_since(r.acked_at).as_secs()))
                .collect(),
            link_up: link.is_some(),
            good_replicas: (self.limits.min_replicas_to_write > 0).then(|| self.good_replicas()),
            syncs: (
                self.syncs.full.load(Ordering::Relaxed),
                self.syncs.partial.load(Ordering::Relaxed),
                self.syncs.refused.load(Ordering::Relaxed),
            ),
            ..Replication::default()
        };
        if let Ok(data) = self.lock_store() {
            r.offset = data.offset();
            r.id = data.id().to_string();
            r.previous = data.previous().map(|(id, at)| (id.to_string(), at));
            r.backlog = (
                data.log.start(),
                data.log.end() - data.log.start(),
                data.log.capacity(),
            );
        }
        r
    }

    /// Before the first write a promoted node accepts: it stops following its old master and
    /// names its own stream (`Dataset::promote`), so that no write of its own is taken for one
    /// of the old master's (specs/protocol.md §11.1). The runtime also does this as soon as it
    /// sees the promotion (replication.rs); whichever comes first.
    pub(crate) fn start_own_stream(&self, data: &mut Dataset) -> Result<()> {
        if data.upstream().is_some() {
            data.promote(ReplId::random()?);
        }
        Ok(())
    }

    /// Hands an operator's `CLUSTER FAILOVER` to the node's owner task and returns its answer.
    pub(crate) async fn failover(&self, mode: slotguard_protocol::FailoverMode) -> Reply {
        self.ask_owner(|answer| OwnerRequest::Failover { mode, answer })
            .await
    }

    /// Hands an operator's command to the node's owner task (the request `make` builds around
    /// the answer's channel) and replies with the actor's verdict.
    async fn ask_owner<E: std::fmt::Display>(
        &self,
        make: impl FnOnce(tokio::sync::oneshot::Sender<Result<(), E>>) -> OwnerRequest,
    ) -> Reply {
        let (answer, answered) = tokio::sync::oneshot::channel();
        if self.operator.send(make(answer)).await.is_err() {
            return Reply::error("ERR the node is shutting down");
        }
        match answered.await {
            Ok(Ok(())) => Reply::ok(),
            Ok(Err(refused)) => Reply::error(format!("ERR {refused}")),
            Err(_) => Reply::error("ERR the node is shutting down"),
        }
    }

    /// Tells the node's owner task that a full copy of the master's data was applied.
    pub(crate) async fn copied(&self) {
        let _ = self.operator.send(OwnerRequest::Copied).await;
    }

    /// Hands an operator's `CLUSTER ACCEPT-DATA-LOSS` to the node's owner task.
    pub(crate) async fn accept_data_loss(&self) -> Reply {
        self.ask_owner(|answer| OwnerRequest::AcceptDataLoss { answer })
            .await
    }

    /// Tells the node's owner task that its master offered an empty copy over its data.
    pub(crate) async fn master_recreated(&self) {
        let _ = self.operator.send(OwnerRequest::MasterRecreated).await;
    }

    /// Replicas that acknowledged the stream within `min_replicas_max_lag` seconds.
    pub(crate) fn good_replicas(&self) -> usize {
        let max_lag = Duration::from_secs(self.limits.min_replicas_max_lag);
        let acks = self.attached().into_iter().map(|r| r.acked_at);
        good_replicas(acks, Instant::now(), max_lag)
    }

    /// Whether a master may accept a write now as far as its replicas go (Redis's
    /// `min-replicas-to-write`; off when it or `min_replicas_max_lag` is 0).
    pub(crate) fn enough_replicas(&self) -> bool {
        let (min, lag) = (
            self.limits.min_replicas_to_write,
            self.limits.min_replicas_max_lag,
        );
        min == 0 || lag == 0 || self.good_replicas() >= min
    }
}

/// The resident set size of this process (`VmRSS` of /proc/self/status), 0 if unknown.
fn resident_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

impl Server {
    /// The keys and the backlog, locked.
    pub(crate) fn lock_store(&self) -> anyhow::Result<MutexGuard<'_, Dataset>> {
        self.store
            .lock()
            .map_err(|_| anyhow::anyhow!("the keyspace lock is poisoned"))
    }

    /// Replica `id` (a connection) has applied the stream up to `offset`.
    pub(crate) fn replica_acked(
        &self,
        id: u64,
        addr: Option<SocketAddr>,
        node: Option<NodeId>,
        offset: u64,
    ) {
        if let Ok(mut replicas) = self.replicas.lock() {
            replicas.insert(
                id,
                Attached {
                    addr,
                    node,
                    acked: offset,
                    acked_at: Instant::now(),
                },
            );
        }
        self.acked.notify_waiters();
    }

    /// Replica `id` is gone.
    pub(crate) fn replica_gone(&self, id: u64) {
        if let Ok(mut replicas) = self.replicas.lock() {
            replicas.remove(&id);
        }
    }

    /// The replicas attached now.
    pub(crate) fn attached(&self) -> Vec<Attached> {
        self.replicas
            .lock()
            .map(|r| r.values().copied().collect())
            .unwrap_or_default()
    }

    /// How far `node` has confirmed this node's stream: its attached link's last
    /// acknowledgement, or 0 if it is not attached.
    pub(crate) fn confirmed_by(&self, node: NodeId) -> u64 {
        self.attached()
            .iter()
            .filter(|r| r.node == Some(node))
            .map(|r| r.acked)
            .max()
            .unwrap_or(0)
    }

    /// Whether a write could be confirmed now (specs/protocol.md §13): in `sync` mode, every
    /// other node of the shard has a replication link attached that acknowledged within half
    /// a node_timeout (a replica acknowledges every node_timeout / 8, `replication::ack_every`:
    /// one that is silent longer is hung or cut off); otherwise the write could only time out,
    /// so it is refused.
    pub(crate) fn can_confirm(&self, state: &slotguard_protocol::NodeState) -> bool {
        let fresh = self.config.timing.node_timeout / 2;
        let attached = self.attached();
        self.actor.can_confirm(state, |n| {
            attached
                .iter()
                .any(|r| r.node == Some(n) && r.acked_at.elapsed() < fresh)
        })
    }

    /// How many attached replicas have applied the stream up to `offset` (`WAIT`).
    pub(crate) fn replicas_at(&self, offset: u64) -> usize {
        self.attached().iter().filter(|r| r.acked >= offset).count()
    }

    /// As a replica: the link to the master is up with `offset` applied, or down.
    pub(crate) fn set_link(&self, offset: Option<u64>) {
        if let Ok(mut link) = self.link.lock() {
            *link = offset;
        }
    }

    /// As a replica: the offset applied, if the link to the master is up.
    pub(crate) fn link(&self) -> Option<u64> {
        self.link.lock().ok().and_then(|l| *l)
    }

    /// What the client port (and the metrics endpoint) serve from; `started` is now, and the
    /// keys are none, at the start of a new stream.
    pub(crate) fn new(
        config: Arc<NodeConfig>,
        shared: Shared,
        repl_offset: Arc<AtomicU64>,
        operator: Operator,
        roles: watch::Receiver<Role>,
    ) -> Result<Arc<Server>> {
        Ok(Arc::new(Server {
            actor: ClusterNode::new(Arc::clone(&config.layout), config.timing)
                .with_durability(config.durability),
            limits: config.clients,
            config,
            shared,
            roles,
            store: Mutex::new(Dataset::new(ReplId::random()?, BACKLOG)),
            syncs: SyncCounts::default(),
            appended: Notify::new(),
            acked: Notify::new(),
            replicas: Mutex::new(BTreeMap::new()),
            link: Mutex::new(None),
            repl_offset,
            operator,
            started: Instant::now(),
            clients: AtomicUsize::new(0),
            next_id: AtomicU64::new(1),
            buffered: AtomicUsize::new(0),
        }))
    }
}

/// Serves clients on `listener` until the task is dropped.
pub(crate) async fn serve(listener: TcpListener, server: Arc<Server>) {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                // Admission is decided here, in the order connections arrive, so that a later
                // connection never takes a place an earlier one was refused.
                let admitted = Admitted::new(&server);
                tokio::spawn(async move {
                    if let Err(e) = serve_or_refuse(stream, admitted).await {
                        debug!(%peer, error = %e, "client connection ended");
                    }
                });
            }
            // Out of file descriptors (or another transient failure): the pending connection
            // stays queued, so retrying at once would spin; wait a little, as Redis's event
            // loop does until a descriptor is free.
            Err(e) => {
                warn_accept_failure(&e);
                tokio::time::sleep(ACCEPT_BACKOFF).await;
            }
        }
    }
}

/// How long the accept loop waits after a failed accept.
const ACCEPT_BACKOFF: std::time::Duration = std::time::Duration::from_millis(100);

/// Logs a failed accept, at most once a minute (a node out of descriptors fails every accept).
fn warn_accept_failure(e: &std::io::Error) {
    static LAST: std::sync::Mutex<Option<std::time::Instant>> = std::sync::Mutex::new(None);
    let Ok(mut last) = LAST.lock() else { return };
    if last.is_none_or(|t| t.elapsed() >= std::time::Duration::from_secs(60)) {
        *last = Some(std::time::Instant::now());
        tracing::warn!(error = %e, "cannot accept client connections (file descriptors exhausted? see maxclients in the README)");
    }
}

/// Counts a connection in `clients` for as long as it lives.
struct Admitted(Arc<Server>);

impl Admitted {
    /// A place within `maxclients`, or `Err` with the server if there is none. Only the accept
    /// loop takes places, so the check and the count cannot interleave with another admission.
    fn new(server: &Arc<Server>) -> Result<Admitted, Arc<Server>> {
        if server.clients.load(Ordering::Relaxed) >= server.limits.maxclients {
            return Err(Arc::clone(server));
        }
        server.clients.fetch_add(1, Ordering::Relaxed);
        Ok(Admitted(Arc::clone(server)))
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        self.0.clients.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Serves an admitted connection, or tells a refused one no.
async fn serve_or_refuse(
    mut stream: TcpStream,
    admitted: Result<Admitted, Arc<Server>>,
) -> Result<()> {
    let Ok(admitted) = admitted else {
        stream
            .write_all(b"-ERR max number of clients reached\r\n")
            .await?;
        linger(&mut stream, &mut [0u8; 1024]).await;
        return Ok(());
    };
    let id = admitted.0.next_id.fetch_add(1, Ordering::Relaxed);
    connection(stream, &admitted.0, id).await
}

/// This connection's share of `Server::buffered`, given back when it ends.
struct Held<'a> {
    server: &'a Server,
    bytes: usize,
}

impl Held<'_> {
    /// Sets the share to `bytes`; false (and unchanged) if that would exceed the total.
    fn set(&mut self, bytes: usize) -> bool {
        if bytes > self.bytes {
            let more = bytes - self.bytes;
            let before = self.server.buffered.fetch_add(more, Ordering::Relaxed);
            if before + more > self.server.limits.query_buffer_total {
                self.server.buffered.fetch_sub(more, Ordering::Relaxed);
                return false;
            }
        } else {
            let less = self.bytes - bytes;
            self.server.buffered.fetch_sub(less, Ordering::Relaxed);
        }
        self.bytes = bytes;
        true
    }
}

impl Held<'_> {
    /// Holds `pending` bytes for this connection, within its own limit and the total; the
    /// error reply if either would be exceeded.
    fn take(&mut self, pending: usize) -> Result<(), Reply> {
        if pending > self.server.limits.query_buffer {
            return Err(Reply::error(
                "ERR query buffer limit reached (client_query_buffer_limit): closing",
            ));
        }
        if !self.set(pending) {
            return Err(Reply::error(
                "ERR the query buffers of all clients are at the node's limit (query_buffer_total): closing",
            ));
        }
        Ok(())
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.server
            .buffered
            .fetch_sub(self.bytes, Ordering::Relaxed);
    }
}

/// Why a connection stops reading.
enum Stop {
    /// Reply with this, then close.
    Refuse(Reply),
    /// Close without a word (end of stream, idle timeout, QUIT already answered).
    Close,
}

async fn connection(mut stream: TcpStream, server: &Server, id: u64) -> Result<()> {
    let mut session = Session::new(id);
    let mut parser = Parser::new(Limits {
        max_bulk_len: server.limits.max_bulk_len,
        max_multibulk_len: server.limits.max_multibulk_len,
    });
    let mut buf = BytesMut::new();
    let mut held = Held { server, bytes: 0 };
    let mut chunk = vec![0u8; READ_CHUNK];
    let mut out = Vec::new();
    let stop = loop {
        let mut conn = Conn {
            session: &mut session,
            parser: &mut parser,
            buf: &mut buf,
            held: &mut held,
        };
        let batch = conn.answer_all(server, &mut out);
        if let Batch::Stop(stop) = batch {
            break stop;
        }
        stream.write_all(&out).await?;
        out.clear();
        match batch {
            Batch::Flush => continue,
            Batch::Replicate(hello) => return replication::feed(stream, server, id, hello).await,
            Batch::Failover(mode) => {
                let reply = server.failover(mode).await;
                out.extend_from_slice(&reply.encode(session.protocol));
                continue;
            }
            Batch::AcceptDataLoss => {
                let reply = server.accept_data_loss().await;
                out.extend_from_slice(&reply.encode(session.protocol));
                continue;
            }
            Batch::Confirm(reply) => {
                let reply = match confirm(server, session.last_write).await {
                    true => reply,
                    false => Reply::error(NOT_CONFIRMED),
                };
                out.extend_from_slice(&reply.encode(session.protocol));
                continue;
            }
            Batch::Wait { replicas, timeout } => {
                let acked = wait(server, session.last_write, replicas, timeout).await;
                let reply = Reply::Int(i64::try_from(acked).unwrap_or(i64::MAX));
                out.extend_from_slice(&reply.encode(session.protocol));
                continue;
            }
            Batch::Read | Batch::Stop(_) => {}
        }
        let n = match read(&mut stream, &mut chunk, server.limits.timeout_secs).await? {
            0 => break Stop::Close,
            n => n,
        };
        if let Err(refusal) = held.take(buf.len() + parser.held() + n) {
            break Stop::Refuse(refusal);
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    if let Stop::Refuse(reply) = stop {
        out.extend_from_slice(&reply.encode(session.protocol));
        stream.write_all(&out).await?;
        linger(&mut stream, &mut chunk).await;
        return Ok(());
    }
    stream.write_all(&out).await?;
    Ok(())
}

/// Bytes, and time, a refused connection is drained for before it is closed.
const LINGER_BYTES: usize = 1 << 20;
const LINGER: Duration = Duration::from_secs(2);

/// Ends a refused connection so that its error reply arrives: closing a socket with unread
/// input makes the kernel send a reset, which may destroy the reply before the client reads
/// it. So the write side is shut first, then what the client still sends is read and dropped,
/// within [`LINGER_BYTES`] and [`LINGER`].
async fn linger(stream: &mut TcpStream, chunk: &mut [u8]) {
    let _ = stream.shutdown().await;
    let drain = async {
        let mut drained = 0;
        while drained < LINGER_BYTES {
            match stream.read(chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => drained += n,
            }
        }
    };
    let _ = tokio::time::timeout(LINGER, drain).await;
}

/// Reads what has arrived, waiting at most `timeout_secs` (0: forever); 0 at the end of the
/// stream or on timeout.
async fn read(stream: &mut TcpStream, chunk: &mut [u8], timeout_secs: u64) -> Result<usize> {
    if timeout_secs == 0 {
        return Ok(stream.read(chunk).await?);
    }
    match tokio::time::timeout(Duration::from_secs(timeout_secs), stream.read(chunk)).await {
        Ok(n) => Ok(n?),
        Err(_) => Ok(0),
    }
}

/// How a batch of answers ended.
enum Batch {
    /// Every complete request was answered: read more.
    Read,
    /// Replies are piling up: write them, then answer the rest.
    Flush,
    /// The connection must stop.
    Stop(Stop),
    /// The client is a replica (`SYNC`, `PSYNC`): the connection becomes its replication
    /// stream, from the stream and offset it asked for if it can.
    Replicate(super::commands::ReplicaHello),
    /// `CLUSTER FAILOVER`: answer once the node's owner task has run it.
    Failover(slotguard_protocol::FailoverMode),
    /// A write in `sync` mode: this reply once it is confirmed (specs/protocol.md §13).
    Confirm(Reply),
    /// `CLUSTER ACCEPT-DATA-LOSS`: answer once the node's owner task has run it.
    AcceptDataLoss,
    /// `WAIT`: answer once enough replicas have this client's writes, or at the timeout.
    Wait {
        /// Replicas wanted.
        replicas: usize,
        /// How long to wait at most; `None`: forever.
        timeout: Option<Duration>,
    },
}

/// The error a `sync` write gets when the other nodes of its shard did not confirm it in time.
/// It was applied here: it may yet reach them and stay, or vanish in a failover.
const NOT_CONFIRMED: &str = "NOTCONFIRMED The write was applied on the master, but not every replica of its shard confirmed it within node_timeout: it may be kept or lost";

/// Waits until the actor may acknowledge this node's stream up to `offset`, as far as the other
/// nodes of the shard confirmed it, or node_timeout passes (specs/protocol.md §13).
async fn confirm(server: &Server, offset: u64) -> bool {
    let deadline = tokio::time::Instant::now() + server.config.timing.node_timeout;
    loop {
        let acked = server.acked.notified();
        let confirmed = server.shared.read().is_ok_and(|s| {
            server
                .actor
                .may_acknowledge(&s.state, offset, |n| server.confirmed_by(n))
        });
        if confirmed {
            return true;
        }
        tokio::select! {
            _ = acked => {}
            _ = tokio::time::sleep_until(deadline) => return false,
            // The state can change (a demotion) without an acknowledgement.
            _ = tokio::time::sleep(WAIT_POLL) => {}
        }
    }
}

/// How often `WAIT` looks at the replicas' offsets.
const WAIT_POLL: Duration = Duration::from_millis(5);

/// Waits until `replicas` replicas have applied the stream up to `offset`, or `timeout`;
/// returns how many have (Redis's `WAIT`).
async fn wait(server: &Server, offset: u64, replicas: usize, timeout: Option<Duration>) -> usize {
    let deadline = timeout.map(|t| Instant::now() + t);
    loop {
        let acked = server.replicas_at(offset);
        if acked >= replicas || deadline.is_some_and(|d| Instant::now() >= d) {
            return acked;
        }
        tokio::time::sleep(WAIT_POLL).await;
    }
}

/// A connection's request state, borrowed for a batch of answers.
struct Conn<'a, 'b> {
    session: &'a mut Session,
    parser: &'a mut Parser,
    buf: &'a mut BytesMut,
    held: &'a mut Held<'b>,
}

impl Conn<'_, '_> {
    /// Answers the complete requests in `buf` into `out`.
    fn answer_all(&mut self, server: &Server, out: &mut Vec<u8>) -> Batch {
        while out.len() < FLUSH_AT {
            let next = self.parser.next(self.buf);
            // What the parser consumed is no longer held (before the command: INFO shows it).
            self.held.set(self.buf.len() + self.parser.held());
            match next {
                Ok(Some(args)) => {
                    let outcome = commands::answer(server, self.session, &args);
                    match outcome.then {
                        Then::Replicate(hello) => return Batch::Replicate(hello),
                        Then::Failover(mode) => return Batch::Failover(mode),
                        Then::Wait { replicas, timeout } => {
                            return Batch::Wait { replicas, timeout }
                        }
                        Then::Confirm => return Batch::Confirm(outcome.reply),
                        Then::AcceptDataLoss => return Batch::AcceptDataLoss,
                        Then::Nothing => {}
                    }
                    out.extend_from_slice(&outcome.reply.encode(self.session.protocol));
                    if outcome.close {
                        return Batch::Stop(Stop::Close);
                    }
                }
                Ok(None) => return Batch::Read,
                Err(e) => {
                    let reply = Reply::error(format!("ERR {e}"));
                    if !e.recoverable() {
                        return Batch::Stop(Stop::Refuse(reply));
                    }
                    out.extend_from_slice(&reply.encode(self.session.protocol));
                }
            }
        }
        Batch::Flush
    }
}
