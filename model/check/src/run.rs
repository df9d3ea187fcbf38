//! One run of the model checker with an honest verdict (behind `slotguard check`).
//!
//! stateright 0.31 has pitfalls a report must not inherit (specs/background.md §S0, §S1.7–S1.8):
//! - a run cut short by a state limit or a timeout reports `is_done() == true`: here any run that
//!   hit a limit is [`RunReport::complete`]` == false`, and an incomplete run never passes;
//! - BFS paths are not shortest in 0.31: traces are labelled with their length only, never as
//!   minimal;
//! - symmetry is silently ignored by BFS, and stateright's representative for actor models is
//!   unsound for ids inside timers: symmetry here uses the model's own representative
//!   ([`symmetry::representative`], which renames ids everywhere), on DFS only; a BFS run drops
//!   it and says so in [`RunReport::symmetry`];
//! - discoveries are paths recorded by worker threads: every one is replayed and re-checked
//!   ([`trace::replay`]) before it is reported;
//! - the timeout is checked only when a worker runs out of work and asks for more, which a
//!   single depth-first worker never does before the search is complete: `--threads 1
//!   --timeout 60` ran on for minutes. The run loop here stops the model itself
//!   ([`ClusterModel::stop`]: no state has successors from then on).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use stateright::{Checker, Expectation, Model};

use crate::audit::{audit_canonical_network, AuditOptions, AuditReport};
use crate::model::ClusterModel;
use crate::reductions::Reduction;
use crate::symmetry;
use crate::trace::{self, Trace};
use crate::walks::{self, WalkCounters};

/// Search order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Strategy {
    /// Depth-first: ~15 bytes per state; the default.
    Dfs,
    /// Breadth-first: holds whole states in its queue; for small models.
    Bfs,
    /// Seeded random walks (`check/walks.rs`): never complete; for configurations no search
    /// exhausts.
    Random,
}

/// Limits and resources of a run.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// Search order.
    pub strategy: Strategy,
    /// Worker threads.
    pub threads: usize,
    /// Stop after about this many generated states (the run is then incomplete).
    pub max_states: Option<usize>,
    /// Stop after this long (the run is then incomplete).
    pub timeout: Option<Duration>,
    /// Stop once the process's resident memory exceeds this many bytes (the run is then
    /// incomplete). A depth-first search keeps every pending state's path, and on a lossy network
    /// paths grow to tens of thousands of steps: `check tiny --network lossy-duplicating` used
    /// up 24 GiB in about 20 seconds and was killed without a report.
    pub max_memory: Option<u64>,
    /// Random walks: the seed of the first thread's generator (thread `t` uses `seed + t`).
    pub seed: u64,
    /// Random walks: the longest walk, in steps.
    pub walk_steps: usize,
    /// Searches that use the canonical network audit it before they may pass
    /// (check/audit.rs); `None` skips the audit, and such a run never passes.
    pub audit: Option<AuditOptions>,
}

impl RunOptions {
    /// Random walks on one thread from `seed`, until `max_states` states are visited: the walks
    /// are then the same on every run of one build (what tests and measurements use).
    pub fn reproducible_walks(seed: u64, max_states: usize) -> RunOptions {
        RunOptions {
            strategy: Strategy::Random,
            threads: 1,
            max_states: Some(max_states),
            seed,
            ..RunOptions::default()
        }
    }
}

/// Random walks need a limit; without one they stop after this long.
pub const DEFAULT_WALK_TIME: Duration = Duration::from_secs(60);

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            strategy: Strategy::Dfs,
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            max_states: None,
            timeout: None,
            max_memory: None,
            seed: 0,
            walk_steps: walks::DEFAULT_WALK_STEPS,
            audit: Some(AuditOptions::default()),
        }
    }
}

/// Progress figures, reported about once a second.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Progress {
    /// States generated (with repeats).
    pub states: usize,
    /// Unique states.
    pub unique: usize,
    /// Deepest path explored.
    pub depth: usize,
    /// Time since start.
    pub elapsed: Duration,
}

/// Kind of a property.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Must hold in every reachable state.
    Always,
    /// Must hold in some reachable state (non-vacuity).
    Sometimes,
}

/// Outcome for one property.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// Always-property, no violation in a complete run.
    Holds,
    /// Always-property, no violation so far in an incomplete run.
    NotViolatedSoFar,
    /// Always-property with a counterexample.
    Violated,
    /// Sometimes-property with an example.
    Found,
    /// Sometimes-property without an example.
    NotFound,
}

/// One property's result.
#[derive(Clone, Debug, Serialize)]
pub struct PropertyResult {
    /// Catalogue name.
    pub name: &'static str,
    /// always or sometimes.
    pub kind: Kind,
    /// Outcome.
    pub status: Status,
    /// The replayed counterexample (always) or example (sometimes).
    #[serde(rename = "counterexample", skip_serializing_if = "Option::is_none")]
    pub trace: Option<Trace>,
    /// Why a discovery could not be replayed, if it could not (a checker defect; fails the run).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replay_error: Option<String>,
}

/// The result of a run.
#[derive(Clone, Debug, Serialize)]
pub struct RunReport {
    /// Whether the whole reachable state space was explored.
    pub complete: bool,
    /// Why not, if not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub incomplete_reason: Option<String>,
    /// Search order.
    pub strategy: Strategy,
    /// Worker threads.
    pub threads: usize,
    /// States generated within bounds, with repeats (those refused as exact repeats before
    /// the look-up, `repeats`, included).
    pub states: usize,
    /// Unique states.
    pub unique_states: usize,
    /// Deepest path explored.
    pub max_depth: usize,
    /// Wall-clock seconds.
    pub seconds: f64,
    /// Unique states per second.
    pub states_per_second: f64,
    /// Whether symmetry reduction was applied (DFS with [`ClusterModel::symmetry`] set).
    pub symmetry: bool,
    /// The exact state-space reductions the run used ([`ClusterModel::reductions`]).
    pub reductions: Vec<&'static str>,
    /// Generated states not explored because a twin with fewer crashes was (crash-twins,
    /// `check/crash_twins.rs`); not counted in `states` or `unique_states`.
    pub crash_twins_refused: usize,
    /// States counted in `unique_states` but not expanded, because a twin with fewer crashes
    /// was explored after they were generated (crash-twins).
    pub crash_twins_not_expanded: usize,
    /// Generated states refused before the look-up as exact repeats of a state generated
    /// before (`check/repeats.rs`); counted in `states`.
    pub repeats: usize,
    /// Of `repeats`, those recognised from their fingerprint before the successor was built.
    pub repeats_before_built: usize,
    /// Random walks only: how many, with which seed, how long at most.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub walks: Option<WalkSummary>,
    /// Per property, in catalogue order.
    pub properties: Vec<PropertyResult>,
    /// The audit of the canonical network, for searches that used it (check/audit.rs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audit: Option<AuditOutcome>,
}

/// An audit's report, or why none was made. In JSON: `{"status": "ran", "report": ...,
/// "seconds": ...}` or `{"status": "skipped"}`.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "status", rename_all = "kebab-case")]
pub enum AuditOutcome {
    /// The audit ran, in this many seconds.
    Ran {
        /// What it checked and found.
        report: AuditReport,
        /// Wall-clock seconds it took.
        seconds: f64,
    },
    /// The run used the canonical network without auditing it (`RunOptions::audit` was
    /// `None`): it cannot pass.
    Skipped,
}

/// The random walks of a run (`--strategy random`).
#[derive(Clone, Copy, Debug, Serialize)]
pub struct WalkSummary {
    /// Walks started.
    pub walks: u64,
    /// The first thread's seed.
    pub seed: u64,
    /// The longest walk allowed, in steps.
    pub max_steps: usize,
}

impl RunReport {
    /// Whether the audit of the canonical network found a verdict that does not hold: the
    /// reduced search may have missed behaviours, whatever its properties say.
    pub fn audit_failed(&self) -> bool {
        matches!(&self.audit, Some(AuditOutcome::Ran { report, .. }) if !report.sound())
    }

    /// Pass: complete, every always-property holds, every sometimes-property found, and every
    /// discovery replayed.
    pub fn passed(&self) -> bool {
        !self.audit_failed()
            && !matches!(self.audit, Some(AuditOutcome::Skipped))
            && self.complete
            && self.properties.iter().all(|p| {
                p.replay_error.is_none() && matches!(p.status, Status::Holds | Status::Found)
            })
    }
}

/// Runs the checker on `model` (or, with [`Strategy::Random`], random walks through it), calling
/// `progress` about once a second.
pub fn run(
    mut model: ClusterModel,
    options: &RunOptions,
    mut progress: impl FnMut(Progress),
) -> RunReport {
    if options.strategy == Strategy::Random {
        return run_walks(model, options, progress);
    }
    if options.strategy == Strategy::Bfs {
        // stateright's BFS ignores symmetry; never report a reduction that did not happen.
        model.symmetry = None;
    }
    let symmetric = model.symmetry.is_some();
    let reductions = model.rules_in_effect();
    let properties = model.properties();
    // A fresh flag: this run alone stops it.
    let stop = Arc::new(AtomicBool::new(false));
    model.stop = Arc::clone(&stop);
    // The crash-twin memo refuses states during the search only (check/crash_twins.rs).
    model.crash_twins = Default::default();
    model
        .crash_twins
        .set_active(model.has(Reduction::SkipCrashTwins));
    model.repeats = Default::default();
    model.repeats.set_active(model.has(Reduction::SkipRepeats));
    let mut builder = model.checker().threads(options.threads.max(1));
    if symmetric {
        builder = builder.symmetry_fn(symmetry::representative_fingerprint);
    }
    if let Some(n) = options.max_states {
        builder = builder.target_state_count(n);
    }
    if let Some(t) = options.timeout {
        builder = builder.timeout(t);
    }
    let start = Instant::now();
    // (Random walks returned above.)
    let checker: Box<dyn Checker<ClusterModel> + Send + Sync> = if options.strategy == Strategy::Bfs
    {
        Box::new(builder.spawn_bfs())
    } else {
        Box::new(builder.spawn_dfs())
    };
    let mut last_report = start;
    // Why this loop stopped the search, if it did (the first limit reached).
    let mut stopped_for: Option<String> = None;
    while !checker.is_done() {
        std::thread::sleep(Duration::from_millis(100));
        if stopped_for.is_none() {
            stopped_for = limit_reached(options.timeout, options.max_memory, start);
            if stopped_for.is_some() {
                stop.store(true, Ordering::Relaxed);
            }
        }
        if last_report.elapsed() >= Duration::from_secs(1) {
            last_report = Instant::now();
            progress(Progress {
                states: checker.state_count() + checker.model().repeats.found() as usize,
                unique: checker.unique_state_count(),
                depth: checker.max_depth(),
                elapsed: start.elapsed(),
            });
        }
    }
    let mut checker = checker;
    for handle in checker.handles() {
        // A worker that panicked is a defect of the model; surface it.
        if let Err(panic) = handle.join() {
            std::panic::resume_unwind(panic);
        }
    }
    let elapsed = start.elapsed();
    // Counterexample paths are rebuilt by replaying actions: the model must have them again.
    stop.store(false, Ordering::Relaxed);
    // stateright counts a generated state only once `within_boundary` admits it; the repeats
    // that filter refused (check/repeats.rs) are generated states within bounds too.
    let repeats = checker.model().repeats.found() as usize;
    let repeats_before_built = checker.model().repeats.found_before_built() as usize;
    let counted = checker.state_count();
    let states = counted + repeats;
    let unique = checker.unique_state_count();
    // So must the crash-twin memo: stateright rebuilds the paths in `discoveries()` by calling
    // `actions` again, and a twin recorded since would now refuse a state on a path.
    checker.model().crash_twins.set_active(false);
    checker.model().repeats.set_active(false);
    let discoveries = checker.discoveries();
    let model = checker.model();
    let crash_twins_refused = model.crash_twins.refused_generated();
    let crash_twins_not_expanded = model.crash_twins.refused_explored();

    // Why the run stopped: every limit that was reached makes it incomplete. (stateright stops
    // early by itself only when every property has a discovery, which cannot pass either.)
    let mut incomplete_reason = None;
    if let Some(n) = options.max_states {
        // The limit stateright applies, to its own count.
        if counted >= n {
            incomplete_reason = Some(format!("stopped at the state limit ({n} states)"));
        }
    }
    if let Some(t) = options.timeout.filter(|t| elapsed >= *t) {
        // stateright's own timeout, or ours.
        incomplete_reason = Some(format!("stopped at the time limit ({t:?})"));
    }
    if stopped_for.is_some() {
        incomplete_reason = stopped_for;
    }
    if incomplete_reason.is_none() && discoveries.len() == properties.len() {
        incomplete_reason = Some("stopped once every property had a discovery".to_string());
    }
    let complete = incomplete_reason.is_none();

    let results = property_results(model, &properties, complete, |name| {
        discoveries
            .get(name)
            .map(|path| path.clone().into_actions())
    });
    let seconds = elapsed.as_secs_f64();
    let audit = model
        .has(Reduction::CanonicalNetwork)
        .then(|| audit(model, options.audit));
    RunReport {
        complete,
        incomplete_reason,
        strategy: options.strategy,
        threads: options.threads.max(1),
        states,
        unique_states: unique,
        max_depth: checker.max_depth(),
        seconds,
        states_per_second: if seconds > 0.0 {
            unique as f64 / seconds
        } else {
            0.0
        },
        symmetry: symmetric,
        reductions,
        crash_twins_refused,
        crash_twins_not_expanded,
        repeats,
        repeats_before_built,
        walks: None,
        properties: results,
        audit,
    }
}

/// Audits the canonical network of `model` (check/audit.rs), unless `options` is `None`.
fn audit(model: &ClusterModel, options: Option<AuditOptions>) -> AuditOutcome {
    let Some(options) = options else {
        return AuditOutcome::Skipped;
    };
    let start = Instant::now();
    let report = audit_canonical_network(model, options);
    AuditOutcome::Ran {
        report,
        seconds: start.elapsed().as_secs_f64(),
    }
}

/// Each property's status, with its discovery (`discovery(name)`, a path of actions from the
/// initial state) replayed and re-checked.
fn property_results(
    model: &ClusterModel,
    properties: &[stateright::Property<ClusterModel>],
    complete: bool,
    discovery: impl Fn(&'static str) -> Option<Vec<crate::Action>>,
) -> Vec<PropertyResult> {
    properties
        .iter()
        .map(|p| {
            let kind = match p.expectation {
                Expectation::Sometimes => Kind::Sometimes,
                _ => Kind::Always,
            };
            let found = discovery(p.name);
            let status = match (kind, found.is_some(), complete) {
                (Kind::Always, true, _) => Status::Violated,
                (Kind::Always, false, true) => Status::Holds,
                (Kind::Always, false, false) => Status::NotViolatedSoFar,
                (Kind::Sometimes, true, _) => Status::Found,
                (Kind::Sometimes, false, _) => Status::NotFound,
            };
            let (trace, replay_error) = match found {
                None => (None, None),
                Some(actions) => match trace::replay(model, p.name, &actions) {
                    Ok(t) => (Some(t), None),
                    Err(e) => (None, Some(e.to_string())),
                },
            };
            PropertyResult {
                name: p.name,
                kind,
                status,
                trace,
                replay_error,
            }
        })
        .collect()
}

/// Runs random walks (`--strategy random`, `check/walks.rs`) until a limit: never complete.
fn run_walks(
    mut model: ClusterModel,
    options: &RunOptions,
    mut progress: impl FnMut(Progress),
) -> RunReport {
    // Walks take the model's steps as they are: no renaming, no search-only memos.
    model.symmetry = None;
    model.crash_twins = Default::default();
    model.repeats = Default::default();
    let mut reductions = model.rules_in_effect();
    reductions.retain(|r| *r != "crash-twins");
    let properties = model.properties();
    let stop = Arc::new(AtomicBool::new(false));
    model.stop = Arc::clone(&stop);
    let threads = options.threads.max(1);
    let timeout = match (options.timeout, options.max_states) {
        (None, None) => Some(DEFAULT_WALK_TIME),
        (t, _) => t,
    };
    let counters = WalkCounters::default();
    let start = Instant::now();
    let mut stopped_for: Option<String> = None;
    let discoveries = std::thread::scope(|scope| {
        let walker = scope.spawn(|| walks::walk(&model, options, &stop, &counters, None));
        let mut last_report = start;
        while !walker.is_finished() {
            std::thread::sleep(Duration::from_millis(100));
            if stopped_for.is_none() {
                stopped_for = limit_reached(timeout, options.max_memory, start);
                if stopped_for.is_some() {
                    stop.store(true, Ordering::Relaxed);
                }
            }
            if last_report.elapsed() >= Duration::from_secs(1) {
                last_report = Instant::now();
                progress(Progress {
                    states: counters.states.load(Ordering::Relaxed),
                    unique: counters.distinct.len(),
                    depth: counters.depth.load(Ordering::Relaxed),
                    elapsed: start.elapsed(),
                });
            }
        }
        match walker.join() {
            Ok(d) => d,
            // A walker that panicked is a defect of the model; surface it.
            Err(panic) => std::panic::resume_unwind(panic),
        }
    });
    let elapsed = start.elapsed();
    // Discoveries are replayed: the model must offer its actions again.
    stop.store(false, Ordering::Relaxed);
    let states = counters.states.load(Ordering::Relaxed);
    let walk_count = counters.walks.load(Ordering::Relaxed);
    let limit = stopped_for.unwrap_or_else(|| match options.max_states {
        Some(n) => format!("stopped at the state limit ({n} states)"),
        None => "stopped".to_string(),
    });
    let incomplete_reason = format!(
        "random walks take a sample of the behaviours, never all ({walk_count} walks of at most {} steps, seed {}); {limit}",
        options.walk_steps, options.seed
    );
    let results = property_results(&model, &properties, false, |name| {
        discoveries.get(name).cloned()
    });
    let unique = counters.distinct.len();
    let seconds = elapsed.as_secs_f64();
    RunReport {
        complete: false,
        incomplete_reason: Some(incomplete_reason),
        strategy: Strategy::Random,
        threads,
        states,
        unique_states: unique,
        max_depth: counters.depth.load(Ordering::Relaxed),
        seconds,
        states_per_second: if seconds > 0.0 {
            unique as f64 / seconds
        } else {
            0.0
        },
        symmetry: false,
        reductions,
        crash_twins_refused: 0,
        crash_twins_not_expanded: 0,
        repeats: 0,
        repeats_before_built: 0,
        walks: Some(WalkSummary {
            walks: walk_count,
            seed: options.seed,
            max_steps: options.walk_steps,
        }),
        properties: results,
        // Walks never pass; their verdicts are what they saw, on the model as it is.
        audit: None,
    }
}

/// Why a run that started at `start` must stop now, if it must: its time limit passed, or the
/// process's resident memory exceeds its memory limit.
fn limit_reached(
    timeout: Option<Duration>,
    max_memory: Option<u64>,
    start: Instant,
) -> Option<String> {
    if let Some(t) = timeout.filter(|t| start.elapsed() >= *t) {
        return Some(format!("stopped at the time limit ({t:?})"));
    }
    max_memory
        .filter(|l| resident_bytes().is_some_and(|r| r > *l))
        .map(|limit| format!("stopped at the memory limit ({} MiB resident)", limit >> 20))
}

/// The process's resident memory in bytes, where the system says (Linux: `/proc/self/statm`,
/// assuming 4 KiB pages); `None` elsewhere, and then no memory limit applies.
pub fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

/// Half of the machine's memory, where the system says (Linux: `/proc/meminfo`): the default
/// memory limit of `slotguard check`.
pub fn half_of_memory() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024 / 2)
}
