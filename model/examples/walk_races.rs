//! How often random walks take the races a search cannot exhaust: two replicas of one master
//! running elections at once (`replicas-compete`), and the retry race, where one of them runs
//! its second election (currentEpoch two above creation) while its sibling runs too. Counts
//! the distinct states of each kind that walks visit (specs/properties.md, "Random walks").
//!
//! ```sh
//! cargo run --release -p slotguard-model --example walk_races -- large 1000000
//! ```
//!
//! Arguments: an embedded configuration (default `large`) and how many states the walks visit
//! (default 1,000,000; one thread, seed 0).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use slotguard_model::check::walks::{walk, WalkCounters, DEFAULT_WALK_STEPS};
use slotguard_model::check::{CheckConfig, ClusterState};
use slotguard_model::state::Election;
use slotguard_model::NodeId;

fn main() {
    let mut args = std::env::args().skip(1);
    let name = args.next().unwrap_or_else(|| "large".into());
    let states: usize = args
        .next()
        .map_or(Ok(1_000_000), |n| n.parse())
        .expect("a number of states");
    let model = CheckConfig::embedded(&name)
        .expect("an embedded configuration")
        .model()
        .expect("a valid configuration");
    let creation = model.actor.layout.initial_current_epoch().0;
    let (racing, retrying) = (AtomicUsize::new(0), AtomicUsize::new(0));
    // The epochs of the live candidates, by the master they follow.
    let candidates = |s: &ClusterState| -> Vec<(NodeId, u64)> {
        let mut c: Vec<(NodeId, u64)> = s
            .nodes
            .iter()
            .zip(&s.crashed)
            .filter(|(_, crashed)| !**crashed)
            .filter_map(|(n, _)| match (&n.election, n.role.master()) {
                (Election::Running { epoch, .. }, Some(m)) => Some((m, epoch.0)),
                _ => None,
            })
            .collect();
        c.sort_unstable();
        c
    };
    let observe = |s: &ClusterState| {
        let c = candidates(s);
        let pairs: Vec<_> = c.windows(2).filter(|w| w[0].0 == w[1].0).collect();
        if !pairs.is_empty() {
            racing.fetch_add(1, Ordering::Relaxed);
            if pairs.iter().any(|w| w[0].1.max(w[1].1) >= creation + 2) {
                retrying.fetch_add(1, Ordering::Relaxed);
            }
        }
    };
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
        Some(&observe),
    );
    println!(
        "{name}: {states} states of walks, {} walks, {} distinct; two replicas of one master running: {} distinct states; one of them in its retry epoch: {}",
        counters.walks.load(Ordering::Relaxed),
        counters.distinct.len(),
        racing.load(Ordering::Relaxed),
        retrying.load(Ordering::Relaxed)
    );
}
