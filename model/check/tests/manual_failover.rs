//! Manual failover (`CLUSTER FAILOVER`, specs/protocol.md §6.1) under the checker: the default
//! and FORCE modes keep every property, TAKEOVER does not (specs/properties.md, "Manual
//! failover").

use slotguard_check::config::Replicas;
use slotguard_check::properties::names;
use slotguard_check::trace::{describe_action, replay};
use slotguard_check::CheckConfig;
use slotguard_protocol::{FailoverMode, Role};
use stateright::{Checker, HasDiscoveries, Model};

mod common;

use common::follow;

/// `tiny` with master 2's two replicas, no faults, and `budget` manual failovers in `modes`.
fn manual(modes: &[FailoverMode], budget: u8, elections: u64) -> CheckConfig {
    let mut config = CheckConfig::embedded("tiny").expect("tiny is embedded");
    config.replicas = Replicas::PerMaster(vec![0, 0, 2]);
    config.crashes = 0;
    config.suspicions = 0;
    config.elections = elections;
    config.manual_failovers = budget;
    config.failover_modes = modes.to_vec();
    config
}

/// The default mode, step by step: the replica asks, the master pauses and says so in its next
/// header, the replica runs an election its master need not be FAIL for, wins, and the old
/// master follows it. Every property holds along the way.
#[test]
fn a_default_manual_failover_swaps_master_and_replica() {
    let config = manual(&[FailoverMode::Default], 1, 1);
    let model = config.model().expect("valid config");
    let schedule = [
        "operator: CLUSTER FAILOVER default to n3",
        "n3 -> n2: MFSTART",
        "n2: timer Tick",
        "n2 -> n3: PONG [master paused",
        "n3 -> n0: AUTH_REQUEST",
        "n3 -> n1: AUTH_REQUEST",
        "n0 -> n3: AUTH_ACK",
        "n1 -> n3: AUTH_ACK",
        "n3 -> n2: PONG [master ",
    ];
    let (path, state) = follow(&model, &schedule);
    let (n2, n3) = (&state.nodes[2], &state.nodes[3]);
    assert_eq!(n3.role, Role::Master);
    assert_eq!(n2.role, Role::Replica { of: n3.me });
    assert!(state.ghost.manual_promotion);
    for property in model.properties() {
        if property.expectation == stateright::Expectation::Always {
            assert!(
                replay(&model, property.name, &path).is_err(),
                "{} is violated along the default manual failover",
                property.name
            );
        }
    }
}

/// Two TAKEOVERs by the two replicas of one master, each taking currentEpoch + 1 without asking
/// anyone: two nodes own the same slots with the same configEpoch, which property 1 forbids.
/// (Redis resolves the collision afterwards, §3.5; until then both serve.)
#[test]
fn takeover_lets_two_nodes_own_a_slot_with_one_epoch() {
    let model = manual(&[FailoverMode::Takeover], 2, 1)
        .model()
        .expect("valid config");
    let checker = model
        .checker()
        .threads(2)
        .finish_when(HasDiscoveries::AnyOf(
            [names::SLOT_EPOCH_UNIQUE].into_iter().collect(),
        ))
        .spawn_bfs()
        .join();
    let path = checker
        .discovery(names::SLOT_EPOCH_UNIQUE)
        .expect("a counterexample for slot-epoch-unique");
    let steps: Vec<String> = path.into_actions().iter().map(describe_action).collect();
    let takeovers = steps
        .iter()
        .filter(|s| s.starts_with("operator: CLUSTER FAILOVER takeover"))
        .count();
    assert_eq!(takeovers, 2, "{steps:#?}");
}

/// The same two replicas, each allowed one default or FORCE failover (and automatic failover
/// of nothing, since no timeout may fire): every property holds in every reachable state.
#[test]
fn default_and_force_keep_every_property() {
    let model = manual(&[FailoverMode::Default, FailoverMode::Force], 1, 1)
        .model()
        .expect("valid config");
    let checker = model.checker().threads(2).spawn_dfs().join();
    for property in checker.model().properties() {
        let found = checker.discovery(property.name).is_some();
        if property.expectation == stateright::Expectation::Always {
            assert!(!found, "{} violated", property.name);
        }
    }
    assert!(checker
        .discovery(names::MANUAL_FAILOVER_COMPLETES)
        .is_some());
}
