//! Scratch: how fast each mutant bites. `cargo run --release --example mutants -- CONFIG.toml BUG [bfs]`
use slotguard_model::check::CheckConfig;
use slotguard_model::{Bug, Bugs};
use stateright::{Checker, HasDiscoveries, Model};
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let cfg = CheckConfig::from_toml(&std::fs::read_to_string(&args[1]).unwrap()).unwrap();
    let bug = Bug::ALL.into_iter().find(|b| format!("{b:?}") == args[2]).unwrap();
    let bfs = args.get(3).is_some_and(|s| s == "bfs");
    let model = cfg.model_with(Bugs::only(bug)).unwrap();
    let t = Instant::now();
    let prop: &'static str = Box::leak(args[4].clone().into_boxed_str());
    let b = model.checker().threads(2).finish_when(HasDiscoveries::AnyOf([prop].into_iter().collect())).timeout(std::time::Duration::from_secs(120));
    let c = if bfs { Box::new(b.spawn_bfs().join()) as Box<dyn Checker<_>> } else { Box::new(b.spawn_dfs().join()) };
    let found: Vec<_> = c.model().properties().into_iter().filter(|p| p.expectation == stateright::Expectation::Always && c.discovery(p.name).is_some()).map(|p| p.name).collect();
    println!("{:?}: {:?} in {:?} ({} states)", bug, found, t.elapsed(), c.unique_state_count());
}
