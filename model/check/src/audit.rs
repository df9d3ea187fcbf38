//! The canonical network audits itself (specs/protocol.md §8.4, "Self-check").
//!
//! The canonical network (`residual.rs`) is a second reading of the handlers: it
//! decides which messages in flight can no longer change their receiver (inert) and which can
//! be replaced by a canonical form. A handler edit that breaks one of its assumptions makes
//! the reduced search miss behaviours and still say PASS. So `slotguard check` does not take
//! the reading on trust: before it reports PASS for a run that used the canonical network, it
//! walks the same configuration without that reduction, and at every step re-delivers every
//! message that was judged inert or canonical earlier in the walk: delivering it must still
//! change nothing, or exactly what its canonical form changes. That is the "forever" the
//! reduction rests on, tested on the configuration and the build being checked. A failure is
//! reported with the message, the verdict and the state, and the run does not pass.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use stateright::Model;

use crate::model::{Action, ClusterModel, ClusterState, Envelope};
use crate::network::Shared;
use crate::reductions::Reduction;
use crate::residual::Residual;
use slotguard_protocol::ids::NodeId;
use slotguard_protocol::timer::Timer;

/// How much auditing to do.
#[derive(Clone, Copy, Debug)]
pub struct AuditOptions {
    /// Walks from the initial state.
    pub walks: usize,
    /// Steps per walk, at most.
    pub steps: usize,
    /// Seed of the walks.
    pub seed: u64,
}

impl Default for AuditOptions {
    fn default() -> Self {
        AuditOptions {
            walks: 3000,
            steps: 150,
            seed: 0,
        }
    }
}

/// What an audit checked.
#[derive(Clone, Debug, Default, Serialize)]
pub struct AuditReport {
    /// Walks taken.
    pub walks: usize,
    /// Messages judged inert or canonical along them.
    pub judged: usize,
    /// Re-deliveries of judged messages compared with their verdict.
    pub rechecks: usize,
    /// Message kinds judged, with whether the verdict was inert (`true`) or canonical
    /// (`false`): which rules of the reduction the audit exercised.
    pub kinds: Vec<(&'static str, bool)>,
    /// Set when a verdict did not hold: the message, the verdict and the state, described.
    pub failure: Option<String>,
}

impl AuditReport {
    /// Whether every re-delivery agreed with its verdict.
    pub fn sound(&self) -> bool {
        self.failure.is_none()
    }
}

/// Audits the canonical network of `model`'s configuration along seeded random walks of the
/// model without it.
pub fn audit_canonical_network(model: &ClusterModel, options: AuditOptions) -> AuditReport {
    let mut exact = model.clone();
    exact.symmetry = None;
    // Every delivery runs the handlers: no memo of deliveries known to change nothing.
    exact.reductions = exact
        .reductions
        .without(Reduction::CanonicalNetwork)
        .without(Reduction::SkipKnownNoops);
    let mut rng = StdRng::seed_from_u64(options.seed);
    let mut report = AuditReport::default();
    for _ in 0..options.walks {
        report.walks += 1;
        if let Err(failure) = audit_walk(&exact, options.steps, &mut rng, &mut report) {
            report.failure = Some(failure);
            break;
        }
    }
    report.kinds.sort_unstable();
    report.kinds.dedup();
    report
}

/// One walk: judge what is in flight, re-check every earlier verdict, take a step.
fn audit_walk(
    model: &ClusterModel,
    steps: usize,
    rng: &mut StdRng,
    report: &mut AuditReport,
) -> Result<(), String> {
    let Some(mut s) = model.init_states().into_iter().next() else {
        return Ok(());
    };
    let mut judged: Vec<(Envelope, Residual)> = Vec::new();
    // Three walks in four suspect one node only, as the random walks of check/walks.rs do:
    // suspicions spread over every peer rarely add up to a FAIL, and a walk without FAILs
    // never reaches an election, let alone a retry.
    let nodes = s.nodes.len();
    let suspect = (rng.random_range(0..4) != 0).then(|| NodeId(rng.random_range(0..nodes) as u16));
    for _ in 0..steps {
        for env in s.network.iter() {
            let env: &Envelope = env;
            let verdict = model.residual(&s, env);
            if verdict != Residual::Unchanged && !judged.iter().any(|(e, _)| e == env) {
                report
                    .kinds
                    .push((env.msg.kind(), verdict == Residual::Inert));
                judged.push((env.clone(), verdict));
                report.judged += 1;
            }
        }
        for (env, verdict) in &judged {
            if !s.crashed[env.dst.index()] {
                recheck(model, &s, env, verdict)?;
                report.rechecks += 1;
            }
        }
        match random_step(model, &s, suspect, rng) {
            Some(next) => s = next,
            None => break,
        }
    }
    Ok(())
}

/// Whether delivering `env` in `s` still does what `verdict` says.
fn recheck(
    model: &ClusterModel,
    s: &ClusterState,
    env: &Envelope,
    verdict: &Residual,
) -> Result<(), String> {
    let deliver = |env: Envelope| model.next_state(s, Action::Deliver(Shared::new(env)));
    let holds = match verdict {
        Residual::Inert => deliver(env.clone()).is_none(),
        Residual::Canonical(msg) => {
            let canonical = Envelope {
                msg: msg.clone(),
                ..env.clone()
            };
            deliver(env.clone()) == deliver(canonical)
        }
        Residual::Unchanged => true,
    };
    match holds {
        true => Ok(()),
        false => Err(format!(
            "{} -> {}: {} was judged {} for its receiver, and delivering it later does something else, in the state\n{}",
            env.src,
            env.dst,
            crate::trace::describe_msg(&env.msg),
            match verdict {
                Residual::Inert => "inert".to_string(),
                _ => "equal to a canonical form".to_string(),
            },
            crate::trace::summarize_state(s).join("\n"),
        )),
    }
}

/// A random successor of `s`, or `None` at a dead end; only timeouts about `suspect` fire, if
/// one is given. Half the steps fire a timer when one is
/// armed (deliveries far outnumber timers, and elections need several timers in a row); an
/// election's timeout is rarely chosen, or every election would time out before its votes.
fn random_step(
    model: &ClusterModel,
    s: &ClusterState,
    suspect: Option<NodeId>,
    rng: &mut StdRng,
) -> Option<ClusterState> {
    let mut actions = Vec::new();
    model.actions(s, &mut actions);
    actions.sort();
    if let Some(suspect) = suspect {
        actions.retain(|a| match a {
            Action::Timeout {
                timer: Timer::PeerTimeout(peer),
                ..
            } => *peer == suspect,
            _ => true,
        });
    }
    if rng.random_range(0..8) != 0 {
        actions.retain(|a| {
            !matches!(
                a,
                Action::Timeout {
                    timer: Timer::ElectionTimeout,
                    ..
                }
            )
        });
    }
    let mut timers: Vec<Action> = Vec::new();
    if rng.random_bool(0.5) {
        timers = actions
            .iter()
            .filter(|a| matches!(a, Action::Timeout { .. }))
            .cloned()
            .collect();
    }
    for candidates in [&mut timers, &mut actions] {
        while !candidates.is_empty() {
            let a = candidates.swap_remove(rng.random_range(0..candidates.len()));
            let next = model.next_state(s, a);
            if let Some(next) = next.filter(|n| model.within_boundary(n)) {
                return Some(next);
            }
        }
    }
    None
}
