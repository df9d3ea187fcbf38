//! Every safety property bites: with one named bug switched on, the checker must report a
//! counterexample for the property that bug breaks (specs/properties.md, "Mutants").
//!
//! Each test runs the checker until the expected property has a discovery and fails if the run
//! ends without one. The configuration is the smallest embedded one in which the bug can act.

use slotguard_model::check::properties::names;
use slotguard_model::check::{CheckConfig, ClusterModel};
use slotguard_model::check::config::Replicas;
use slotguard_model::{Bug, Bugs};
use stateright::{Checker, HasDiscoveries, Model};

fn tiny() -> CheckConfig {
    CheckConfig::embedded("tiny").expect("tiny is embedded")
}

/// Checks `config` with `bug` and returns the path to the first violation of `property`.
fn bites(config: CheckConfig, bug: Bug, property: &'static str) {
    let model: ClusterModel = config.model_with(Bugs::only(bug)).expect("valid config");
    let checker = model
        .checker()
        .threads(2)
        .finish_when(HasDiscoveries::AnyOf([property].into_iter().collect()))
        .spawn_dfs()
        .join();
    let path = checker.discovery(property).unwrap_or_else(|| {
        panic!(
            "{bug:?}: no counterexample for {property} in {} states",
            checker.unique_state_count()
        )
    });
    // The reported path must really end in a violating state.
    let last = path.last_state();
    let prop = checker
        .model()
        .properties()
        .into_iter()
        .find(|p| p.name == property)
        .expect("property exists");
    assert!(
        !(prop.condition)(checker.model(), last),
        "{bug:?}: discovery for {property} does not violate it"
    );
}

#[test]
fn mutant_vote_twice_per_epoch() {
    bites(tiny(), Bug::VoteTwicePerEpoch, names::ONE_VOTE_PER_EPOCH);
}

#[test]
fn mutant_vote_twice_gives_two_winners() {
    // Two winners in one epoch need two candidates in it: two replicas of one master.
    let mut config = tiny();
    config.replicas = Replicas::PerMaster(vec![0, 0, 2]);
    config.crashes = 0;
    config.suspicions = 4;
    bites(config, Bug::VoteTwicePerEpoch, names::ONE_WINNER_PER_EPOCH);
}

#[test]
fn mutant_count_duplicate_acks() {
    bites(tiny(), Bug::CountDuplicateAcks, names::WINNER_HAS_QUORUM);
}

#[test]
fn mutant_skip_epoch_bump() {
    bites(tiny(), Bug::SkipEpochBump, names::SLOT_EPOCH_UNIQUE);
}

#[test]
fn mutant_accept_stale_claim() {
    bites(tiny(), Bug::AcceptStaleClaim, names::BINDINGS_MOVE_FORWARD);
}

#[test]
fn mutant_forget_last_vote_on_restart() {
    bites(tiny(), Bug::ForgetLastVoteOnRestart, names::EPOCHS_MONOTONIC);
}

#[test]
fn mutant_fail_without_quorum() {
    bites(tiny(), Bug::FailWithoutQuorum, names::FAIL_NEEDS_QUORUM);
}

#[test]
fn mutant_stale_votes_not_reset() {
    let mut config = tiny();
    config.elections = 2;
    bites(config, Bug::StaleVotesNotReset, names::WINNER_HAS_QUORUM);
}

#[test]
fn mutant_pfail_counts_as_fail() {
    bites(tiny(), Bug::PFailCountsAsFail, names::PROMOTION_NEEDS_FAIL);
}

#[test]
fn mutant_replica_reports_count() {
    bites(tiny(), Bug::ReplicaReportsCount, names::FAIL_NEEDS_QUORUM);
}

#[test]
fn mutant_replica_epoch_as_own() {
    bites(tiny(), Bug::ReplicaEpochAsOwn, names::SLOT_EPOCH_UNIQUE);
}

#[test]
fn mutant_unpersisted_epoch_bump() {
    bites(tiny(), Bug::UnpersistedEpochBump, names::EPOCHS_MONOTONIC);
}

#[test]
fn every_bug_has_a_mutant_test() {
    // Keep this list and Bug::ALL in step: a bug without a test is a bug nobody showed bites.
    let tested = [
        Bug::VoteTwicePerEpoch,
        Bug::CountDuplicateAcks,
        Bug::SkipEpochBump,
        Bug::AcceptStaleClaim,
        Bug::ForgetLastVoteOnRestart,
        Bug::FailWithoutQuorum,
        Bug::StaleVotesNotReset,
        Bug::PFailCountsAsFail,
        Bug::ReplicaReportsCount,
        Bug::ReplicaEpochAsOwn,
        Bug::UnpersistedEpochBump,
        Bug::NoFollowWinner,
    ];
    for bug in Bug::ALL {
        assert!(tested.contains(&bug), "{bug:?} has no mutant test");
    }
}

#[test]
fn mutant_no_follow_winner() {
    bites(tiny(), Bug::NoFollowWinner, names::CONVERGES);
}
