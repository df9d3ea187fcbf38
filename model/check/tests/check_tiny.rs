//! The checker on the CI configuration: a complete run in which every property has its expected
//! result, a pinned state count (a tripwire: any change to the protocol or the model that
//! changes the reachable state space must update it, and say why, in specs/properties.md), and
//! cross-checks of the checker itself.

use std::collections::HashSet;

use slotguard_check::config::Replicas;
use slotguard_check::hashed::stable_hash;
use slotguard_check::run::{self, RunOptions, Status, Strategy};
use slotguard_check::Reduction;
use slotguard_check::{CheckConfig, ClusterModel, ClusterState};
use stateright::Model;

mod common;

/// Unique states of the embedded `tiny` configuration without crash-twin refusals: its reachable
/// states under the other reductions, whatever the order of the search (specs/properties.md).
const TINY_UNIQUE_STATES: usize = 10_000;

/// Unique states of a one-thread run of `tiny` with every reduction: crash-twin refusals depend
/// on the order of the search (check/crash_twins.rs), which one thread fixes.
const TINY_UNIQUE_STATES_ONE_THREAD: usize = 8_071;

fn tiny() -> CheckConfig {
    CheckConfig::embedded("tiny").expect("tiny is embedded")
}

#[test]
fn tiny_is_complete_and_every_property_has_its_expected_result() {
    let model = tiny().model().expect("valid");
    let report = run::run(
        model,
        &RunOptions {
            strategy: Strategy::Dfs,
            threads: 2,
            max_states: None,
            timeout: None,
            max_memory: None,
            ..RunOptions::default()
        },
        |_| {},
    );
    for p in &report.properties {
        assert!(
            matches!(p.status, Status::Holds | Status::Found),
            "{}: {:?} {:?}",
            p.name,
            p.status,
            p.trace
        );
        assert!(p.replay_error.is_none(), "{}: {:?}", p.name, p.replay_error);
    }
    assert!(report.complete);
    assert!(report.passed());
    assert!(report.crash_twins_refused > 0);

    let counted = |threads: usize, twins: bool| {
        let mut model = tiny().model().expect("valid");
        model.reductions = model.reductions.set(Reduction::SkipCrashTwins, twins);
        let options = RunOptions {
            strategy: Strategy::Dfs,
            threads,
            max_states: None,
            timeout: None,
            max_memory: None,
            ..RunOptions::default()
        };
        let report = run::run(model, &options, |_| {});
        assert!(report.passed());
        report.unique_states
    };
    assert_eq!(counted(2, false), TINY_UNIQUE_STATES);
    assert_eq!(counted(1, true), TINY_UNIQUE_STATES_ONE_THREAD);
}

/// DFS and BFS explore the same state space and agree on every verdict.
#[test]
fn bfs_and_dfs_agree() {
    let mut config = tiny();
    config.crashes = 0;
    let reports: Vec<_> = [Strategy::Dfs, Strategy::Bfs]
        .into_iter()
        .map(|strategy| {
            let options = RunOptions {
                strategy,
                threads: 2,
                max_states: None,
                timeout: None,
                max_memory: None,
                ..RunOptions::default()
            };
            run::run(config.model().expect("valid"), &options, |_| {})
        })
        .collect();
    assert!(reports[0].passed() && reports[1].passed());
    assert_eq!(reports[0].unique_states, reports[1].unique_states);
    assert_eq!(reports[0].states, reports[1].states);
}

/// stateright's own verdict on a complete run agrees: every always-property holds, every
/// sometimes-property has an example.
#[test]
fn stateright_assert_properties_on_a_complete_run() {
    use stateright::Checker;
    let mut config = tiny();
    config.crashes = 0;
    let checker = config
        .model()
        .expect("valid")
        .checker()
        .threads(2)
        .spawn_dfs()
        .join();
    assert!(checker.is_done());
    checker.assert_properties();
}

/// A run cut short by a limit is never reported as a pass (stateright 0.31 says `is_done`).
#[test]
fn a_truncated_run_is_incomplete() {
    let options = RunOptions {
        strategy: Strategy::Dfs,
        threads: 1,
        max_states: Some(5_000),
        timeout: None,
        max_memory: None,
        ..RunOptions::default()
    };
    let report = run::run(tiny().model().expect("valid"), &options, |_| {});
    assert!(!report.complete);
    assert!(!report.passed());
    assert!(report.properties.iter().all(|p| p.status != Status::Holds));
}

/// Every state reachable from the initial one, by explicit search (small models only).
fn reachable(model: &ClusterModel) -> Vec<ClusterState> {
    let mut all = Vec::new();
    common::search(model, stable_hash, |s| all.push(s.clone()));
    all
}

/// Everything of a state but the network: what the nodes are, know and stored, and the history.
fn nodes_and_history(s: &ClusterState) -> u64 {
    stable_hash(&(&s.nodes, &s.crashed, &s.storage, &s.timers, &s.ghost))
}

/// specs/protocol.md §8.2 (1): dropping messages reaches no node state that the duplicating
/// network without drops does not, so the default network loses no behaviour of the nodes; and
/// every always-property holds in every lossy state too, convergence (which reads the messages
/// in flight) included. (Lossy state spaces explode — every subset of the envelopes in flight
/// is a network state — so this compares the configurations where a lossy search completes.)
#[test]
fn lossy_and_duplicating_reach_the_same_node_states() {
    for (crashes, suspicions) in [(0, 1), (1, 0)] {
        let mut config = tiny();
        config.replicas = Replicas::Each(0);
        config.crashes = crashes;
        config.suspicions = suspicions;
        let plain = config.model().expect("valid");
        config.network = slotguard_check::NetworkKind::LossyDuplicating;
        let lossy = config.model().expect("valid");
        let a: HashSet<u64> = reachable(&plain).iter().map(nodes_and_history).collect();
        let lossy_states = reachable(&lossy);
        let b: HashSet<u64> = lossy_states.iter().map(nodes_and_history).collect();
        for p in lossy.properties() {
            if p.expectation == stateright::Expectation::Always {
                for s in &lossy_states {
                    assert!((p.condition)(&lossy, s), "{} fails in\n{s:?}", p.name);
                }
            }
        }
        assert!(
            lossy_states.len() > a.len(),
            "the lossy search explored drops"
        );
        assert_eq!(a, b, "crashes={crashes} suspicions={suspicions}");
    }
}

/// Property 11 is as far as a node can go without clocks: `tiny` reaches a state in which two
/// live nodes accept writes for one slot (a master that has timed out nobody, and its replica
/// that has won its slot), the window in which Redis Cluster, too, loses acknowledged writes
/// (specs/properties.md, "What property 11 does not say").
#[test]
fn two_nodes_accept_writes_for_one_slot_in_some_state() {
    use slotguard_check::properties::{names, Witness};
    let mut config = CheckConfig::embedded("tiny").expect("tiny is embedded");
    config.witnesses = vec![Witness::TwoWriters];
    let report = run::run(
        config.model().expect("valid"),
        &RunOptions::default(),
        |_| {},
    );
    let found = report
        .properties
        .iter()
        .find(|p| p.name == names::TWO_WRITERS);
    assert_eq!(found.map(|p| p.status), Some(Status::Found));
}
