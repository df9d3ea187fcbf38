//! FAIL-undo fires in the step that arms it (specs/protocol.md §8.6). The reduction is exact:
//! the urgent model reaches a subset of the lazy model's states, and every lazy state, with its
//! pending FAIL-undo fired, is an urgent state — up to the undo flag of a crashed node, which a
//! restart forgets and no property reads. The convergence continuation runs the same from a
//! state and from that state with its FAIL-undo fired.

use std::collections::HashSet;

mod common;

use slotguard_check::hashed::{stable_hash, Hashed};
use slotguard_check::settle::settle;
use slotguard_check::Reduction;
use slotguard_check::{CheckConfig, ClusterState};
use slotguard_protocol::{Health, Timer};

/// `s` with every pending FAIL-undo fired, and a crashed node's FAIL flags all "undo ready".
fn fired(s: &ClusterState) -> ClusterState {
    let mut s = s.clone();
    for i in 0..s.nodes.len() {
        let mut node = (*s.nodes[i]).clone();
        let mut timers = (*s.timers[i]).clone();
        if s.crashed[i] {
            for p in &mut node.peers {
                if p.health.is_fail() {
                    p.health = Health::Fail { undo_ready: true };
                }
            }
        }
        let pending: Vec<Timer> = timers
            .iter()
            .filter(|t| matches!(t, Timer::FailUndo(_)))
            .cloned()
            .collect();
        for timer in pending {
            timers.remove(&timer);
            if let Timer::FailUndo(x) = timer {
                let p = &mut node.peers[x.index()];
                if p.health == (Health::Fail { undo_ready: false }) {
                    p.health = Health::Fail { undo_ready: true };
                }
            }
        }
        s.nodes[i] = Hashed::new(node);
        s.timers[i] = Hashed::new(timers);
    }
    s
}

#[test]
fn urgent_fail_undo_reaches_the_lazy_states_with_their_fail_undo_fired() {
    let tiny = CheckConfig::embedded("tiny").expect("tiny is embedded");
    let crash_free = CheckConfig {
        crashes: 0,
        ..tiny.clone()
    };
    for config in [crash_free, tiny] {
        let urgent = config.model().expect("valid");
        assert!(urgent.reductions.has(Reduction::UrgentFailUndo));
        let mut lazy = urgent.clone();
        lazy.reductions = lazy.reductions.without(Reduction::UrgentFailUndo);

        let (mut urgent_states, mut urgent_fired) = (HashSet::new(), HashSet::new());
        common::search(&urgent, stable_hash, |s| {
            urgent_states.insert(stable_hash(s));
            urgent_fired.insert(stable_hash(&fired(s)));
        });
        let (mut lazy_states, mut lazy_fired) = (HashSet::new(), HashSet::new());
        let (mut pending, mut continuations) = (0usize, 0usize);
        common::search(&lazy, stable_hash, |s| {
            lazy_states.insert(stable_hash(s));
            let f = fired(s);
            lazy_fired.insert(stable_hash(&f));
            let has_pending = s
                .timers
                .iter()
                .any(|t| t.iter().any(|t| matches!(t, Timer::FailUndo(_))));
            if has_pending {
                pending += 1;
                // A sample of the continuations (each runs up to 24 rounds of the cluster).
                if pending % 16 == 0 {
                    assert_eq!(settle(&lazy, s), settle(&lazy, &f), "{s:?}");
                    continuations += 1;
                }
            }
        });
        assert!(
            urgent_states.is_subset(&lazy_states),
            "{}: an urgent state the lazy model does not reach",
            config.name
        );
        assert_eq!(urgent_fired, lazy_fired, "{}", config.name);
        assert!(
            urgent_states.len() < lazy_states.len() && continuations > 100,
            "{}: {} urgent, {} lazy states, {continuations} continuations compared",
            config.name,
            urgent_states.len(),
            lazy_states.len()
        );
    }
}
