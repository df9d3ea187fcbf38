//! Symmetry reduction over interchangeable shards and over the replicas of one master
//! (specs/protocol.md §8.5).
//!
//! Replicas that follow the same master and have the same flags start identical up to their ids; so
//! do whole shards (master, replicas, slots, creation configEpoch) in a layout whose shards all
//! have one shape. The protocol treats ids as names, compares configEpochs only within one shard's
//! lineage or against epochs above every creation epoch, and keeps nodes in their shard — with one
//! exception, below. Renaming therefore maps behaviours to behaviours, and the checker needs to
//! explore only one state of each set of renamings. stateright's own `Representative` for actor
//! models does not rename ids inside timers (specs/background.md §S1.6), and this model has
//! per-peer timers; so this module renames *everywhere* a state holds an id, a slot or a creation
//! epoch: node states and their per-peer tables, the state files, the timers, the messages in
//! flight and the history the properties read.
//!
//! The exception is the configEpoch collision rule (§3.5): of two masters with one configEpoch,
//! the one with the smaller id moves. A renaming that changes the order of two ids tells the
//! renamings apart if those two collide. [`Ghost::asymmetric_collision`] records any such
//! collision, and property `symmetry-sound` reports it, so a run with symmetry that passes has
//! shown that the reduction was exact on it. `model/check/tests/symmetry.rs` checks, along random
//! walks, that every step commutes with every renaming.
//!
//! [`Ghost::asymmetric_collision`]: crate::ghost::Ghost::asymmetric_collision

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};

use dashmap::DashMap;

use crate::ghost::{Ghost, Violation};
use crate::hashed::{stable_hash, Hashed};
use crate::model::ClusterState;
use crate::network::{Envelope, Network};
use slotguard_protocol::bitset::{NodeSet, SlotSet};
use slotguard_protocol::ids::{Epoch, NodeId};
use slotguard_protocol::layout::{InitialRole, Layout};
use slotguard_protocol::message::{Header, Msg};
use slotguard_protocol::state::{
    Election, ManualFailover, NodeState, PeerView, Persisted, PersistedPeer, Role, SlotMap,
};
use slotguard_protocol::timer::Timer;

/// One shard of a layout as created: a master and its replicas.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Shard {
    master: NodeId,
    /// The master's replicas, grouped by flags (`no_failover`, and whether the `suspects`
    /// bound lets them be suspected), groups in order of their first member, each group in id
    /// order. Members of one group are interchangeable.
    groups: Vec<Vec<NodeId>>,
    /// The master's slots, in order.
    slots: Vec<u16>,
}

/// What a run with symmetry reduction may permute, for one layout: the replicas within each
/// group of interchangeable replicas, and, when the layout's shards all have one shape, the
/// shards themselves. Carried in every state (see [`Classes`]) because stateright takes the
/// representative function as a plain `fn` pointer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SymmetryClasses {
    shards: Vec<Shard>,
    /// Whether whole shards are interchangeable (see [`SymmetryClasses::of`]).
    shard_symmetric: bool,
    nodes: usize,
    slot_count: usize,
    /// Every renaming, in a fixed order: a renaming's position is its index into the
    /// renamed-hash caches (`check::hashed::RenamedHashes`).
    group: Vec<Permutation>,
    /// A renaming's position in `group`, by its map of node ids (which determines the rest).
    index_of: BTreeMap<Vec<NodeId>, usize>,
    /// The candidate renamings by the nodes' signatures, which decide them.
    memo: CandidateMemo,
}

/// Memo of [`SymmetryClasses::candidates`]: positions in the group, by the vector of the nodes'
/// signatures. Building the candidates took about half the time of choosing a representative,
/// and a search meets few distinct signature vectors. Not part of the classes' identity; a
/// clone starts empty.
struct CandidateMemo(DashMap<Vec<u64>, Arc<[usize]>, ahash::RandomState>);

impl Default for CandidateMemo {
    fn default() -> Self {
        CandidateMemo(DashMap::with_hasher(crate::hashed::stable_hasher()))
    }
}

/// Entries after which the memo starts afresh (each is a few dozen bytes).
const CANDIDATE_MEMO_LIMIT: usize = 1 << 16;

impl Clone for CandidateMemo {
    fn clone(&self) -> Self {
        CandidateMemo::default()
    }
}
impl PartialEq for CandidateMemo {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}
impl Eq for CandidateMemo {}
impl fmt::Debug for CandidateMemo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CandidateMemo")
    }
}

impl SymmetryClasses {
    /// The classes of `layout`.
    ///
    /// Shards are interchangeable when every master owns slots, as many as every other, has
    /// the same flags, and configEpoch `k + 1` where k is its position among the masters (the
    /// distinct creation epochs of `redis-cli --cluster create`), and every shard has replica
    /// groups of one shape. A renaming of shards then also renames slots (shard to shard, in
    /// order) and those creation epochs (specs/protocol.md §8.5 argues why that is sound).
    ///
    /// `suspects` is the model's bound on which nodes may be suspected (`None`: any node). It
    /// is part of the model, so a renaming must map it onto itself: a suspectable node and one
    /// that is not are never interchangeable, and it counts among the flags above.
    pub fn of(layout: &Layout, suspects: Option<&NodeSet>) -> SymmetryClasses {
        let suspectable = |id: NodeId| suspects.is_none_or(|s| s.contains(id));
        let mut shards: Vec<Shard> = Vec::new();
        let mut flags_ok = true;
        let mut master_flags = Vec::new();
        for id in layout.ids() {
            let Some(spec) = layout.spec(id) else {
                continue;
            };
            match &spec.role {
                InitialRole::Master { slots } => {
                    let position = shards.len() as u64;
                    if spec.config_epoch != Epoch(position + 1) || slots.is_empty() {
                        flags_ok = false;
                    }
                    master_flags.push((spec.no_failover, suspectable(id)));
                    shards.push(Shard {
                        master: id,
                        groups: Vec::new(),
                        slots: slots.iter().collect(),
                    });
                }
                InitialRole::Replica { .. } => {
                    if spec.config_epoch != Epoch(0) {
                        flags_ok = false;
                    }
                }
            }
        }
        // Replica groups (replicas are validated to follow masters, which are all listed now).
        let mut group_flags: Vec<Vec<(bool, bool)>> = vec![Vec::new(); shards.len()];
        for id in layout.ids() {
            let Some(spec) = layout.spec(id) else {
                continue;
            };
            let InitialRole::Replica { of } = spec.role else {
                continue;
            };
            let Some(k) = shards.iter().position(|s| s.master == of) else {
                continue;
            };
            let flags = (spec.no_failover, suspectable(id));
            match group_flags[k].iter().position(|&f| f == flags) {
                Some(g) => shards[k].groups[g].push(id),
                None => {
                    group_flags[k].push(flags);
                    shards[k].groups.push(vec![id]);
                }
            }
        }
        let shape = |k: usize| -> Vec<((bool, bool), usize)> {
            group_flags[k]
                .iter()
                .zip(&shards[k].groups)
                .map(|(&f, g)| (f, g.len()))
                .collect()
        };
        let shard_symmetric = flags_ok
            && shards.len() > 1
            && (1..shards.len()).all(|k| {
                shape(k) == shape(0)
                    && shards[k].slots.len() == shards[0].slots.len()
                    && master_flags[k] == master_flags[0]
            });
        let mut classes = SymmetryClasses {
            shards,
            shard_symmetric,
            nodes: layout.len(),
            slot_count: layout.slot_count(),
            group: Vec::new(),
            index_of: BTreeMap::new(),
            memo: CandidateMemo::default(),
        };
        let mut group = classes.permutations(None);
        for (i, p) in group.iter_mut().enumerate() {
            p.index = i;
            classes.index_of.insert(p.map.clone(), i);
        }
        classes.group = group;
        classes
    }

    /// Whether there is anything to permute.
    pub fn is_trivial(&self) -> bool {
        !self.shard_symmetric && self.groups().is_empty()
    }

    /// The groups of interchangeable replicas (two or more replicas of one master with equal
    /// flags).
    pub fn groups(&self) -> Vec<Vec<NodeId>> {
        self.shards
            .iter()
            .flat_map(|s| s.groups.iter().filter(|g| g.len() > 1).cloned())
            .collect()
    }

    /// Whether whole shards (master, replicas, slots, creation epoch) are interchangeable.
    pub fn shards_interchangeable(&self) -> bool {
        self.shard_symmetric
    }

    /// Whether some renaming this reduction uses changes the order of the ids of `a` and `b`:
    /// then the configEpoch collision rule, which moves the smaller id, tells the renamings
    /// apart. With interchangeable shards, that is any two distinct nodes.
    pub fn interchangeable(&self, a: NodeId, b: NodeId) -> bool {
        a != b
            && (self.shard_symmetric
                || self
                    .groups()
                    .iter()
                    .any(|g| g.contains(&a) && g.contains(&b)))
    }

    /// The renamings a representative is chosen among: those that give the shards' ids (if
    /// shards are interchangeable) and each replica group's ids to their members in the order
    /// of an id-free signature ([`signature`]), every order of members with equal signatures
    /// included. Signatures are the same in every renaming of the state, so this set of
    /// renamed states is the same for every member of an orbit, and usually has one element.
    /// Returned as positions in [`SymmetryClasses::group`].
    fn candidates(&self, state: &ClusterState) -> Arc<[usize]> {
        let signatures = self.signatures(state);
        if let Some(known) = self.memo.0.get(&signatures) {
            return Arc::clone(&known);
        }
        let candidates: Arc<[usize]> = self
            .permutations(Some(&signatures))
            .iter()
            .map(|p| self.index_of.get(&p.map).copied().unwrap_or_default())
            .collect();
        if self.memo.0.len() >= CANDIDATE_MEMO_LIMIT {
            self.memo.0.clear();
        }
        self.memo.0.insert(signatures, Arc::clone(&candidates));
        candidates
    }

    /// Every node's [`signature`] in `state`, by node id.
    fn signatures(&self, state: &ClusterState) -> Vec<u64> {
        let mut traffic = vec![(0usize, 0usize); self.nodes];
        for env in state.network.iter() {
            if let Some(t) = traffic.get_mut(env.src.index()) {
                t.0 += 1;
            }
            if let Some(t) = traffic.get_mut(env.dst.index()) {
                t.1 += 1;
            }
        }
        let initial_epochs = self.initial_epochs();
        (0..self.nodes)
            .map(|n| signature(state, NodeId(n as u16), traffic[n], initial_epochs))
            .collect()
    }

    /// How many creation epochs renamings permute (0 when shards are not permuted).
    fn initial_epochs(&self) -> u64 {
        if self.shard_symmetric {
            self.shards.len() as u64
        } else {
            0
        }
    }

    /// Every state this reduction treats as `state` renamed, `state` included: the images of
    /// `state` under every renaming of shards (if interchangeable) and replica groups. For
    /// tests that check the protocol commutes with renaming.
    pub fn renamings(&self, state: &ClusterState) -> Vec<ClusterState> {
        self.group.iter().map(|p| p.apply(state)).collect()
    }

    /// Renaming `i` of [`SymmetryClasses::renamings`], alone.
    pub fn renaming(&self, state: &ClusterState, i: usize) -> Option<ClusterState> {
        self.group.get(i).map(|p| p.apply(state))
    }

    /// The renamings ordered by the nodes' signatures in a state ([`SymmetryClasses::candidates`]),
    /// or, without them, all of them.
    fn permutations(&self, signatures: Option<&[u64]>) -> Vec<Permutation> {
        let initial_epochs = self.initial_epochs();
        let sig = |n: NodeId| {
            signatures
                .and_then(|s| s.get(n.index()).copied())
                .unwrap_or(0)
        };
        // Which source shard takes each shard's ids.
        let shard_orders: Vec<Vec<usize>> = if self.shard_symmetric {
            let keyed: Vec<(u64, usize)> = self
                .shards
                .iter()
                .enumerate()
                .map(|(k, shard)| {
                    let groups: Vec<Vec<u64>> = shard
                        .groups
                        .iter()
                        .map(|g| {
                            let mut sigs: Vec<u64> = g.iter().map(|&n| sig(n)).collect();
                            sigs.sort();
                            sigs
                        })
                        .collect();
                    (stable_hash(&(sig(shard.master), groups)), k)
                })
                .collect();
            orders_by_key(keyed)
        } else {
            vec![(0..self.shards.len()).collect()]
        };
        let mut all = Vec::new();
        for order in shard_orders {
            let mut partial = vec![Permutation::identity(
                self.nodes,
                if self.shard_symmetric {
                    self.slot_count
                } else {
                    0
                },
                initial_epochs as usize,
            )];
            for (to_k, &from_k) in order.iter().enumerate() {
                let (from, to) = (&self.shards[from_k], &self.shards[to_k]);
                for p in &mut partial {
                    p.map[from.master.index()] = to.master;
                    for (&a, &b) in from.slots.iter().zip(&to.slots) {
                        if let Some(x) = p.slots.get_mut(usize::from(a)) {
                            *x = b;
                        }
                    }
                    if let Some(e) = p.epochs.get_mut(from_k) {
                        *e = Epoch(to_k as u64 + 1);
                    }
                }
                for (from_g, to_g) in from.groups.iter().zip(&to.groups) {
                    let orders = orders_by_key(from_g.iter().map(|&n| (sig(n), n)).collect());
                    let mut next = Vec::with_capacity(partial.len() * orders.len());
                    for base in &partial {
                        for members in &orders {
                            // The i-th member in signature order takes the group's i-th id.
                            let mut p = base.clone();
                            for (member, id) in members.iter().zip(to_g) {
                                p.map[member.index()] = *id;
                            }
                            next.push(p);
                        }
                    }
                    partial = next;
                }
            }
            all.extend(partial);
        }
        all
    }
}

/// What `node` is in `state`, without any node id, slot or creation epoch: equal for a node
/// and its image in every renaming of the state. Only orders the members of a group; members
/// with equal signatures are tried in every order. `traffic` is the number of envelopes in
/// flight from and to the node; `initial_epochs` the number of creation epochs that renamings
/// permute (0 when shards are not permuted).
fn signature(
    state: &ClusterState,
    node: NodeId,
    traffic: (usize, usize),
    initial_epochs: u64,
) -> u64 {
    let n = node.index();
    let s = &*state.nodes[n];
    let election = match &s.election {
        Election::Idle => (0u8, Epoch(0), 0usize),
        Election::Scheduled => (1, Epoch(0), 0),
        Election::Running { epoch, votes, .. } => (2, *epoch, votes.len()),
    };
    let config_epoch = if (1..=initial_epochs).contains(&s.config_epoch.0) {
        Epoch(1)
    } else {
        s.config_epoch
    };
    stable_hash(&(
        s.current_epoch,
        config_epoch,
        s.last_vote_epoch,
        matches!(s.role, Role::Master),
        s.slots.slots_of(node).len(),
        election,
        state.crashed[n],
        state.timers[n].len(),
        traffic,
    ))
}

/// Every order of the items sorted by key in which items with equal keys appear in every
/// order among themselves.
fn orders_by_key<T: Copy + Ord>(mut keyed: Vec<(u64, T)>) -> Vec<Vec<T>> {
    keyed.sort();
    let mut orders: Vec<Vec<T>> = vec![Vec::new()];
    let mut i = 0;
    while i < keyed.len() {
        let mut j = i + 1;
        while j < keyed.len() && keyed[j].0 == keyed[i].0 {
            j += 1;
        }
        let tied: Vec<T> = keyed[i..j].iter().map(|&(_, t)| t).collect();
        let block_orders = orderings(&tied);
        orders = orders
            .iter()
            .flat_map(|prefix| {
                block_orders.iter().map(move |b| {
                    let mut o = prefix.clone();
                    o.extend(b);
                    o
                })
            })
            .collect();
        i = j;
    }
    orders
}

/// All orderings of `items` (small: one layout's shards or one master's replicas).
fn orderings<T: Copy>(items: &[T]) -> Vec<Vec<T>> {
    if items.len() <= 1 {
        return vec![items.to_vec()];
    }
    let mut out = Vec::new();
    for i in 0..items.len() {
        let mut rest = items.to_vec();
        let first = rest.remove(i);
        for mut tail in orderings(&rest) {
            tail.insert(0, first);
            out.push(tail);
        }
    }
    out
}

/// The symmetry classes as a state carries them, with the representative computed for this
/// very state: not part of the state's identity (equal and hashed as nothing).
///
/// The representative is kept here because two of stateright's callbacks need it for every
/// generated state: `within_boundary`, where the crash-twin memo keys states by their
/// representative (check/crash_twins.rs), and the symmetry hook, which stateright takes as a
/// plain `fn` pointer. Computing it twice cost a fifth of a symmetric run. Kept in the state
/// that both receive, whichever runs first computes it and the other finds it, in any order
/// and on any thread; a clone (a successor being built) starts without it.
#[derive(Default)]
pub struct Classes {
    classes: Option<Arc<SymmetryClasses>>,
    /// [`representative_fingerprint`] of the state that holds this, with that state's
    /// fingerprint (a guard: the state is not changed after it is computed).
    representative: Mutex<Option<(u64, Box<ClusterState>)>>,
}

impl Classes {
    /// The classes a run with `classes` (`None`: no symmetry reduction) gives its states.
    pub fn new(classes: Option<Arc<SymmetryClasses>>) -> Classes {
        Classes {
            classes,
            representative: Mutex::new(None),
        }
    }

    /// The classes, when the run uses symmetry reduction.
    pub fn classes(&self) -> Option<&Arc<SymmetryClasses>> {
        self.classes.as_ref()
    }

    /// Keeps `representative` as that of the state with `fingerprint` that holds these classes.
    fn keep(&self, fingerprint: u64, representative: ClusterState) {
        if let Ok(mut kept) = self.representative.lock() {
            *kept = Some((fingerprint, Box::new(representative)));
        }
    }

    /// Takes the representative kept for the state with `fingerprint`, if any.
    fn take(&self, fingerprint: u64) -> Option<ClusterState> {
        let kept = self.representative.lock().ok()?.take()?;
        (kept.0 == fingerprint).then_some(*kept.1)
    }
}

impl Clone for Classes {
    fn clone(&self) -> Classes {
        Classes::new(self.classes.clone())
    }
}

impl PartialEq for Classes {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}
impl Eq for Classes {}
impl Hash for Classes {
    fn hash<H: Hasher>(&self, _: &mut H) {}
}
impl fmt::Debug for Classes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.classes {
            Some(c) if c.shard_symmetric => {
                write!(f, "symmetry over shards and replicas {:?}", c.groups())
            }
            Some(c) => write!(f, "symmetry over replicas {:?}", c.groups()),
            None => write!(f, "no symmetry"),
        }
    }
}

/// A renaming of node ids and, when shards are permuted, of slots and creation epochs. Ids,
/// slots and epochs outside the tables (none occur in the protocol as specified) are left
/// alone.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Permutation {
    /// Position in [`SymmetryClasses::group`] (set once the renaming is known).
    index: usize,
    map: Vec<NodeId>,
    /// `slots[s]` is slot s's new number; empty when shards are not permuted.
    slots: Vec<u16>,
    /// `epochs[k]` is the new value of creation epoch `k + 1`; empty when shards are not
    /// permuted.
    epochs: Vec<Epoch>,
}

impl Permutation {
    fn identity(nodes: usize, slots: usize, epochs: usize) -> Permutation {
        Permutation {
            index: 0,
            map: (0..nodes).map(|i| NodeId(i as u16)).collect(),
            slots: (0..slots).map(|s| s as u16).collect(),
            epochs: (0..epochs).map(|k| Epoch(k as u64 + 1)).collect(),
        }
    }

    fn is_identity(&self) -> bool {
        self.map.iter().enumerate().all(|(i, n)| n.index() == i)
            && self
                .slots
                .iter()
                .enumerate()
                .all(|(i, &s)| usize::from(s) == i)
            && self
                .epochs
                .iter()
                .enumerate()
                .all(|(k, e)| e.0 == k as u64 + 1)
    }

    fn id(&self, n: NodeId) -> NodeId {
        self.map.get(n.index()).copied().unwrap_or(n)
    }

    fn slot(&self, s: u16) -> u16 {
        self.slots.get(usize::from(s)).copied().unwrap_or(s)
    }

    fn slot_set(&self, s: &SlotSet) -> SlotSet {
        s.iter().map(|x| self.slot(x)).collect()
    }

    /// A value that is a configEpoch (a node's own, one it knows of another, one a message
    /// carries): creation epochs are renamed with their shards. currentEpochs, vote epochs
    /// and election epochs are never renamed: they are not creation epochs of anyone, and
    /// the protocol compares them with configEpochs only as orders that every creation epoch
    /// satisfies alike (specs/protocol.md §8.5).
    fn config_epoch(&self, e: Epoch) -> Epoch {
        match usize::try_from(e.0) {
            Ok(v) if v >= 1 => self.epochs.get(v - 1).copied().unwrap_or(e),
            _ => e,
        }
    }

    fn set(&self, s: &NodeSet) -> NodeSet {
        s.iter().map(|n| self.id(n)).collect()
    }

    /// `out[π(i)] = f(v[i])`, for a table indexed by node.
    fn reindex<T, U>(&self, v: &[T], f: impl Fn(&T) -> U) -> Vec<U> {
        let mut out: Vec<Option<U>> = (0..v.len()).map(|_| None).collect();
        for (i, x) in v.iter().enumerate() {
            let to = self.id(NodeId(i as u16)).index();
            if let Some(slot) = out.get_mut(to) {
                *slot = Some(f(x));
            }
        }
        // The map is a bijection of the layout's ids (built by `permutations`), so every slot
        // was filled.
        out.into_iter()
            .map(|x| x.expect("a permutation of the layout's ids"))
            .collect()
    }

    fn role(&self, r: Role) -> Role {
        match r {
            Role::Master => Role::Master,
            Role::Replica { of } => Role::Replica { of: self.id(of) },
        }
    }

    fn slots(&self, m: &SlotMap) -> SlotMap {
        let mut out = SlotMap::unbound(m.len());
        for (slot, owner) in m.iter() {
            if let Some(o) = owner {
                out.bind(self.slot(slot), self.id(o));
            }
        }
        out
    }

    fn peer(&self, p: &PeerView) -> PeerView {
        PeerView {
            role: self.role(p.role),
            reports: self.set(&p.reports),
            config_epoch: self.config_epoch(p.config_epoch),
            heard: self.config_epoch(p.heard),
            ..p.clone()
        }
    }

    fn node(&self, s: &NodeState) -> NodeState {
        NodeState {
            me: self.id(s.me),
            role: self.role(s.role),
            config_epoch: self.config_epoch(s.config_epoch),
            slots: self.slots(&s.slots),
            peers: self.reindex(&s.peers, |p| self.peer(p)),
            election: match &s.election {
                Election::Running {
                    epoch,
                    votes,
                    forced,
                } => Election::Running {
                    epoch: *epoch,
                    votes: self.set(votes),
                    forced: *forced,
                },
                other => other.clone(),
            },
            manual: match s.manual {
                ManualFailover::Paused { replica, announced } => ManualFailover::Paused {
                    replica: self.id(replica),
                    announced,
                },
                other => other,
            },
            data: {
                let mut data = slotguard_protocol::durability::Data {
                    confirmed: Default::default(),
                    ..s.data.clone()
                };
                for (i, &len) in s.data.confirmed.iter().enumerate() {
                    data.confirm(self.id(NodeId(i as u16)), len);
                }
                data
            },
            ..s.clone()
        }
    }

    fn persisted(&self, p: &Persisted) -> Persisted {
        Persisted {
            role: self.role(p.role),
            config_epoch: self.config_epoch(p.config_epoch),
            slots: self.slots(&p.slots),
            peers: self.reindex(&p.peers, |q| PersistedPeer {
                role: self.role(q.role),
                config_epoch: self.config_epoch(q.config_epoch),
                heard: self.config_epoch(q.heard),
            }),
            ..p.clone()
        }
    }

    fn timer(&self, t: &Timer) -> Timer {
        match t {
            Timer::PeerTimeout(n) => Timer::PeerTimeout(self.id(*n)),
            Timer::ReportExpiry { target, reporter } => Timer::ReportExpiry {
                target: self.id(*target),
                reporter: self.id(*reporter),
            },
            Timer::FailUndo(n) => Timer::FailUndo(self.id(*n)),
            other => other.clone(),
        }
    }

    fn header(&self, h: &Header) -> Header {
        Header {
            master: h.master.map(|m| self.id(m)),
            config_epoch: self.config_epoch(h.config_epoch),
            slots: self.slot_set(&h.slots),
            ..h.clone()
        }
    }

    fn msg(&self, m: &Msg) -> Msg {
        match m {
            Msg::Ping(h) => Msg::Ping(self.header(h)),
            Msg::Pong(h) => Msg::Pong(self.header(h)),
            Msg::Gossip(e) => {
                let mut e = e.clone();
                e.node = self.id(e.node);
                e.config_epoch = self.config_epoch(e.config_epoch);
                Msg::Gossip(e)
            }
            Msg::Fail { node } => Msg::Fail {
                node: self.id(*node),
            },
            Msg::AuthRequest(r) => {
                let mut r = r.clone();
                r.master = self.id(r.master);
                r.master_config_epoch = self.config_epoch(r.master_config_epoch);
                r.slots = self.slot_set(&r.slots);
                Msg::AuthRequest(r)
            }
            Msg::AuthAck {
                epoch,
                candidate,
                forced,
            } => Msg::AuthAck {
                epoch: *epoch,
                candidate: self.id(*candidate),
                forced: *forced,
            },
            Msg::Update(c) => {
                let mut c = c.clone();
                c.node = self.id(c.node);
                c.config_epoch = self.config_epoch(c.config_epoch);
                c.slots = self.slot_set(&c.slots);
                Msg::Update(c)
            }
            Msg::FailoverStart => Msg::FailoverStart,
        }
    }

    fn envelope(&self, env: &Envelope) -> Envelope {
        Envelope {
            src: self.id(env.src),
            dst: self.id(env.dst),
            msg: self.msg(&env.msg),
        }
    }

    fn network(&self, n: &Network) -> Network {
        let mut out = Network::default();
        for env in n.iter() {
            out.insert(self.envelope(env));
        }
        out
    }

    fn violation(&self, v: &Violation) -> Violation {
        let mut v = v.clone();
        match &mut v {
            Violation::EpochRegressed {
                node,
                which,
                before,
                after,
            } => {
                *node = self.id(*node);
                if *which == "configEpoch" {
                    *before = self.config_epoch(*before);
                    *after = self.config_epoch(*after);
                }
            }
            Violation::BindingRegressed {
                node,
                slot,
                before,
                after,
            } => {
                *node = self.id(*node);
                *slot = self.slot(*slot);
                *before = self.config_epoch(*before);
                *after = self.config_epoch(*after);
            }
            Violation::PromotedWithoutQuorum { node, .. } => *node = self.id(*node),
            Violation::PromotedWithoutFail { node, master } => {
                *node = self.id(*node);
                *master = self.id(*master);
            }
            Violation::VoteWithoutFail { voter, candidate } => {
                *voter = self.id(*voter);
                *candidate = self.id(*candidate);
            }
            Violation::WinnerEpochMismatch { node, took, .. } => {
                *node = self.id(*node);
                *took = self.config_epoch(*took);
            }
        }
        v
    }

    fn ghost(&self, g: &Ghost) -> Ghost {
        let mut violations: Vec<Violation> =
            g.violations.iter().map(|v| self.violation(v)).collect();
        violations.sort();
        Ghost {
            suspected_by: self.reindex(&g.suspected_by, |s| self.set(s)),
            quorum_suspected: self.set(&g.quorum_suspected),
            ever_failed: self.set(&g.ever_failed),
            winners: g.winners.iter().map(|(e, s)| (*e, self.set(s))).collect(),
            grants: g
                .grants
                .iter()
                .map(|((e, voter), grants)| {
                    let mut grants = grants.clone();
                    grants.candidates = self.set(&grants.candidates);
                    ((*e, self.id(*voter)), grants)
                })
                .collect(),
            violations,
            retried: self.set(&g.retried),
            retry_won: g.retry_won,
            asymmetric_collision: g.asymmetric_collision,
            manual_failovers: g.manual_failovers,
            manual_promotion: g.manual_promotion,
            writes: g
                .writes
                .iter()
                .map(|w| crate::ghost::WriteRecord {
                    slot: self.slot(w.slot),
                    by: self.id(w.by),
                    epoch: self.config_epoch(w.epoch),
                    ..*w
                })
                .collect(),
        }
    }

    /// The whole state, renamed.
    fn apply(&self, s: &ClusterState) -> ClusterState {
        assemble(s, self.core(s), self.network(&s.network))
    }

    /// Everything but the network, renamed: what the representative is chosen by.
    fn core(&self, s: &ClusterState) -> Core {
        Core {
            nodes: self.reindex(&s.nodes, |n| Hashed::new(self.node(n))),
            crashed: self.reindex(&s.crashed, |c| *c),
            storage: self.reindex(&s.storage, |p| {
                p.as_ref().map(|p| Hashed::new(self.persisted(p)))
            }),
            timers: self.reindex(&s.timers, |t| {
                Hashed::new(t.iter().map(|t| self.timer(t)).collect::<BTreeSet<_>>())
            }),
            ghost: Hashed::new(self.ghost(&s.ghost)),
        }
    }
}

#[derive(Hash)]
struct Core {
    nodes: Vec<Hashed<NodeState>>,
    crashed: Vec<bool>,
    storage: Vec<Option<Hashed<Persisted>>>,
    timers: Vec<Hashed<BTreeSet<Timer>>>,
    ghost: Hashed<Ghost>,
}

/// The representative of `state`'s renamings: among the candidate renamings
/// ([`SymmetryClasses::candidates`]), the one whose nodes, state files, timers and history hash
/// lowest, ties broken by the set hash of the renamed network. The candidates depend only on
/// the set of renamings of `state`, so every member of that set has the same representative; a
/// hash collision between different renamings could only cost reduction, never soundness,
/// since the result is always a renaming of `state`.
pub fn representative(state: &ClusterState) -> ClusterState {
    match choose(state) {
        None => state.clone(),
        Some((p, _, _)) => p.apply(state),
    }
}

/// What stateright's symmetry hook gets: a state with the fingerprint of
/// [`representative`]`(state)`, whose network is only that fingerprint's part (its set hash and
/// size, see `Network::fingerprint_only`) and holds no envelopes. stateright uses the hook's
/// result only to fingerprint it and explores `state` itself; building the renamed network,
/// sorted, was most of the cost of a symmetric run. Tests check that both fingerprints agree.
pub fn representative_fingerprint(state: &ClusterState) -> ClusterState {
    match state.symmetry.take(stable_hash(state)) {
        Some(representative) => representative,
        None => compute_representative_fingerprint(state),
    }
}

/// [`representative_fingerprint`], also kept in `state` for the next call of it for `state`
/// (see [`Classes`]). The crash-twin memo needs the representative of every generated state in
/// `within_boundary`, and stateright's symmetry hook asks for it too (check/crash_twins.rs).
pub fn kept_representative_fingerprint(state: &ClusterState) -> ClusterState {
    let representative = compute_representative_fingerprint(state);
    state
        .symmetry
        .keep(stable_hash(state), representative.clone());
    representative
}

fn compute_representative_fingerprint(state: &ClusterState) -> ClusterState {
    match choose(state) {
        None => state.clone(),
        Some((_, core, network_hash)) => assemble(
            state,
            core,
            Network::fingerprint_only(network_hash, state.network.len()),
        ),
    }
}

/// The renaming that gives the representative, with its renamed core and network set hash;
/// `None` if that is `state` itself. The core is built from cached renamed hashes
/// ([`SymmetryClasses::renamed_core`]): it hashes like the renamed core, and holds the original
/// values.
fn choose(state: &ClusterState) -> Option<(&Permutation, Core, u64)> {
    let classes = state.symmetry.classes.as_ref()?;
    let positions = classes.candidates(state);
    let permutations = positions.iter().filter_map(|&i| classes.group.get(i));
    if let [only] = &positions[..] {
        if classes.group.get(*only).is_none_or(|p| p.is_identity()) {
            return None;
        }
    }
    let mut candidates: Vec<(u64, &Permutation, Core)> = Vec::new();
    for p in permutations {
        let core = classes.renamed_core(p, state);
        let key = stable_hash(&core);
        match candidates.first() {
            Some((best, _, _)) if key > *best => {}
            Some((best, _, _)) if key < *best => candidates = vec![(key, p, core)],
            _ => candidates.push((key, p, core)),
        }
    }
    let mut best: Option<(&Permutation, Core, u64)> = None;
    for (_, p, core) in candidates {
        let key = classes.renamed_network_hash(p, &state.network);
        if best.as_ref().is_none_or(|(.., k)| key < *k) {
            best = Some((p, core, key));
        }
    }
    best
}

impl SymmetryClasses {
    /// `p.core(state)`'s hashes without renaming what was renamed before: each component's
    /// hash under `p` comes from its cache, computed the first time any state asks for it. The
    /// components are the original values standing for their renamed hashes.
    fn renamed_core(&self, p: &Permutation, s: &ClusterState) -> Core {
        let (i, len) = (p.index, self.group.len());
        Core {
            nodes: p.reindex(&s.nodes, |n| {
                n.standing_for(n.renamed().get(i, len, || stable_hash(&p.node(n))))
            }),
            crashed: p.reindex(&s.crashed, |c| *c),
            storage: p.reindex(&s.storage, |f| {
                f.as_ref().map(|f| {
                    f.standing_for(f.renamed().get(i, len, || stable_hash(&p.persisted(f))))
                })
            }),
            timers: p.reindex(&s.timers, |t| {
                t.standing_for(t.renamed().get(i, len, || {
                    stable_hash(&t.iter().map(|t| p.timer(t)).collect::<BTreeSet<_>>())
                }))
            }),
            ghost: s.ghost.standing_for(
                s.ghost
                    .renamed()
                    .get(i, len, || stable_hash(&p.ghost(&s.ghost))),
            ),
        }
    }

    /// The set hash of `p`'s renaming of the network (a renaming maps distinct envelopes to
    /// distinct envelopes), from each envelope's cache of renamed hashes.
    fn renamed_network_hash(&self, p: &Permutation, n: &Network) -> u64 {
        let len = self.group.len();
        n.iter().fold(0u64, |h, env| {
            h.wrapping_add(
                env.renamed()
                    .get(p.index, len, || stable_hash(&p.envelope(env))),
            )
        })
    }
}

fn assemble(state: &ClusterState, core: Core, network: Network) -> ClusterState {
    ClusterState {
        nodes: core.nodes,
        crashed: core.crashed,
        storage: core.storage,
        timers: core.timers,
        network,
        crashes: state.crashes,
        suspicions: state.suspicions,
        ghost: core.ghost,
        symmetry: state.symmetry.clone(),
    }
}
