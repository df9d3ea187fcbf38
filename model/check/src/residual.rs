//! What a message in flight can still do to its receiver (specs/protocol.md §8.4).
//!
//! The checker's network duplicates: every datagram ever sent stays deliverable, so the network
//! of a state remembers its whole history, and two histories that leave every node in the same
//! state but sent slightly different messages are different states. Many of those messages can
//! no longer change anything, or differ only in a field the receiver will ignore from now on.
//! This module says which, from the handlers' own rules, so that the checker can keep one
//! canonical copy of each message *up to what its receiver can still observe*:
//!
//! - a PING/PONG's currentEpoch is only merged into the receiver's (`max`, §1.7 step 2); once
//!   the receiver's currentEpoch is at least as high, the field cannot matter again, and it is
//!   replaced by 0;
//! - a vote (`AuthAck`) counts only for a running election of exactly its epoch; every future
//!   election runs in an epoch above the receiver's currentEpoch, so an ACK below that
//!   currentEpoch, for an election not running now, is inert forever;
//! - a vote request below the receiver's currentEpoch is refused without a trace, forever;
//! - a gossip entry's configEpoch only raises the one the receiver knows for its subject: once
//!   the receiver knows as much, it is replaced by 0; an entry written by a node that was not a
//!   slot-owning master is never a failure report, so its PFAIL/healthy flag is irrelevant; an
//!   entry with both is inert;
//! - a failure report (or its withdrawal) counts, and a FAIL message is adopted, only while the
//!   receiver has the subject PFAIL; once the checker's suspicion budget is spent ([`Outlook`]),
//!   a receiver that does not have it PFAIL now never will, and both are dead;
//! - an UPDATE the receiver has applied, or one older than what it knows of the claim's node,
//!   rebinds nothing and raises nothing, forever: slots only move to higher claims.
//!
//! "Forever" rests on two facts. The receiver's currentEpoch never goes down, restarts included
//! (it is persisted before any message that depends on it leaves): that is property 4
//! (`epochs-monotonic`), which the checker verifies, and up to the first step that would break
//! it the reduced model has exactly the behaviours of the full one, so that step is found and
//! reported. And the configEpoch a node knows for a peer only grows: every write of it takes a
//! maximum, and it is persisted (and a slot is only ever rebound to a higher claim, property 7).
//! Mutants that break a rule an argument here rests on switch that argument off, so that they are
//! checked on the full model.
//!
//! A delivery's result depends on the message only through what the handler reads, so
//! replacing a message by its canonical form never changes a successor state; the reduction
//! only merges states whose networks differ in messages that can no longer be told apart. The
//! properties read node states and history, never the network.

use slotguard_protocol::actor::ClusterNode;
use slotguard_protocol::bitset::NodeSet;
use slotguard_protocol::bugs::Bug;
use slotguard_protocol::ids::{Epoch, NodeId};
use slotguard_protocol::message::{GossipEntry, Header, Msg, SlotClaim, Suspicion};
use slotguard_protocol::state::{Election, Health, NodeState};

/// What the checker knows about a receiver's future that the receiver's state does not say.
///
/// A node suspects a peer (PFAIL) only when its peer timeout fires, and the checker bounds how
/// many may fire in a behaviour (specs/protocol.md §8.1). Once that budget is spent, a node that
/// does not have a peer PFAIL now never will again, in the rest of the behaviour: a FAIL message
/// or a failure report about that peer can no longer change it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outlook {
    /// Peers the receiver may still newly suspect: its timeout for them may yet fire.
    pub may_suspect: NodeSet,
}

impl Outlook {
    /// Any peer may still be suspected (no bound known): the rules that need the bound are off.
    pub fn open(nodes: usize) -> Outlook {
        Outlook {
            may_suspect: (0..nodes).map(|i| NodeId(i as u16)).collect(),
        }
    }

    /// No peer can be suspected any more.
    pub fn closed() -> Outlook {
        Outlook {
            may_suspect: NodeSet::new(),
        }
    }

    /// Whether the receiver `receiver` has `node` PFAIL now or may have it later: only then can
    /// a failure report or a FAIL message about `node` change it (`failure.rs`).
    fn suspicion_possible(&self, receiver: &NodeState, node: NodeId) -> bool {
        receiver
            .peer(node)
            .is_some_and(|p| p.health == Health::PFail)
            || self.may_suspect.contains(node)
    }
}

/// What a message can still do to the node that will receive it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Residual {
    /// Nothing, in this state or any state the receiver can reach from it.
    Inert,
    /// Delivering it is indistinguishable, now and forever, from delivering this message.
    Canonical(Msg),
    /// It is already in canonical form.
    Unchanged,
}

/// What `msg` can still do to a receiver now in `receiver` (or crashed in it: a restart
/// keeps currentEpoch and ends any election), given what the checker knows of its future.
pub fn residual(
    actor: &ClusterNode,
    receiver: &NodeState,
    msg: &Msg,
    outlook: &Outlook,
) -> Residual {
    // Every rule here rests on currentEpoch surviving a restart.
    if actor.bug(Bug::UnpersistedEpochBump) {
        return Residual::Unchanged;
    }
    let current = receiver.current_epoch;
    match msg {
        Msg::Ping(h) | Msg::Pong(h)
            if h.current_epoch != Epoch(0) && h.current_epoch <= current =>
        {
            let h = Header {
                current_epoch: Epoch(0),
                ..h.clone()
            };
            Residual::Canonical(match msg {
                Msg::Ping(_) => Msg::Ping(h),
                _ => Msg::Pong(h),
            })
        }
        Msg::AuthAck { epoch, .. } if *epoch < current && !actor.bug(Bug::StaleVotesNotReset) => {
            let running = matches!(
                receiver.election,
                Election::Running { epoch: running, .. } if running == *epoch
            );
            if running {
                Residual::Unchanged
            } else {
                Residual::Inert
            }
        }
        Msg::AuthRequest(req) if req.epoch < current => Residual::Inert,
        Msg::Gossip(e) => gossip_residual(actor, receiver, e, outlook),
        Msg::Fail { node } => {
            // A FAIL is adopted only by a node that suspects its subject (failure.rs).
            let adoptable = actor.bug(Bug::AdoptFailUnconditionally)
                || outlook.suspicion_possible(receiver, *node);
            if *node == receiver.me || !adoptable {
                Residual::Inert
            } else {
                Residual::Unchanged
            }
        }
        Msg::Update(claim) if update_is_inert(actor, receiver, claim) => Residual::Inert,
        _ => Residual::Unchanged,
    }
}

/// A gossip entry does two things (`failure.rs: on_gossip`): it raises the configEpoch the
/// receiver knows for its subject, and, if written by a slot-owning master, it is a failure
/// report or withdraws one. The first is dead once the receiver knows that configEpoch or
/// more (it only grows, and is persisted); the second never happens for an entry written
/// by a node that was not a slot-owning master.
fn gossip_residual(
    actor: &ClusterNode,
    receiver: &NodeState,
    e: &GossipEntry,
    outlook: &Outlook,
) -> Residual {
    if e.node == receiver.me {
        return Residual::Inert;
    }
    let known = receiver.peer(e.node).map_or(Epoch(0), |p| p.config_epoch);
    let epoch_dead = e.config_epoch <= known;
    // A report (or its withdrawal) counts only while the receiver has the node PFAIL.
    let report_dead = (!e.from_voting_master && !actor.bug(Bug::ReplicaReportsCount))
        || !outlook.suspicion_possible(receiver, e.node);
    match (epoch_dead, report_dead) {
        (true, true) => Residual::Inert,
        _ => {
            let canonical = GossipEntry {
                config_epoch: if epoch_dead { Epoch(0) } else { e.config_epoch },
                suspicion: if report_dead {
                    Suspicion::None
                } else {
                    e.suspicion
                },
                from_voting_master: e.from_voting_master && !report_dead,
                ..e.clone()
            };
            if canonical == *e {
                Residual::Unchanged
            } else {
                Residual::Canonical(Msg::Gossip(canonical))
            }
        }
    }
}

/// An UPDATE (`heartbeat.rs: on_update`) does two things: it raises the configEpoch the
/// receiver knows for the claim's node, and applies the claim (rebinds each slot whose owner
/// has a lower configEpoch). Both are dead once the receiver knows a higher configEpoch for
/// the node, or knows that one and binds every claimed slot to the node or to an owner with
/// at least that configEpoch: known configEpochs only grow, and a slot is only ever rebound
/// to a claim above its owner's (property 7), so this stays so. A claim about the receiver
/// itself is ignored.
fn update_is_inert(actor: &ClusterNode, receiver: &NodeState, claim: &SlotClaim) -> bool {
    if actor.bug(Bug::AcceptStaleClaim) {
        return false;
    }
    if claim.node == receiver.me {
        return true;
    }
    let Some(known) = receiver.peer(claim.node).map(|p| p.config_epoch) else {
        return false;
    };
    known > claim.config_epoch
        || (known == claim.config_epoch
            && claim.slots.iter().all(|slot| {
                receiver.slots.owner(slot).is_some_and(|owner| {
                    owner == claim.node || receiver.epoch_of(owner) >= claim.config_epoch
                })
            }))
}

/// Whether a step from `before` to `after` changed anything [`residual`] reads, so
/// that messages already in flight to the node must be looked at again.
pub fn residual_inputs_changed(before: &NodeState, after: &NodeState) -> bool {
    before.current_epoch != after.current_epoch
        || before.config_epoch != after.config_epoch
        || before.election != after.election
        || before.slots != after.slots
        || before.peers.iter().zip(&after.peers).any(|(b, a)| {
            b.config_epoch != a.config_epoch
                || (b.health == Health::PFail) != (a.health == Health::PFail)
        })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use slotguard_protocol::bitset::NodeSet;
    use slotguard_protocol::ids::NodeId;
    use slotguard_protocol::layout::{InitialEpochs, Layout, Timing};
    use slotguard_protocol::message::VoteRequest;
    use slotguard_protocol::protocol::heartbeat::header;
    use slotguard_protocol::state::Role;

    fn setup() -> (ClusterNode, NodeState) {
        let layout = Layout::grid(3, 1, 3, InitialEpochs::Distinct).expect("valid");
        let node = ClusterNode::new(Arc::new(layout.clone()), Timing::default());
        let mut replica = NodeState::fresh(&layout, NodeId(3));
        replica.current_epoch = Epoch(5);
        (node, replica)
    }

    /// Every peer of the 6-node layout may still be suspected.
    fn open() -> Outlook {
        Outlook::open(6)
    }

    #[test]
    fn a_vote_is_inert_only_below_the_epoch_and_outside_a_running_election() {
        let (node, mut st) = setup();
        let ack = |e| Msg::AuthAck {
            epoch: Epoch(e),
            candidate: NodeId(3),
            forced: false,
        };
        assert_eq!(residual(&node, &st, &ack(4), &open()), Residual::Inert);
        // Not below currentEpoch: a future election could not use it, but the rule is strict.
        assert_eq!(residual(&node, &st, &ack(5), &open()), Residual::Unchanged);
        // currentEpoch grew during the election of epoch 4: its votes still count.
        st.election = Election::Running {
            epoch: Epoch(4),
            votes: NodeSet::new(),
            forced: false,
        };
        assert_eq!(residual(&node, &st, &ack(4), &open()), Residual::Unchanged);
        assert_eq!(residual(&node, &st, &ack(3), &open()), Residual::Inert);
    }

    #[test]
    fn a_header_loses_only_a_currentepoch_the_receiver_has_reached() {
        let (node, st) = setup();
        let mut h = header(&NodeState::fresh(&node.layout, NodeId(0)));
        h.current_epoch = Epoch(6);
        assert_eq!(
            residual(&node, &st, &Msg::Ping(h.clone()), &open()),
            Residual::Unchanged
        );
        h.current_epoch = Epoch(5);
        let canonical = Header {
            current_epoch: Epoch(0),
            ..h.clone()
        };
        assert_eq!(
            residual(&node, &st, &Msg::Pong(h), &open()),
            Residual::Canonical(Msg::Pong(canonical.clone()))
        );
        assert_eq!(
            residual(&node, &st, &Msg::Pong(canonical), &open()),
            Residual::Unchanged
        );
    }

    #[test]
    fn a_vote_request_is_inert_below_the_epoch_and_rules_are_off_for_unpersisted_epochs() {
        let (mut node, st) = setup();
        let req = |e| {
            Msg::AuthRequest(VoteRequest {
                epoch: Epoch(e),
                master: NodeId(0),
                master_config_epoch: Epoch(1),
                slots: [0].into_iter().collect(),
                forced: false,
            })
        };
        assert_eq!(residual(&node, &st, &req(4), &open()), Residual::Inert);
        assert_eq!(residual(&node, &st, &req(5), &open()), Residual::Unchanged);
        node.bugs = slotguard_protocol::bugs::Bugs::only(Bug::UnpersistedEpochBump);
        assert_eq!(residual(&node, &st, &req(4), &open()), Residual::Unchanged);
    }

    #[test]
    fn a_gossip_entry_keeps_only_what_can_still_change_the_receiver() {
        let (node, mut st) = setup();
        st.peers[0].config_epoch = Epoch(2);
        let entry = |config_epoch, suspicion, from_voting_master| {
            Msg::Gossip(GossipEntry {
                node: NodeId(0),
                suspicion,
                config_epoch: Epoch(config_epoch),
                from_voting_master,
            })
        };
        // Written by a slot-owning master, with news about the epoch: all of it matters.
        assert_eq!(
            residual(&node, &st, &entry(3, Suspicion::PFail, true), &open()),
            Residual::Unchanged
        );
        // The epoch is known: only the report is left.
        assert_eq!(
            residual(&node, &st, &entry(2, Suspicion::PFail, true), &open()),
            Residual::Canonical(entry(0, Suspicion::PFail, true))
        );
        // Not a report: only the epoch is left.
        assert_eq!(
            residual(&node, &st, &entry(3, Suspicion::PFail, false), &open()),
            Residual::Canonical(entry(3, Suspicion::None, false))
        );
        // Neither: inert; and an entry about the receiver itself never does anything.
        assert_eq!(
            residual(&node, &st, &entry(1, Suspicion::PFail, false), &open()),
            Residual::Inert
        );
        let mut about_me = entry(9, Suspicion::PFail, true);
        if let Msg::Gossip(e) = &mut about_me {
            e.node = NodeId(3);
        }
        assert_eq!(residual(&node, &st, &about_me, &open()), Residual::Inert);
    }

    #[test]
    fn reports_and_fail_messages_die_with_the_last_possible_suspicion() {
        let (node, mut st) = setup();
        let report = |suspicion| {
            Msg::Gossip(GossipEntry {
                node: NodeId(0),
                suspicion,
                config_epoch: Epoch(0),
                from_voting_master: true,
            })
        };
        let fail = Msg::Fail { node: NodeId(0) };
        // Suspicions are left: the receiver may yet suspect n0, so both may count.
        assert_eq!(
            residual(&node, &st, &report(Suspicion::PFail), &open()),
            Residual::Unchanged
        );
        assert_eq!(residual(&node, &st, &fail, &open()), Residual::Unchanged);
        // None left and n0 not PFAIL here: neither can ever count.
        let closed = Outlook::closed();
        assert_eq!(
            residual(&node, &st, &report(Suspicion::PFail), &closed),
            Residual::Inert
        );
        assert_eq!(
            residual(&node, &st, &report(Suspicion::None), &closed),
            Residual::Inert
        );
        assert_eq!(residual(&node, &st, &fail, &closed), Residual::Inert);
        // ... unless the receiver has n0 PFAIL now.
        st.peers[0].health = Health::PFail;
        assert_eq!(
            residual(&node, &st, &report(Suspicion::PFail), &closed),
            Residual::Unchanged
        );
        assert_eq!(residual(&node, &st, &fail, &closed), Residual::Unchanged);
        // With news about the epoch, only the report part goes.
        st.peers[0].health = Health::Fail { undo_ready: false };
        let entry = GossipEntry {
            node: NodeId(0),
            suspicion: Suspicion::PFail,
            config_epoch: Epoch(7),
            from_voting_master: true,
        };
        let canonical = Msg::Gossip(GossipEntry {
            suspicion: Suspicion::None,
            from_voting_master: false,
            ..entry.clone()
        });
        assert_eq!(
            residual(&node, &st, &Msg::Gossip(entry.clone()), &closed),
            Residual::Canonical(canonical)
        );
        // A FAIL message about the receiver itself never does anything.
        assert_eq!(
            residual(&node, &st, &Msg::Fail { node: NodeId(3) }, &open()),
            Residual::Inert
        );
    }

    #[test]
    fn an_update_is_inert_once_the_receiver_knows_that_claim_or_a_newer_one() {
        let (mut node, mut st) = setup();
        // The receiver is n3, a replica of n0; the claims are n4's.
        let update = |epoch, slots: &[u16]| {
            Msg::Update(SlotClaim {
                node: NodeId(4),
                config_epoch: Epoch(epoch),
                slots: slots.iter().copied().collect(),
            })
        };
        // Not known yet: live.
        assert_eq!(
            residual(&node, &st, &update(4, &[0]), &open()),
            Residual::Unchanged
        );
        st.peers[4].config_epoch = Epoch(4);
        st.peers[4].role = Role::Master;
        // The epoch is known but slot 0 is still bound to n0 (configEpoch 1): live.
        assert_eq!(
            residual(&node, &st, &update(4, &[0]), &open()),
            Residual::Unchanged
        );
        st.slots.bind(0, NodeId(4));
        assert_eq!(
            residual(&node, &st, &update(4, &[0]), &open()),
            Residual::Inert
        );
        // Slot 1 is bound to n1 at configEpoch 2 < 4: a claim on it would still win.
        assert_eq!(
            residual(&node, &st, &update(4, &[0, 1]), &open()),
            Residual::Unchanged
        );
        // An older claim of n4's is dead, whatever its slots.
        assert_eq!(
            residual(&node, &st, &update(3, &[1]), &open()),
            Residual::Inert
        );
        // A claim about the receiver itself is ignored.
        let about_me = Msg::Update(SlotClaim {
            node: NodeId(3),
            config_epoch: Epoch(9),
            slots: [0].into_iter().collect(),
        });
        assert_eq!(residual(&node, &st, &about_me, &open()), Residual::Inert);
        // With the bug that accepts stale claims, nothing is judged.
        node.bugs = slotguard_protocol::bugs::Bugs::only(Bug::AcceptStaleClaim);
        assert_eq!(
            residual(&node, &st, &update(3, &[1]), &open()),
            Residual::Unchanged
        );
    }
}
