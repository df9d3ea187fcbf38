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
//! deduplicates states by). It is direct-mapped and bounded: a newer entry replaces an older
//! one in its slot, so it forgets, never grows. It changes which no-op actions are offered, never
//! a successor state (`model/tests/noop_cache.rs` compares every state's successors with and
//! without it). A cloned model starts with an empty memo, so a clone whose protocol is changed
//! (a mutant) never reads the original's verdicts.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// The fingerprint of a delivery at a state: receiver's node state, receiver's timers,
/// history, envelope.
pub type DeliveryKey = [u64; 4];

const SHARDS: usize = 16;
const SLOTS_PER_SHARD: usize = 1 << 14;

/// A bounded, thread-safe set of deliveries known to change nothing.
pub struct NoopCache {
    shards: Vec<Mutex<Vec<Option<DeliveryKey>>>>,
    hits: AtomicU64,
}

impl NoopCache {
    /// An empty memo (16 × 16 Ki slots of 40 bytes: 10 MiB once filled).
    pub fn new() -> NoopCache {
        NoopCache {
            shards: (0..SHARDS).map(|_| Mutex::new(Vec::new())).collect(),
            hits: AtomicU64::new(0),
        }
    }

    fn place(key: &DeliveryKey) -> (usize, usize) {
        let mixed = key[0]
            .rotate_left(7)
            .wrapping_add(key[1].rotate_left(19))
            .wrapping_add(key[2].rotate_left(37))
            .wrapping_add(key[3])
            .wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let shard = (mixed >> 60) as usize % SHARDS;
        let slot = (mixed as usize) % SLOTS_PER_SHARD;
        (shard, slot)
    }

    /// Whether the delivery is known to change nothing.
    pub fn contains(&self, key: &DeliveryKey) -> bool {
        let (shard, slot) = Self::place(key);
        // A poisoned lock only means another worker panicked; the memo is then just not used.
        match self.shards[shard].lock() {
            Ok(slots) => {
                let hit = slots.get(slot).is_some_and(|k| k.as_ref() == Some(key));
                if hit {
                    self.hits.fetch_add(1, Ordering::Relaxed);
                }
                hit
            }
            Err(_) => false,
        }
    }

    /// How many lookups found their delivery (for tests and measurements).
    pub fn hits(&self) -> u64 {
        self.hits.load(Ordering::Relaxed)
    }

    /// Records that the delivery changes nothing.
    pub fn insert(&self, key: DeliveryKey) {
        let (shard, slot) = Self::place(&key);
        if let Ok(mut slots) = self.shards[shard].lock() {
            if slots.is_empty() {
                slots.resize(SLOTS_PER_SHARD, None);
            }
            slots[slot] = Some(key);
        }
    }
}

impl Default for NoopCache {
    fn default() -> Self {
        NoopCache::new()
    }
}

impl Clone for NoopCache {
    /// A fresh, empty memo: a clone may run a different protocol variant.
    fn clone(&self) -> Self {
        NoopCache::new()
    }
}

impl fmt::Debug for NoopCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NoopCache")
    }
}
