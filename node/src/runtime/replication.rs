//! Replication on the client port (specs/protocol.md §11.1): a replica connects to its master's
//! client port and sends `PSYNC <stream> <offset>`; the master lets it continue from there if
//! it can, and otherwise sends a full copy of its keys (`Dataset::answer_sync` decides), then
//! every change (`slotguard::data::replication`). The replica sends back the offset it has
//! applied, after every batch it applies and every [`ack_every`], which `WAIT` and
//! `min_replicas_to_write` count.
//!
//! Nothing here polls: a master's stream wakes when a change enters its backlog, a replica's
//! link when bytes arrive, when its acknowledgement is due or when its role changes. An idle
//! node is woken by its bus, not by timers (specs/performance.md §2).
//!
//! Who replicates whom is the protocol's decision, read from the published node state: a node
//! follows the master its state names, stops when it is promoted (and names its own stream),
//! and follows again when its state names another master, as an old master does when it
//! rejoins as a replica of the winner: it continues if its keys are a prefix of the winner's,
//! and otherwise gets a full copy that drops the writes the winner never had.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use slotguard::data::dataset::SyncAnswer;
use slotguard::data::replication::Follower;
use slotguard_protocol::{NodeId, Role};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tracing::{debug, info};

use super::admin::Server;
use super::commands::ReplicaHello;
use super::config::Host;
use super::keys::unix_ms;

/// How long a replica waits before it connects again after its link broke.
const RECONNECT: Duration = Duration::from_millis(100);

/// How often a master's stream looks at its backlog without being woken: every change that
/// enters it wakes the stream, so this only bounds the cost of a missed wake-up.
const RECHECK: Duration = Duration::from_secs(1);

/// How often a replica reports its offset when it has applied nothing new: eight times per
/// node_timeout, so that `sync` mode, which takes a replica silent for half a node_timeout for
/// hung (`Server::can_confirm`), sees at least four acknowledgements in that window; at least every
/// 100 ms and at most every second (Redis's `REPLCONF ACK` period).
pub(crate) fn ack_every(node_timeout: Duration) -> Duration {
    (node_timeout / 8).clamp(Duration::from_millis(100), Duration::from_secs(1))
}

/// Serves a replica on `stream` (it sent `SYNC` or `PSYNC`, asking to continue stream `asked`)
/// until it goes away or falls out of the backlog.
pub(crate) async fn feed(
    mut stream: TcpStream,
    server: &Server,
    id: u64,
    hello: ReplicaHello,
) -> anyhow::Result<()> {
    let (asked, node) = (hello.asked, hello.node);
    let peer = stream.peer_addr().ok();
    if !serves_copies(server) {
        // A master that restarted without its data in `sync` mode has nothing a replica may
        // take for complete (specs/protocol.md §13, rule 3); the replica asks again later.
        stream
            .write_all(b"-LOADING This master restarted without its data; no copies\r\n")
            .await?;
        return Ok(());
    }
    // Only the list of keys is taken under the lock; the copy is encoded after it is released.
    let started = std::time::Instant::now();
    let answer = {
        let mut data = server.lock_store()?;
        // A node promoted a moment ago streams under its own name from its first replica on,
        // not only from its first write.
        if master_of(server).is_none() {
            server.start_own_stream(&mut data)?;
        }
        data.answer_sync(asked, unix_ms())
    };
    let locked_ms = started.elapsed().as_millis();
    let full = matches!(answer, SyncAnswer::Full { .. });
    count_sync(server, asked.is_some(), full);
    // A full copy is encoded on the blocking pool: the data-plane thread keeps answering its
    // clients meanwhile.
    let (frames, mut offset) = tokio::task::spawn_blocking(move || answer.into_frames()).await?;
    let (bytes, encoded_ms) = (frames.len(), started.elapsed().as_millis());
    stream.write_all(&frames).await?;
    server.replica_acked(id, peer, node, 0);
    info!(replica = ?peer, offset, full, bytes, locked_ms, encoded_ms, "replica attached");
    let result = stream_changes(&mut stream, server, id, (peer, node), &mut offset).await;
    server.replica_gone(id);
    info!(replica = ?peer, "replica detached");
    result
}

/// Counts how a replica attached, for `INFO stats`.
fn count_sync(server: &Server, asked: bool, full: bool) {
    let counter = match (asked, full) {
        (_, false) => &server.syncs.partial,
        (true, true) => {
            server.syncs.refused.fetch_add(1, Ordering::Relaxed);
            &server.syncs.full
        }
        (false, true) => &server.syncs.full,
    };
    counter.fetch_add(1, Ordering::Relaxed);
}

async fn stream_changes(
    stream: &mut TcpStream,
    server: &Server,
    id: u64,
    (peer, node): (Option<SocketAddr>, Option<NodeId>),
    offset: &mut u64,
) -> anyhow::Result<()> {
    let mut acks = [0u8; 64];
    let mut pending = Vec::new();
    loop {
        let appended = server.appended.notified();
        let changes = server.lock_store()?.log.since(*offset);
        let Some(changes) = changes else {
            anyhow::bail!("replica fell out of the backlog: it will resync");
        };
        if !changes.is_empty() {
            stream.write_all(&changes).await?;
            *offset += changes.len() as u64;
            continue;
        }
        tokio::select! {
            _ = appended => {}
            _ = tokio::time::sleep(RECHECK) => {}
            read = stream.read(&mut acks) => match read? {
                0 => return Ok(()),
                n => {
                    pending.extend_from_slice(&acks[..n]);
                    while pending.len() >= 8 {
                        let ack: [u8; 8] = pending[..8].try_into()?;
                        pending.drain(..8);
                        server.replica_acked(id, peer, node, u64::from_be_bytes(ack));
                    }
                }
            },
        }
    }
}

/// Follows the master the node state names, for as long as the node runs.
pub(crate) async fn follow_forever(server: Arc<Server>) {
    let mut roles = server.roles.clone();
    loop {
        let Some(master) = master_in(*roles.borrow_and_update()) else {
            if let Err(e) = promoted(&server) {
                info!(error = %e, "cannot start this node's own stream");
            }
            if roles.changed().await.is_err() {
                return; // The node is stopping.
            }
            continue;
        };
        match follow(&server, master, &mut roles).await {
            Ok(()) => debug!(master = master.index(), "stopped following"),
            Err(e) => info!(master = master.index(), error = %e, "replication link down"),
        }
        server.set_link(None);
        tokio::time::sleep(RECONNECT).await;
    }
}

/// The node is a master: it stops following, if it still did.
fn promoted(server: &Server) -> anyhow::Result<()> {
    server.start_own_stream(&mut *server.lock_store()?)
}

/// Whether `e` is the refusal of an empty copy over this node's data (§13.1).
fn is_empty_copy(e: &anyhow::Error) -> bool {
    matches!(
        e.downcast_ref::<slotguard::data::replication::StreamError>(),
        Some(slotguard::data::replication::StreamError::EmptyCopy(_))
    )
}

/// Whether this node may give a replica a copy now (the actor's rule).
fn serves_copies(server: &Server) -> bool {
    server
        .shared
        .read()
        .is_ok_and(|s| server.actor.serves_copies(&s.state))
}

/// Whether this node lost its data and holds no complete copy yet (`sync` mode).
fn data_incomplete(server: &Server) -> bool {
    server.shared.read().is_ok_and(|s| !s.state.data.complete)
}

/// The master this node replicates, if it is a replica.
fn master_of(server: &Server) -> Option<NodeId> {
    master_in(*server.roles.borrow())
}

/// The master a node of `role` replicates, if any.
fn master_in(role: Role) -> Option<NodeId> {
    match role {
        Role::Replica { of } => Some(of),
        Role::Master => None,
    }
}

/// Replicates `master` until the node stops following it (its role, from `roles`, changes) or
/// the link breaks.
async fn follow(
    server: &Server,
    master: NodeId,
    roles: &mut watch::Receiver<Role>,
) -> anyhow::Result<()> {
    let address = client_address(server, master).await?;
    let mut stream =
        tokio::time::timeout(Duration::from_secs(1), TcpStream::connect(address)).await??;
    let asked = server.lock_store()?.follow(master);
    let (id, offset) = asked.map_or(("?".to_string(), "-1".to_string()), |(id, offset)| {
        (id.to_string(), offset.to_string())
    });
    let me = server.config.id.to_string();
    let psync = format!(
        "*4\r\n$5\r\nPSYNC\r\n${}\r\n{id}\r\n${}\r\n{offset}\r\n${}\r\n{me}\r\n",
        id.len(),
        offset.len(),
        me.len()
    );
    stream.write_all(psync.as_bytes()).await?;
    let mut follower = Follower::new(server.actor.durability);
    let mut chunk = vec![0u8; 64 * 1024];
    let mut tick = tokio::time::interval(ack_every(server.config.timing.node_timeout));
    loop {
        tokio::select! {
            read = stream.read(&mut chunk) => {
                let n = read?;
                if n == 0 {
                    anyhow::bail!("the master closed the link");
                }
                let applied = match apply(server, master, &mut follower, &chunk[..n]) {
                    Err(e) if is_empty_copy(&e) => {
                        server.master_recreated().await;
                        return Err(e);
                    }
                    other => other?,
                };
                let Some(applied) = applied else {
                    return Ok(());
                };
                // A node that lost its data holds its shard's writes again once it has a
                // whole copy (specs/protocol.md §13): the actor hears of it.
                if follower.synced() && data_incomplete(server) {
                    server.copied().await;
                }
                // Acknowledge at once what was applied, so that WAIT takes a round trip.
                if let Some(offset) = applied {
                    stream.write_all(&offset.to_be_bytes()).await?;
                }
            }
            changed = roles.changed() => {
                if changed.is_err() || master_in(*roles.borrow_and_update()) != Some(master) {
                    return Ok(());
                }
            }
            _ = tick.tick() => {
                if follower.synced() {
                    let offset = server.lock_store()?.offset();
                    server.set_link(Some(offset));
                    stream.write_all(&offset.to_be_bytes()).await?;
                }
            }
        }
    }
}

/// Applies `bytes` from `master`, unless the node no longer follows it (`None`: it was
/// promoted, or follows another master). Returns the offset now applied if it moved.
fn apply(
    server: &Server,
    master: NodeId,
    follower: &mut Follower,
    bytes: &[u8],
) -> anyhow::Result<Option<Option<u64>>> {
    let mut data = server.lock_store()?;
    if data.upstream() != Some(master) {
        return Ok(None);
    }
    let before = (follower.synced(), data.offset());
    follower.receive(bytes, &mut data)?;
    // What this node applied is in its own backlog too: a node that takes it for a master
    // (its view is behind) is streamed it.
    server.appended.notify_waiters();
    let now = (follower.synced(), data.offset());
    // A replica in the middle of a copy holds no prefix of any stream: it advertises 0, so
    // that the election ranks it last.
    let advertised = if now.0 { now.1 } else { 0 };
    server.repl_offset.store(advertised, Ordering::Relaxed);
    if !now.0 {
        return Ok(Some(None));
    }
    server.set_link(Some(now.1));
    Ok(Some((now != before).then_some(now.1)))
}

/// `master`'s client address, its host name looked up if it is one.
async fn client_address(server: &Server, master: NodeId) -> anyhow::Result<SocketAddr> {
    let endpoint = &server.config.nodes[master.index()].client;
    match &endpoint.host {
        Host::Ip(ip) => Ok(SocketAddr::new(*ip, endpoint.port)),
        Host::Name(name) => tokio::net::lookup_host((name.as_str(), endpoint.port))
            .await?
            .next()
            .ok_or_else(|| anyhow::anyhow!("{name} does not resolve")),
    }
}
