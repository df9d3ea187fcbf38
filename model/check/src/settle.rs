//! Convergence as a bounded check (specs/properties.md, property 8).
//!
//! "Eventually every node binds each slot to the same owner" is a liveness property, and
//! stateright 0.31's `eventually` is unsound on models with cycles (specs/background.md §S1.5): a
//! failover model with periodic timers is full of them. So convergence is checked as a safety
//! property of a *bounded, fair continuation*: from a reachable state, faults stop (crashed nodes
//! restart, no more suspicions fire, nothing is lost) and the cluster runs in synchronous rounds;
//! within [`MAX_ROUNDS`] rounds it must reach a fixed point at which every node agrees on the
//! slot map, every slot's owner is a master that binds it to itself, every master serves a slot,
//! every replica follows a master, and nobody suspects anyone.
//!
//! A round is what happens in one ping interval of a healthy network:
//! 1. every message in flight is delivered once, in round order: by receiver, then sender, then
//!    content (the outputs go to the next round);
//! 2. every armed timer but `PeerTimeout` and `ElectionTimeout` fires — ticks, report expiries,
//!    election delays — in timer order.
//!
//! A round that changes no node state and queues only messages it delivered is quiet: the next
//! round would change nothing either (it delivers messages that changed nothing at the same node
//! states, and fires the same timers). Then time passes: armed `ElectionTimeout`s fire (auth_timeout
//! is far longer than a round trip, so it never beats the votes) and the rounds go on; with none
//! armed, the cluster is at its fixed point.
//!
//! FAIL-undo timers fire as soon as they are armed (and before the first round), so that the
//! continuation of a state and of the state the checker keeps for it when FAIL-undo is urgent
//! are the same (specs/protocol.md §8.6).
//!
//! A round that changes no node state is not taken for the fixed point: that would assume that
//! ticks only repeat what is still in flight, which fails on a lossy network (the PINGs a tick
//! just queued may never be delivered, and a replica would be reported "still suspecting" a
//! master whose PONG was lost). Armed timers decide it, which needs no such assumption.
//!
//! Each state is checked twice (`InFlight`): once with every message in flight delivered in the
//! first round, and once with all of them lost. The checker's network duplicates without losing
//! (specs/protocol.md §8.2), so a state with only some of its messages in flight is not a state
//! of the search; the two continuations bound that set from both ends. The second is the one
//! that needs the nodes to repeat themselves: a protocol that announces a change once and never
//! again converges whenever its announcements arrive, and the mutant `TickSendsNothing` shows
//! that only the lost continuation catches it.
//!
//! The continuation runs the same actor code the checker and the node run; it is deterministic,
//! so the check is reproducible, and continuations that meet at a round's start end alike: the
//! checker remembers how many rounds each cluster it passed through took
//! (`check/settle_memo.rs`).

use std::borrow::Cow;
use std::cmp::Ordering;
use std::collections::BTreeSet;

use stateright::actor::{Actor, Id, Out};

use crate::commands::{self, Effects};
use crate::hashed::stable_hash;
use crate::model::{ClusterModel, ClusterState, Envelope, Shared};
use crate::reductions::Reduction;
use crate::settle_memo::{NodeRound, SettleMemo};
use slotguard_protocol::actor::ClusterNode;
use slotguard_protocol::ids::NodeId;
use slotguard_protocol::message::Msg;
use slotguard_protocol::state::{Health, NodeState, Persisted, Role};
use slotguard_protocol::timer::Timer;

/// Rounds a continuation may take before it counts as not converging.
pub const MAX_ROUNDS: usize = 24;

/// How a fair continuation ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Settled {
    /// Reached a fixed point in this many rounds, with every node in agreement.
    Agreed {
        /// Rounds until the fixed point.
        rounds: usize,
    },
    /// Reached a fixed point at which nodes disagree.
    Disagreed {
        /// What is wrong at the fixed point.
        why: String,
    },
    /// No fixed point within [`MAX_ROUNDS`].
    NoFixedPoint,
}

struct Cluster<'m> {
    model: &'m ClusterModel,
    /// The state the continuation started from.
    origin: &'m ClusterState,
    nodes: Vec<NodeState>,
    timers: Vec<BTreeSet<Timer>>,
    queue: Vec<Queued>,
    /// Per node: its state is still the origin's (whose hash is known).
    node_as_origin: Vec<bool>,
    /// Per node: its timers are still the origin's (whose hash is known).
    timers_as_origin: Vec<bool>,
    /// When the queue holds no envelope twice: the sum of its envelopes' hashes (a set hash,
    /// what the round-start fingerprint reads), if known without sorting the queue.
    queue_set_hash: Option<u64>,
}

/// A message of a round: one in flight at the origin, shared with it (the first round's), or
/// one sent during the continuation. Compared as the envelope it is, and hashed by
/// [`queued_hash`].
#[derive(Clone)]
enum Queued {
    InFlight(Shared),
    Sent(Envelope),
}

impl std::ops::Deref for Queued {
    type Target = Envelope;
    fn deref(&self) -> &Envelope {
        match self {
            Queued::InFlight(shared) => shared,
            Queued::Sent(env) => env,
        }
    }
}

impl PartialEq for Queued {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

/// A continuation step's commands carried out on the continuation's cluster (`commands.rs`):
/// what is sent waits for the next round.
struct RoundEffects<'c, 'm> {
    cluster: &'c mut Cluster<'m>,
    node: NodeId,
}

impl Effects for RoundEffects<'_, '_> {
    fn send(&mut self, dst: NodeId, msg: Msg) {
        self.cluster.queue_set_hash = None;
        self.cluster.queue.push(Queued::Sent(Envelope {
            src: self.node,
            dst,
            msg,
        }));
    }

    fn set_timer(&mut self, timer: Timer) {
        let n = self.node.index();
        if self.cluster.timers[n].insert(timer) {
            self.cluster.timers_as_origin[n] = false;
        }
    }

    fn cancel_timer(&mut self, timer: Timer) {
        let n = self.node.index();
        if self.cluster.timers[n].remove(&timer) {
            self.cluster.timers_as_origin[n] = false;
        }
    }

    fn save(&mut self, _: Persisted) {
        // The continuation never crashes a node, so no state file it writes is read again.
    }
}

/// The order in which a round delivers its messages: by receiver, then sender, then content.
/// It is the order in which the network keeps its envelopes, so the first round's messages come
/// sorted.
fn round_order(a: &Envelope, b: &Envelope) -> Ordering {
    (a.dst, a.src, &a.msg).cmp(&(b.dst, b.src, &b.msg))
}

impl Cluster<'_> {
    /// Applies one step's commands; returns whether the node's state changed.
    fn apply(&mut self, node: NodeId, after: Option<NodeState>, out: Out<ClusterNode>) -> bool {
        let n = node.index();
        let mut changed = false;
        if let Some(s) = after {
            if s != self.nodes[n] {
                self.nodes[n] = s;
                self.node_as_origin[n] = false;
                changed = true;
            }
        }
        commands::interpret(
            out,
            &mut RoundEffects {
                cluster: self,
                node,
            },
        );
        changed | self.fire_fail_undo(node)
    }

    /// Fires `node`'s armed FAIL-undo timers at once. The continuation may fire a timer at any
    /// moment; firing these first makes it run identically from a state and from the state the
    /// checker keeps in its place when FAIL-undo is urgent (specs/protocol.md §8.6).
    fn fire_fail_undo(&mut self, node: NodeId) -> bool {
        let n = node.index();
        let mut changed = false;
        while let Some(timer) = self.timers[n]
            .iter()
            .find(|t| matches!(t, Timer::FailUndo(_)))
            .cloned()
        {
            self.timers[n].remove(&timer);
            self.timers_as_origin[n] = false;
            changed |= self.fire(node, &timer);
        }
        changed
    }

    /// Runs `node`'s handler for `timer` (already removed from its timers).
    fn fire(&mut self, node: NodeId, timer: &Timer) -> bool {
        let mut state = Cow::Borrowed(&self.nodes[node.index()]);
        let mut out = slotguard_protocol::actor::out_buffer();
        self.model
            .actor
            .on_timeout(Id::from(node), &mut state, timer, &mut out);
        let after = owned(state);
        self.apply(node, after, out)
    }

    /// Sorts the queue in round order and removes repeats: the messages of a round are a set.
    fn normalise_queue(&mut self) {
        if !self
            .queue
            .is_sorted_by(|a, b| round_order(a, b) == Ordering::Less)
        {
            self.queue.sort_by(|a, b| round_order(a, b));
            self.queue.dedup();
        }
    }

    /// The fingerprint of the cluster at a round's start, which decides the rest of the
    /// continuation (`check/settle_memo.rs`): the nodes, their timers and the set of messages
    /// queued (by the sum of their hashes, which needs no sorting when it is known).
    fn fingerprint(&mut self) -> u64 {
        let queued = match self.queue_set_hash {
            Some(sum) => sum,
            None => {
                self.normalise_queue();
                let sum = self
                    .queue
                    .iter()
                    .fold(0u64, |h, e| h.wrapping_add(queued_hash(e)));
                self.queue_set_hash = Some(sum);
                sum
            }
        };
        let nodes: Vec<u64> = (0..self.nodes.len()).map(|n| self.node_hash(n)).collect();
        let timers: Vec<u64> = (0..self.timers.len())
            .map(|n| self.timers_hash(n))
            .collect();
        round_start_fingerprint(nodes, timers, queued, self.queue.len())
    }

    /// Node `n`'s own hash (what `Hashed` computes), taken from the origin while its state is
    /// still the origin's.
    fn node_hash(&self, n: usize) -> u64 {
        match self.node_as_origin[n] {
            true => self.origin.nodes[n].hash_value(),
            false => stable_hash(&self.nodes[n]),
        }
    }

    /// The hash of node `n`'s timers, taken from the origin while they are still the origin's.
    fn timers_hash(&self, n: usize) -> u64 {
        match self.timers_as_origin[n] {
            true => self.origin.timers[n].hash_value(),
            false => stable_hash(&self.timers[n]),
        }
    }

    /// Delivers every message queued (normalised), once each, in round order; returns them and
    /// whether a node state changed.
    fn deliver_all(&mut self) -> (Vec<Queued>, bool) {
        let inbox = std::mem::take(&mut self.queue);
        let mut changed = false;
        for env in &inbox {
            changed |= self.deliver(env);
        }
        (inbox, changed)
    }

    /// Delivers one message; returns whether its receiver's state changed.
    fn deliver(&mut self, env: &Envelope) -> bool {
        let mut state = Cow::Borrowed(&self.nodes[env.dst.index()]);
        let mut out = slotguard_protocol::actor::out_buffer();
        self.model
            .actor
            .on_msg_ref(&mut state, Id::from(env.src), &env.msg, &mut out);
        let after = owned(state);
        self.apply(env.dst, after, out)
    }

    /// The first round, node by node, when every node, its timers and its inbox are still the
    /// origin's. A round's steps at one node read and write only that node (what they send
    /// waits for the next round), so the round is, for each node, a function of its state, its
    /// timers and its inbox, and comes out the same whether the nodes take their steps in turn
    /// or interleaved (the next round's queue is sorted). Each node's part is looked up in the
    /// memo by the hashes of those three (`SettleMemo::node_round`): from one state to the next,
    /// most nodes and their inboxes are unchanged.
    fn first_round_by_node(&mut self) -> (Vec<Queued>, bool) {
        let inbox = std::mem::take(&mut self.queue);
        let mut changed = false;
        let mut start = 0;
        let mut set_hash = 0u64;
        for n in 0..self.nodes.len() {
            let end = start + inbox[start..].partition_point(|e| e.dst.index() == n);
            let mine = &inbox[start..end];
            start = end;
            let key = node_round_key(
                self.origin,
                n,
                mine.iter()
                    .fold(0u64, |h, e| h.wrapping_add(queued_hash(e))),
                mine.len(),
            );
            let memo = &self.model.settle_memo;
            if let Some(done) = memo.node_round(key) {
                self.nodes[n] = done.node.clone();
                self.timers[n] = done.timers.clone();
                self.node_as_origin[n] = done.node_as_origin;
                self.timers_as_origin[n] = done.timers_as_origin;
                self.queue
                    .extend(done.sent.iter().cloned().map(Queued::Sent));
                set_hash = set_hash.wrapping_add(done.sent_hash);
                changed |= done.changed;
                continue;
            }
            let sent_before = self.queue.len();
            let mut node_changed = false;
            for env in mine {
                node_changed |= self.deliver(env);
            }
            node_changed |= self.fire_due(n);
            // What this node sent, without repeats (what others send differs in the sender).
            let mut sent = self.queue.split_off(sent_before);
            sent.sort_by(|a, b| round_order(a, b));
            sent.dedup();
            let sent_hash = sent
                .iter()
                .fold(0u64, |h, e| h.wrapping_add(queued_hash(e)));
            set_hash = set_hash.wrapping_add(sent_hash);
            self.queue.extend(sent.iter().cloned());
            memo.record_node_round(
                key,
                NodeRound {
                    node: self.nodes[n].clone(),
                    timers: self.timers[n].clone(),
                    node_hash: self.node_hash(n),
                    timers_hash: self.timers_hash(n),
                    node_as_origin: self.node_as_origin[n],
                    timers_as_origin: self.timers_as_origin[n],
                    sent: sent.into_iter().map(|q| (*q).clone()).collect(),
                    sent_hash,
                    changed: node_changed,
                },
            );
            changed |= node_changed;
        }
        // The nodes' messages, each without repeats, differ from node to node in the sender.
        self.queue_set_hash = Some(set_hash);
        (inbox, changed)
    }

    /// Whether every message queued for the next round was delivered in this one (`delivered`
    /// is sorted). If no node state changed in this round, the next round then delivers only
    /// messages that changed nothing at these same node states, fires the same timers, and
    /// queues only messages queued now: nothing changes again.
    fn queue_delivered(&mut self, delivered: &[Queued]) -> bool {
        self.normalise_queue();
        self.queue.len() <= delivered.len()
            && self
                .queue
                .iter()
                .all(|env| delivered.binary_search_by(|d| round_order(d, env)).is_ok())
    }

    /// Fires every armed `ElectionTimeout`; returns whether a node state changed.
    fn fire_election_timeouts(&mut self) -> bool {
        let mut changed = false;
        for n in 0..self.nodes.len() {
            if self.timers[n].remove(&Timer::ElectionTimeout) {
                self.timers_as_origin[n] = false;
                changed |= self.fire(NodeId(n as u16), &Timer::ElectionTimeout);
            }
        }
        changed
    }

    /// Fires every armed timer but peer and election timeouts; returns whether a node state
    /// changed.
    fn fire_timers(&mut self) -> bool {
        let mut changed = false;
        for n in 0..self.nodes.len() {
            changed |= self.fire_due(n);
        }
        changed
    }

    /// Fires node `n`'s armed timers but peer and election timeouts, in timer order; returns
    /// whether its state changed.
    fn fire_due(&mut self, n: usize) -> bool {
        let mut changed = false;
        let due: Vec<Timer> = self.timers[n]
            .iter()
            .filter(|t| !matches!(t, Timer::PeerTimeout(_) | Timer::ElectionTimeout))
            .cloned()
            .collect();
        for timer in due {
            if !self.timers[n].remove(&timer) {
                continue;
            }
            self.timers_as_origin[n] = false;
            changed |= self.fire(NodeId(n as u16), &timer);
        }
        changed
    }
}

/// Runs the fair continuation of `s` (see the module docs).
pub fn settle(model: &ClusterModel, s: &ClusterState) -> Settled {
    settle_from(model, s, InFlight::Delivered)
}

/// What the continuation does with the messages in flight at its start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InFlight {
    /// Each is delivered in the first round (the network loses nothing more).
    Delivered,
    /// All are lost: the continuation starts from the nodes alone, and what they said before
    /// arrives only if they say it again.
    Lost,
}

/// The key of node `n`'s first round in the memo (`first_round_by_node`): the hashes of its
/// state and timers in `origin`, and the set hash and length of its inbox.
fn node_round_key(origin: &ClusterState, n: usize, inbox_hash: u64, inbox_len: usize) -> u64 {
    stable_hash(&(
        origin.nodes[n].hash_value(),
        origin.timers[n].hash_value(),
        inbox_hash,
        inbox_len,
    ))
}

/// With every node's first round in the memo (and some node changed by it), the start of the
/// second round is known without running the first: each node's state and timers after it,
/// and the messages it sent (`first_round_by_node` would put together exactly these). If the
/// memo knows how many rounds remain from there, that decides the continuation, as the loop of
/// [`settle_from`] would decide it at the second round's start; `None` otherwise (the
/// continuation is then run).
fn settled_from_second_round(
    model: &ClusterModel,
    s: &ClusterState,
    in_flight: InFlight,
    first_start: u64,
) -> Option<Settled> {
    let memo = &model.settle_memo;
    let count = s.nodes.len();
    let (mut nodes, mut timers) = (Vec::with_capacity(count), Vec::with_capacity(count));
    let (mut queued, mut len, mut changed) = (0u64, 0usize, false);
    for n in 0..count {
        let (inbox_hash, inbox_len) = match in_flight {
            InFlight::Delivered => {
                let dst = NodeId(n as u16);
                (s.network.chunk_set_hash(dst), s.network.chunk_len(dst))
            }
            InFlight::Lost => (0, 0),
        };
        let done = memo.node_round(node_round_key(s, n, inbox_hash, inbox_len))?;
        nodes.push(done.node_hash);
        timers.push(done.timers_hash);
        queued = queued.wrapping_add(done.sent_hash);
        len += done.sent.len();
        changed |= done.changed;
    }
    // A first round that changes no node may be quiet: the loop decides that.
    if !changed {
        return None;
    }
    let remaining = memo.remaining(round_start_fingerprint(nodes, timers, queued, len))?;
    let rounds = 1 + remaining;
    if rounds > MAX_ROUNDS {
        return Some(Settled::NoFixedPoint);
    }
    record(memo, &[(first_start, 1)], rounds);
    Some(Settled::Agreed { rounds })
}

/// The fingerprint of a cluster at a round's start: its nodes' and timer sets' own hashes, and
/// the set hash and length of its queue.
fn round_start_fingerprint(nodes: Vec<u64>, timers: Vec<u64>, queued: u64, len: usize) -> u64 {
    stable_hash(&(nodes, timers, queued, len))
}

/// The continuation of `s` with its messages in flight delivered or all lost.
pub fn settle_from(model: &ClusterModel, s: &ClusterState, in_flight: InFlight) -> Settled {
    let (queue_set_hash, queue_len) = match in_flight {
        InFlight::Delivered => (s.network.set_hash(), s.network.len()),
        InFlight::Lost => (0, 0),
    };
    // When nothing happens before the first round (no node to restart, no FAIL-undo to fire),
    // the first round starts from `s` itself: look it up before copying any node.
    let starts_from_origin = !s.crashed.iter().any(|&c| c)
        && !s
            .timers
            .iter()
            .any(|t| t.iter().any(|t| matches!(t, Timer::FailUndo(_))));
    // The first round's start when it was looked up here (and not found).
    let mut first_start = None;
    if model.has(Reduction::MemoiseSettle) && starts_from_origin {
        let fingerprint = round_start_fingerprint(
            s.nodes.iter().map(|n| n.hash_value()).collect(),
            s.timers.iter().map(|t| t.hash_value()).collect(),
            queue_set_hash,
            queue_len,
        );
        if let Some(remaining) = model.settle_memo.remaining(fingerprint) {
            return match remaining > MAX_ROUNDS {
                true => Settled::NoFixedPoint,
                false => Settled::Agreed { rounds: remaining },
            };
        }
        first_start = Some(fingerprint);
        if let Some(settled) = settled_from_second_round(model, s, in_flight, fingerprint) {
            return settled;
        }
    }
    let queue: Vec<Queued> = match in_flight {
        InFlight::Delivered => s.network.iter().cloned().map(Queued::InFlight).collect(),
        InFlight::Lost => Vec::new(),
    };
    let mut cluster = Cluster {
        queue_set_hash: Some(queue_set_hash),
        model,
        origin: s,
        nodes: s.nodes.iter().map(|n| (**n).clone()).collect(),
        timers: s.timers.iter().map(|t| (**t).clone()).collect(),
        queue,
        node_as_origin: vec![true; s.nodes.len()],
        timers_as_origin: vec![true; s.timers.len()],
    };
    // Faults stop: crashed nodes restart from their state files.
    for (n, &crashed) in s.crashed.iter().enumerate() {
        if crashed {
            let node = NodeId(n as u16);
            let storage = s.storage[n].as_deref().cloned();
            let mut out = slotguard_protocol::actor::out_buffer();
            let state = model.actor.on_start(Id::from(node), &storage, &mut out);
            cluster.timers[n].clear();
            cluster.timers_as_origin[n] = false;
            cluster.node_as_origin[n] = false;
            cluster.apply(node, Some(state), out);
        }
    }
    for n in 0..cluster.nodes.len() {
        cluster.fire_fail_undo(NodeId(n as u16));
    }
    // When the first round starts from the origin's nodes, timers and messages (nothing
    // restarted, no FAIL-undo fired), it can go node by node, from the memo.
    let by_node = model.has(Reduction::MemoiseSettle) && starts_from_origin;
    debug_assert!(
        !by_node
            || (cluster.node_as_origin.iter().all(|&same| same)
                && cluster.timers_as_origin.iter().all(|&same| same))
    );
    // Messages addressed to a node that was down are delivered now, as a restarted node's
    // socket would receive late datagrams; that is a superset of dropping them.
    let memo = &model.settle_memo;
    // The clusters at the rounds' starts so far: (fingerprint, round).
    let mut starts: Vec<(u64, usize)> = Vec::new();
    for round in 1..=MAX_ROUNDS {
        if let (1, Some(fingerprint)) = (round, first_start) {
            starts.push((fingerprint, round));
        } else if model.has(Reduction::MemoiseSettle) {
            let fingerprint = cluster.fingerprint();
            if let Some(remaining) = memo.remaining(fingerprint) {
                let rounds = round - 1 + remaining;
                if rounds > MAX_ROUNDS {
                    return Settled::NoFixedPoint;
                }
                record(memo, &starts, rounds);
                return Settled::Agreed { rounds };
            }
            starts.push((fingerprint, round));
        }
        cluster.normalise_queue();
        let (delivered, by_messages, by_timers) = if round == 1 && by_node {
            let (delivered, changed) = cluster.first_round_by_node();
            (delivered, changed, false)
        } else {
            let (delivered, by_messages) = cluster.deliver_all();
            (delivered, by_messages, cluster.fire_timers())
        };
        if by_messages || by_timers || !cluster.queue_delivered(&delivered) {
            continue;
        }
        // Quiet: the next round would repeat this one, so time passes: an election that has
        // not won by now times out (auth_timeout is far longer than a round trip).
        if cluster.fire_election_timeouts() {
            continue;
        }
        return match disagreement(&cluster.nodes) {
            None => {
                record(memo, &starts, round);
                Settled::Agreed { rounds: round }
            }
            Some(why) => Settled::Disagreed { why },
        };
    }
    Settled::NoFixedPoint
}

/// Records in the memo, for each round start of a continuation that reached agreement at the
/// end of round `last`, the rounds it still took.
fn record(memo: &SettleMemo, starts: &[(u64, usize)], last: usize) {
    for &(fingerprint, round) in starts {
        memo.record(fingerprint, last + 1 - round);
    }
}

/// What is wrong with the nodes' agreement, if anything.
pub fn disagreement(nodes: &[NodeState]) -> Option<String> {
    let first = nodes.first()?;
    for node in nodes {
        if node.slots != first.slots {
            return Some(format!(
                "{} and {} bind slots differently",
                first.me, node.me
            ));
        }
        for (i, p) in node.peers.iter().enumerate() {
            if i != node.me.index() && p.health != Health::Ok {
                return Some(format!("{} still suspects n{i} ({:?})", node.me, p.health));
            }
        }
    }
    for node in nodes {
        match node.role {
            Role::Master if !node.slots.owns_any(node.me) => {
                return Some(format!("{} is a master without slots", node.me));
            }
            Role::Replica { of } if nodes[of.index()].role != Role::Master => {
                return Some(format!(
                    "{} replicates {of}, which is not a master",
                    node.me
                ));
            }
            _ => {}
        }
    }
    for (slot, owner) in first.slots.iter() {
        let Some(owner) = owner else { continue };
        let o = &nodes[owner.index()];
        if o.role != Role::Master || o.slots.owner(slot) != Some(owner) {
            return Some(format!(
                "slot {slot} is bound to {owner}, which does not serve it"
            ));
        }
    }
    None
}

/// The hash of a queued message (the hash its `Shared` form carries).
fn queued_hash(q: &Queued) -> u64 {
    match q {
        Queued::InFlight(shared) => shared.hash_value(),
        Queued::Sent(env) => stable_hash(env),
    }
}

/// The state a step wrote, if it wrote one.
fn owned(state: Cow<'_, NodeState>) -> Option<NodeState> {
    match state {
        Cow::Owned(s) => Some(s),
        Cow::Borrowed(_) => None,
    }
}
