//! Traces of drivers wired together in memory, validated: a correct cluster's traces are valid
//! through a failover and a restart, a timer that fires late changes nothing, and each of a
//! tampered record, a replay filter that admits an old datagram and a shell that sends before
//! its save is durable makes validation fail, naming the record.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use slotguard_protocol::state::Role;
use slotguard_protocol::{InitialEpochs, Layout, NodeId, Timing};

use super::validate::{validate_dir, Kind, Report};
use crate::driver::{Driver, Effect, Now, Save, Setup, Transmit};
use crate::identity::NodeName;

const KEY: &[u8] = b"trace-test-key-0123456789";
const TICK: Duration = Duration::from_millis(10);

/// How the in-memory shell deviates from the real one.
#[derive(Clone, Copy, Default)]
struct Faults {
    /// Timers fire this much after their deadline.
    late: Duration,
    /// The shell hands a step's datagrams to the socket before it writes the step's save.
    send_before_save: bool,
}

/// Drivers on an in-memory network, each with a trace.
struct Sim {
    layout: Arc<Layout>,
    drivers: Vec<Option<Driver>>,
    saved: Vec<Option<Save>>,
    traces: Vec<Vec<u8>>,
    flight: VecDeque<Transmit>,
    now: Now,
    faults: Faults,
    trace: bool,
}

fn addr(i: usize) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 27_000 + i as u16))
}

impl Sim {
    fn new(masters: usize, replicas: usize, faults: Faults) -> Sim {
        Sim::with(masters, replicas, 6, faults, true)
    }

    fn with(masters: usize, replicas: usize, slots: usize, faults: Faults, trace: bool) -> Sim {
        let layout = Arc::new(
            Layout::grid(masters, replicas, slots, InitialEpochs::Distinct).expect("layout"),
        );
        let n = layout.len();
        let mut sim = Sim {
            layout,
            drivers: (0..n).map(|_| None).collect(),
            saved: vec![None; n],
            traces: vec![Vec::new(); n],
            flight: VecDeque::new(),
            now: Now {
                at: Instant::now(),
                unix_ms: 1_000_000,
            },
            faults,
            trace,
        };
        for i in 0..n {
            sim.start(i);
        }
        sim
    }

    /// Starts (or restarts) node `i` from what it last saved.
    fn start(&mut self, i: usize) {
        let n = self.layout.len();
        let saved = self.saved[i].clone();
        let setup = Setup {
            layout: Arc::clone(&self.layout),
            timing: Timing::from_node_timeout(Duration::from_millis(1000)),
            durability: Default::default(),
            me: NodeId(i as u16),
            key: KEY.to_vec(),
            name: NodeName([i as u8 + 1; 20]),
            peer_names: saved.as_ref().map(|s| s.peers.clone()).unwrap_or_default(),
            incarnation: saved.as_ref().map_or(0, |s| s.incarnation + 1),
            stored: saved.map(|s| s.state),
            addrs: (0..n).map(|j| Some(addr(j))).collect(),
            trace: self.trace,
        };
        self.drivers[i] = Some(Driver::start(setup, self.now));
        self.drain(i);
    }

    fn kill(&mut self, i: usize) {
        self.drivers[i] = None;
    }

    fn driver(&mut self, i: usize) -> &mut Driver {
        self.drivers[i].as_mut().expect("node is up")
    }

    /// Carries out node `i`'s effects as the shell does (or with [`Faults::send_before_save`]).
    fn drain(&mut self, i: usize) {
        let Some(d) = self.drivers[i].as_mut() else {
            return;
        };
        let effects: Vec<Effect> = std::iter::from_fn(|| d.poll_effect()).collect();
        let (first, then): (Vec<Effect>, Vec<Effect>) = if self.faults.send_before_save {
            effects
                .into_iter()
                .partition(|e| matches!(e, Effect::Transmit(_)))
        } else {
            (effects, Vec::new())
        };
        for effect in first.into_iter().chain(then) {
            match effect {
                Effect::Persist(save) => {
                    self.saved[i] = Some(save);
                    d.on_persisted();
                }
                Effect::Transmit(t) => {
                    d.on_transmitted(&t, true, self.now);
                    self.flight.push_back(t);
                }
                Effect::Log(_) => {}
            }
        }
        self.traces[i].extend(d.take_trace());
    }

    fn deliver(&mut self, t: &Transmit) {
        let to = t.to.index();
        if let Some(d) = self.drivers[to].as_mut() {
            d.handle_datagram(&t.bytes, self.now);
            self.drain(to);
        }
    }

    fn deliver_all(&mut self) {
        while let Some(t) = self.flight.pop_front() {
            self.deliver(&t);
        }
    }

    fn advance(&mut self, d: Duration) {
        let end = self.now.at + d;
        while self.now.at < end {
            self.now.at += TICK;
            self.now.unix_ms += TICK.as_millis() as u64;
            for i in 0..self.drivers.len() {
                let late = self.faults.late;
                let now = self.now;
                let due = self.drivers[i]
                    .as_ref()
                    .and_then(Driver::poll_timeout)
                    .is_some_and(|t| t + late <= now.at);
                if due {
                    // Late: the timers fire at a time past their deadline by `late`.
                    let at = Now {
                        at: now.at - late,
                        unix_ms: now.unix_ms,
                    };
                    self.driver(i).handle_timeout(at);
                    self.drain(i);
                }
            }
            self.deliver_all();
        }
    }

    fn advance_until(&mut self, limit: Duration, done: impl Fn(&Sim) -> bool) -> bool {
        let end = self.now.at + limit;
        while self.now.at < end && !done(self) {
            self.advance(TICK * 10);
        }
        done(self)
    }

    fn role(&self, i: usize) -> Option<Role> {
        self.drivers[i].as_ref().map(|d| d.state().role)
    }

    /// Writes the traces to `dir` and validates them.
    fn validate(&self, dir: &Path) -> Report {
        for (i, t) in self.traces.iter().enumerate() {
            std::fs::write(dir.join(format!("node-{i}.trace")), t).expect("write trace");
        }
        validate_dir(dir).expect("traces read")
    }
}

/// A failover and the old master's restart: n0 killed, n3 promoted, n0 back as its replica.
fn failover(sim: &mut Sim) {
    sim.advance(Duration::from_secs(2));
    sim.kill(0);
    let promoted = sim.advance_until(Duration::from_secs(30), |s| s.role(3) == Some(Role::Master));
    assert!(promoted, "n3 was promoted");
    sim.flight.clear();
    sim.start(0);
    let rejoined = sim.advance_until(Duration::from_secs(30), |s| {
        s.role(0) == Some(Role::Replica { of: NodeId(3) })
    });
    assert!(rejoined, "n0 follows n3");
    sim.advance(Duration::from_secs(1));
}

#[test]
fn a_failover_and_a_restart_validate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut sim = Sim::new(3, 1, Faults::default());
    failover(&mut sim);
    let report = sim.validate(dir.path());
    assert!(report.failure.is_none(), "{report}");
    assert_eq!(report.starts, 7, "{report}");
    for reached in ["failover-completes", "failed-master-rejoins-as-replica"] {
        assert!(report.reached.contains(&reached), "{report}");
    }
    assert!(report.checked.contains(&"one-vote-per-epoch"), "{report}");
}

#[test]
fn a_timer_that_fires_late_is_harmless() {
    let dir = tempfile::tempdir().expect("tempdir");
    let faults = Faults {
        late: Duration::from_millis(700),
        ..Faults::default()
    };
    let mut sim = Sim::new(3, 1, faults);
    failover(&mut sim);
    let report = sim.validate(dir.path());
    assert!(report.failure.is_none(), "{report}");
}

#[test]
fn a_tampered_step_is_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut sim = Sim::new(3, 0, Faults::default());
    sim.advance(Duration::from_secs(1));
    // Node 1's 20th line: a step whose recorded timer or message is swapped for another.
    let text = String::from_utf8(sim.traces[1].clone()).expect("utf-8");
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    let (i, tampered) = lines
        .iter()
        .enumerate()
        .skip(20)
        .find_map(|(i, l)| {
            l.contains("\"timer\":\"Tick\"").then(|| {
                (
                    i,
                    l.replace("\"timer\":\"Tick\"", "\"timer\":\"ElectionDelay\""),
                )
            })
        })
        .expect("a tick");
    lines[i] = tampered;
    sim.traces[1] = (lines.join("\n") + "\n").into_bytes();
    let report = sim.validate(dir.path());
    let failure = report.failure.as_ref().expect("invalid");
    assert_eq!(failure.kind, Kind::Divergence, "{report}");
    let at = failure.at.as_ref().expect("a place");
    assert_eq!((at.node, at.line), (1, i + 1), "{report}");
    assert!(report.to_string().contains("RESULT: INVALID"), "{report}");
}

#[test]
fn a_replay_filter_that_admits_an_old_datagram_is_caught() {
    for broken in [false, true] {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut sim = Sim::new(3, 0, Faults::default());
        if broken {
            sim.driver(0).break_replay_filter();
        }
        let old = sim
            .flight
            .iter()
            .find(|t| t.to == NodeId(0))
            .cloned()
            .expect("an announcement to n0");
        sim.advance(Duration::from_secs(1));
        sim.deliver(&old);
        sim.advance(Duration::from_millis(100));
        let report = sim.validate(dir.path());
        match broken {
            false => assert!(report.failure.is_none(), "{report}"),
            true => {
                let failure = report.failure.as_ref().expect("caught");
                assert_eq!(failure.kind, Kind::Runtime, "{report}");
                assert!(failure.what.contains("replay filter"), "{report}");
                assert_eq!(failure.at.as_ref().map(|a| a.node), Some(0), "{report}");
            }
        }
    }
}

#[test]
fn a_shell_that_sends_before_its_save_is_durable_is_caught() {
    let dir = tempfile::tempdir().expect("tempdir");
    let faults = Faults {
        send_before_save: true,
        ..Faults::default()
    };
    let mut sim = Sim::new(3, 0, faults);
    sim.advance(Duration::from_millis(500));
    let report = sim.validate(dir.path());
    let failure = report.failure.as_ref().expect("caught");
    assert_eq!(failure.kind, Kind::Runtime, "{report}");
    assert!(
        failure.what.contains("before the step's save was durable"),
        "{report}"
    );
}

#[test]
fn a_restart_that_loses_its_last_save_is_caught() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut sim = Sim::new(3, 1, Faults::default());
    // n1's state file as it was at its first start.
    let first = sim.saved[1].clone();
    sim.advance(Duration::from_secs(2));
    sim.kill(0);
    let promoted = sim.advance_until(Duration::from_secs(30), |s| s.role(3) == Some(Role::Master));
    assert!(promoted, "n3 was promoted");
    // n1 voted for n3 and saved its vote; it restarts from its first state file instead.
    sim.kill(1);
    let incarnation = sim.saved[1].as_ref().map_or(0, |s| s.incarnation);
    sim.saved[1] = first.map(|s| Save { incarnation, ..s });
    sim.start(1);
    sim.advance(Duration::from_secs(1));
    let report = sim.validate(dir.path());
    let failure = report.failure.as_ref().expect("caught");
    assert_eq!(failure.kind, Kind::Runtime, "{report}");
    assert!(failure.what.contains("last durable save"), "{report}");
    assert_eq!(failure.at.as_ref().map(|a| a.node), Some(1), "{report}");
}

/// What tracing costs a driver (specs/protocol.md §12.4): the same minute of a 3 × 1 cluster of
/// 16384 slots, with a failover in it, run in memory with and without traces.
/// `cargo test --release -p slotguard --lib trace_cost -- --ignored --nocapture`
#[test]
#[ignore = "a measurement, not a check"]
fn trace_cost() {
    let run = |trace: bool| {
        let began = Instant::now();
        let mut sim = Sim::with(3, 1, 16384, Faults::default(), trace);
        sim.advance(Duration::from_secs(20));
        sim.kill(0);
        sim.advance(Duration::from_secs(20));
        sim.flight.clear();
        sim.start(0);
        sim.advance(Duration::from_secs(20));
        let elapsed = began.elapsed();
        let steps: usize = sim
            .traces
            .iter()
            .map(|t| t.iter().filter(|&&b| b == b'\n').count())
            .sum();
        let bytes: usize = sim.traces.iter().map(Vec::len).sum();
        (elapsed, steps, bytes, sim)
    };
    for round in 0..3 {
        let (off, _, _, _) = run(false);
        let (on, lines, bytes, sim) = run(true);
        let dir = tempfile::tempdir().expect("tempdir");
        let began = Instant::now();
        let report = sim.validate(dir.path());
        let validated = began.elapsed();
        assert!(report.failure.is_none(), "{report}");
        println!(
            "round {round}: without trace {:.0} ms, with {:.0} ms: {:.1} us more per record over {lines} records ({} steps), {:.1} MB of trace; validate {:.0} ms",
            off.as_secs_f64() * 1e3,
            on.as_secs_f64() * 1e3,
            (on.as_secs_f64() - off.as_secs_f64()) * 1e6 / lines as f64,
            report.steps,
            bytes as f64 / 1e6,
            validated.as_secs_f64() * 1e3
        );
    }
}
