//! The property catalogue on the global states of a real cluster: its nodes' steps, merged into
//! one order by whoever read their traces (`slotguard validate`, specs/protocol.md §12), are
//! observed here one at a time, with the same history ([`Ghost`]) and the same always-properties
//! the checker uses on the model's states.
//!
//! Why here and not in the node: which facts about the past a property needs, and how a step
//! updates them, are the checker's (ghost.rs); the node only says which step happened. Every
//! order of the steps that puts each message's receipt after its sending is a behaviour the
//! model has (its network delays, reorders, duplicates and loses), so every state of such an
//! order is one the checker claims safe.
//!
//! Not evaluated: property 8 (convergence), which reads the messages in flight and runs a fair
//! continuation; a real run's agreement is what its test waits for instead.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use stateright::{Expectation, Model, Property};

use crate::crash_twins::CrashTwins;
use crate::ghost::{Ghost, Observed};
use crate::hashed::Hashed;
use crate::model::{ClusterModel, ClusterState};
use crate::noop_cache::NoopCache;
use crate::properties::names;
use crate::reductions::Reductions;
use crate::repeats::Repeats;
use crate::settle_memo::SettleMemo;
use slotguard_protocol::ids::{Epoch, NodeId};
use slotguard_protocol::message::Msg;
use slotguard_protocol::state::NodeState;
use slotguard_protocol::timer::Timer;
use slotguard_protocol::ClusterNode;

/// One step of one real node, as its trace replays it.
#[derive(Clone, Copy, Debug)]
pub struct Seen<'a> {
    /// The node that stepped.
    pub node: NodeId,
    /// Its state after the step.
    pub after: &'a NodeState,
    /// The timer that fired, if the step was a timer's.
    pub fired: Option<&'a Timer>,
    /// The messages the step sent, in order.
    pub sent: &'a [(NodeId, Msg)],
}

/// Global states of a real cluster, one step at a time, and the properties on each (module
/// docs).
pub struct Observer {
    model: ClusterModel,
    state: ClusterState,
    /// Nodes that have started at least once in what was observed.
    started: Vec<bool>,
    always: Vec<Property<ClusterModel>>,
    /// Sometimes-properties, and whether some observed state has reached each.
    sometimes: Vec<(Property<ClusterModel>, bool)>,
    steps: u64,
}

impl Observer {
    /// Observes a cluster whose nodes run `actor`. Until a node's first start is observed it
    /// counts as down, with the state it would be created with.
    pub fn new(actor: ClusterNode) -> Observer {
        let model = ClusterModel::for_traces(actor);
        let mut state = model
            .init_states()
            .pop()
            .expect("the model has one initial state");
        state.crashed.iter_mut().for_each(|down| *down = true);
        let (always, sometimes): (Vec<_>, Vec<_>) = model
            .properties()
            .into_iter()
            .filter(|p| p.name != names::CONVERGES)
            .partition(|p| p.expectation == Expectation::Always);
        let n = state.nodes.len();
        Observer {
            model,
            state,
            started: vec![false; n],
            always,
            sometimes: sometimes.into_iter().map(|p| (p, false)).collect(),
            steps: 0,
        }
    }

    /// The names of the always-properties checked on every state.
    pub fn checked(&self) -> Vec<&'static str> {
        self.always.iter().map(|p| p.name).collect()
    }

    /// Node `node` starts with `state` and sends `sent`. Its first observed start only sets
    /// its state (what came before is not in the traces); a later one is the model's
    /// crash-restart, a step from the state the node had. Returns the always-properties the
    /// resulting state violates.
    pub fn start(
        &mut self,
        node: NodeId,
        state: &NodeState,
        sent: &[(NodeId, Msg)],
    ) -> Vec<&'static str> {
        let i = node.index();
        if i >= self.started.len() {
            return Vec::new();
        }
        self.state.crashed[i] = false;
        if !std::mem::replace(&mut self.started[i], true) {
            self.state.nodes[i] = Hashed::new(state.clone());
            return self.evaluate();
        }
        self.step(Seen {
            node,
            after: state,
            fired: None,
            sent,
        })
    }

    /// Observes one step; returns the always-properties the resulting state violates.
    pub fn step(&mut self, seen: Seen<'_>) -> Vec<&'static str> {
        let i = seen.node.index();
        if i >= self.started.len() {
            return Vec::new();
        }
        self.steps += 1;
        let before = &*self.state.nodes[i];
        let timed_out = match seen.fired {
            Some(Timer::PeerTimeout(peer)) => Some(*peer),
            _ => None,
        };
        let observed = Observed {
            node: seen.node,
            before,
            after: seen.after,
            timed_out,
            sent: seen.sent.iter().map(|(to, m)| (*to, m)).collect(),
            election_timed_out: matches!(seen.fired, Some(Timer::ElectionTimeout)),
        };
        let ghost = Ghost::observe(&self.state.ghost, &self.model.actor.layout, &observed);
        let node_changed = *before != *seen.after;
        if ghost.is_none() && !node_changed {
            // The same global state: the properties' verdicts are the same too.
            return Vec::new();
        }
        if let Some(ghost) = ghost {
            self.state.ghost = Hashed::new(ghost);
        }
        if node_changed {
            self.state.nodes[i] = Hashed::new(seen.after.clone());
        }
        self.evaluate()
    }

    /// Steps observed so far.
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// The sometimes-properties some observed state reached.
    pub fn reached(&self) -> Vec<&'static str> {
        self.sometimes
            .iter()
            .filter(|(_, found)| *found)
            .map(|(p, _)| p.name)
            .collect()
    }

    /// The highest currentEpoch any node has reached.
    pub fn max_epoch(&self) -> Epoch {
        self.state
            .nodes
            .iter()
            .map(|n| n.current_epoch)
            .max()
            .unwrap_or_default()
    }

    /// The global state now (every node's state, which are down, the history).
    pub fn state(&self) -> &ClusterState {
        &self.state
    }

    fn evaluate(&mut self) -> Vec<&'static str> {
        for (p, found) in self.sometimes.iter_mut().filter(|(_, found)| !*found) {
            *found = (p.condition)(&self.model, &self.state);
        }
        self.always
            .iter()
            .filter(|p| !(p.condition)(&self.model, &self.state))
            .map(|p| p.name)
            .collect()
    }
}

impl ClusterModel {
    /// A model that only hosts `actor` for [`Observer`]: no budgets, no reductions, no memos
    /// (nothing is explored; only the properties read it).
    fn for_traces(actor: ClusterNode) -> ClusterModel {
        ClusterModel {
            actor,
            crash_budget: 0,
            suspicion_budget: 0,
            lossy: true,
            suspectable: None,
            max_epoch: Epoch(u64::MAX),
            reductions: Reductions::none(),
            crash_twins: CrashTwins::new(),
            noop_cache: NoopCache::new(),
            rewrites: crate::network::RewriteMemo::new(),
            repeats: Repeats::new(),
            settle_memo: SettleMemo::new(),
            verify_early_fingerprints: false,
            stop: Arc::new(AtomicBool::new(false)),
            symmetry: None,
            write_budget: 0,
            witnesses: crate::properties::Witness::ALL.to_vec(),
            manual_failover_budget: 0,
            failover_modes: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use slotguard_protocol::actor::out_buffer;
    use slotguard_protocol::layout::{InitialEpochs, Layout, Timing};
    use stateright::actor::{Actor, Id};

    use super::*;

    fn started() -> (Observer, Vec<NodeState>) {
        let layout = Arc::new(Layout::grid(3, 1, 3, InitialEpochs::Distinct).expect("layout"));
        let actor = ClusterNode::new(layout, Timing::default());
        let mut observer = Observer::new(actor.clone());
        let states: Vec<NodeState> = (0..4)
            .map(|i| actor.on_start(Id::from(i), &None, &mut out_buffer()))
            .collect();
        for (i, s) in states.iter().enumerate() {
            assert!(observer.start(NodeId(i as u16), s, &[]).is_empty());
        }
        (observer, states)
    }

    #[test]
    fn identifies_a_slot_bound_to_two_nodes_at_one_epoch() {
        let (mut observer, states) = started();
        // n1 binds n0's slot 0 to itself, at n0's configEpoch as its own.
        let mut after = states[1].clone();
        after.slots.bind(0, NodeId(1));
        after.config_epoch = states[0].config_epoch;
        let violated = observer.step(Seen {
            node: NodeId(1),
            after: &after,
            fired: None,
            sent: &[],
        });
        assert!(violated.contains(&names::SLOT_EPOCH_UNIQUE), "{violated:?}");
    }

    #[test]
    fn identifies_two_votes_of_one_master_in_one_epoch() {
        let (mut observer, states) = started();
        let epoch = Epoch(states[0].current_epoch.0 + 1);
        let vote = |candidate: u16| {
            [(
                NodeId(candidate),
                Msg::AuthAck {
                    epoch,
                    candidate: NodeId(candidate),
                    forced: false,
                },
            )]
        };
        let mut after = states[0].clone();
        after.current_epoch = epoch;
        after.last_vote_epoch = epoch;
        let first = vote(3);
        let seen = |sent| Seen {
            node: NodeId(0),
            after: &after,
            fired: None,
            sent,
        };
        let violated = observer.step(seen(&first));
        assert!(
            !violated.contains(&names::ONE_VOTE_PER_EPOCH),
            "{violated:?}"
        );
        let second = vote(2);
        let violated = observer.step(seen(&second));
        assert!(
            violated.contains(&names::ONE_VOTE_PER_EPOCH),
            "{violated:?}"
        );
    }
}
