//! The memos of the convergence continuation (check/settle_memo.rs: the rounds remembered from
//! each round's start, and each node's first round) change no outcome: in every state of the
//! comparison configurations, the continuation with the memos shared by every state before it
//! ends exactly as the continuation without them (with the messages in flight delivered, and
//! with all of them lost) — the same verdict, after the same
//! number of rounds — also for a protocol that does not converge (the mutant `NoFollowWinner`).

use slotguard_check::hashed::stable_hash;
use slotguard_check::settle::{settle_from, InFlight, Settled};
use slotguard_check::CheckConfig;
use slotguard_check::Reduction;
use slotguard_protocol::bugs::{Bug, Bugs};

mod common;

#[test]
fn the_memo_changes_no_continuation() {
    let [tiny, two] = common::tiny_and_two_elections();
    common::each_in_parallel(
        &[
            (tiny.clone(), None),
            (two, None),
            (tiny, Some(Bug::NoFollowWinner)),
        ],
        |(config, bug)| compare(config, *bug),
    );
}

fn compare(config: &CheckConfig, bug: Option<Bug>) {
    let bugs = bug.map_or_else(Bugs::default, Bugs::only);
    let memoised = config.model_with(bugs).expect("valid");
    assert!(memoised.reductions.has(Reduction::MemoiseSettle));
    let mut plain = memoised.clone();
    plain.reductions = plain.reductions.without(Reduction::MemoiseSettle);
    let mut outcomes = [0usize; 3];
    common::search(&memoised, stable_hash, |s| {
        for in_flight in [InFlight::Delivered, InFlight::Lost] {
            let expected = settle_from(&plain, s, in_flight);
            outcomes[match expected {
                Settled::Agreed { .. } => 0,
                Settled::Disagreed { .. } => 1,
                Settled::NoFixedPoint => 2,
            }] += 1;
            assert_eq!(
                settle_from(&memoised, s, in_flight),
                expected,
                "{}: {bug:?} {in_flight:?}\n{s:?}",
                config.name
            );
        }
    });
    let (hits, lookups) = memoised.settle_memo().hits_and_lookups();
    assert!(hits > 0, "{}: the memo was never used", config.name);
    let (node_hits, node_recorded) = memoised.settle_memo().node_rounds_found_and_recorded();
    assert!(
        node_hits > 0 && node_recorded > 0,
        "{}: no node's first round was taken from the memo",
        config.name
    );
    assert_eq!(plain.settle_memo().hits_and_lookups(), (0, 0));
    eprintln!(
        "{} {bug:?}: {hits} of {lookups} round starts found, {node_hits} nodes' first rounds found ({node_recorded} recorded); outcomes (agreed, disagreed, none) {outcomes:?}",
        config.name
    );
    if bug.is_some() {
        assert!(outcomes[1] + outcomes[2] > 0, "the mutant always converges");
    }
}
