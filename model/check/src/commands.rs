//! The one interpreter of an actor step's commands in the checker.
//!
//! The actor does not act: a step returns commands (send, set or cancel a timer, save the state
//! file), and whoever hosts the actor carries them out, in order — the node runtime with
//! sockets, clocks and files, the checker on its model of the cluster (specs/protocol.md §8).
//! The checker hosts the actor in three places: the search's steps (`ClusterModel::next_state`),
//! the initial states, and the convergence continuation (`settle.rs`). Each keeps the cluster
//! differently (a successor's changes before it is built, a state being built, a queue of
//! rounds), so each says what a command does to it by implementing [`Effects`]; which
//! commands exist and what they mean is said here, once.
//!
//! Two meanings are the checker's, not the runtime's: a timer's duration is ignored, since
//! every armed timer may fire at any moment (specs/protocol.md §8.1), and the protocol makes no
//! random choice (its `Random` is `()`).

use stateright::actor::{Command, Id, Out};

use slotguard_protocol::actor::ClusterNode;
use slotguard_protocol::ids::NodeId;
use slotguard_protocol::message::Msg;
use slotguard_protocol::state::Persisted;
use slotguard_protocol::timer::Timer;

/// What carrying out each command does to one way of keeping the cluster.
pub(crate) trait Effects {
    /// The stepping node sends `msg` to `dst`.
    fn send(&mut self, dst: NodeId, msg: Msg);
    /// The stepping node arms `timer` (already armed: it stays armed).
    fn set_timer(&mut self, timer: Timer);
    /// The stepping node disarms `timer` (not armed: nothing happens).
    fn cancel_timer(&mut self, timer: Timer);
    /// The stepping node writes its state file.
    fn save(&mut self, persisted: Persisted);
}

/// Carries out a step's commands, in order, on `effects`.
#[inline]
pub(crate) fn interpret(out: Out<ClusterNode>, effects: &mut impl Effects) {
    for command in out {
        match command {
            Command::Send(dst, msg) => effects.send(node_of(dst), msg),
            // Durations are ignored: any armed timer may fire at any moment (§8.1).
            Command::SetTimer(timer, _) => effects.set_timer(timer),
            Command::CancelTimer(timer) => effects.cancel_timer(timer),
            Command::Save(persisted) => effects.save(persisted),
            Command::ChooseRandom(..) => {
                // The protocol declares no random choices (Random = ()).
            }
        }
    }
}

/// The messages a step's commands send, with their receivers, in order (what the history
/// variables observe of a step, `ghost.rs`).
pub(crate) fn sent(out: &Out<ClusterNode>) -> Vec<(NodeId, &Msg)> {
    out.iter()
        .filter_map(|c| match c {
            Command::Send(dst, msg) => Some((node_of(*dst), msg)),
            _ => None,
        })
        .collect()
}

/// Whether a step's commands send or save anything: a step that does neither is a function of
/// the node's state, timers and history alone (`noop_cache.rs`).
pub(crate) fn sends_or_saves(out: &Out<ClusterNode>) -> bool {
    out.iter()
        .any(|c| matches!(c, Command::Send(..) | Command::Save(..)))
}

/// The node an actor id names. Only ids of the layout ever reach the checker: actors address
/// nodes by [`NodeId`].
pub(crate) fn node_of(id: Id) -> NodeId {
    NodeId(usize::from(id) as u16)
}
