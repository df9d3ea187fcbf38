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
//! Every continuation runs its first round, though, and that was most of what remained: every
//! message in flight delivered, every node's timers fired. A round's steps at one node read and
//! write that node only (what they send waits for the next round), so the first round is, node
//! by node, a function of the node's state, its timers and its inbox, all three still the
//! checked state's, whose hashes are known. From one state to the next, most nodes and their
//! inboxes are unchanged, so the memo also keeps what each node did in a first round (its state
//! and timers after it, what it sent, whether it changed), by the fingerprint of those three,
//! and almost every lookup finds one (specs/protocol.md §8.9). This part is a
//! map of at most 65,536 entries, emptied when full.
//!
//! The memo of rounds is direct-mapped and bounded, like the no-op memo (`check/noop_cache.rs`): an entry
//! is one word, 56 bits of the fingerprint and 8 bits of the rounds, and a newer entry replaces
//! an older one in its slot. It never changes a verdict but through a collision of 56-bit
//! fingerprints, the same kind of risk the search's visited set takes with 64 bits. A cloned
//! model starts with an empty memo, so a mutant never reads the original's verdicts.

use std::collections::BTreeSet;
use std::hash::BuildHasherDefault;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use dashmap::DashMap;
use nohash_hasher::NoHashHasher;

use crate::counter::Counter;
use crate::model::Envelope;
use slotguard_protocol::state::NodeState;
use slotguard_protocol::timer::Timer;

/// Slots of the memo (8 bytes each: 32 MiB once used).
const SLOTS: usize = 1 << 22;

/// The low byte of an entry holds the rounds; the rest, the fingerprint's high bits.
const ROUNDS_MASK: u64 = 0xFF;

/// Node rounds kept before the memo of them starts afresh (each is about a kilobyte).
const NODE_ROUNDS: u64 = 1 << 16;

/// What one node did in a continuation's first round (`check/settle.rs`,
/// `first_round_by_node`): its state and timers after the round, whether they are still the
/// origin's, what it sent, and whether its state changed.
pub(crate) struct NodeRound {
    pub(crate) node: NodeState,
    pub(crate) timers: BTreeSet<Timer>,
    /// The hashes of `node` and `timers` (`stable_hash`).
    pub(crate) node_hash: u64,
    pub(crate) timers_hash: u64,
    pub(crate) node_as_origin: bool,
    pub(crate) timers_as_origin: bool,
    /// What it sent, sorted, without repeats.
    pub(crate) sent: Vec<Envelope>,
    /// The sum of the hashes of `sent`.
    pub(crate) sent_hash: u64,
    pub(crate) changed: bool,
}

/// A bounded, lock-free memo of continuations' remaining rounds, by the fingerprint of the
/// cluster at a round's start; and a bounded memo of nodes' first rounds, by the fingerprint of
/// the node's state, timers and inbox.
pub struct SettleMemo {
    slots: OnceLock<Box<[AtomicU64]>>,
    hits: Counter,
    lookups: Counter,
    node_rounds: DashMap<u64, Arc<NodeRound>, BuildHasherDefault<NoHashHasher<u64>>>,
    node_rounds_recorded: Counter,
    node_round_hits: Counter,
}

impl SettleMemo {
    /// An empty memo (allocated on first use).
    pub fn new() -> SettleMemo {
        SettleMemo {
            slots: OnceLock::new(),
            hits: Counter::new(),
            lookups: Counter::new(),
            node_rounds: DashMap::default(),
            node_rounds_recorded: Counter::new(),
            node_round_hits: Counter::new(),
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

    /// What a node whose state, timers and inbox have this fingerprint does in a first round,
    /// if recorded.
    pub(crate) fn node_round(&self, fingerprint: u64) -> Option<Arc<NodeRound>> {
        let found = self.node_rounds.get(&fingerprint).map(|r| Arc::clone(&r));
        if found.is_some() {
            self.node_round_hits.incr();
        }
        found
    }

    /// Records what a node does in a first round; starts afresh past [`NODE_ROUNDS`] records.
    pub(crate) fn record_node_round(&self, fingerprint: u64, round: NodeRound) {
        self.node_rounds_recorded.incr();
        if self.node_rounds.len() as u64 >= NODE_ROUNDS {
            self.node_rounds.clear();
        }
        self.node_rounds.insert(fingerprint, Arc::new(round));
    }

    /// Node rounds found in the memo and recorded (for tests and measurements).
    pub fn node_rounds_found_and_recorded(&self) -> (u64, u64) {
        (self.node_round_hits.get(), self.node_rounds_recorded.get())
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
