//! Replication on the client port (specs/protocol.md §11.1): a replica connects to its master's
//! client port and sends `SYNC`; the master answers with a full copy of its keys and then every
//! change (`slotguard::data::replication`), and the replica sends back the offset it has
//! applied, after every batch it applies and every 100 ms, which `WAIT` counts.
//!
//! Who replicates whom is the protocol's decision, read from the published node state: a node
//! follows the master its state names, stops when it is promoted, and starts again (with a new
//! full copy, dropping whatever it had) when it follows another master, as an old master does
//! when it rejoins as a replica of the winner.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use slotguard::data::replication::{full_copy, Follower};
use slotguard_protocol::{NodeId, Role};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tracing::{debug, info};

use super::admin::Server;
use super::config::Host;
use super::keys::unix_ms;

/// How often a replica reports its offset, and a master looks for changes it did not hear of.
const TICK: Duration = Duration::from_millis(100);

/// Serves a replica on `stream` (it sent `SYNC`) until it goes away or falls out of the backlog.
pub(crate) async fn feed(mut stream: TcpStream, server: &Server, id: u64) -> anyhow::Result<()> {
    let peer = stream.peer_addr().ok();
    let (copy, mut offset) = {
        let store = server.lock_store()?;
        let offset = store.log.end();
        (full_copy(&store.keys, offset, unix_ms()), offset)
    };
    stream.write_all(&copy).await?;
    server.replica_acked(id, peer, 0);
    info!(replica = ?peer, offset, "replica attached: full copy sent");
    let result = stream_changes(&mut stream, server, id, peer, &mut offset).await;
    server.replica_gone(id);
    info!(replica = ?peer, "replica detached");
    result
}

async fn stream_changes(
    stream: &mut TcpStream,
    server: &Server,
    id: u64,
    peer: Option<SocketAddr>,
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
            _ = tokio::time::sleep(TICK) => {}
            read = stream.read(&mut acks) => match read? {
                0 => return Ok(()),
                n => {
                    pending.extend_from_slice(&acks[..n]);
                    while pending.len() >= 8 {
                        let ack: [u8; 8] = pending[..8].try_into()?;
                        pending.drain(..8);
                        server.replica_acked(id, peer, u64::from_be_bytes(ack));
                    }
                }
            },
        }
    }
}

/// Follows the master the node state names, for as long as the node runs.
pub(crate) async fn follow_forever(server: Arc<Server>) {
    loop {
        let Some(master) = master_of(&server) else {
            tokio::time::sleep(TICK).await;
            continue;
        };
        match follow(&server, master).await {
            Ok(()) => debug!(master = master.index(), "stopped following"),
            Err(e) => info!(master = master.index(), error = %e, "replication link down"),
        }
        server.set_link(None);
        tokio::time::sleep(TICK).await;
    }
}

/// The master this node replicates, if it is a replica.
fn master_of(server: &Server) -> Option<NodeId> {
    match server.shared.read().ok()?.state.role {
        Role::Replica { of } => Some(of),
        Role::Master => None,
    }
}

/// Replicates `master` until the node stops following it or the link breaks.
async fn follow(server: &Server, master: NodeId) -> anyhow::Result<()> {
    let address = client_address(server, master).await?;
    let mut stream =
        tokio::time::timeout(Duration::from_secs(1), TcpStream::connect(address)).await??;
    stream.write_all(b"*1\r\n$4\r\nSYNC\r\n").await?;
    let mut follower = Follower::default();
    let mut chunk = vec![0u8; 64 * 1024];
    let mut tick = tokio::time::interval(TICK);
    loop {
        tokio::select! {
            read = stream.read(&mut chunk) => {
                let n = read?;
                if n == 0 {
                    anyhow::bail!("the master closed the link");
                }
                let before = follower.offset();
                follower.receive(&chunk[..n], &mut server.lock_store()?.keys)?;
                // Acknowledge at once what was applied, so that WAIT takes a round trip.
                if let Some(offset) = follower.offset().filter(|o| Some(*o) != before) {
                    server.set_link(Some(offset));
                    server.repl_offset.store(offset, std::sync::atomic::Ordering::Relaxed);
                    stream.write_all(&offset.to_be_bytes()).await?;
                }
            }
            _ = tick.tick() => {
                if master_of(server) != Some(master) {
                    return Ok(());
                }
                if let Some(offset) = follower.offset() {
                    server.set_link(Some(offset));
                    stream.write_all(&offset.to_be_bytes()).await?;
                }
            }
        }
    }
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
