//! `slotguard node`: one deployable node — the model's actor behind a UDP cluster bus and a
//! RESP port, until SIGINT or SIGTERM.

use std::sync::Arc;

use anyhow::{Context, Result};
use tokio::net::{TcpListener, TcpSocket};
use tracing::info;

use crate::runtime::config::{NodeArgs, NodeConfig};
use crate::runtime::{admin, keys, metrics, replication, Runtime};

/// Runs `slotguard node`.
pub(crate) fn run(args: &NodeArgs) -> Result<()> {
    let mut config = NodeConfig::from_args(args)?;
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
    fit_clients_to_descriptors(&mut config)?;
    let config = Arc::new(config);
    // Two threads, each running one task queue (specs/performance.md §2, §4):
    // - the bus: the actor's step loop alone, woken by datagrams and its timers, so that no
    //   client command, lock or full copy delays a PONG past node_timeout;
    // - the data plane: clients, replication links and active expiry, on one thread as a Redis
    //   node's, handing each other work without waking another thread.
    // They meet only in the published snapshot, the role watch, the replication offset and
    // operators' requests, none of which a datagram or a client command wakes.
    let bus = single_threaded("bus")?;
    let data = single_threaded("data plane")?;
    let client = config.listen_on(&config.me().client);
    let listener = {
        let _runtime = data.enter();
        listen(client).with_context(|| format!("cannot listen for clients on {client}"))?
    };
    let (node, shared) = bus.block_on(Runtime::start(Arc::clone(&config)))?;
    info!(id = config.id, %client, bus = %config.me().bus, "serving");
    let server = admin::Server::new(
        Arc::clone(&config),
        shared,
        node.replication_offset(),
        node.operator(),
        node.roles(),
    )?;
    let (done, stopped) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("bus".into())
        .spawn(move || {
            let _ = done.send(bus.block_on(node.run(shutdown_signal())));
        })
        .context("cannot start the bus thread")?;
    data.block_on(async move {
        if let Some(port) = config.metrics_port {
            let addr = std::net::SocketAddr::new(client.ip(), port);
            metrics::serve(addr, Arc::clone(&server)).await?;
        }
        let expiry = tokio::spawn(keys::expire_forever(Arc::clone(&server)));
        let follower = tokio::spawn(replication::follow_forever(Arc::clone(&server)));
        let admin = tokio::spawn(admin::serve(listener, server));
        let result = stopped.await.context("the bus thread stopped");
        admin.abort();
        expiry.abort();
        follower.abort();
        result?
    })
}

/// A runtime that runs its tasks on the thread that drives it (blocking work goes to its pool).
fn single_threaded(name: &str) -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .with_context(|| format!("cannot start the {name} runtime"))
}

/// Connections the kernel queues for the client port before the node accepts them (Redis's
/// `tcp-backlog`): a burst of connecting clients must not wait for a retransmission.
const CLIENT_BACKLOG: u32 = 511;

fn listen(address: std::net::SocketAddr) -> std::io::Result<TcpListener> {
    let socket = match address {
        std::net::SocketAddr::V4(_) => TcpSocket::new_v4()?,
        std::net::SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    socket.bind(address)?;
    socket.listen(CLIENT_BACKLOG)
}

/// Descriptors the node needs besides client connections: the bus socket, the listeners, the
/// state file being written and its directory, the metrics endpoint's connections, logs.
const RESERVED_DESCRIPTORS: u64 = 64;

/// Makes room for `maxclients` connections, as Redis's `adjustOpenFilesLimit` does: raise the
/// process's soft limit on open files as far as the hard limit allows, and if that is not
/// enough, lower `maxclients` to what fits and say so. Without this, client connections alone
/// could use up the descriptors, and the next state-file write would fail and stop the node.
fn fit_clients_to_descriptors(config: &mut NodeConfig) -> Result<()> {
    let wanted = config.clients.maxclients as u64 + RESERVED_DESCRIPTORS;
    let limit = rlimit::increase_nofile_limit(wanted)
        .context("cannot read or raise the limit on open files")?;
    if limit >= wanted {
        return Ok(());
    }
    let fits = limit.saturating_sub(RESERVED_DESCRIPTORS);
    if fits == 0 {
        anyhow::bail!(
            "the limit on open files is {limit}, too low to serve any client (raise it: ulimit -n)"
        );
    }
    tracing::warn!(
        open_files_limit = limit,
        maxclients = fits,
        configured = config.clients.maxclients,
        "maxclients lowered to fit the limit on open files (raise it with ulimit -n or LimitNOFILE)"
    );
    config.clients.maxclients = fits as usize;
    Ok(())
}

/// Resolves on SIGINT or SIGTERM.
pub(crate) async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
