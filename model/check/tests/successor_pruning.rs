//! Two prunings change which steps the checker computes, never what a state's successors are
//! (specs/protocol.md §8.9): a PING whose PONG twin reaches the same state is not offered
//! (`Reduction::SkipPingTwins`), and a delivery already found to change nothing at a state that agrees on
//! everything it reads is not run again (`Reduction::SkipKnownNoops`, check/noop_cache.rs); with it, an
//! inbox already put in canonical form for the same receiver state and outlook is taken from a
//! memo (`ClusterModel::rewrites`). Checked exhaustively: at every reachable state, the pruned
//! model's successors are exactly the plain model's, with the pruned model's memos warm from
//! every state visited before. (It fails when the inbox memo's key leaves out the inbox.)

use std::collections::BTreeSet;

mod common;

use slotguard_check::config::Replicas;
use slotguard_check::hashed::stable_hash;
use slotguard_check::Reduction;
use slotguard_check::{CheckConfig, ClusterModel, ClusterState, NetworkKind};
use stateright::Model;

fn successors(model: &ClusterModel, s: &ClusterState) -> (BTreeSet<u64>, usize) {
    let mut actions = Vec::new();
    model.actions(s, &mut actions);
    let offered = actions.len();
    let next = actions
        .into_iter()
        .filter_map(|a| model.next_state(s, a))
        .map(|n| stable_hash(&n))
        .collect();
    (next, offered)
}

fn compare(config: &CheckConfig) {
    let pruned = config.model().expect("valid");
    assert!(
        pruned.reductions.has(Reduction::SkipPingTwins)
            && pruned.reductions.has(Reduction::SkipKnownNoops)
    );
    let mut plain = pruned.clone();
    plain.reductions = plain.reductions.without(Reduction::SkipPingTwins);
    plain.reductions = plain.reductions.without(Reduction::SkipKnownNoops);

    let (mut offered_plain, mut offered_pruned) = (0usize, 0usize);
    let states = common::search(&plain, stable_hash, |s| {
        let (a, n) = successors(&plain, s);
        let (b, m) = successors(&pruned, s);
        offered_plain += n;
        offered_pruned += m;
        assert_eq!(
            a, b,
            "{}: the pruned model's successors differ at\n{s:?}",
            config.name
        );
    });
    // Both prunings are exercised: PINGs are skipped, and the memo answers (every pruned run
    // repeats the plain successors, so a memo that never hit would leave nothing to compare).
    assert!(
        offered_pruned < offered_plain,
        "{}: no PING twin skipped",
        config.name
    );
    assert!(
        pruned.noop_cache().hits() > 0,
        "{}: the no-op memo never answered",
        config.name
    );
    eprintln!(
        "{}: {states} states, {offered_plain} steps offered plain, {offered_pruned} pruned, {} memo hits",
        config.name,
        pruned.noop_cache().hits()
    );
}

#[test]
fn pruned_models_have_the_plain_successors_at_every_state() {
    let [tiny, two_elections] = common::tiny_and_two_elections();
    let configs = [
        tiny.clone(),
        two_elections,
        // A lossy network: the twin may be dropped while the PING stays. (Lossy state spaces
        // explode; this is one whose search completes in seconds.)
        CheckConfig {
            name: "tiny without replicas, lossy, one suspicion, no crash".into(),
            replicas: Replicas::Each(0),
            network: NetworkKind::LossyDuplicating,
            crashes: 0,
            suspicions: 1,
            ..tiny
        },
    ];
    common::each_in_parallel(&configs, compare);
}
