//! Symmetry reduction (check/symmetry.rs, specs/protocol.md §8.5): the reduced search must
//! reach every state up to renaming, give the same verdicts, and report the one case in which
//! the protocol tells interchangeable replicas apart.

use std::collections::HashSet;
use std::sync::Arc;

use slotguard_check::config::Replicas;
use slotguard_check::hashed::stable_hash;
use slotguard_check::network::Shared;
use slotguard_check::run::{self, RunOptions, Strategy};
use slotguard_check::symmetry::{representative, representative_fingerprint, SymmetryClasses};
use slotguard_check::Reduction;
use slotguard_check::{Action, CheckConfig, ClusterModel, ClusterState, Envelope};
use slotguard_protocol::protocol::heartbeat::header;
use slotguard_protocol::timer::Timer;
use slotguard_protocol::{Epoch, Msg, NodeId, Role};
use stateright::Model;

mod common;

/// Three masters; master 2 has two replicas (n3, n4), the only interchangeable pair.
fn pair() -> CheckConfig {
    let mut c = CheckConfig::embedded("tiny").expect("tiny is embedded");
    c.replicas = Replicas::PerMaster(vec![0, 0, 2]);
    c.crashes = 1;
    c.suspicions = 2;
    c
}

/// Three masters with one replica each, whole shards interchangeable; two suspicions, so an
/// unreduced search stays small.
fn shards() -> CheckConfig {
    let mut c = CheckConfig::embedded("standard").expect("standard is embedded");
    c.suspicions = 2;
    c
}

fn with_symmetry(config: &CheckConfig) -> ClusterModel {
    let mut model = config.model().expect("valid");
    let classes = model.symmetry_classes();
    model.symmetry = Some(Arc::new(classes));
    model
}

#[test]
fn the_classes_of_a_layout() {
    let pair = pair().model().expect("valid").symmetry_classes();
    assert_eq!(pair.groups(), vec![vec![NodeId(3), NodeId(4)]]);
    assert!(!pair.shards_interchangeable());
    let three = shards().model().expect("valid").symmetry_classes();
    assert!(three.groups().is_empty() && three.shards_interchangeable());
    let large = CheckConfig::embedded("large").expect("embedded");
    let large = large.model().expect("valid").symmetry_classes();
    assert!(large.shards_interchangeable() && large.groups().len() == 3);
    // Creation epochs all 0: collisions resolved by id from the start, no shard symmetry.
    let mut zero = shards();
    zero.epochs = slotguard_protocol::InitialEpochs::Zero;
    let zero = zero.model().expect("valid").symmetry_classes();
    assert!(zero.is_trivial());
}

/// Fingerprints of the representatives of the states an explicit search visits; with `reduce`,
/// the search (like stateright's DFS) skips a state whose representative it has seen.
fn orbits(model: &ClusterModel, reduce: bool) -> (usize, HashSet<u64>) {
    let mut orbits = HashSet::new();
    let key = |s: &ClusterState| {
        if reduce {
            stable_hash(&representative(s))
        } else {
            stable_hash(s)
        }
    };
    let states = common::search(model, key, |s| {
        let r = stable_hash(&representative(s));
        // What stateright fingerprints must be the representative's fingerprint.
        assert_eq!(r, stable_hash(&representative_fingerprint(s)));
        orbits.insert(r);
    });
    (states, orbits)
}

#[test]
fn the_reduced_search_reaches_every_state_up_to_renaming() {
    // Replicas only (at most 2 renamings), and whole shards (6).
    for (config, at_least) in [(pair(), 1.5), (shards(), 4.0)] {
        let model = with_symmetry(&config);
        let (all, every_orbit) = orbits(&model, false);
        let (reduced, reached) = orbits(&model, true);
        assert!(
            reduced as f64 * at_least < all as f64,
            "{}: symmetry saved little: {reduced} of {all}",
            config.name
        );
        let missed = every_orbit.difference(&reached).count();
        let extra = reached.difference(&every_orbit).count();
        assert!(
            missed == 0 && extra == 0,
            "{}: {missed} of {} orbits not reached, {extra} unknown",
            config.name,
            every_orbit.len()
        );
    }
}

#[test]
fn symmetric_and_plain_runs_agree_on_every_property() {
    for config in [pair(), shards()] {
        runs_agree(config);
    }
}

fn runs_agree(config: CheckConfig) {
    let options = RunOptions {
        strategy: Strategy::Dfs,
        threads: 2,
        max_states: None,
        timeout: None,
        max_memory: None,
        ..RunOptions::default()
    };
    // Without crash-twin refusals, which depend on the order of the search: the plain DFS and
    // the BFS below must count the same states.
    let without_twins = |mut model: ClusterModel| {
        model.reductions = model.reductions.without(Reduction::SkipCrashTwins);
        model
    };
    let plain = run::run(
        without_twins(config.model().expect("valid")),
        &options,
        |_| {},
    );
    let reduced = run::run(with_symmetry(&config), &options, |_| {});
    assert!(plain.complete && reduced.complete && reduced.symmetry && !plain.symmetry);
    assert!(reduced.unique_states < plain.unique_states);
    for p in &plain.properties {
        let r = reduced
            .properties
            .iter()
            .find(|r| r.name == p.name)
            .expect("same catalogue");
        assert_eq!(p.status, r.status, "{}", p.name);
    }
    let sound = reduced
        .properties
        .iter()
        .find(|r| r.name == "symmetry-sound")
        .expect("symmetry runs check their own soundness");
    assert_eq!(sound.status, run::Status::Holds);
    // BFS ignores symmetry in stateright; the report must not claim it.
    let bfs = run::run(
        without_twins(with_symmetry(&config)),
        &RunOptions {
            strategy: Strategy::Bfs,
            ..options
        },
        |_| {},
    );
    assert!(!bfs.symmetry);
    assert_eq!(bfs.unique_states, plain.unique_states);
}

#[test]
fn a_collision_between_interchangeable_replicas_is_reported() {
    let model = with_symmetry(&pair());
    let mut s = model.init_states().remove(0);
    // Both replicas as masters with configEpoch 5: n4's header reaches n3.
    let mut promoted = Vec::new();
    for n in [3, 4] {
        let mut st = (*s.nodes[n]).clone();
        st.role = Role::Master;
        st.config_epoch = Epoch(5);
        st.current_epoch = Epoch(5);
        promoted.push(st);
    }
    let h = header(&promoted[1]);
    for (n, st) in [3, 4].into_iter().zip(promoted) {
        s.nodes[n] = slotguard_check::hashed::Hashed::new(st);
    }
    let env = Envelope {
        src: NodeId(4),
        dst: NodeId(3),
        msg: Msg::Pong(h),
    };
    let next = model
        .next_state(&s, Action::Deliver(Shared::new(env)))
        .expect("the delivery is recorded");
    assert!(next.ghost.asymmetric_collision);
    let sound = model
        .properties()
        .into_iter()
        .find(|p| p.name == "symmetry-sound")
        .expect("present under symmetry");
    assert!(!(sound.condition)(&model, &next));
    assert!((sound.condition)(&model, &s));
}

/// The successors of every renaming of a state, as fingerprints, for renaming `i` (the
/// renamings of [`SymmetryClasses::renamings`] come in one order for every state).
fn successors(model: &ClusterModel, s: &ClusterState) -> Vec<ClusterState> {
    let mut actions = Vec::new();
    model.actions(s, &mut actions);
    actions
        .into_iter()
        .filter_map(|a| model.next_state(s, a))
        .collect()
}

/// The protocol commutes with every renaming the reduction uses: along seeded random walks
/// with a crash-restart and two elections, the successors of a renamed state are exactly the
/// renamed successors, whole states compared (nodes, state files, timers, messages in flight,
/// history). This is what makes shard symmetry sound, including the renaming of slots and
/// creation epochs (specs/protocol.md §8.5); it fails if any rule compares two shards'
/// creation epochs or breaks a tie by id.
#[test]
fn every_renaming_commutes_with_every_step() {
    for (name, walks, suspicions) in [("standard", 40, 8), ("large", 16, 16)] {
        let mut config = CheckConfig::embedded(name).expect("embedded");
        // More suspicions than the embedded budget, so that random walks reach failovers.
        config.suspicions = suspicions;
        renamings_commute_along_walks(&config, walks);
    }
}

/// The check of [`every_renaming_commutes_with_every_step`] for one configuration, along
/// `walks` seeded random walks.
fn renamings_commute_along_walks(config: &CheckConfig, walks: usize) {
    let name = &config.name;
    {
        let model = config.model().expect("valid");
        let classes = model.symmetry_classes();
        assert!(classes.shards_interchangeable(), "{name}");
        let mut rng = common::Walk(0x5e7_a11);
        let (mut checked, mut failovers) = (0usize, 0usize);
        for _ in 0..walks {
            let mut s = model.init_states().remove(0);
            let target = NodeId(rng.below(3) as u16);
            for _ in 0..250 {
                let renamed = classes.renamings(&s);
                let after = successors(&model, &s);
                // Checking every renaming of every state of `large` (48 of them) is slow;
                // a few per state, chosen at random, cover them over the walks.
                let picks: Vec<usize> = if renamed.len() > 8 {
                    (0..2).map(|_| rng.below(renamed.len())).collect()
                } else {
                    (0..renamed.len()).collect()
                };
                for i in picks {
                    let mut direct: Vec<u64> = successors(&model, &renamed[i])
                        .iter()
                        .map(stable_hash)
                        .collect();
                    let mut mapped: Vec<u64> = after
                        .iter()
                        .filter_map(|t| classes.renaming(t, i))
                        .map(|r| stable_hash(&r))
                        .collect();
                    direct.sort();
                    direct.dedup();
                    mapped.sort();
                    mapped.dedup();
                    assert_eq!(direct, mapped, "{name}: renaming {i} of\n{s:?}");
                    checked += 1;
                }
                // Bias the walk towards timers, which drive elections, and among suspicions
                // towards one master per walk, so that walks reach failovers; the model itself
                // is not restricted (that would break the symmetry under test).
                let mut actions = Vec::new();
                model.actions(&s, &mut actions);
                let favoured = |a: &Action| match a {
                    Action::Timeout {
                        timer: Timer::PeerTimeout(p),
                        ..
                    } => *p == target,
                    Action::Timeout {
                        timer: Timer::ElectionTimeout,
                        ..
                    } => false,
                    Action::Timeout { .. } => true,
                    Action::Deliver(env) => env.src != target,
                    _ => false,
                };
                if rng.below(3) != 0 && actions.iter().any(favoured) {
                    actions.retain(favoured);
                }
                let mut next = None;
                while next.is_none() && !actions.is_empty() {
                    let a = actions.swap_remove(rng.below(actions.len()));
                    next = model.next_state(&s, a).filter(|n| model.within_boundary(n));
                }
                match next {
                    Some(n) => s = n,
                    None => break,
                }
            }
            if s.ghost.winners.values().any(|w| !w.is_empty()) {
                failovers += 1;
            }
        }
        // The walks must reach promotions, or they say nothing about renamed epochs.
        assert!(
            checked > 0 && failovers > 0,
            "{name}: {checked} checks, {failovers} failovers"
        );
        eprintln!("{name}: {checked} renamed states checked, {failovers} walks with a failover");
    }
}

/// A `suspects` bound is part of the model (specs/protocol.md §8.5): a renaming that maps a
/// node that may be suspected onto one that may not is no symmetry of it. The classes respect
/// the bound. The layout's classes alone do not commute with the very first step: a timeout
/// about master 0 may fire, its renamed image about master 1 may not.
#[test]
fn a_suspects_bound_limits_the_renamings() {
    let restricted = |mut config: CheckConfig, suspects: &[u16]| {
        config.suspects = Some(suspects.to_vec());
        config
    };
    // 3 x 1: only master 0 may be suspected, so no two shards are interchangeable.
    let one = restricted(shards(), &[0]).model().expect("valid");
    assert!(one.symmetry_classes().is_trivial());
    let layout_only = SymmetryClasses::of(&one.actor.layout, None);
    assert!(layout_only.shards_interchangeable());
    let s = one.init_states().remove(0);
    let after_states = successors(&one, &s);
    let after: HashSet<u64> = after_states.iter().map(stable_hash).collect();
    let renamed = layout_only.renamings(&s);
    let mut broken = 0;
    for (i, r) in renamed.iter().enumerate() {
        let direct: HashSet<u64> = successors(&one, r).iter().map(stable_hash).collect();
        let mapped: HashSet<u64> = after_states
            .iter()
            .filter_map(|t| layout_only.renaming(t, i))
            .map(|t| stable_hash(&t))
            .collect();
        assert_eq!(after.len(), direct.len());
        if direct != mapped {
            broken += 1;
        }
    }
    assert!(
        broken > 0,
        "every layout renaming commuted with the first steps"
    );
    // Every master may be suspected: the bound maps onto itself under shard renamings.
    let masters = restricted(shards(), &[0, 1, 2]).model().expect("valid");
    assert!(masters.symmetry_classes().shards_interchangeable());
    // Master 2 and one of its two replicas: the replicas are told apart; master 2 alone: not.
    let replica = restricted(pair(), &[2, 3]).model().expect("valid");
    assert!(replica.symmetry_classes().is_trivial());
    let master = restricted(pair(), &[2]).model().expect("valid");
    assert_eq!(
        master.symmetry_classes().groups(),
        vec![vec![NodeId(3), NodeId(4)]]
    );
    // And what the restricted classes keep commutes with every step: `large` with only its
    // masters suspectable keeps every renaming of shards and of replicas.
    let mut large = restricted(
        CheckConfig::embedded("large").expect("embedded"),
        &[0, 1, 2],
    );
    large.suspicions = 16;
    assert_eq!(
        large
            .model()
            .expect("valid")
            .symmetry_classes()
            .groups()
            .len(),
        3
    );
    renamings_commute_along_walks(&large, 6);
}
