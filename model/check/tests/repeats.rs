//! Refusing exact repeats before the look-up (check/repeats.rs) changes the work, not the
//! search: a run with the filter explores the same states as a run without it, counts the same
//! generated states (the repeats added back), and reaches the same verdicts; with and without
//! symmetry reduction. The fingerprints of successors computed before they are built
//! (`ClusterModel::finish_step`) are checked against the built successors all along.

use std::sync::Arc;

use slotguard_check::run::{self, RunOptions, RunReport, Strategy};
use slotguard_check::CheckConfig;
use slotguard_check::Reduction;

mod common;

#[test]
fn refusing_repeats_changes_no_figure_of_the_search() {
    common::each_in_parallel(&common::comparison_configs(), |(config, symmetric)| {
        compare(config, *symmetric)
    });
}

fn run_with(config: &CheckConfig, symmetric: bool, skip_repeats: bool) -> RunReport {
    let mut model = config.model().expect("valid");
    assert!(model.reductions.has(Reduction::SkipRepeats));
    model.reductions = model.reductions.set(Reduction::SkipRepeats, skip_repeats);
    // Every successor whose fingerprint is computed before it is built is built anyway and
    // compared (`finish_step`).
    model.verify_early_fingerprints(skip_repeats);
    // Crash-twin refusals depend on the order in which states are met, which the filter
    // changes (a refused repeat is not handed to the memo again): off, so that both runs must
    // explore exactly the reachable states.
    model.reductions = model.reductions.without(Reduction::SkipCrashTwins);
    if symmetric {
        model.symmetry = Some(Arc::new(model.symmetry_classes()));
    }
    let options = RunOptions {
        strategy: Strategy::Dfs,
        threads: 1,
        max_states: None,
        timeout: None,
        max_memory: None,
        ..RunOptions::default()
    };
    run::run(model, &options, |_| {})
}

fn compare(config: &CheckConfig, symmetric: bool) {
    let with = run_with(config, symmetric, true);
    let without = run_with(config, symmetric, false);
    let name = &config.name;
    assert!(
        with.complete && without.complete,
        "{name}: a run was cut short"
    );
    assert!(with.repeats > 0, "{name}: no repeat was refused");
    assert!(
        with.repeats_before_built > 0,
        "{name}: no repeat was recognised before it was built"
    );
    assert_eq!(without.repeats, 0, "{name}");
    assert_eq!(with.unique_states, without.unique_states, "{name}: unique");
    assert_eq!(with.states, without.states, "{name}: generated");
    assert_eq!(with.max_depth, without.max_depth, "{name}: depth");
    let statuses = |r: &RunReport| r.properties.iter().map(|p| p.status).collect::<Vec<_>>();
    assert_eq!(statuses(&with), statuses(&without), "{name}: verdicts");
}
