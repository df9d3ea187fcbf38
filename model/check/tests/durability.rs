//! The durability modes under the checker (specs/protocol.md §13; specs/properties.md,
//! "Durability"): in `sync` mode every acknowledged write survives a failover and a restart,
//! in `async` mode the checker finds the writes Redis loses.

use slotguard_check::properties::names;
use slotguard_check::run::{self, Kind, RunOptions, RunReport, Status, Strategy};
use slotguard_check::CheckConfig;
use slotguard_protocol::{Durability, NodeId, Role};
use stateright::Model;

mod common;

use common::follow;

/// `tiny` with one write in `durability` mode, `crashes` crash-restarts and `suspicions` PFAIL
/// events.
fn tiny(durability: Durability, crashes: u8, suspicions: u8) -> CheckConfig {
    let mut config = CheckConfig::embedded("tiny").expect("tiny is embedded");
    config.durability = durability;
    config.writes = 1;
    config.crashes = crashes;
    config.suspicions = suspicions;
    config
}

fn check(config: &CheckConfig, strategy: Strategy) -> RunReport {
    let model = config.model().expect("valid config");
    run::run(
        model,
        &RunOptions {
            strategy,
            threads: 2,
            ..RunOptions::default()
        },
        |_| {},
    )
}

fn status(report: &RunReport, name: &str) -> Status {
    report
        .properties
        .iter()
        .find(|p| p.name == name)
        .unwrap_or_else(|| panic!("the run has no property {name}"))
        .status
}

/// Every always-property holds, the run is complete, and an acknowledged write was served by
/// another node than the one that took it (the property is not vacuous).
fn assert_kept(report: &RunReport) {
    assert!(report.complete, "the search must be complete");
    for p in &report.properties {
        if p.kind == Kind::Always {
            assert_eq!(p.status, Status::Holds, "{}: {:?}", p.name, p.trace);
        }
    }
    assert_eq!(status(report, names::ACKED_WRITE_MOVES), Status::Found);
}

/// A failover by failure detection, the master alive and cut off (no crash): the write is
/// acknowledged only once the replica has it, so the winner has it.
#[test]
fn sync_keeps_acknowledged_writes_through_a_failover() {
    let report = check(&tiny(Durability::Sync, 0, 3), Strategy::Dfs);
    assert_kept(&report);
    assert!(report.passed());
}

/// A crash-restart of any node at any moment, no suspicion: a master that restarts without its
/// data hands its slots to its complete replica, which has every acknowledged write.
#[test]
fn sync_keeps_acknowledged_writes_through_a_restart() {
    assert_kept(&check(&tiny(Durability::Sync, 1, 0), Strategy::Dfs));
}

/// Redis's loss after a partition: the master acknowledged a write its replica never copied,
/// the replica won, and the old master's copy of the winner's data drops the write. The
/// counterexample ends with the winner serving the slot without the write.
#[test]
fn async_loses_the_tail_in_a_failover() {
    let config = tiny(Durability::Async, 0, 3);
    let report = check(&config, Strategy::Bfs);
    assert_eq!(status(&report, names::ACKED_WRITES_KEPT), Status::Violated);
    let trace = report
        .properties
        .iter()
        .find(|p| p.name == names::ACKED_WRITES_KEPT)
        .and_then(|p| p.trace.as_ref())
        .expect("a counterexample");
    let why = trace.why.as_deref().expect("the counterexample says why");
    assert!(
        why.starts_with("w0 (slot 2, accepted by n2") && why.ends_with("n3, which serves slot 2"),
        "{why}"
    );
    assert!(
        trace.final_state[3].starts_with("n3 master"),
        "{:?}",
        trace.final_state
    );
}

/// Redis's loss without persistence: a master restarts empty and serves its slots.
#[test]
fn async_loses_writes_in_a_restart() {
    let report = check(&tiny(Durability::Async, 1, 0), Strategy::Bfs);
    assert_eq!(status(&report, names::ACKED_WRITES_KEPT), Status::Violated);
}

/// The handover of rule 2, step by step: n2 acknowledges w0 once n3 has copied it, restarts
/// without it, says so, and n3 takes the slot by a forced election; n2 follows n3 and copies
/// its data back. Every always-property holds along the way.
#[test]
fn a_master_that_lost_its_data_hands_its_slots_to_its_replica() {
    let model = tiny(Durability::Sync, 1, 0).model().expect("valid");
    let schedule = [
        "client: a write to n2",
        "n3 copies its master's data",
        "n2 crashes and restarts",
        "n2 -> n3: PONG [master data lost",
        "n3 -> n0: AUTH_REQUEST",
        "n3 -> n1: AUTH_REQUEST",
        "n0 -> n3: AUTH_ACK",
        "n1 -> n3: AUTH_ACK",
        "n3 -> n2: PONG [master ",
        "n2 copies its master's data",
    ];
    let (path, state) = follow(&model, &schedule);
    assert!(state.ghost.writes[0].acked);
    let (n2, n3) = (&state.nodes[2], &state.nodes[3]);
    assert_eq!(n3.role, Role::Master);
    assert_eq!(n3.slots.owner(2), Some(NodeId(3)));
    assert_eq!(n2.role, Role::Replica { of: NodeId(3) });
    assert!(n2.data.complete && n2.data.log == n3.data.log);
    for property in model.properties() {
        if property.expectation == stateright::Expectation::Always {
            assert!(
                slotguard_check::trace::replay(&model, property.name, &path).is_err(),
                "{} is violated along the handover",
                property.name
            );
        }
    }
}

/// Before the handover, the master that lost its data refuses its own slots, and a replica
/// that restarted refuses to run: neither can serve what it does not hold.
#[test]
fn a_node_that_lost_its_data_neither_serves_nor_runs() {
    let model = tiny(Durability::Sync, 1, 0).model().expect("valid");
    let (_, state) = follow(&model, &["n2 crashes and restarts"]);
    let n2 = &state.nodes[2];
    assert!(!n2.data.complete);
    assert!(!model.actor.serves_data(n2));
    let route = slotguard_protocol::route(
        n2,
        &model.actor.layout,
        2,
        slotguard_protocol::Access::Write,
    );
    assert_eq!(
        route,
        slotguard_protocol::Route::Down(slotguard_protocol::Down::DataLost)
    );
    let (_, state) = follow(&model, &["n3 crashes and restarts"]);
    assert!(!model.actor.may_run(&state.nodes[3]));
}
