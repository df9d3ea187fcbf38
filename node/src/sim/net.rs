//! The simulated cluster bus: datagrams between nodes, lost, duplicated, delayed (and so
//! reordered) at the plan's rates while the faults last, and cut by partitions, symmetric or
//! one-way (specs/protocol.md §14.1).
//!
//! Why datagrams as bytes: the node's replay filter, MAC and codec (wire.rs, driver/inbound.rs)
//! are what is under test, so the network carries exactly what a socket would, and a duplicate
//! is the same bytes again.

use std::collections::BTreeSet;

use super::plan::{Micros, Plan};
use super::rng::Rng;

/// One datagram in this many (during the faults) is stalled.
const STALL_ONE_IN: u64 = 200;

/// A datagram on its way.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Datagram {
    pub(crate) from: usize,
    pub(crate) to: usize,
    pub(crate) bytes: Vec<u8>,
}

/// The bus.
pub(crate) struct Net {
    rng: Rng,
    loss: f64,
    dup: f64,
    latency: Micros,
    jitter: Micros,
    /// The longest a stalled datagram is held (a few node timeouts).
    stall: Micros,
    faults_end: Micros,
    /// Directed links cut, with how many partitions cut each.
    cut: Vec<Vec<u32>>,
    /// Datagrams lost, duplicated, cut.
    pub(crate) counts: NetCounts,
}

/// What the network did to the datagrams.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct NetCounts {
    pub(crate) sent: u64,
    pub(crate) lost: u64,
    pub(crate) duplicated: u64,
    pub(crate) cut: u64,
}

impl Net {
    pub(crate) fn new(plan: &Plan) -> Net {
        let n = plan.nodes();
        Net {
            rng: Rng::new(plan.seed, 1),
            loss: plan.loss,
            dup: plan.dup,
            latency: plan.latency_us,
            jitter: plan.jitter_us,
            stall: 4 * plan.node_timeout.as_micros() as Micros,
            faults_end: plan.faults_end,
            cut: vec![vec![0; n]; n],
            counts: NetCounts::default(),
        }
    }

    /// The arrival times of a datagram sent at `now` from `from` to `to` (none: lost; two: it
    /// was duplicated).
    pub(crate) fn send(&mut self, now: Micros, from: usize, to: usize) -> Vec<Micros> {
        self.counts.sent += 1;
        if !self.link_up(from, to) {
            self.counts.cut += 1;
            return Vec::new();
        }
        if now >= self.faults_end {
            return vec![now + self.latency];
        }
        if self.rng.chance(self.loss) {
            self.counts.lost += 1;
            return Vec::new();
        }
        let mut arrivals = vec![now + self.delay()];
        if self.rng.chance(self.dup) {
            self.counts.duplicated += 1;
            arrivals.push(now + self.delay());
        }
        arrivals
    }

    /// The one-way delay of a datagram during the faults: mostly short, sometimes up to the
    /// whole jitter, and one in [`STALL_ONE_IN`] held for up to a few node timeouts, so that
    /// datagrams of a sender's or receiver's previous life arrive after a restart.
    fn delay(&mut self) -> Micros {
        let jitter = match self.rng.below(4 * STALL_ONE_IN) {
            0 => self.rng.below(self.stall + 1),
            k if k % 4 == 0 => self.rng.below(self.jitter + 1),
            _ => self.rng.below(self.jitter / 10 + 1),
        };
        self.latency + jitter
    }

    /// Whether datagrams from `from` reach `to` now (checked at sending and at arrival).
    pub(crate) fn link_up(&self, from: usize, to: usize) -> bool {
        self.cut[from][to] == 0
    }

    /// Cuts (or with `heal`, restores) the links of a partition.
    pub(crate) fn partition(&mut self, side: &[usize], one_way: bool, heal: bool) {
        let inside: BTreeSet<usize> = side.iter().copied().collect();
        let n = self.cut.len();
        for a in 0..n {
            for b in 0..n {
                let crosses = inside.contains(&a) && !inside.contains(&b);
                let back = !one_way && !inside.contains(&a) && inside.contains(&b);
                if crosses || back {
                    let c = &mut self.cut[a][b];
                    *c = if heal { c.saturating_sub(1) } else { *c + 1 };
                }
            }
        }
    }
}
