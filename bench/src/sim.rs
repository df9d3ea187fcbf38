//! Scale beyond processes: every node's protocol engine (the node's own sans-IO `Driver`, the
//! very code a `slotguard node` runs) in one process, on a simulated clock and a simulated
//! network, so that clusters far larger than a machine's processes can be measured: time until
//! every node has heard from every other after start, the idle bus traffic per node, and the
//! detection and failover of one killed master.
//!
//! Why simulated time: with thousands of nodes a real clock would measure the machine (2
//! cores cannot run a thousand nodes' timers on time), not the protocol. Every datagram takes
//! the same latency, nothing is lost, and a node's step takes no simulated time; so the
//! figures are the protocol's floor, and the wall-clock time the simulation took is reported
//! beside them (it grows with the number of datagrams the protocol sends).

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Result};
use serde::Serialize;
use slotguard::driver::{Driver, Effect, Now, Setup};
use slotguard::identity::{NodeName, NAME_LEN};
use slotguard_protocol::{Health, InitialEpochs, Layout, NodeId, Role, Timing};

/// What one simulated cluster showed.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct SimResult {
    /// Nodes (masters with one replica each).
    pub(crate) nodes: usize,
    /// cluster-node-timeout, ms.
    pub(crate) node_timeout_ms: u64,
    /// One-way latency of every datagram, µs.
    pub(crate) latency_us: u64,
    /// Simulated seconds until every node had a datagram from every other.
    pub(crate) all_heard_s: Option<f64>,
    /// Bus payload bytes per node per simulated second, idle.
    pub(crate) bytes_per_node_s: f64,
    /// Datagrams per node per simulated second, idle.
    pub(crate) datagrams_per_node_s: f64,
    /// Simulated seconds from the kill until every live node has the master FAIL.
    pub(crate) all_fail_s: Option<f64>,
    /// ... until its replica is master.
    pub(crate) promoted_s: Option<f64>,
    /// ... until every live node binds the master's first slot to the replica.
    pub(crate) all_agree_s: Option<f64>,
    /// Wall-clock seconds the whole simulation took.
    pub(crate) wall_s: f64,
    /// Whether it stopped at the wall-clock budget before the failover completed.
    pub(crate) cut_short: bool,
}

#[derive(PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Timer,
    Deliver(Vec<u8>),
}

/// A simulated cluster.
struct Sim {
    nodes: Vec<Driver>,
    alive: Vec<bool>,
    /// (time since the start, order of scheduling, node, what): earliest first.
    queue: BinaryHeap<Reverse<(Duration, u64, usize, Kind)>>,
    armed: Vec<Option<Duration>>,
    seq: u64,
    base: Instant,
    now: Duration,
    latency: Duration,
    bytes: u64,
    datagrams: u64,
}

impl Sim {
    fn at(&self, t: Duration) -> Now {
        Now {
            at: self.base + t,
            unix_ms: 1_700_000_000_000 + t.as_millis() as u64,
        }
    }

    /// Carries out node `i`'s effects and re-arms its timer.
    fn settle(&mut self, i: usize) {
        let now = self.at(self.now);
        while let Some(effect) = self.nodes[i].poll_effect() {
            if let Effect::Transmit(t) = effect {
                self.bytes += t.bytes.len() as u64;
                self.datagrams += 1;
                self.nodes[i].on_transmitted(&t, true, now);
                self.seq += 1;
                self.queue.push(Reverse((
                    self.now + self.latency,
                    self.seq,
                    t.to.index(),
                    Kind::Deliver(t.bytes),
                )));
            }
        }
        let deadline = self.nodes[i]
            .poll_timeout()
            .map(|d| d.saturating_duration_since(self.base));
        if deadline.is_some() && deadline != self.armed[i] {
            self.armed[i] = deadline;
            self.seq += 1;
            if let Some(d) = deadline {
                self.queue
                    .push(Reverse((d.max(self.now), self.seq, i, Kind::Timer)));
            }
        }
    }

    /// Runs every event up to `until`.
    fn run_until(&mut self, until: Duration) {
        while let Some(Reverse((t, _, _, _))) = self.queue.peek() {
            if *t > until {
                break;
            }
            let Some(Reverse((t, _, i, kind))) = self.queue.pop() else {
                break;
            };
            self.now = t;
            if !self.alive[i] {
                continue;
            }
            let now = self.at(t);
            match kind {
                Kind::Timer => {
                    if self.armed[i] != Some(t) {
                        continue; // re-armed since
                    }
                    self.armed[i] = None;
                    self.nodes[i].handle_timeout(now);
                }
                Kind::Deliver(bytes) => self.nodes[i].handle_datagram(&bytes, now),
            }
            self.settle(i);
        }
        self.now = until;
    }
}

/// Simulates `masters` masters with one replica each; stops once the failover of master 0 is
/// complete, or at `wall_budget`.
pub(crate) fn run(
    masters: usize,
    node_timeout_ms: u64,
    latency: Duration,
    idle_window: Duration,
    wall_budget: Duration,
) -> Result<SimResult> {
    let started = Instant::now();
    let layout = Arc::new(
        Layout::grid(masters, 1, 16384, InitialEpochs::Distinct)
            .map_err(|e| anyhow!("layout: {e}"))?,
    );
    let n = layout.len();
    let timing = Timing::from_node_timeout(Duration::from_millis(node_timeout_ms));
    let addrs: Vec<Option<SocketAddr>> = (0..n)
        .map(|i| {
            Some(SocketAddr::from((
                [10, 0, (i / 250) as u8, (i % 250) as u8],
                17000,
            )))
        })
        .collect();
    let name = |i: usize| {
        let mut b = [0u8; NAME_LEN];
        b[..8].copy_from_slice(&(i as u64 + 1).to_be_bytes());
        NodeName(b)
    };
    let base = Instant::now();
    let mut sim = Sim {
        nodes: Vec::with_capacity(n),
        alive: vec![true; n],
        queue: BinaryHeap::new(),
        armed: vec![None; n],
        seq: 0,
        base,
        now: Duration::ZERO,
        latency,
        bytes: 0,
        datagrams: 0,
    };
    for i in 0..n {
        let setup = Setup {
            layout: Arc::clone(&layout),
            timing,
            durability: Default::default(),
            me: NodeId(u16::try_from(i).map_err(|_| anyhow!("too many nodes"))?),
            key: vec![7; 32],
            name: name(i),
            peer_names: vec![None; n],
            incarnation: 0,
            stored: None,
            addrs: addrs.clone(),
            trace: false,
        };
        sim.nodes.push(Driver::start(setup, sim.at(Duration::ZERO)));
    }
    for i in 0..n {
        sim.settle(i);
    }
    let step = Duration::from_millis(10);
    let over = || started.elapsed() > wall_budget;
    // Until every node has heard from every other.
    let mut all_heard = None;
    while all_heard.is_none() && !over() && sim.now < Duration::from_secs(60) {
        sim.run_until(sim.now + step);
        let heard = sim.nodes.iter().enumerate().all(|(i, d)| {
            d.last_heard()
                .iter()
                .enumerate()
                .all(|(j, h)| i == j || h.is_some())
        });
        if heard {
            all_heard = Some(sim.now);
        }
    }
    // Idle traffic.
    let (b0, d0, t0) = (sim.bytes, sim.datagrams, sim.now);
    sim.run_until(sim.now + idle_window);
    let idle = (sim.now - t0).as_secs_f64().max(1e-9) * n as f64;
    let bytes_per_node_s = (sim.bytes - b0) as f64 / idle;
    let datagrams_per_node_s = (sim.datagrams - d0) as f64 / idle;
    // Kill master 0; its replica is node `masters` (the layout groups replicas by master).
    let victim = 0usize;
    let replica = masters;
    sim.alive[victim] = false;
    let killed = sim.now;
    let (mut all_fail, mut promoted, mut all_agree) = (None, None, None);
    let limit = killed + Duration::from_millis(node_timeout_ms * 20);
    while (all_fail.is_none() || promoted.is_none() || all_agree.is_none())
        && sim.now < limit
        && !over()
    {
        sim.run_until(sim.now + step);
        let live = || (0..n).filter(|&i| sim.alive[i]);
        if all_fail.is_none()
            && live().all(|i| {
                matches!(
                    sim.nodes[i].state().peers[victim].health,
                    Health::Fail { .. }
                )
            })
        {
            all_fail = Some(sim.now - killed);
        }
        if promoted.is_none() && sim.nodes[replica].state().role == Role::Master {
            promoted = Some(sim.now - killed);
        }
        let new_owner = NodeId(u16::try_from(replica).map_err(|_| anyhow!("too many nodes"))?);
        if all_agree.is_none()
            && live().all(|i| {
                sim.nodes[i]
                    .state()
                    .slots
                    .iter()
                    .next()
                    .is_some_and(|(_, owner)| owner == Some(new_owner))
            })
        {
            all_agree = Some(sim.now - killed);
        }
    }
    let secs = |d: Option<Duration>| d.map(|d| d.as_secs_f64());
    Ok(SimResult {
        nodes: n,
        node_timeout_ms,
        latency_us: latency.as_micros() as u64,
        all_heard_s: secs(all_heard),
        bytes_per_node_s,
        datagrams_per_node_s,
        all_fail_s: secs(all_fail),
        promoted_s: secs(promoted),
        all_agree_s: secs(all_agree),
        wall_s: started.elapsed().as_secs_f64(),
        cut_short: over() && all_agree.is_none(),
    })
}
