//! The simulated network: the set of envelopes in flight, kept sorted by content so that the
//! checker's actions come out in the same order in every process, with a set hash maintained on
//! every insert and removal (so fingerprinting a state does not walk the network).

use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use crate::hashed::{stable_hash, Hashed, RenamedHashes};
use slotguard_protocol::ids::NodeId;
use slotguard_protocol::message::Msg;

/// A message in flight.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Envelope {
    /// Sender.
    pub src: NodeId,
    /// Receiver.
    pub dst: NodeId,
    /// The message.
    pub msg: Msg,
}

/// A shared envelope with its hash (envelopes are copied into many states and actions).
#[derive(Clone)]
pub struct Shared {
    env: Hashed<Envelope>,
}

impl Shared {
    /// Shares and hashes an envelope.
    pub fn new(env: Envelope) -> Shared {
        Shared {
            env: Hashed::new(env),
        }
    }

    /// Shares an envelope whose [`stable_hash`] the caller computed.
    pub(crate) fn with_hash(env: Envelope, hash: u64) -> Shared {
        Shared {
            env: Hashed::with_hash(env, hash),
        }
    }

    /// The envelope's hash.
    pub(crate) fn hash_value(&self) -> u64 {
        self.env.hash_value()
    }

    /// The envelope's hashes under renamings (check/symmetry.rs).
    pub(crate) fn renamed(&self) -> &RenamedHashes {
        self.env.renamed()
    }
}

impl std::ops::Deref for Shared {
    type Target = Envelope;
    fn deref(&self) -> &Envelope {
        &self.env
    }
}

impl PartialEq for Shared {
    fn eq(&self, other: &Self) -> bool {
        self.env == other.env
    }
}
impl Eq for Shared {}

impl PartialOrd for Shared {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Shared {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (*self.env).cmp(&*other.env)
    }
}

impl Hash for Shared {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.env.hash_value());
    }
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.env.fmt(f)
    }
}

/// Envelopes in flight: a set, kept per receiver and sorted by content within each receiver.
///
/// Per receiver because a step adds envelopes for a few receivers and leaves the others'
/// untouched: a new state shares those lists with the state it came from instead of copying
/// every envelope in flight (copying was a fifth of the checker's time on `standard`).
#[derive(Clone, Default)]
pub struct Network {
    /// `by_dst[d]`: envelopes addressed to node `d`, sorted.
    by_dst: Vec<Arc<Vec<Shared>>>,
    /// Number of envelopes.
    len: usize,
    /// Sum of the members' hashes: a set hash that insert and remove update in O(1).
    hash: u64,
}

impl Network {
    fn chunk(&self, dst: NodeId) -> &[Shared] {
        self.by_dst.get(dst.index()).map_or(&[], |c| c.as_slice())
    }

    fn chunk_mut(&mut self, dst: NodeId) -> &mut Vec<Shared> {
        if self.by_dst.len() <= dst.index() {
            self.by_dst.resize_with(dst.index() + 1, Default::default);
        }
        Arc::make_mut(&mut self.by_dst[dst.index()])
    }

    /// Whether `env` is in flight.
    pub fn contains(&self, env: &Envelope) -> bool {
        self.contains_hashed(env, stable_hash(env))
    }

    /// Whether `env`, whose [`stable_hash`] is `hash`, is in flight. The hashes sit next to
    /// the pointers in the receiver's list, so a scan of them touches one contiguous block
    /// instead of the envelopes that a binary search compares field by field (a tenth of a
    /// run of `large`); an equal hash is confirmed by comparing the envelopes.
    pub(crate) fn contains_hashed(&self, env: &Envelope, hash: u64) -> bool {
        holds(self.chunk(env.dst), env, hash)
    }

    /// Adds an envelope; returns whether it was new.
    pub fn insert(&mut self, env: Envelope) -> bool {
        match self.chunk(env.dst).binary_search_by(|s| (**s).cmp(&env)) {
            Ok(_) => false,
            Err(at) => {
                let shared = Shared::new(env);
                self.hash = self.hash.wrapping_add(shared.hash_value());
                self.len += 1;
                self.chunk_mut(shared.dst).insert(at, shared);
                true
            }
        }
    }

    /// Adds an envelope already shared and hashed; returns whether it was new.
    pub(crate) fn insert_shared(&mut self, shared: Shared) -> bool {
        match self.chunk(shared.dst).binary_search(&shared) {
            Ok(_) => false,
            Err(at) => {
                self.hash = self.hash.wrapping_add(shared.hash_value());
                self.len += 1;
                self.chunk_mut(shared.dst).insert(at, shared);
                true
            }
        }
    }

    /// Removes an envelope; returns whether it was present.
    pub fn remove(&mut self, env: &Envelope) -> bool {
        match self.chunk(env.dst).binary_search_by(|s| (**s).cmp(env)) {
            Ok(at) => {
                let removed = self.chunk_mut(env.dst).remove(at);
                self.hash = self.hash.wrapping_sub(removed.hash_value());
                self.len -= 1;
                true
            }
            Err(_) => false,
        }
    }

    /// Replaces every envelope addressed to `dst` by `rewrite(envelope)`: `None` keeps it,
    /// `Some(None)` removes it, `Some(Some(e))` replaces it by `e` (merging with an equal
    /// envelope already in flight). Returns whether anything changed.
    pub fn rewrite_to(
        &mut self,
        dst: NodeId,
        mut rewrite: impl FnMut(&Envelope) -> Option<Option<Envelope>>,
    ) -> bool {
        let mut removed = Vec::new();
        let mut added = Vec::new();
        for (at, shared) in self.chunk(dst).iter().enumerate() {
            if let Some(replacement) = rewrite(shared) {
                removed.push(at);
                added.extend(replacement);
            }
        }
        if removed.is_empty() {
            return false;
        }
        let chunk = self.chunk_mut(dst);
        let mut gone_hash = 0u64;
        for &at in removed.iter().rev() {
            gone_hash = gone_hash.wrapping_add(chunk.remove(at).hash_value());
        }
        self.hash = self.hash.wrapping_sub(gone_hash);
        self.len -= removed.len();
        for env in added {
            self.insert(env);
        }
        true
    }

    /// A network that holds no envelopes but hashes like one of `len` envelopes whose hashes
    /// sum to `hash`: for states that only carry a fingerprint (check/symmetry.rs).
    pub(crate) fn fingerprint_only(hash: u64, len: usize) -> Network {
        Network {
            by_dst: Vec::new(),
            len,
            hash,
        }
    }

    /// Envelopes, by receiver, then in content order.
    pub fn iter(&self) -> impl Iterator<Item = &Shared> {
        self.by_dst.iter().flat_map(|c| c.iter())
    }

    /// The envelopes addressed to `dst`, shared.
    pub(crate) fn shared_chunk(&self, dst: NodeId) -> Chunk {
        Chunk {
            envelopes: self.by_dst.get(dst.index()).cloned().unwrap_or_default(),
            hash: self.chunk_set_hash(dst),
        }
    }

    /// The sum of the hashes of the envelopes addressed to `dst`.
    pub(crate) fn chunk_set_hash(&self, dst: NodeId) -> u64 {
        self.chunk(dst)
            .iter()
            .fold(0u64, |h, s| h.wrapping_add(s.hash_value()))
    }

    /// How many envelopes are addressed to `dst`.
    pub(crate) fn chunk_len(&self, dst: NodeId) -> usize {
        self.chunk(dst).len()
    }

    /// Replaces the envelopes addressed to `dst`, whose set hash is `old_hash`, by `chunk`.
    pub(crate) fn put_chunk(&mut self, dst: NodeId, old_hash: u64, chunk: Chunk) {
        let old_len = self.chunk_len(dst);
        self.hash = self.hash.wrapping_sub(old_hash).wrapping_add(chunk.hash);
        self.len = self.len - old_len + chunk.envelopes.len();
        if self.by_dst.len() <= dst.index() {
            self.by_dst.resize_with(dst.index() + 1, Default::default);
        }
        self.by_dst[dst.index()] = chunk.envelopes;
    }

    /// The sum of the envelopes' hashes (a set hash).
    pub(crate) fn set_hash(&self) -> u64 {
        self.hash
    }

    /// Number of envelopes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing is in flight.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// Whether `list` holds `env`, whose [`stable_hash`] is `hash`: the stored hashes are
/// compared first, and an equal one is confirmed by comparing the envelopes.
pub(crate) fn holds(list: &[Shared], env: &Envelope, hash: u64) -> bool {
    list.iter().any(|s| s.hash_value() == hash && **s == *env)
}

/// The envelopes addressed to one node, shared between networks.
#[derive(Clone)]
pub struct Chunk {
    envelopes: Arc<Vec<Shared>>,
    /// The sum of the envelopes' hashes.
    hash: u64,
}

impl Chunk {
    /// The sum of the envelopes' hashes.
    pub(crate) fn set_hash(&self) -> u64 {
        self.hash
    }

    /// How many envelopes.
    pub(crate) fn len(&self) -> usize {
        self.envelopes.len()
    }
}

/// Slots of the memo of canonical inboxes (a kilobyte or so each once used).
const REWRITES: usize = 1 << 16;

/// A memo of canonical inboxes (`ClusterModel::settle_network_to`): by the fingerprint of a
/// receiver's state, its outlook and its inbox, the inbox in canonical form. Direct-mapped and
/// bounded: a newer entry replaces an older one in its slot; each slot has its own lock, so the
/// workers rarely meet. An entry is trusted on an equal 64-bit fingerprint, the risk the
/// search's visited set takes. A clone starts empty.
pub struct RewriteMemo {
    slots: std::sync::OnceLock<Box<[RewriteSlot]>>,
}

/// One slot of [`RewriteMemo`]: a fingerprint and the canonical inbox recorded under it.
type RewriteSlot = std::sync::Mutex<Option<(u64, Chunk)>>;

impl RewriteMemo {
    /// An empty memo (allocated on first use).
    pub fn new() -> RewriteMemo {
        RewriteMemo {
            slots: std::sync::OnceLock::new(),
        }
    }

    fn slot(&self, key: u64) -> &RewriteSlot {
        let slots = self
            .slots
            .get_or_init(|| (0..REWRITES).map(|_| Default::default()).collect());
        &slots[(key >> 40) as usize % REWRITES]
    }

    /// The canonical inbox recorded under `key`, if any.
    pub(crate) fn get(&self, key: u64) -> Option<Chunk> {
        // A poisoned lock only means another worker panicked; the memo is then not used.
        let slot = self.slot(key).lock().ok()?;
        match &*slot {
            Some((k, chunk)) if *k == key => Some(chunk.clone()),
            _ => None,
        }
    }

    /// Records the canonical inbox under `key`.
    pub(crate) fn insert(&self, key: u64, chunk: Chunk) {
        if let Ok(mut slot) = self.slot(key).lock() {
            *slot = Some((key, chunk));
        }
    }
}

memo_impls!(RewriteMemo);

impl PartialEq for Network {
    fn eq(&self, other: &Self) -> bool {
        if self.hash != other.hash || self.len != other.len {
            return false;
        }
        let n = self.by_dst.len().max(other.by_dst.len());
        (0..n).all(|d| {
            let (a, b) = (self.by_dst.get(d), other.by_dst.get(d));
            match (a, b) {
                (Some(a), Some(b)) => Arc::ptr_eq(a, b) || a == b,
                (Some(c), None) | (None, Some(c)) => c.is_empty(),
                (None, None) => true,
            }
        })
    }
}
impl Eq for Network {}

impl Hash for Network {
    fn hash<H: Hasher>(&self, state: &mut H) {
        write_network(state, self.hash, self.len);
    }
}

/// What a network with this set hash and length contributes to a fingerprint.
pub(crate) fn write_network<H: Hasher>(state: &mut H, set_hash: u64, len: usize) {
    state.write_u64(set_hash);
    state.write_usize(len);
}

impl fmt::Debug for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hashed::stable_hash;

    fn env(src: u16, node: u16) -> Envelope {
        Envelope {
            src: NodeId(src),
            dst: NodeId(0),
            msg: Msg::Fail { node: NodeId(node) },
        }
    }

    #[test]
    fn set_hash_is_order_independent_and_reversible() {
        let mut a = Network::default();
        let mut b = Network::default();
        a.insert(env(1, 2));
        a.insert(env(2, 3));
        b.insert(env(2, 3));
        b.insert(env(1, 2));
        assert_eq!(a, b);
        assert_eq!(stable_hash(&a), stable_hash(&b));
        assert!(!a.insert(env(1, 2)));
        assert!(a.remove(&env(2, 3)));
        let mut c = Network::default();
        c.insert(env(1, 2));
        assert_eq!(a, c);
        assert_eq!(stable_hash(&a), stable_hash(&c));
        let order: Vec<_> = b.iter().map(|s| (**s).clone()).collect();
        assert_eq!(order, vec![env(1, 2), env(2, 3)]);
        // Removing down to nothing equals never having had anything.
        let mut far = env(3, 1);
        far.dst = NodeId(4);
        assert!(c.insert(far.clone()));
        assert!(c.contains(&far) && !a.contains(&far));
        assert!(c.remove(&far));
        assert_eq!(c, a);
        assert!(c.remove(&env(1, 2)));
        assert_eq!(c, Network::default());
        assert!(c.is_empty());
    }
}
