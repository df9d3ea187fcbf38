//! Test builds only: each actor step as the deterministic simulation (sim/) observes it.
//!
//! Why: the simulation feeds the model's always-properties one step at a time (as trace
//! validation does, specs/protocol.md §12.2), but only the steps the world has seen — a step
//! whose save was still in flight when its node crashed never happened. So it needs each
//! step's state, its timer, its messages, and where its effects begin in the effect queue; the
//! driver's public interface only gives the state after a whole input.

use std::cell::Cell;

use slotguard_protocol::{ClusterNode, Msg, NodeId, NodeState, Timer};
use stateright::actor::{Command, Out};

use super::Driver;

thread_local! {
    static OBSERVE: Cell<bool> = const { Cell::new(false) };
}

/// Whether drivers started on this thread from now on record their steps.
pub(crate) fn observe_steps(on: bool) {
    OBSERVE.with(|o| o.set(on));
}

/// Whether a driver starting now records its steps.
pub(super) fn observing() -> bool {
    OBSERVE.with(Cell::get)
}

/// One actor step.
#[derive(Clone, Debug)]
pub(crate) struct Stepped {
    /// The timer that fired, if the step was a timer's.
    pub(crate) fired: Option<Timer>,
    /// The messages it sent, in order.
    pub(crate) sent: Vec<(NodeId, Msg)>,
    /// The state after it.
    pub(crate) after: NodeState,
    /// The index (counted from the start, over every effect ever queued) of its first effect.
    pub(crate) first_effect: u64,
}

impl Driver {
    /// Records a step about to be applied, if this driver records steps.
    pub(super) fn note_step(
        &mut self,
        fired: Option<&Timer>,
        out: &Out<ClusterNode>,
        after: Option<&NodeState>,
    ) {
        if self.steps.is_none() {
            return;
        }
        let first_effect = self.polled + self.effects.len() as u64;
        let after = after.unwrap_or(&self.state).clone();
        let sent = out
            .iter()
            .filter_map(|c| match c {
                Command::Send(to, m) => Some((NodeId(usize::from(*to) as u16), m.clone())),
                _ => None,
            })
            .collect();
        let Some(steps) = &mut self.steps else {
            return;
        };
        steps.push(Stepped {
            fired: fired.cloned(),
            sent,
            after,
            first_effect,
        });
    }

    /// The steps recorded since the last call (the start step first).
    pub(crate) fn take_steps(&mut self) -> Vec<Stepped> {
        self.steps.as_mut().map(std::mem::take).unwrap_or_default()
    }

    /// Effects handed out by [`Driver::poll_effect`] so far.
    pub(crate) fn effects_polled(&self) -> u64 {
        self.polled
    }
}
