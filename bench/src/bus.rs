//! Bus traffic, CPU and memory per node: of an idle cluster, and of the nodes that survive a
//! master's kill -9 while they detect it, elect its replica and rebind its slots.
//!
//! Bytes: Redis's bus is TCP, and `ss` reports every socket's `bytes_sent` (TCP payload,
//! retransmissions included) and `segs_out` (segments, pure ACKs included); summed over the
//! sockets of which one end is a bus port, that is everything the nodes sent on the bus. The
//! kernel keeps no per-socket counts for UDP, so slotguard's bytes are its own count of the
//! datagram payloads it handed to its socket (`slotguard_bus_bytes_sent`), and its packets its
//! datagrams sent: payload bytes on both sides, headers excluded on both. Redis's own message
//! count (`cluster_stats_messages_sent`) is reported beside its segments. The counters are read
//! once before and once after the window, so the reading adds no bus traffic.
//!
//! During a failover, the killed node's sockets close and take their counts with them, so
//! Redis's bytes are what the sockets still open at the end sent since the start (a socket
//! opened in the window counts from zero): the survivors' links to each other. slotguard's
//! counts are the survivors' own, datagrams to the dead node included; the comparison leans
//! against slotguard, not for it.

use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Result};
use serde::Serialize;

use crate::cluster::{Cluster, Shape, System, Tools};
use crate::host::{self, TcpSockets};
use crate::resp;
use crate::view::View;

/// What a window of the bus benchmark covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Window {
    /// A cluster with nothing to do.
    Idle,
    /// From the kill -9 of the master of slot 0 on: the survivors detect it, elect its replica
    /// and rebind its slots.
    Failover,
}

/// One window of one cluster, per counted node and second.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct BusSample {
    /// Which system.
    pub(crate) system: System,
    /// What the window covers.
    pub(crate) window: Window,
    /// Nodes in the cluster.
    pub(crate) nodes: usize,
    /// Nodes counted: all of them when idle, the survivors of a failover.
    pub(crate) counted: usize,
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

#[derive(Default)]
struct Counters {
    /// Redis: every bus socket's counts.
    sockets: TcpSockets,
    /// slotguard: the nodes' own counts.
    bytes: u64,
    packets: u64,
    messages: u64,
    /// Every counted node's threads' CPU time.
    cpu: host::ThreadCpu,
}

/// The counters of `nodes` (indices into the cluster's nodes).
fn read(cluster: &Cluster, shape: Shape, nodes: &[usize]) -> Result<Counters> {
    let mut c = Counters::default();
    if cluster.system == System::Redis {
        let bus = cluster.ports[0] + 10000;
        c.sockets = host::tcp_sockets(bus..bus + shape.nodes() as u16)?;
    }
    for &i in nodes {
        let info = resp::once(cluster.ports[i], &["CLUSTER", "INFO"])?;
        match cluster.system {
            System::Redis => c.messages += number(&info, "cluster_stats_messages_sent"),
            System::Slotguard => {
                c.bytes += number(&info, "slotguard_bus_bytes_sent");
                c.packets += number(&info, "slotguard_datagrams_sent");
                c.messages += number(&info, "slotguard_datagrams_sent");
            }
        }
        let pid = cluster
            .pid(i)
            .ok_or_else(|| anyhow!("node {i} is not running"))?;
        c.cpu.extend(host::thread_cpu(pid)?);
    }
    Ok(c)
}

/// Bytes and packets sent between `a` and `b`.
fn sent(system: System, a: &Counters, b: &Counters) -> (u64, u64) {
    match system {
        System::Redis => {
            let t = host::sent_since(&a.sockets, &b.sockets);
            (t.bytes, t.segments)
        }
        System::Slotguard => (
            b.bytes.saturating_sub(a.bytes),
            b.packets.saturating_sub(a.packets),
        ),
    }
}

fn number(info: &str, name: &str) -> u64 {
    resp::field(info, name)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Measures a cluster of `nodes` nodes (masters with one replica each) over `length`: idle, or
/// from the kill of a master on.
pub(crate) fn measure(
    tools: &Tools,
    system: System,
    nodes: usize,
    node_timeout_ms: u64,
    (window, length): (Window, Duration),
) -> Result<BusSample> {
    let shape = Shape {
        masters: nodes / 2,
        replicas: 1,
        node_timeout_ms,
    };
    let mut cluster = Cluster::start(tools, system, shape)?;
    // Past start-up: the joins, the first full round of pings.
    std::thread::sleep(Duration::from_secs(3));
    let victim = match window {
        Window::Idle => None,
        Window::Failover => Some(master_of_slot_0(&cluster)?),
    };
    let counted: Vec<usize> = (0..shape.nodes()).filter(|&i| Some(i) != victim).collect();
    let t0 = Instant::now();
    let a = read(&cluster, shape, &counted)?;
    if let Some(v) = victim {
        cluster.kill(v)?;
    }
    std::thread::sleep(length);
    let b = read(&cluster, shape, &counted)?;
    let seconds = t0.elapsed().as_secs_f64();
    if let Some(v) = victim {
        check_failed_over(&cluster, &counted, cluster.ports[v])?;
    }
    let n = counted.len() as f64;
    let per = |x: u64| x as f64 / n / seconds;
    let (bytes, packets) = sent(system, &a, &b);
    let pids = cluster.live_pids();
    let rss: u64 = pids
        .iter()
        .map(|&p| host::rss_bytes(p))
        .collect::<Result<Vec<_>>>()?
        .into_iter()
        .sum();
    Ok(BusSample {
        system,
        window,
        nodes: shape.nodes(),
        counted: counted.len(),
        node_timeout_ms,
        seconds,
        bytes_per_node_s: per(bytes),
        packets_per_node_s: per(packets),
        messages_per_node_s: per(b.messages.saturating_sub(a.messages)),
        cpu_percent_per_node: host::cpu_between(&a.cpu, &b.cpu) / n / seconds * 100.0,
        rss_per_node: rss as f64 / pids.len().max(1) as f64,
    })
}

/// The index of the node that owns slot 0.
fn master_of_slot_0(cluster: &Cluster) -> Result<usize> {
    let view = View::parse(&resp::once(cluster.ports[0], &["CLUSTER", "NODES"])?)?;
    let port = view
        .owner_port(0)
        .ok_or_else(|| anyhow!("nobody owns slot 0"))?;
    cluster
        .ports
        .iter()
        .position(|&p| p == port)
        .ok_or_else(|| anyhow!("port {port} is not one of the cluster's"))
}

/// Every survivor names a new owner of slot 0: the window held the whole failover.
fn check_failed_over(cluster: &Cluster, survivors: &[usize], victim_port: u16) -> Result<()> {
    for &i in survivors {
        let port = cluster.ports[i];
        let view = View::parse(&resp::once(port, &["CLUSTER", "NODES"])?)?;
        if view.owner_port(0).is_none_or(|p| p == victim_port) {
            bail!("node on port {port} has no new owner of slot 0 by the window's end: make the window longer");
        }
    }
    Ok(())
}
