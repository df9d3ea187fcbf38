//! The mutation catalogue: single, named bugs that can be switched on to show that every safety
//! property bites (specs/properties.md, "Mutants").
//!
//! The switch exists only in builds with the `mutants` feature (tests turn it on). Without it,
//! [`Bugs::has`] is a constant `false` the optimiser removes, and no bug can be enabled.

use serde::{Deserialize, Serialize};

/// One deliberately injected protocol bug.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Bug {
    /// A master grants a vote without checking lastVoteEpoch (two votes in one epoch).
    VoteTwicePerEpoch,
    /// A candidate counts acknowledgements instead of distinct voters (duplicated datagrams
    /// then count twice; Redis relies on TCP here, specs/background.md §R1.1).
    CountDuplicateAcks,
    /// A candidate runs its election in its current epoch instead of bumping it.
    SkipEpochBump,
    /// A node rebinds a slot to a claim with a lower or equal configEpoch.
    AcceptStaleClaim,
    /// lastVoteEpoch is not restored from the state file on restart.
    ForgetLastVoteOnRestart,
    /// A node marks FAIL on its own suspicion, without a quorum of reports.
    FailWithoutQuorum,
    /// Votes of an earlier election count in the next one (Redis #8752).
    StaleVotesNotReset,
    /// Candidates and voters take a master that is only PFAIL (local suspicion) for FAIL.
    PFailCountsAsFail,
    /// Failure reports from replicas count toward FAIL (Valkey #634 fixed the inverse).
    ReplicaReportsCount,
    /// A replica's advertised configEpoch (its master's) is stored as the replica's own, so a
    /// demoted master keeps its old slots at its new master's epoch.
    ReplicaEpochAsOwn,
    /// The election epoch bump is not persisted before the vote request leaves.
    UnpersistedEpochBump,
    /// A master whose last slot was taken by a higher claim stays a (slot-less) master instead
    /// of replicating the winner.
    NoFollowWinner,
    /// The tick repeats nothing: every change is announced once, when it happens, and a node
    /// relies on the network to deliver it (it never does over UDP).
    TickSendsNothing,
    /// A FAIL message is adopted by every node, as Redis adopts it, not only by a node that
    /// suspects the node itself (specs/protocol.md §9).
    AdoptFailUnconditionally,
    /// FAIL-undo is armed only when the failed node owns slots in the marker's view at that
    /// moment: a node that learns later that it does keeps a live master FAIL forever.
    FailUndoOnlyForOwners,
    /// A master grants a vote without having the candidate's master FAIL in its own view.
    VoteWithoutFail,
    /// A winner takes its currentEpoch at the time of the win as its configEpoch, which
    /// messages of other elections may have moved past its election epoch.
    WinnerTakesCurrentEpoch,
    /// A candidate also counts a vote of an earlier epoch of its own, a handler edit that the
    /// canonical network does not know of (it judges such votes inert): the reduced search
    /// misses it, and the audit (check/audit.rs) must say so.
    CountEarlierEpochAcks,
    /// A master goes on accepting writes while it cannot reach a majority of the slot-owning
    /// masters (the data plane's routing rule forgets the minority check).
    WritesInMinority,
    /// In `sync` mode, a master acknowledges a write without waiting for the other nodes of
    /// its shard to hold it (specs/protocol.md §13, rule 1).
    AckBeforeReplicas,
    /// A replica that restarted takes its empty data for complete: it may run for its
    /// master's slots, and serves what it wins (rule 2).
    RestartedReplicaComplete,
    /// A master that restarted without its data serves its slots (rule 2).
    RestartedMasterServes,
    /// A replica copies from a master that restarted without its data (rule 3).
    CopyFromDataLost,
    /// A replica accepts writes for its master's slots (the routing rule lets a replica serve
    /// what only reads may take from it).
    ReplicaTakesWrites,
}

impl Bug {
    /// Every bug of the catalogue.
    pub const ALL: [Bug; 24] = [
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
        Bug::TickSendsNothing,
        Bug::AdoptFailUnconditionally,
        Bug::FailUndoOnlyForOwners,
        Bug::VoteWithoutFail,
        Bug::WinnerTakesCurrentEpoch,
        Bug::CountEarlierEpochAcks,
        Bug::WritesInMinority,
        Bug::ReplicaTakesWrites,
        Bug::AckBeforeReplicas,
        Bug::RestartedReplicaComplete,
        Bug::RestartedMasterServes,
        Bug::CopyFromDataLost,
    ];
}

/// The bugs switched on in one actor (none, outside mutation tests).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Bugs {
    #[cfg(any(test, feature = "mutants"))]
    enabled: Option<Bug>,
}

impl Bugs {
    /// No bugs: the protocol as specified.
    pub const NONE: Bugs = Bugs {
        #[cfg(any(test, feature = "mutants"))]
        enabled: None,
    };

    /// Exactly one bug switched on.
    #[cfg(any(test, feature = "mutants"))]
    pub fn only(bug: Bug) -> Bugs {
        Bugs { enabled: Some(bug) }
    }

    /// Whether `bug` is switched on.
    #[inline(always)]
    pub fn has(&self, bug: Bug) -> bool {
        #[cfg(any(test, feature = "mutants"))]
        {
            self.enabled == Some(bug)
        }
        #[cfg(not(any(test, feature = "mutants")))]
        {
            let _ = bug;
            false
        }
    }
}
