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
    // One thread, as a Redis node: the step loop, the clients and the replication links hand
    // each other work without waking another thread (specs/performance.md §3). Blocking work
    // (the state file, a full copy's encoding) goes to the blocking pool.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let client = config.listen_on(&config.me().client);
        let listener =
            listen(client).with_context(|| format!("cannot listen for clients on {client}"))?;
        let (node, shared) = Runtime::start(Arc::clone(&config)).await?;
        info!(id = config.id, %client, bus = %config.me().bus, "serving");
        let server = admin::Server::new(
            Arc::clone(&config),
            shared,
            node.replication_offset(),
            node.operator(),
            node.roles(),
        )?;
        if let Some(port) = config.metrics_port {
            let addr = std::net::SocketAddr::new(client.ip(), port);
            metrics::serve(addr, Arc::clone(&server)).await?;
        }
        let expiry = tokio::spawn(keys::expire_forever(Arc::clone(&server)));
        let follower = tokio::spawn(replication::follow_forever(Arc::clone(&server)));
        let admin = tokio::spawn(admin::serve(listener, server));
        let result = node.run(shutdown_signal()).await;
        admin.abort();
        expiry.abort();
        follower.abort();
        result
    })
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
