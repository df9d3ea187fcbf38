//! scratch: which mutants bite where
use slotguard_model::check::CheckConfig;
use slotguard_model::{Bug, Bugs};
use stateright::{Checker, HasDiscoveries, Model};
use std::time::Instant;

fn main() {
    let crashes: u8 = std::env::args().nth(1).map(|s| s.parse().unwrap()).unwrap_or(1);
    for bug in Bug::ALL {
        let mut cfg = CheckConfig::embedded("tiny").unwrap();
        cfg.replicas = slotguard_model::check::config::Replicas::PerMaster(vec![0, 0, 1]);
        cfg.crashes = crashes;
        if bug == Bug::StaleVotesNotReset { cfg.elections = 2; }
        let model = cfg.model_with(Bugs::only(bug)).unwrap();
        let t = Instant::now();
        let c = model.checker().threads(2).finish_when(HasDiscoveries::AnyFailures).target_state_count(20_000_000).spawn_dfs().join();
        let found: Vec<_> = c.model().properties().into_iter().filter(|p| p.expectation == stateright::Expectation::Always && c.discovery(p.name).is_some()).map(|p| p.name).collect();
        println!("{:?}: {:?} in {:?} ({} states)", bug, found, t.elapsed(), c.unique_state_count());
    }
}
