//! A memo of deliveries that change nothing, so the checker does not run them again.
//!
//! On a duplicating network most envelopes in flight are, at most states, no-ops for their
//! receivers (on `standard`, about seven deliveries in ten), yet stay live because they may
//! change the receiver later. The search computes every one of them at every state. A delivery
//! that sends nothing and saves nothing is a pure function of what the step reads: the
//! receiver's node state and timers, the envelope, and the history (which the step's
//! observation reads); symmetry's collision check reads those too. So once such a delivery has
//! been found to change nothing, it changes nothing at any state that agrees on those four, and
//! depth-first search meets them again and again: a step changes one node, and every other
//! node's inbox is judged again in the child state.
//!
//! The memo is keyed by the four parts' 64-bit hashes (the same fingerprints the search
//! deduplicates states by), folded into one 64-bit digest. It is direct-mapped, bounded and
//! lock-free: each slot holds a digest, and a newer entry replaces an older one in its slot, so
//! it forgets, never grows; and it takes no lock, because every lookup taking one moved the
//! locks' cache lines between the workers' cores. A delivery is taken for a known no-op only if its digest is found: two
//! deliveries with equal 64-bit digests would be confused, the kind of risk the search's visited
//! set takes with its 64-bit fingerprints. It changes which no-op actions are offered, never a
//! successor state (`model/check/tests/successor_pruning.rs` compares every state's successors with
//! and without it). A cloned model starts with an empty memo, so a clone whose protocol is
//! changed (a mutant) never reads the original's verdicts.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use crate::counter::Counter;

/// The fingerprint of a delivery at a state: receiver's node state, receiver's timers,
/// history, envelope.
pub type DeliveryKey = [u64; 4];

/// Slots of the memo (8 bytes each: 8 MiB once used).
const SLOTS: usize = 1 << 20;

/// A bounded, lock-free set of deliveries known to change nothing.
pub struct NoopCache {
    slots: OnceLock<Box<[AtomicU64]>>,
    hits: Counter,
}

impl NoopCache {
    /// An empty memo (allocated on first use).
    pub fn new() -> NoopCache {
        NoopCache {
            slots: OnceLock::new(),
            hits: Counter::new(),
        }
    }

    /// The key's digest (never 0, which marks an empty slot) and its slot.
    fn place(key: &DeliveryKey) -> (u64, usize) {
        let digest = crate::hashed::stable_hash(key).max(1);
        (digest, (digest >> 40) as usize % SLOTS)
    }

    fn slots(&self) -> &[AtomicU64] {
        self.slots
            .get_or_init(|| (0..SLOTS).map(|_| AtomicU64::new(0)).collect())
    }

    /// Whether the delivery is known to change nothing.
    pub fn contains(&self, key: &DeliveryKey) -> bool {
        let (digest, slot) = Self::place(key);
        let hit = self.slots()[slot].load(Ordering::Relaxed) == digest;
        if hit {
            self.hits.incr();
        }
        hit
    }

    /// How many lookups found their delivery (for tests and measurements).
    pub fn hits(&self) -> u64 {
        self.hits.get()
    }

    /// Records that the delivery changes nothing.
    pub fn insert(&self, key: DeliveryKey) {
        let (digest, slot) = Self::place(&key);
        self.slots()[slot].store(digest, Ordering::Relaxed);
    }
}

memo_impls!(NoopCache);
