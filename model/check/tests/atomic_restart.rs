//! A crash is followed at once by the restart (specs/protocol.md §8.8). The reduction is exact:
//! the atomic model reaches exactly the states of the model with separate restarts in which no
//! node is down; and every state with a node down, once that node restarts, is an atomic state
//! on which every property has the same verdict (a sometimes-property that held with the node
//! down holds after the restart too) and the convergence continuation runs the same.
//!
//! A crash-restart that changes nothing but the count of crashes is not offered: every state
//! the plain atomic model reaches is, but for that count, a state the pruned one reaches, with
//! the same verdict for every property.

use std::collections::HashSet;

mod common;

use slotguard_check::hashed::stable_hash;
use slotguard_check::settle::settle;
use slotguard_check::Reduction;
use slotguard_check::{Action, CheckConfig, ClusterModel, ClusterState};
use slotguard_protocol::NodeId;
use stateright::{Expectation, Model};

/// `s` with every crashed node restarted.
fn restarted(model: &ClusterModel, s: &ClusterState) -> ClusterState {
    let mut s = s.clone();
    for n in 0..s.crashed.len() {
        if s.crashed[n] {
            s = model
                .next_state(&s, Action::Recover(NodeId(n as u16)))
                .expect("a restart is a step");
        }
    }
    s
}

#[test]
fn atomic_restarts_reach_the_same_states_with_every_node_up() {
    common::each_in_parallel(&common::tiny_and_two_elections(), compare);
}

fn compare(config: &CheckConfig) {
    let mut atomic = config.model().expect("valid");
    assert!(atomic.reductions.has(Reduction::AtomicRestart));
    // Compared below, separately: the separate model has its no-op restarts too.
    atomic.reductions = atomic.reductions.without(Reduction::SkipNoopCrashes);
    let mut separate = atomic.clone();
    separate.reductions = separate.reductions.without(Reduction::AtomicRestart);
    let properties = separate.properties();

    let mut a = HashSet::new();
    common::search(&atomic, stable_hash, |s| {
        assert!(
            s.crashed.iter().all(|c| !c),
            "an atomic state with a node down"
        );
        a.insert(stable_hash(s));
    });
    let (mut up, mut down) = (HashSet::new(), 0usize);
    common::search(&separate, stable_hash, |s| {
        if !s.crashed.iter().any(|&c| c) {
            up.insert(stable_hash(s));
            return;
        }
        down += 1;
        let r = restarted(&separate, s);
        assert!(
            a.contains(&stable_hash(&r)),
            "{}: a restarted state the atomic model does not reach:\n{r:?}",
            config.name
        );
        for p in &properties {
            let (before, after) = ((p.condition)(&separate, s), (p.condition)(&separate, &r));
            match p.expectation {
                Expectation::Always => assert_eq!(before, after, "{} in\n{s:?}", p.name),
                _ => assert!(!before || after, "{} in\n{s:?}", p.name),
            }
        }
        // The continuation itself, not only its verdict (a sample: each runs the cluster).
        if down % 8 == 0 {
            assert_eq!(settle(&separate, s), settle(&separate, &r), "{s:?}");
        }
    });
    assert_eq!(a, up, "{}", config.name);
    assert!(
        down > 1000,
        "{}: {down} states with a node down",
        config.name
    );
}

#[test]
fn skipping_no_op_crash_restarts_loses_no_state() {
    common::each_in_parallel(&common::tiny_and_two_elections(), compare_noop_crashes);
}

fn compare_noop_crashes(config: &CheckConfig) {
    let pruned = config.model().expect("valid");
    assert!(
        pruned.reductions.has(Reduction::AtomicRestart)
            && pruned.reductions.has(Reduction::SkipNoopCrashes)
    );
    let mut plain = pruned.clone();
    plain.reductions = plain.reductions.without(Reduction::SkipNoopCrashes);
    let verdicts = |s: &ClusterState| common::verdicts(&plain, s);

    let mut reached = std::collections::HashMap::new();
    let pruned_states = common::search(&pruned, stable_hash, |s| {
        reached.insert(s.fingerprint_but_crashes(), verdicts(s));
    });
    let plain_states = common::search(&plain, stable_hash, |s| {
        let v = reached
            .get(&s.fingerprint_but_crashes())
            .unwrap_or_else(|| {
                panic!(
                    "{}: a state the pruned model does not reach:\n{s:?}",
                    config.name
                )
            });
        assert_eq!(
            *v,
            verdicts(s),
            "{}: verdicts differ in\n{s:?}",
            config.name
        );
    });
    assert!(
        pruned_states < plain_states,
        "{}: nothing was pruned ({pruned_states} states)",
        config.name
    );
}
