//! Fixed-universe bitsets for hash slots and for sets of nodes.
//!
//! The same types serve 3 slots in the checker and 16384 slots in a real node (every header carries
//! its shard's slot bitmap, specs/background.md §R1.3). Small universes stay inline (no heap
//! allocation when the checker clones a state); large ones spill to the heap. Ordering and hashing
//! are derived from the words, so states that contain them are deterministic and hashable.

use std::fmt;

use serde::{Deserialize, Serialize};
use smallvec::SmallVec;

use crate::ids::NodeId;

/// Words of a bitset, without trailing zero words (the canonical form that equality, ordering
/// and hashing rely on). One inline word covers the checker's universes.
type Words = SmallVec<[u64; 1]>;

/// A set of hash slots (`0..slot_count`). It serializes as its ranges (inclusive `(start,
/// end)` pairs): a shard's slots are a few runs, so a header's slots take a few bytes on the
/// wire instead of a bitmap of up to 2 KiB (specs/protocol.md §10).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct SlotSet {
    words: Words,
}

/// A set of nodes, by [`NodeId`].
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default)]
pub struct NodeSet {
    words: Words,
}

macro_rules! bitset_ops {
    ($ty:ident, $item:ty, $to:expr, $from:expr) => {
        impl $ty {
            /// An empty set.
            #[inline]
            pub fn new() -> Self {
                Self::default()
            }

            /// Drops trailing zero words, so equal sets have equal representations.
            fn trim(&mut self) {
                while self.words.last() == Some(&0) {
                    self.words.pop();
                }
            }

            /// Adds `item`; returns whether it was new. Grows if needed.
            #[inline]
            pub fn insert(&mut self, item: $item) -> bool {
                let i: usize = $to(item);
                let (w, b) = (i / 64, i % 64);
                if w >= self.words.len() {
                    self.words.resize(w + 1, 0);
                }
                let was = self.words[w] & (1 << b) != 0;
                self.words[w] |= 1 << b;
                !was
            }

            /// Removes `item`; returns whether it was present.
            #[inline]
            pub fn remove(&mut self, item: $item) -> bool {
                let i: usize = $to(item);
                let (w, b) = (i / 64, i % 64);
                match self.words.get_mut(w) {
                    Some(word) => {
                        let was = *word & (1 << b) != 0;
                        *word &= !(1 << b);
                        self.trim();
                        was
                    }
                    None => false,
                }
            }

            /// Whether `item` is a member.
            #[inline]
            pub fn contains(&self, item: $item) -> bool {
                let i: usize = $to(item);
                self.words
                    .get(i / 64)
                    .is_some_and(|word| word & (1 << (i % 64)) != 0)
            }

            /// Number of members.
            #[inline]
            pub fn len(&self) -> usize {
                self.words.iter().map(|w| w.count_ones() as usize).sum()
            }

            /// Whether the set has no members.
            #[inline]
            pub fn is_empty(&self) -> bool {
                self.words.iter().all(|w| *w == 0)
            }

            /// Removes every member.
            #[inline]
            pub fn clear(&mut self) {
                self.words.clear();
            }

            /// Members in increasing order.
            #[inline]
            pub fn iter(&self) -> impl Iterator<Item = $item> + '_ {
                self.words.iter().enumerate().flat_map(|(wi, &word)| {
                    let mut word = word;
                    std::iter::from_fn(move || {
                        if word == 0 {
                            return None;
                        }
                        let b = word.trailing_zeros() as usize;
                        word &= word - 1;
                        Some($from(wi * 64 + b))
                    })
                })
            }

            /// Whether the two sets share a member.
            #[inline]
            pub fn intersects(&self, other: &Self) -> bool {
                self.words
                    .iter()
                    .zip(other.words.iter())
                    .any(|(a, b)| a & b != 0)
            }

            /// Number of members shared with `other`.
            #[inline]
            pub fn intersection_len(&self, other: &Self) -> usize {
                self.words
                    .iter()
                    .zip(other.words.iter())
                    .map(|(a, b)| (a & b).count_ones() as usize)
                    .sum()
            }
        }

        impl FromIterator<$item> for $ty {
            fn from_iter<I: IntoIterator<Item = $item>>(iter: I) -> Self {
                let mut set = Self::default();
                for item in iter {
                    set.insert(item);
                }
                set
            }
        }
    };
}

bitset_ops!(SlotSet, u16, usize::from, |i: usize| i as u16);
bitset_ops!(NodeSet, NodeId, NodeId::index, |i: usize| NodeId(i as u16));

impl SlotSet {
    /// Contiguous runs of slots as inclusive `(start, end)` pairs, as `CLUSTER NODES` prints them.
    /// Whole words of members or non-members are skipped at once.
    pub fn ranges(&self) -> Vec<(u16, u16)> {
        let mut out: Vec<(u16, u16)> = Vec::new();
        let mut open: Option<usize> = None;
        for (wi, &word) in self.words.iter().enumerate() {
            let base = wi * 64;
            match word {
                0 => close_run(&mut open, base, &mut out),
                u64::MAX => {
                    open.get_or_insert(base);
                }
                _ => {
                    for b in 0..64 {
                        if word & (1 << b) != 0 {
                            open.get_or_insert(base + b);
                        } else {
                            close_run(&mut open, base + b, &mut out);
                        }
                    }
                }
            }
        }
        close_run(&mut open, self.words.len() * 64, &mut out);
        out
    }

    /// Adds every slot of `start..=end`, a word at a time.
    pub fn insert_range(&mut self, start: u16, end: u16) {
        if start > end {
            return;
        }
        let (first, last) = (usize::from(start), usize::from(end));
        if last / 64 >= self.words.len() {
            self.words.resize(last / 64 + 1, 0);
        }
        for wi in first / 64..=last / 64 {
            let lo = if wi == first / 64 { first % 64 } else { 0 };
            let hi = if wi == last / 64 { last % 64 } else { 63 };
            let mask = (u64::MAX >> (63 - hi)) & (u64::MAX << lo);
            self.words[wi] |= mask;
        }
    }

    /// The set whose words (64 slots each, slot 0 in the lowest bit of the first) are `words`.
    pub fn from_words(words: impl IntoIterator<Item = u64>) -> SlotSet {
        let mut set = SlotSet {
            words: words.into_iter().collect(),
        };
        set.trim();
        set
    }

    /// The set's words: 64 slots each, slot 0 in the lowest bit of the first, without trailing
    /// zero words (what the cluster's identity digest is computed over, node/src/wire.rs).
    pub fn words(&self) -> &[u64] {
        &self.words
    }

    /// The largest member.
    pub fn last(&self) -> Option<u16> {
        let top = self.words.last()?;
        Some(((self.words.len() - 1) * 64 + 63 - top.leading_zeros() as usize) as u16)
    }
}

/// Ends the run that started at `open`, if any, just before `at`.
fn close_run(open: &mut Option<usize>, at: usize, out: &mut Vec<(u16, u16)>) {
    if let Some(start) = open.take() {
        out.push((start as u16, (at - 1) as u16));
    }
}

impl Serialize for SlotSet {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.ranges().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for SlotSet {
    /// Ranges in any order, overlapping or not; a range whose start is past its end is refused.
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let ranges = Vec::<(u16, u16)>::deserialize(deserializer)?;
        let mut set = SlotSet::default();
        for (start, end) in ranges {
            if start > end {
                return Err(serde::de::Error::custom("slot range ends before it starts"));
            }
            set.insert_range(start, end);
        }
        set.trim();
        Ok(set)
    }
}

impl fmt::Debug for SlotSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for SlotSet {
    /// Slots as ranges, e.g. `{0-5460,10923}`: readable for 16384-slot sets too.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{")?;
        for (i, (start, end)) in self.ranges().into_iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            if start == end {
                write!(f, "{start}")?;
            } else {
                write!(f, "{start}-{end}")?;
            }
        }
        f.write_str("}")
    }
}

impl fmt::Debug for NodeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter().map(|n| n.0)).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_remove_iterate_across_words() {
        let mut s = SlotSet::new();
        assert!(s.insert(0));
        assert!(s.insert(63));
        assert!(s.insert(64));
        assert!(s.insert(16383));
        assert!(!s.insert(64));
        assert_eq!(s.iter().collect::<Vec<_>>(), vec![0, 63, 64, 16383]);
        assert_eq!(s.len(), 4);
        assert!(s.remove(63));
        assert!(!s.remove(63));
        assert!(!s.contains(63));
        assert_eq!(s.ranges(), vec![(0, 0), (64, 64), (16383, 16383)]);
        assert_eq!(s.to_string(), "{0,64,16383}");
    }

    #[test]
    fn ranges_round_trip_through_serde_and_match_a_slot_by_slot_scan() {
        let sets: Vec<SlotSet> = vec![
            SlotSet::new(),
            (0..5461).collect(),
            (10923..16384).collect(),
            [0, 63, 64, 127, 128, 16383].into_iter().collect(),
            (60..70).chain(100..300).chain(16380..16384).collect(),
            (0..16384).filter(|s| s % 3 != 0).collect(),
        ];
        for set in sets {
            let mut naive: Vec<(u16, u16)> = Vec::new();
            for slot in set.iter() {
                match naive.last_mut() {
                    Some((_, end)) if *end + 1 == slot => *end = slot,
                    _ => naive.push((slot, slot)),
                }
            }
            assert_eq!(set.ranges(), naive);
            let bytes = postcard::to_allocvec(&set).expect("encodes");
            assert_eq!(
                postcard::from_bytes::<SlotSet>(&bytes).ok(),
                Some(set.clone())
            );
            assert_eq!(set.last(), set.iter().last());
        }
        let contiguous: SlotSet = (10923..16384).collect();
        assert!(postcard::to_allocvec(&contiguous).expect("encodes").len() <= 8);
        let backwards = postcard::to_allocvec(&vec![(5u16, 4u16)]).expect("encodes");
        assert!(postcard::from_bytes::<SlotSet>(&backwards).is_err());
    }

    #[test]
    fn ranges_merge_contiguous_runs() {
        let s: SlotSet = (0..5461).chain(10923..10925).collect();
        assert_eq!(s.to_string(), "{0-5460,10923-10924}");
    }

    #[test]
    fn representation_is_canonical() {
        let mut a = NodeSet::new();
        a.insert(NodeId(200));
        a.remove(NodeId(200));
        assert_eq!(a, NodeSet::new());
        let mut b = SlotSet::new();
        b.insert(5);
        b.insert(9000);
        b.remove(9000);
        assert_eq!(b, [5].into_iter().collect());
    }

    #[test]
    fn intersections() {
        let a: NodeSet = [NodeId(1), NodeId(2), NodeId(70)].into_iter().collect();
        let b: NodeSet = [NodeId(2), NodeId(70)].into_iter().collect();
        assert!(a.intersects(&b));
        assert_eq!(a.intersection_len(&b), 2);
    }
}
