//! History (ghost) variables: facts about the past that properties need and no node stores.
//!
//! The checker updates them after every step by observing what the acting node did — its state
//! before and after, the timer that fired, the messages it sent. Nodes never read them. They are
//! part of the checked state (so they are fingerprinted), which is why each is kept to the
//! minimum its property needs: most are determined by the messages on the never-emptied
//! network and add no states; `suspected_by` is the one that does.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::Serialize;

use slotguard_protocol::bitset::NodeSet;
use slotguard_protocol::ids::{Epoch, NodeId};
use slotguard_protocol::layout::Layout;
use slotguard_protocol::message::Msg;
use slotguard_protocol::state::{Election, Health, NodeState, Role};

/// A transition-property violation, recorded when the offending step happens.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum Violation {
    /// A node's currentEpoch, configEpoch or lastVoteEpoch went down (property 4).
    EpochRegressed {
        /// The node.
        node: NodeId,
        /// Which epoch.
        which: &'static str,
        /// Value before the step.
        before: Epoch,
        /// Value after.
        after: Epoch,
    },
    /// A replica was promoted although its master was never marked FAIL (property 6).
    PromotedWithoutFail {
        /// The promoted replica.
        node: NodeId,
        /// Its master.
        master: NodeId,
    },
    /// A node's view bound a slot at a lower configEpoch than before (property 7).
    BindingRegressed {
        /// The node whose view it is.
        node: NodeId,
        /// The slot.
        slot: u16,
        /// Binding epoch before the step.
        before: Epoch,
        /// Binding epoch after.
        after: Epoch,
    },
    /// A replica was promoted without grants from a quorum of distinct masters (property 2b).
    PromotedWithoutQuorum {
        /// The promoted replica.
        node: NodeId,
        /// The election epoch.
        epoch: Epoch,
        /// Distinct masters that granted it a vote in that epoch.
        granted: usize,
    },
    /// A master granted a vote while it did not have the candidate's master FAIL in its own
    /// view, or for a node it did not see as a replica (property 9).
    VoteWithoutFail {
        /// The master that granted the vote.
        voter: NodeId,
        /// The candidate it voted for.
        candidate: NodeId,
    },
    /// A winner took a configEpoch other than its election epoch (property 10).
    WinnerEpochMismatch {
        /// The promoted replica.
        node: NodeId,
        /// The election epoch it won.
        epoch: Epoch,
        /// The configEpoch it took.
        took: Epoch,
    },
}

/// Votes one master granted in one epoch.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default, Serialize)]
pub struct Grants {
    /// Candidates it voted for.
    pub candidates: NodeSet,
    /// Grant steps (capped at 2: "more than one" is all property 3 needs).
    pub count: u8,
}

/// The history the properties read.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default, Serialize)]
pub struct Ghost {
    /// For each node: the nodes that suspected it (PFAIL) while they were slot-owning masters,
    /// until they are a quorum (then the node is in `quorum_suspected` and this set is empty).
    pub suspected_by: Vec<NodeSet>,
    /// Nodes that a quorum of slot-owning masters has suspected. Property 5 needs nothing more
    /// about them: which masters, beyond a quorum, is forgotten (specs/protocol.md §8.7).
    pub quorum_suspected: NodeSet,
    /// Nodes some node has ever had marked FAIL.
    pub ever_failed: NodeSet,
    /// Promotions, by election epoch.
    pub winners: BTreeMap<Epoch, NodeSet>,
    /// Vote grants, by (epoch, voter).
    pub grants: BTreeMap<(Epoch, NodeId), Grants>,
    /// Transition violations seen so far.
    pub violations: Vec<Violation>,
    /// Only when the model tracks retries ([`Observed::election_timed_out`]): replicas whose
    /// election timed out and that have not won since.
    pub retried: NodeSet,
    /// Only when the model tracks retries: some replica won an election after one of its own
    /// had timed out (the witness `retry-election-won`).
    pub retry_won: bool,
    /// Under symmetry reduction: two nodes whose id order some renaming changes met as
    /// masters with one configEpoch, the one case where the protocol tells renamings apart
    /// (check/symmetry.rs). Never set without symmetry.
    pub asymmetric_collision: bool,
    /// Manual failovers an operator has asked for so far (bounded by the configuration).
    pub manual_failovers: u8,
    /// Some replica became master by a manual failover (the witness
    /// `manual-failover-completes`).
    pub manual_promotion: bool,
    /// The abstract writes clients issued so far, by [`WriteId`] (bounded by the
    /// configuration; specs/protocol.md §13).
    ///
    /// [`WriteId`]: slotguard_protocol::durability::WriteId
    pub writes: Vec<WriteRecord>,
}

/// One abstract write: where it went and whether the client was told it succeeded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct WriteRecord {
    /// The slot of its key.
    pub slot: u16,
    /// The master that accepted it.
    pub by: NodeId,
    /// The master acknowledged it to the client.
    pub acked: bool,
    /// The master's configEpoch when it acknowledged it: owners of the slot at this
    /// configEpoch or above came after (property 12).
    pub epoch: Epoch,
}

/// What one step of one node looked like, for [`Ghost::observe`].
pub(crate) struct Observed<'a> {
    pub(crate) node: NodeId,
    pub(crate) before: &'a NodeState,
    pub(crate) after: &'a NodeState,
    /// The peer whose PeerTimeout fired in this step, if that was the step.
    pub(crate) timed_out: Option<NodeId>,
    /// Messages the step sent.
    pub(crate) sent: Vec<(NodeId, &'a Msg)>,
    /// The step was an `ElectionTimeout` and the model tracks retries (only runs that look for
    /// the witness `retry-election-won` do: the history then tells more states apart).
    pub(crate) election_timed_out: bool,
}

fn is_slot_owning_master(s: &NodeState) -> bool {
    s.role == Role::Master && s.slots.owns_any(s.me)
}

impl Ghost {
    /// Empty history for a cluster of `nodes` nodes.
    pub fn new(nodes: usize) -> Ghost {
        Ghost {
            suspected_by: vec![NodeSet::new(); nodes],
            ..Ghost::default()
        }
    }

    /// The history without what its vote grants can no longer matter for, or `None` if there
    /// is nothing to forget (specs/protocol.md §8.7).
    ///
    /// Grants are read by two properties: (3) a master grants at most one vote per epoch (by
    /// the count of its grant steps in the epoch), and (2b) a winner had a quorum of grants in
    /// its election epoch (by the candidates granted). A master grants only in its own
    /// currentEpoch, so once that is above `e` it never grants in `e` again. A candidate can be
    /// promoted in `e` only while it runs an election in `e`, and elections start one above the
    /// candidate's currentEpoch: a candidate that does not run one in `e` and whose currentEpoch
    /// is at least `e` never will. So
    /// - a candidate that can no longer win `e` is dropped from the grants of `e` (the count
    ///   stays: it alone decides property 3);
    /// - a grant of `e` whose master is past `e`, and that has no candidate left, is dropped.
    ///
    /// (Both rest on currentEpoch never going down, restarts included: property 4, which the
    /// checker verifies on the same states; up to the first step that breaks it the history is
    /// exact.)
    pub fn without_settled_grants(
        &self,
        nodes: &[impl std::ops::Deref<Target = NodeState>],
        crashed: &[bool],
    ) -> Option<Ghost> {
        self.without_settled_grants_of(|i| nodes.get(i).map(|n| &**n), crashed)
    }

    /// [`Ghost::without_settled_grants`] with the nodes given by index (`None` past the last).
    pub(crate) fn without_settled_grants_of<'a>(
        &self,
        nodes: impl Fn(usize) -> Option<&'a NodeState>,
        crashed: &[bool],
    ) -> Option<Ghost> {
        let may_win = |candidate: NodeId, epoch: Epoch| {
            let (Some(c), Some(&down)) = (nodes(candidate.index()), crashed.get(candidate.index()))
            else {
                return true;
            };
            c.current_epoch < epoch
                || (!down && matches!(c.election, Election::Running { epoch: e, .. } if e == epoch))
        };
        let past = |voter: NodeId, epoch: Epoch| {
            nodes(voter.index()).is_some_and(|v| v.current_epoch > epoch)
        };
        // A second grant is a violation of property 3: it stays, as every violation does.
        let stale = |(&(epoch, voter), g): (&(Epoch, NodeId), &Grants)| {
            g.count < 2
                && (g.candidates.iter().any(|c| !may_win(c, epoch))
                    || (g.candidates.is_empty() && past(voter, epoch)))
        };
        if !self.grants.iter().any(stale) {
            return None;
        }
        let mut ghost = self.clone();
        ghost.grants.retain(|&(epoch, voter), g| {
            if g.count >= 2 {
                return true;
            }
            let dead: Vec<NodeId> = g
                .candidates
                .iter()
                .filter(|&c| !may_win(c, epoch))
                .collect();
            for c in dead {
                g.candidates.remove(c);
            }
            !(g.candidates.is_empty() && past(voter, epoch))
        });
        Some(ghost)
    }

    /// The history after one step, or `None` if the step changed none of it.
    pub(crate) fn observe(ghost: &Ghost, layout: &Layout, step: &Observed<'_>) -> Option<Ghost> {
        let mut g = Cow::Borrowed(ghost);
        let ghost = &mut g;
        let (b, a, node) = (step.before, step.after, step.node);

        // Property 4: epochs never decrease on a node, including across a restart (`before` is
        // then the state the node had when it crashed).
        for (which, x, y) in [
            ("currentEpoch", b.current_epoch, a.current_epoch),
            ("configEpoch", b.config_epoch, a.config_epoch),
            ("lastVoteEpoch", b.last_vote_epoch, a.last_vote_epoch),
        ] {
            if y < x {
                ghost.to_mut().violations.push(Violation::EpochRegressed {
                    node,
                    which,
                    before: x,
                    after: y,
                });
            }
        }

        // Property 7: a slot's binding never moves back to a lower configEpoch ("last failover
        // wins"), including across a restart.
        for ((slot, was), (_, now)) in b.slots.iter().zip(a.slots.iter()) {
            let before = was.map(|o| b.epoch_of(o));
            let after = now.map(|o| a.epoch_of(o));
            if let (Some(x), y) = (before, after) {
                let y = y.unwrap_or_default();
                if y < x {
                    ghost.to_mut().violations.push(Violation::BindingRegressed {
                        node,
                        slot,
                        before: x,
                        after: y,
                    });
                }
            }
        }

        // Property 5: who suspected whom while being a slot-owning master. A PeerTimeout that
        // fired is a suspicion even when the same step went on to mark FAIL.
        let suspected = |ghost: &mut Cow<'_, Ghost>, target: usize| {
            let known = ghost.quorum_suspected.contains(NodeId(target as u16))
                || ghost.suspected_by[target].contains(node);
            if !known {
                let g = ghost.to_mut();
                g.suspected_by[target].insert(node);
                if g.suspected_by[target].len() >= layout.quorum() {
                    g.suspected_by[target].clear();
                    g.quorum_suspected.insert(NodeId(target as u16));
                }
            }
        };
        if let Some(peer) = step.timed_out {
            if b.peers[peer.index()].health == Health::Ok
                && a.peers[peer.index()].health != Health::Ok
                && is_slot_owning_master(b)
            {
                suspected(ghost, peer.index());
            }
        }
        if is_slot_owning_master(a) {
            for (i, p) in a.peers.iter().enumerate() {
                if p.health == Health::PFail {
                    suspected(ghost, i);
                }
            }
        }

        for (i, p) in a.peers.iter().enumerate() {
            let n = NodeId(i as u16);
            if p.health.is_fail() && n != node && !ghost.ever_failed.contains(n) {
                ghost.to_mut().ever_failed.insert(n);
            }
        }

        // Property 3: vote grants; property 9: each while the voter has the candidate's
        // master FAIL.
        for &(to, msg) in &step.sent {
            if let Msg::AuthAck { epoch, forced, .. } = msg {
                let master_failed = match a.peers[to.index()].role {
                    Role::Replica { of } => a.peers[of.index()].health.is_fail(),
                    Role::Master => false,
                };
                // A manual failover's vote needs no FAIL (specs/protocol.md §6.1).
                if !master_failed && !forced {
                    ghost.to_mut().violations.push(Violation::VoteWithoutFail {
                        voter: node,
                        candidate: to,
                    });
                }
                let known = ghost.grants.get(&(*epoch, node));
                let unchanged = known.is_some_and(|g| g.candidates.contains(to) && g.count >= 2);
                if !unchanged {
                    let g = ghost.to_mut().grants.entry((*epoch, node)).or_default();
                    g.candidates.insert(to);
                    g.count = g.count.saturating_add(1).min(2);
                }
            }
        }

        if step.election_timed_out
            && matches!(b.election, Election::Running { .. })
            && !ghost.retried.contains(node)
        {
            ghost.to_mut().retried.insert(node);
        }

        // Properties 2, 2b, 6 and 10: promotions.
        if let (Role::Replica { .. }, Role::Master) = (b.role, a.role) {
            let manual = match b.election {
                Election::Running { forced, .. } => forced,
                _ => true,
            };
            if manual && !ghost.manual_promotion {
                ghost.to_mut().manual_promotion = true;
            }
        }
        if let (
            Role::Replica { of: master },
            Role::Master,
            Election::Running { epoch, forced, .. },
        ) = (b.role, a.role, &b.election)
        {
            let epoch = *epoch;
            let g = ghost.to_mut();
            g.winners.entry(epoch).or_default().insert(node);
            if !g.ever_failed.contains(master) && !forced {
                g.violations
                    .push(Violation::PromotedWithoutFail { node, master });
            }
            let granted = g
                .grants
                .range((epoch, NodeId(0))..=(epoch, NodeId(u16::MAX)))
                .filter(|(_, grants)| grants.candidates.contains(node))
                .count();
            if granted < layout.quorum() {
                g.violations.push(Violation::PromotedWithoutQuorum {
                    node,
                    epoch,
                    granted,
                });
            }
            if g.retried.contains(node) {
                g.retried.remove(node);
                g.retry_won = true;
            }
            if a.config_epoch != epoch {
                g.violations.push(Violation::WinnerEpochMismatch {
                    node,
                    epoch,
                    took: a.config_epoch,
                });
            }
        }
        match g {
            Cow::Owned(changed) => Some(changed),
            Cow::Borrowed(_) => None,
        }
    }
}
