//! Shared, immutable values that carry their own hash.
//!
//! The checker fingerprints every state it generates, and most of a state is unchanged from its
//! predecessor. [`Hashed`] computes a component's hash once, when the component is built, so a
//! fingerprint costs one word per component instead of a walk over every node's view and every
//! message in flight. The hash uses fixed keys, so it is the same in every process: paths that
//! `slotguard check` prints replay identically in `slotguard explore`.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

/// The seeds of [`stable_hash`] (any fixed numbers).
const SEEDS: [u64; 4] = [
    0x736c_6f74_6775_6172,
    0x9e37_79b9_7f4a_7c15,
    0x2545_f491_4f6c_dd1d,
    0x0123_4567_89ab_cdef,
];

/// The hasher of [`stable_hash`], for maps keyed by fingerprints' parts.
pub(crate) fn stable_hasher() -> ahash::RandomState {
    ahash::RandomState::with_seeds(SEEDS[0], SEEDS[1], SEEDS[2], SEEDS[3])
}

/// A stable 64-bit hash of `value`: aHash with fixed seeds, as stateright fingerprints states.
/// It is the same in every run of one build (aHash's output may change with its version, which
/// Cargo.lock pins). Not SipHash: hashing is a large share of a symmetric run, and SipHash's
/// resistance to chosen inputs buys nothing here.
pub fn stable_hash<T: Hash + ?Sized>(value: &T) -> u64 {
    stable_hasher().hash_one(value)
}

/// A value's hashes under the renamings of a symmetry group (check/symmetry.rs), each
/// computed on first use and shared by every state that shares the value: a symmetric run
/// fingerprints a state's representative from these instead of renaming and rehashing it.
#[derive(Default)]
pub(crate) struct RenamedHashes(OnceLock<Box<[AtomicU64]>>);

/// Marks a hash not computed yet. A renamed value whose hash is this number is rehashed on
/// every use, which costs time, never correctness.
const UNKNOWN: u64 = 0;

impl RenamedHashes {
    /// The hash under renaming `index` of a group of `len` renamings; `hash` computes it.
    pub(crate) fn get(&self, index: usize, len: usize, hash: impl FnOnce() -> u64) -> u64 {
        let table = self
            .0
            .get_or_init(|| (0..len).map(|_| AtomicU64::new(UNKNOWN)).collect());
        let Some(cell) = table.get(index) else {
            return hash();
        };
        match cell.load(Ordering::Relaxed) {
            UNKNOWN => {
                let h = hash();
                cell.store(h, Ordering::Relaxed);
                h
            }
            h => h,
        }
    }
}

struct Inner<T> {
    value: T,
    renamed: RenamedHashes,
}

/// An `Arc<T>` with its hash computed once.
pub struct Hashed<T> {
    inner: Arc<Inner<T>>,
    hash: u64,
}

impl<T: Hash> Hashed<T> {
    /// Wraps `value`, hashing it.
    pub fn new(value: T) -> Hashed<T> {
        let hash = stable_hash(&value);
        Hashed {
            inner: Arc::new(Inner {
                value,
                renamed: RenamedHashes::default(),
            }),
            hash,
        }
    }
}

impl<T> Hashed<T> {
    /// Wraps `value` whose hash the caller computed with [`stable_hash`].
    pub(crate) fn with_hash(value: T, hash: u64) -> Hashed<T> {
        Hashed {
            inner: Arc::new(Inner {
                value,
                renamed: RenamedHashes::default(),
            }),
            hash,
        }
    }

    /// The precomputed hash.
    pub fn hash_value(&self) -> u64 {
        self.hash
    }

    /// The value's hashes under renamings (check/symmetry.rs).
    pub(crate) fn renamed(&self) -> &RenamedHashes {
        &self.inner.renamed
    }

    /// This value, carrying `hash` instead of its own: for a state that only stands for a
    /// fingerprint (check/symmetry.rs, `representative_fingerprint`). Its equality is then
    /// meaningless; only its hash is used.
    pub(crate) fn standing_for(&self, hash: u64) -> Hashed<T> {
        Hashed {
            inner: Arc::clone(&self.inner),
            hash,
        }
    }
}

impl<T> Clone for Hashed<T> {
    fn clone(&self) -> Self {
        Hashed {
            inner: Arc::clone(&self.inner),
            hash: self.hash,
        }
    }
}

impl<T> Deref for Hashed<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.inner.value
    }
}

impl<T: PartialEq> PartialEq for Hashed<T> {
    fn eq(&self, other: &Self) -> bool {
        self.hash == other.hash
            && (Arc::ptr_eq(&self.inner, &other.inner) || self.inner.value == other.inner.value)
    }
}

impl<T: Eq> Eq for Hashed<T> {}

impl<T> Hash for Hashed<T> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.hash);
    }
}

impl<T: fmt::Debug> fmt::Debug for Hashed<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.value.fmt(f)
    }
}
