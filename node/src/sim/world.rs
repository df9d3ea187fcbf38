//! The event loop: simulated time, the plan's faults, the network's deliveries, the disks'
//! completions and the nodes' timers, one at a time in a fixed order, so that a seed replays
//! the same run (specs/protocol.md §14.1).
//!
//! Order of what is due at one instant: scheduled events first, by the order they were
//! scheduled in, then timers, by node. Every random choice draws from the seed (plan.rs,
//! net.rs, here), the drivers' timer jitter included (timers.rs, `seed_draws`).

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use slotguard_check::settle::disagreement;
use slotguard_protocol::{InitialEpochs, Layout, NodeState, Timing};

use super::checks::{Checks, NO_AGREEMENT, RUNTIME_RULE};
use super::host::{Clock, Done, Host, Spec};
use super::net::{Datagram, Net, NetCounts};
use super::plan::{Fault, Micros, Plan};
use super::rng::Rng;

/// Something due at a time.
#[derive(Debug)]
enum Event {
    Fault(Fault),
    Heal(Fault),
    Deliver(Datagram),
    /// Node's disk finishes its write of the given life.
    DiskDone(usize, u64),
    /// Node crashes (in the given life: a crash during a save); the save lands if `land`.
    Crash {
        node: usize,
        life: u64,
        land: bool,
    },
    Restart(usize),
    /// Time to look whether the cluster agrees.
    Probe,
}

struct Due {
    at: Micros,
    seq: u64,
    event: Event,
}

impl PartialEq for Due {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Due {}
impl PartialOrd for Due {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Due {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

/// What a run showed.
#[derive(Debug)]
pub(crate) struct Outcome {
    pub(crate) plan: Plan,
    pub(crate) violations: Vec<super::checks::Violation>,
    /// When the cluster agreed after the faults stopped (`None`: it did not in time).
    pub(crate) agreed_at: Option<Micros>,
    /// Simulated time run.
    pub(crate) simulated: Micros,
    /// Steps the checks saw.
    pub(crate) steps: u64,
    pub(crate) net: NetCounts,
    /// A digest of every event in order: equal digests, equal runs.
    pub(crate) digest: u64,
    /// Sometimes-properties reached.
    pub(crate) reached: Vec<&'static str>,
    /// Crashes that happened.
    pub(crate) crashes: u64,
    /// The run's log, if asked for.
    pub(crate) log: Vec<String>,
    /// Every node's trace (empty unless the plan traces).
    pub(crate) traces: Vec<Vec<u8>>,
}

/// A simulated cluster.
pub(crate) struct World {
    plan: Plan,
    hosts: Vec<Host>,
    net: Net,
    checks: Checks,
    rng: Rng,
    queue: BinaryHeap<Reverse<Due>>,
    seq: u64,
    now: Micros,
    /// Crashes waiting for a node's next save: (down time).
    armed: Vec<Option<Micros>>,
    agreed_at: Option<Micros>,
    crashes: u64,
    hasher: std::collections::hash_map::DefaultHasher,
    log: Option<Vec<String>>,
}

/// How often agreement is probed once the faults have stopped.
const PROBE_EVERY: Micros = 50_000;

impl World {
    pub(crate) fn new(plan: Plan, verbose: bool) -> World {
        let layout = Layout::with_replicas(&plan.replicas, plan.slots, InitialEpochs::Distinct)
            .map(Arc::new)
            .unwrap_or_else(|e| panic!("the plan's layout {:?}: {e}", plan.replicas));
        let timing = Timing::from_node_timeout(plan.node_timeout);
        let spec = Arc::new(Spec {
            layout: Arc::clone(&layout),
            timing,
            breakage: plan.breakage,
            clock: Clock::new(),
            trace: plan.trace,
        });
        let hosts = (0..layout.len())
            .map(|i| Host::new(i, Arc::clone(&spec), plan.seed))
            .collect();
        World {
            net: Net::new(&plan),
            checks: Checks::new(&layout, timing),
            rng: Rng::new(plan.seed, 2),
            armed: vec![None; layout.len()],
            hosts,
            queue: BinaryHeap::new(),
            seq: 0,
            now: 0,
            agreed_at: None,
            crashes: 0,
            hasher: Default::default(),
            log: verbose.then(Vec::new),
            plan,
        }
    }

    fn schedule(&mut self, at: Micros, event: Event) {
        self.seq += 1;
        let seq = self.seq;
        self.queue.push(Reverse(Due { at, seq, event }));
    }

    fn say(&mut self, line: impl FnOnce() -> String) {
        if let Some(log) = &mut self.log {
            log.push(format!("{:>9.3} s  {}", self.now as f64 / 1e6, line()));
        }
    }

    /// Runs the plan to agreement (or to its bound).
    pub(crate) fn run(mut self) -> Outcome {
        let faults = self.plan.faults.clone();
        for (at, fault) in faults {
            self.schedule(at, Event::Fault(fault));
        }
        self.schedule(self.plan.faults_end, Event::Probe);
        for i in 0..self.hosts.len() {
            let mut done = Vec::new();
            self.hosts[i].start(0, &mut done);
            self.handle(i, done);
        }
        while self.agreed_at.is_none() && self.step() {}
        if self.agreed_at.is_none() {
            let why = self.disagreement();
            self.checks.fail(self.now, NO_AGREEMENT, why);
        }
        self.finish()
    }

    fn finish(mut self) -> Outcome {
        Outcome {
            traces: self
                .hosts
                .iter_mut()
                .map(|h| std::mem::take(&mut h.trace))
                .collect(),
            violations: self.checks.violations.clone(),
            agreed_at: self.agreed_at,
            simulated: self.now,
            steps: self.checks.steps,
            net: self.net.counts,
            digest: self.hasher.finish(),
            reached: self.checks.reached(),
            crashes: self.crashes,
            log: self.log.unwrap_or_default(),
            plan: self.plan,
        }
    }

    /// Does the next thing due; false once past the plan's bound.
    fn step(&mut self) -> bool {
        let event_at = self.queue.peek().map(|Reverse(d)| d.at);
        let timer = (0..self.hosts.len())
            .filter_map(|i| self.hosts[i].next_timer().map(|t| (t.max(self.now), i)))
            .min();
        let timer_first = match (event_at, timer) {
            (Some(e), Some((t, _))) => t < e,
            (None, Some(_)) => true,
            (_, None) => false,
        };
        if timer_first {
            let Some((at, i)) = timer else { return false };
            if at > self.plan.settle_end {
                return false;
            }
            self.now = at;
            (at, i, 0u8).hash(&mut self.hasher);
            let mut done = Vec::new();
            self.hosts[i].fire_timers(at, &mut done);
            self.handle(i, done);
            return true;
        }
        let Some(Reverse(due)) = self.queue.pop() else {
            return false;
        };
        if due.at > self.plan.settle_end {
            return false;
        }
        self.now = due.at;
        self.event(due.event);
        true
    }

    fn event(&mut self, event: Event) {
        let now = self.now;
        let mut done = Vec::new();
        match event {
            Event::Deliver(d) => {
                (now, d.to, 1u8, &d.bytes).hash(&mut self.hasher);
                if !self.net.link_up(d.from, d.to) {
                    self.net.counts.cut += 1;
                    return;
                }
                self.hosts[d.to].deliver(now, d.bytes, &mut done);
                self.handle(d.to, done);
            }
            Event::DiskDone(i, life) => {
                (now, i, 2u8).hash(&mut self.hasher);
                if self.hosts[i].life == life {
                    self.hosts[i].disk_done(now, &mut done);
                    self.handle(i, done);
                }
            }
            Event::Crash { node, life, land } => {
                if self.hosts[node].life == life && self.hosts[node].is_up() {
                    self.crash(node, land, None);
                }
            }
            Event::Restart(i) => self.restart(i),
            Event::Fault(f) => self.fault(f),
            Event::Heal(f) => self.heal(f),
            Event::Probe => self.probe(),
        }
    }

    fn fault(&mut self, fault: Fault) {
        (self.now, 3u8, format!("{fault}")).hash(&mut self.hasher);
        self.say(|| format!("fault: {fault}"));
        match &fault {
            Fault::Crash {
                node,
                down,
                during_save: true,
            } => self.armed[*node] = Some(*down),
            Fault::Crash { node, down, .. } => {
                let land = self.rng.chance(0.5);
                self.crash(*node, land, Some(*down));
            }
            Fault::Pause { node, span } => {
                self.hosts[*node].pause();
                self.schedule(self.now + span, Event::Heal(fault));
            }
            Fault::Partition {
                side,
                one_way,
                span,
            } => {
                self.net.partition(side, *one_way, false);
                self.schedule(self.now + span, Event::Heal(fault));
            }
        }
    }

    fn heal(&mut self, fault: Fault) {
        (self.now, 4u8).hash(&mut self.hasher);
        self.say(|| format!("healed: {fault}"));
        match fault {
            Fault::Pause { node, .. } => {
                let mut done = Vec::new();
                self.hosts[node].resume(self.now, &mut done);
                self.handle(node, done);
            }
            Fault::Partition { side, one_way, .. } => self.net.partition(&side, one_way, true),
            Fault::Crash { .. } => {}
        }
    }

    /// Node `i` dies now and restarts after `down` (default: the armed crash's).
    fn crash(&mut self, i: usize, land: bool, down: Option<Micros>) {
        let Some(down) = down.or_else(|| self.armed[i].take()) else {
            return;
        };
        if !self.hosts[i].is_up() {
            return;
        }
        self.crashes += 1;
        (self.now, i, 5u8, land).hash(&mut self.hasher);
        let saving = match (self.hosts[i].writing(), land) {
            (false, _) => "",
            (true, true) => " (its save in flight lands)",
            (true, false) => " (its save in flight is lost)",
        };
        self.say(|| format!("n{i} crashes{saving}"));
        let mut done = Vec::new();
        self.hosts[i].crash(land, &mut done);
        self.handle(i, done);
        let back = (self.now + down).min(self.plan.faults_end.max(self.now));
        self.schedule(back, Event::Restart(i));
    }

    fn restart(&mut self, i: usize) {
        (self.now, i, 6u8).hash(&mut self.hasher);
        if self.hosts[i].is_up() {
            return;
        }
        self.say(|| format!("n{i} restarts from its state file"));
        let mut done = Vec::new();
        self.hosts[i].start(self.now, &mut done);
        self.handle(i, done);
    }

    /// Carries out what node `i`'s shell did.
    fn handle(&mut self, i: usize, done: Vec<Done>) {
        for d in done {
            match d {
                Done::Sent { to, bytes } => self.send(i, to, bytes),
                Done::Writing { at } => self.writing(i, at),
                Done::Seen { step, start } => {
                    self.note_changes(i, &step.after);
                    self.checks.seen(self.now, i, &step, start);
                }
                Done::Broken(what) => self.checks.fail(self.now, RUNTIME_RULE, what),
            }
        }
    }

    fn send(&mut self, from: usize, to: usize, bytes: Vec<u8>) {
        self.checks.sent(self.now, from, to, &bytes);
        for at in self.net.send(self.now, from, to) {
            let d = Datagram {
                from,
                to,
                bytes: bytes.clone(),
            };
            self.schedule(at, Event::Deliver(d));
        }
    }

    /// A write of node `i`'s state file started at `at`: the disk finishes it later, unless an
    /// armed crash comes first.
    fn writing(&mut self, i: usize, at: Micros) {
        let (lo, hi) = self.plan.disk_us;
        let done_at = at + self.rng.between(lo, hi);
        let life = self.hosts[i].life;
        self.schedule(done_at, Event::DiskDone(i, life));
        if self.armed[i].is_some() && at < self.plan.faults_end {
            let crash_at = at + self.rng.below(done_at - at);
            let land = self.rng.chance(0.5);
            let node = i;
            self.schedule(crash_at, Event::Crash { node, life, land });
        }
    }

    fn note_changes(&mut self, i: usize, after: &NodeState) {
        if self.log.is_none() {
            return;
        }
        let line = format!(
            "n{i}: {:?}, currentEpoch {}, configEpoch {}, lastVoteEpoch {}",
            after.role, after.current_epoch, after.config_epoch, after.last_vote_epoch
        );
        let last = self.log.as_ref().and_then(|l| {
            l.iter()
                .rev()
                .find(|l| l.contains(&format!("  n{i}: ")))
                .cloned()
        });
        if last.is_none_or(|l| !l.ends_with(&line)) {
            self.say(|| line);
        }
    }

    /// Once the faults have stopped: does the cluster agree?
    fn probe(&mut self) {
        if self.disagreement().is_empty() {
            self.agreed_at = Some(self.now);
            let after = (self.now - self.plan.faults_end) / 1000;
            self.say(|| format!("the cluster agrees ({after} ms after the faults stopped)"));
            return;
        }
        self.schedule(self.now + PROBE_EVERY, Event::Probe);
    }

    /// What keeps the cluster from agreeing ("" when it agrees).
    fn disagreement(&self) -> String {
        let states: Option<Vec<NodeState>> = self
            .hosts
            .iter()
            .map(|h| h.driver().map(|d| d.state().clone()))
            .collect();
        match states {
            None => String::from("a node is down"),
            Some(states) => disagreement(&states).unwrap_or_default(),
        }
    }
}
