//! What random walks visit: how much of a configuration's reachable state space, by phase, and
//! how often they take the races no search of `large` reaches (two replicas of one master
//! running elections at once, and the retry race, where one of them runs its second election
//! while its sibling runs too). The figures of specs/properties.md, "Random walks".
//!
//! ```sh
//! cargo run --release -p slotguard-model --example walk_coverage -- tiny 1000000
//! cargo run --release -p slotguard-model --example walk_coverage -- large 1000000 --walks-only
//! ```
//!
//! Arguments: an embedded configuration (default `tiny`), how many states the walks visit
//! (default 1,000,000; one thread, seed 0 unless `--seed N`, so the figures are the same on
//! every run of one build), and `--walks-only` to skip the search. Without it, a plain
//! depth-first search then lists every reachable state (no crash-twin refusals: walks do not
//! use them; only for configurations it exhausts in seconds, such as `tiny`), and each line
//! counts, for one phase (suspicions and crashes spent, whether some replica at creation is now
//! a master, how many masters there are), the reachable states and how many of them the walks
//! visited.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use slotguard_model::check::hashed::stable_hash;
use slotguard_model::check::run::RunOptions;
use slotguard_model::check::walks::{walk, WalkCounters};
use slotguard_model::check::{properties, CheckConfig, ClusterState};
use slotguard_model::state::{Election, Role};
use slotguard_model::{InitialRole, NodeId};
use stateright::Model;

mod walk_args;

fn main() {
    let walk_args::WalkArgs {
        config: name,
        states,
        seed,
        rest,
    } = walk_args::parse("tiny", 1_000_000);
    let walks_only = rest.iter().any(|a| a == "--walks-only");
    let model = CheckConfig::embedded(&name)
        .expect("an embedded configuration")
        .model()
        .expect("a valid configuration");
    let creation = model.actor.layout.initial_current_epoch().0;
    let (racing, retrying) = (AtomicUsize::new(0), AtomicUsize::new(0));
    let compete = properties::replicas_compete();
    let observe = |s: &ClusterState| {
        if !(compete.condition)(&model, s) {
            return;
        }
        racing.fetch_add(1, Ordering::Relaxed);
        // The live candidates' masters and epochs: is one of a racing pair in its retry epoch?
        let mut candidates: Vec<(NodeId, u64)> = s
            .nodes
            .iter()
            .zip(&s.crashed)
            .filter(|(_, crashed)| !**crashed)
            .filter_map(|(n, _)| match (&n.election, n.role.master()) {
                (Election::Running { epoch, .. }, Some(m)) => Some((m, epoch.0)),
                _ => None,
            })
            .collect();
        candidates.sort_unstable();
        if candidates
            .windows(2)
            .any(|w| w[0].0 == w[1].0 && w[0].1.max(w[1].1) >= creation + 2)
        {
            retrying.fetch_add(1, Ordering::Relaxed);
        }
    };
    let counters = WalkCounters::default();
    let stop = AtomicBool::new(false);
    let options = RunOptions::reproducible_walks(seed, states);
    walk(&model, &options, &stop, &counters, Some(&observe));
    println!(
        "{name}: {states} states of walks, {} walks, {} distinct; two replicas of one master running: {} distinct states; one of them in its retry epoch: {}",
        counters.walks.load(Ordering::Relaxed),
        counters.distinct.len(),
        racing.load(Ordering::Relaxed),
        retrying.load(Ordering::Relaxed)
    );
    if walks_only {
        return;
    }
    let layout = &model.actor.layout;
    let replicas: Vec<usize> = layout
        .ids()
        .filter(|&n| {
            matches!(
                layout.spec(n).map(|s| &s.role),
                Some(InitialRole::Replica { .. })
            )
        })
        .map(|n| n.index())
        .collect();
    let mut seen = HashSet::new();
    let mut stack = model.init_states();
    let mut phases: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let mut actions = Vec::new();
    while let Some(s) = stack.pop() {
        let h = stable_hash(&s);
        if !model.within_boundary(&s) || !seen.insert(h) {
            continue;
        }
        let promoted = replicas.iter().any(|&r| s.nodes[r].role == Role::Master);
        let masters = s.nodes.iter().filter(|n| n.role == Role::Master).count();
        let phase = format!(
            "suspicions {}, crashes {}, a replica promoted: {promoted:5}, masters {masters}",
            s.suspicions, s.crashes
        );
        let entry = phases.entry(phase).or_default();
        entry.0 += 1;
        if counters.distinct.contains(&h) {
            entry.1 += 1;
        }
        actions.clear();
        model.actions(&s, &mut actions);
        for a in actions.drain(..) {
            if let Some(next) = model.next_state(&s, a) {
                stack.push(next);
            }
        }
    }
    println!("{name}: {} reachable states", seen.len());
    println!("{:<68} {:>9} {:>9}", "phase", "reachable", "walked");
    for (phase, (reachable, walked)) in phases {
        println!("{phase:<68} {reachable:>9} {walked:>9}");
    }
}
