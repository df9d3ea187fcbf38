//! Whether a node considers the cluster usable (`cluster_state` of `CLUSTER INFO`, Redis's
//! `clusterUpdateState`; specs/protocol.md §5.6).
//!
//! A pure function of one node's state, decided here rather than in the runtime's formatter
//! because it is a protocol decision: the data plane will refuse writes on it (a master that
//! cannot reach a majority of slot-owning masters must stop accepting writes, as Redis's
//! minority master does after node_timeout), and the checker must be able to see it.

use crate::bitset::NodeSet;
use crate::ids::NodeId;
use crate::layout::Layout;
use crate::state::{Health, NodeState, Role};

/// A node's verdict on the cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ClusterStatus {
    /// Every slot has an owner that is not FAIL, and a majority of slot-owning masters is
    /// reachable.
    Ok,
    /// The cluster is unusable in this node's view, for the first reason found.
    Fail(FailReason),
}

/// Why a node reports `cluster_state:fail`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FailReason {
    /// This slot is bound to no node.
    UncoveredSlot(u16),
    /// This slot's owner is FAIL and no successor has claimed it yet.
    OwnerFailed {
        /// The slot.
        slot: u16,
        /// Its owner in this node's view.
        owner: NodeId,
    },
    /// Fewer slot-owning masters than a majority of the shards are reachable (not PFAIL or
    /// FAIL; this node counts if it is one): this node is in a minority partition.
    Minority {
        /// Slot-owning masters reachable.
        reachable: usize,
        /// A majority of the layout's shards.
        needed: usize,
    },
}

impl ClusterStatus {
    /// `ok` or `fail`, as `CLUSTER INFO` says it.
    pub fn as_str(self) -> &'static str {
        match self {
            ClusterStatus::Ok => "ok",
            ClusterStatus::Fail(_) => "fail",
        }
    }
}

/// `state`'s verdict on the cluster of `layout`: coverage first, as Redis checks it, then the
/// majority of reachable slot-owning masters. The majority is of the layout's shards, the
/// static size that quorums use (layout.rs).
pub fn cluster_status(state: &NodeState, layout: &Layout) -> ClusterStatus {
    let health = |node: NodeId| match node == state.me {
        true => Health::Ok,
        false => state.peer(node).map_or(Health::Ok, |p| p.health),
    };
    // Owners come in runs of slots: judge each run's owner once.
    let mut owners = NodeSet::new();
    let mut last = None;
    for (slot, owner) in state.slots.iter() {
        let Some(owner) = owner else {
            return ClusterStatus::Fail(FailReason::UncoveredSlot(slot));
        };
        if last == Some(owner) {
            continue;
        }
        last = Some(owner);
        if health(owner).is_fail() {
            return ClusterStatus::Fail(FailReason::OwnerFailed { slot, owner });
        }
        owners.insert(owner);
    }
    let reachable = owners
        .iter()
        .filter(|&n| n.index() < state.peers.len() && role_of(state, n) == Role::Master)
        .filter(|&n| health(n) == Health::Ok)
        .count();
    let needed = layout.quorum();
    if reachable < needed {
        return ClusterStatus::Fail(FailReason::Minority { reachable, needed });
    }
    ClusterStatus::Ok
}

/// `node`'s role in `state`'s view (its own role for itself).
fn role_of(state: &NodeState, node: NodeId) -> Role {
    match node == state.me {
        true => state.role,
        false => state.peers[node.index()].role,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::InitialEpochs;

    fn layout() -> Layout {
        Layout::grid(3, 1, 3, InitialEpochs::Distinct).expect("valid")
    }

    #[test]
    fn a_fresh_cluster_is_ok() {
        let l = layout();
        for me in 0..6 {
            assert_eq!(
                cluster_status(&NodeState::fresh(&l, NodeId(me)), &l),
                ClusterStatus::Ok
            );
        }
    }

    #[test]
    fn a_master_that_reaches_no_other_master_is_in_a_minority() {
        let l = layout();
        let mut s = NodeState::fresh(&l, NodeId(0));
        s.peers[1].health = Health::PFail;
        assert_eq!(
            cluster_status(&s, &l),
            ClusterStatus::Ok,
            "two of three reachable"
        );
        s.peers[2].health = Health::PFail;
        assert_eq!(
            cluster_status(&s, &l),
            ClusterStatus::Fail(FailReason::Minority {
                reachable: 1,
                needed: 2
            })
        );
    }

    #[test]
    fn a_failed_owner_without_successor_fails_the_cluster() {
        let l = layout();
        let mut s = NodeState::fresh(&l, NodeId(3));
        s.peers[2].health = Health::Fail { undo_ready: false };
        assert_eq!(
            cluster_status(&s, &l),
            ClusterStatus::Fail(FailReason::OwnerFailed {
                slot: 2,
                owner: NodeId(2)
            })
        );
        // Its replica took the slot: covered again.
        s.slots.bind(2, NodeId(5));
        s.peers[5].role = Role::Master;
        assert_eq!(cluster_status(&s, &l), ClusterStatus::Ok);
    }
}
