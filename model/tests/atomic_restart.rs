//! A crash is followed at once by the restart (specs/protocol.md §8.8). The reduction is exact:
//! the atomic model reaches exactly the states of the model with separate restarts in which no
//! node is down; and every state with a node down, once that node restarts, is an atomic state
//! on which every property has the same verdict (a sometimes-property that held with the node
//! down holds after the restart too) and the convergence continuation runs the same.

use std::collections::HashSet;

mod common;

use slotguard_model::check::hashed::stable_hash;
use slotguard_model::check::settle::settle;
use slotguard_model::check::{Action, CheckConfig, ClusterModel, ClusterState};
use slotguard_model::NodeId;
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
    let atomic = config.model().expect("valid");
    assert!(atomic.atomic_restart);
    let mut separate = atomic.clone();
    separate.atomic_restart = false;
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
