//! How much of a configuration's reachable state space random walks visit, by phase: the
//! figures of specs/properties.md, "Random walks". Only for configurations a plain search
//! exhausts in seconds (`tiny`).
//!
//! ```sh
//! cargo run --release -p slotguard-model --example walk_coverage -- tiny 1000000
//! ```
//!
//! Arguments: an embedded configuration (default `tiny`) and how many states the walks visit
//! (default 1,000,000; one thread, seed 0, so the figures are the same on every run of one
//! build). A plain depth-first search then lists every reachable state (no crash-twin refusals:
//! walks do not use them), and each line counts, for one phase (suspicions and crashes spent,
//! whether some replica at creation is now a master, how many masters there are), the reachable
//! states and how many of them the walks visited.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use slotguard_model::check::hashed::stable_hash;
use slotguard_model::check::walks::{walk, WalkCounters, DEFAULT_WALK_STEPS};
use slotguard_model::check::CheckConfig;
use slotguard_model::state::Role;
use slotguard_model::InitialRole;
use stateright::Model;

fn main() {
    let mut args = std::env::args().skip(1);
    let name = args.next().unwrap_or_else(|| "tiny".into());
    let states: usize = args
        .next()
        .map_or(Ok(1_000_000), |n| n.parse())
        .expect("a number of states");
    let model = CheckConfig::embedded(&name)
        .expect("an embedded configuration")
        .model()
        .expect("a valid configuration");
    let counters = WalkCounters::default();
    let stop = Arc::new(AtomicBool::new(false));
    walk(
        &model,
        0,
        DEFAULT_WALK_STEPS,
        1,
        Some(states),
        &stop,
        &counters,
        None,
    );
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
    println!(
        "{name}: {} reachable states; {states} states of walks visited {} distinct",
        seen.len(),
        counters.distinct.len()
    );
    println!("{:<68} {:>9} {:>9}", "phase", "reachable", "walked");
    for (phase, (reachable, walked)) in phases {
        println!("{phase:<68} {reachable:>9} {walked:>9}");
    }
}
