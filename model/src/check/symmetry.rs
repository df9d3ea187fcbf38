//! Symmetry reduction over the replicas of one master (specs/protocol.md §8.5).
//!
//! Replicas that follow the same master and have the same flags start identical up to their
//! ids, and the protocol treats ids as names — with one exception, below. Renaming them
//! therefore maps behaviours to behaviours, and the checker needs to explore only one state of
//! each set of renamings. stateright's own `Representative` for actor models does not rename
//! ids inside timers (stateright.md §1.6), and this model has per-peer timers; so this module
//! renames ids *everywhere* a state holds one: node states and their per-peer tables, the
//! state files, the timers, the messages in flight and the history the properties read.
//!
//! Masters are never permuted: each starts with its own slots and configEpoch.
//!
//! The exception is the configEpoch collision rule (§3.5): of two masters with one configEpoch,
//! the one with the smaller id moves. Replicas of one master have consecutive ids, so renaming
//! them keeps their order relative to every other node; only a collision *between two of them*
//! would tell the renamings apart. [`Ghost::asymmetric_collision`] records any such collision,
//! and property `symmetry-sound` reports it, so a run with symmetry that passes has shown that
//! the reduction was exact on it.
//!
//! [`Ghost::asymmetric_collision`]: crate::check::ghost::Ghost::asymmetric_collision

use std::collections::BTreeSet;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use crate::bitset::NodeSet;
use crate::check::ghost::{Ghost, Violation};
use crate::check::hashed::{stable_hash, Hashed};
use crate::check::model::ClusterState;
use crate::check::network::{Envelope, Network};
use crate::ids::{Epoch, NodeId};
use crate::layout::{InitialRole, Layout};
use crate::message::{Header, Msg};
use crate::state::{Election, NodeState, PeerView, Persisted, Role, SlotMap};
use crate::timer::Timer;

/// The groups of interchangeable nodes of a layout: replicas of one master with equal flags,
/// two or more to a group. Carried in every state (see [`Classes`]) because stateright takes the
/// representative function as a plain `fn` pointer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SymmetryClasses {
    groups: Vec<Vec<NodeId>>,
    nodes: usize,
}

impl SymmetryClasses {
    /// The classes of `layout`.
    pub fn of(layout: &Layout) -> SymmetryClasses {
        let mut groups: Vec<Vec<NodeId>> = Vec::new();
        let mut keys: Vec<(NodeId, bool)> = Vec::new();
        for id in layout.ids() {
            let Some(spec) = layout.spec(id) else {
                continue;
            };
            if let InitialRole::Replica { of } = spec.role {
                let key = (of, spec.no_failover);
                match keys.iter().position(|k| *k == key) {
                    Some(i) => groups[i].push(id),
                    None => {
                        keys.push(key);
                        groups.push(vec![id]);
                    }
                }
            }
        }
        groups.retain(|g| g.len() > 1);
        SymmetryClasses {
            groups,
            nodes: layout.len(),
        }
    }

    /// Whether there is anything to permute.
    pub fn is_trivial(&self) -> bool {
        self.groups.is_empty()
    }

    /// The groups.
    pub fn groups(&self) -> &[Vec<NodeId>] {
        &self.groups
    }

    /// Whether `a` and `b` are distinct nodes of one group.
    pub fn interchangeable(&self, a: NodeId, b: NodeId) -> bool {
        a != b && self.groups.iter().any(|g| g.contains(&a) && g.contains(&b))
    }

    /// The renamings a representative is chosen among: those that give each group's ids to
    /// its members in the order of an id-free signature ([`signature`]), every order of
    /// members with equal signatures included. The signature of a member is the same in every
    /// renaming of the state, so this set of renamed states is the same for every member of an
    /// orbit, and usually has one element.
    fn candidates(&self, state: &ClusterState) -> Vec<Permutation> {
        let identity: Vec<NodeId> = (0..self.nodes).map(|i| NodeId(i as u16)).collect();
        let mut traffic = vec![(0usize, 0usize); state.nodes.len()];
        for env in state.network.iter() {
            if let Some(t) = traffic.get_mut(env.src.index()) {
                t.0 += 1;
            }
            if let Some(t) = traffic.get_mut(env.dst.index()) {
                t.1 += 1;
            }
        }
        let mut all = vec![identity];
        for group in &self.groups {
            let mut members: Vec<(u64, NodeId)> = group
                .iter()
                .map(|&n| (signature(state, n, traffic[n.index()]), n))
                .collect();
            members.sort();
            // Orders of the members: sorted by signature, ties in every order.
            let mut orders: Vec<Vec<NodeId>> = vec![Vec::new()];
            let mut i = 0;
            while i < members.len() {
                let mut j = i + 1;
                while j < members.len() && members[j].0 == members[i].0 {
                    j += 1;
                }
                let tied: Vec<NodeId> = members[i..j].iter().map(|&(_, n)| n).collect();
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
            let mut next = Vec::with_capacity(all.len() * orders.len());
            for base in &all {
                for order in &orders {
                    // The i-th member in signature order takes the group's i-th id.
                    let mut map = base.clone();
                    for (member, id) in order.iter().zip(group) {
                        map[member.index()] = *id;
                    }
                    next.push(map);
                }
            }
            all = next;
        }
        all.into_iter().map(|map| Permutation { map }).collect()
    }
}

/// What `node` is in `state`, without any node id: equal for a node and its image in every
/// renaming of the state. Only orders the members of a group; two members with equal
/// signatures are tried in both orders.
/// `traffic` is the number of envelopes in flight from and to the node.
fn signature(state: &ClusterState, node: NodeId, traffic: (usize, usize)) -> u64 {
    let n = node.index();
    let s = &*state.nodes[n];
    let election = match &s.election {
        Election::Idle => (0u8, Epoch(0), 0usize),
        Election::Scheduled => (1, Epoch(0), 0),
        Election::Running { epoch, votes } => (2, *epoch, votes.len()),
    };
    stable_hash(&(
        s.current_epoch,
        s.config_epoch,
        s.last_vote_epoch,
        s.incarnation,
        matches!(s.role, Role::Master),
        s.slots.slots_of(node).len(),
        election,
        state.crashed[n],
        state.timers[n].len(),
        traffic,
    ))
}

/// All orderings of `items` (groups are small: one master's replicas).
fn orderings(items: &[NodeId]) -> Vec<Vec<NodeId>> {
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

/// The symmetry classes as a state carries them: not part of the state's identity (equal and
/// hashed as nothing), only read by [`representative`].
#[derive(Clone, Default)]
pub struct Classes(pub Option<Arc<SymmetryClasses>>);

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
        match &self.0 {
            Some(c) => write!(f, "symmetry over {:?}", c.groups),
            None => write!(f, "no symmetry"),
        }
    }
}

/// A renaming of node ids. Ids outside the layout (none occur in the protocol as specified)
/// are left alone.
struct Permutation {
    map: Vec<NodeId>,
}

impl Permutation {
    fn is_identity(&self) -> bool {
        self.map.iter().enumerate().all(|(i, n)| n.index() == i)
    }

    fn id(&self, n: NodeId) -> NodeId {
        self.map.get(n.index()).copied().unwrap_or(n)
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
                out.bind(slot, self.id(o));
            }
        }
        out
    }

    fn peer(&self, p: &PeerView) -> PeerView {
        PeerView {
            role: self.role(p.role),
            reports: self.set(&p.reports),
            ..p.clone()
        }
    }

    fn node(&self, s: &NodeState) -> NodeState {
        NodeState {
            me: self.id(s.me),
            role: self.role(s.role),
            slots: self.slots(&s.slots),
            peers: self.reindex(&s.peers, |p| self.peer(p)),
            election: match &s.election {
                Election::Running { epoch, votes } => Election::Running {
                    epoch: *epoch,
                    votes: self.set(votes),
                },
                other => other.clone(),
            },
            ..s.clone()
        }
    }

    fn persisted(&self, p: &Persisted) -> Persisted {
        Persisted {
            role: self.role(p.role),
            slots: self.slots(&p.slots),
            peers: self.reindex(&p.peers, |&(role, epoch)| (self.role(role), epoch)),
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
                Msg::Gossip(e)
            }
            Msg::Fail { node } => Msg::Fail {
                node: self.id(*node),
            },
            Msg::AuthRequest(r) => {
                let mut r = r.clone();
                r.master = self.id(r.master);
                Msg::AuthRequest(r)
            }
            Msg::AuthAck { epoch } => Msg::AuthAck { epoch: *epoch },
            Msg::Update(c) => {
                let mut c = c.clone();
                c.node = self.id(c.node);
                Msg::Update(c)
            }
        }
    }

    fn network(&self, n: &Network) -> Network {
        let mut out = Network::default();
        for env in n.iter() {
            out.insert(Envelope {
                src: self.id(env.src),
                dst: self.id(env.dst),
                msg: self.msg(&env.msg),
            });
        }
        out
    }

    fn violation(&self, v: &Violation) -> Violation {
        let mut v = v.clone();
        match &mut v {
            Violation::EpochRegressed { node, .. }
            | Violation::BindingRegressed { node, .. }
            | Violation::PromotedWithoutQuorum { node, .. } => *node = self.id(*node),
            Violation::PromotedWithoutFail { node, master } => {
                *node = self.id(*node);
                *master = self.id(*master);
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
            asymmetric_collision: g.asymmetric_collision,
        }
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

/// The state stateright fingerprints in place of `state`: among the candidate renamings
/// ([`SymmetryClasses::candidates`]), the one whose nodes, state files, timers and history hash
/// lowest, ties broken by the hash of the renamed network (costly to rename, so only for the
/// tied ones). The candidates depend only on the set of renamings of `state`, so every member
/// of that set has the same representative; a hash collision between different renamings could
/// only cost reduction, never soundness, since the result is always a renaming of `state`.
pub fn representative(state: &ClusterState) -> ClusterState {
    let Some(classes) = &state.symmetry.0 else {
        return state.clone();
    };
    let mut candidates: Vec<(u64, Permutation, Core)> = Vec::new();
    let permutations = classes.candidates(state);
    if let [only] = permutations.as_slice() {
        if only.is_identity() {
            return state.clone();
        }
    }
    for p in permutations {
        let core = p.core(state);
        let key = stable_hash(&core);
        match candidates.first() {
            Some((best, _, _)) if key > *best => {}
            Some((best, _, _)) if key < *best => candidates = vec![(key, p, core)],
            _ => candidates.push((key, p, core)),
        }
    }
    let mut best: Option<(u64, Network, Permutation, Core)> = None;
    for (_, p, core) in candidates {
        let network = p.network(&state.network);
        let key = stable_hash(&network);
        if best.as_ref().is_none_or(|(k, ..)| key < *k) {
            best = Some((key, network, p, core));
        }
    }
    let Some((_, network, _, core)) = best else {
        return state.clone();
    };
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
