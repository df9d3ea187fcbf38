//! The property catalogue (specs/properties.md): safety properties checked in every state
//! (`always`) and reachability witnesses that show the safety properties are not vacuous
//! (`sometimes`).
//!
//! States of crashed nodes are the states they crashed with. Properties about the past (slot
//! claims, FAIL markings) read them too, since a crashed node's state was once real and comes
//! back (in its durable part) on restart; properties about the present (what a node is doing
//! now) read live nodes only.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use stateright::Property;

use crate::ghost::Violation;
use crate::model::{ClusterModel, ClusterState};
use crate::settle;
use slotguard_protocol::cluster_state::{cluster_status, ClusterStatus};
use slotguard_protocol::ids::{Epoch, NodeId};
use slotguard_protocol::layout::{InitialRole, Layout};
use slotguard_protocol::routing::{Access, Route};
use slotguard_protocol::state::{Election, Role};

/// Property names, as reports and tests use them.
pub mod names {
    /// (1) No two distinct nodes are bound to one slot with one configEpoch, in any view.
    pub const SLOT_EPOCH_UNIQUE: &str = "slot-epoch-unique";
    /// (2) At most one replica wins per epoch.
    pub const ONE_WINNER_PER_EPOCH: &str = "one-winner-per-epoch";
    /// (2b) A winner had votes from a majority of slot-owning masters in its epoch.
    pub const WINNER_HAS_QUORUM: &str = "winner-has-vote-quorum";
    /// (3) A master grants at most one vote per epoch, across restarts.
    pub const ONE_VOTE_PER_EPOCH: &str = "one-vote-per-epoch";
    /// (4) Epochs never decrease on a node, across restarts.
    pub const EPOCHS_MONOTONIC: &str = "epochs-monotonic";
    /// (5) FAIL only after a majority of slot-owning masters suspected the node.
    pub const FAIL_NEEDS_QUORUM: &str = "fail-needs-quorum";
    /// (6) A replica is promoted only after its master was marked FAIL.
    pub const PROMOTION_NEEDS_FAIL: &str = "promotion-needs-fail";
    /// (7) No view ever binds a slot at a lower configEpoch than before.
    pub const BINDINGS_MOVE_FORWARD: &str = "slot-bindings-move-forward";
    /// (9) A master grants a vote only while it has the candidate's master FAIL itself.
    pub const VOTE_NEEDS_FAIL: &str = "vote-needs-fail";
    /// (10) A winner's configEpoch is its election epoch.
    pub const WINNER_TAKES_ELECTION_EPOCH: &str = "winner-takes-election-epoch";
    /// (11) A node accepts a write for a slot only while its own view binds the slot to itself
    /// and its cluster state is ok (a majority of slot-owning masters reachable).
    pub const WRITES_NEED_OWNERSHIP: &str = "writes-need-ownership";
    /// (8) From any reachable state, once faults stop, the cluster settles into agreement
    /// within a bounded number of fair rounds (convergence as a bounded check).
    pub const CONVERGES: &str = "converges-when-faults-stop";
    /// A replica replaced its master.
    pub const FAILOVER_COMPLETES: &str = "failover-completes";
    /// Some node rebound a slot to a new owner.
    pub const SLOT_REBOUND: &str = "slot-rebound";
    /// Some node marked another FAIL.
    pub const FAIL_REACHED: &str = "fail-reached";
    /// A master that was marked FAIL is back as a replica.
    pub const FAILED_MASTER_REJOINS: &str = "failed-master-rejoins-as-replica";
    /// Two replicas of one master run elections at the same time (present only in layouts where
    /// some master has two replicas or more).
    pub const REPLICAS_COMPETE: &str = "replicas-compete";
    /// A master, replaced, won its slots back (a configuration's witness).
    pub const FAILBACK: &str = "failback";
    /// Elections won in two shards (a configuration's witness).
    pub const SECOND_FAILOVER: &str = "second-failover";
    /// An election won after a timed-out one by the same replica (a configuration's witness).
    pub const RETRY_ELECTION_WON: &str = "retry-election-won";
    /// Two live nodes accept writes for one slot at once (a configuration's witness).
    pub const TWO_WRITERS: &str = "two-writers";
    /// A replica became master by a manual failover (present only in runs that allow them).
    pub const MANUAL_FAILOVER_COMPLETES: &str = "manual-failover-completes";
    /// (12) Every acknowledged write is in the data of every later owner of its slot that serves
    /// it (present in runs with writes; holds in `sync` mode, not in `async`).
    pub const ACKED_WRITES_KEPT: &str = "acknowledged-writes-kept";
    /// An acknowledged write is served by a node other than the master that accepted it
    /// (present in runs with writes).
    pub const ACKED_WRITE_MOVES: &str = "acknowledged-write-moves";
    /// Checker self-check, present only in runs with symmetry reduction.
    pub const SYMMETRY_SOUND: &str = "symmetry-sound";
}

/// Every property, in catalogue order.
pub fn all() -> Vec<Property<ClusterModel>> {
    vec![
        Property::always(names::SLOT_EPOCH_UNIQUE, slot_epoch_unique),
        Property::always(names::ONE_WINNER_PER_EPOCH, one_winner_per_epoch),
        Property::always(names::WINNER_HAS_QUORUM, winner_has_quorum),
        Property::always(names::ONE_VOTE_PER_EPOCH, one_vote_per_epoch),
        Property::always(names::EPOCHS_MONOTONIC, epochs_monotonic),
        Property::always(names::FAIL_NEEDS_QUORUM, fail_needs_quorum),
        Property::always(names::PROMOTION_NEEDS_FAIL, promotion_needs_fail),
        Property::always(names::BINDINGS_MOVE_FORWARD, bindings_move_forward),
        Property::always(names::VOTE_NEEDS_FAIL, vote_needs_fail),
        Property::always(
            names::WINNER_TAKES_ELECTION_EPOCH,
            winner_takes_election_epoch,
        ),
        Property::always(names::WRITES_NEED_OWNERSHIP, writes_need_ownership),
        Property::always(names::CONVERGES, converges),
        Property::sometimes(names::FAILOVER_COMPLETES, failover_completes),
        Property::sometimes(names::SLOT_REBOUND, slot_rebound),
        Property::sometimes(names::FAIL_REACHED, fail_reached),
        Property::sometimes(names::FAILED_MASTER_REJOINS, failed_master_rejoins),
    ]
}

/// Witnesses that a configuration's budgets reach past one failover, named by the
/// configuration (`witnesses = [...]`): a run that lists one and does not reach it fails, as
/// for every sometimes-property.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Witness {
    /// A node created as a master, replaced by a replica of its shard, won its slots back.
    Failback,
    /// Two elections were won, by nodes of two different shards (as created).
    SecondFailover,
    /// A replica won an election after an election of its own had timed out.
    RetryElectionWon,
    /// Two live nodes accept writes for one slot at once: the window in which a master cut off
    /// from the majority has not yet timed out its peers and its replica has already won
    /// (specs/properties.md, "What property 11 does not say").
    TwoWriters,
}

impl Witness {
    /// Every witness.
    pub const ALL: [Witness; 4] = [
        Witness::Failback,
        Witness::SecondFailover,
        Witness::RetryElectionWon,
        Witness::TwoWriters,
    ];

    /// The witness of this name, if any.
    pub fn from_name(name: &str) -> Option<Witness> {
        Witness::ALL.into_iter().find(|w| w.name() == name)
    }

    /// The witness's name in reports and configurations.
    pub fn name(self) -> &'static str {
        match self {
            Witness::Failback => names::FAILBACK,
            Witness::SecondFailover => names::SECOND_FAILOVER,
            Witness::RetryElectionWon => names::RETRY_ELECTION_WON,
            Witness::TwoWriters => names::TWO_WRITERS,
        }
    }

    /// The sometimes-property.
    pub fn property(self) -> Property<ClusterModel> {
        let condition: fn(&ClusterModel, &ClusterState) -> bool = match self {
            Witness::Failback => failback,
            Witness::SecondFailover => second_failover,
            Witness::RetryElectionWon => |_, s| s.ghost.retry_won,
            Witness::TwoWriters => two_writers,
        };
        Property::sometimes(self.name(), condition)
    }
}

/// Some replica became master by a manual failover: the sometimes-property of runs with a
/// budget of manual failovers.
pub fn manual_failover_completes() -> Property<ClusterModel> {
    Property::sometimes(
        names::MANUAL_FAILOVER_COMPLETES,
        |_: &ClusterModel, s: &ClusterState| s.ghost.manual_promotion,
    )
}

/// (12) Every acknowledged write is in the data of every later owner of its slot: every live
/// master that binds the slot to itself at the configEpoch the write was acknowledged at or
/// above, and serves data (specs/protocol.md §13). A master that lost its data serves nothing,
/// so it is not asked. A stale master that has not yet learned it was replaced (a lower
/// configEpoch) is not a later owner: what it lacks was never lost, and its stale reads are a
/// different question (specs/protocol.md §13.4).
pub fn acknowledged_writes_kept() -> Property<ClusterModel> {
    Property::always(
        names::ACKED_WRITES_KEPT,
        |m: &ClusterModel, s: &ClusterState| lost_write(m, s).is_none(),
    )
}

/// The first (node, write) where a live node serving an acknowledged write's slot lacks it.
pub fn lost_write(m: &ClusterModel, s: &ClusterState) -> Option<(NodeId, usize)> {
    live(s).filter(|n| m.actor.serves_data(n)).find_map(|n| {
        let missing = s.ghost.writes.iter().enumerate().find(|(i, w)| {
            w.acked
                && n.slots.owner(w.slot) == Some(n.me)
                && n.config_epoch >= w.epoch
                && !n.data.log.iter().any(|id| usize::from(id.0) == *i)
        });
        missing.map(|(i, _)| (n.me, i))
    })
}

/// An acknowledged write is in the log of a live node serving its slot that is not the master
/// that accepted it: the data moved with the slots, so property 12 is not vacuous.
pub fn acknowledged_write_moves() -> Property<ClusterModel> {
    Property::sometimes(
        names::ACKED_WRITE_MOVES,
        |m: &ClusterModel, s: &ClusterState| {
            live(s).filter(|n| m.actor.serves_data(n)).any(|n| {
                n.data.log.iter().any(|id| {
                    s.ghost.writes.get(usize::from(id.0)).is_some_and(|w| {
                        w.acked && w.by != n.me && n.slots.owner(w.slot) == Some(n.me)
                    })
                })
            })
        },
    )
}

/// Some slot has two live nodes that the routing rule lets accept writes for it.
fn two_writers(m: &ClusterModel, s: &ClusterState) -> bool {
    let layout = &m.actor.layout;
    let statuses: Vec<_> = live(s).map(|n| (n, cluster_status(n, layout))).collect();
    (0..layout.slot_count() as u16).any(|slot| {
        let writers = statuses
            .iter()
            .filter(|(n, status)| m.actor.route(n, *status, slot, Access::Write) == Route::Serve);
        writers.count() >= 2
    })
}

/// A live node created as a master is a master again by winning an election.
fn failback(m: &ClusterModel, s: &ClusterState) -> bool {
    live(s).any(|n| {
        n.role == Role::Master
            && created_as_master(m, n.me)
            && s.ghost.winners.values().any(|w| w.contains(n.me))
    })
}

/// Winners of two elections belong to two different shards (as created).
fn second_failover(m: &ClusterModel, s: &ClusterState) -> bool {
    let shard = |node: NodeId| match m.actor.layout.spec(node).map(|spec| &spec.role) {
        Some(InitialRole::Replica { of }) => *of,
        _ => node,
    };
    let mut shards: Vec<NodeId> = s
        .ghost
        .winners
        .values()
        .flat_map(|w| w.iter())
        .map(shard)
        .collect();
    shards.sort_unstable();
    shards.dedup();
    shards.len() >= 2
}

/// Only in layouts where some master has two replicas or more: two replicas of one master run
/// elections at the same time. Without this witness, a run of such a layout has not shown that
/// it checked what the second replica is there for: properties 2 and 3 against two candidates
/// of one failed master. (A replica runs an election only once it has its master FAIL, which
/// needs its own suspicion of the master, specs/protocol.md §5.3-5.4. With 3 suspicions, two
/// masters and one replica spend them all: that is why `large` has 4, and `compete` targets
/// its 4 at one master.)
pub fn replicas_compete() -> Property<ClusterModel> {
    Property::sometimes(names::REPLICAS_COMPETE, |_, s: &ClusterState| {
        has_repeat(
            live(s)
                .filter(|n| matches!(n.election, Election::Running { .. }))
                .filter_map(|n| n.role.master())
                .collect(),
        )
    })
}

/// Whether some node occurs twice in `nodes`.
fn has_repeat(mut nodes: Vec<NodeId>) -> bool {
    nodes.sort_unstable();
    nodes.windows(2).any(|w| w[0] == w[1])
}

/// Whether some master of `layout` has two replicas or more at creation: the layouts that get
/// [`replicas_compete`].
pub fn has_replica_pair(layout: &Layout) -> bool {
    has_repeat(
        layout
            .specs()
            .iter()
            .filter_map(|spec| match spec.role {
                InitialRole::Replica { of } => Some(of),
                InitialRole::Master { .. } => None,
            })
            .collect(),
    )
}

/// Only in runs with symmetry reduction: no step met the one protocol rule that tells
/// renamed nodes apart (a configEpoch collision between two nodes whose id order a renaming
/// changes, check/symmetry.rs). If this holds, the reduced run explored every behaviour up to renaming.
pub fn symmetry_sound() -> Property<ClusterModel> {
    Property::always(names::SYMMETRY_SOUND, |_, s: &ClusterState| {
        !s.ghost.asymmetric_collision
    })
}

/// (1) Every (slot, configEpoch) pair that any node's slot map binds — its own claims included,
/// since a master's own slots are bound to itself at its own configEpoch — names one node.
///
/// This is the checkable form of "one owner per slot": a slot can have two nodes serving it at
/// one instant (the minority side keeps serving until it notices, specs/properties.md), but
/// never two owners that the cluster could not order, because every view orders claims by
/// configEpoch and a (slot, configEpoch) pair is never claimed by two nodes.
pub fn slot_epoch_unique(_: &ClusterModel, s: &ClusterState) -> bool {
    let mut seen: BTreeMap<(u16, Epoch), NodeId> = BTreeMap::new();
    for node in &s.nodes {
        for (slot, owner) in node.slots.iter() {
            let Some(owner) = owner else { continue };
            let key = (slot, node.epoch_of(owner));
            if *seen.entry(key).or_insert(owner) != owner {
                return false;
            }
        }
    }
    true
}

/// (2) No election epoch has two winners.
pub fn one_winner_per_epoch(_: &ClusterModel, s: &ClusterState) -> bool {
    s.ghost.winners.values().all(|w| w.len() <= 1)
}

/// (2b) Every promotion was backed by a quorum of distinct granted votes of its epoch.
pub fn winner_has_quorum(_: &ClusterModel, s: &ClusterState) -> bool {
    never(s, |v| matches!(v, Violation::PromotedWithoutQuorum { .. }))
}

/// (3) No master granted two votes in one epoch (counted by grant steps, so a re-grant after a
/// restart that forgot lastVoteEpoch counts too).
pub fn one_vote_per_epoch(_: &ClusterModel, s: &ClusterState) -> bool {
    s.ghost
        .grants
        .values()
        .all(|g| g.count <= 1 && g.candidates.len() <= 1)
}

/// (4) No step decreased a node's currentEpoch, configEpoch or lastVoteEpoch (a restart is a
/// step from the state the node crashed with).
pub fn epochs_monotonic(_: &ClusterModel, s: &ClusterState) -> bool {
    never(s, |v| matches!(v, Violation::EpochRegressed { .. }))
}

/// (5) Every node some view has FAIL was suspected by a majority of slot-owning masters.
/// (`quorum_suspected`: the history moves a node there once a quorum has suspected it.)
pub fn fail_needs_quorum(_: &ClusterModel, s: &ClusterState) -> bool {
    s.nodes.iter().all(|node| {
        node.peers.iter().enumerate().all(|(i, p)| {
            !p.health.is_fail() || s.ghost.quorum_suspected.contains(NodeId(i as u16))
        })
    })
}

/// (11) Every live node that the actor's routing rule lets accept a write for a slot is a
/// master whose own view binds the slot to itself and whose cluster state is ok. Stated apart
/// from the rule (specs/protocol.md §5.7), so that a rule that drifts from it is caught.
pub fn writes_need_ownership(m: &ClusterModel, s: &ClusterState) -> bool {
    let layout = &m.actor.layout;
    live(s).all(|node| {
        let status = cluster_status(node, layout);
        (0..layout.slot_count() as u16).all(|slot| {
            let accepts = m.actor.route(node, status, slot, Access::Write) == Route::Serve;
            !accepts
                || (node.role == Role::Master
                    && node.slots.owner(slot) == Some(node.me)
                    && status == ClusterStatus::Ok)
        })
    })
}

/// (6) Every promotion happened after its master was marked FAIL somewhere.
pub fn promotion_needs_fail(_: &ClusterModel, s: &ClusterState) -> bool {
    never(s, |v| matches!(v, Violation::PromotedWithoutFail { .. }))
}

/// (7) No step moved a slot binding of any view to a lower configEpoch (a restart is a step
/// from the state the node crashed with): "last failover wins".
pub fn bindings_move_forward(_: &ClusterModel, s: &ClusterState) -> bool {
    never(s, |v| matches!(v, Violation::BindingRegressed { .. }))
}

/// (9) Every vote was granted by a master that had, in its own view, the candidate as a
/// replica of a FAIL master (specs/protocol.md §6.3): a master that can still reach the
/// candidate's master never helps replace it.
pub fn vote_needs_fail(_: &ClusterModel, s: &ClusterState) -> bool {
    never(s, |v| matches!(v, Violation::VoteWithoutFail { .. }))
}

/// (10) Every winner took its election epoch as its configEpoch (specs/protocol.md §6.5): the
/// epoch that the quorum's votes made unique to it, and no other.
pub fn winner_takes_election_epoch(_: &ClusterModel, s: &ClusterState) -> bool {
    never(s, |v| matches!(v, Violation::WinnerEpochMismatch { .. }))
}

/// Whether the history records no violation that `is` matches.
fn never(s: &ClusterState, is: impl Fn(&Violation) -> bool) -> bool {
    !s.ghost.violations.iter().any(is)
}

/// (8) The fair, fault-free continuation of this state reaches agreement, both with the
/// messages in flight delivered and with all of them lost (see
/// [`settle`](crate::settle)).
pub fn converges(m: &ClusterModel, s: &ClusterState) -> bool {
    convergence_failure(m, s).is_none()
}

/// Why property 8 fails in `s`, if it does: which continuation, and how it ended.
pub fn convergence_failure(m: &ClusterModel, s: &ClusterState) -> Option<String> {
    use settle::{InFlight, Settled};
    for (in_flight, label) in [
        (InFlight::Delivered, "with the messages in flight delivered"),
        (InFlight::Lost, "with the messages in flight all lost"),
    ] {
        match settle::settle_from(m, s, in_flight) {
            Settled::Agreed { .. } => {}
            Settled::Disagreed { why } => {
                return Some(format!("{label}, the continuation's fixed point: {why}"));
            }
            Settled::NoFixedPoint => {
                return Some(format!(
                    "{label}, the continuation reaches no fixed point within {} rounds",
                    settle::MAX_ROUNDS
                ));
            }
        }
    }
    None
}

fn live(s: &ClusterState) -> impl Iterator<Item = &slotguard_protocol::state::NodeState> + '_ {
    s.nodes
        .iter()
        .zip(&s.crashed)
        .filter(|(_, crashed)| !**crashed)
        .map(|(n, _)| &**n)
}

fn created_as_master(m: &ClusterModel, node: NodeId) -> bool {
    m.actor
        .layout
        .spec(node)
        .is_some_and(|spec| matches!(spec.role, InitialRole::Master { .. }))
}

/// A live node created as a replica is a master now.
pub fn failover_completes(m: &ClusterModel, s: &ClusterState) -> bool {
    live(s).any(|n| n.role == Role::Master && !created_as_master(m, n.me))
}

/// A live node binds some slot to a node other than its creation-time owner.
pub fn slot_rebound(m: &ClusterModel, s: &ClusterState) -> bool {
    live(s).any(|n| {
        n.slots.iter().any(|(slot, owner)| {
            owner.is_some_and(|o| {
                m.actor.layout.spec(o).is_none_or(|spec| match &spec.role {
                    InitialRole::Master { slots } => !slots.contains(slot),
                    InitialRole::Replica { .. } => true,
                })
            })
        })
    })
}

/// Some node has been marked FAIL.
pub fn fail_reached(_: &ClusterModel, s: &ClusterState) -> bool {
    !s.ghost.ever_failed.is_empty()
}

/// A live node created as a master, once marked FAIL, now replicates another node.
pub fn failed_master_rejoins(m: &ClusterModel, s: &ClusterState) -> bool {
    live(s).any(|n| {
        created_as_master(m, n.me)
            && s.ghost.ever_failed.contains(n.me)
            && matches!(n.role, Role::Replica { .. })
    })
}
