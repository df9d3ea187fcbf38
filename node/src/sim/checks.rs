//! What every run is checked against (specs/protocol.md §14.2).
//!
//! - The checker's always-properties, on every global state the run went through: the steps
//!   the world has seen, in the order it saw them, fed to the checker's own [`Observer`] (the
//!   history and property code `slotguard validate` uses, model/check/src/observe.rs). Any
//!   order that puts each receipt after its sending is a behaviour of the model (§12.2), and
//!   the simulation's is one.
//! - Two of them again, from other evidence, so that a gap in one is not a gap in both: no
//!   (slot, configEpoch) is ever claimed by two nodes, read from the nodes' own states as they
//!   step; and no master sends two votes in one epoch, read from the datagrams that actually
//!   left, opened with the cluster key (wire.rs).
//! - The runtime's own rules (§10), as the shell sees them (host.rs).
//! - Agreement once the faults stop, within the plan's bound (world.rs), with the checker's
//!   definition of agreement (`settle::disagreement`).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use slotguard_check::observe::{Observer, Seen};
use slotguard_protocol::{ClusterNode, Epoch, Layout, Msg, NodeId, NodeState, Role, Timing};

use super::host::KEY;
use super::plan::Micros;
use crate::driver::Stepped;
use crate::wire::{self, BusKey};

/// A property that failed, first seen at `at`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Violation {
    pub(crate) at: Micros,
    /// The property's name (the checker's, or one of this module's).
    pub(crate) property: &'static str,
    pub(crate) what: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "at {} ms: {}: {}",
            self.at / 1000,
            self.property,
            self.what
        )
    }
}

/// A (slot, configEpoch) claimed by a second node.
pub(crate) const SLOT_CLAIMED_TWICE: &str = "slot-epoch-claimed-once";
/// A master's second vote in one epoch, on the wire.
pub(crate) const VOTED_TWICE: &str = "one-vote-per-epoch-on-the-wire";
/// A rule of the runtime broken.
pub(crate) const RUNTIME_RULE: &str = "runtime-rule";
/// No agreement within the bound after the faults stopped.
pub(crate) const NO_AGREEMENT: &str = "agreement-after-faults";

/// The checks of one run.
pub(crate) struct Checks {
    observer: Observer,
    key: BusKey,
    /// Who claimed each (slot, configEpoch) first.
    claims: BTreeMap<(u16, Epoch), NodeId>,
    /// Votes on the wire by (voter, epoch).
    votes: BTreeMap<(u16, Epoch), u32>,
    pub(crate) violations: Vec<Violation>,
    pub(crate) steps: u64,
}

impl Checks {
    pub(crate) fn new(layout: &Arc<Layout>, timing: Timing) -> Checks {
        Checks {
            observer: Observer::new(ClusterNode::new(Arc::clone(layout), timing)),
            key: BusKey::new(KEY, layout),
            claims: BTreeMap::new(),
            votes: BTreeMap::new(),
            violations: Vec::new(),
            steps: 0,
        }
    }

    /// The sometimes-properties the run reached.
    pub(crate) fn reached(&self) -> Vec<&'static str> {
        self.observer.reached()
    }

    /// A step of node `node` the world has seen.
    pub(crate) fn seen(&mut self, at: Micros, node: usize, step: &Stepped, start: bool) {
        self.steps += 1;
        let id = NodeId(node as u16);
        let violated = if start {
            self.observer.start(id, &step.after, &step.sent)
        } else {
            self.observer.step(Seen {
                node: id,
                after: &step.after,
                fired: step.fired.as_ref(),
                sent: &step.sent,
            })
        };
        for property in violated {
            self.fail(at, property, format!("after a step of n{node}"));
        }
        self.claims_of(at, &step.after);
    }

    /// §4: a master's own slots at its configEpoch are its alone, for all time.
    fn claims_of(&mut self, at: Micros, s: &NodeState) {
        if s.role != Role::Master {
            return;
        }
        for (slot, owner) in s.slots.iter() {
            if owner != Some(s.me) {
                continue;
            }
            let first = *self.claims.entry((slot, s.config_epoch)).or_insert(s.me);
            if first != s.me {
                let what = format!(
                    "slot {slot} at configEpoch {} claimed by {} and by {first}",
                    s.config_epoch, s.me
                );
                self.fail(at, SLOT_CLAIMED_TWICE, what);
            }
        }
    }

    /// A datagram that left node `from` for `to`: counts the votes in it.
    pub(crate) fn sent(&mut self, at: Micros, from: usize, to: usize, bytes: &[u8]) {
        let Ok(d) = wire::open(&self.key, to as u16, bytes) else {
            let what = format!("n{from} sent n{to} a datagram that does not open");
            return self.fail(at, RUNTIME_RULE, what);
        };
        for m in &d.messages {
            if let Msg::AuthAck { epoch, .. } = m {
                let n = self.votes.entry((d.sender, *epoch)).or_default();
                *n += 1;
                if *n == 2 {
                    let what = format!("n{from} sent a second vote in epoch {epoch}");
                    self.fail(at, VOTED_TWICE, what);
                }
            }
        }
    }

    /// Records a failure (once per property).
    pub(crate) fn fail(&mut self, at: Micros, property: &'static str, what: String) {
        if self.violations.iter().all(|v| v.property != property) {
            self.violations.push(Violation { at, property, what });
        }
    }
}
