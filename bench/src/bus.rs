//! Bus traffic, CPU and memory of an idle cluster, per node.
//!
//! Bytes: Redis's bus is TCP, and `ss` reports every socket's `bytes_sent` (TCP payload,
//! retransmissions included) and `segs_out` (segments, pure ACKs included); summed over the
//! sockets of which one end is a bus port, that is everything the nodes sent on the bus. The
//! kernel keeps no per-socket counts for UDP, so slotguard's bytes are its own count of the
//! datagram payloads it handed to its socket (`slotguard_bus_bytes_sent`), and its packets its
//! datagrams sent: payload bytes on both sides, headers excluded on both. Redis's own message
//! count (`cluster_stats_messages_sent`) is reported beside its segments. The counters are read
//! once before and once after the window, so the reading adds no bus traffic.

use std::time::{Duration, Instant};

use anyhow::Result;
use serde::Serialize;

use crate::cluster::{Cluster, Shape, System, Tools};
use crate::host;
use crate::resp;

/// One idle window of one cluster, per node and second.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct BusSample {
    /// Which system.
    pub(crate) system: System,
    /// Nodes in the cluster.
    pub(crate) nodes: usize,
    /// cluster-node-timeout, ms.
    pub(crate) node_timeout_ms: u64,
    /// Length of the window, s.
    pub(crate) seconds: f64,
    /// Bus payload bytes sent per node per second.
    pub(crate) bytes_per_node_s: f64,
    /// Packets sent per node per second: TCP segments (Redis), datagrams (slotguard).
    pub(crate) packets_per_node_s: f64,
    /// Bus messages sent per node per second (Redis's own count; slotguard: datagrams).
    pub(crate) messages_per_node_s: f64,
    /// CPU per node, percent of one core.
    pub(crate) cpu_percent_per_node: f64,
    /// Mean resident memory per node at the end of the window, bytes.
    pub(crate) rss_per_node: f64,
}

#[derive(Clone, Copy, Default)]
struct Counters {
    bytes: u64,
    packets: u64,
    messages: u64,
    cpu: f64,
}

fn read(cluster: &Cluster, shape: Shape, tick: f64) -> Result<Counters> {
    let mut c = Counters::default();
    match cluster.system {
        System::Redis => {
            let bus = cluster.ports[0] + 10000;
            let t = host::tcp_totals(bus..bus + shape.nodes() as u16)?;
            c.bytes = t.bytes;
            c.packets = t.segments;
            for &port in &cluster.ports {
                let info = resp::once(port, &["CLUSTER", "INFO"])?;
                c.messages += number(&info, "cluster_stats_messages_sent");
            }
        }
        System::Slotguard => {
            for &port in &cluster.ports {
                let info = resp::once(port, &["CLUSTER", "INFO"])?;
                c.bytes += number(&info, "slotguard_bus_bytes_sent");
                c.packets += number(&info, "slotguard_datagrams_sent");
            }
            c.messages = c.packets;
        }
    }
    for pid in cluster.live_pids() {
        c.cpu += host::cpu_seconds(pid, tick)?;
    }
    Ok(c)
}

fn number(info: &str, name: &str) -> u64 {
    resp::field(info, name)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Measures an idle cluster of `nodes` nodes (masters with one replica each) over `window`.
pub(crate) fn idle(
    tools: &Tools,
    system: System,
    nodes: usize,
    node_timeout_ms: u64,
    window: Duration,
) -> Result<BusSample> {
    let shape = Shape {
        masters: nodes / 2,
        replicas: 1,
        node_timeout_ms,
    };
    let cluster = Cluster::start(tools, system, shape)?;
    let tick = host::ticks_per_second();
    // Past start-up: the joins, the first full round of pings.
    std::thread::sleep(Duration::from_secs(3));
    let t0 = Instant::now();
    let a = read(&cluster, shape, tick)?;
    std::thread::sleep(window);
    let b = read(&cluster, shape, tick)?;
    let seconds = t0.elapsed().as_secs_f64();
    let n = shape.nodes() as f64;
    let per = |x: u64, y: u64| y.saturating_sub(x) as f64 / n / seconds;
    let pids = cluster.live_pids();
    let rss: u64 = pids
        .iter()
        .map(|&p| host::rss_bytes(p))
        .collect::<Result<Vec<_>>>()?
        .into_iter()
        .sum();
    Ok(BusSample {
        system,
        nodes: shape.nodes(),
        node_timeout_ms,
        seconds,
        bytes_per_node_s: per(a.bytes, b.bytes),
        packets_per_node_s: per(a.packets, b.packets),
        messages_per_node_s: per(a.messages, b.messages),
        cpu_percent_per_node: (b.cpu - a.cpu) / n / seconds * 100.0,
        rss_per_node: rss as f64 / pids.len().max(1) as f64,
    })
}
