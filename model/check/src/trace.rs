//! Counterexamples a reader can follow, and that have been re-checked before anyone reads them.
//!
//! The checker reports a discovery as a path of actions. [`replay`] runs that path again from the
//! initial state through the model's own `actions` and `next_state` — every step must be an
//! action the model offers in the state before it — and evaluates the property on the final
//! state: an always-property must be violated there, a sometimes-property satisfied. Only a path
//! that passes is turned into a [`Trace`]: for each step, who did what, the acting node's state
//! change, and the messages it sent.

use std::fmt::Write as _;

use serde::Serialize;
use stateright::{Expectation, Model};
use thiserror::Error;

use crate::model::{Action, ClusterModel, ClusterState};
use slotguard_protocol::ids::NodeId;
use slotguard_protocol::message::{Header, Msg};
use slotguard_protocol::state::{Election, Health, NodeState, Role};

/// One step of a counterexample.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TraceStep {
    /// Step number (1-based).
    pub index: usize,
    /// What happened, e.g. `n0 -> n3: AUTH_ACK epoch=4`.
    pub action: String,
    /// Changes of the acting node's state, one per line (`role: replica of n2 -> master`).
    pub changes: Vec<String>,
    /// Messages the step put in flight (new envelopes only).
    pub sent: Vec<String>,
}

/// A replayed and re-checked discovery.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Trace {
    /// The property.
    pub property: &'static str,
    /// The steps from the initial state.
    pub steps: Vec<TraceStep>,
    /// The path as stateright's explorer encodes it (`0/3/1/...`), for `slotguard explore`.
    pub explorer_path: String,
    /// The per-node summary of the final state.
    pub final_state: Vec<String>,
    /// Why the final state violates the property, where the steps alone do not show it: for
    /// convergence (8), which continuation failed and how it ended.
    pub why: Option<String>,
}

/// A discovery that does not replay.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ReplayError {
    /// The model has no initial state.
    #[error("the model has no initial state")]
    NoInitialState,
    /// A step of the path is not enabled where it is taken.
    #[error("step {step} ({action}) is not an action of the state before it")]
    NotEnabled {
        /// Step number.
        step: usize,
        /// The action.
        action: String,
    },
    /// A step is enabled but changes nothing.
    #[error("step {step} ({action}) has no successor state")]
    NoSuccessor {
        /// Step number.
        step: usize,
        /// The action.
        action: String,
    },
    /// The property does not have the expected value at the end of the path.
    #[error("the path does not end in a state that {0}")]
    WrongEnd(&'static str),
    /// No such property.
    #[error("no property named {0}")]
    UnknownProperty(String),
}

/// Replays `actions` from the initial state and re-checks `property` at the end.
pub fn replay(
    model: &ClusterModel,
    property: &str,
    actions: &[Action],
) -> Result<Trace, ReplayError> {
    let prop = model
        .properties()
        .into_iter()
        .find(|p| p.name == property)
        .ok_or_else(|| ReplayError::UnknownProperty(property.to_string()))?;
    let mut state = model
        .init_states()
        .into_iter()
        .next()
        .ok_or(ReplayError::NoInitialState)?;
    let mut steps = Vec::with_capacity(actions.len());
    let mut indices = vec![0usize];
    for (i, action) in actions.iter().enumerate() {
        let mut enabled = Vec::new();
        model.actions(&state, &mut enabled);
        let Some(at) = enabled.iter().position(|a| a == action) else {
            return Err(ReplayError::NotEnabled {
                step: i + 1,
                action: describe_action(action),
            });
        };
        indices.push(at);
        let next =
            model
                .next_state(&state, action.clone())
                .ok_or_else(|| ReplayError::NoSuccessor {
                    step: i + 1,
                    action: describe_action(action),
                })?;
        steps.push(describe_step(i + 1, action, &state, &next));
        state = next;
    }
    let holds = (prop.condition)(model, &state);
    let expected = match prop.expectation {
        Expectation::Always => !holds,
        Expectation::Sometimes => holds,
        Expectation::Eventually => !holds,
    };
    if !expected {
        return Err(ReplayError::WrongEnd(match prop.expectation {
            Expectation::Sometimes => "satisfies the property",
            _ => "violates the property",
        }));
    }
    let explorer_path = indices
        .iter()
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join("/");
    let why = match prop.name {
        crate::properties::names::CONVERGES => {
            crate::properties::convergence_failure(model, &state)
        }
        crate::properties::names::ACKED_WRITES_KEPT => crate::properties::lost_write(model, &state)
            .map(|(node, write)| {
                let w = state.ghost.writes[write];
                format!(
                    "w{write} (slot {}, accepted by {} and acknowledged to the client) is not in the data of {node}, which serves slot {}",
                    w.slot, w.by, w.slot
                )
            }),
        _ => None,
    };
    Ok(Trace {
        property: prop.name,
        steps,
        explorer_path,
        final_state: summarize_state(&state),
        why,
    })
}

/// `n0 -> n3: AUTH_ACK epoch=4`, `n2: timer PeerTimeout(n0)`, `crash n1`, ...
pub fn describe_action(action: &Action) -> String {
    match action {
        Action::Deliver(env) => format!("{} -> {}: {}", env.src, env.dst, describe_msg(&env.msg)),
        Action::Drop(env) => format!(
            "lose {} -> {}: {}",
            env.src,
            env.dst,
            describe_msg(&env.msg)
        ),
        Action::Timeout { node, timer } => format!("{node}: timer {timer} fires"),
        Action::Crash(node) => format!("{node} crashes"),
        Action::Recover(node) => format!("{node} restarts from its state file"),
        Action::CrashRestart(node) => format!("{node} crashes and restarts from its state file"),
        Action::Failover { node, mode } => {
            format!("operator: CLUSTER FAILOVER {} to {node}", mode.name())
        }
        Action::Write(node) => format!("client: a write to {node}"),
        Action::Copy(node) => format!("{node} copies its master's data and confirms it"),
    }
}

fn describe_header(h: &Header) -> String {
    let role = match (h.master, h.flags.paused, h.flags.data_lost) {
        (None, _, true) => "master data lost".to_string(),
        (None, false, _) => "master".to_string(),
        (None, true, _) => "master paused".to_string(),
        (Some(m), _, _) => format!("replica of {m}"),
    };
    format!(
        "{role} currentEpoch={} configEpoch={} slots={}",
        h.current_epoch,
        h.config_epoch,
        ranges(&h.slots.ranges())
    )
}

/// A message's kind and key fields.
pub fn describe_msg(msg: &Msg) -> String {
    match msg {
        Msg::Ping(h) => format!("PING [{}]", describe_header(h)),
        Msg::Pong(h) => format!("PONG [{}]", describe_header(h)),
        Msg::Gossip(e) => format!(
            "GOSSIP {} is {:?} (configEpoch={}{})",
            e.node,
            e.suspicion,
            e.config_epoch,
            if e.from_voting_master { ", report" } else { "" }
        ),
        Msg::Fail { node } => format!("FAIL {node}"),
        Msg::AuthRequest(r) => format!(
            "AUTH_REQUEST epoch={} for {} (configEpoch={}, slots={}){}",
            r.epoch,
            r.master,
            r.master_config_epoch,
            ranges(&r.slots.ranges()),
            if r.forced { " manual" } else { "" }
        ),
        Msg::AuthAck { epoch, forced, .. } => {
            format!(
                "AUTH_ACK epoch={epoch}{}",
                if *forced { " manual" } else { "" }
            )
        }
        Msg::FailoverStart => "MFSTART".to_string(),
        Msg::Update(c) => format!(
            "UPDATE {} owns {} at configEpoch={}",
            c.node,
            ranges(&c.slots.ranges()),
            c.config_epoch
        ),
    }
}

/// Slot ranges as `0-5460,5461` (or `-` for none).
pub fn ranges(r: &[(u16, u16)]) -> String {
    if r.is_empty() {
        return "-".to_string();
    }
    r.iter()
        .map(|&(a, b)| {
            if a == b {
                a.to_string()
            } else {
                format!("{a}-{b}")
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

fn role(r: Role) -> String {
    match r {
        Role::Master => "master".to_string(),
        Role::Replica { of } => format!("replica of {of}"),
    }
}

pub(crate) fn health(h: Health) -> &'static str {
    match h {
        Health::Ok => "ok",
        Health::PFail => "PFAIL",
        Health::Fail { undo_ready: false } => "FAIL",
        Health::Fail { undo_ready: true } => "FAIL(undo ready)",
    }
}

fn election(e: &Election) -> String {
    match e {
        Election::Idle => "idle".to_string(),
        Election::Scheduled => "scheduled".to_string(),
        Election::Running {
            epoch,
            votes,
            forced,
        } => {
            let voters: Vec<String> = votes.iter().map(|v| v.to_string()).collect();
            let manual = if *forced { " (manual failover)" } else { "" };
            format!(
                "running epoch={epoch} votes={{{}}}{manual}",
                voters.join(",")
            )
        }
    }
}

fn slot_map(s: &NodeState) -> String {
    let mut out = String::new();
    let mut current: Option<(u16, u16, Option<NodeId>)> = None;
    let flush = |c: Option<(u16, u16, Option<NodeId>)>, out: &mut String| {
        if let Some((a, b, o)) = c {
            if !out.is_empty() {
                out.push(' ');
            }
            let owner = o.map_or("-".to_string(), |o| o.to_string());
            let _ = write!(out, "{}:{owner}", ranges(&[(a, b)]));
        }
    };
    for (slot, owner) in s.slots.iter() {
        current = match current {
            Some((a, _, o)) if o == owner => Some((a, slot, o)),
            c => {
                flush(c, &mut out);
                Some((slot, slot, owner))
            }
        };
    }
    flush(current, &mut out);
    out
}

/// One line per node: `n3 master cur=4 cfg=4 vote=0 slots=0:n0 1:n1 2:n3 | n2 FAIL | election idle`.
pub fn summarize_node(s: &NodeState, crashed: bool) -> String {
    let suspects: Vec<String> = s
        .peers
        .iter()
        .enumerate()
        .filter(|(i, p)| *i != s.me.index() && p.health != Health::Ok)
        .map(|(i, p)| format!("n{i} {}", health(p.health)))
        .collect();
    format!(
        "{}{} {} currentEpoch={} configEpoch={} lastVoteEpoch={} slots=[{}] suspects=[{}] election={}{}",
        s.me,
        if crashed { " (crashed)" } else { "" },
        role(s.role),
        s.current_epoch,
        s.config_epoch,
        s.last_vote_epoch,
        slot_map(s),
        suspects.join(", "),
        election(&s.election),
        data(&s.data)
    )
}

/// ` data=[w0 w1]` (with ` incomplete` after a restart that lost it), or nothing for a node
/// that has no writes and lost none.
fn data(d: &slotguard_protocol::durability::Data) -> String {
    if d.log.is_empty() && d.complete {
        return String::new();
    }
    let writes: Vec<String> = d.log.iter().map(|w| format!("w{}", w.0)).collect();
    format!(
        " data=[{}]{}",
        writes.join(" "),
        if d.complete { "" } else { " incomplete" }
    )
}

/// The per-node summary of a cluster state.
pub fn summarize_state(s: &ClusterState) -> Vec<String> {
    s.nodes
        .iter()
        .zip(&s.crashed)
        .map(|(n, &c)| summarize_node(n, c))
        .collect()
}

/// Field-by-field changes between two states of one node.
pub fn node_changes(b: &NodeState, a: &NodeState) -> Vec<String> {
    let mut out = Vec::new();
    if b.role != a.role {
        out.push(format!("role: {} -> {}", role(b.role), role(a.role)));
    }
    for (name, x, y) in [
        ("currentEpoch", b.current_epoch, a.current_epoch),
        ("configEpoch", b.config_epoch, a.config_epoch),
        ("lastVoteEpoch", b.last_vote_epoch, a.last_vote_epoch),
    ] {
        if x != y {
            out.push(format!("{name}: {x} -> {y}"));
        }
    }
    if b.slots != a.slots {
        out.push(format!("slots: [{}] -> [{}]", slot_map(b), slot_map(a)));
    }
    for (i, (p, q)) in b.peers.iter().zip(&a.peers).enumerate() {
        if i == a.me.index() {
            continue;
        }
        if p.health != q.health {
            out.push(format!(
                "n{i}: {} -> {}",
                health(p.health),
                health(q.health)
            ));
        }
        if p.role != q.role {
            out.push(format!("n{i} role: {} -> {}", role(p.role), role(q.role)));
        }
        if p.config_epoch != q.config_epoch {
            out.push(format!(
                "n{i} configEpoch: {} -> {}",
                p.config_epoch, q.config_epoch
            ));
        }
        if p.reports != q.reports {
            let list = |s: &slotguard_protocol::bitset::NodeSet| {
                s.iter()
                    .map(|n| n.to_string())
                    .collect::<Vec<_>>()
                    .join(",")
            };
            out.push(format!(
                "n{i} failure reports: {{{}}} -> {{{}}}",
                list(&p.reports),
                list(&q.reports)
            ));
        }
    }
    if b.election != a.election {
        out.push(format!(
            "election: {} -> {}",
            election(&b.election),
            election(&a.election)
        ));
    }
    if b.data.log != a.data.log || b.data.complete != a.data.complete {
        let (x, y) = (data(&b.data), data(&a.data));
        let none = |s: String| {
            if s.is_empty() {
                " data=[]".to_string()
            } else {
                s
            }
        };
        out.push(format!("{} ->{}", none(x).trim_start(), none(y)));
    }
    out
}

/// Step `index` of a path: the action, the acting node's changes, and the new messages.
pub fn describe_step(
    index: usize,
    action: &Action,
    b: &ClusterState,
    a: &ClusterState,
) -> TraceStep {
    let actor = match action {
        Action::Deliver(env) => Some(env.dst),
        Action::Timeout { node, .. }
        | Action::Crash(node)
        | Action::Recover(node)
        | Action::CrashRestart(node)
        | Action::Failover { node, .. }
        | Action::Write(node)
        | Action::Copy(node) => Some(*node),
        Action::Drop(_) => None,
    };
    let changes = actor
        .map(|n| node_changes(&b.nodes[n.index()], &a.nodes[n.index()]))
        .unwrap_or_default();
    // New envelopes from the acting node. (Envelopes *to* it that changed were rewritten into
    // their canonical form for its new state, specs/protocol.md §8.4: not sent by this step.)
    let sent = a
        .network
        .iter()
        .filter(|e| Some(e.src) == actor && !b.network.contains(e))
        .map(|e| format!("{} -> {}: {}", e.src, e.dst, describe_msg(&e.msg)))
        .collect();
    TraceStep {
        index,
        action: describe_action(action),
        changes,
        sent,
    }
}
