//! Random walks (`slotguard check --strategy random`): seeded random behaviours, every property
//! checked at every state of every walk, for configurations no search can exhaust
//! (specs/protocol.md §8.11).
//!
//! Why: a depth-first search of `large` explores its shallow interleavings first and does not
//! reach a failover in any time a run can spend (specs/properties.md, "The scale target"), so
//! its failover properties would go unchecked against two replicas of one master racing. A
//! random walk reaches a failover in a few dozen steps. It proves nothing about the behaviours
//! it does not take, and a run is never complete: the report says INCOMPLETE, whatever it found
//! (specs/properties.md, "Random walks").
//!
//! A walk starts at the initial state, or at a state an earlier walk of its thread was first to
//! visit, with that walk's path to it; and takes, at each state, one of the actions the model
//! offers there that has a successor within bounds (a no-op delivery has none). It ends at a
//! state with no such action, at a state it already visited, or at the step bound. The steps
//! are the model's own, with every exact reduction of the model (specs/protocol.md §8.4,
//! §8.6–8.8), whose verdicts are the full model's. The search-only memos (crash twins, exact
//! repeats) stay off: they refuse states a search has already seen, and a walk has no such set.
//! A discovery is the walk's own path, replayed and re-checked like any other
//! ([`crate::trace::replay`]).
//!
//! Which action a walk takes is biased, three ways, each drawn at random for the walk; every
//! step is still one the model offers, so the walks stay behaviours of the model:
//! - **one suspect** (every other walk): peer timeouts fire about one node only, as the
//!   `suspects` bound does for a whole run. Uniform choices spend the suspicion budget on
//!   scattered pairs, and a failover needs all of it on one node (two masters' and each
//!   candidate's own suspicion; specs/protocol.md §5).
//! - **the suspect cut off**: in such a walk the suspect's messages are held back up to a step
//!   drawn for the walk (up to a quarter of the longest walk), or until nothing else can happen.
//!   Any message from it restarts its observers' timeouts and a PONG ends their suspicion, and a
//!   uniform walk delivers one long before a quorum suspects it. Then its messages flow again,
//!   and it rejoins.
//! - **messages before timers**: at each step the walk takes a delivery, if one has a
//!   successor, with a probability drawn for the walk from [0, 1), and otherwise any action.
//!   Timers fire after seconds and messages arrive within milliseconds; a uniform choice lets
//!   reports expire and elections time out before the messages they wait for arrive. A
//!   probability drawn per walk, rather than one for all, keeps the walks' coverage while
//!   reaching promotions far more often.
//!
//! Starting from novel states is what reaches the rare parts: a failover is rare in walks from
//! the start, and the states after it are visited one path at a time. Three walks in four start
//! from one of the last 4,096 novel states their thread visited (the frontier, from which a
//! walk reaches further), with its path, and half of those keep the suspect of the walk that
//! reached it (the others draw their own); three in four keep it when the state is within a
//! failure episode of that suspect (some node has it PFAIL or FAIL). Keeping the suspect is for
//! the races for a failed master's slots: a restarted walk that draws its own suspect spends
//! the rest of the suspicion budget on another node, while always keeping it narrows the walks.
//! What each choice costs and gains is measured in specs/properties.md ("Random walks", "Walk
//! biases").
//!
//! The walks depend only on the seed and the thread: thread `t` draws from a generator seeded
//! with `seed + t`. Which walks a run takes before its limit depends on timing, so two runs
//! agree on their first walks, not on their number.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;

use dashmap::DashSet;
use nohash_hasher::BuildNoHashHasher;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use stateright::{Expectation, Model};

use crate::hashed::stable_hash;
use crate::model::{Action, ClusterModel, ClusterState};
use crate::run::RunOptions;
use slotguard_protocol::ids::NodeId;
use slotguard_protocol::state::Health;
use slotguard_protocol::timer::Timer;

/// Takes actions out of `actions` at random until one has a successor within bounds.
fn pick(
    model: &ClusterModel,
    state: &ClusterState,
    actions: &mut Vec<Action>,
    rng: &mut StdRng,
) -> Option<(Action, ClusterState)> {
    while !actions.is_empty() {
        let action = actions.swap_remove(rng.random_range(0..actions.len()));
        if let Some(next) = model.next_state(state, action.clone()) {
            if model.within_boundary(&next) {
                return Some((action, next));
            }
        }
    }
    None
}

/// Whether a walk with this `suspect` leaves `action` out: a peer timeout about another node,
/// and, while the suspect is `cut_off`, a delivery of one of its messages.
fn held_back(action: &Action, suspect: NodeId, cut_off: bool) -> bool {
    match action {
        Action::Timeout {
            timer: Timer::PeerTimeout(p),
            ..
        } => *p != suspect,
        Action::Deliver(env) => cut_off && env.src == suspect,
        _ => false,
    }
}

/// The longest walk, in steps, unless the run says otherwise: the deepest path of any complete
/// run of an embedded configuration is 64 steps (`compete`); behaviours within the budgets
/// seldom need more, and a walk ends sooner when nothing is left to do.
pub const DEFAULT_WALK_STEPS: usize = 400;

/// How many novel states each thread keeps to start walks from: the most recent ones.
const POOL: usize = 4096;

/// The probability that a walk starts from a kept novel state rather than the initial state.
const RESTART: f64 = 0.75;

/// The probability that a walk started from a kept state keeps the suspect of the walk that
/// reached that state (and then has one, or none, as that walk had), instead of drawing its own.
const KEEP_SUSPECT: f64 = 0.5;

/// The same, when the kept state is within a failure episode of that suspect
/// ([`in_episode`]): the walk that reached it has spent suspicions on the suspect, and a race
/// for its slots needs the rest of the budget spent on it too.
const KEEP_SUSPECT_IN_EPISODE: f64 = 0.75;

/// Whether some node has `suspect` PFAIL or FAIL in `state`.
fn in_episode(state: &ClusterState, suspect: NodeId) -> bool {
    state
        .nodes
        .iter()
        .any(|n| n.peer(suspect).is_some_and(|p| p.health != Health::Ok))
}

/// Counters shared by the walking threads, read by the run loop for progress.
#[derive(Default)]
pub struct WalkCounters {
    /// Walks started.
    pub walks: AtomicU64,
    /// States visited along walks (each walk's initial state included).
    pub states: AtomicUsize,
    /// Longest walk so far, in steps.
    pub depth: AtomicUsize,
    /// Distinct states visited, by fingerprint.
    pub distinct: DashSet<u64, BuildNoHashHasher<u64>>,
}

/// What the walks found: per property, the path of the first walk that violated (always) or
/// satisfied (sometimes) it.
pub type Discoveries = BTreeMap<&'static str, Vec<Action>>;

/// Sees each state the walks are first to visit (for measurements of coverage).
pub type Observer<'a> = &'a (dyn Fn(&ClusterState) + Sync);

/// Walks `model` on `options.threads` threads, from `options.seed`, each walk at most
/// `options.walk_steps` long, until `stop` is set, and returns the discoveries.
/// `options.max_states` (states visited) sets `stop` too; every other limit is the caller's.
pub fn walk(
    model: &ClusterModel,
    options: &RunOptions,
    stop: &AtomicBool,
    counters: &WalkCounters,
    observe: Option<Observer<'_>>,
) -> Discoveries {
    let Some(init) = model.init_states().into_iter().next() else {
        return Discoveries::new();
    };
    let properties = model.properties();
    let shared = Shared {
        model,
        found: properties.iter().map(|_| AtomicBool::new(false)).collect(),
        properties,
        discoveries: Mutex::new(Discoveries::new()),
        counters,
        stop,
        max_steps: options.walk_steps,
        max_states: options.max_states,
        init,
        observe,
    };
    std::thread::scope(|scope| {
        for t in 0..options.threads.max(1) {
            let shared = &shared;
            scope.spawn(move || {
                let mut walker = Walker {
                    shared,
                    rng: StdRng::seed_from_u64(options.seed.wrapping_add(t as u64)),
                    pool: Vec::new(),
                    novel: 0,
                    actions: Vec::new(),
                    others: Vec::new(),
                };
                while !stop.load(Ordering::Relaxed) {
                    walker.walk_once();
                }
            });
        }
    });
    shared
        .discoveries
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
}

/// What the walking threads share.
struct Shared<'a> {
    model: &'a ClusterModel,
    properties: Vec<stateright::Property<ClusterModel>>,
    /// Per property: discovered already (by any thread).
    found: Vec<AtomicBool>,
    discoveries: Mutex<Discoveries>,
    counters: &'a WalkCounters,
    stop: &'a AtomicBool,
    max_steps: usize,
    max_states: Option<usize>,
    init: ClusterState,
    observe: Option<Observer<'a>>,
}

/// How one walk chooses, drawn when it starts (module documentation).
struct Bias {
    /// The one node timeouts fire about, if any.
    suspect: Option<NodeId>,
    /// Until how many steps into the walk the suspect's messages are held back.
    heal_at: usize,
    /// The probability of taking a delivery, when one has a successor.
    eager: f64,
}

/// A novel state kept to start walks from: the path that reached it, and the suspect of the
/// walk that took that path.
#[derive(Clone)]
struct Start {
    state: ClusterState,
    path: Vec<Action>,
    suspect: Option<NodeId>,
}

/// One thread: its generator, and the novel states it keeps to start walks from.
struct Walker<'a> {
    shared: &'a Shared<'a>,
    rng: StdRng,
    /// The last [`POOL`] novel states this thread visited, in a ring.
    pool: Vec<Start>,
    /// Novel states this thread has visited.
    novel: u64,
    /// The actions of the state at hand, and (when the walk takes deliveries first) the rest.
    actions: Vec<Action>,
    others: Vec<Action>,
}

impl Walker<'_> {
    /// Takes one walk.
    fn walk_once(&mut self) {
        let shared = self.shared;
        shared.counters.walks.fetch_add(1, Ordering::Relaxed);
        let (mut state, mut path, kept) = if !self.pool.is_empty() && self.rng.random_bool(RESTART)
        {
            let start = self.pool[self.rng.random_range(0..self.pool.len())].clone();
            let keep = match start.suspect {
                Some(suspect) if in_episode(&start.state, suspect) => KEEP_SUSPECT_IN_EPISODE,
                _ => KEEP_SUSPECT,
            };
            let kept = self.rng.random_bool(keep).then_some(start.suspect);
            (start.state, start.path, kept)
        } else {
            (shared.init.clone(), Vec::new(), None)
        };
        let start = path.len();
        let drawn = self
            .rng
            .random_bool(0.5)
            .then(|| NodeId(self.rng.random_range(0..state.nodes.len()) as u16));
        let bias = Bias {
            suspect: kept.unwrap_or(drawn),
            heal_at: self.rng.random_range(0..=shared.max_steps / 4),
            eager: self.rng.random_range(0.0..1.0),
        };
        let mut cut_off = bias.suspect.is_some();
        let mut hash = stable_hash(&state);
        let mut visited = HashSet::new();
        visited.insert(hash);
        loop {
            self.visit(&state, hash, &path, bias.suspect);
            if path.len() >= shared.max_steps || shared.stop.load(Ordering::Relaxed) {
                return;
            }
            cut_off &= path.len() - start < bias.heal_at;
            let Some((action, next)) = self.choose(&state, &bias, &mut cut_off) else {
                return;
            };
            hash = stable_hash(&next);
            if !visited.insert(hash) {
                return;
            }
            path.push(action);
            state = next;
            shared
                .counters
                .depth
                .fetch_max(path.len(), Ordering::Relaxed);
        }
    }

    /// Counts `state`, keeps it as a start if it is novel (reached by `path` in a walk with
    /// `suspect`), and checks every property not yet discovered in it.
    fn visit(&mut self, state: &ClusterState, hash: u64, path: &[Action], suspect: Option<NodeId>) {
        let shared = self.shared;
        let states = shared.counters.states.fetch_add(1, Ordering::Relaxed) + 1;
        if shared.max_states.is_some_and(|m| states >= m) {
            shared.stop.store(true, Ordering::Relaxed);
        }
        if shared.counters.distinct.insert(hash) {
            if let Some(observe) = shared.observe {
                observe(state);
            }
            let start = Start {
                state: state.clone(),
                path: path.to_vec(),
                suspect,
            };
            // A ring: the newest novel state replaces the oldest one kept.
            let slot = (self.novel % POOL as u64) as usize;
            self.novel += 1;
            if slot < self.pool.len() {
                self.pool[slot] = start;
            } else {
                self.pool.push(start);
            }
        }
        for (p, found) in shared.properties.iter().zip(&shared.found) {
            if found.load(Ordering::Relaxed) {
                continue;
            }
            let holds = (p.condition)(shared.model, state);
            let discovered = match p.expectation {
                Expectation::Sometimes => holds,
                _ => !holds,
            };
            if discovered && !found.swap(true, Ordering::Relaxed) {
                let mut d = shared.discoveries.lock().unwrap_or_else(|e| e.into_inner());
                d.insert(p.name, path.to_vec());
            }
        }
    }

    /// The next step of a walk with `bias` from `state`: a random action the model offers
    /// there, with a successor within bounds. The suspect stops being `cut_off` when nothing
    /// else is left.
    fn choose(
        &mut self,
        state: &ClusterState,
        bias: &Bias,
        cut_off: &mut bool,
    ) -> Option<(Action, ClusterState)> {
        let model = self.shared.model;
        loop {
            self.actions.clear();
            model.actions(state, &mut self.actions);
            if let Some(suspect) = bias.suspect {
                let cut = *cut_off;
                self.actions.retain(|a| !held_back(a, suspect, cut));
            }
            let next = if self.rng.random_bool(bias.eager) {
                let others = &mut self.others;
                others.clear();
                self.actions.retain(|a| {
                    let delivery = matches!(a, Action::Deliver(_));
                    if !delivery {
                        others.push(a.clone());
                    }
                    delivery
                });
                pick(model, state, &mut self.actions, &mut self.rng)
                    .or_else(|| pick(model, state, &mut self.others, &mut self.rng))
            } else {
                pick(model, state, &mut self.actions, &mut self.rng)
            };
            if next.is_none() && *cut_off {
                *cut_off = false;
                continue;
            }
            return next;
        }
    }
}
