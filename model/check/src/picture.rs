//! A picture of the cluster as data: per-node cards, messages in flight grouped by receiver
//! and kind, fault budgets, the history the properties read, and the steps of a path for a
//! sequence diagram — everything the pages of `slotguard explore`, `slotguard check --html`
//! and the live view of `slotguard cluster` draw.
//!
//! Why data and not markup: the three views show the same things from different sources (a
//! model state here; what running nodes report, in the binary), and one renderer in the browser
//! draws them all from this JSON, so a card looks the same in a counterexample report as in
//! the live view of a failover. A running node builds its own card with [`node_card`], the
//! builder the explorer uses, from the same actor state. Fields a source cannot know (a live
//! node's armed timers, say) are empty or `None`, and the page says so rather than guessing.
//!
//! A path is a list of action indices from an initial state, as stateright's explorer and
//! `slotguard check` print them (`0/4/1`, specs/background.md §S2): the model is
//! deterministic, so [`follow`] rebuilds every state of a path from its indices. Steps and
//! action buttons are named by [`describe_action`], the names counterexamples use
//! (`n0 -> n3: AUTH_ACK epoch=4`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use stateright::{Expectation, Model};
use thiserror::Error;

use crate::model::{Action, ClusterModel, ClusterState};
use crate::trace::{describe_action, describe_msg, describe_step, health};
use slotguard_protocol::ids::NodeId;
use slotguard_protocol::message::Msg;
use slotguard_protocol::state::{Election, NodeState, Role, SlotMap};

/// Everything the page draws about one moment of a cluster.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Picture {
    /// One card per node, in id order.
    pub nodes: Vec<NodeCard>,
    /// Hash slots of the cluster (the full width of every slot bar).
    pub slot_count: usize,
    /// Messages in flight, grouped by receiver and kind (model states only).
    pub in_flight: Vec<InFlightGroup>,
    /// Messages in flight in all.
    pub in_flight_total: usize,
    /// Fault budgets: used so far and the configuration's limit (model states only).
    pub budgets: Vec<Budget>,
    /// The history the properties read, one fact per line (model states only).
    pub history: Vec<Fact>,
    /// Each property evaluated at this state (model states only).
    pub properties: Vec<PropertyAt>,
}

/// What one node believes, as one card.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeCard {
    /// `n0`: the node's index in the layout.
    pub id: String,
    /// A live node's name (the first 8 hex digits of its CLUSTER NODES id).
    pub name: Option<String>,
    /// A live node's client address.
    pub address: Option<String>,
    /// Why the node shows nothing current: `crashed` (model) or `unreachable: ...` (live).
    pub down: Option<String>,
    /// `master` or `replica`.
    pub role: String,
    /// The master a replica follows.
    pub master: Option<String>,
    /// currentEpoch.
    pub current_epoch: Option<u64>,
    /// configEpoch (the node's own; a live replica reports its master's).
    pub config_epoch: Option<u64>,
    /// lastVoteEpoch: the last epoch it voted in.
    pub last_vote_epoch: Option<u64>,
    /// The slot map in this node's view, as runs of one owner.
    pub slots: Vec<SlotRun>,
    /// The peers it suspects (PFAIL) or has marked FAIL.
    pub beliefs: Vec<Belief>,
    /// Its failover attempt; `None` where the source does not say.
    pub election: Option<ElectionView>,
    /// The votes it granted, as the history keeps them (`epoch 4 -> n3`).
    pub votes: Vec<String>,
    /// Armed timers (model states only).
    pub timers: Vec<String>,
    /// Further figures a source reports (`cluster_state: ok`, ...).
    pub extra: Vec<Fact>,
}

/// Slots `start..=end`, all bound to `owner` (`None`: unbound) in one node's view.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlotRun {
    /// First slot.
    pub start: u16,
    /// Last slot.
    pub end: u16,
    /// The owner (`n3`), if bound.
    pub owner: Option<String>,
}

/// One node's suspicion of a peer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Belief {
    /// The suspected peer (`n2`).
    pub peer: String,
    /// `PFAIL`, `FAIL` or `FAIL(undo ready)`.
    pub health: String,
    /// Masters whose failure reports about the peer it holds.
    pub reports: Vec<String>,
}

/// A replica's failover attempt.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ElectionView {
    /// `idle`, `scheduled` or `running`.
    pub state: String,
    /// The election epoch, while running.
    pub epoch: Option<u64>,
    /// Masters that granted it a vote in this election.
    pub votes: Vec<String>,
}

/// Messages of one kind in flight to one node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct InFlightGroup {
    /// The receiver (`n3`).
    pub dst: String,
    /// The message kind (`AUTH_ACK`).
    pub kind: String,
    /// Each message, as counterexamples write it (`n0 -> n3: AUTH_ACK epoch=4`).
    pub messages: Vec<String>,
}

/// A fault budget.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Budget {
    /// `crashes`, `suspicions` or `elections`.
    pub name: String,
    /// Spent so far.
    pub used: u64,
    /// The configuration's limit.
    pub limit: u64,
}

/// A labelled line of text.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fact {
    /// What it is.
    pub label: String,
    /// Its value.
    pub value: String,
}

impl Fact {
    fn new(label: impl Into<String>, value: impl Into<String>) -> Fact {
        Fact {
            label: label.into(),
            value: value.into(),
        }
    }
}

/// A property's value at one state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PropertyAt {
    /// Its name.
    pub name: String,
    /// `always` or `sometimes`.
    pub kind: String,
    /// Whether its condition holds at the state: an always-property is violated here when it
    /// does not; a sometimes-property is reached here when it does.
    pub holds: bool,
}

/// One step of a path, for the step list and the sequence diagram.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StepView {
    /// Step number, from 1.
    pub index: usize,
    /// The step as counterexamples name it (`n0 -> n3: AUTH_ACK epoch=4`).
    pub action: String,
    /// `deliver`, `lose`, `timer`, `crash`, `restart`, `crash-restart`, or `event` (live).
    pub kind: String,
    /// The sender, for a message.
    pub from: Option<usize>,
    /// The acting node (for a lost message, its receiver).
    pub to: usize,
    /// A short label for the diagram (`AUTH_ACK e=4`, `PeerTimeout(n1)`).
    pub label: String,
    /// The acting node's state changes.
    pub changes: Vec<String>,
    /// Messages the step sent.
    pub sent: Vec<String>,
}

/// An action enabled in a state, as a button.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ActionButton {
    /// Its index among the state's actions (the next element of a path).
    pub index: usize,
    /// Its name, as counterexample steps are named.
    pub label: String,
    /// The node that acts (for a lost message, its receiver).
    pub actor: usize,
    /// As [`StepView::kind`].
    pub kind: String,
    /// Following it changes nothing (stateright's explorer calls such actions ignored).
    pub noop: bool,
}

/// What the explorer page shows at a path.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ExplorerView {
    /// The path, normalised (`0/4/1`).
    pub path: String,
    /// The steps from the initial state.
    pub steps: Vec<StepView>,
    /// The state at the end of the path.
    pub picture: Picture,
    /// The actions enabled there.
    pub actions: Vec<ActionButton>,
}

/// A path of a report, with the cluster after every step.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TraceView {
    /// The property the path is about.
    pub property: String,
    /// `counterexample` or `example`.
    pub what: String,
    /// The steps.
    pub steps: Vec<StepView>,
    /// The cluster at the start (index 0) and after each step.
    pub pictures: Vec<Picture>,
    /// The path in the explorer's encoding.
    pub explorer_path: String,
    /// The command that opens it in the explorer.
    pub reopen: String,
    /// Why the end violates the property, where the steps alone do not show it.
    pub why: Option<String>,
}

/// A property's verdict in a report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct VerdictRow {
    /// The property.
    pub name: String,
    /// `always` or `sometimes`.
    pub kind: String,
    /// As `slotguard check` prints it (`holds`, `VIOLATED`, `found (14 steps)`, ...).
    pub result: String,
    /// Whether this result fails the run.
    pub failed: bool,
}

/// A `slotguard check` report as one page.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ReportView {
    /// The configuration checked, in words.
    pub configuration: String,
    /// `PASS`, `FAIL` or `INCOMPLETE`.
    pub result: String,
    /// The run's figures and notes, one per line, as the text report prints them.
    pub summary: Vec<String>,
    /// Every property's verdict.
    pub verdicts: Vec<VerdictRow>,
    /// The counterexamples (and, with `--examples`, the examples).
    pub traces: Vec<TraceView>,
}

/// A path that the model cannot follow.
#[derive(Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum PathError {
    /// An element of the path is not a number.
    #[error("{0:?} is not an action index (a path looks like 0/4/1)")]
    NotAnIndex(String),
    /// The initial state named does not exist.
    #[error("the model has no initial state {0}")]
    NoInitialState(usize),
    /// A step names an action the state before it does not have.
    #[error("step {step} has no action {index} (the state has {count})")]
    NoSuchAction {
        /// Step number, from 1.
        step: usize,
        /// The index asked for.
        index: usize,
        /// The actions the state has.
        count: usize,
    },
    /// A step's action changes nothing, so it leads to no new state.
    #[error("step {step} ({action}) changes nothing")]
    NoSuccessor {
        /// Step number, from 1.
        step: usize,
        /// The action.
        action: String,
    },
}

/// A path followed through the model: the states along it and its steps.
#[derive(Clone, Debug)]
pub struct Walk {
    /// The path, normalised (`0/4/1`).
    pub path: String,
    /// The initial state, then the state after each step.
    pub states: Vec<ClusterState>,
    /// The steps.
    pub steps: Vec<StepView>,
}

/// Follows `path` (action indices as `slotguard check` prints them; empty is the first
/// initial state) through the model.
pub fn follow(model: &ClusterModel, path: &str) -> Result<Walk, PathError> {
    let trimmed = path.trim().trim_matches('/');
    let indices: Vec<usize> = if trimmed.is_empty() {
        vec![0]
    } else {
        trimmed
            .split('/')
            .map(|p| p.parse().map_err(|_| PathError::NotAnIndex(p.to_string())))
            .collect::<Result<_, _>>()?
    };
    let init = indices[0];
    let mut state = model
        .init_states()
        .into_iter()
        .nth(init)
        .ok_or(PathError::NoInitialState(init))?;
    let mut states = Vec::with_capacity(indices.len());
    let mut steps = Vec::with_capacity(indices.len() - 1);
    for (i, &index) in indices[1..].iter().enumerate() {
        let mut actions = Vec::new();
        model.actions(&state, &mut actions);
        let count = actions.len();
        let action = actions
            .into_iter()
            .nth(index)
            .ok_or(PathError::NoSuchAction {
                step: i + 1,
                index,
                count,
            })?;
        let next =
            model
                .next_state(&state, action.clone())
                .ok_or_else(|| PathError::NoSuccessor {
                    step: i + 1,
                    action: describe_action(&action),
                })?;
        steps.push(step_view(i + 1, &action, &state, &next));
        states.push(std::mem::replace(&mut state, next));
    }
    states.push(state);
    let path = indices
        .iter()
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join("/");
    Ok(Walk {
        path,
        states,
        steps,
    })
}

/// The explorer's view of `path`: its steps, the state it ends in and what can happen next.
pub fn explorer_view(model: &ClusterModel, path: &str) -> Result<ExplorerView, PathError> {
    let walk = follow(model, path)?;
    let Some(last) = walk.states.last() else {
        return Err(PathError::NoInitialState(0));
    };
    Ok(ExplorerView {
        picture: picture(model, last),
        actions: actions(model, last),
        path: walk.path,
        steps: walk.steps,
    })
}

/// A report's view of a replayed path (`explorer_path` as in [`crate::trace::Trace`]).
pub fn trace_view(
    model: &ClusterModel,
    property: &str,
    what: &str,
    explorer_path: &str,
    why: Option<String>,
    reopen: String,
) -> Result<TraceView, PathError> {
    let walk = follow(model, explorer_path)?;
    Ok(TraceView {
        property: property.to_string(),
        what: what.to_string(),
        pictures: walk.states.iter().map(|s| picture(model, s)).collect(),
        steps: walk.steps,
        explorer_path: walk.path,
        reopen,
        why,
    })
}

/// The actions enabled in `state`, named as counterexample steps are.
pub fn actions(model: &ClusterModel, state: &ClusterState) -> Vec<ActionButton> {
    let mut enabled = Vec::new();
    model.actions(state, &mut enabled);
    enabled
        .into_iter()
        .enumerate()
        .map(|(index, action)| {
            let (kind, _, actor, _) = shape(&action);
            ActionButton {
                index,
                label: describe_action(&action),
                actor,
                kind: kind.to_string(),
                noop: model.next_state(state, action).is_none(),
            }
        })
        .collect()
}

/// The kind of a step, its sender (for a message), its acting node, and a short label.
fn shape(action: &Action) -> (&'static str, Option<usize>, usize, String) {
    match action {
        Action::Deliver(env) => (
            "deliver",
            Some(env.src.index()),
            env.dst.index(),
            short_msg(&env.msg),
        ),
        Action::Drop(env) => (
            "lose",
            Some(env.src.index()),
            env.dst.index(),
            format!("lost {}", short_msg(&env.msg)),
        ),
        Action::Timeout { node, timer } => ("timer", None, node.index(), timer.to_string()),
        Action::Crash(node) => ("crash", None, node.index(), "crash".to_string()),
        Action::Recover(node) => ("restart", None, node.index(), "restart".to_string()),
        Action::CrashRestart(node) => (
            "crash-restart",
            None,
            node.index(),
            "crash + restart".to_string(),
        ),
        Action::Failover { node, mode } => (
            "operator",
            None,
            node.index(),
            format!("CLUSTER FAILOVER {}", mode.name()),
        ),
        Action::Write(node) => ("client", None, node.index(), "client write".to_string()),
        Action::Copy(node) => ("copy", None, node.index(), "copies its master".to_string()),
    }
}

/// A message's kind and the one field that tells it apart in a diagram.
pub fn short_msg(msg: &Msg) -> String {
    match msg {
        Msg::Ping(_) | Msg::Pong(_) => msg.kind().to_string(),
        Msg::Gossip(e) => format!("GOSSIP {} {:?}", e.node, e.suspicion),
        Msg::Fail { node } => format!("FAIL {node}"),
        Msg::AuthRequest(r) => format!("AUTH_REQUEST e={}", r.epoch),
        Msg::AuthAck { epoch, .. } => format!("AUTH_ACK e={epoch}"),
        Msg::Update(c) => format!("UPDATE {}", c.node),
        Msg::FailoverStart => msg.kind().to_string(),
    }
}

/// Step `index` of a path, for the step list and the diagram.
pub fn step_view(
    index: usize,
    action: &Action,
    before: &ClusterState,
    after: &ClusterState,
) -> StepView {
    let step = describe_step(index, action, before, after);
    let (kind, from, to, label) = shape(action);
    StepView {
        index,
        action: step.action,
        kind: kind.to_string(),
        from,
        to,
        label,
        changes: step.changes,
        sent: step.sent,
    }
}

/// The slot map of one view as runs of one owner.
pub fn slot_runs(slots: &SlotMap) -> Vec<SlotRun> {
    let mut runs: Vec<SlotRun> = Vec::new();
    for (slot, owner) in slots.iter() {
        let owner = owner.map(|o| o.to_string());
        match runs.last_mut() {
            Some(run) if run.owner == owner && run.end + 1 == slot => run.end = slot,
            _ => runs.push(SlotRun {
                start: slot,
                end: slot,
                owner,
            }),
        }
    }
    runs
}

fn ids(set: impl IntoIterator<Item = NodeId>) -> Vec<String> {
    set.into_iter().map(|n| n.to_string()).collect()
}

/// One node's card from its own state alone: role, master, epochs, slot map, the peers it
/// suspects with the failure reports it holds, and its election.
///
/// Why separate from [`picture`]: a running node has exactly this state (the actor's
/// `NodeState`), so it answers its own card with this builder (`CLUSTER PICTURE`) and the live
/// view draws the explorer's card. What only a model state knows (crashed, the votes the
/// history keeps, armed timers) the explorer adds; a live source leaves it empty.
pub fn node_card(node: &NodeState) -> NodeCard {
    let me = node.me;
    let beliefs = node
        .peers
        .iter()
        .enumerate()
        .filter(|(i, p)| *i != me.index() && p.health != slotguard_protocol::state::Health::Ok)
        .map(|(i, p)| Belief {
            peer: format!("n{i}"),
            health: health(p.health).to_string(),
            reports: ids(p.reports.iter()),
        })
        .collect();
    let election = match &node.election {
        Election::Idle => ElectionView {
            state: "idle".to_string(),
            epoch: None,
            votes: Vec::new(),
        },
        Election::Scheduled => ElectionView {
            state: "scheduled".to_string(),
            epoch: None,
            votes: Vec::new(),
        },
        Election::Running {
            epoch,
            votes,
            forced,
        } => ElectionView {
            state: if *forced {
                "running (manual failover)"
            } else {
                "running"
            }
            .to_string(),
            epoch: Some(epoch.0),
            votes: ids(votes.iter()),
        },
    };
    NodeCard {
        id: me.to_string(),
        name: None,
        address: None,
        down: None,
        role: match node.role {
            Role::Master => "master".to_string(),
            Role::Replica { .. } => "replica".to_string(),
        },
        master: node.role.master().map(|m| m.to_string()),
        current_epoch: Some(node.current_epoch.0),
        config_epoch: Some(node.config_epoch.0),
        last_vote_epoch: Some(node.last_vote_epoch.0),
        slots: slot_runs(&node.slots),
        beliefs,
        election: Some(election),
        votes: Vec::new(),
        timers: Vec::new(),
        extra: Vec::new(),
    }
}

/// One node's card in a model state: [`node_card`], with what the model state adds.
fn card(node: &NodeState, crashed: bool, state: &ClusterState) -> NodeCard {
    let me = node.me;
    let votes = state
        .ghost
        .grants
        .iter()
        .filter(|((_, voter), _)| *voter == me)
        .map(|((epoch, _), g)| {
            // The checker forgets whom a vote went to once that can no longer matter
            // (`settled-grants`, specs/protocol.md §8.7): then only the epoch is known.
            let to = ids(g.candidates.iter());
            if to.is_empty() {
                format!("epoch {epoch}")
            } else {
                format!("epoch {epoch} -> {}", to.join(","))
            }
        })
        .collect();
    NodeCard {
        down: crashed.then(|| "crashed".to_string()),
        votes,
        timers: state.timers[me.index()]
            .iter()
            .map(|t| t.to_string())
            .collect(),
        ..node_card(node)
    }
}

/// The picture of a model state.
pub fn picture(model: &ClusterModel, state: &ClusterState) -> Picture {
    let nodes = state
        .nodes
        .iter()
        .zip(&state.crashed)
        .map(|(n, &c)| card(n, c, state))
        .collect();
    let mut groups: BTreeMap<(NodeId, &'static str), Vec<String>> = BTreeMap::new();
    for env in state.network.iter() {
        groups
            .entry((env.dst, env.msg.kind()))
            .or_default()
            .push(format!(
                "{} -> {}: {}",
                env.src,
                env.dst,
                describe_msg(&env.msg)
            ));
    }
    let in_flight = groups
        .into_iter()
        .map(|((dst, kind), messages)| InFlightGroup {
            dst: dst.to_string(),
            kind: kind.to_string(),
            messages,
        })
        .collect();
    let initial = model.actor.layout.initial_current_epoch().0;
    let highest = state
        .nodes
        .iter()
        .map(|n| n.current_epoch.0)
        .max()
        .unwrap_or(initial);
    let budgets = vec![
        Budget {
            name: "crashes".to_string(),
            used: u64::from(state.crashes),
            limit: u64::from(model.crash_budget),
        },
        Budget {
            name: "suspicions".to_string(),
            used: u64::from(state.suspicions),
            limit: u64::from(model.suspicion_budget),
        },
        Budget {
            name: "elections".to_string(),
            used: highest.saturating_sub(initial),
            limit: model.max_epoch.0.saturating_sub(initial),
        },
    ];
    let properties = model
        .properties()
        .into_iter()
        .map(|p| PropertyAt {
            name: p.name.to_string(),
            kind: match p.expectation {
                Expectation::Sometimes => "sometimes",
                Expectation::Always | Expectation::Eventually => "always",
            }
            .to_string(),
            holds: (p.condition)(model, state),
        })
        .collect();
    Picture {
        nodes,
        slot_count: model.actor.layout.slot_count(),
        in_flight,
        in_flight_total: state.network.len(),
        budgets,
        history: history(state),
        properties,
    }
}

/// The history variables (`ghost.rs`), as facts.
fn history(state: &ClusterState) -> Vec<Fact> {
    let g = &state.ghost;
    let set = |s: Vec<String>| {
        if s.is_empty() {
            "none".to_string()
        } else {
            s.join(", ")
        }
    };
    let mut facts = vec![Fact::new(
        "ever marked FAIL",
        set(ids(g.ever_failed.iter())),
    )];
    let suspected: Vec<String> = g
        .suspected_by
        .iter()
        .enumerate()
        .filter(|(_, by)| !by.is_empty())
        .map(|(i, by)| format!("n{i} by {}", ids(by.iter()).join(",")))
        .collect();
    facts.push(Fact::new("suspected by masters", set(suspected)));
    facts.push(Fact::new(
        "suspected by a quorum",
        set(ids(g.quorum_suspected.iter())),
    ));
    let winners: Vec<String> = g
        .winners
        .iter()
        .map(|(e, w)| format!("epoch {e}: {}", ids(w.iter()).join(",")))
        .collect();
    facts.push(Fact::new("election winners", set(winners)));
    let grants: Vec<String> = g
        .grants
        .iter()
        .map(|((e, voter), gr)| {
            format!(
                "epoch {e}: {voter} -> {}{}",
                ids(gr.candidates.iter()).join(","),
                if gr.count > 1 { " (twice)" } else { "" }
            )
        })
        .collect();
    facts.push(Fact::new("votes granted", set(grants)));
    if !g.retried.is_empty() || g.retry_won {
        facts.push(Fact::new(
            "elections timed out",
            format!(
                "{}{}",
                set(ids(g.retried.iter())),
                if g.retry_won { "; a retry was won" } else { "" }
            ),
        ));
    }
    let violations: Vec<String> = g.violations.iter().map(|v| format!("{v:?}")).collect();
    facts.push(Fact::new("violations seen", set(violations)));
    facts
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::CheckConfig;

    fn tiny() -> ClusterModel {
        CheckConfig::embedded("tiny")
            .and_then(|c| c.model().ok())
            .expect("tiny is embedded and valid")
    }

    #[test]
    fn the_initial_picture_shows_every_node_with_its_slots_and_budgets() {
        let model = tiny();
        let view = explorer_view(&model, "0").expect("the initial state");
        let p = &view.picture;
        assert_eq!(p.nodes.len(), 4);
        assert_eq!(p.nodes[3].role, "replica");
        assert_eq!(p.nodes[3].master.as_deref(), Some("n2"));
        let owners: Vec<Option<&str>> = p.nodes[0]
            .slots
            .iter()
            .map(|r| r.owner.as_deref())
            .collect();
        assert_eq!(owners, [Some("n0"), Some("n1"), Some("n2")]);
        let crashes = p
            .budgets
            .iter()
            .find(|b| b.name == "crashes")
            .expect("crashes");
        assert_eq!((crashes.used, crashes.limit), (0, 1));
        assert!(view.steps.is_empty());
        assert!(!view.actions.is_empty());
    }

    #[test]
    fn following_an_action_button_reaches_the_state_its_label_names() {
        let model = tiny();
        let start = explorer_view(&model, "0").expect("the initial state");
        let timeout = start
            .actions
            .iter()
            .find(|a| a.label == "n0: timer PeerTimeout(n1) fires")
            .expect("n0 may time n1 out");
        let after = explorer_view(&model, &format!("0/{}", timeout.index)).expect("followed");
        assert_eq!(after.steps.len(), 1);
        assert_eq!(after.steps[0].action, timeout.label);
        assert_eq!(after.steps[0].kind, "timer");
        assert_eq!(after.steps[0].to, 0);
        let beliefs = &after.picture.nodes[0].beliefs;
        assert_eq!(beliefs.len(), 1);
        assert_eq!(
            (beliefs[0].peer.as_str(), beliefs[0].health.as_str()),
            ("n1", "PFAIL")
        );
        let suspicions = after
            .picture
            .budgets
            .iter()
            .find(|b| b.name == "suspicions")
            .expect("suspicions");
        assert_eq!(suspicions.used, 1);
    }

    #[test]
    fn a_path_the_model_cannot_follow_is_an_error_naming_the_step() {
        let model = tiny();
        assert_eq!(
            follow(&model, "0/x").err(),
            Some(PathError::NotAnIndex("x".to_string()))
        );
        assert_eq!(
            follow(&model, "1").err(),
            Some(PathError::NoInitialState(1))
        );
        assert!(matches!(
            follow(&model, "0/9999").err(),
            Some(PathError::NoSuchAction {
                step: 1,
                index: 9999,
                ..
            })
        ));
    }

    #[test]
    fn messages_in_flight_are_grouped_by_receiver_and_kind() {
        let model = tiny();
        let view = explorer_view(&model, "0").expect("the initial state");
        let p = &view.picture;
        assert!(p.in_flight_total > 0, "the nodes PING each other at start");
        let grouped: usize = p.in_flight.iter().map(|g| g.messages.len()).sum();
        assert_eq!(grouped, p.in_flight_total);
        for g in &p.in_flight {
            for m in &g.messages {
                assert!(
                    m.contains(&format!("-> {}: {}", g.dst, g.kind)),
                    "{m} in {g:?}"
                );
            }
        }
    }
}
