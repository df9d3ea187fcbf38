//! One node's keys: string values with optional expiry times, indexed by hash slot.
//!
//! Sans-IO like the rest of the node core: the clock is a parameter (`now`, milliseconds since
//! the Unix epoch, the unit Redis keeps expiry times in), so tests drive time by hand and a
//! replica can apply its master's absolute expiry times unchanged.
//!
//! Expiry works as in Redis: a key past its expiry time is never returned (every read checks,
//! and removes the key it finds expired: lazy expiry), and [`Keyspace::remove_expired`] reaps
//! keys nobody reads (active expiry). Redis samples keys at random for the latter; here expiry
//! times are kept in order, so each call removes exactly the keys that are due, oldest first,
//! up to a budget that bounds the pause.
//!
//! The slot index serves `CLUSTER COUNTKEYSINSLOT` and `GETKEYSINSLOT`, and a cursor of `SCAN`
//! that survives writes between calls (a slot at a time). A key's bytes are shared, not copied,
//! between the map ([`Map`]) and the two indexes.

use std::collections::hash_map::RandomState;
use std::collections::BTreeSet;

use bytes::Bytes;

use super::keyslot::{key_slot, SLOT_COUNT};

/// Bytes counted per key beyond its key and value bytes: the map entry and the index entries.
/// An estimate, as Redis's `used_memory` is for its own structures; it makes `maxmemory` count
/// a million empty strings as more than nothing.
pub const ENTRY_OVERHEAD: usize = 96;

/// The keys' map. A hash map that doubles by moving every entry at once stops the node for
/// as long as that takes (over a second at two million keys, long enough for its peers to time
/// it out and fail it over), so the map grows as Redis's dict does: the old table is moved into
/// the new one a few entries per insert. SipHash with a per-process random key keeps clients
/// from choosing keys that collide.
type Map = griddle::HashMap<Bytes, Entry, RandomState>;

/// A value and when it expires.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Entry {
    value: Bytes,
    expires_at: Option<u64>,
}

/// When a `SET` applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SetCondition {
    /// Always (plain `SET`).
    Always,
    /// Only if the key does not exist (`NX`).
    IfAbsent,
    /// Only if the key exists (`XX`).
    IfPresent,
}

/// What a `SET` does to the key's expiry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SetExpiry {
    /// The key no longer expires (plain `SET`).
    Clear,
    /// The key expires at this time (`EX`, `PX`, `EXAT`, `PXAT`, made absolute by the caller).
    At(u64),
    /// The key keeps the expiry it had (`KEEPTTL`).
    Keep,
}

/// The time to live of a key (`TTL`, `PTTL`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ttl {
    /// No such key (Redis: -2).
    Missing,
    /// The key does not expire (Redis: -1).
    Persistent,
    /// Milliseconds left.
    Millis(u64),
}

/// Why `INCRBY` and its kin refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum IncrError {
    /// The value is not the decimal form of a 64-bit integer.
    #[error("value is not an integer or out of range")]
    NotInteger,
    /// The result would not fit in 64 bits.
    #[error("increment or decrement would overflow")]
    Overflow,
}

/// The keys of one node.
#[derive(Debug, Default)]
pub struct Keyspace {
    entries: Map,
    by_expiry: BTreeSet<(u64, Bytes)>,
    by_slot: BTreeSet<(u16, Bytes)>,
    slot_counts: Vec<u32>,
    used: usize,
}

impl Keyspace {
    /// An empty keyspace.
    pub fn new() -> Keyspace {
        Keyspace {
            slot_counts: vec![0; usize::from(SLOT_COUNT)],
            ..Keyspace::default()
        }
    }

    /// Keys stored, expired ones not yet reaped included (`DBSIZE`, as Redis counts).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Keys stored with an expiry time (`INFO keyspace`'s `expires`).
    pub fn expiring(&self) -> usize {
        self.by_expiry.len()
    }

    /// Whether no key is stored.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Estimated bytes the keys take (`used_memory` for `maxmemory`).
    pub fn used_memory(&self) -> usize {
        self.used
    }

    /// The value of `key`, unless it is missing or expired.
    pub fn get(&mut self, key: &[u8], now: u64) -> Option<&Bytes> {
        self.live(key, now).map(|e| &e.value)
    }

    /// Whether `key` exists and has not expired.
    pub fn contains(&mut self, key: &[u8], now: u64) -> bool {
        self.live(key, now).is_some()
    }

    /// `SET`: stores `value` under `key` if `condition` allows. Returns whether it did, and the
    /// value the key had (for `SET ... GET`).
    pub fn set(
        &mut self,
        key: Bytes,
        value: Bytes,
        condition: SetCondition,
        expiry: SetExpiry,
        now: u64,
    ) -> (bool, Option<Bytes>) {
        let old = self.live(&key, now).cloned();
        let applies = match condition {
            SetCondition::Always => true,
            SetCondition::IfAbsent => old.is_none(),
            SetCondition::IfPresent => old.is_some(),
        };
        if !applies {
            return (false, old.map(|e| e.value));
        }
        let expires_at = match expiry {
            SetExpiry::Clear => None,
            SetExpiry::At(at) => Some(at),
            SetExpiry::Keep => old.as_ref().and_then(|e| e.expires_at),
        };
        self.insert(key, Entry { value, expires_at });
        (true, old.map(|e| e.value))
    }

    /// Removes `key`; returns its value if it existed and had not expired (`DEL`, `GETDEL`).
    pub fn remove(&mut self, key: &[u8], now: u64) -> Option<Bytes> {
        self.live(key, now)?;
        self.take(key).map(|(_, e)| e.value)
    }

    /// Sets or clears the expiry of an existing key (`PEXPIREAT`, `PERSIST`); a time not after
    /// `now` removes the key, as Redis does. Returns whether the key existed.
    pub fn set_expiry(&mut self, key: &[u8], at: Option<u64>, now: u64) -> bool {
        self.live(key, now);
        let Some((key, entry)) = self.take(key) else {
            return false;
        };
        if at.is_none_or(|at| at > now) {
            self.insert(
                key,
                Entry {
                    expires_at: at,
                    ..entry
                },
            );
        }
        true
    }

    /// The time to live of `key` (`PTTL`).
    pub fn ttl(&mut self, key: &[u8], now: u64) -> Ttl {
        match self.live(key, now) {
            None => Ttl::Missing,
            Some(Entry {
                expires_at: None, ..
            }) => Ttl::Persistent,
            Some(Entry {
                expires_at: Some(at),
                ..
            }) => Ttl::Millis(at - now),
        }
    }

    /// `INCRBY`: adds `delta` to the integer in `key` (0 if missing), keeping its expiry.
    pub fn incr_by(&mut self, key: Bytes, delta: i64, now: u64) -> Result<i64, IncrError> {
        let old = self.live(&key, now).cloned();
        let current = match &old {
            None => 0,
            Some(entry) => parse_i64(&entry.value).ok_or(IncrError::NotInteger)?,
        };
        let new = current.checked_add(delta).ok_or(IncrError::Overflow)?;
        let expires_at = old.and_then(|e| e.expires_at);
        let value = Bytes::from(new.to_string());
        self.insert(key, Entry { value, expires_at });
        Ok(new)
    }

    /// `APPEND`: appends `suffix` to the value of `key` (creating it); returns the new length.
    pub fn append(&mut self, key: Bytes, suffix: &[u8], now: u64) -> usize {
        let old = self.live(&key, now).cloned();
        let (mut value, expires_at) = match old {
            None => (Vec::new(), None),
            Some(entry) => (entry.value.to_vec(), entry.expires_at),
        };
        value.extend_from_slice(suffix);
        let len = value.len();
        self.insert(
            key,
            Entry {
                value: Bytes::from(value),
                expires_at,
            },
        );
        len
    }

    /// Live keys of `slot`, at most `count`, in byte order (`CLUSTER GETKEYSINSLOT`).
    pub fn keys_in_slot(&self, slot: u16, count: usize, now: u64) -> Vec<Bytes> {
        self.by_slot
            .range((slot, Bytes::new())..)
            .take_while(|(s, _)| *s == slot)
            .filter(|(_, key)| self.entries.get(key).is_some_and(|e| !expired(e, now)))
            .take(count)
            .map(|(_, key)| key.clone())
            .collect()
    }

    /// Keys stored in `slot`, expired ones not yet reaped included (`COUNTKEYSINSLOT`).
    pub fn count_in_slot(&self, slot: u16) -> usize {
        self.slot_counts
            .get(usize::from(slot))
            .map_or(0, |&n| n as usize)
    }

    /// Live keys of the slots from `slot` on, a whole slot at a time, until at least `count`
    /// keys are collected; with the next slot to scan, or `None` after the last (`SCAN`: a key
    /// that exists from the first call to the last is returned once).
    pub fn scan(&self, mut slot: u16, count: usize, now: u64) -> (Vec<Bytes>, Option<u16>) {
        let mut keys = Vec::new();
        while slot < SLOT_COUNT && keys.len() < count.max(1) {
            keys.extend(self.keys_in_slot(slot, usize::MAX, now));
            slot += 1;
        }
        let next = self
            .by_slot
            .range((slot, Bytes::new())..)
            .next()
            .map(|(s, _)| *s);
        (keys, next)
    }

    /// The value and expiry time of `key`, unless it is missing or expired.
    pub fn entry(&mut self, key: &[u8], now: u64) -> Option<(Bytes, Option<u64>)> {
        self.live(key, now).map(|e| (e.value.clone(), e.expires_at))
    }

    /// Every live key with its value and expiry time (a replica's full copy).
    pub fn entries(&self, now: u64) -> Vec<(Bytes, Bytes, Option<u64>)> {
        self.entries
            .iter()
            .filter(|(_, e)| !expired(e, now))
            .map(|(k, e)| (k.clone(), e.value.clone(), e.expires_at))
            .collect()
    }

    /// Stores `value` under `key` as given: a change a master streamed (`SetCondition` and
    /// options were applied there).
    pub fn put(&mut self, key: Bytes, value: Bytes, expires_at: Option<u64>) {
        self.insert(key, Entry { value, expires_at });
    }

    /// Removes `key`, expired or not: a change a master streamed.
    pub fn delete(&mut self, key: &[u8]) {
        self.take(key);
    }

    /// Removes every key (`FLUSHALL`).
    pub fn clear(&mut self) {
        *self = Keyspace::new();
    }

    /// Active expiry: removes keys whose time has come, oldest first, at most `budget` of them;
    /// returns how many it removed.
    pub fn remove_expired(&mut self, now: u64, budget: usize) -> usize {
        let due: Vec<Bytes> = self
            .by_expiry
            .iter()
            .take_while(|(at, _)| *at <= now)
            .take(budget)
            .map(|(_, key)| key.clone())
            .collect();
        for key in &due {
            self.take(key);
        }
        due.len()
    }

    /// The entry of `key` unless missing; an expired entry is removed and reported missing.
    fn live(&mut self, key: &[u8], now: u64) -> Option<&Entry> {
        if self.entries.get(key).is_some_and(|e| expired(e, now)) {
            self.take(key);
        }
        self.entries.get(key)
    }

    fn insert(&mut self, key: Bytes, entry: Entry) {
        self.take(&key);
        let slot = key_slot(&key);
        self.used += footprint(&key, &entry);
        if let Some(at) = entry.expires_at {
            self.by_expiry.insert((at, key.clone()));
        }
        self.by_slot.insert((slot, key.clone()));
        self.slot_counts[usize::from(slot)] += 1;
        self.entries.insert(key, entry);
    }

    fn take(&mut self, key: &[u8]) -> Option<(Bytes, Entry)> {
        let (key, entry) = self.entries.remove_entry(key)?;
        let slot = key_slot(&key);
        self.used -= footprint(&key, &entry);
        if let Some(at) = entry.expires_at {
            self.by_expiry.remove(&(at, key.clone()));
        }
        self.by_slot.remove(&(slot, key.clone()));
        self.slot_counts[usize::from(slot)] -= 1;
        Some((key, entry))
    }
}

fn expired(entry: &Entry, now: u64) -> bool {
    entry.expires_at.is_some_and(|at| at <= now)
}

fn footprint(key: &[u8], entry: &Entry) -> usize {
    key.len() + entry.value.len() + ENTRY_OVERHEAD
}

/// A 64-bit integer in Redis's strict decimal form (`string2ll`): an optional `-`, no `+`, no
/// leading zeros or spaces, at most 20 bytes.
pub fn parse_i64(bytes: &[u8]) -> Option<i64> {
    let digits = bytes.strip_prefix(b"-").unwrap_or(bytes);
    let canonical = match digits {
        [b'0'] => bytes.len() == 1,
        [b'1'..=b'9', rest @ ..] => rest.iter().all(u8::is_ascii_digit),
        _ => false,
    };
    if !canonical || bytes.len() > 20 {
        return None;
    }
    std::str::from_utf8(bytes).ok()?.parse().ok()
}

#[cfg(test)]
#[path = "keyspace_tests.rs"]
mod tests;
