//! Node names and what the runtime knows of each peer's name and liveness.
//!
//! Why names live here and not in the model: the protocol identifies nodes by their index in
//! the layout (`NodeId`), which is all the checked protocol needs. Clients and operators,
//! though, expect Redis's node ids: a random 160-bit name chosen when the node is created and
//! kept for its life (Redis's nodes.conf), so that two clusters, or a node rebuilt from scratch,
//! never show the same id. A name is therefore runtime identity: drawn from the OS CSPRNG at
//! creation, persisted in the state file (the binary's runtime/storage.rs), carried in every
//! datagram's header (wire.rs), and shown by CLUSTER NODES / SLOTS / SHARDS / MYID. No protocol
//! decision reads it. `run_id` (INFO) is random per start, as in Redis.

use std::fmt;

use slotguard_protocol::NodeId;
use thiserror::Error;

/// Bytes of a node name (Redis: 160 bits, shown as 40 hex digits).
pub const NAME_LEN: usize = 20;

/// The OS could not give randomness.
#[derive(Debug, Error)]
#[error("the operating system gave no randomness: {0}")]
pub struct NoRandomness(pub(crate) String);

/// A node's permanent name.
#[derive(
    Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct NodeName(pub [u8; NAME_LEN]);

impl NodeName {
    /// A fresh name from the OS CSPRNG.
    pub fn random() -> Result<NodeName, NoRandomness> {
        let mut bytes = [0u8; NAME_LEN];
        getrandom::fill(&mut bytes).map_err(|e| NoRandomness(e.to_string()))?;
        Ok(NodeName(bytes))
    }

    /// The first 8 hex digits, for logs.
    pub fn short(&self) -> String {
        hex(&self.0[..4])
    }
}

impl fmt::Display for NodeName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex(&self.0))
    }
}

impl fmt::Debug for NodeName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NodeName({self})")
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A random 40-hex run id for this start of the process.
pub fn run_id() -> Result<String, NoRandomness> {
    NodeName::random().map(|n| n.to_string())
}

/// What this node knows of one peer, outside the protocol.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PeerInfo {
    /// Its name, once an authentic datagram from it carried one.
    pub name: Option<NodeName>,
    /// When the PING now awaiting its PONG was sent (ms since epoch), 0 if none is pending.
    pub ping_sent_ms: u64,
    /// When its last PONG arrived (ms since epoch), 0 if never.
    pub pong_recv_ms: u64,
}

/// Every node's name and liveness as this node knows them, indexed by `NodeId`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Directory {
    me: NodeId,
    name: NodeName,
    peers: Vec<PeerInfo>,
}

/// What learning a name changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Learned {
    /// The name was already known.
    Same,
    /// First datagram with a name from this peer.
    New,
    /// The peer now carries another name: it was recreated (its state file removed).
    Changed(NodeName),
}

impl Directory {
    /// A directory for a cluster of `n` nodes where this node is `me`, named `name`.
    pub fn new(me: NodeId, name: NodeName, n: usize) -> Directory {
        Directory {
            me,
            name,
            peers: vec![PeerInfo::default(); n],
        }
    }

    /// A directory that already knows these peers' names (from the state file).
    pub fn knowing(mut self, names: &[Option<NodeName>]) -> Directory {
        for (p, name) in self.peers.iter_mut().zip(names) {
            p.name = *name;
        }
        self
    }

    /// Every node's name as far as known, by id (this node's own slot holds nothing).
    pub fn peer_names(&self) -> Vec<Option<NodeName>> {
        self.peers.iter().map(|p| p.name).collect()
    }

    /// This node's name.
    pub fn my_name(&self) -> NodeName {
        self.name
    }

    /// What is known of node `i` (this node's own entry holds nothing).
    pub fn peer(&self, i: usize) -> PeerInfo {
        self.peers.get(i).copied().unwrap_or_default()
    }

    /// Node `i`'s name, if known (always, for this node).
    pub fn name_of(&self, i: usize) -> Option<NodeName> {
        if i == self.me.index() {
            Some(self.name)
        } else {
            self.peer(i).name
        }
    }

    /// The 40-hex id clients see for node `i`: its name, or, until a datagram from it brought
    /// its name, a placeholder of zeros and its index, which CLUSTER NODES flags `handshake`.
    pub fn id_of(&self, i: usize) -> String {
        self.name_of(i)
            .map_or_else(|| format!("{:040x}", i + 1), |n| n.to_string())
    }

    /// How logs name node `i`: `3fa2c1d0(n1)`, or `n1` while its name is unknown.
    pub fn label(&self, id: NodeId) -> String {
        match self.name_of(id.index()) {
            Some(n) => format!("{}({id})", n.short()),
            None => id.to_string(),
        }
    }

    /// Records the name an authentic datagram from `from` carried.
    pub fn learn(&mut self, from: NodeId, name: NodeName) -> Learned {
        let Some(p) = self.peers.get_mut(from.index()) else {
            return Learned::Same;
        };
        let was = p.name.replace(name);
        match was {
            None => Learned::New,
            Some(old) if old == name => Learned::Same,
            Some(old) => Learned::Changed(old),
        }
    }

    /// A PING left for `to` at `ms`: it is the pending one unless one already is.
    pub fn ping_sent(&mut self, to: usize, ms: u64) {
        if let Some(p) = self.peers.get_mut(to) {
            if p.ping_sent_ms == 0 {
                p.ping_sent_ms = ms;
            }
        }
    }

    /// A PONG arrived from `from` at `ms`: no PING is pending any more.
    pub fn pong_received(&mut self, from: usize, ms: u64) {
        if let Some(p) = self.peers.get_mut(from) {
            p.pong_recv_ms = ms;
            p.ping_sent_ms = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_random_40_hex_and_differ() {
        let a = NodeName::random().expect("random");
        let b = NodeName::random().expect("random");
        assert_ne!(a, b);
        let text = a.to_string();
        assert_eq!(text.len(), 40);
        assert!(text.bytes().all(|c| c.is_ascii_hexdigit()), "{text}");
        assert_eq!(a.short(), text[..8]);
        assert_ne!(run_id().expect("id"), run_id().expect("id"));
    }

    #[test]
    fn peers_are_named_once_learnt_and_a_new_name_is_reported() {
        let me = NodeName([1; NAME_LEN]);
        let mut d = Directory::new(NodeId(0), me, 3);
        assert_eq!(d.id_of(0), me.to_string());
        assert_eq!(d.id_of(2), format!("{:040x}", 3));
        assert_eq!(d.label(NodeId(2)), "n2");
        let peer = NodeName([0xab; NAME_LEN]);
        assert_eq!(d.learn(NodeId(2), peer), Learned::New);
        assert_eq!(d.learn(NodeId(2), peer), Learned::Same);
        assert_eq!(d.id_of(2), peer.to_string());
        assert_eq!(d.label(NodeId(2)), "abababab(n2)");
        let other = NodeName([0xcd; NAME_LEN]);
        assert_eq!(d.learn(NodeId(2), other), Learned::Changed(peer));
        assert_eq!(
            d.learn(NodeId(9), other),
            Learned::Same,
            "out of range ignored"
        );
    }

    #[test]
    fn ping_sent_is_the_pending_ping_and_a_pong_clears_it() {
        let mut d = Directory::new(NodeId(0), NodeName([0; NAME_LEN]), 2);
        d.ping_sent(1, 100);
        d.ping_sent(1, 200);
        assert_eq!(d.peer(1).ping_sent_ms, 100, "the oldest unanswered PING");
        d.pong_received(1, 250);
        assert_eq!((d.peer(1).ping_sent_ms, d.peer(1).pong_recv_ms), (0, 250));
    }
}
