//! Vote grants of an epoch in which no vote and no promotion can happen any more are forgotten
//! (specs/protocol.md §8.7). The reduction is exact: the model that forgets reaches exactly the
//! states of the model that remembers, with those grants forgotten — so every property, which
//! reads grants only for votes and promotions still possible, has the same verdicts.

use std::collections::HashSet;

mod common;

use slotguard_model::check::hashed::{stable_hash, Hashed};
use slotguard_model::check::{CheckConfig, ClusterState};

/// `s` with its settled grants forgotten.
fn forgotten(s: &ClusterState) -> u64 {
    match s.ghost.without_settled_grants(&s.nodes, &s.crashed) {
        Some(ghost) => stable_hash(&ClusterState {
            ghost: Hashed::new(ghost),
            ..s.clone()
        }),
        None => stable_hash(s),
    }
}

#[test]
fn forgetting_settled_grants_reaches_the_same_states_less_their_settled_grants() {
    // A replica that retries its election: its first epoch's grants settle once every node is
    // past it. With and without a crash-restart.
    let base = CheckConfig {
        elections: 2,
        crashes: 0,
        ..CheckConfig::embedded("tiny").expect("tiny is embedded")
    };
    let configs = [
        base.clone(),
        CheckConfig {
            crashes: 1,
            suspicions: 3,
            suspects: Some(vec![2]),
            ..base
        },
    ];
    // One thread per configuration, and one per search: the searches are independent.
    std::thread::scope(|scope| {
        for config in &configs {
            scope.spawn(move || compare(config));
        }
    });
}

fn compare(config: &CheckConfig) {
    let forgetting = config.model().expect("valid");
    assert!(forgetting.forget_settled_grants);
    let mut remembering = forgetting.clone();
    remembering.forget_settled_grants = false;
    let (a, (b, settled)) = std::thread::scope(|scope| {
        let forgetting = scope.spawn(|| {
            let mut a = HashSet::new();
            common::search(&forgetting, stable_hash, |s| {
                a.insert(stable_hash(s));
            });
            a
        });
        let remembering = scope.spawn(|| {
            let (mut b, mut settled) = (HashSet::new(), 0usize);
            common::search(&remembering, stable_hash, |s| {
                let f = forgotten(s);
                settled += usize::from(f != stable_hash(s));
                b.insert(f);
            });
            (b, settled)
        });
        (
            forgetting.join().expect("search"),
            remembering.join().expect("search"),
        )
    });
    assert_eq!(a, b, "{}", config.name);
    assert!(
        settled > 0,
        "{}: no reachable state has a settled grant",
        config.name
    );
}
