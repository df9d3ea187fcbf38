//! Crash-twin refusals (check/crash_twins.rs, specs/protocol.md §8.10) are exact: a search that
//! refuses every state whose twin with fewer crashes spent it has explored reaches, but for the
//! count of crashes, every state a search without refusals reaches, with the same verdict for
//! every property; with and without symmetry reduction.

use std::collections::HashMap;
use std::sync::Arc;

use slotguard_check::hashed::stable_hash;
use slotguard_check::symmetry::{representative, representative_fingerprint};
use slotguard_check::Reduction;
use slotguard_check::{CheckConfig, ClusterModel, ClusterState};

mod common;

#[test]
fn refusing_crash_twins_loses_no_state() {
    common::each_in_parallel(&common::comparison_configs(), |(config, symmetric)| {
        compare(config, *symmetric)
    });
}

fn compare(config: &CheckConfig, symmetric: bool) {
    let mut pruned = config.model().expect("valid");
    assert!(pruned.reductions.has(Reduction::SkipCrashTwins));
    if symmetric {
        pruned.symmetry = Some(Arc::new(pruned.symmetry_classes()));
    }
    let mut plain = pruned.clone();
    plain.reductions = plain.reductions.without(Reduction::SkipCrashTwins);
    pruned.crash_twins().set_active(true);
    // What the search deduplicates by (as stateright does), and the state but for its count of
    // crashes (up to renaming, under symmetry).
    let key = |s: &ClusterState| {
        if symmetric {
            stable_hash(&representative_fingerprint(s))
        } else {
            stable_hash(s)
        }
    };
    let twin = |s: &ClusterState| {
        if symmetric {
            representative(s).fingerprint_but_crashes()
        } else {
            s.fingerprint_but_crashes()
        }
    };
    let verdicts = |s: &ClusterState| common::verdicts(&plain, s);

    let mut reached = HashMap::new();
    let pruned_states = common::search(&pruned, key, |s| {
        reached.insert(twin(s), verdicts(s));
    });
    let mut plain_twins = HashMap::new();
    let plain_states = common::search(&plain, key, |s| {
        let v = reached.get(&twin(s)).unwrap_or_else(|| {
            panic!(
                "{}: a state the search with refusals does not reach:\n{s:?}",
                config.name
            )
        });
        assert_eq!(
            *v,
            verdicts(s),
            "{}: verdicts differ in\n{s:?}",
            config.name
        );
        plain_twins.insert(twin(s), ());
    });
    assert_eq!(reached.len(), plain_twins.len(), "{}", config.name);
    assert!(
        pruned.crash_twins().refused() > 0 && pruned_states < plain_states,
        "{}: nothing was refused ({pruned_states} states of {plain_states})",
        config.name
    );
    eprintln!(
        "{}: {pruned_states} states with refusals, {plain_states} without",
        config.name
    );
}

#[test]
fn the_memo_refuses_nothing_unless_a_run_switches_it_on() {
    let model: ClusterModel = CheckConfig::embedded("tiny")
        .expect("embedded")
        .model()
        .expect("valid");
    let n = common::search(&model, stable_hash, |_| {});
    assert_eq!(model.crash_twins().refused(), 0);
    assert_eq!(model.crash_twins().recorded(), 0);
    assert!(n > 0);
}
