//! The checker's abstract data plane (specs/protocol.md §13): clients' writes and replicas'
//! copies, the two steps that move data, and the acknowledgements they allow.
//!
//! A write is a number appended to the log of the master that accepts it, under the same
//! routing rule the node applies to a real write ([`ClusterNode::route`], property 11) and only
//! while that master serves its data. A copy gives a replica its master's whole log at once and
//! records, on the master, that the replica confirmed it: the replication stream and its
//! acknowledgement as one step. That loses no behaviour that matters to the properties: a
//! stream delivered in pieces is a sequence of copies of prefixes, each of which this model
//! reaches by copying before the later writes, and the master's knowledge of a replica's offset
//! only ever lags the replica (until the replica restarts, which leaves it incomplete: it then
//! neither runs nor counts as a copy until it has copied again).
//!
//! After each such step the master's acknowledgements are recomputed with the protocol's own
//! rule ([`ClusterNode::may_acknowledge`]) and recorded in the history: a client is told of
//! success as soon as the master may tell it, the most demanding client for the properties.

use std::borrow::Cow;

use crate::ghost::{Ghost, WriteRecord};
use crate::hashed::Hashed;
use crate::model::{Action, ClusterModel, ClusterState, EarlyRepeats};
use slotguard_protocol::actor::{out_buffer, ClusterNode};
use slotguard_protocol::cluster_state::cluster_status;
use slotguard_protocol::durability::WriteId;
use slotguard_protocol::ids::NodeId;
use slotguard_protocol::routing::{Access, Route};
use slotguard_protocol::state::{NodeState, Role};

impl ClusterModel {
    /// A write to every live master that would accept one, while the budget lasts; a copy for
    /// every live replica whose master would give one and whose copy would change anything.
    ///
    /// Writes go only to shards of more than one node. A write to a shard of one lives and
    /// dies with its master: `sync` mode never acknowledges it, and in `async` mode the loss
    /// it shows (a restart) is shown as well by a shard with replicas.
    pub(crate) fn data_actions(&self, state: &ClusterState, actions: &mut Vec<Action>) {
        if self.write_budget == 0 {
            return;
        }
        for (i, node) in state.nodes.iter().enumerate() {
            if state.crashed[i] {
                continue;
            }
            let id = NodeId(i as u16);
            if state.ghost.writes.len() < usize::from(self.write_budget)
                && self.actor.acknowledgers(node).next().is_some()
                && writable_slot(&self.actor, node).is_some()
            {
                actions.push(Action::Write(id));
            }
            if copy_source(state, &self.actor, node).is_some() {
                actions.push(Action::Copy(id));
            }
        }
    }

    /// A client's write to `node`: appended to its log, acknowledged if the rule allows.
    pub(crate) fn write(&self, last: &ClusterState, node: NodeId) -> Option<ClusterState> {
        let before = &last.nodes[node.index()];
        let slot = writable_slot(&self.actor, before)?;
        let id = WriteId(last.ghost.writes.len() as u8);
        let mut after = (**before).clone();
        after.data.log.push(id);
        let mut ghost = (*last.ghost).clone();
        ghost.writes.push(WriteRecord {
            slot,
            by: node,
            acked: false,
            epoch: before.config_epoch,
        });
        let mut next = last.clone();
        next.ghost = Hashed::new(ghost);
        Some(self.settle_data_step(next, node, after))
    }

    /// `replica` copies its master's log and confirms it to the master.
    pub(crate) fn copy(&self, last: &ClusterState, replica: NodeId) -> Option<ClusterState> {
        let master = copy_source(last, &self.actor, &last.nodes[replica.index()])?;
        let log = last.nodes[master.index()].data.log.clone();
        let len = log.len() as u8;
        let mut state = Cow::Borrowed(&*last.nodes[replica.index()]);
        if state.data.log != log {
            state.to_mut().data.log = log;
        }
        let mut out = out_buffer();
        self.actor.on_copied(&mut state, &mut out);
        let mut next = match self.finish_step(last, replica, state, out, None, EarlyRepeats::No) {
            crate::model::Finished::State(next) => next,
            _ => last.clone(),
        };
        let mut after = (*next.nodes[master.index()]).clone();
        after.data.confirm(replica, len);
        next = self.settle_data_step(next, master, after);
        (next != *last).then_some(next)
    }

    /// `master`'s new state `after` in `next`, with the acknowledgements it now allows
    /// recorded in the history.
    fn settle_data_step(
        &self,
        mut next: ClusterState,
        master: NodeId,
        after: NodeState,
    ) -> ClusterState {
        if let Some(ghost) = acknowledged(&self.actor, &next.ghost, &after) {
            next.ghost = Hashed::new(ghost);
        }
        next.nodes[master.index()] = Hashed::new(after);
        next
    }
}

/// The first slot `state`'s node would accept a write for now, if any.
fn writable_slot(actor: &ClusterNode, state: &NodeState) -> Option<u16> {
    if !actor.serves_data(state) {
        return None;
    }
    let status = cluster_status(state, &actor.layout);
    state
        .slots
        .slots_of(state.me)
        .iter()
        .find(|&slot| actor.route(state, status, slot, Access::Write) == Route::Serve)
}

/// The master `replica` would copy from now, if the copy would change anything: its master in
/// its own view, live, a master in its own view and serving copies.
fn copy_source(state: &ClusterState, actor: &ClusterNode, replica: &NodeState) -> Option<NodeId> {
    let Role::Replica { of } = replica.role else {
        return None;
    };
    let master = state.nodes.get(of.index())?;
    if state.crashed[of.index()] || !actor.serves_copies(master) {
        return None;
    }
    let changes = replica.data.log != master.data.log
        || !replica.data.complete
        || master.data.confirmed_by(replica.me) != master.data.log.len() as u64;
    changes.then_some(of)
}

/// The history with every write `master` may acknowledge now marked acknowledged, or `None` if
/// nothing changes.
fn acknowledged(actor: &ClusterNode, ghost: &Ghost, master: &NodeState) -> Option<Ghost> {
    let mut g = Cow::Borrowed(ghost);
    for (i, write) in master.data.log.iter().enumerate() {
        let offset = i as u64 + 1;
        let record = g.writes.get(usize::from(write.0))?;
        if !record.acked
            && record.by == master.me
            && actor.may_acknowledge(master, offset, |n| master.data.confirmed_by(n))
        {
            let w = &mut g.to_mut().writes[usize::from(write.0)];
            w.acked = true;
            w.epoch = master.config_epoch;
        }
    }
    match g {
        Cow::Owned(g) => Some(g),
        Cow::Borrowed(_) => None,
    }
}
