//! The canonical network (specs/protocol.md §8.4, `protocol::residual`) is a reduction: it must
//! merge states, never lose a node state. Two checks:
//!
//! - exhaustively, on configurations small enough to search without it: the reduced and the
//!   exact model reach the same node states and history;
//! - along seeded random walks of the exact model, with crashes and second elections the
//!   exhaustive check cannot afford: once a message in flight is judged inert or canonical for
//!   its receiver, delivering it stays, at every later state of the walk, a no-op, or exactly
//!   what delivering its canonical form does. That is the "forever" the reduction rests on.

use std::collections::HashSet;

mod common;

use slotguard_model::check::config::Replicas;
use slotguard_model::check::hashed::stable_hash;
use slotguard_model::check::network::Shared;
use slotguard_model::check::{Action, CheckConfig, ClusterModel, ClusterState, Envelope};
use slotguard_model::protocol::residual::Residual;
use slotguard_model::{InitialEpochs, NodeId, Timer};
use stateright::Model;

fn tiny() -> CheckConfig {
    CheckConfig::embedded("tiny").expect("tiny is embedded")
}

/// Unique states, and the set of their projections on everything but the network.
fn explore(model: &ClusterModel) -> (usize, HashSet<u64>) {
    let mut projections = HashSet::new();
    let states = common::search(model, stable_hash, |s| {
        projections.insert(stable_hash(&(
            &s.nodes, &s.crashed, &s.storage, &s.timers, &s.ghost,
        )));
    });
    (states, projections)
}

#[test]
fn reduced_and_exact_networks_reach_the_same_node_states() {
    // Crash-free tiny (a failover); and three masters created with configEpoch 0, whose
    // collisions move epochs, with a crash-restart.
    let crash_free = {
        let mut c = tiny();
        c.crashes = 0;
        c
    };
    let collisions = CheckConfig {
        name: "collisions".into(),
        masters: 3,
        replicas: Replicas::Each(0),
        slots: 3,
        crashes: 1,
        suspicions: 1,
        network: Default::default(),
        elections: 2,
        epochs: InitialEpochs::Zero,
        suspects: None,
        witnesses: Vec::new(),
    };
    for config in [crash_free, collisions] {
        let reduced = config.model().expect("valid");
        let mut exact = reduced.clone();
        exact.canonical_network = false;
        let (reduced_states, a) = explore(&reduced);
        let (exact_states, b) = explore(&exact);
        assert!(
            reduced_states < exact_states,
            "{}: the reduction merged nothing ({reduced_states} states)",
            config.name
        );
        assert_eq!(a, b, "{}", config.name);
    }
}

fn deliver(model: &ClusterModel, s: &ClusterState, env: Envelope) -> Option<ClusterState> {
    model.next_state(s, Action::Deliver(Shared::new(env)))
}

#[test]
fn judged_messages_stay_inert_or_canonical_for_the_rest_of_a_walk() {
    let mut config = tiny();
    config.elections = 3;
    config.suspicions = 6;
    config.crashes = 2;
    config.replicas = Replicas::PerMaster(vec![1, 0, 1]);
    // Suspicions of masters 0 and 2 only: random walks then reach FAILs and elections often,
    // and the two masters' replicas run elections at the same time.
    config.suspects = Some(vec![0, 2]);
    let mut model = config.model().expect("valid");
    model.canonical_network = false;
    let mut rng = common::Walk(0x5107_6ad5);
    // The walks must exercise every rule, or this test shows nothing about it.
    let every_kind = [
        ("PING", false),
        ("PONG", false),
        ("AUTH_ACK", true),
        ("AUTH_REQUEST", true),
        ("GOSSIP", true),
        ("GOSSIP", false),
        ("FAIL", true),
        ("UPDATE", true),
    ];
    let (mut judged_total, mut rechecks) = (0usize, 0usize);
    let mut seen_kinds = HashSet::new();
    let mut promotions = 0usize;
    // At least 1,500 walks, and more (up to 20,000) until every kind of message has been judged
    // live: a live UPDATE (a stale claim heard after a failover) is rare on a random walk.
    for walk in 0..20_000 {
        if walk >= 1500 && every_kind.iter().all(|k| seen_kinds.contains(k)) {
            break;
        }
        let mut s = model.init_states().remove(0);
        let mut judged: Vec<(Envelope, Residual)> = Vec::new();
        // In half the walks one suspect is cut off for the first steps, as a partition would:
        // its peers then suspect it, fail it over, and hear its stale claims when it is back.
        let victim = [Some(NodeId(0)), Some(NodeId(2)), None, None][rng.below(4)];
        for step in 0..200 {
            for env in s.network.iter() {
                let r = model.residual(&s, env);
                if r != Residual::Unchanged && !judged.iter().any(|(e, _)| e == &**env) {
                    seen_kinds.insert((env.msg.kind(), matches!(r, Residual::Inert)));
                    judged.push(((**env).clone(), r));
                    judged_total += 1;
                }
            }
            for (env, r) in &judged {
                if s.crashed[env.dst.index()] {
                    continue;
                }
                let original = deliver(&model, &s, env.clone());
                match r {
                    Residual::Inert => assert!(
                        original.is_none(),
                        "{env:?} was judged inert but changes its receiver in\n{s:?}"
                    ),
                    Residual::Canonical(msg) => {
                        let canonical = Envelope {
                            msg: msg.clone(),
                            ..env.clone()
                        };
                        assert!(
                            original == deliver(&model, &s, canonical),
                            "{env:?} and its canonical form differ in\n{s:?}"
                        );
                    }
                    Residual::Unchanged => unreachable!(),
                }
                rechecks += 1;
            }
            let mut actions = Vec::new();
            model.actions(&s, &mut actions);
            // The walks do not depend on the order in which the model lists actions.
            actions.sort();
            if let Some(v) = victim {
                actions.retain(|a| match a {
                    Action::Deliver(env) => step >= 80 || (env.src != v && env.dst != v),
                    Action::Timeout {
                        timer: Timer::PeerTimeout(p),
                        ..
                    } => *p == v,
                    _ => true,
                });
            }
            let mut next = None;
            // Half the steps fire a timer when one is armed: deliveries far outnumber timers,
            // and elections need several timers in a row. An election's timeout is rarely
            // chosen, or every election would time out before its votes arrive.
            if rng.below(8) != 0 {
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
            let timers_armed = actions
                .iter()
                .filter(|a| matches!(a, Action::Timeout { .. }))
                .count();
            let mut timers: Vec<Action> = Vec::new();
            if timers_armed > 0 && rng.below(2) == 0 {
                timers = actions
                    .iter()
                    .filter(|a| matches!(a, Action::Timeout { .. }))
                    .cloned()
                    .collect();
            }
            // A timer if one does something, else any action that does.
            for candidates in [&mut timers, &mut actions] {
                while next.is_none() && !candidates.is_empty() {
                    let a = candidates.swap_remove(rng.below(candidates.len()));
                    next = model.next_state(&s, a).filter(|n| model.within_boundary(n));
                }
            }
            match next {
                Some(n) => {
                    promotions += usize::from(promoted(&s) < promoted(&n));
                    s = n;
                }
                None => break,
            }
        }
    }
    for kind in every_kind {
        assert!(
            seen_kinds.contains(&kind),
            "no walk judged a {kind:?}: {seen_kinds:?}"
        );
    }
    assert!(
        judged_total > 1000 && rechecks > 10_000 && promotions > 50,
        "{judged_total} judged, {rechecks} rechecks, {promotions} promotions"
    );
}

/// How many nodes created as replicas are masters.
fn promoted(s: &ClusterState) -> usize {
    s.nodes
        .iter()
        .filter(|n| n.me.index() >= 3 && n.role == slotguard_model::Role::Master)
        .count()
}
