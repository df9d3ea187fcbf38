//! Where a command on a key of one slot goes: served by this node, redirected to the owner, or
//! refused because the cluster is down in this node's view. Redis decides this in
//! `getNodeByQuery` (cluster.c); slotguard decides it here, as a pure function of the actor
//! state, because it is the data plane's safety rule: which node accepts a write for a slot is
//! what decides whether an acknowledged write can be lost, so the checker must see it
//! (specs/protocol.md §5.7).
//!
//! The rule, in Redis's order:
//! 1. a slot bound to no node is refused (`CLUSTERDOWN Hash slot not served`);
//! 2. if this node's view of the cluster is `fail` ([`cluster_status`]: a slot uncovered, an
//!    owner FAIL with no successor yet, or this node unable to reach a majority of slot-owning
//!    masters), every command on a key is refused (`CLUSTERDOWN The cluster is down`), reads
//!    too, as Redis does by default (`cluster-allow-reads-when-down no`). This is what stops a
//!    master cut off in a minority from accepting writes, once it has timed out its peers;
//! 3. the owner serves its slot;
//! 4. a replica serves a read of its own master's slot to a connection that asked for it
//!    (`READONLY`);
//! 5. anything else is redirected to the owner (`MOVED`).
//!
//! A command without keys (`DBSIZE`, `KEYS`, `SCAN`, `FLUSHALL`) acts on the node's own keys,
//! as in Redis; a replica refuses one that writes (`READONLY`).

use crate::actor::ClusterNode;
use crate::bugs::Bug;
use crate::cluster_state::{cluster_status, ClusterStatus, FailReason};
use crate::ids::NodeId;
use crate::layout::Layout;
use crate::state::{ManualFailover, NodeState};

/// What a command does with its keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Access {
    /// Reads only, on a connection that has not sent `READONLY`.
    Read,
    /// Reads only, on a connection that has sent `READONLY` (a replica may answer).
    ReadFromReplica,
    /// Writes.
    Write,
}

/// Where a command on a key of a slot goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Route {
    /// This node serves it.
    Serve,
    /// The owner in this node's view serves it: `-MOVED <slot> <owner's address>`.
    Moved(NodeId),
    /// Nobody serves it now, in this node's view: `-CLUSTERDOWN ...`.
    Down(Down),
}

/// Why a command is refused with `CLUSTERDOWN`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Down {
    /// The slot is bound to no node.
    Unbound,
    /// A write without keys (`FLUSHALL`) on a replica, which takes no write of its own.
    ReadOnlyReplica,
    /// A write on a master that paused writes for a manual failover (specs/protocol.md §6.1).
    FailoverPause,
    /// A command on a master that restarted without its data in `sync` mode, while a replica
    /// takes its slots (specs/protocol.md §13.2).
    DataLost,
    /// This node sees the cluster as failed, for this reason.
    ClusterFail(FailReason),
}

impl Down {
    /// The error reply, as Redis words it.
    pub fn message(self) -> &'static str {
        match self {
            Down::Unbound => "CLUSTERDOWN Hash slot not served",
            Down::ReadOnlyReplica => "READONLY You can't write against a read only replica.",
            Down::FailoverPause => "TRYAGAIN Writes are paused for a manual failover",
            Down::DataLost => {
                "TRYAGAIN This master restarted without its data; a replica is taking over"
            }
            Down::ClusterFail(_) => "CLUSTERDOWN The cluster is down",
        }
    }
}

/// Where `state`'s node sends a command of kind `access` on a key of `slot`.
pub fn route(state: &NodeState, layout: &Layout, slot: u16, access: Access) -> Route {
    route_in(state, cluster_status(state, layout), slot, access)
}

/// [`route`] with the node's [`cluster_status`] computed once beforehand: it reads every slot,
/// so a node serving many commands computes it once per change of state, not per command.
pub fn route_in(state: &NodeState, status: ClusterStatus, slot: u16, access: Access) -> Route {
    decide(state, status, slot, access, |_| false)
}

impl ClusterNode {
    /// [`route_in`] as this actor decides it: the same rule, with the actor's injected bugs
    /// (none outside mutation tests). The node and the checker both ask the actor.
    pub fn route(
        &self,
        state: &NodeState,
        status: ClusterStatus,
        slot: u16,
        access: Access,
    ) -> Route {
        decide(state, status, slot, access, |bug| self.bug(bug))
    }

    /// Where a command without keys goes (`DBSIZE`, `KEYS`, `SCAN`, `FLUSHALL`): it acts on
    /// this node's own keys, as in Redis, except that a replica refuses a write.
    pub fn route_keyless(&self, state: &NodeState, access: Access) -> Route {
        if access != Access::Write {
            return Route::Serve;
        }
        if state.role != crate::state::Role::Master {
            return Route::Down(Down::ReadOnlyReplica);
        }
        if !self.serves_data(state) {
            return Route::Down(Down::DataLost);
        }
        match state.manual {
            ManualFailover::Paused { .. } => Route::Down(Down::FailoverPause),
            _ => Route::Serve,
        }
    }
}

fn decide(
    state: &NodeState,
    status: ClusterStatus,
    slot: u16,
    access: Access,
    bug: impl Fn(Bug) -> bool,
) -> Route {
    let Some(owner) = state.slots.owner(slot) else {
        return Route::Down(Down::Unbound);
    };
    match status {
        ClusterStatus::Fail(FailReason::Minority { .. }) if bug(Bug::WritesInMinority) => {}
        ClusterStatus::Fail(reason) => return Route::Down(Down::ClusterFail(reason)),
        ClusterStatus::Ok => {}
    }
    let paused = matches!(state.manual, ManualFailover::Paused { .. });
    if owner == state.me && access == Access::Write && paused {
        return Route::Down(Down::FailoverPause);
    }
    if owner == state.me && !state.data.complete {
        return Route::Down(Down::DataLost);
    }
    let may_read = access == Access::ReadFromReplica || bug(Bug::ReplicaTakesWrites);
    let replica_serves = may_read && state.role.master() == Some(owner);
    if owner == state.me || replica_serves {
        Route::Serve
    } else {
        Route::Moved(owner)
    }
}

/// Whether `state`'s node accepts a write for `slot` now: the question the data plane's safety
/// rests on, and the one the checker's properties ask.
pub fn accepts_write(state: &NodeState, layout: &Layout, slot: u16) -> bool {
    route(state, layout, slot, Access::Write) == Route::Serve
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::InitialEpochs;
    use crate::state::{Health, Role};

    fn layout() -> Layout {
        Layout::grid(3, 1, 3, InitialEpochs::Distinct).expect("valid")
    }

    #[test]
    fn the_owner_serves_and_others_redirect_to_it() {
        let l = layout();
        let master = NodeState::fresh(&l, NodeId(0));
        assert_eq!(route(&master, &l, 0, Access::Write), Route::Serve);
        assert_eq!(
            route(&master, &l, 1, Access::Write),
            Route::Moved(NodeId(1))
        );
        assert_eq!(
            route(&master, &l, 1, Access::ReadFromReplica),
            Route::Moved(NodeId(1))
        );
    }

    #[test]
    fn a_replica_serves_reads_of_its_master_only_after_readonly() {
        let l = layout();
        let replica = NodeState::fresh(&l, NodeId(3));
        assert_eq!(replica.role, Role::Replica { of: NodeId(0) });
        assert_eq!(
            route(&replica, &l, 0, Access::Read),
            Route::Moved(NodeId(0))
        );
        assert_eq!(
            route(&replica, &l, 0, Access::ReadFromReplica),
            Route::Serve
        );
        assert_eq!(
            route(&replica, &l, 0, Access::Write),
            Route::Moved(NodeId(0))
        );
        assert_eq!(
            route(&replica, &l, 1, Access::ReadFromReplica),
            Route::Moved(NodeId(1))
        );
        assert!(!accepts_write(&replica, &l, 0));
    }

    #[test]
    fn a_master_in_a_minority_refuses_its_own_slots() {
        let l = layout();
        let mut master = NodeState::fresh(&l, NodeId(0));
        master.peers[1].health = Health::PFail;
        master.peers[2].health = Health::PFail;
        assert!(matches!(
            route(&master, &l, 0, Access::Write),
            Route::Down(Down::ClusterFail(FailReason::Minority { .. }))
        ));
        assert!(!accepts_write(&master, &l, 0));
    }

    #[test]
    fn a_failed_owner_without_successor_stops_every_slot() {
        let l = layout();
        let mut master = NodeState::fresh(&l, NodeId(0));
        master.peers[2].health = Health::Fail { undo_ready: false };
        assert!(matches!(
            route(&master, &l, 0, Access::Read),
            Route::Down(_)
        ));
    }
}
