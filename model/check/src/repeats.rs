//! Generated states that are exact repeats of a state generated before, recognised before the
//! search asks for their symmetry representative.
//!
//! A depth-first search generates each state many times: on `standard`, about twenty successors
//! are computed for every state explored, and most are states seen before (two independent steps
//! taken in either order reach the same state). Under `--symmetry`, stateright looks a generated
//! state up by the fingerprint of its representative, and choosing the representative (the
//! nodes' signatures, the candidate renamings, the renamed hashes) was a fifth of a symmetric
//! run, spent mostly on states seen before.
//!
//! So [`within_boundary`](crate::ClusterModel), which the search calls for every generated
//! state before it looks the state up, first looks up the state's own fingerprint (a few words:
//! the components carry their hashes, `check/hashed.rs`) in this filter. A state found there was
//! generated before and went through the same checks then: it was refused then (the boundary and
//! the crash-twin memo refuse for good), or it was looked up then and is among the states the
//! search has seen. Refusing it now changes nothing but the work done.
//!
//! Most repeats are recognised earlier still: a state's fingerprint is made of its parts'
//! hashes, so `ClusterModel::finish_step` computes a delivery's successor's fingerprint from the
//! parts the step changes and asks [`Repeats::recorded`] (which looks without recording) before
//! it copies the cluster state. A successor not found there is built and goes through
//! `within_boundary` like any other, so every state is recorded exactly as before.
//!
//! The filter is a direct-mapped cache of fingerprints, bounded: a newer fingerprint replaces an
//! older one in its slot, so the filter forgets (and the state is then looked up as before),
//! never grows. A repeat is only recognised by an equal 64-bit fingerprint, the risk the search's
//! own visited set takes. Like the crash-twin memo it acts only while a run has it switched on,
//! and a clone starts empty and off.
//!
//! The search counts a generated state only once it passes `within_boundary`; the run adds the
//! repeats back, so the figure it reports still counts every generated state within bounds.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::OnceLock;

use crate::counter::Counter;

/// Slots of the filter (8 bytes each: 32 MiB once used).
const SLOTS: usize = 1 << 22;

/// A bounded, lock-free set of the fingerprints of recently generated states.
pub struct Repeats {
    active: AtomicBool,
    slots: OnceLock<Box<[AtomicU64]>>,
    found: Counter,
    /// Of those, found by [`Repeats::recorded`] before the state was built.
    found_early: Counter,
}

impl Repeats {
    /// An empty filter, switched off.
    pub fn new() -> Repeats {
        Repeats {
            active: AtomicBool::new(false),
            slots: OnceLock::new(),
            found: Counter::new(),
            found_early: Counter::new(),
        }
    }

    /// Switches the filter on (for a search) or off.
    pub fn set_active(&self, on: bool) {
        self.active.store(on, Ordering::Relaxed);
    }

    /// Whether the filter is on.
    pub fn is_active(&self) -> bool {
        self.active.load(Ordering::Relaxed)
    }

    /// Whether a state with this fingerprint was recorded; records it if not. (0 marks an
    /// empty slot: a state with fingerprint 0 is never a repeat.)
    pub fn seen(&self, fingerprint: u64) -> bool {
        if fingerprint == 0 {
            return false;
        }
        let slots = self
            .slots
            .get_or_init(|| (0..SLOTS).map(|_| AtomicU64::new(0)).collect());
        let slot = &slots[Self::place(fingerprint)];
        if slot.load(Ordering::Relaxed) == fingerprint {
            self.found.incr();
            return true;
        }
        slot.store(fingerprint, Ordering::Relaxed);
        false
    }

    /// Whether a state with this fingerprint was recorded, without recording it: for a
    /// successor whose fingerprint is known before the state is built (`ClusterModel::
    /// finish_step`). A state that is not found is built and then goes through [`Repeats::seen`]
    /// like any other.
    pub fn recorded(&self, fingerprint: u64) -> bool {
        if fingerprint == 0 {
            return false;
        }
        let Some(slots) = self.slots.get() else {
            return false;
        };
        if slots[Self::place(fingerprint)].load(Ordering::Relaxed) == fingerprint {
            self.found.incr();
            self.found_early.incr();
            return true;
        }
        false
    }

    /// How many of the repeats were found before the state was built.
    pub fn found_before_built(&self) -> u64 {
        self.found_early.get()
    }

    fn place(fingerprint: u64) -> usize {
        (fingerprint.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40) as usize % SLOTS
    }

    /// How many generated states were found to be repeats.
    pub fn found(&self) -> u64 {
        self.found.get()
    }
}

memo_impls!(Repeats);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fingerprint_is_a_repeat_the_second_time() {
        let repeats = Repeats::new();
        assert!(!repeats.seen(42));
        assert!(repeats.seen(42));
        assert!(!repeats.seen(43));
        assert!(!repeats.seen(0));
        assert!(!repeats.seen(0));
        assert_eq!(repeats.found(), 1);
        assert!(repeats.recorded(42));
        assert!(!repeats.recorded(44));
        assert!(!repeats.seen(44), "looking does not record");
        assert_eq!(repeats.found(), 2);
        assert_eq!(repeats.found_before_built(), 1);
        assert!(!repeats.clone().seen(42));
    }
}
