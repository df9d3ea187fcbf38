//! Random walks (`slotguard check --strategy random`): seeded random behaviours, every property
//! checked at every state of every walk, for configurations no search can exhaust.
//!
//! Why: a depth-first search of `large` explores its shallow interleavings first. In 600 s it
//! had not reached a single failover (specs/properties.md, "`large`"), so none of its
//! failover properties had been checked against two replicas of one master racing in a
//! 3 × 2 cluster. A random walk reaches a failover in a few dozen steps. It proves nothing
//! about the behaviours it does not take, and a run is never complete: the report says
//! INCOMPLETE, whatever it found (specs/properties.md, "Random walks").
//!
//! A walk starts at the initial state and takes, at each state, an action chosen uniformly
//! among the state's actions that have a successor within bounds (a no-op delivery has none).
//! Every other walk (at random) lets peer timeouts fire about one node only, drawn at random for
//! the walk, as the `suspects` bound does for a whole run: uniform choices spend the suspicion
//! budget on scattered pairs, and a failover needs all of it on one node (two masters' and each
//! candidate's own suspicion; specs/protocol.md §5). In such a walk the suspect's messages are
//! also held back, as if it were cut off, up to a step drawn at random for the walk (up to a
//! quarter of the longest walk) or until nothing else can happen: any message from it restarts
//! its observers' timeouts and a PONG ends their suspicion, and a uniform walk delivers one long
//! before a quorum suspects it. Then its messages flow again, and it rejoins. On `tiny`,
//! uniform walks ended, most of them, after six steps with the budget spent and nothing failed,
//! and none reached a failover in 5 s. Held back or not, every step is one the model offers:
//! the walks are behaviours of the model, and only their choice is biased.
//! It ends at a state with no such action, at a state it already visited, or at the depth
//! bound. The walks are the model's own steps, with every exact reduction of the model
//! (specs/protocol.md §8.4, §8.6–8.8): a walk is a behaviour of the reduced model, whose
//! behaviours are the full model's up to what the reductions merge. The search-only memos
//! (crash twins, exact repeats) stay off: they refuse states a search has already seen, and
//! a walk has no such set. A discovery is the walk's own path, replayed and re-checked like any
//! other ([`crate::check::trace::replay`]).
//!
//! The walks depend only on the seed and the thread: thread `t` draws from a generator seeded
//! with `seed + t`. Which walks a run takes before its limit depends on timing, so two runs
//! agree on their first walks, not on their number.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use dashmap::DashSet;
use nohash_hasher::BuildNoHashHasher;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use stateright::{Expectation, Model};

use crate::check::hashed::stable_hash;
use crate::check::model::{Action, ClusterModel};
use crate::ids::NodeId;
use crate::timer::Timer;

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
pub const DEFAULT_WALK_DEPTH: usize = 400;

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

/// Walks `model` on `threads` threads until `stop` is set, and returns the discoveries.
/// `max_states` (states visited) sets `stop` too; every other limit is the caller's.
pub fn walk(
    model: &ClusterModel,
    seed: u64,
    max_depth: usize,
    threads: usize,
    max_states: Option<usize>,
    stop: &Arc<AtomicBool>,
    counters: &WalkCounters,
) -> Discoveries {
    let properties = model.properties();
    let found: Vec<AtomicBool> = properties.iter().map(|_| AtomicBool::new(false)).collect();
    let discoveries = Mutex::new(Discoveries::new());
    std::thread::scope(|scope| {
        for t in 0..threads.max(1) {
            let (properties, found, discoveries) = (&properties, &found, &discoveries);
            scope.spawn(move || {
                let mut rng = StdRng::seed_from_u64(seed.wrapping_add(t as u64));
                let mut actions = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    counters.walks.fetch_add(1, Ordering::Relaxed);
                    let Some(mut state) = model.init_states().into_iter().next() else {
                        return;
                    };
                    // This walk's suspect, if it has one: timeouts about other nodes do not
                    // fire, and its messages are held back until step `heal_at`, or until
                    // nothing else can happen.
                    let suspect = rng
                        .random_bool(0.5)
                        .then(|| NodeId(rng.random_range(0..state.nodes.len()) as u16));
                    let heal_at = rng.random_range(0..=max_depth / 4);
                    let mut cut_off = suspect.is_some();
                    let mut path: Vec<Action> = Vec::new();
                    let mut visited = HashSet::new();
                    visited.insert(stable_hash(&state));
                    loop {
                        let states = counters.states.fetch_add(1, Ordering::Relaxed) + 1;
                        counters.distinct.insert(stable_hash(&state));
                        for (i, p) in properties.iter().enumerate() {
                            if found[i].load(Ordering::Relaxed) {
                                continue;
                            }
                            let holds = (p.condition)(model, &state);
                            let discovered = match p.expectation {
                                Expectation::Sometimes => holds,
                                _ => !holds,
                            };
                            if discovered && !found[i].swap(true, Ordering::Relaxed) {
                                let mut d = discoveries.lock().unwrap_or_else(|e| e.into_inner());
                                d.insert(p.name, path.clone());
                            }
                        }
                        if max_states.is_some_and(|m| states >= m) {
                            stop.store(true, Ordering::Relaxed);
                        }
                        if path.len() >= max_depth || stop.load(Ordering::Relaxed) {
                            break;
                        }
                        cut_off &= path.len() < heal_at;
                        let next = loop {
                            actions.clear();
                            model.actions(&state, &mut actions);
                            if let Some(suspect) = suspect {
                                actions.retain(|a| !held_back(a, suspect, cut_off));
                            }
                            let next = loop {
                                if actions.is_empty() {
                                    break None;
                                }
                                let i = rng.random_range(0..actions.len());
                                let action = actions.swap_remove(i);
                                if let Some(next) = model.next_state(&state, action.clone()) {
                                    if model.within_boundary(&next) {
                                        break Some((action, next));
                                    }
                                }
                            };
                            if next.is_none() && cut_off {
                                cut_off = false;
                                continue;
                            }
                            break next;
                        };
                        let Some((action, next)) = next else { break };
                        if !visited.insert(stable_hash(&next)) {
                            break;
                        }
                        path.push(action);
                        state = next;
                        counters.depth.fetch_max(path.len(), Ordering::Relaxed);
                    }
                }
            });
        }
    });
    discoveries.into_inner().unwrap_or_else(|e| e.into_inner())
}
