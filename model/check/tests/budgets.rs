//! Budgets past one failover (specs/properties.md, "Budgets"): seeded random walks of the
//! `*-deep` configurations check every always-property at every state they visit and must
//! reach each configuration's witnesses (failback, a second failover, a retried election won).
//! A fixed seed and state count make each run the same on every machine; the count is what
//! seed 0 needs, with a margin (specs/properties.md lists the figures).

use slotguard_check::run::{self, Kind, RunOptions, Status};
use slotguard_check::CheckConfig;

/// Walks `name` from seed 0 for `states` states: nothing violated, everything found.
fn walks_cover(name: &str, states: usize) {
    let model = CheckConfig::embedded(name)
        .unwrap_or_else(|| panic!("{name} is embedded"))
        .model()
        .expect("valid");
    let report = run::run(model, &RunOptions::reproducible_walks(0, states), |_| {});
    for p in &report.properties {
        assert!(
            p.replay_error.is_none(),
            "{name} {}: {:?}",
            p.name,
            p.replay_error
        );
        let expected = match p.kind {
            Kind::Sometimes => Status::Found,
            Kind::Always => Status::NotViolatedSoFar,
        };
        assert_eq!(p.status, expected, "{name}: {}", p.name);
    }
}

#[test]
fn tiny_deep() {
    walks_cover("tiny-deep", 600_000);
}

#[test]
fn standard_deep() {
    walks_cover("standard-deep", 1_000_000);
}

#[test]
fn large_deep() {
    walks_cover("large-deep", 200_000);
}

#[test]
fn compete_deep() {
    walks_cover("compete-deep", 600_000);
}
