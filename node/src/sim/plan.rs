//! What a run does, drawn from its seed and a [`Config`]: the cluster, the timing, the
//! network's fault rates and a schedule of crashes, pauses and partitions within the fault
//! period, after which everything heals (specs/protocol.md §14.1).
//!
//! Why drawn up front: the schedule is then a plain value that a failing seed prints, and the
//! faults do not shift when the runtime under test behaves differently (the runtime's own
//! choices draw from other streams of the seed).

use std::fmt;
use std::time::Duration;

use super::rng::Rng;

/// Microseconds of simulated time.
pub(crate) type Micros = u64;

/// A deliberately broken runtime (the tests that show the simulation catches each).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Breakage {
    /// Timers fire this long after their deadline.
    pub(crate) late_timers: Duration,
    /// The shell hands an input's datagrams to the network before it writes its saves.
    pub(crate) send_before_save: bool,
    /// Every node's replay filter admits every datagram.
    pub(crate) replay_filter: bool,
}

/// The ranges a seed draws a run from.
#[derive(Clone, Debug)]
pub(crate) struct Config {
    /// The name a replay command gives (`SLOTGUARD_SIM_CONFIG`).
    pub(crate) name: &'static str,
    /// Cluster shapes: replicas per master.
    pub(crate) layouts: &'static [&'static [usize]],
    /// Slots in the cluster.
    pub(crate) slots: usize,
    /// node_timeout choices, ms.
    pub(crate) node_timeouts_ms: &'static [u64],
    /// Length of the fault period, in node timeouts (a range).
    pub(crate) fault_period: (u64, u64),
    /// How long, after the faults stop, the cluster has to agree, in node timeouts.
    pub(crate) settle_within: u64,
    /// Highest loss and duplication probabilities during the fault period.
    pub(crate) max_loss: f64,
    /// See `max_loss`.
    pub(crate) max_dup: f64,
    /// One-way latency floor, µs, and the most a datagram is delayed beyond it during faults.
    pub(crate) latency_us: Micros,
    /// See `latency_us`.
    pub(crate) max_jitter_us: Micros,
    /// How long a state-file write takes, µs (a range).
    pub(crate) disk_us: (Micros, Micros),
    /// Most crashes, pauses and partitions in one run.
    pub(crate) max_crashes: u64,
    /// See `max_crashes`.
    pub(crate) max_pauses: u64,
    /// See `max_crashes`.
    pub(crate) max_partitions: u64,
    /// The share of crashes that strike while a save is in flight.
    pub(crate) crash_during_save: f64,
    /// The runtime under test, correct by default.
    pub(crate) breakage: Breakage,
    /// Nodes record traces (specs/protocol.md §12), for `slotguard validate` to judge too.
    pub(crate) trace: bool,
}

/// The configuration CI runs.
pub(crate) const CI: Config = Config {
    name: "ci",
    layouts: &[&[1, 1, 1], &[0, 0, 2], &[1, 0, 2]],
    slots: 6,
    node_timeouts_ms: &[500, 1000],
    fault_period: (10, 30),
    settle_within: 60,
    max_loss: 0.3,
    max_dup: 0.2,
    latency_us: 200,
    max_jitter_us: 20_000,
    disk_us: (100, 5_000),
    max_crashes: 4,
    max_pauses: 2,
    max_partitions: 3,
    crash_during_save: 0.5,
    breakage: Breakage {
        late_timers: Duration::ZERO,
        send_before_save: false,
        replay_filter: false,
    },
    trace: false,
};

/// A fault of the schedule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Fault {
    /// The node's process dies; it restarts from its state file after `down`. With
    /// `during_save`, it dies instead while its next save is in flight (if one starts before
    /// the fault period ends).
    Crash {
        node: usize,
        down: Micros,
        during_save: bool,
    },
    /// The node takes no input (its clock stands still) for `span`: a SIGSTOP.
    Pause { node: usize, span: Micros },
    /// Datagrams from `side` to the others (and back, unless `one_way`) are lost for `span`.
    Partition {
        side: Vec<usize>,
        one_way: bool,
        span: Micros,
    },
}

/// One run.
#[derive(Clone, Debug)]
pub(crate) struct Plan {
    pub(crate) seed: u64,
    pub(crate) replicas: Vec<usize>,
    pub(crate) slots: usize,
    pub(crate) node_timeout: Duration,
    pub(crate) loss: f64,
    pub(crate) dup: f64,
    pub(crate) latency_us: Micros,
    pub(crate) jitter_us: Micros,
    pub(crate) disk_us: (Micros, Micros),
    /// When the faults stop (every fault has healed by then).
    pub(crate) faults_end: Micros,
    /// When the cluster must agree by.
    pub(crate) settle_end: Micros,
    /// The faults, by start time.
    pub(crate) faults: Vec<(Micros, Fault)>,
    pub(crate) breakage: Breakage,
    pub(crate) trace: bool,
}

impl Plan {
    /// The run of `seed` under `config`.
    pub(crate) fn draw(seed: u64, config: &Config) -> Plan {
        let mut rng = Rng::new(seed, 0);
        let replicas = rng.pick(config.layouts).to_vec();
        let nodes = replicas.len() + replicas.iter().sum::<usize>();
        let nt_ms = *rng.pick(config.node_timeouts_ms);
        let nt = nt_ms * 1000;
        let period = rng.between(config.fault_period.0, config.fault_period.1) * nt;
        let mut faults = Vec::new();
        for _ in 0..rng.below(config.max_crashes + 1) {
            let node = rng.below(nodes as u64) as usize;
            let down = rng.below(3 * nt);
            let during_save = rng.chance(config.crash_during_save);
            let fault = Fault::Crash {
                node,
                down,
                during_save,
            };
            faults.push((rng.below(period), fault));
        }
        for _ in 0..rng.below(config.max_pauses + 1) {
            let node = rng.below(nodes as u64) as usize;
            let span = rng.below(3 * nt);
            faults.push((rng.below(period), Fault::Pause { node, span }));
        }
        for _ in 0..rng.below(config.max_partitions + 1) {
            let side = side(&mut rng, nodes);
            let one_way = rng.chance(0.5);
            let span = rng.below(4 * nt);
            let fault = Fault::Partition {
                side,
                one_way,
                span,
            };
            faults.push((rng.below(period), fault));
        }
        faults.sort_by_key(|(t, _)| *t);
        let heal = faults.iter().map(|(t, f)| t + f.span()).max().unwrap_or(0);
        let faults_end = period.max(heal);
        Plan {
            seed,
            replicas,
            slots: config.slots,
            node_timeout: Duration::from_millis(nt_ms),
            loss: rng.fraction(config.max_loss),
            dup: rng.fraction(config.max_dup),
            latency_us: config.latency_us,
            jitter_us: rng.below(config.max_jitter_us + 1),
            disk_us: config.disk_us,
            faults_end,
            settle_end: faults_end + config.settle_within * nt,
            faults,
            breakage: config.breakage,
            trace: config.trace,
        }
    }

    /// Nodes in the cluster.
    pub(crate) fn nodes(&self) -> usize {
        self.replicas.len() + self.replicas.iter().sum::<usize>()
    }
}

impl Plan {
    /// A scripted plan aimed at a double vote (specs/protocol.md §14.3), its timings drawn from
    /// `seed`: in a cluster of masters n0, n1, n2 and n2's replicas n3 and n4, n2 dies; n4 stops
    /// hearing anyone before n3's election (so it will run its own, later, in the same epoch);
    /// n0 crashes while it saves its vote for n3 and comes back soon; and n3 stops being heard
    /// once its request has left (so n0, back, does not learn that n3 won). A runtime that
    /// keeps §7 gives n0 its vote back on restart and n0 refuses n4; one that sends before it
    /// saves may forget the vote, and grant n4 a second one.
    pub(crate) fn aimed_at_a_double_vote(seed: u64, breakage: Breakage) -> Plan {
        let mut rng = Rng::new(seed, 7);
        let ms = 1000;
        let t = 2000 * ms;
        let mut at = |lo, hi| t + rng.between(lo, hi) * ms;
        let n4_deaf = at(600, 1100);
        let n0_crash = at(700, 1200);
        let n3_mute = at(1000, 2200);
        let down = rng.between(0, 600) * ms;
        let crash = |node, down, during_save| Fault::Crash {
            node,
            down,
            during_save,
        };
        let cut = |side, span| Fault::Partition {
            side,
            one_way: true,
            span,
        };
        Plan {
            seed,
            replicas: vec![0, 0, 2],
            slots: 6,
            node_timeout: Duration::from_millis(500),
            loss: 0.0,
            dup: 0.0,
            latency_us: 200,
            jitter_us: 1000,
            disk_us: (100, 5000),
            faults_end: t + 8000 * ms,
            settle_end: t + 38_000 * ms,
            faults: vec![
                (t, crash(2, 8000 * ms, false)),
                (n4_deaf, cut(vec![0, 1, 2, 3], 4000 * ms)),
                (n0_crash, crash(0, down, true)),
                (n3_mute, cut(vec![3], 5000 * ms)),
            ],
            breakage,
            trace: false,
        }
    }
}

/// A random proper, non-empty subset of `0..nodes`.
fn side(rng: &mut Rng, nodes: usize) -> Vec<usize> {
    let size = rng.between(1, nodes as u64 - 1) as usize;
    let mut all: Vec<usize> = (0..nodes).collect();
    for i in 0..size {
        let j = i + rng.below((nodes - i) as u64) as usize;
        all.swap(i, j);
    }
    let mut side = all[..size].to_vec();
    side.sort_unstable();
    side
}

impl Fault {
    /// How long the fault lasts from its start.
    pub(crate) fn span(&self) -> Micros {
        match self {
            Fault::Crash { down, .. } => *down,
            Fault::Pause { span, .. } | Fault::Partition { span, .. } => *span,
        }
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = |us: &Micros| us / 1000;
        match self {
            Fault::Crash {
                node,
                down,
                during_save,
            } => {
                let when = if *during_save {
                    " during its next save"
                } else {
                    ""
                };
                write!(f, "n{node} crashes{when}, down {} ms", ms(down))
            }
            Fault::Pause { node, span } => write!(f, "n{node} paused {} ms", ms(span)),
            Fault::Partition {
                side,
                one_way,
                span,
            } => {
                let arrow = if *one_way { "->" } else { "<->" };
                write!(f, "partition {side:?} {arrow} rest, {} ms", ms(span))
            }
        }
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "seed {}: replicas {:?}, {} slots, node_timeout {} ms; loss {:.2}, dup {:.2}, latency {} us + up to {} us; faults until {} ms, agreement by {} ms",
            self.seed,
            self.replicas,
            self.slots,
            self.node_timeout.as_millis(),
            self.loss,
            self.dup,
            self.latency_us,
            self.jitter_us,
            self.faults_end / 1000,
            self.settle_end / 1000
        )?;
        for (t, fault) in &self.faults {
            writeln!(f, "  at {} ms: {fault}", t / 1000)?;
        }
        Ok(())
    }
}
