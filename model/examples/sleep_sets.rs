//! Experiment: what a depth-first search with sleep sets would save, and whether it still
//! visits every reachable state. It is not part of `slotguard check`; it records why not
//! (specs/properties.md, "`large`").
//!
//! ```sh
//! cargo run --release -p slotguard-model --example sleep_sets -- standard --elections 1 --repeats
//! ```
//!
//! Arguments: an embedded configuration, `--crashes N`, `--suspicions N`, `--elections N`,
//! `--repeats` (switch on the exact-repeats filter of specs/protocol.md §8.9, as `slotguard
//! check` does; the search then no longer sees revisits, so the variant with re-exploration is
//! left out), `--no-plain` (skip the plain search and the comparison).
//!
//! Three single-threaded depth-first searches without symmetry, crash twins or properties, each
//! with a visited set of fingerprints:
//! - plain: every action of every state;
//! - sleep sets (Godefroid 1996, ch. 5): a step that only one node's state reads and writes (a
//!   delivery, or a timer other than a peer timeout, which spends the shared suspicion budget)
//!   commutes with such a step of another node: both orders reach the same state (the network
//!   only gains messages, each put in canonical form for its own receiver). So a state's action
//!   is skipped when it is in the state's sleep set: an earlier sibling, or an action asleep at
//!   the parent, that commutes with the step that led here;
//! - the same with re-exploration: a state met again with a sleep set that lacks actions of the
//!   one it was recorded with is explored again for those actions. Without it, whether sleep
//!   sets with a visited set reach every state is an argument this experiment does not make; it
//!   compares the visited sets instead.
//!
//! Each line reports unique states, actions tried (`generated`), seconds, and how many states of
//! the plain search the reduced one did not visit.

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use slotguard_model::check::hashed::stable_hash;
use slotguard_model::check::{Action, CheckConfig, ClusterModel, ClusterState};
use slotguard_model::{NodeId, Timer};
use stateright::Model;

/// The node whose state alone a step reads and writes, if the step touches no budget.
fn local(a: &Action) -> Option<NodeId> {
    match a {
        Action::Deliver(env) => Some(env.dst),
        Action::Timeout { node, timer } if !matches!(timer, Timer::PeerTimeout(_)) => Some(*node),
        _ => None,
    }
}

struct Stats {
    unique: usize,
    generated: usize,
    secs: f64,
    seen: HashSet<u64>,
}

fn plain(model: &ClusterModel) -> Stats {
    let start = Instant::now();
    let mut seen = HashSet::new();
    let mut stack = Vec::new();
    for s in model.init_states() {
        if model.within_boundary(&s) && seen.insert(stable_hash(&s)) {
            stack.push(s);
        }
    }
    let mut generated = 0;
    let mut actions = Vec::new();
    while let Some(s) = stack.pop() {
        actions.clear();
        model.actions(&s, &mut actions);
        for a in actions.drain(..) {
            generated += 1;
            if let Some(n) = model.next_state(&s, a) {
                if model.within_boundary(&n) && seen.insert(stable_hash(&n)) {
                    stack.push(n);
                }
            }
        }
    }
    Stats {
        unique: seen.len(),
        generated,
        secs: start.elapsed().as_secs_f64(),
        seen,
    }
}

struct Entry {
    sleep: Vec<Key>,
    explored: bool,
}

/// A local action as (node, hash of the action), ordered.
type Key = (u16, u64);

fn key(a: &Action) -> Option<Key> {
    local(a).map(|n| (n.0, stable_hash(a)))
}

/// Sleep sets with state matching; with `reexplore`, a state met again with a sleep set that
/// lacks some of its recorded one is explored again for those transitions (Godefroid 1996, §5).
fn sleepy(model: &ClusterModel, reexplore: bool) -> Stats {
    let start = Instant::now();
    let mut table: HashMap<u64, Entry> = HashMap::new();
    // (state, its fingerprint, Some(only these actions) for a re-exploration)
    let mut stack: Vec<(ClusterState, u64, Option<Vec<Key>>)> = Vec::new();
    for s in model.init_states() {
        let h = stable_hash(&s);
        if model.within_boundary(&s) {
            table.insert(
                h,
                Entry {
                    sleep: vec![],
                    explored: false,
                },
            );
            stack.push((s, h, None));
        }
    }
    let mut generated = 0;
    let mut actions = Vec::new();
    while let Some((s, h, only)) = stack.pop() {
        let entry = table.get_mut(&h).expect("recorded");
        entry.explored = true;
        let sleep = entry.sleep.clone();
        actions.clear();
        model.actions(&s, &mut actions);
        let mut done: Vec<Key> = Vec::new();
        for a in actions.drain(..).rev() {
            let k = key(&a);
            let skip = match (&only, k) {
                (Some(only), Some(k)) => only.binary_search(&k).is_err(),
                (Some(_), None) => true,
                (None, Some(k)) => sleep.binary_search(&k).is_ok(),
                (None, None) => false,
            };
            if skip {
                continue;
            }
            generated += 1;
            let mut child_sleep: Vec<Key> = match k {
                Some((node, _)) => sleep
                    .iter()
                    .chain(done.iter())
                    .filter(|x| x.0 != node)
                    .copied()
                    .collect(),
                None => Vec::new(),
            };
            child_sleep.sort_unstable();
            if let Some(k) = k {
                done.push(k);
            }
            let Some(n) = model.next_state(&s, a) else {
                continue;
            };
            if !model.within_boundary(&n) {
                continue;
            }
            let hn = stable_hash(&n);
            match table.get_mut(&hn) {
                None => {
                    table.insert(
                        hn,
                        Entry {
                            sleep: child_sleep,
                            explored: false,
                        },
                    );
                    stack.push((n, hn, None));
                }
                Some(e) => {
                    if !reexplore {
                        continue;
                    }
                    let missing: Vec<Key> = e
                        .sleep
                        .iter()
                        .filter(|x| child_sleep.binary_search(x).is_err())
                        .copied()
                        .collect();
                    if missing.is_empty() {
                        continue;
                    }
                    e.sleep.retain(|x| child_sleep.binary_search(x).is_ok());
                    if e.explored {
                        stack.push((n, hn, Some(missing)));
                    }
                }
            }
        }
    }
    Stats {
        unique: table.len(),
        generated,
        secs: start.elapsed().as_secs_f64(),
        seen: table.into_keys().collect(),
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let name = args.next().unwrap_or_else(|| "tiny".into());
    let mut config = CheckConfig::embedded(&name).expect("an embedded configuration");
    let (mut skip_plain, mut repeats) = (false, false);
    while let Some(arg) = args.next() {
        let mut value = || -> u64 { args.next().and_then(|v| v.parse().ok()).expect("a number") };
        match arg.as_str() {
            "--crashes" => config.crashes = value() as u8,
            "--elections" => config.elections = value(),
            "--suspicions" => config.suspicions = value() as u8,
            "--no-plain" => skip_plain = true,
            "--repeats" => repeats = true,
            _ => panic!("unexpected argument {arg}"),
        }
    }
    let fresh = || {
        let model = config.model().expect("a valid configuration");
        model.repeats.set_active(repeats);
        model
    };
    let model = fresh();
    let p = if skip_plain {
        None
    } else {
        Some(plain(&model))
    };
    if let Some(p) = &p {
        println!(
            "plain:           {:>10} unique {:>11} generated {:>7.1} s",
            p.unique, p.generated, p.secs
        );
    }
    let variants: &[bool] = if repeats { &[false] } else { &[false, true] };
    for &reexplore in variants {
        let model = fresh();
        let s = sleepy(&model, reexplore);
        let missing = p.as_ref().map_or(0, |p| p.seen.difference(&s.seen).count());
        println!(
            "sleep (re {reexplore:5}): {:>10} unique {:>11} generated {:>7.1} s, {missing} states of the plain search missing",
            s.unique, s.generated, s.secs
        );
    }
}
