//! Where a configuration's states come from: a prefix of its state space, how many distinct
//! values each part of the state takes over that prefix, and which messages in flight tell
//! apart states that agree on everything else.
//!
//! ```sh
//! cargo run --release -p slotguard-model --example state_breakdown -- standard 400000
//! cargo run --release -p slotguard-model --example state_breakdown -- specs/configs/tiny.toml 100000 --bfs
//! ```
//!
//! Arguments: an embedded configuration name or a TOML file, how many unique states to visit
//! (default 200,000), `--bfs` for a breadth-first prefix (default: depth-first, which reaches
//! failovers sooner), `--crashes N` to override the crash budget. Each projection line counts
//! the distinct projections of the visited states onto some of their parts: a large drop from
//! one line to a smaller one says that the part left out multiplies the state space. The
//! message table then takes pairs of visited states that differ only in their networks and
//! counts, by message kind and sender/receiver role, the envelopes in one and not the other,
//! and whether delivering each would change its receiver now (`live`) or not (`no-op`): many
//! no-ops of one kind point at a canonical-network rule still missing (specs/protocol.md §8.4).
//! This is how the rules of §8.4, §8.6 and §8.7 were found.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use slotguard_model::check::hashed::{stable_hash, Hashed};
use slotguard_model::check::network::Shared;
use slotguard_model::check::{Action, CheckConfig, ClusterState, Envelope};
use slotguard_model::state::{Election, Health, NodeState};
use stateright::Model;

type Projection = Box<dyn Fn(&ClusterState) -> u64>;

/// A projection onto the node states, each first rewritten by `erase`.
fn nodes_with(erase: fn(&mut NodeState)) -> Projection {
    Box::new(move |s: &ClusterState| {
        let nodes: Vec<NodeState> = s
            .nodes
            .iter()
            .map(|n| {
                let mut n = (**n).clone();
                erase(&mut n);
                n
            })
            .collect();
        stable_hash(&(nodes, &s.crashed))
    })
}

/// The whole state, with every PING/PONG whose only effect on its receiver now is to raise its
/// currentEpoch replaced by a token (receiver, epoch) that forgets the sender and the header:
/// how many states an "epoch-only" canonical form could merge at most (it would also have to
/// stay exact in later states, which this does not check). A header counts as epoch-only when
/// delivering it with its currentEpoch zeroed changes nothing.
///
/// `settled` restricts the fold to where a PONG's proof of life can no longer matter: the
/// suspicion budget is spent and the receiver has the sender healthy. (Restricting it further to
/// headers older than the last one the receiver applied from the sender, `heard`, folds nothing
/// on `standard`: the folded headers carry the sender's current configEpoch with an older
/// currentEpoch.) `keep_sender` keeps the sender in the token: what a canonical form that still
/// names its sender could fold.
fn epoch_only_folded(
    model: &slotguard_model::check::ClusterModel,
    settled: bool,
    keep_sender: bool,
) -> Projection {
    use slotguard_model::message::Msg;
    let model = model.clone();
    Box::new(move |s: &ClusterState| {
        let spent = s.suspicions >= model.suspicion_budget;
        let mut kept: Vec<&Envelope> = Vec::new();
        let mut tokens: Vec<(u16, u16, u64)> = Vec::new();
        for env in s.network.iter() {
            let zeroed = match &env.msg {
                Msg::Ping(h) | Msg::Pong(h)
                    if h.current_epoch.0 > 0
                        && (!settled || {
                            let view = &s.nodes[env.dst.index()].peers[env.src.index()];
                            spent && view.health == Health::Ok
                        }) =>
                {
                    let mut h = h.clone();
                    let epoch = h.current_epoch.0;
                    h.current_epoch = Default::default();
                    let msg = match &env.msg {
                        Msg::Ping(_) => Msg::Ping(h),
                        _ => Msg::Pong(h),
                    };
                    Some((
                        epoch,
                        Envelope {
                            src: env.src,
                            dst: env.dst,
                            msg,
                        },
                    ))
                }
                _ => None,
            };
            match zeroed {
                Some((epoch, z))
                    if model
                        .next_state(s, Action::Deliver(Shared::new(z.clone())))
                        .is_none() =>
                {
                    tokens.push((env.dst.0, if keep_sender { env.src.0 } else { 0 }, epoch));
                }
                _ => kept.push(env),
            }
        }
        tokens.sort_unstable();
        tokens.dedup();
        stable_hash(&(
            (&s.nodes, &s.crashed, &s.storage, &s.timers, &s.ghost),
            (s.crashes, s.suspicions),
            kept,
            tokens,
        ))
    })
}

/// A replica's health and reports about nodes other than its master: what a reduction of
/// suspicions that decide nothing could merge (specs/properties.md, "`large`"). Such a
/// suspicion only feeds FAIL adoption and gossip entries that canonical forms drop.
fn erase_replica_side_suspicions(n: &mut NodeState) {
    if let Some(master) = n.role.master() {
        for (i, p) in n.peers.iter_mut().enumerate() {
            if i != master.index() {
                p.reports = Default::default();
                p.health = Health::Ok;
            }
        }
    }
}

fn projections() -> Vec<(&'static str, Projection)> {
    vec![
        ("whole state", Box::new(|s: &ClusterState| stable_hash(s))),
        (
            "whole state but the count of crashes",
            Box::new(|s: &ClusterState| s.fingerprint_but_crashes()),
        ),
        (
            "without the network",
            Box::new(|s: &ClusterState| {
                stable_hash(&(
                    &s.nodes,
                    &s.crashed,
                    &s.storage,
                    &s.timers,
                    &s.ghost,
                    s.crashes,
                    s.suspicions,
                ))
            }),
        ),
        (
            "node states, timers, history",
            Box::new(|s: &ClusterState| stable_hash(&(&s.nodes, &s.crashed, &s.timers, &s.ghost))),
        ),
        (
            "node states, timers, vote grants",
            Box::new(|s: &ClusterState| {
                stable_hash(&(&s.nodes, &s.crashed, &s.timers, &s.ghost.grants))
            }),
        ),
        (
            "node states, timers, suspected-by",
            Box::new(|s: &ClusterState| {
                stable_hash(&(&s.nodes, &s.crashed, &s.timers, &s.ghost.suspected_by))
            }),
        ),
        (
            "node states, timers, budgets",
            Box::new(|s: &ClusterState| {
                stable_hash(&(&s.nodes, &s.crashed, &s.timers, s.crashes, s.suspicions))
            }),
        ),
        (
            "whole state but the budget counts, replicas' suspicions of others than their master erased",
            Box::new(|s: &ClusterState| {
                let mut s = s.clone();
                s.crashes = 0;
                s.suspicions = 0;
                for node in &mut s.nodes {
                    let mut n = (**node).clone();
                    erase_replica_side_suspicions(&mut n);
                    *node = Hashed::new(n);
                }
                stable_hash(&s)
            }),
        ),
        ("node states", nodes_with(|_| {})),
        (
            "node states, replicas' suspicions of others than their master erased",
            nodes_with(erase_replica_side_suspicions),
        ),
        (
            "node states without FAIL-undo flags",
            nodes_with(|n| {
                for p in &mut n.peers {
                    if p.health.is_fail() {
                        p.health = Health::Fail { undo_ready: false };
                    }
                }
            }),
        ),
        (
            "node states without heard",
            nodes_with(|n| {
                for p in &mut n.peers {
                    p.heard = Default::default();
                }
            }),
        ),
        (
            "node states without reports",
            nodes_with(|n| {
                for p in &mut n.peers {
                    p.reports = Default::default();
                }
            }),
        ),
        (
            "node states without reports or peer health",
            nodes_with(|n| {
                for p in &mut n.peers {
                    p.reports = Default::default();
                    p.health = Health::Ok;
                }
            }),
        ),
        (
            "durable parts of node states",
            nodes_with(|n| {
                n.election = Election::Idle;
                for p in &mut n.peers {
                    p.reports = Default::default();
                    p.health = Health::Ok;
                    p.heard = Default::default();
                }
            }),
        ),
    ]
}

fn main() {
    let mut args = std::env::args().skip(1);
    let name = args.next().unwrap_or_else(|| "standard".into());
    let (mut cap, mut bfs, mut crashes) = (200_000usize, false, None);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--bfs" => bfs = true,
            "--crashes" => crashes = args.next().and_then(|v| v.parse().ok()),
            _ => match arg.parse() {
                Ok(n) => cap = n,
                Err(_) => {
                    eprintln!("unexpected argument {arg}");
                    std::process::exit(2);
                }
            },
        }
    }
    let config = match CheckConfig::embedded(&name) {
        Some(c) => c,
        None => match std::fs::read_to_string(&name)
            .map_err(|e| e.to_string())
            .and_then(|text| CheckConfig::from_toml(&text).map_err(|e| e.to_string()))
        {
            Ok(c) => c,
            Err(e) => {
                eprintln!("{name}: neither an embedded configuration nor a readable one: {e}");
                std::process::exit(2);
            }
        },
    };
    let mut config = config;
    if let Some(c) = crashes {
        config.crashes = c;
    }
    let model = match config.model() {
        Ok(m) => m,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };

    let mut projections = projections();
    projections.insert(
        1,
        (
            "whole state, epoch-only headers folded",
            epoch_only_folded(&model, false, false),
        ),
    );
    projections.insert(
        2,
        (
            "  ... only once no suspicion is left, to a receiver that has the sender healthy",
            epoch_only_folded(&model, true, false),
        ),
    );
    projections.insert(
        3,
        (
            "  ... and keeping each token's sender",
            epoch_only_folded(&model, true, true),
        ),
    );
    let mut seen: Vec<HashSet<u64>> = vec![HashSet::new(); projections.len()];
    // Up to two visited states per projection "without the network", for the message table.
    let mut same_but_network: HashMap<u64, Vec<ClusterState>> = HashMap::new();
    let mut pending: VecDeque<ClusterState> = model.init_states().into();
    let mut actions = Vec::new();
    let mut in_flight = 0usize;
    while let Some(s) = if bfs {
        pending.pop_front()
    } else {
        pending.pop_back()
    } {
        if seen[0].len() >= cap {
            break;
        }
        if !model.within_boundary(&s) || !seen[0].insert(stable_hash(&s)) {
            continue;
        }
        in_flight += s.network.len();
        for (set, (_, project)) in seen.iter_mut().zip(&projections).skip(1) {
            set.insert(project(&s));
        }
        let group = same_but_network.entry(projections[1].1(&s)).or_default();
        if group.len() < 2 {
            group.push(s.clone());
        }
        actions.clear();
        model.actions(&s, &mut actions);
        for a in actions.drain(..) {
            if let Some(next) = model.next_state(&s, a) {
                pending.push_back(next);
            }
        }
    }
    let visited = seen[0].len();
    println!(
        "{name} (crashes {}): {visited} unique states visited {}, {:.1} messages in flight on average",
        config.crashes,
        if bfs { "breadth-first" } else { "depth-first" },
        in_flight as f64 / visited.max(1) as f64
    );
    for ((label, _), set) in projections.iter().zip(&seen) {
        println!("{:>10}  {label}", set.len());
    }

    let layout = &model.actor.layout;
    let role = |n: slotguard_model::NodeId| match layout.spec(n).map(|s| &s.role) {
        Some(slotguard_model::InitialRole::Master { .. }) => "M",
        _ => "R",
    };
    let mut tally: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for group in same_but_network.values().filter(|g| g.len() == 2) {
        let (a, b) = (&group[0], &group[1]);
        let in_a: HashSet<&Envelope> = a.network.iter().map(|e| &**e).collect();
        let in_b: HashSet<&Envelope> = b.network.iter().map(|e| &**e).collect();
        let only = in_a
            .difference(&in_b)
            .map(|e| (a, *e))
            .chain(in_b.difference(&in_a).map(|e| (b, *e)));
        for (state, env) in only {
            let noop = model
                .next_state(state, Action::Deliver(Shared::new(env.clone())))
                .is_none();
            let kind = format!("{} {}->{}", env.msg.kind(), role(env.src), role(env.dst));
            let entry = tally.entry(kind).or_default();
            if noop {
                entry.0 += 1;
            } else {
                entry.1 += 1;
            }
        }
    }
    println!("\nmessages telling apart states equal but for their networks (M master, R replica at creation):");
    println!("{:<24} {:>10} {:>10}", "message", "no-op", "live");
    for (kind, (noop, live)) in &tally {
        println!("{kind:<24} {noop:>10} {live:>10}");
    }
}
