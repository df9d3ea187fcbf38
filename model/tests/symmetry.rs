//! Symmetry reduction (check/symmetry.rs, specs/protocol.md §8.5): the reduced search must
//! reach every state up to renaming, give the same verdicts, and report the one case in which
//! the protocol tells interchangeable replicas apart.

use std::collections::HashSet;
use std::sync::Arc;

use slotguard_model::check::config::Replicas;
use slotguard_model::check::hashed::stable_hash;
use slotguard_model::check::network::Shared;
use slotguard_model::check::run::{self, RunOptions, Strategy};
use slotguard_model::check::symmetry::{representative, SymmetryClasses};
use slotguard_model::check::{Action, CheckConfig, ClusterModel, ClusterState, Envelope};
use slotguard_model::protocol::heartbeat::header;
use slotguard_model::{Epoch, Msg, NodeId, Role};
use stateright::Model;

mod common;

/// Three masters; master 2 has two replicas (n3, n4), the only interchangeable pair.
fn pair() -> CheckConfig {
    let mut c = CheckConfig::embedded("tiny").expect("tiny is embedded");
    c.replicas = Replicas::PerMaster(vec![0, 0, 2]);
    c.crashes = 1;
    c.suspicions = 2;
    c
}

fn with_symmetry(config: &CheckConfig) -> ClusterModel {
    let mut model = config.model().expect("valid");
    let classes = SymmetryClasses::of(&model.actor.layout);
    assert_eq!(classes.groups(), &[vec![NodeId(3), NodeId(4)]]);
    model.symmetry = Some(Arc::new(classes));
    model
}

/// Fingerprints of the representatives of the states an explicit search visits; with `reduce`,
/// the search (like stateright's DFS) skips a state whose representative it has seen.
fn orbits(model: &ClusterModel, reduce: bool) -> (usize, HashSet<u64>) {
    let mut orbits = HashSet::new();
    let key = |s: &ClusterState| {
        if reduce {
            stable_hash(&representative(s))
        } else {
            stable_hash(s)
        }
    };
    let states = common::search(model, key, |s| {
        orbits.insert(stable_hash(&representative(s)));
    });
    (states, orbits)
}

#[test]
fn the_reduced_search_reaches_every_state_up_to_renaming() {
    let model = with_symmetry(&pair());
    let (all, every_orbit) = orbits(&model, false);
    let (reduced, reached) = orbits(&model, true);
    assert!(
        reduced * 3 < all * 2,
        "symmetry saved little: {reduced} of {all}"
    );
    let missed = every_orbit.difference(&reached).count();
    let extra = reached.difference(&every_orbit).count();
    assert!(
        missed == 0 && extra == 0,
        "{missed} of {} orbits not reached, {extra} unknown",
        every_orbit.len()
    );
}

#[test]
fn symmetric_and_plain_runs_agree_on_every_property() {
    let config = pair();
    let options = RunOptions {
        strategy: Strategy::Dfs,
        threads: 2,
        max_states: None,
        timeout: None,
    };
    let plain = run::run(config.model().expect("valid"), &options, |_| {});
    let reduced = run::run(with_symmetry(&config), &options, |_| {});
    assert!(plain.complete && reduced.complete && reduced.symmetry && !plain.symmetry);
    assert!(reduced.unique_states < plain.unique_states);
    for p in &plain.properties {
        let r = reduced
            .properties
            .iter()
            .find(|r| r.name == p.name)
            .expect("same catalogue");
        assert_eq!(p.status, r.status, "{}", p.name);
    }
    let sound = reduced
        .properties
        .iter()
        .find(|r| r.name == "symmetry-sound")
        .expect("symmetry runs check their own soundness");
    assert_eq!(sound.status, run::Status::Holds);
    // BFS ignores symmetry in stateright; the report must not claim it.
    let bfs = run::run(
        with_symmetry(&config),
        &RunOptions {
            strategy: Strategy::Bfs,
            ..options
        },
        |_| {},
    );
    assert!(!bfs.symmetry);
    assert_eq!(bfs.unique_states, plain.unique_states);
}

#[test]
fn a_collision_between_interchangeable_replicas_is_reported() {
    let model = with_symmetry(&pair());
    let mut s = model.init_states().remove(0);
    // Both replicas as masters with configEpoch 5: n4's header reaches n3.
    let mut promoted = Vec::new();
    for n in [3, 4] {
        let mut st = (*s.nodes[n]).clone();
        st.role = Role::Master;
        st.config_epoch = Epoch(5);
        st.current_epoch = Epoch(5);
        promoted.push(st);
    }
    let h = header(&promoted[1]);
    for (n, st) in [3, 4].into_iter().zip(promoted) {
        s.nodes[n] = slotguard_model::check::hashed::Hashed::new(st);
    }
    let env = Envelope {
        src: NodeId(4),
        dst: NodeId(3),
        msg: Msg::Pong(h),
    };
    let next = model
        .next_state(&s, Action::Deliver(Shared::new(env)))
        .expect("the delivery is recorded");
    assert!(next.ghost.asymmetric_collision);
    let sound = model
        .properties()
        .into_iter()
        .find(|p| p.name == "symmetry-sound")
        .expect("present under symmetry");
    assert!(!(sound.condition)(&model, &next));
    assert!((sound.condition)(&model, &s));
}
