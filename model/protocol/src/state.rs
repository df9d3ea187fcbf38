//! A node's state: what it believes about itself and every other node, and the part of it that
//! survives a crash.
//!
//! Everything here is plain, ordered, hashable data (no hash maps, no clocks), because the checker
//! fingerprints it. The durable part ([`Persisted`]) is what Redis keeps in `nodes.conf`:
//! currentEpoch, lastVoteEpoch, the node's own configEpoch and role, and the slot map with every
//! node's role and configEpoch (specs/background.md §R8, `vars currentEpoch N lastVoteEpoch M`),
//! plus one field Redis does not need over TCP: the version of the last header applied from each
//! peer (`heard`, specs/protocol.md §3.2). How often the node has started is the runtime's business
//! (its datagrams' incarnation), not the protocol's: no handler reads it, and the checker would
//! otherwise tell apart states that differ only by who has restarted.

use serde::{Deserialize, Serialize};
use smallvec::SmallVec;

use crate::bitset::{NodeSet, SlotSet};
use crate::durability::Data;
use crate::ids::{Epoch, NodeId};
use crate::layout::{InitialRole, Layout};

/// A node's role.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Role {
    /// Serves the slots bound to it.
    Master,
    /// Replicates a master.
    Replica {
        /// The master it follows.
        of: NodeId,
    },
}

impl Role {
    /// The master this role follows, if a replica.
    #[inline]
    pub fn master(self) -> Option<NodeId> {
        match self {
            Role::Master => None,
            Role::Replica { of } => Some(of),
        }
    }
}

/// Local failure state of a peer (specs/background.md §R2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Health {
    /// No suspicion.
    Ok,
    /// My PING went unanswered for node_timeout (local only).
    PFail,
    /// Marked failed, by my quorum of reports or by a FAIL message.
    Fail {
        /// The FAIL-undo time (2 × node_timeout) has passed, so a PONG clears the FAIL even of a
        /// master that still serves slots (§2.4).
        undo_ready: bool,
    },
}

impl Health {
    /// Whether the peer is FAIL.
    #[inline]
    pub fn is_fail(self) -> bool {
        matches!(self, Health::Fail { .. })
    }
}

/// What this node knows about one other node.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PeerView {
    /// Its role, as last announced.
    pub role: Role,
    /// Its configEpoch, as last learned while it was a master (a replica's own entry keeps its
    /// last value: a replica advertises its master's epoch, which belongs to the master's entry).
    pub config_epoch: Epoch,
    /// Local failure state.
    pub health: Health,
    /// Slot-owning masters that currently report it PFAIL/FAIL (failure reports, §2.2).
    pub reports: NodeSet,
    /// Last advertised replication offset.
    pub repl_offset: u64,
    /// It advertised `no_failover`.
    pub no_failover: bool,
    /// Version of the last header applied from it: the configEpoch it advertised. A node's
    /// advertised configEpoch only grows, and every role change raises it (a promotion takes a
    /// new epoch; a demoted master or a replica that switches masters follows a node with a
    /// higher one), so a header with a lower one is a stale, reordered datagram. Durable
    /// ([`PersistedPeer::heard`]): a restart does not make old datagrams current again.
    pub heard: Epoch,
}

/// Which node each slot is bound to, in one node's view (`server.cluster->slots`).
///
/// Stored as one `u16` per slot, 0 for unbound and `id + 1` for a node, rather than as
/// `Option<NodeId>`: a real node scans its 16,384 slots several times a step (its header's
/// slots, claims, the cluster state), and plain integers compare, hash and scan a vector at a
/// time. It serializes as a sequence of `Option<NodeId>`, as it always has (state files).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SlotMap(SmallVec<[u16; 8]>);

impl std::fmt::Debug for SlotMap {
    /// The owners, as `Option<NodeId>`s (reports and the explorer print states with it).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let owners: Vec<Option<NodeId>> = self.0.iter().map(|&e| decode(e)).collect();
        f.debug_tuple("SlotMap").field(&owners).finish()
    }
}

/// A slot's entry for `node`.
#[inline]
fn code(node: NodeId) -> Option<u16> {
    node.0.checked_add(1)
}

/// The node an entry names, if any.
#[inline]
fn decode(entry: u16) -> Option<NodeId> {
    entry.checked_sub(1).map(NodeId)
}

impl SlotMap {
    /// All slots unbound.
    pub fn unbound(slot_count: usize) -> SlotMap {
        SlotMap(SmallVec::from_elem(0, slot_count))
    }

    /// The owner of `slot`, if bound (and in range).
    #[inline]
    pub fn owner(&self, slot: u16) -> Option<NodeId> {
        self.0.get(usize::from(slot)).copied().and_then(decode)
    }

    /// Binds `slot` to `node`. Out-of-range slots are ignored: callers only pass slots from
    /// validated sets, and peer input is range-checked at decoding.
    pub fn bind(&mut self, slot: u16, node: NodeId) {
        if let (Some(entry), Some(code)) = (self.0.get_mut(usize::from(slot)), code(node)) {
            *entry = code;
        }
    }

    /// Slots bound to `node`.
    pub fn slots_of(&self, node: NodeId) -> SlotSet {
        let Some(code) = code(node) else {
            return SlotSet::new();
        };
        // Owners come in long runs, so most chunks have one owner: a check that vectorises
        // (no early exit) finds them, and only a chunk where a run ends is read bit by bit.
        let word = |chunk: &[u16]| {
            let first = chunk[0];
            if chunk.iter().fold(0, |differ, &e| differ | (e ^ first)) == 0 {
                return if first == code {
                    u64::MAX >> (64 - chunk.len())
                } else {
                    0
                };
            }
            let mut word = 0u64;
            for (b, &e) in chunk.iter().enumerate() {
                word |= u64::from(e == code) << b;
            }
            word
        };
        let mut words: Vec<u64> = Vec::with_capacity(self.0.len().div_ceil(64));
        let whole = self.0.chunks_exact(64);
        let tail = whole.remainder();
        words.extend(whole.map(word));
        if !tail.is_empty() {
            words.push(word(tail));
        }
        SlotSet::from_words(words)
    }

    /// The owner of the first slot of `slots` (in slot order) whose owner satisfies `wanted`.
    /// `wanted` is asked once per node, not once per slot, and `slots` is read a run at a time.
    pub fn first_owner_among(
        &self,
        slots: &SlotSet,
        wanted: impl Fn(NodeId) -> bool,
    ) -> Option<NodeId> {
        // Owners come in long runs: ask about an entry only when it differs from the last.
        let mut last: Option<(u16, bool)> = None;
        let mut is_wanted = |e: u16| match last {
            Some((seen, answer)) if seen == e => answer,
            _ => {
                let answer = decode(e).is_some_and(&wanted);
                last = Some((e, answer));
                answer
            }
        };
        slots
            .ranges()
            .into_iter()
            .find_map(|(start, end)| self.run(start, end)?.iter().find(|&&e| is_wanted(e)))
            .and_then(|&e| decode(e))
    }

    /// Whether every slot of `slots` is bound to `node`.
    pub fn all_bound_to(&self, slots: &SlotSet, node: NodeId) -> bool {
        let Some(code) = code(node) else {
            return slots.is_empty();
        };
        slots.ranges().into_iter().all(|(start, end)| {
            self.run(start, end).is_some_and(|run| {
                run.len() == usize::from(end - start) + 1 && run.iter().all(|&e| e == code)
            })
        })
    }

    /// The entries of slots `start..=end` that are in the map.
    fn run(&self, start: u16, end: u16) -> Option<&[u16]> {
        let last = self.0.len().checked_sub(1)?;
        self.0.get(usize::from(start)..=usize::from(end).min(last))
    }

    /// Whether `node` owns at least one slot.
    pub fn owns_any(&self, node: NodeId) -> bool {
        code(node).is_some_and(|code| self.0.contains(&code))
    }

    /// `(slot, owner)` pairs in slot order.
    pub fn iter(&self) -> impl Iterator<Item = (u16, Option<NodeId>)> + '_ {
        self.0
            .iter()
            .enumerate()
            .map(|(s, &e)| (s as u16, decode(e)))
    }

    /// Number of slots.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no slots.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Serialize for SlotMap {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter().map(|&e| decode(e)))
    }
}

impl<'de> Deserialize<'de> for SlotMap {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let owners = Vec::<Option<NodeId>>::deserialize(deserializer)?;
        owners
            .into_iter()
            .map(|o| match o {
                None => Ok(0),
                Some(node) => {
                    code(node).ok_or_else(|| serde::de::Error::custom("node id too large"))
                }
            })
            .collect::<Result<_, _>>()
            .map(SlotMap)
    }
}

/// Where a replica is in its failover attempt (specs/background.md §R3.1).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Election {
    /// No attempt under way.
    Idle,
    /// The election-delay timer is armed (first attempt, or retry after an expired one).
    Scheduled,
    /// Votes requested for `epoch`; `votes` are the distinct masters that granted one.
    Running {
        /// The election epoch.
        epoch: Epoch,
        /// Distinct voters (the network duplicates, so a counter would over-count).
        votes: NodeSet,
        /// A manual failover's election (`CLUSTER FAILOVER [FORCE]`): the master need not be
        /// FAIL.
        forced: bool,
    },
}

/// Where a node is in a manual failover (`CLUSTER FAILOVER`, specs/protocol.md §6.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub enum ManualFailover {
    /// None under way.
    #[default]
    Idle,
    /// A replica asked its master to pause and waits for its final offset.
    Waiting,
    /// A master paused writes for this replica's manual failover.
    Paused {
        /// The replica taking over.
        replica: NodeId,
        /// Whether its headers say so yet. The first header that does is built in a step after
        /// the one that paused, so the replication offset it carries is final (§6.1).
        announced: bool,
    },
}

/// The whole state of one node.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct NodeState {
    /// This node.
    pub me: NodeId,
    /// currentEpoch; persisted.
    pub current_epoch: Epoch,
    /// lastVoteEpoch; persisted before the vote leaves.
    pub last_vote_epoch: Epoch,
    /// Own configEpoch; persisted.
    pub config_epoch: Epoch,
    /// Own role; persisted.
    pub role: Role,
    /// Slot bindings; persisted.
    pub slots: SlotMap,
    /// One entry per node of the layout, by id (this node's own entry is unused).
    pub peers: Vec<PeerView>,
    /// Failover attempt (volatile: a restart abandons it; its epoch bump was persisted).
    pub election: Election,
    /// This node never fails over (from the layout; advertised in every header).
    pub no_failover: bool,
    /// A manual failover under way (volatile: a restart abandons it).
    pub manual: ManualFailover,
    /// What it holds of its shard's data (volatile: the keys are in memory only;
    /// specs/protocol.md §13).
    pub data: Data,
}

/// The durable part of [`NodeState`] (stateright `Storage`; the node's state file).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Persisted {
    /// currentEpoch.
    pub current_epoch: Epoch,
    /// lastVoteEpoch.
    pub last_vote_epoch: Epoch,
    /// Own configEpoch.
    pub config_epoch: Epoch,
    /// Own role.
    pub role: Role,
    /// Slot bindings.
    pub slots: SlotMap,
    /// What this node knows durably of every node, by id.
    pub peers: Vec<PersistedPeer>,
}

/// Why a stored state does not belong to a cluster's layout.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LayoutMismatch {
    /// It knows another number of nodes.
    #[error("it knows {stored} nodes, the cluster has {layout}")]
    Nodes {
        /// Nodes in the stored state.
        stored: usize,
        /// Nodes in the layout.
        layout: usize,
    },
    /// It binds another number of slots.
    #[error("it has {stored} slots, the cluster has {layout}")]
    Slots {
        /// Slots in the stored state.
        stored: usize,
        /// Slots in the layout.
        layout: usize,
    },
    /// It names a node the cluster does not have (as a master followed or a slot owner).
    #[error("it names node {0}, which the cluster does not have")]
    UnknownNode(NodeId),
}

impl Persisted {
    /// Whether this stored state can be the state of a node of `layout`: handlers index peers
    /// and slots by id, so a state file of another cluster must stop start-up, not a handler.
    pub fn fits(&self, layout: &Layout) -> Result<(), LayoutMismatch> {
        let nodes = layout.len();
        if self.peers.len() != nodes {
            return Err(LayoutMismatch::Nodes {
                stored: self.peers.len(),
                layout: nodes,
            });
        }
        if self.slots.len() != layout.slot_count() {
            return Err(LayoutMismatch::Slots {
                stored: self.slots.len(),
                layout: layout.slot_count(),
            });
        }
        let named = self
            .slots
            .iter()
            .filter_map(|(_, owner)| owner)
            .chain(self.role.master())
            .chain(self.peers.iter().filter_map(|p| p.role.master()));
        for node in named {
            if node.index() >= nodes {
                return Err(LayoutMismatch::UnknownNode(node));
            }
        }
        Ok(())
    }
}

/// The durable part of [`PeerView`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PersistedPeer {
    /// Its role.
    pub role: Role,
    /// Its configEpoch.
    pub config_epoch: Epoch,
    /// The configEpoch advertised by the last header applied from it ([`PeerView::heard`]):
    /// durable, so that headers older than one applied before a restart stay stale after it
    /// (specs/protocol.md §3.2).
    pub heard: Epoch,
}

impl NodeState {
    /// The state of a node at cluster creation.
    pub fn fresh(layout: &Layout, me: NodeId) -> NodeState {
        let mut slots = SlotMap::unbound(layout.slot_count());
        let mut peers = Vec::with_capacity(layout.len());
        let current_epoch = layout.initial_current_epoch();
        for (id, spec) in layout.ids().zip(layout.specs()) {
            let (role, advertised) = match &spec.role {
                InitialRole::Master { slots: owned } => {
                    for slot in owned.iter() {
                        slots.bind(slot, id);
                    }
                    (Role::Master, spec.config_epoch)
                }
                InitialRole::Replica { of } => (
                    Role::Replica { of: *of },
                    layout.spec(*of).map(|m| m.config_epoch).unwrap_or_default(),
                ),
            };
            peers.push(PeerView {
                role,
                config_epoch: spec.config_epoch,
                health: Health::Ok,
                reports: NodeSet::new(),
                repl_offset: 0,
                no_failover: spec.no_failover,
                // Every node knows the header every other node was created with.
                heard: advertised,
            });
        }
        let own = &peers[me.index()];
        NodeState {
            me,
            current_epoch,
            last_vote_epoch: Epoch(0),
            config_epoch: own.config_epoch,
            role: own.role,
            slots,
            peers,
            election: Election::Idle,
            no_failover: layout.spec(me).is_some_and(|s| s.no_failover),
            manual: ManualFailover::Idle,
            data: Data::fresh(),
        }
    }

    /// The state of a node restarted from its state file: volatile knowledge (suspicions,
    /// reports, an election under way, the data) is gone; everything persisted is back.
    pub fn recovered(layout: &Layout, me: NodeId, p: &Persisted) -> NodeState {
        let peers = p
            .peers
            .iter()
            .map(|p| PeerView {
                role: p.role,
                config_epoch: p.config_epoch,
                health: Health::Ok,
                reports: NodeSet::new(),
                repl_offset: 0,
                no_failover: false,
                heard: p.heard,
            })
            .collect();
        NodeState {
            me,
            current_epoch: p.current_epoch,
            last_vote_epoch: p.last_vote_epoch,
            config_epoch: p.config_epoch,
            role: p.role,
            slots: p.slots.clone(),
            peers,
            election: Election::Idle,
            no_failover: layout.spec(me).is_some_and(|s| s.no_failover),
            manual: ManualFailover::Idle,
            data: Data::lost(),
        }
    }

    /// The durable projection of this state.
    pub fn persisted(&self) -> Persisted {
        Persisted {
            current_epoch: self.current_epoch,
            last_vote_epoch: self.last_vote_epoch,
            config_epoch: self.config_epoch,
            role: self.role,
            slots: self.slots.clone(),
            peers: self
                .peers
                .iter()
                .map(|p| PersistedPeer {
                    role: p.role,
                    config_epoch: p.config_epoch,
                    heard: p.heard,
                })
                .collect(),
        }
    }

    /// Whether the durable projections of two states are equal (without building them).
    pub fn durable_eq(&self, other: &NodeState) -> bool {
        self.current_epoch == other.current_epoch
            && self.last_vote_epoch == other.last_vote_epoch
            && self.config_epoch == other.config_epoch
            && self.role == other.role
            && self.slots == other.slots
            && self.peers.len() == other.peers.len()
            && self.peers.iter().zip(&other.peers).all(|(a, b)| {
                a.role == b.role && a.config_epoch == b.config_epoch && a.heard == b.heard
            })
    }

    /// Records how far this node's data has come (its replication offset), which its header
    /// advertises and the replica rank compares (specs/protocol.md §6, §11.1). An input from the
    /// runtime, as time is: the checker never calls it, so every offset in the model is 0
    /// (specs/protocol.md §8.12 says why that loses no behaviour).
    pub fn note_replication_offset(&mut self, offset: u64) {
        if let Some(me) = self.peers.get_mut(self.me.index()) {
            me.repl_offset = offset;
        }
    }

    /// This node's view of `node`, if `node` is in the layout.
    #[inline]
    pub fn peer(&self, node: NodeId) -> Option<&PeerView> {
        self.peers.get(node.index())
    }

    /// Whether `node` is a master that serves at least one slot in this node's view: only such
    /// masters' failure reports and votes count (Valkey #634, specs/background.md §R2.2, §R3.1).
    #[inline]
    pub fn is_voting_master(&self, node: NodeId) -> bool {
        if node == self.me {
            return self.role == Role::Master && self.slots.owns_any(node);
        }
        self.peer(node).is_some_and(|p| p.role == Role::Master) && self.slots.owns_any(node)
    }

    /// The master of this node's shard: itself if a master, else the node it replicates.
    pub fn shard_master(&self) -> NodeId {
        self.role.master().unwrap_or(self.me)
    }

    /// configEpoch this node advertises: its own as a master, its master's as a replica.
    pub fn advertised_config_epoch(&self) -> Epoch {
        match self.role {
            Role::Master => self.config_epoch,
            Role::Replica { of } => self.peer(of).map(|p| p.config_epoch).unwrap_or_default(),
        }
    }

    /// configEpoch of the owner of `node`'s binding, as this node knows it (own epoch for self).
    #[inline]
    pub fn epoch_of(&self, node: NodeId) -> Epoch {
        if node == self.me {
            self.config_epoch
        } else {
            self.peer(node).map(|p| p.config_epoch).unwrap_or_default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::InitialEpochs;

    #[test]
    fn a_stored_state_fits_only_its_own_layout() {
        let three_by_one = Layout::grid(3, 1, 16384, InitialEpochs::Distinct).expect("valid");
        let p = NodeState::fresh(&three_by_one, NodeId(4)).persisted();
        assert_eq!(p.fits(&three_by_one), Ok(()));
        let three = Layout::grid(3, 0, 16384, InitialEpochs::Distinct).expect("valid");
        assert_eq!(
            p.fits(&three),
            Err(LayoutMismatch::Nodes {
                stored: 6,
                layout: 3
            })
        );
        let fewer_slots = Layout::grid(3, 1, 3, InitialEpochs::Distinct).expect("valid");
        assert!(matches!(
            p.fits(&fewer_slots),
            Err(LayoutMismatch::Slots { .. })
        ));
        let mut stray = p.clone();
        stray.role = Role::Replica { of: NodeId(9) };
        assert_eq!(
            stray.fits(&three_by_one),
            Err(LayoutMismatch::UnknownNode(NodeId(9)))
        );
    }

    /// The scans a real node runs on 16,384 slots agree with slot-by-slot definitions.
    #[test]
    fn slot_map_scans_agree_with_slot_by_slot_scans() {
        let mut map = SlotMap::unbound(16384);
        for slot in 0..16384u16 {
            match slot % 7 {
                0 => {}
                k => map.bind(slot, NodeId(u16::from(k > 3) + (slot / 3000))),
            }
        }
        let claims: Vec<SlotSet> = vec![
            (0..16384).collect(),
            (5000..5100).chain(9000..9001).collect(),
            [16383].into_iter().collect(),
            SlotSet::new(),
        ];
        for node in (0..8).map(NodeId) {
            let naive: SlotSet = (0..16384).filter(|&s| map.owner(s) == Some(node)).collect();
            assert_eq!(map.slots_of(node), naive);
            assert_eq!(map.owns_any(node), !naive.is_empty());
            for claimed in &claims {
                let naive_all = claimed.iter().all(|s| map.owner(s) == Some(node));
                assert_eq!(map.all_bound_to(claimed, node), naive_all);
                let wanted = |o: NodeId| o.0 >= node.0;
                let first = claimed
                    .iter()
                    .find_map(|s| map.owner(s).filter(|&o| wanted(o)));
                assert_eq!(map.first_owner_among(claimed, wanted), first);
            }
        }
        // Long runs, as a real cluster's: whole chunks of one owner, runs ending mid-chunk, and
        // a last chunk of 100 slots that is one run.
        let mut runs = SlotMap::unbound(16384 + 100);
        for slot in 0..16484u16 {
            if !(7000..7010).contains(&slot) {
                runs.bind(slot, NodeId(slot / 5461));
            }
        }
        for node in (0..5).map(NodeId) {
            let naive: SlotSet = (0..16484)
                .filter(|&s| runs.owner(s) == Some(node))
                .collect();
            assert_eq!(runs.slots_of(node), naive);
        }
        let mut small = SlotMap::unbound(3);
        small.bind(1, NodeId(0));
        assert_eq!(
            format!("{small:?}"),
            format!("SlotMap({:?})", [None, Some(NodeId(0)), None])
        );
        let bytes = postcard::to_allocvec(&map).expect("encodes");
        let as_options: Vec<Option<NodeId>> = postcard::from_bytes(&bytes).expect("decodes");
        assert_eq!(as_options.len(), 16384);
        assert_eq!(postcard::from_bytes::<SlotMap>(&bytes).ok(), Some(map));
    }
}
