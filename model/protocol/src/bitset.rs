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

/// A set of hash slots (`0..slot_count`).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default)]
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
    pub fn ranges(&self) -> Vec<(u16, u16)> {
        let mut out: Vec<(u16, u16)> = Vec::new();
        for slot in self.iter() {
            match out.last_mut() {
                Some((_, end)) if *end + 1 == slot => *end = slot,
                _ => out.push((slot, slot)),
            }
        }
        out
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
