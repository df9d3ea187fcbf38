//! [`ClusterModel`]: a `stateright::Model` that hosts one [`ClusterNode`] actor per node and
//! interprets its commands — the same commands, in the same order, that the node runtime
//! executes.
//!
//! Why not stateright's `ActorModel`? It can run this actor, but four of its behaviours cost a
//! faithful failover model dearly (specs/protocol.md §8):
//! - its duplicating network stores the last delivered envelope in the state (stateright #74),
//!   which only splits identical system states, since no-op deliveries are pruned anyway;
//! - `Recover` is always enabled, so the number of crashes cannot be bounded except by a
//!   boundary on actor state;
//! - its symmetry support does not rewrite ids inside timers (specs/background.md §S1.6);
//! - it offers no hook to observe steps, which the history variables of the properties need.
//!
//! The network is UDP-like: unordered and duplicating (a sent envelope stays deliverable until
//! dropped), and lossy when asked. Without `lossy`, no envelope is ever dropped; that loses no
//! behaviour of the nodes, because dropping a message only removes a possible delivery, and
//! every property reads node states and history, never the network (the argument is in
//! specs/protocol.md §8.2, and a test compares both on the tiny configuration).

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use stateright::actor::{Actor, Id, Out};
use stateright::{Model, Property};

use crate::commands::{self, Effects};
use crate::crash_twins::CrashTwins;
use crate::ghost::{Ghost, Observed};
use crate::hashed::Hashed;
pub use crate::network::{Envelope, Network, RewriteMemo, Shared};
use crate::noop_cache::{DeliveryKey, NoopCache};
use crate::properties;
use crate::reductions::{Reduction, Reductions};
use crate::repeats::Repeats;
use crate::residual::{residual, residual_inputs_changed, Outlook, Residual};
use crate::settle_memo::SettleMemo;
use crate::symmetry::{Classes, SymmetryClasses};
use slotguard_protocol::actor::ClusterNode;
use slotguard_protocol::ids::{Epoch, NodeId};
use slotguard_protocol::message::Msg;
use slotguard_protocol::protocol::failure::pong_clears;
use slotguard_protocol::protocol::heartbeat::header;
use slotguard_protocol::protocol::manual::FailoverMode;
use slotguard_protocol::state::Role;
use slotguard_protocol::state::{NodeState, Persisted};
use slotguard_protocol::timer::Timer;

/// One state of the whole cluster as the checker sees it.
#[derive(Clone, PartialEq, Eq)]
pub struct ClusterState {
    /// Every node's state; a crashed node keeps the state it crashed with (read only by
    /// properties that hold for the past too).
    pub nodes: Vec<Hashed<NodeState>>,
    /// Which nodes are down.
    pub crashed: Vec<bool>,
    /// What each node last saved (its state file).
    pub storage: Vec<Option<Hashed<Persisted>>>,
    /// Armed timers, per node.
    pub timers: Vec<Hashed<BTreeSet<Timer>>>,
    /// Messages in flight.
    pub network: Network,
    /// Crashes so far (bounded by the configuration).
    pub crashes: u8,
    /// PFAIL events (a peer-timeout that fired) so far (bounded by the configuration).
    pub suspicions: u8,
    /// History variables the properties read.
    pub ghost: Hashed<Ghost>,
    /// The symmetry classes when the run uses symmetry reduction; not part of the state's
    /// identity (check/symmetry.rs).
    pub symmetry: Classes,
}

/// A state's fingerprint is made of its parts' own hashes (each part carries its hash,
/// `check/hashed.rs`), so it can be computed for a successor from the parts a step changes
/// before the successor is built (`ClusterModel::finish_step`). Both go through [`Parts`].
impl Hash for ClusterState {
    fn hash<H: Hasher>(&self, h: &mut H) {
        self.write_with_crashes(h, self.crashes);
    }
}

impl ClusterState {
    /// Writes this state's fingerprint, with `crashes` for its count of crashes.
    fn write_with_crashes<H: Hasher>(&self, h: &mut H, crashes: u8) {
        Parts {
            node: &|i| self.nodes[i].hash_value(),
            crashed: &self.crashed,
            storage: &|i| self.storage[i].as_ref().map(|s| s.hash_value()),
            timers: &|i| self.timers[i].hash_value(),
            network: (self.network.set_hash(), self.network.len()),
            crashes,
            suspicions: self.suspicions,
            ghost: self.ghost.hash_value(),
        }
        .write(h);
    }

    /// The fingerprint this state would have with `crashes` for its count of crashes (no copy).
    pub(crate) fn fingerprint_with_crashes(&self, crashes: u8) -> u64 {
        let mut h = crate::hashed::stable_hasher().build_hasher();
        self.write_with_crashes(&mut h, crashes);
        h.finish()
    }
}

/// The hashes a state's fingerprint is made of (the symmetry classes are not part of it).
struct Parts<'a> {
    node: &'a dyn Fn(usize) -> u64,
    crashed: &'a [bool],
    storage: &'a dyn Fn(usize) -> Option<u64>,
    timers: &'a dyn Fn(usize) -> u64,
    /// The network's set hash and length.
    network: (u64, usize),
    crashes: u8,
    suspicions: u8,
    ghost: u64,
}

impl Parts<'_> {
    fn write<H: Hasher>(&self, h: &mut H) {
        let n = self.crashed.len();
        for i in 0..n {
            h.write_u64((self.node)(i));
        }
        for &c in self.crashed {
            h.write_u8(c as u8);
        }
        for i in 0..n {
            match (self.storage)(i) {
                None => h.write_u8(0),
                Some(hash) => {
                    h.write_u8(1);
                    h.write_u64(hash);
                }
            }
        }
        for i in 0..n {
            h.write_u64((self.timers)(i));
        }
        crate::network::write_network(h, self.network.0, self.network.1);
        h.write_u8(self.crashes);
        h.write_u8(self.suspicions);
        h.write_u64(self.ghost);
    }

    fn fingerprint(&self) -> u64 {
        let mut h = crate::hashed::stable_hasher().build_hasher();
        self.write(&mut h);
        h.finish()
    }
}

impl ClusterState {
    /// Whether this state is `other` but for the count of crashes (field by field, without
    /// copying either: it runs for every crash-restart the search offers). Every field is named,
    /// so a new one cannot be forgotten here.
    fn equal_but_for_crashes(&self, other: &ClusterState) -> bool {
        let ClusterState {
            nodes,
            crashed,
            storage,
            timers,
            network,
            crashes: _,
            suspicions,
            ghost,
            symmetry,
        } = self;
        *nodes == other.nodes
            && *crashed == other.crashed
            && *storage == other.storage
            && *timers == other.timers
            && *network == other.network
            && *suspicions == other.suspicions
            && *ghost == other.ghost
            && *symmetry == other.symmetry
    }

    /// The fingerprint of everything in this state but the count of crashes (for tests and
    /// measurements of `Reduction::SkipNoopCrashes`).
    pub fn fingerprint_but_crashes(&self) -> u64 {
        self.fingerprint_with_crashes(0)
    }
}

/// A step of the cluster.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Action {
    /// Deliver a copy of an envelope (it stays in flight: the network duplicates).
    Deliver(Shared),
    /// Lose an envelope (lossy networks only).
    Drop(Shared),
    /// A timer of a node fires.
    Timeout {
        /// The node.
        node: NodeId,
        /// The timer.
        timer: Timer,
    },
    /// A node crashes: volatile state and timers are gone, its state file stays.
    Crash(NodeId),
    /// A crashed node restarts from its state file.
    Recover(NodeId),
    /// A node crashes and restarts from its state file at once (with `Reduction::AtomicRestart`; the
    /// time it spends down is spent, equivalently, up and idle: specs/protocol.md §8.8).
    CrashRestart(NodeId),
    /// An operator sends `CLUSTER FAILOVER` in `mode` to a replica (specs/protocol.md §6.1).
    Failover {
        /// The replica.
        node: NodeId,
        /// The mode.
        mode: FailoverMode,
    },
    /// A client writes a key of the first slot `node` serves (specs/protocol.md §13).
    Write(NodeId),
    /// A replica receives a full copy of its master's data and confirms it (§13).
    Copy(NodeId),
}

/// The cluster as a checkable model.
#[derive(Clone, Debug)]
pub struct ClusterModel {
    /// The actor every node runs.
    pub actor: ClusterNode,
    /// How many crashes a behaviour may contain (each may be followed by a restart).
    pub(crate) crash_budget: u8,
    /// How many PFAIL events (peer timeouts firing) a behaviour may contain.
    pub(crate) suspicion_budget: u8,
    /// Whether envelopes may be dropped.
    pub(crate) lossy: bool,
    /// Nodes whose peer timeouts may fire (`None`: every node may be suspected). A bound for
    /// targeted checks, stated with every result that uses it.
    pub(crate) suspectable: Option<slotguard_protocol::bitset::NodeSet>,
    /// Behaviours are explored while no node's currentEpoch exceeds this (bounds elections).
    pub(crate) max_epoch: Epoch,
    /// The reductions this model applies (`reductions.rs`, specs/protocol.md §8.4–§8.10).
    pub reductions: Reductions,
    /// The memo of crash twins (`crash_twins.rs`; empty and switched off in every clone).
    pub(crate) crash_twins: CrashTwins,
    /// The memo of deliveries known to change nothing (`noop_cache.rs`; empty in every clone).
    pub(crate) noop_cache: NoopCache,
    /// The canonical inboxes remembered (`settle_network_to`; empty in every clone).
    pub(crate) rewrites: RewriteMemo,
    /// The filter of recent states (`repeats.rs`; empty and switched off in every clone).
    pub(crate) repeats: Repeats,
    /// The memo of convergence continuations (`settle_memo.rs`; empty in every clone).
    pub(crate) settle_memo: SettleMemo,
    /// For tests: build every successor whose fingerprint was computed before it was built
    /// (`finish_step`), and panic if the two differ.
    pub(crate) verify_early_fingerprints: bool,
    /// Set by the run when its time is up: from then on no state has successors, so the
    /// search ends at once. (stateright checks its own timeout only when a worker runs out of
    /// work, which a single-threaded depth-first search never does until it is complete.) The
    /// run is then reported INCOMPLETE. Shared by clones.
    pub(crate) stop: Arc<AtomicBool>,
    /// Symmetry reduction over interchangeable shards and replicas (check/symmetry.rs,
    /// specs/protocol.md §8.5); `None`: off. Read by DFS runs only.
    pub symmetry: Option<Arc<SymmetryClasses>>,
    /// Sometimes-properties beyond the catalogue that this run must reach (its budgets allow
    /// them): failback, a second failover, a retry won (properties.rs, [`Witness`]).
    ///
    /// [`Witness`]: crate::properties::Witness
    pub witnesses: Vec<properties::Witness>,
    /// How many manual failovers a behaviour may contain.
    pub(crate) manual_failover_budget: u8,
    /// The modes they may use.
    pub(crate) failover_modes: Vec<FailoverMode>,
    /// How many abstract writes a behaviour may contain (specs/protocol.md §13).
    pub(crate) write_budget: u8,
}

/// What delivering `env` at `state` reads, as fingerprints (`check/noop_cache.rs`): a delivery
/// that sends and saves nothing is a function of these.
fn delivery_key(state: &ClusterState, env: &Shared) -> DeliveryKey {
    let d = env.dst.index();
    [
        state.nodes[d].hash_value(),
        state.timers[d].hash_value(),
        state.ghost.hash_value(),
        env.hash_value(),
    ]
}

impl ClusterModel {
    /// Whether the history records election retries: only for the witness that reads them.
    fn tracks_retries(&self) -> bool {
        self.witnesses
            .contains(&properties::Witness::RetryElectionWon)
    }

    fn len(&self) -> usize {
        self.actor.layout.len()
    }

    /// What symmetry reduction may permute in this model: its layout's interchangeable shards
    /// and replicas, as far as its `suspects` bound allows (a renaming must map the nodes that
    /// may be suspected onto themselves; check/symmetry.rs).
    pub fn symmetry_classes(&self) -> SymmetryClasses {
        SymmetryClasses::of(&self.actor.layout, self.suspectable.as_ref())
    }

    /// The common tail of a node step: new node state, history, commands (applied in order).
    /// A step that changes nothing is a no-op the checker prunes; a successor generated shortly
    /// before is recognised, where it can be, before it is built (`repeats.rs`).
    pub(crate) fn finish_step(
        &self,
        last: &ClusterState,
        node: NodeId,
        after: Cow<'_, NodeState>,
        out: Out<ClusterNode>,
        fired: Option<&Timer>,
        early: EarlyRepeats,
    ) -> Finished {
        let before = &*last.nodes[node.index()];
        let ghost = self.observe(last, node, before, &after, &out, fired);
        let state = match after {
            Cow::Owned(state) if state != *before => Some(state),
            _ => None,
        };
        let Some(step) = self.changes(last, node, ghost, state, out, fired) else {
            return Finished::NoChange;
        };
        let outlook = self.inbox_outlook(last, before, &step);
        let early_fingerprint = match early {
            EarlyRepeats::Look => self.early_fingerprint(last, &step, outlook.as_ref()),
            EarlyRepeats::No => None,
        };
        let repeat = early_fingerprint.is_some_and(|fp| self.repeats.recorded(fp));
        if repeat && !self.verify_early_fingerprints {
            return Finished::Repeat;
        }
        let next = self.successor(last, step, outlook.as_ref());
        if let Some(fp) = early_fingerprint.filter(|_| self.verify_early_fingerprints) {
            assert_eq!(
                fp,
                crate::hashed::stable_hash(&next),
                "fingerprint computed before the successor was built\n{next:?}"
            );
        }
        match repeat {
            true => Finished::Repeat,
            false => Finished::State(next),
        }
    }

    /// The history after `node`'s step from `before` to `after` (`None`: unchanged).
    fn observe(
        &self,
        last: &ClusterState,
        node: NodeId,
        before: &NodeState,
        after: &NodeState,
        out: &Out<ClusterNode>,
        fired: Option<&Timer>,
    ) -> Option<Ghost> {
        let timed_out = match fired {
            Some(Timer::PeerTimeout(peer)) => Some(*peer),
            _ => None,
        };
        let step = Observed {
            node,
            before,
            after,
            timed_out,
            sent: commands::sent(out),
            election_timed_out: self.tracks_retries()
                && matches!(fired, Some(Timer::ElectionTimeout)),
        };
        Ghost::observe(&last.ghost, &self.actor.layout, &step)
    }

    /// What `node`'s step changes, its commands carried out, before the cluster state is
    /// copied: most deliveries on a duplicating network change nothing, and the checker prunes
    /// them (`None`).
    fn changes(
        &self,
        last: &ClusterState,
        node: NodeId,
        ghost: Option<Ghost>,
        state: Option<NodeState>,
        out: Out<ClusterNode>,
        fired: Option<&Timer>,
    ) -> Option<Changes> {
        let n = node.index();
        let mut effects = StepEffects {
            model: self,
            last,
            node,
            timers: Cow::Borrowed(&*last.timers[n]),
            sent: Vec::new(),
            saved: None,
        };
        if let Some(timer) = fired {
            effects.timers.to_mut().remove(timer);
        }
        commands::interpret(out, &mut effects);
        let StepEffects {
            timers,
            sent,
            saved,
            ..
        } = effects;
        let saved = saved.filter(|s| last.storage[n].as_deref() != Some(s));
        let timers = match timers {
            Cow::Owned(t) if t != *last.timers[n] => Some(t),
            _ => None,
        };
        if ghost.is_none()
            && state.is_none()
            && sent.is_empty()
            && saved.is_none()
            && timers.is_none()
        {
            return None;
        }
        Some(Changes {
            node,
            ghost: ghost.map(Hashed::new),
            state: state.map(Hashed::new),
            saved: saved.map(Hashed::new),
            timers: timers.map(Hashed::new),
            sent,
        })
    }

    /// When `step` changes what messages to its node can still do (its epochs, its election,
    /// its slot map, the configEpochs it knows, whom it has PFAIL: `residual_inputs_changed`),
    /// the node's outlook, with which its inbox is put in canonical form again (§8.4).
    fn inbox_outlook(
        &self,
        last: &ClusterState,
        before: &NodeState,
        step: &Changes,
    ) -> Option<Outlook> {
        step.state
            .as_ref()
            .filter(|state| {
                self.has(Reduction::CanonicalNetwork) && residual_inputs_changed(before, state)
            })
            .map(|_| self.outlook(last, step.node))
    }

    /// The successor `step` makes of `last`: its changes in place, the receiver's inbox in
    /// canonical form again when `outlook` says so, and settled grants forgotten.
    fn successor(
        &self,
        last: &ClusterState,
        step: Changes,
        outlook: Option<&Outlook>,
    ) -> ClusterState {
        let n = step.node.index();
        let mut next = last.clone();
        if let Some(ghost) = step.ghost {
            next.ghost = ghost;
        }
        if let Some(state) = step.state {
            if let Some(outlook) = outlook {
                self.settle_network_to(&mut next.network, &state, outlook);
            }
            next.nodes[n] = state;
        }
        for env in step.sent {
            next.network.insert_shared(env);
        }
        if let Some(storage) = step.saved {
            next.storage[n] = Some(storage);
        }
        if let Some(timers) = step.timers {
            next.timers[n] = timers;
        }
        if self.forgets_settled_grants(&next.ghost) {
            if let Some(ghost) = next
                .ghost
                .without_settled_grants(&next.nodes, &next.crashed)
            {
                next.ghost = Hashed::new(ghost);
            }
        }
        next
    }

    /// Whether settled vote grants are to be forgotten from `ghost` (specs/protocol.md §8.7):
    /// the argument rests on currentEpoch surviving restarts, which one mutant breaks.
    fn forgets_settled_grants(&self, ghost: &Ghost) -> bool {
        self.has(Reduction::ForgetSettledGrants)
            && !ghost.grants.is_empty()
            && !self
                .actor
                .bug(slotguard_protocol::bugs::Bug::UnpersistedEpochBump)
    }

    /// With the repeats filter on, the fingerprint of the successor that `step` makes of
    /// `last`, computed from the hashes of the parts it changes, before the successor is
    /// built. `None` where the successor is more than those parts (the caller fires an urgent
    /// FAIL-undo, the receiver's canonical inbox is not in the memo) or where the boundary refuses it first (check/repeats.rs: a state refused by
    /// the boundary is not counted as a repeat).
    fn early_fingerprint(
        &self,
        last: &ClusterState,
        step: &Changes,
        outlook: Option<&Outlook>,
    ) -> Option<u64> {
        if !self.has(Reduction::SkipRepeats) || !self.repeats.is_active() {
            return None;
        }
        let n = step.node.index();
        let state = step.state.as_ref().unwrap_or(&last.nodes[n]);
        if state.current_epoch > self.max_epoch {
            return None;
        }
        let timers = step.timers.as_ref().unwrap_or(&last.timers[n]);
        if self.has(Reduction::UrgentFailUndo)
            && !self.lossy
            && timers.iter().any(|t| matches!(t, Timer::FailUndo(_)))
        {
            return None;
        }
        let ghost = step.ghost.as_ref().unwrap_or(&last.ghost);
        let mut ghost_hash = ghost.hash_value();
        if self.forgets_settled_grants(ghost) {
            let node = |i: usize| match i == n {
                true => Some(&**state),
                false => last.nodes.get(i).map(|s| &**s),
            };
            if let Some(forgotten) = ghost.without_settled_grants_of(node, &last.crashed) {
                ghost_hash = crate::hashed::stable_hash(&forgotten);
            }
        }
        let (mut set_hash, mut len) = (last.network.set_hash(), last.network.len());
        if let (Some(state), Some(outlook)) = (&step.state, outlook) {
            let inbox_hash = last.network.chunk_set_hash(state.me);
            let key = self.rewrite_key(&last.network, state, outlook, inbox_hash)?;
            let chunk = self.rewrites.get(key)?;
            set_hash = set_hash
                .wrapping_sub(inbox_hash)
                .wrapping_add(chunk.set_hash());
            len = len - last.network.chunk_len(state.me) + chunk.len();
        }
        // New envelopes go to other nodes than the receiver whose inbox was rewritten, and
        // were not in flight (`finish_step`).
        for env in &step.sent {
            set_hash = set_hash.wrapping_add(env.hash_value());
            len += 1;
        }
        let storage = |i: usize| match (&step.saved, i == n) {
            (Some(saved), true) => Some(saved.hash_value()),
            _ => last.storage[i].as_ref().map(|s| s.hash_value()),
        };
        let parts = Parts {
            node: &|i| match i == n {
                true => state.hash_value(),
                false => last.nodes[i].hash_value(),
            },
            crashed: &last.crashed,
            storage: &storage,
            timers: &|i| match i == n {
                true => timers.hash_value(),
                false => last.timers[i].hash_value(),
            },
            network: (set_hash, len),
            crashes: last.crashes,
            suspicions: last.suspicions,
            ghost: ghost_hash,
        };
        Some(parts.fingerprint())
    }
}

/// What one node's step changes, each part hashed.
struct Changes {
    node: NodeId,
    ghost: Option<Hashed<Ghost>>,
    state: Option<Hashed<NodeState>>,
    saved: Option<Hashed<Persisted>>,
    timers: Option<Hashed<BTreeSet<Timer>>>,
    /// Envelopes not in flight before, to other nodes.
    sent: Vec<Shared>,
}

/// A search step's commands carried out on what the step changes (`commands.rs`): messages
/// in canonical form for their receivers and not already in flight, the node's timers, its
/// last save.
struct StepEffects<'a> {
    model: &'a ClusterModel,
    last: &'a ClusterState,
    node: NodeId,
    timers: Cow<'a, BTreeSet<Timer>>,
    sent: Vec<Shared>,
    saved: Option<Persisted>,
}

impl Effects for StepEffects<'_> {
    fn send(&mut self, dst: NodeId, msg: Msg) {
        let Some(msg) = self.model.as_sent(self.last, dst, msg) else {
            return;
        };
        let env = Envelope {
            src: self.node,
            dst,
            msg,
        };
        let hash = crate::hashed::stable_hash(&env);
        if !self.last.network.contains_hashed(&env, hash)
            && !crate::network::holds(&self.sent, &env, hash)
        {
            self.sent.push(Shared::with_hash(env, hash));
        }
    }

    fn set_timer(&mut self, timer: Timer) {
        if !self.timers.contains(&timer) {
            self.timers.to_mut().insert(timer);
        }
    }

    fn cancel_timer(&mut self, timer: Timer) {
        if self.timers.contains(&timer) {
            self.timers.to_mut().remove(&timer);
        }
    }

    fn save(&mut self, persisted: Persisted) {
        self.saved = Some(persisted);
    }
}

/// An initial state's commands carried out on the state being built.
struct InitEffects<'a> {
    state: &'a mut ClusterState,
    node: NodeId,
    timers: BTreeSet<Timer>,
}

impl Effects for InitEffects<'_> {
    fn send(&mut self, dst: NodeId, msg: Msg) {
        self.state.network.insert(Envelope {
            src: self.node,
            dst,
            msg,
        });
    }

    fn set_timer(&mut self, timer: Timer) {
        self.timers.insert(timer);
    }

    fn cancel_timer(&mut self, timer: Timer) {
        self.timers.remove(&timer);
    }

    fn save(&mut self, persisted: Persisted) {
        self.state.storage[self.node.index()] = Some(Hashed::new(persisted));
    }
}

/// Whether `finish_step` may recognise a repeat before building the successor: only for a
/// delivery, whose successor is exactly what `finish_step` builds (with no urgent FAIL-undo).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum EarlyRepeats {
    Look,
    No,
}

/// How a step ended.
pub(crate) enum Finished {
    /// It changed nothing.
    NoChange,
    /// Its successor is a repeat of a state generated shortly before (check/repeats.rs).
    Repeat,
    /// Its successor.
    State(ClusterState),
}

impl Finished {
    /// The successor, if built.
    fn state(self) -> Option<ClusterState> {
        match self {
            Finished::State(next) => Some(next),
            Finished::NoChange | Finished::Repeat => None,
        }
    }
}

impl ClusterModel {
    /// What the checker knows of `receiver`'s future in `state` (`residual::Outlook`):
    /// which peers it may still newly suspect, given the suspicion budget left.
    pub fn outlook(&self, state: &ClusterState, receiver: NodeId) -> Outlook {
        if state.suspicions >= self.suspicion_budget {
            return Outlook::closed();
        }
        let mut outlook = match &self.suspectable {
            Some(nodes) => Outlook {
                may_suspect: nodes.clone(),
            },
            None => Outlook::open(self.len()),
        };
        outlook.may_suspect.remove(receiver);
        outlook
    }

    /// `msg` as it goes in flight to `dst` from `state`: in its canonical form for the
    /// receiver, or `None` if it can no longer change it (with `Reduction::CanonicalNetwork`).
    fn as_sent(&self, state: &ClusterState, dst: NodeId, msg: Msg) -> Option<Msg> {
        if !self.has(Reduction::CanonicalNetwork) {
            return Some(msg);
        }
        let outlook = self.outlook(state, dst);
        match residual(&self.actor, &state.nodes[dst.index()], &msg, &outlook) {
            Residual::Inert => None,
            Residual::Canonical(msg) => Some(msg),
            Residual::Unchanged => Some(msg),
        }
    }

    /// With `Reduction::SkipPingTwins`: whether `env` is a PING whose delivery reaches exactly the state
    /// that delivering its PONG twin, also in flight, reaches (specs/protocol.md §8.9). A PING
    /// and a PONG with one header run the same handler (§3.2) but for two things: the PONG
    /// proves the sender alive, which changes nothing when it would not end the receiver's
    /// suspicion of the sender (`pong_clears`), and the PING is answered with a PONG carrying
    /// the receiver's header, which changes nothing when that PONG is in flight already (if
    /// the step changes the header, both deliveries announce the new one).
    fn ping_twin_in_flight(&self, state: &ClusterState, env: &Envelope) -> bool {
        let Msg::Ping(h) = &env.msg else {
            return false;
        };
        if !self.has(Reduction::SkipPingTwins) {
            return false;
        }
        let receiver = &state.nodes[env.dst.index()];
        if pong_clears(receiver, env.src) {
            return false;
        }
        let twin = Envelope {
            src: env.src,
            dst: env.dst,
            msg: Msg::Pong(h.clone()),
        };
        if !state.network.contains(&twin) {
            return false;
        }
        match self.as_sent(state, env.src, Msg::Pong(header(receiver))) {
            None => true,
            Some(msg) => state.network.contains(&Envelope {
                src: env.dst,
                dst: env.src,
                msg,
            }),
        }
    }

    /// What `env` can still do to its receiver in `state` (`residual`).
    pub fn residual(&self, state: &ClusterState, env: &Envelope) -> Residual {
        let outlook = self.outlook(state, env.dst);
        residual(
            &self.actor,
            &state.nodes[env.dst.index()],
            &env.msg,
            &outlook,
        )
    }

    /// Puts every envelope addressed to `receiver` in its canonical form for the receiver's
    /// state, dropping the inert ones (`residual`, specs/protocol.md §8.4).
    ///
    /// The result is a function of the receiver's state, its outlook and the envelopes
    /// addressed to it; with `Reduction::SkipKnownNoops`, it is memoised by their fingerprints
    /// (`check/network.rs: RewriteMemo`): from one state to the next, the same receiver state
    /// meets the same inbox again and again.
    fn settle_network_to(
        &self,
        network: &mut Network,
        receiver: &Hashed<NodeState>,
        outlook: &Outlook,
    ) {
        let inbox_hash = network.chunk_set_hash(receiver.me);
        let key = self.rewrite_key(network, receiver, outlook, inbox_hash);
        if let Some(done) = key.and_then(|k| self.rewrites.get(k)) {
            network.put_chunk(receiver.me, inbox_hash, done);
            return;
        }
        network.rewrite_to(receiver.me, |env| {
            match residual(&self.actor, receiver, &env.msg, outlook) {
                Residual::Unchanged => None,
                Residual::Inert => Some(None),
                Residual::Canonical(msg) => Some(Some(Envelope {
                    src: env.src,
                    dst: env.dst,
                    msg,
                })),
            }
        });
        if let Some(key) = key {
            self.rewrites.insert(key, network.shared_chunk(receiver.me));
        }
    }

    /// With `Reduction::SkipKnownNoops`, the key of `receiver`'s canonical inbox in the memo: the
    /// fingerprint of its state, its outlook and its inbox in `network`, whose set hash the
    /// caller computed (`Network::chunk_set_hash`).
    fn rewrite_key(
        &self,
        network: &Network,
        receiver: &Hashed<NodeState>,
        outlook: &Outlook,
        inbox_hash: u64,
    ) -> Option<u64> {
        self.has(Reduction::SkipKnownNoops).then(|| {
            crate::hashed::stable_hash(&(
                receiver.hash_value(),
                &outlook.may_suspect,
                inbox_hash,
                network.chunk_len(receiver.me),
            ))
        })
    }

    /// The rules among the reductions that take effect in this model, by name (specs/protocol.md
    /// §8.4, §8.6–§8.10), for reports: every result says what it was computed with. Caches,
    /// which change no successor, are not named.
    pub fn rules_in_effect(&self) -> Vec<&'static str> {
        self.reductions
            .iter()
            .filter(|r| !r.is_cache() && self.takes_effect(*r))
            .map(Reduction::name)
            .collect()
    }

    /// Whether a reduction that is on changes anything in this model: FAIL-undo is urgent only
    /// on a network that never loses messages, and restarts matter only with crashes.
    fn takes_effect(&self, reduction: Reduction) -> bool {
        match reduction {
            Reduction::UrgentFailUndo => !self.lossy,
            Reduction::AtomicRestart => self.crash_budget > 0,
            Reduction::SkipNoopCrashes | Reduction::SkipCrashTwins => {
                self.crash_budget > 0 && self.reductions.has(Reduction::AtomicRestart)
            }
            _ => true,
        }
    }

    /// Whether `reduction` is on.
    #[inline]
    pub(crate) fn has(&self, reduction: Reduction) -> bool {
        self.reductions.has(reduction)
    }

    /// The crash-twin memo (`crash_twins.rs`), for tests and reports.
    pub fn crash_twins(&self) -> &CrashTwins {
        &self.crash_twins
    }

    /// The memo of deliveries known to change nothing (`noop_cache.rs`), for tests.
    pub fn noop_cache(&self) -> &NoopCache {
        &self.noop_cache
    }

    /// The memo of convergence continuations (`settle_memo.rs`), for tests.
    pub fn settle_memo(&self) -> &SettleMemo {
        &self.settle_memo
    }

    /// For tests: whether every successor whose fingerprint is computed before it is built is
    /// built anyway and compared with it (a mismatch panics).
    pub fn verify_early_fingerprints(&mut self, on: bool) {
        self.verify_early_fingerprints = on;
    }

    /// With `Reduction::UrgentFailUndo`: fires the FAIL-undo timers the step just armed at `node`, as
    /// part of the same step (specs/protocol.md §8.6).
    /// `CLUSTER FAILOVER` to every live replica in every allowed mode, while the budget lasts.
    fn manual_failover_actions(&self, state: &ClusterState, actions: &mut Vec<Action>) {
        if state.ghost.manual_failovers >= self.manual_failover_budget {
            return;
        }
        for (i, node) in state.nodes.iter().enumerate() {
            if !state.crashed[i] && matches!(node.role, Role::Replica { .. }) {
                for &mode in &self.failover_modes {
                    actions.push(Action::Failover {
                        node: NodeId(i as u16),
                        mode,
                    });
                }
            }
        }
    }

    /// The step of `node` that an operator's `CLUSTER FAILOVER` in `mode` starts; `None` if
    /// the node refuses it (nothing changes and no budget is spent).
    fn manual_failover(
        &self,
        last: &ClusterState,
        node: NodeId,
        mode: FailoverMode,
    ) -> Option<ClusterState> {
        let mut state = Cow::Borrowed(&*last.nodes[node.index()]);
        let mut out = slotguard_protocol::actor::out_buffer();
        self.actor.on_failover(&mut state, mode, &mut out).ok()?;
        let mut next = self
            .finish_step(last, node, state, out, None, EarlyRepeats::No)
            .state()?;
        let mut ghost = (*next.ghost).clone();
        ghost.manual_failovers += 1;
        next.ghost = Hashed::new(ghost);
        Some(self.fire_urgent_timers(next, node))
    }

    fn fire_urgent_timers(&self, mut next: ClusterState, node: NodeId) -> ClusterState {
        if !self.has(Reduction::UrgentFailUndo) || self.lossy {
            return next;
        }
        let n = node.index();
        while let Some(timer) = next.timers[n]
            .iter()
            .find(|t| matches!(t, Timer::FailUndo(_)))
            .cloned()
        {
            let mut state = Cow::Borrowed(&*next.nodes[n]);
            let mut out = slotguard_protocol::actor::out_buffer();
            self.actor
                .on_timeout(Id::from(node), &mut state, &timer, &mut out);
            // Firing removes the timer, so the step is never a no-op.
            match self
                .finish_step(&next, node, state, out, Some(&timer), EarlyRepeats::No)
                .state()
            {
                Some(fired) => next = fired,
                None => break,
            }
        }
        next
    }

    /// Puts every envelope in flight in its canonical form for its receiver.
    fn settle_network(&self, state: &mut ClusterState) {
        for i in 0..state.nodes.len() {
            let outlook = self.outlook(state, NodeId(i as u16));
            let receiver = state.nodes[i].clone();
            self.settle_network_to(&mut state.network, &receiver, &outlook);
        }
    }

    /// Whether crash-twin refusals are on now (check/crash_twins.rs).
    fn crash_twins_on(&self) -> bool {
        self.has(Reduction::SkipCrashTwins) && self.crash_budget > 0 && self.crash_twins.is_active()
    }

    /// Whether `state` is to be explored, as far as the crash-twin memo knows now; records it
    /// as a twin of later states (check/crash_twins.rs).
    ///
    /// `generated`: called for a state just generated, whose representative the search's
    /// symmetry hook asks for too (so it is kept in the state for it, check/symmetry.rs:
    /// `Classes`).
    fn admitted_by_crash_twins(&self, state: &ClusterState, generated: bool) -> bool {
        use crate::symmetry::{kept_representative_fingerprint, representative_fingerprint};
        let key = match &self.symmetry {
            Some(_) => if generated {
                kept_representative_fingerprint(state)
            } else {
                representative_fingerprint(state)
            }
            .fingerprint_but_crashes(),
            None => state.fingerprint_but_crashes(),
        };
        self.crash_twins
            .admits(key, state.crashes, self.crash_budget, generated)
    }

    /// Under symmetry: whether delivering `env` could meet the configEpoch collision rule
    /// between two nodes whose id order some renaming changes, the one rule that tells
    /// renamings apart.
    fn breaks_symmetry(&self, state: &ClusterState, env: &Envelope) -> bool {
        let Some(classes) = &self.symmetry else {
            return false;
        };
        if state.ghost.asymmetric_collision || !classes.interchangeable(env.src, env.dst) {
            return false;
        }
        let receiver = &state.nodes[env.dst.index()];
        match &env.msg {
            Msg::Ping(h) | Msg::Pong(h) => {
                h.master.is_none()
                    && receiver.role == slotguard_protocol::state::Role::Master
                    && h.config_epoch == receiver.config_epoch
            }
            _ => false,
        }
    }
}

impl Model for ClusterModel {
    type State = ClusterState;
    type Action = Action;

    fn init_states(&self) -> Vec<ClusterState> {
        let n = self.len();
        let mut state = ClusterState {
            nodes: Vec::with_capacity(n),
            crashed: vec![false; n],
            storage: vec![None; n],
            timers: vec![Hashed::new(BTreeSet::new()); n],
            network: Network::default(),
            crashes: 0,
            suspicions: 0,
            ghost: Hashed::new(Ghost::new(n)),
            symmetry: Classes::new(self.symmetry.clone()),
        };
        for node in self.actor.layout.ids() {
            let mut out = slotguard_protocol::actor::out_buffer();
            let s = self.actor.on_start(Id::from(node), &None, &mut out);
            state.nodes.push(Hashed::new(s));
            let mut effects = InitEffects {
                state: &mut state,
                node,
                timers: BTreeSet::new(),
            };
            commands::interpret(out, &mut effects);
            let timers = Hashed::new(effects.timers);
            state.timers[node.index()] = timers;
        }
        if self.has(Reduction::CanonicalNetwork) {
            self.settle_network(&mut state);
        }
        vec![state]
    }

    fn actions(&self, state: &ClusterState, actions: &mut Vec<Action>) {
        if self.stop.load(Ordering::Relaxed) {
            return;
        }
        // A state with crashes spent is looked up again when it is explored, since its twin
        // may have been explored since it was generated (check/crash_twins.rs).
        if state.crashes > 0 && self.crash_twins_on() && !self.admitted_by_crash_twins(state, false)
        {
            return;
        }
        // Crashes first: a depth-first search takes the last action first, so it explores a
        // state's crash-free successors before its crashes, and crash twins
        // (check/crash_twins.rs) are met after the state they equal.
        for (i, &crashed) in state.crashed.iter().enumerate() {
            let node = NodeId(i as u16);
            if crashed {
                actions.push(Action::Recover(node));
            } else if state.crashes < self.crash_budget {
                actions.push(if self.has(Reduction::AtomicRestart) {
                    Action::CrashRestart(node)
                } else {
                    Action::Crash(node)
                });
            }
        }
        self.manual_failover_actions(state, actions);
        self.data_actions(state, actions);
        for env in state.network.iter() {
            if !state.crashed[env.dst.index()] && !self.ping_twin_in_flight(state, env) {
                actions.push(Action::Deliver(env.clone()));
            }
            if self.lossy {
                actions.push(Action::Drop(env.clone()));
            }
        }
        for (i, timers) in state.timers.iter().enumerate() {
            if !state.crashed[i] {
                for timer in timers.iter() {
                    if let Timer::PeerTimeout(peer) = timer {
                        if state.suspicions >= self.suspicion_budget
                            || self
                                .suspectable
                                .as_ref()
                                .is_some_and(|s| !s.contains(*peer))
                        {
                            continue;
                        }
                    }
                    actions.push(Action::Timeout {
                        node: NodeId(i as u16),
                        timer: timer.clone(),
                    });
                }
            }
        }
    }

    fn next_state(&self, last: &ClusterState, action: Action) -> Option<ClusterState> {
        match action {
            Action::Deliver(env) => {
                let dst = env.dst;
                if self.breaks_symmetry(last, &env) {
                    let mut next = last.clone();
                    next.ghost = Hashed::new(Ghost {
                        asymmetric_collision: true,
                        ..(*last.ghost).clone()
                    });
                    return Some(next);
                }
                // Looked up here, not in `actions`: the checker rebuilds paths from action
                // indices, so the actions of a state must not depend on what was memoised.
                if self.has(Reduction::SkipKnownNoops)
                    && self.noop_cache.contains(&delivery_key(last, &env))
                {
                    return None;
                }
                let mut state = Cow::Borrowed(&*last.nodes[dst.index()]);
                let mut out = slotguard_protocol::actor::out_buffer();
                self.actor
                    .on_msg_ref(&mut state, Id::from(env.src), &env.msg, &mut out);
                let pure = !commands::sends_or_saves(&out);
                match self.finish_step(last, dst, state, out, None, EarlyRepeats::Look) {
                    Finished::NoChange => {
                        if pure && self.has(Reduction::SkipKnownNoops) {
                            self.noop_cache.insert(delivery_key(last, &env));
                        }
                        None
                    }
                    Finished::Repeat => None,
                    Finished::State(next) => Some(self.fire_urgent_timers(next, dst)),
                }
            }
            Action::Drop(env) => {
                let mut next = last.clone();
                next.network.remove(&env);
                Some(next)
            }
            Action::Timeout { node, timer } => {
                let mut state = Cow::Borrowed(&*last.nodes[node.index()]);
                let mut out = slotguard_protocol::actor::out_buffer();
                self.actor
                    .on_timeout(Id::from(node), &mut state, &timer, &mut out);
                let next = self
                    .finish_step(last, node, state, out, Some(&timer), EarlyRepeats::No)
                    .state()?;
                let mut next = self.fire_urgent_timers(next, node);
                if matches!(timer, Timer::PeerTimeout(_)) {
                    next.suspicions += 1;
                    // The last suspicion of the behaviour: reports and FAIL messages to nodes
                    // that do not suspect their subject now can never count again.
                    if self.has(Reduction::CanonicalNetwork)
                        && next.suspicions >= self.suspicion_budget
                    {
                        self.settle_network(&mut next);
                    }
                }
                Some(next)
            }
            Action::Crash(node) => {
                let mut next = last.clone();
                next.crashed[node.index()] = true;
                next.timers[node.index()] = Hashed::new(BTreeSet::new());
                next.crashes += 1;
                Some(next)
            }
            Action::CrashRestart(node) => {
                let crashed = self.next_state(last, Action::Crash(node))?;
                let next = self.next_state(&crashed, Action::Recover(node))?;
                if self.has(Reduction::SkipNoopCrashes) && next.equal_but_for_crashes(last) {
                    return None;
                }
                Some(next)
            }
            Action::Failover { node, mode } => self.manual_failover(last, node, mode),
            Action::Write(node) => self.write(last, node),
            Action::Copy(replica) => self.copy(last, replica),
            Action::Recover(node) => {
                let n = node.index();
                let storage: Option<Persisted> = last.storage[n].as_deref().cloned();
                let mut out = slotguard_protocol::actor::out_buffer();
                let recovered = self.actor.on_start(Id::from(node), &storage, &mut out);
                let mut restarted = last.clone();
                restarted.crashed[n] = false;
                let result = self
                    .finish_step(
                        &restarted,
                        node,
                        Cow::Owned(recovered),
                        out,
                        None,
                        EarlyRepeats::No,
                    )
                    .state();
                Some(result.unwrap_or(restarted))
            }
        }
    }

    fn properties(&self) -> Vec<Property<Self>> {
        let mut all = properties::all();
        if properties::has_replica_pair(&self.actor.layout) {
            all.push(properties::replicas_compete());
        }
        all.extend(self.witnesses.iter().map(|w| w.property()));
        if self.manual_failover_budget > 0 {
            all.push(properties::manual_failover_completes());
        }
        if self.write_budget > 0 {
            all.push(properties::acknowledged_writes_kept());
            all.push(properties::acknowledged_write_moves());
        }
        if self.symmetry.is_some() {
            all.push(properties::symmetry_sound());
        }
        all
    }

    fn format_action(&self, action: &Action) -> String {
        crate::trace::describe_action(action)
    }

    fn format_step(&self, last: &ClusterState, action: Action) -> Option<String> {
        let next = self.next_state(last, action.clone())?;
        // The explorer shows this text as the state reached by the step: what the step did,
        // then the whole state.
        Some(format!(
            "STEP {}\n\n{next:?}",
            crate::render::format_step(last, &action, &next)
        ))
    }

    fn as_svg(&self, path: stateright::Path<ClusterState, Action>) -> Option<String> {
        Some(crate::render::svg(self, &path))
    }

    fn within_boundary(&self, state: &ClusterState) -> bool {
        if !state
            .nodes
            .iter()
            .all(|n| n.current_epoch <= self.max_epoch)
        {
            return false;
        }
        // Called once for every generated state, before the search looks it up: the one place
        // where a state can be refused without touching the paths stateright replays.
        if self.has(Reduction::SkipRepeats)
            && self.repeats.is_active()
            && self.repeats.seen(crate::hashed::stable_hash(state))
        {
            return false;
        }
        if self.crash_twins_on() {
            return self.admitted_by_crash_twins(state, true);
        }
        true
    }
}
