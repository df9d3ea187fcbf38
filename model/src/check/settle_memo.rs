//! A memo of the convergence continuation (`check/settle.rs`): for a cluster at the start of a
//! round, how many rounds it takes from there to its fixed point.
//!
//! The continuation is a deterministic function of the cluster at the start of a round — node
//! states, armed timers and the messages queued for delivery — and nothing else: not the round's
//! number, not the path that led there, not the history variables. Continuations of
//! neighbouring states meet: after a round, every message that was in flight has been delivered,
//! so states that differed only in which messages were still in flight, or in a timer that fired
//! in the first round, continue as one. The checker runs a continuation for every state it
//! explores (property 8 is checked everywhere), and the continuation was a quarter of a run's
//! time.
//!
//! So a continuation that reaches a fixed point with the nodes in agreement records, for every
//! round it went through, the fingerprint of the cluster at that round's start and the rounds
//! still needed from there. A later continuation that meets a recorded cluster at round `r`
//! knows its outcome: agreement after `r - 1 + remaining` rounds, which is within the bound or
//! not. Continuations that end in disagreement or without a fixed point are not recorded (they
//! are rare, and run again in full to be reported).
//!
//! The memo is direct-mapped and bounded, like the no-op memo (`check/noop_cache.rs`): an entry
//! is one word, 56 bits of the fingerprint and 8 bits of the rounds, and a newer entry replaces
//! an older one in its slot. It never changes a verdict but through a collision of 56-bit
//! fingerprints, the same kind of risk the search's visited set takes with 64 bits. A cloned
//! model starts with an empty memo, so a mutant never reads the original's verdicts.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use crate::check::counter::Counter;

/// Slots of the memo (8 bytes each: 32 MiB once used).
const SLOTS: usize = 1 << 22;

/// The low byte of an entry holds the rounds; the rest, the fingerprint's high bits.
const ROUNDS_MASK: u64 = 0xFF;

/// A bounded, lock-free memo of continuations' remaining rounds, by the fingerprint of the
/// cluster at a round's start.
pub struct SettleMemo {
    slots: OnceLock<Box<[AtomicU64]>>,
    hits: Counter,
    lookups: Counter,
}

impl SettleMemo {
    /// An empty memo (allocated on first use).
    pub fn new() -> SettleMemo {
        SettleMemo {
            slots: OnceLock::new(),
            hits: Counter::new(),
            lookups: Counter::new(),
        }
    }

    fn slots(&self) -> &[AtomicU64] {
        self.slots
            .get_or_init(|| (0..SLOTS).map(|_| AtomicU64::new(0)).collect())
    }

    fn place(fingerprint: u64) -> usize {
        (fingerprint.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40) as usize % SLOTS
    }

    /// The rounds from a cluster with this fingerprint, at a round's start, to its fixed point
    /// with the nodes in agreement, if recorded.
    pub fn remaining(&self, fingerprint: u64) -> Option<usize> {
        self.lookups.incr();
        let entry = self.slots()[Self::place(fingerprint)].load(Ordering::Relaxed);
        let rounds = (entry & ROUNDS_MASK) as usize;
        if rounds == 0 || entry & !ROUNDS_MASK != fingerprint & !ROUNDS_MASK {
            return None;
        }
        self.hits.incr();
        Some(rounds)
    }

    /// Records that a cluster with this fingerprint, at a round's start, reaches its fixed point
    /// with the nodes in agreement in `rounds` rounds (1 or more).
    pub fn record(&self, fingerprint: u64, rounds: usize) {
        let Ok(rounds) = u8::try_from(rounds) else {
            return;
        };
        if rounds == 0 {
            return;
        }
        let entry = (fingerprint & !ROUNDS_MASK) | u64::from(rounds);
        self.slots()[Self::place(fingerprint)].store(entry, Ordering::Relaxed);
    }

    /// Lookups that found their cluster, and lookups in all (for measurements).
    pub fn hits_and_lookups(&self) -> (u64, u64) {
        (self.hits.get(), self.lookups.get())
    }
}

memo_impls!(SettleMemo);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_and_finds_rounds_by_fingerprint() {
        let memo = SettleMemo::new();
        assert_eq!(memo.remaining(0xABCD_0000_0000_1234), None);
        memo.record(0xABCD_0000_0000_1234, 3);
        assert_eq!(memo.remaining(0xABCD_0000_0000_1234), Some(3));
        // A fingerprint that differs in its high bits is not found, even in the same slot.
        assert_eq!(memo.remaining(0xABCE_0000_0000_1234), None);
        // Zero rounds cannot be recorded (0 marks an empty slot).
        memo.record(0x1111_0000_0000_0000, 0);
        assert_eq!(memo.remaining(0x1111_0000_0000_0000), None);
        assert_eq!(memo.hits_and_lookups(), (1, 4));
        // A clone starts empty.
        assert_eq!(memo.clone().remaining(0xABCD_0000_0000_1234), None);
    }
}
