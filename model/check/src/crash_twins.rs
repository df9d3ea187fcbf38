//! Crash-twin subsumption: a state is not explored when a state equal to it in everything but
//! the count of crashes, with fewer crashes spent, is explored (specs/protocol.md §8.10).
//!
//! Why it is exact: no step reads the count of crashes except to offer a crash-restart while
//! the budget lasts, and no property reads it. So the twin with fewer crashes spent offers every
//! step the state offers, each step reaches the same state but for the count, and the twin has
//! crash-restarts left besides: every state reachable from the state is reachable from its twin,
//! but for the count, with the same verdict for every property.
//!
//! Why it pays: after a crash that loses something (a suspicion, a report, an election in
//! progress), the cluster often gets back, by ordinary steps, to a state that a crash-free
//! behaviour reaches too: the count of crashes alone tells apart many states that are otherwise
//! equal (figures in specs/protocol.md §8.10).
//!
//! How: the search calls [`ClusterModel::within_boundary`](crate::ClusterModel) once for
//! every state it generates, before it looks the state up among those it has seen. There, a
//! state with crashes still to spend is recorded under the fingerprint of everything but its
//! count (of its symmetry representative under `--symmetry`), and a state is refused if a state
//! with fewer crashes was recorded under its fingerprint. A recorded state is explored by the
//! search, at once or later (it was new or seen before), so a refused state always has an
//! explored twin. Which states are refused depends on the order of the search, so the count of
//! unique states of a multi-threaded run varies a little from run to run; the verdicts do not.
//!
//! Pitfall: stateright rebuilds the paths of discoveries by replaying actions with `next_state`,
//! and its explorer lists successors the same way; neither calls `within_boundary`, so the memo
//! never refuses a step of a path. It refuses only while a run has it switched on
//! ([`CrashTwins::set_active`]), which `check::run` does for the search alone.

use std::hash::BuildHasherDefault;
use std::sync::atomic::{AtomicBool, Ordering};

use dashmap::DashMap;
use nohash_hasher::NoHashHasher;

use crate::counter::Counter;

/// The memo of crash twins: for each fingerprint of a state but for its count of crashes, the
/// fewest crashes of a recorded state with that fingerprint.
pub struct CrashTwins {
    active: AtomicBool,
    fewest: DashMap<u64, u8, BuildHasherDefault<NoHashHasher<u64>>>,
    /// Refused when generated: never counted by the search.
    refused_generated: Counter,
    /// Refused when explored: counted as unique, with no successors.
    refused_explored: Counter,
}

impl CrashTwins {
    /// An empty memo, switched off.
    pub fn new() -> CrashTwins {
        CrashTwins {
            active: AtomicBool::new(false),
            fewest: DashMap::default(),
            refused_generated: Counter::new(),
            refused_explored: Counter::new(),
        }
    }

    /// Switches refusing on (for a search) or off (for replaying paths).
    pub fn set_active(&self, on: bool) {
        self.active.store(on, Ordering::Relaxed);
    }

    /// Whether the memo refuses states now.
    pub fn is_active(&self) -> bool {
        self.active.load(Ordering::Relaxed)
    }

    /// Whether a state whose fingerprint but for the count of crashes is `key`, with `crashes`
    /// spent of a budget of `budget`, is to be explored; records it if it may be a twin of a
    /// later state (it has crashes to spend). `generated`: asked when the state is generated
    /// (else when it is explored), for the counts.
    pub fn admits(&self, key: u64, crashes: u8, budget: u8, generated: bool) -> bool {
        let admitted = if crashes < budget {
            let mut fewest = self.fewest.entry(key).or_insert(crashes);
            if *fewest < crashes {
                false
            } else {
                *fewest = crashes;
                true
            }
        } else {
            self.fewest
                .get(&key)
                .is_none_or(|fewest| *fewest >= crashes)
        };
        if !admitted {
            let count = if generated {
                &self.refused_generated
            } else {
                &self.refused_explored
            };
            count.incr();
        }
        admitted
    }

    /// How many states were refused because a twin with fewer crashes was explored.
    pub fn refused(&self) -> usize {
        self.refused_generated() + self.refused_explored()
    }

    /// How many generated states were refused (not counted by the search).
    pub fn refused_generated(&self) -> usize {
        self.refused_generated.get() as usize
    }

    /// How many states were refused when explored (counted as unique, with no successors).
    pub fn refused_explored(&self) -> usize {
        self.refused_explored.get() as usize
    }

    /// How many fingerprints are recorded.
    pub fn recorded(&self) -> usize {
        self.fewest.len()
    }
}

memo_impls!(CrashTwins);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_state_is_refused_only_after_a_twin_with_fewer_crashes() {
        let twins = CrashTwins::new();
        // A crashed state first: nothing recorded, so it is explored.
        assert!(twins.admits(7, 1, 1, true));
        // Its crash-free twin is explored and recorded.
        assert!(twins.admits(7, 0, 1, true));
        // Now the crashed one is refused, the crash-free one is not (the search dedups it).
        assert!(!twins.admits(7, 1, 1, true));
        assert!(twins.admits(7, 0, 1, true));
        // Other fingerprints are unaffected.
        assert!(twins.admits(8, 1, 1, false));
        assert_eq!(
            (twins.refused_generated(), twins.refused_explored()),
            (1, 0)
        );
        // With a budget of two: one crash spent is recorded, and refuses two, not one.
        assert!(twins.admits(9, 1, 2, true));
        assert!(twins.admits(9, 1, 2, true));
        assert!(!twins.admits(9, 2, 2, false));
        assert_eq!(twins.recorded(), 2);
        assert_eq!(
            (twins.refused_generated(), twins.refused_explored()),
            (1, 1)
        );
    }
}
