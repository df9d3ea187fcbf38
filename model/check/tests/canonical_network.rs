//! The canonical network (specs/protocol.md §8.4, `protocol::residual`) is a reduction: it must
//! merge states, never lose a node state. Two checks:
//!
//! - exhaustively, on configurations small enough to search without it: the reduced and the
//!   exact model reach the same node states and history;
//! - the audit that `slotguard check` runs before a PASS (check/audit.rs), along seeded random
//!   walks of the exact model with crashes and second elections the exhaustive check cannot
//!   afford: once a message in flight is judged inert or canonical for its receiver,
//!   delivering it stays, at every later state of the walk, a no-op, or exactly what
//!   delivering its canonical form does. That is the "forever" the reduction rests on.

use std::collections::HashSet;

mod common;

use slotguard_check::audit::{audit_canonical_network, AuditOptions};
use slotguard_check::config::Replicas;
use slotguard_check::hashed::stable_hash;
use slotguard_check::Reduction;
use slotguard_check::{CheckConfig, ClusterModel};
use slotguard_protocol::InitialEpochs;

fn tiny() -> CheckConfig {
    CheckConfig::embedded("tiny").expect("tiny is embedded")
}

/// Unique states, and the set of their projections on everything but the network.
fn explore(model: &ClusterModel) -> (usize, HashSet<u64>) {
    let mut projections = HashSet::new();
    let states = common::search(model, stable_hash, |s| {
        projections.insert(stable_hash(&(
            &s.nodes, &s.crashed, &s.storage, &s.timers, &s.ghost,
        )));
    });
    (states, projections)
}

#[test]
fn reduced_and_exact_networks_reach_the_same_node_states() {
    // Crash-free tiny (a failover); and three masters created with configEpoch 0, whose
    // collisions move epochs, with a crash-restart.
    let crash_free = {
        let mut c = tiny();
        c.crashes = 0;
        c
    };
    let collisions = CheckConfig {
        name: "collisions".into(),
        masters: 3,
        replicas: Replicas::Each(0),
        slots: 3,
        crashes: 1,
        suspicions: 1,
        network: Default::default(),
        elections: 2,
        epochs: InitialEpochs::Zero,
        suspects: None,
        witnesses: Vec::new(),
        manual_failovers: 0,
        failover_modes: slotguard_check::config::safe_failover_modes(),
        writes: 0,
        durability: Default::default(),
    };
    // `sync` mode with a write: restarts hand slots over by forced elections (§13).
    let sync = {
        let mut c = tiny();
        c.suspicions = 0;
        c.writes = 1;
        c.durability = slotguard_protocol::Durability::Sync;
        c
    };
    for config in [crash_free, collisions, sync] {
        let reduced = config.model().expect("valid");
        let mut exact = reduced.clone();
        exact.reductions = exact.reductions.without(Reduction::CanonicalNetwork);
        let (reduced_states, a) = explore(&reduced);
        let (exact_states, b) = explore(&exact);
        assert!(
            reduced_states < exact_states,
            "{}: the reduction merged nothing ({reduced_states} states)",
            config.name
        );
        assert_eq!(a, b, "{}", config.name);
    }
}

/// The audit that `slotguard check` runs (check/audit.rs), on a configuration with crashes,
/// two replicas and second elections that the exhaustive comparison above cannot afford: every
/// kind of verdict must be exercised, or the audit shows nothing about it.
#[test]
fn judged_messages_stay_inert_or_canonical_for_the_rest_of_a_walk() {
    let mut config = tiny();
    config.elections = 3;
    config.suspicions = 6;
    config.crashes = 2;
    config.replicas = Replicas::PerMaster(vec![1, 0, 1]);
    // Suspicions of masters 0 and 2 only: walks then reach FAILs and elections often, and the
    // two masters' replicas run elections at the same time.
    config.suspects = Some(vec![0, 2]);
    let model = config.model().expect("valid");
    let options = AuditOptions {
        walks: 6000,
        steps: 200,
        seed: 0x5107_6ad5,
    };
    let report = audit_canonical_network(&model, options);
    assert!(report.sound(), "{}", report.failure.unwrap_or_default());
    let every_kind = [
        ("AUTH_ACK", true),
        ("AUTH_REQUEST", true),
        ("FAIL", true),
        ("GOSSIP", false),
        ("GOSSIP", true),
        ("PING", false),
        ("PONG", false),
        ("UPDATE", true),
    ];
    for kind in every_kind {
        assert!(
            report.kinds.contains(&kind),
            "no walk judged a {kind:?}: {:?}",
            report.kinds
        );
    }
    assert!(
        report.judged > 1000 && report.rechecks > 10_000,
        "{} judged, {} rechecks",
        report.judged,
        report.rechecks
    );
}
