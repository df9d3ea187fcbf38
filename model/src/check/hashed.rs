//! Shared, immutable values that carry their own hash.
//!
//! The checker fingerprints every state it generates, and most of a state is unchanged from its
//! predecessor. [`Hashed`] computes a component's hash once, when the component is built, so a
//! fingerprint costs one word per component instead of a walk over every node's view and every
//! message in flight. The hash uses fixed keys, so it is the same in every process: paths that
//! `slotguard check` prints replay identically in `slotguard explore`.

use std::fmt;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::ops::Deref;
use std::sync::Arc;

/// A stable 64-bit hash of `value` (SipHash with fixed keys).
pub fn stable_hash<T: Hash + ?Sized>(value: &T) -> u64 {
    let mut h = DefaultHasher::new();
    value.hash(&mut h);
    h.finish()
}

/// An `Arc<T>` with its hash computed once.
pub struct Hashed<T> {
    value: Arc<T>,
    hash: u64,
}

impl<T: Hash> Hashed<T> {
    /// Wraps `value`, hashing it.
    pub fn new(value: T) -> Hashed<T> {
        let hash = stable_hash(&value);
        Hashed {
            value: Arc::new(value),
            hash,
        }
    }

    /// The precomputed hash.
    pub fn hash_value(&self) -> u64 {
        self.hash
    }
}

impl<T> Clone for Hashed<T> {
    fn clone(&self) -> Self {
        Hashed {
            value: Arc::clone(&self.value),
            hash: self.hash,
        }
    }
}

impl<T> Deref for Hashed<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

impl<T: PartialEq> PartialEq for Hashed<T> {
    fn eq(&self, other: &Self) -> bool {
        self.hash == other.hash
            && (Arc::ptr_eq(&self.value, &other.value) || self.value == other.value)
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
        self.value.fmt(f)
    }
}
