//! The simulated network: the set of envelopes in flight, kept sorted by content so that the
//! checker's actions come out in the same order in every process, with a set hash maintained on
//! every insert and removal (so fingerprinting a state does not walk the network).

use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use crate::check::hashed::stable_hash;
use crate::ids::NodeId;
use crate::message::Msg;

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
    env: Arc<Envelope>,
    hash: u64,
}

impl Shared {
    /// Shares and hashes an envelope.
    pub fn new(env: Envelope) -> Shared {
        let hash = stable_hash(&env);
        Shared {
            env: Arc::new(env),
            hash,
        }
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
        self.hash == other.hash && (Arc::ptr_eq(&self.env, &other.env) || self.env == other.env)
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
        if Arc::ptr_eq(&self.env, &other.env) {
            std::cmp::Ordering::Equal
        } else {
            self.env.cmp(&other.env)
        }
    }
}

impl Hash for Shared {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.hash);
    }
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.env.fmt(f)
    }
}

/// Envelopes in flight: a set, sorted by content.
#[derive(Clone, Default)]
pub struct Network {
    items: Arc<Vec<Shared>>,
    /// Sum of the members' hashes: a set hash that insert and remove update in O(1).
    hash: u64,
}

impl Network {
    /// Whether `env` is in flight.
    pub fn contains(&self, env: &Envelope) -> bool {
        self.items.binary_search_by(|s| (**s).cmp(env)).is_ok()
    }

    /// Adds an envelope; returns whether it was new.
    pub fn insert(&mut self, env: Envelope) -> bool {
        match self.items.binary_search_by(|s| (**s).cmp(&env)) {
            Ok(_) => false,
            Err(at) => {
                let shared = Shared::new(env);
                self.hash = self.hash.wrapping_add(shared.hash);
                Arc::make_mut(&mut self.items).insert(at, shared);
                true
            }
        }
    }

    /// Removes an envelope; returns whether it was present.
    pub fn remove(&mut self, env: &Envelope) -> bool {
        match self.items.binary_search_by(|s| (**s).cmp(env)) {
            Ok(at) => {
                let removed = Arc::make_mut(&mut self.items).remove(at);
                self.hash = self.hash.wrapping_sub(removed.hash);
                true
            }
            Err(_) => false,
        }
    }

    /// Replaces every envelope addressed to `dst` by `rewrite(envelope)`: `None` removes it,
    /// `Some` replaces it (merging with an equal envelope already in flight). Returns whether
    /// anything changed.
    pub fn rewrite_to(
        &mut self,
        dst: NodeId,
        mut rewrite: impl FnMut(&Envelope) -> Option<Option<Envelope>>,
    ) -> bool {
        let mut removed = Vec::new();
        let mut added = Vec::new();
        for (at, shared) in self.items.iter().enumerate() {
            if shared.dst != dst {
                continue;
            }
            if let Some(replacement) = rewrite(shared) {
                removed.push(at);
                added.extend(replacement);
            }
        }
        if removed.is_empty() {
            return false;
        }
        let items = Arc::make_mut(&mut self.items);
        for &at in removed.iter().rev() {
            let gone = items.remove(at);
            self.hash = self.hash.wrapping_sub(gone.hash);
        }
        for env in added {
            self.insert(env);
        }
        true
    }

    /// Envelopes in content order.
    pub fn iter(&self) -> impl Iterator<Item = &Shared> {
        self.items.iter()
    }

    /// Number of envelopes.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether nothing is in flight.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

impl PartialEq for Network {
    fn eq(&self, other: &Self) -> bool {
        self.hash == other.hash
            && (Arc::ptr_eq(&self.items, &other.items) || self.items == other.items)
    }
}
impl Eq for Network {}

impl Hash for Network {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.hash);
        state.write_usize(self.items.len());
    }
}

impl fmt::Debug for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.items.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    }
}
