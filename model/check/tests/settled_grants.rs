//! Vote grants of an epoch in which no vote and no promotion can happen any more are forgotten
//! (specs/protocol.md §8.7). The reduction is exact: the model that forgets reaches exactly the
//! states of the model that remembers, with those grants forgotten, and forgetting never changes
//! a property's value in a state.

use std::collections::HashSet;

mod common;

use slotguard_check::hashed::{stable_hash, Hashed};
use slotguard_check::Reduction;
use slotguard_check::{CheckConfig, ClusterState};
use slotguard_protocol::{Bug, Bugs};
use stateright::Model;

/// `s` with its settled grants forgotten.
fn forgotten(s: &ClusterState) -> ClusterState {
    match s.ghost.without_settled_grants(&s.nodes, &s.crashed) {
        Some(ghost) => ClusterState {
            ghost: Hashed::new(ghost),
            ..s.clone()
        },
        None => s.clone(),
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
    // The third: masters that vote again in an epoch (a mutant; a duplicated request suffices),
    // so that what is forgotten must also keep every second vote visible.
    let runs = [
        (base.clone(), Bugs::NONE),
        (
            CheckConfig {
                crashes: 1,
                suspicions: 3,
                suspects: Some(vec![2]),
                ..base.clone()
            },
            Bugs::NONE,
        ),
        (base, Bugs::only(Bug::VoteTwicePerEpoch)),
    ];
    // One thread per configuration, and one per search: the searches are independent.
    common::each_in_parallel(&runs, |(config, bugs)| compare(config, *bugs));
}

fn compare(config: &CheckConfig, bugs: Bugs) {
    let forgetting = config.model_with(bugs).expect("valid");
    assert!(forgetting.reductions.has(Reduction::ForgetSettledGrants));
    let mut remembering = forgetting.clone();
    remembering.reductions = remembering
        .reductions
        .without(Reduction::ForgetSettledGrants);
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
            let properties = remembering.properties();
            common::search(&remembering, stable_hash, |s| {
                let f = forgotten(s);
                if f != *s {
                    settled += 1;
                    // What is forgotten never decides a property.
                    for p in &properties {
                        assert_eq!(
                            (p.condition)(&remembering, s),
                            (p.condition)(&remembering, &f),
                            "{} in\n{s:?}",
                            p.name
                        );
                    }
                }
                b.insert(stable_hash(&f));
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
