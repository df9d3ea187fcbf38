//! One node's keys: string values with optional expiry times, kept by hash slot.
//!
//! Sans-IO like the rest of the node core: the clock is a parameter (`now`, milliseconds since
//! the Unix epoch, the unit Redis keeps expiry times in), so tests drive time by hand and a
//! replica can apply its master's absolute expiry times unchanged.
//!
//! Expiry works as in Redis: a key past its expiry time is never returned (every read checks,
//! and removes the key it finds expired: lazy expiry), and [`Keyspace::remove_expired`] reaps
//! keys nobody reads (active expiry). Redis samples keys at random for the latter; here the keys
//! that have an expiry time, and only those, are also kept in order of it, so each call removes
//! exactly the keys that are due, oldest first, up to a budget that bounds the pause.
//!
//! Why one hash table per slot (as Valkey keeps one dict per slot): `CLUSTER COUNTKEYSINSLOT`
//! is a table's length, and `GETKEYSINSLOT` and `SCAN` walk one slot's table, so no index of the
//! keys by slot is kept beside the tables. `SCAN`'s cursor is a slot and each call returns whole
//! slots, so the cursor survives writes between calls: a key that exists from the first call to
//! the last is returned once.
//!
//! Why a key is one allocation ([`Record`]: a small header, the expiry time if any, the key,
//! the value): for the small keys and values most workloads store, separate allocations and the
//! handles pointing at them would cost more than the bytes themselves; a table holds one
//! 16-byte pointer per key. Keys and values are copied out of the request rather than shared
//! with it: a shared buffer would keep the whole network read it was cut from alive for as long
//! as the key lives. What leaves the keyspace is copied once more: a reply, a change streamed to
//! replicas, and a full copy for a replica ([`Entries`]), whose records are copied back to back
//! into one buffer while the keys are locked (a copy per key would take an allocation each, and
//! the keys stay locked while it is made) and encoded after they are released.
//!
//! Why the tables grow incrementally: a table that doubles by moving every entry at once stops
//! the node for as long as that takes, which grows with the table; keys are spread over the
//! slots only as far as clients let them be, since hash tags put any number of keys in one slot,
//! so one slot's table may hold millions, and a doubling then lasts long enough to delay every
//! client and, at worst, for its peers to time the node out. So a table grows as Redis's dict
//! does (griddle): the old table is moved into the new one a few entries per insert, and no
//! insert moves more than a handful whatever the table's size. The cost is that the old table
//! stays allocated until its last entry has moved (only inserts move entries: a table that
//! stops growing mid-move keeps both). A slot's table is freed when its last key
//! goes (its slot migrated, or `FLUSHALL`).
//!
//! SipHash with a per-process random key, shared by every slot's table, keeps clients from
//! choosing keys that collide.

use std::borrow::Borrow;
use std::collections::hash_map::RandomState;
use std::collections::BTreeSet;
use std::fmt;
use std::hash::{Hash, Hasher};

use super::keyslot::{key_slot, SLOT_COUNT};

/// Bytes counted per key beyond its key and value bytes: its share of its slot's table (a
/// 16-byte pointer and a control byte per bucket, the buckets between 7/16 and 7/8 full), its
/// record's header, and what the allocator rounds the record up to. An estimate, as Redis's
/// `used_memory` is for its own structures; it makes `maxmemory` count a million empty strings
/// as more than nothing.
pub const ENTRY_OVERHEAD: usize = 40;

/// Bytes counted per key with an expiry time beyond [`ENTRY_OVERHEAD`] and a second copy of
/// its key (the expiry index holds one): the time in the record and in the index, the index's
/// B-tree slot (a 16-byte pointer, the nodes half to fully used) and the index entry's
/// allocation rounded up.
pub const EXPIRY_OVERHEAD: usize = 56;

/// One slot's keys. A record is found by its key alone ([`Stored`]).
type Table = griddle::HashSet<Stored, RandomState>;

/// A key with its value and expiry time, in one allocation: a header, then the expiry time if
/// the key has one (8 bytes, little-endian), the key and the value. The header is the key's
/// length shifted left by one, its low bit set if an expiry time follows, as a LEB128 varint:
/// one byte for keys shorter than 64 bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct Record(Box<[u8]>);

impl Record {
    /// A record of `key` with the concatenation of `value` as value.
    fn new(key: &[u8], value: &[&[u8]], expires_at: Option<u64>) -> Record {
        let header = ((key.len() as u64) << 1) | u64::from(expires_at.is_some());
        let len = varint_len(header)
            + expires_at.map_or(0, |_| 8)
            + key.len()
            + value.iter().map(|part| part.len()).sum::<usize>();
        let mut bytes = Vec::with_capacity(len);
        write_varint(&mut bytes, header);
        if let Some(at) = expires_at {
            bytes.extend_from_slice(&at.to_le_bytes());
        }
        bytes.extend_from_slice(key);
        value.iter().for_each(|part| bytes.extend_from_slice(part));
        Record(bytes.into_boxed_slice())
    }

    /// The key.
    pub fn key(&self) -> &[u8] {
        parts(&self.0).0
    }

    /// The value.
    pub fn value(&self) -> &[u8] {
        parts(&self.0).1
    }

    /// When the key expires (ms since the epoch), if it does.
    pub fn expires_at(&self) -> Option<u64> {
        parts(&self.0).2
    }

    fn expired(&self, now: u64) -> bool {
        self.expires_at().is_some_and(|at| at <= now)
    }

    /// Bytes counted for the record (`used_memory`).
    fn footprint(&self) -> usize {
        let (key, value) = (self.key().len(), self.value().len());
        let expiry = self.expires_at().map_or(0, |_| key + EXPIRY_OVERHEAD);
        key + value + ENTRY_OVERHEAD + expiry
    }
}

impl fmt::Debug for Record {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Record")
            .field("key", &String::from_utf8_lossy(self.key()))
            .field("value", &String::from_utf8_lossy(self.value()))
            .field("expires_at", &self.expires_at())
            .finish()
    }
}

/// The key, value and expiry time of a record's bytes.
fn parts(record: &[u8]) -> (&[u8], &[u8], Option<u64>) {
    let (header, start) = read_varint(record);
    let (expires_at, rest) = match header & 1 == 1 {
        true => {
            let (at, rest) = record[start..].split_at(8);
            let mut time = [0; 8];
            time.copy_from_slice(at);
            (Some(u64::from_le_bytes(time)), rest)
        }
        false => (None, &record[start..]),
    };
    let (key, value) = rest.split_at((header >> 1) as usize);
    (key, value, expires_at)
}

/// Copies of records (a replica's full copy), back to back in one buffer.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Entries {
    bytes: Vec<u8>,
    /// Where each record ends in `bytes`.
    ends: Vec<usize>,
}

impl Entries {
    /// How many records.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Each record's key, value and expiry time.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8], Option<u64>)> {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        starts
            .zip(&self.ends)
            .map(|(start, &end)| parts(&self.bytes[start..end]))
    }

    fn push(&mut self, record: &Record) {
        self.bytes.extend_from_slice(&record.0);
        self.ends.push(self.bytes.len());
    }
}

/// A record in its slot's table, which hashes and compares it by its key alone, so that it can
/// be looked up by key.
#[derive(Debug)]
struct Stored(Record);

impl PartialEq for Stored {
    fn eq(&self, other: &Stored) -> bool {
        self.0.key() == other.0.key()
    }
}

impl Eq for Stored {}

impl Hash for Stored {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.key().hash(state);
    }
}

impl Borrow<[u8]> for Stored {
    fn borrow(&self) -> &[u8] {
        self.0.key()
    }
}

fn varint_len(n: u64) -> usize {
    (64 - (n | 1).leading_zeros() as usize).div_ceil(7)
}

fn write_varint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push(n as u8 | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// The varint at the start of `bytes` and its length.
fn read_varint(bytes: &[u8]) -> (u64, usize) {
    let mut n = 0;
    for (i, &byte) in bytes.iter().enumerate() {
        n |= u64::from(byte & 0x7f) << (7 * i);
        if byte < 0x80 {
            return (n, i + 1);
        }
    }
    (n, bytes.len())
}

/// An entry of the expiry index: the time, big-endian so that byte order is time order, and the
/// key.
fn due(at: u64, key: &[u8]) -> Box<[u8]> {
    [&at.to_be_bytes()[..], key].concat().into_boxed_slice()
}

/// The time and key of an entry of the expiry index.
fn split_due(entry: &[u8]) -> (u64, &[u8]) {
    let (at, key) = entry.split_at(8);
    let mut time = [0; 8];
    time.copy_from_slice(at);
    (u64::from_be_bytes(time), key)
}

fn slot_of(key: &[u8]) -> usize {
    usize::from(key_slot(key))
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

/// What a `SET` did.
#[derive(Debug, PartialEq, Eq)]
pub enum SetOutcome {
    /// It stored the value; the key's previous value, if it had one.
    Stored(Option<Record>),
    /// Its condition did not hold: the key is unchanged, so its value (if any) is still the one
    /// it had.
    Refused,
}

/// The keys of one node.
#[derive(Debug)]
pub struct Keyspace {
    /// The tables, one per slot, in slot order.
    slots: Vec<Table>,
    /// The keys that have an expiry time, in order of it (entries made by [`due`]).
    by_expiry: BTreeSet<Box<[u8]>>,
    len: usize,
    used: usize,
}

impl Default for Keyspace {
    fn default() -> Keyspace {
        Keyspace::new()
    }
}

impl Keyspace {
    /// An empty keyspace.
    pub fn new() -> Keyspace {
        let hasher = RandomState::new();
        Keyspace {
            slots: (0..SLOT_COUNT)
                .map(|_| Table::with_hasher(hasher.clone()))
                .collect(),
            by_expiry: BTreeSet::new(),
            len: 0,
            used: 0,
        }
    }

    /// Keys stored, expired ones not yet reaped included (`DBSIZE`, as Redis counts).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Keys stored with an expiry time (`INFO keyspace`'s `expires`).
    pub fn expiring(&self) -> usize {
        self.by_expiry.len()
    }

    /// Whether no key is stored.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Estimated bytes the keys take (`used_memory` for `maxmemory`).
    pub fn used_memory(&self) -> usize {
        self.used
    }

    /// The value of `key`, unless it is missing or expired.
    pub fn get(&mut self, key: &[u8], now: u64) -> Option<&[u8]> {
        self.live(key, now).map(Record::value)
    }

    /// Whether `key` exists and has not expired.
    pub fn contains(&mut self, key: &[u8], now: u64) -> bool {
        self.live(key, now).is_some()
    }

    /// `SET`: stores `value` under `key` if `condition` allows.
    pub fn set(
        &mut self,
        key: &[u8],
        value: &[u8],
        condition: SetCondition,
        expiry: SetExpiry,
        now: u64,
    ) -> SetOutcome {
        let old = self.live(key, now).map(Record::expires_at);
        let applies = match condition {
            SetCondition::Always => true,
            SetCondition::IfAbsent => old.is_none(),
            SetCondition::IfPresent => old.is_some(),
        };
        if !applies {
            return SetOutcome::Refused;
        }
        let expires_at = match expiry {
            SetExpiry::Clear => None,
            SetExpiry::At(at) => Some(at),
            SetExpiry::Keep => old.flatten(),
        };
        SetOutcome::Stored(self.store(Record::new(key, &[value], expires_at)))
    }

    /// Removes `key`; returns its record if it existed and had not expired (`DEL`, `GETDEL`).
    pub fn remove(&mut self, key: &[u8], now: u64) -> Option<Record> {
        self.live(key, now)?;
        self.take(key)
    }

    /// Sets or clears the expiry of an existing key (`PEXPIREAT`, `PERSIST`); a time not after
    /// `now` removes the key, as Redis does. Returns whether the key existed.
    pub fn set_expiry(&mut self, key: &[u8], at: Option<u64>, now: u64) -> bool {
        let Some(record) = self.live(key, now) else {
            return false;
        };
        if at.is_some_and(|at| at <= now) {
            self.take(key);
        } else {
            let record = Record::new(record.key(), &[record.value()], at);
            self.store(record);
        }
        true
    }

    /// The time to live of `key` (`PTTL`).
    pub fn ttl(&mut self, key: &[u8], now: u64) -> Ttl {
        match self.live(key, now).map(Record::expires_at) {
            None => Ttl::Missing,
            Some(None) => Ttl::Persistent,
            Some(Some(at)) => Ttl::Millis(at - now),
        }
    }

    /// `INCRBY`: adds `delta` to the integer in `key` (0 if missing), keeping its expiry.
    pub fn incr_by(&mut self, key: &[u8], delta: i64, now: u64) -> Result<i64, IncrError> {
        let (current, expires_at) = match self.live(key, now) {
            None => (0, None),
            Some(record) => (
                parse_i64(record.value()).ok_or(IncrError::NotInteger)?,
                record.expires_at(),
            ),
        };
        let new = current.checked_add(delta).ok_or(IncrError::Overflow)?;
        self.store(Record::new(key, &[new.to_string().as_bytes()], expires_at));
        Ok(new)
    }

    /// `APPEND`: appends `suffix` to the value of `key` (creating it); returns the new length.
    pub fn append(&mut self, key: &[u8], suffix: &[u8], now: u64) -> usize {
        let record = match self.live(key, now) {
            None => Record::new(key, &[suffix], None),
            Some(old) => Record::new(key, &[old.value(), suffix], old.expires_at()),
        };
        let len = record.value().len();
        self.store(record);
        len
    }

    /// Live keys of `slot`, at most `count`, in no particular order (`CLUSTER GETKEYSINSLOT`).
    pub fn keys_in_slot(&self, slot: u16, count: usize, now: u64) -> Vec<&[u8]> {
        self.slots
            .get(usize::from(slot))
            .into_iter()
            .flat_map(|table| table.iter())
            .filter(|stored| !stored.0.expired(now))
            .take(count)
            .map(|stored| stored.0.key())
            .collect()
    }

    /// Keys stored in `slot`, expired ones not yet reaped included (`COUNTKEYSINSLOT`).
    pub fn count_in_slot(&self, slot: u16) -> usize {
        self.slots.get(usize::from(slot)).map_or(0, Table::len)
    }

    /// Live keys of the slots from `slot` on, a whole slot at a time, until at least `count`
    /// keys are collected; with the next slot to scan, or `None` after the last (`SCAN`: a key
    /// that exists from the first call to the last is returned once).
    pub fn scan(&self, mut slot: u16, count: usize, now: u64) -> (Vec<&[u8]>, Option<u16>) {
        let mut keys = Vec::new();
        while slot < SLOT_COUNT && keys.len() < count.max(1) {
            keys.extend(self.keys_in_slot(slot, usize::MAX, now));
            slot += 1;
        }
        let next = (slot..SLOT_COUNT).find(|&s| self.count_in_slot(s) > 0);
        (keys, next)
    }

    /// The value and expiry time of `key`, unless it is missing or expired.
    pub fn entry(&mut self, key: &[u8], now: u64) -> Option<(&[u8], Option<u64>)> {
        self.live(key, now).map(|r| (r.value(), r.expires_at()))
    }

    /// Every live key with its value and expiry time, copied (a replica's full copy).
    pub fn entries(&self, now: u64) -> Entries {
        let mut all = Entries {
            bytes: Vec::new(),
            ends: Vec::with_capacity(self.len),
        };
        let live = self.slots.iter().flat_map(Table::iter);
        live.filter(|stored| !stored.0.expired(now))
            .for_each(|stored| all.push(&stored.0));
        all
    }

    /// Stores `value` under `key` as given: a change a master streamed (`SetCondition` and
    /// options were applied there).
    pub fn put(&mut self, key: &[u8], value: &[u8], expires_at: Option<u64>) {
        self.store(Record::new(key, &[value], expires_at));
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
        let mut removed = 0;
        while removed < budget
            && self
                .by_expiry
                .first()
                .is_some_and(|first| split_due(first).0 <= now)
        {
            if let Some(first) = self.by_expiry.pop_first() {
                self.take_record(split_due(&first).1);
            }
            removed += 1;
        }
        removed
    }

    /// The record of `key` unless missing; an expired record is removed and reported missing.
    fn live(&mut self, key: &[u8], now: u64) -> Option<&Record> {
        if self.slots[slot_of(key)].get(key)?.0.expired(now) {
            self.take(key);
            return None;
        }
        self.slots[slot_of(key)].get(key).map(|stored| &stored.0)
    }

    /// Stores `record` in place of its key's record, if any, which it returns.
    fn store(&mut self, record: Record) -> Option<Record> {
        let due_entry = record.expires_at().map(|at| due(at, record.key()));
        self.used += record.footprint();
        let table = &mut self.slots[slot_of(record.key())];
        let old = table.replace(Stored(record)).map(|stored| stored.0);
        match &old {
            None => self.len += 1,
            Some(old) => {
                self.used -= old.footprint();
                if let Some(at) = old.expires_at() {
                    self.by_expiry.remove(&due(at, old.key()));
                }
            }
        }
        if let Some(entry) = due_entry {
            self.by_expiry.insert(entry);
        }
        old
    }

    /// Removes the record of `key` and its expiry index entry, if any.
    fn take(&mut self, key: &[u8]) -> Option<Record> {
        let record = self.take_record(key)?;
        if let Some(at) = record.expires_at() {
            self.by_expiry.remove(&due(at, record.key()));
        }
        Some(record)
    }

    /// Removes the record of `key` from its table, not from the expiry index.
    fn take_record(&mut self, key: &[u8]) -> Option<Record> {
        let table = &mut self.slots[slot_of(key)];
        let Stored(record) = table.take(key)?;
        if table.is_empty() {
            *table = Table::with_hasher(table.hasher().clone());
        }
        self.len -= 1;
        self.used -= record.footprint();
        Some(record)
    }
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
