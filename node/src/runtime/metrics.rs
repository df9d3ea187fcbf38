//! Prometheus metrics on `http://BIND:metrics_port/metrics` (off unless `metrics_port` is set).
//!
//! Why built per scrape from the snapshot: the node task already publishes everything worth
//! watching (the state after each step, the datagram counters) for the client port, so the
//! metrics read that same snapshot instead of a second set of counters the node task would have
//! to keep in step. prometheus-client does the text encoding (OpenMetrics); a small bounded
//! responder on the node's runtime serves it (`serve`), away from the node's step loop.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{anyhow, Result};
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use slotguard_protocol::state::{Health, Role};
use tracing::{debug, info};

use super::admin::Server;
use super::format::{self, ServerStats};
use super::Snapshot;

/// The content type of OpenMetrics text, which Prometheus reads.
const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

type Labels = Vec<(String, String)>;

fn gauge(registry: &mut Registry, name: &str, help: &str, value: i64) {
    let g: Gauge = Gauge::default();
    g.set(value);
    registry.register(name, help, g);
}

fn epoch(e: slotguard_protocol::Epoch) -> i64 {
    i64::try_from(e.0).unwrap_or(i64::MAX)
}

/// The metrics text for one scrape.
pub(crate) fn render(s: &Snapshot, stats: &ServerStats) -> Result<String> {
    let mut registry = Registry::with_prefix("slotguard");
    let datagrams = Family::<Labels, Counter>::default();
    let bytes = Family::<Labels, Counter>::default();
    for name in format::counter_names(s) {
        let value = s.counters.get(name).copied().unwrap_or(0);
        if let Some(direction) = name.strip_prefix("bus_bytes_") {
            bytes
                .get_or_create(&vec![("direction".to_string(), direction.to_string())])
                .inc_by(value);
            continue;
        }
        datagrams
            .get_or_create(&vec![("event".to_string(), name.to_string())])
            .inc_by(value);
    }
    registry.register(
        "datagrams",
        "Cluster-bus datagrams by event: received, accepted, sent, and drops by reason",
        datagrams,
    );
    registry.register(
        "bus_bytes",
        "Cluster-bus payload bytes, sent and received",
        bytes,
    );
    let master = i64::from(s.state.role == Role::Master);
    gauge(
        &mut registry,
        "is_master",
        "1 if this node is a master, 0 if a replica",
        master,
    );
    let st = &s.state;
    gauge(
        &mut registry,
        "current_epoch",
        "currentEpoch",
        epoch(st.current_epoch),
    );
    gauge(
        &mut registry,
        "config_epoch",
        "configEpoch advertised",
        epoch(st.advertised_config_epoch()),
    );
    gauge(
        &mut registry,
        "last_vote_epoch",
        "Epoch of the last vote granted",
        epoch(st.last_vote_epoch),
    );
    let peers = Family::<Labels, Gauge>::default();
    for health in ["pfail", "fail"] {
        let n = st
            .peers
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != st.me.index())
            .filter(|(_, p)| match p.health {
                Health::PFail => health == "pfail",
                Health::Fail { .. } => health == "fail",
                Health::Ok => false,
            })
            .count();
        peers
            .get_or_create(&vec![("health".to_string(), health.to_string())])
            .set(i64::try_from(n).unwrap_or(i64::MAX));
    }
    registry.register(
        "peers",
        "Peers this node suspects (pfail) or has marked FAIL",
        peers,
    );
    let clients = i64::try_from(stats.connected_clients).unwrap_or(i64::MAX);
    gauge(
        &mut registry,
        "connected_clients",
        "Client connections now",
        clients,
    );
    let uptime = i64::try_from(stats.uptime_secs).unwrap_or(i64::MAX);
    gauge(
        &mut registry,
        "uptime_seconds",
        "Seconds since the node started",
        uptime,
    );
    gauge(
        &mut registry,
        "incarnation",
        "Starts of this node before this one",
        i64::from(s.incarnation),
    );
    let mut text = String::new();
    encode(&mut text, &registry).map_err(|e| anyhow!("cannot encode the metrics: {e}"))?;
    Ok(text)
}

/// Connections served at once; more wait in the listen queue.
const MAX_CONNECTIONS: usize = 16;
/// The longest request head read (request line and headers).
const MAX_REQUEST: usize = 8 * 1024;
/// How long a connection may take to send its request head.
const REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Binds `addr` and serves scrapes from a task of the node's runtime.
///
/// A scrape is one `GET` and one response, then the connection closes. The endpoint is bounded
/// like the client port: at most [`MAX_CONNECTIONS`] at once, a request head of at most
/// [`MAX_REQUEST`] bytes, sent within [`REQUEST_TIMEOUT`]. (A thread-per-connection server
/// let 900 half-sent requests take the node to 789 threads.)
pub(crate) async fn serve(addr: SocketAddr, server: Arc<Server>) -> Result<()> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow!("cannot serve metrics on {addr}: {e}"))?;
    info!(%addr, "serving Prometheus metrics on /metrics");
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    tokio::spawn(async move {
        loop {
            let Ok(permit) = Arc::clone(&slots).acquire_owned().await else {
                return;
            };
            let Ok((stream, _)) = listener.accept().await else {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            };
            let server = Arc::clone(&server);
            tokio::spawn(async move {
                let _permit = permit;
                if let Err(e) = scrape(stream, &server).await {
                    debug!(error = %e, "metrics connection ended");
                }
            });
        }
    });
    Ok(())
}

/// Reads one request head and answers it.
async fn scrape(mut stream: tokio::net::TcpStream, server: &Server) -> std::io::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut head = Vec::with_capacity(512);
    let read = async {
        let mut buf = [0u8; 1024];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < MAX_REQUEST {
            let n = stream.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            head.extend_from_slice(&buf[..n]);
        }
        Ok::<_, std::io::Error>(())
    };
    let (status, content_type, body) = match tokio::time::timeout(REQUEST_TIMEOUT, read).await {
        Err(_) => return Ok(()),
        Ok(result) => {
            result?;
            respond(server, &head)
        }
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

/// The status line's code and reason, content type and body for a request head.
fn respond(server: &Server, head: &[u8]) -> (&'static str, &'static str, String) {
    const PLAIN: &str = "text/plain; charset=utf-8";
    let line = head.split(|&b| b == b'\r').next().unwrap_or_default();
    let mut parts = line.split(|&b| b == b' ');
    let (method, target) = (parts.next(), parts.next());
    if !head.windows(4).any(|w| w == b"\r\n\r\n") {
        return (
            "431 Request Header Fields Too Large",
            PLAIN,
            "request head too large\n".into(),
        );
    }
    if method != Some(b"GET".as_slice()) {
        return (
            "405 Method Not Allowed",
            PLAIN,
            "metrics answer GET only\n".into(),
        );
    }
    let path = target.and_then(|t| t.split(|&b| b == b'?').next());
    if path != Some(b"/metrics".as_slice()) {
        return (
            "404 Not Found",
            PLAIN,
            "not found: metrics are on /metrics\n".into(),
        );
    }
    let Some(snapshot) = server.shared.read().ok().map(|s| s.clone()) else {
        return (
            "500 Internal Server Error",
            PLAIN,
            "node state unavailable\n".into(),
        );
    };
    match render(&snapshot, &server.stats()) {
        Ok(body) => ("200 OK", CONTENT_TYPE, body),
        Err(e) => {
            let mut body = String::new();
            let _ = writeln!(body, "{e}");
            ("500 Internal Server Error", PLAIN, body)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::identity::{Directory, NodeName, NAME_LEN};
    use slotguard_protocol::{InitialEpochs, Layout, NodeId, NodeState};

    /// The value of the sample `line_start` (a name with its labels) in `text`.
    fn sample(text: &str, line_start: &str) -> Option<f64> {
        text.lines()
            .find_map(|l| l.strip_prefix(line_start))
            .and_then(|v| v.trim().parse().ok())
    }

    #[test]
    fn counters_epochs_suspicions_and_clients_are_exported() -> Result<()> {
        let layout = Layout::grid(3, 0, 6, InitialEpochs::Distinct)?;
        let mut state = NodeState::fresh(&layout, NodeId(0));
        state.peers[1].health = Health::PFail;
        state.peers[2].health = Health::Fail { undo_ready: false };
        let s = Snapshot {
            status: slotguard_protocol::cluster_status(&state, &layout),
            state,
            incarnation: 2,
            counters: [("datagrams_sent", 41), ("bad_mac", 3)]
                .into_iter()
                .collect(),
            names: Directory::new(NodeId(0), NodeName([1; NAME_LEN]), 3),
            run_id: String::new(),
            addrs: Vec::new(),
        };
        let stats = ServerStats {
            uptime_secs: 12,
            connected_clients: 5,
            maxclients: 10,
            query_buffers: 0,
            used_memory: 0,
            replication: Default::default(),
            keys: (0, 0),
            dataset: (0, 0),
        };
        let text = render(&s, &stats)?;
        let at = |k: &str| sample(&text, k);
        assert_eq!(
            at("slotguard_datagrams_total{event=\"datagrams_sent\"}"),
            Some(41.0),
            "{text}"
        );
        assert_eq!(
            at("slotguard_datagrams_total{event=\"bad_mac\"}"),
            Some(3.0)
        );
        assert_eq!(
            at("slotguard_datagrams_total{event=\"replayed_or_stale\"}"),
            Some(0.0)
        );
        assert_eq!(at("slotguard_is_master "), Some(1.0));
        assert_eq!(at("slotguard_config_epoch "), Some(1.0));
        assert_eq!(at("slotguard_peers{health=\"pfail\"}"), Some(1.0));
        assert_eq!(at("slotguard_peers{health=\"fail\"}"), Some(1.0));
        assert_eq!(at("slotguard_connected_clients "), Some(5.0));
        assert_eq!(at("slotguard_uptime_seconds "), Some(12.0));
        assert_eq!(at("slotguard_incarnation "), Some(2.0));
        assert!(text.ends_with("# EOF\n"), "{text}");
        Ok(())
    }
}
