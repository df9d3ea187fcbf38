//! The data plane's durability decisions (specs/protocol.md §13): which writes a master may
//! acknowledge, which node may serve its slots' data, and which replica may run for its
//! master's slots.
//!
//! A node's keys live in memory only, so a restart loses them. In `async` mode (Redis's
//! semantics) that is accepted: a master acknowledges a write once it has applied it, and a
//! replica that had not received it can win the next election, or a restarted master can
//! serve its slots empty. In `sync` mode an acknowledged write is never lost to one crash or
//! one partition, by three rules:
//!
//! 1. **A write is acknowledged only when every other node of its shard holds it.** The shard
//!    is the master and replicas the layout creates together; membership is static
//!    (specs/protocol.md §1) and failovers only move roles inside a shard, so "every node
//!    that could ever win the slots" is a fixed set. A member that is down or cut off stops
//!    acknowledgements (writes wait, and the client times out) rather than being dropped:
//!    dropping it safely needs the voters to agree to it first (§13.3 says why and what that
//!    would take).
//! 2. **A node that lost its data does not serve or run.** After a restart a node's data is
//!    `complete` again only once it has a full copy from its master. Until then, as a replica it
//!    runs no election (manual or automatic), and as a master it serves nothing: no reads, no
//!    writes, no copies to replicas. Its header says so (`data_lost`), and its replicas that
//!    are complete hand its slots to one of them by a forced election, as a manual failover.
//! 3. **Copies come only from a complete master.** A replica never copies from a node that lost
//!    its data, which would make it "complete" with nothing.
//!
//! Together: every acknowledged write is held by every complete node of its shard, and only
//! complete nodes serve or win (the property `acknowledged-writes-kept`, specs/properties.md).
//! Writes applied on a master but never acknowledged may vanish in a failover; the client was
//! never told they succeeded.
//!
//! In `async` mode nothing here changes behaviour: a restart leaves `complete` true and every
//! applied write counts as acknowledged, so the checker finds the lost writes Redis loses.
//!
//! The checker's writes are abstract ([`WriteId`]s in a [`Data::log`]); a real node's data
//! is its keyspace, and it asks the same questions with its replication offsets.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use smallvec::SmallVec;
use stateright::actor::Out;

use crate::actor::{ClusterNode, Step};
use crate::bugs::Bug;
use crate::ids::NodeId;
use crate::message::Header;
use crate::state::{Election, NodeState, Role};

/// When a master acknowledges a write (the node's `durability` setting and the checker's
/// `--durability`).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default,
)]
#[serde(rename_all = "lowercase")]
pub enum Durability {
    /// Once applied on the master (Redis's semantics): a failover or restart can lose it.
    #[default]
    Async,
    /// Once every other node of the shard has it: no single crash or partition loses it.
    Sync,
}

impl Durability {
    /// Whether a replica that holds its master's stream up to `held` may replace its data with a
    /// full copy that starts at `offered`. In `sync` mode not with an empty one (`offered` 0)
    /// over data: a master whose stream is at 0 never took a write, so a replica holding
    /// writes knows that master is a node recreated without its state file, which holds none of
    /// the shard's acknowledged writes (a restart keeps the state file and the node knows it
    /// lost its data; a node without one cannot know). The replica keeps its data, confirms
    /// nothing to that master, and wins the election that replaces its old incarnation.
    pub fn accepts_copy(self, held: u64, offered: u64) -> bool {
        self == Durability::Async || offered > 0 || held == 0
    }

    /// The setting's name, as configurations and reports spell it.
    pub fn name(self) -> &'static str {
        match self {
            Durability::Async => "async",
            Durability::Sync => "sync",
        }
    }
}

/// Why a node refuses `CLUSTER ACCEPT-DATA-LOSS`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DataLossRefused {
    /// Sent to a replica: a replica gets its data from its master.
    #[error("send CLUSTER ACCEPT-DATA-LOSS to the master of the shard")]
    NotAMaster,
}

/// An abstract write of the checker: the `n`-th write of a behaviour (0-based).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default,
)]
pub struct WriteId(pub u8);

/// What a node holds of its shard's data, as far as the protocol decides anything by it.
/// Volatile: a restart loses the data, and with it this.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Data {
    /// The node holds every write its shard acknowledged: true at creation, false after a
    /// restart in `sync` mode until a full copy from a complete master.
    pub complete: bool,
    /// The checker's writes this node has applied, in order. Empty on a real node, whose data
    /// is its keyspace.
    pub log: SmallVec<[WriteId; 2]>,
    /// As a master, in the checker: how long a prefix of its log each node (by id) has
    /// confirmed holding, its replication acknowledgement. Empty on a real node, which keeps
    /// its replicas' offsets itself and passes them to [`ClusterNode::may_acknowledge`].
    pub confirmed: SmallVec<[u8; 4]>,
}

impl Data {
    /// The data of a node at cluster creation: nothing yet, and nothing missing.
    pub fn fresh() -> Data {
        Data {
            complete: true,
            log: SmallVec::new(),
            confirmed: SmallVec::new(),
        }
    }

    /// The data of a node just restarted: nothing, and incomplete until it is known otherwise
    /// ([`ClusterNode::complete_after_restart`]).
    pub fn lost() -> Data {
        Data {
            complete: false,
            ..Data::fresh()
        }
    }

    /// How long a prefix of this master's log `node` has confirmed (checker).
    pub fn confirmed_by(&self, node: NodeId) -> u64 {
        self.confirmed
            .get(node.index())
            .copied()
            .map_or(0, u64::from)
    }

    /// Records that `node` holds the first `len` writes of this master's log (checker). The
    /// table never ends in a 0, so equal confirmations are equal states.
    pub fn confirm(&mut self, node: NodeId, len: u8) {
        let i = node.index();
        if self.confirmed.len() <= i {
            self.confirmed.resize(i + 1, 0);
        }
        self.confirmed[i] = len;
        while self.confirmed.last() == Some(&0) {
            self.confirmed.pop();
        }
    }
}

impl ClusterNode {
    /// Whether `state`'s node may serve its own slots' data now (reads and writes as owner, and
    /// copies to its replicas): a master whose data is complete (rule 2). Routing asks this too
    /// ([`crate::routing`]).
    pub fn serves_data(&self, state: &NodeState) -> bool {
        state.role == Role::Master && state.data.complete
    }

    /// Whether `state`'s node may give a replica a copy of its data (rule 3).
    pub fn serves_copies(&self, state: &NodeState) -> bool {
        self.serves_data(state) || (state.role == Role::Master && self.bug(Bug::CopyFromDataLost))
    }

    /// Whether `state`'s node, a replica, may run an election for its master's slots (rule 2).
    /// Safety does not rest on this (a winner that lost its data serves nothing, by
    /// [`ClusterNode::serves_data`]); it keeps such a replica from taking slots it could not
    /// serve, which would leave them down until a complete node takes them back.
    pub fn may_run(&self, state: &NodeState) -> bool {
        state.data.complete
    }

    /// The nodes whose copy a `sync` acknowledgement waits for: every other node of `state`'s
    /// shard (rule 1).
    pub fn acknowledgers(&self, state: &NodeState) -> impl Iterator<Item = NodeId> + '_ {
        let me = state.me;
        self.layout.shard_members(me).filter(move |&n| n != me)
    }

    /// The nodes an acknowledgement waits for in this mode: the other nodes of the shard in
    /// `sync` mode, none in `async` mode.
    pub fn awaited(&self, state: &NodeState) -> impl Iterator<Item = NodeId> + '_ {
        let sync = self.durability == Durability::Sync;
        self.acknowledgers(state).filter(move |_| sync)
    }

    /// Whether a write taken now could ever be acknowledged, given which nodes have a
    /// replication link `attached`: in `sync` mode only if the shard has other nodes and all
    /// of them are attached. The runtime refuses other writes at once rather than let them
    /// time out (an availability rule: safety rests on [`ClusterNode::may_acknowledge`]).
    pub fn can_confirm(&self, state: &NodeState, attached: impl Fn(NodeId) -> bool) -> bool {
        if self.durability == Durability::Async {
            return true;
        }
        let mut others = self.acknowledgers(state).peekable();
        others.peek().is_some() && others.all(attached)
    }

    /// Whether `state`'s node may acknowledge the writes up to `offset` of its stream, given
    /// how far each node has `confirmed` it (rule 1; in `async` mode, always). A shard of one
    /// node acknowledges nothing in `sync` mode: its one copy dies with it.
    pub fn may_acknowledge(
        &self,
        state: &NodeState,
        offset: u64,
        confirmed: impl Fn(NodeId) -> u64,
    ) -> bool {
        if self.durability == Durability::Async || self.bug(Bug::AckBeforeReplicas) {
            return true;
        }
        let mut others = self.acknowledgers(state).peekable();
        others.peek().is_some() && self.serves_data(state) && others.all(|n| confirmed(n) >= offset)
    }

    /// Whether `state`'s node, just restarted with no data, still holds every write its shard
    /// acknowledged: in `async` mode nothing promises it did (a restart is Redis's restart
    /// without persistence), and a shard of one node acknowledges nothing in `sync` mode; any
    /// other node in `sync` mode has lost writes it may have confirmed.
    pub fn complete_after_restart(&self, state: &NodeState) -> bool {
        self.durability == Durability::Async
            || self.acknowledgers(state).next().is_none()
            || (self.bug(Bug::RestartedMasterServes) && state.role == Role::Master)
            || (self.bug(Bug::RestartedReplicaComplete) && state.role != Role::Master)
    }

    /// An operator's `CLUSTER ACCEPT-DATA-LOSS` on `state`'s node: a master that lost its data
    /// takes what it holds (nothing) for its shard's data, and serves again; its replicas then
    /// copy it. The way out when every copy of a shard was lost (every node of it restarted):
    /// without it the shard would refuse service forever. It gives up property 12 for that
    /// shard by the operator's decision, so the checker never takes it.
    pub fn on_data_loss_accepted(
        &self,
        state: &mut Cow<'_, NodeState>,
        o: &mut Out<Self>,
    ) -> Result<(), DataLossRefused> {
        if state.role != Role::Master {
            return Err(DataLossRefused::NotAMaster);
        }
        self.step(state, o, |s| {
            if !s.st().data.complete {
                s.st_mut().data.complete = true;
            }
        });
        Ok(())
    }

    /// `state`'s node, a replica, was offered an empty copy over its data by its master
    /// ([`Durability::accepts_copy`]): the master was recreated without its state file and holds
    /// none of the shard's writes, though its header cannot say so. A complete replica takes its
    /// slots as it would from a master that says it lost its data (rule 3).
    pub fn on_master_recreated(&self, state: &mut Cow<'_, NodeState>, o: &mut Out<Self>) {
        self.step(state, o, |s| {
            if let Role::Replica { of } = s.st().role {
                s.take_over_from_data_lost(of);
            }
        });
    }

    /// `state`'s node, a replica, now holds a full copy of its master's data: it is complete
    /// again, and may run if its master is FAIL or has lost its data.
    pub fn on_copied(&self, state: &mut Cow<'_, NodeState>, o: &mut Out<Self>) {
        self.step(state, o, |s| s.copied());
    }
}

impl Step<'_, '_> {
    fn copied(&mut self) {
        if self.st().data.complete {
            return;
        }
        self.st_mut().data.complete = true;
        let Role::Replica { of } = self.st().role else {
            return;
        };
        if self.st().peers[of.index()].health.is_fail() {
            self.schedule_election();
        }
    }

    /// A header from `from`: if it is my master and it lost its data, and mine is complete,
    /// take its slots by a forced election (rule 2), as a manual failover does: the voters
    /// grant it although the master is not FAIL (specs/protocol.md §6.1, §13.2).
    pub(crate) fn on_master_lost_data(&mut self, from: NodeId, h: &Header) {
        if h.flags.data_lost && h.master.is_none() {
            self.take_over_from_data_lost(from);
        }
    }

    /// `master` lost its data: if it is mine and mine is complete, take its slots by a forced
    /// election.
    fn take_over_from_data_lost(&mut self, master: NodeId) {
        let st = self.st();
        if st.role == (Role::Replica { of: master })
            && st.election == Election::Idle
            && !st.no_failover
            && self.node.may_run(st)
        {
            self.cancel_timer(crate::timer::Timer::ElectionDelay);
            self.start_election(master, true);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::layout::{InitialEpochs, Layout, Timing};

    /// Three masters with two replicas each: node 0's shard is nodes 0, 3 and 4.
    fn node(durability: Durability) -> ClusterNode {
        let layout = Layout::grid(3, 2, 3, InitialEpochs::Distinct).expect("valid");
        ClusterNode::new(Arc::new(layout), Timing::default()).with_durability(durability)
    }

    #[test]
    fn sync_acknowledges_once_every_other_node_of_the_shard_confirmed() {
        let actor = node(Durability::Sync);
        let master = NodeState::fresh(&actor.layout, NodeId(0));
        let others: Vec<NodeId> = actor.acknowledgers(&master).collect();
        assert_eq!(others, [NodeId(3), NodeId(4)]);
        let confirmed =
            |at3: u64, at4: u64| move |n: NodeId| if n == NodeId(3) { at3 } else { at4 };
        assert!(!actor.may_acknowledge(&master, 10, confirmed(10, 9)));
        assert!(actor.may_acknowledge(&master, 10, confirmed(10, 12)));
        assert!(node(Durability::Async).may_acknowledge(&master, 10, confirmed(0, 0)));
        assert!(actor.can_confirm(&master, |n| n == NodeId(3) || n == NodeId(4)));
        assert!(!actor.can_confirm(&master, |n| n == NodeId(3)));
    }

    #[test]
    fn a_restart_in_sync_mode_leaves_the_data_incomplete() {
        let mut out = crate::actor::out_buffer();
        for (durability, complete) in [(Durability::Async, true), (Durability::Sync, false)] {
            let actor = node(durability);
            let stored = Some(NodeState::fresh(&actor.layout, NodeId(0)).persisted());
            let restarted = stateright::actor::Actor::on_start(
                &actor,
                stateright::actor::Id::from(0),
                &stored,
                &mut out,
            );
            assert_eq!(restarted.data.complete, complete, "{durability:?}");
            assert_eq!(actor.serves_data(&restarted), complete);
            assert_eq!(
                crate::protocol::heartbeat::header(&restarted)
                    .flags
                    .data_lost,
                !complete
            );
        }
    }

    #[test]
    fn a_shard_of_one_acknowledges_nothing_in_sync_mode_and_survives_restarts() {
        let layout = Layout::grid(3, 0, 3, InitialEpochs::Distinct).expect("valid");
        let actor =
            ClusterNode::new(Arc::new(layout), Timing::default()).with_durability(Durability::Sync);
        let master = NodeState::fresh(&actor.layout, NodeId(0));
        assert!(!actor.may_acknowledge(&master, 1, |_| u64::MAX));
        assert!(!actor.can_confirm(&master, |_| true));
        assert!(actor.complete_after_restart(&master));
    }
}
