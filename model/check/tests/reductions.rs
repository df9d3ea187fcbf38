//! Every reduction of the checker is compared with the search without it (specs/protocol.md
//! §8.4–§8.10): this test fails when a reduction is added to [`Reduction::ALL`] without a
//! comparison test that switches it off.

use slotguard_check::{Reduction, Reductions};

/// The test file that compares the search with and without `reduction`. Exhaustive: a new
/// reduction does not compile here until it has one.
fn compared_in(reduction: Reduction) -> &'static str {
    match reduction {
        Reduction::CanonicalNetwork => "canonical_network.rs",
        Reduction::UrgentFailUndo => "urgent_fail_undo.rs",
        Reduction::ForgetSettledGrants => "settled_grants.rs",
        Reduction::AtomicRestart | Reduction::SkipNoopCrashes => "atomic_restart.rs",
        Reduction::SkipCrashTwins => "crash_twins.rs",
        Reduction::SkipPingTwins | Reduction::SkipKnownNoops => "successor_pruning.rs",
        Reduction::SkipRepeats => "repeats.rs",
        Reduction::MemoiseSettle => "settle_memo.rs",
    }
}

#[test]
fn every_reduction_has_a_comparison_that_switches_it_off() {
    let tests = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
    for reduction in Reductions::all().iter() {
        let file = tests.join(compared_in(reduction));
        let text = std::fs::read_to_string(&file).expect("comparison test exists");
        let without = format!("without(Reduction::{reduction:?})");
        let set = format!("set(Reduction::{reduction:?},");
        assert!(
            text.contains(&without) || text.contains(&set),
            "{}: never switches {reduction:?} off",
            file.display()
        );
    }
}

#[test]
fn exact_turns_off_every_rule_and_keeps_the_caches() {
    let exact = Reductions::exact();
    for reduction in Reduction::ALL {
        assert_eq!(exact.has(reduction), reduction.is_cache(), "{reduction:?}");
    }
}
