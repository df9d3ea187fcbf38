//! What a step did, in words an operator reads: the log lines of role changes, suspicions,
//! FAILs, elections, votes and slot moves.
//!
//! Why a module of its own, made of pure functions: the lines are derived only from what the
//! runtime sees of a step — its input, the state before and after, and its outputs — so they
//! can be tested without capturing a logger, and no protocol decision can creep in. Nodes are
//! named as `3fa2c1d0(n1)` (first 8 hex digits of the name CLUSTER NODES shows, and the
//! index), so a log line can be matched with CLUSTER NODES at a glance.

use std::collections::BTreeMap;

use slotguard_protocol::state::{Election, Health, NodeState, Role};
use slotguard_protocol::{ClusterNode, Msg, NodeId, SlotSet};
use stateright::actor::{Command, Out};

use crate::identity::Directory;

/// What started a step.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Cause<'a> {
    /// A timer fired (or the node started).
    Local,
    /// A message arrived from a peer.
    Message {
        /// The sender.
        from: NodeId,
        /// The message.
        msg: &'a Msg,
    },
}

/// A role in words: `master`, or `replica of 3fa2c1d0(n1)`.
pub(crate) fn role_text(role: Role, names: &Directory) -> String {
    match role {
        Role::Master => "master".to_string(),
        Role::Replica { of } => format!("replica of {}", names.label(of)),
    }
}

/// The lines a step logs, in order.
pub(crate) fn step_lines(
    before: &NodeState,
    after: &NodeState,
    cause: Cause<'_>,
    out: &Out<ClusterNode>,
    names: &Directory,
) -> Vec<String> {
    let mut lines = Vec::new();
    if before.role != after.role {
        lines.push(match after.role {
            Role::Master => format!("role: now MASTER config_epoch={}", after.config_epoch),
            Role::Replica { of } => format!("role: now REPLICA master={}", names.label(of)),
        });
    }
    health_lines(before, after, cause, names, &mut lines);
    if let Election::Running { epoch, .. } = &after.election {
        if !matches!(&before.election, Election::Running { epoch: e, .. } if e == epoch) {
            lines.push(format!(
                "election started: asking masters for votes epoch={epoch}"
            ));
        }
    }
    lines.extend(manual_failover_line(before, after, names));
    lines.extend(vote_lines(out, names));
    lines.extend(slot_lines(before, after, names));
    lines
}

/// A manual failover's progress (specs/protocol.md §6.1), as the operator needs to follow it.
fn manual_failover_line(
    before: &NodeState,
    after: &NodeState,
    names: &Directory,
) -> Option<String> {
    use slotguard_protocol::ManualFailover as M;
    if before.manual == after.manual {
        return None;
    }
    Some(match (before.manual, after.manual) {
        (_, M::Waiting) => "manual failover: asked my master to pause writes".to_string(),
        (M::Paused { .. }, M::Paused { .. }) => {
            "manual failover: pause announced with the final offset".to_string()
        }
        (_, M::Paused { replica, .. }) => format!(
            "manual failover: writes paused for replica {}",
            names.label(replica)
        ),
        (M::Waiting, M::Idle) if matches!(after.election, Election::Running { .. }) => {
            "manual failover: caught up with my master, election follows".to_string()
        }
        (M::Waiting, M::Idle) => "manual failover: timed out or abandoned".to_string(),
        (M::Paused { .. }, M::Idle) => "manual failover: writes resumed".to_string(),
        (M::Idle, M::Idle) => return None,
    })
}

/// PFAIL, FAIL (by quorum, or adopted from a peer's FAIL message) and FAIL cleared.
fn health_lines(
    before: &NodeState,
    after: &NodeState,
    cause: Cause<'_>,
    names: &Directory,
    lines: &mut Vec<String>,
) {
    for (i, (b, a)) in before.peers.iter().zip(&after.peers).enumerate() {
        if i == after.me.index() {
            continue;
        }
        let peer = NodeId(i as u16);
        let label = names.label(peer);
        match (b.health, a.health) {
            (Health::Ok, Health::PFail) => {
                lines.push(format!("PFAIL peer={label} (no pong within node timeout)"))
            }
            (h, Health::Fail { .. }) if !h.is_fail() => lines.push(match cause {
                Cause::Message {
                    from,
                    msg: Msg::Fail { node },
                } if *node == peer => format!(
                    "FAIL peer={label} (adopted from a FAIL sent by {})",
                    names.label(from)
                ),
                _ => format!("FAIL peer={label} (majority of masters agree)"),
            }),
            (h, Health::Ok) if h.is_fail() => lines.push(format!("FAIL cleared peer={label}")),
            _ => {}
        }
    }
}

/// A vote this step granted: an AUTH_ACK among its outputs.
pub(crate) fn vote_lines(out: &Out<ClusterNode>, names: &Directory) -> Vec<String> {
    out.iter()
        .filter_map(|c| match c {
            Command::Send(
                _,
                Msg::AuthAck {
                    epoch, candidate, ..
                },
            ) => Some(format!(
                "vote granted candidate={} epoch={epoch}",
                names.label(*candidate)
            )),
            _ => None,
        })
        .collect()
}

fn slot_lines(before: &NodeState, after: &NodeState, names: &Directory) -> Vec<String> {
    if before.slots == after.slots {
        return Vec::new();
    }
    let mut moved: BTreeMap<Option<NodeId>, Vec<u16>> = BTreeMap::new();
    for ((slot, was), (_, now)) in before.slots.iter().zip(after.slots.iter()) {
        if was != now {
            moved.entry(now).or_default().push(slot);
        }
    }
    moved
        .into_iter()
        .map(|(owner, slots)| {
            let set: SlotSet = slots.iter().copied().collect();
            format!(
                "slots rebound owner={} config_epoch={} slots={set:?}",
                owner.map_or("-".to_string(), |o| names.label(o)),
                owner.map(|o| after.epoch_of(o)).unwrap_or_default(),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::{NodeName, NAME_LEN};
    use slotguard_protocol::{Epoch, InitialEpochs, Layout};

    fn setup() -> (NodeState, Directory) {
        let layout = Layout::grid(3, 1, 6, InitialEpochs::Distinct).expect("layout");
        let state = NodeState::fresh(&layout, NodeId(0));
        let mut names = Directory::new(NodeId(0), NodeName([0x3f; NAME_LEN]), 6);
        names.learn(NodeId(1), NodeName([0xa1; NAME_LEN]));
        (state, names)
    }

    #[test]
    fn a_fail_adopted_from_a_peer_is_not_said_to_be_agreed_by_a_majority() {
        let (before, names) = setup();
        let mut after = before.clone();
        after.peers[2].health = Health::Fail { undo_ready: false };
        let out = Out::new();
        let fail = Msg::Fail { node: NodeId(2) };
        let adopted = Cause::Message {
            from: NodeId(1),
            msg: &fail,
        };
        assert_eq!(
            step_lines(&before, &after, adopted, &out, &names),
            vec!["FAIL peer=n2 (adopted from a FAIL sent by a1a1a1a1(n1))"]
        );
        assert_eq!(
            step_lines(&before, &after, Cause::Local, &out, &names),
            vec!["FAIL peer=n2 (majority of masters agree)"]
        );
    }

    #[test]
    fn a_granted_vote_is_logged_from_the_steps_outputs() {
        let (state, names) = setup();
        let mut out: Out<ClusterNode> = Out::new();
        out.send(
            stateright::actor::Id::from(1),
            Msg::AuthAck {
                epoch: Epoch(4),
                candidate: NodeId(1),
                forced: false,
            },
        );
        assert_eq!(
            step_lines(&state, &state, Cause::Local, &out, &names),
            vec!["vote granted candidate=a1a1a1a1(n1) epoch=4"]
        );
    }

    #[test]
    fn roles_read_as_words_with_node_labels_not_debug() {
        let (before, names) = setup();
        let mut after = before.clone();
        after.role = Role::Replica { of: NodeId(1) };
        let lines = step_lines(&before, &after, Cause::Local, &Out::new(), &names);
        assert_eq!(lines, vec!["role: now REPLICA master=a1a1a1a1(n1)"]);
        assert_eq!(role_text(after.role, &names), "replica of a1a1a1a1(n1)");
        assert_eq!(role_text(Role::Master, &names), "master");
    }
}
