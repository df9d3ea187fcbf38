use std::time::Instant;
use slotguard_model::check::CheckConfig;
use stateright::{Checker, Model};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mut cfg = CheckConfig::embedded(&args[1]).unwrap();
    if let Some(c) = args.get(2) { cfg.crashes = c.parse().unwrap(); }
    if let Some(e) = args.get(3) { cfg.elections = e.parse().unwrap(); }
    if let Some(r) = args.get(4) { cfg.replicas = if r.contains(',') { slotguard_model::check::config::Replicas::PerMaster(r.split(',').map(|x| x.parse().unwrap()).collect()) } else { slotguard_model::check::config::Replicas::Each(r.parse().unwrap()) }; }
    if let Some(k) = args.get(6) { cfg.suspicions = k.parse().unwrap(); }
    let limit: usize = args.get(5).map(|s| s.parse().unwrap()).unwrap_or(5_000_000);
    let model = cfg.model().unwrap();
    let t = Instant::now();
    let checker = model.checker().threads(2).target_state_count(limit).spawn_dfs();
    let mut last = 0;
    while !checker.is_done() {
        std::thread::sleep(std::time::Duration::from_secs(5));
        let u = checker.unique_state_count();
        eprintln!("  {:?} unique={} ({}/s) depth={}", t.elapsed(), u, (u-last)/5, checker.max_depth());
        last = u;
    }
    let checker = checker.join();
    println!("done in {:?}: states={} unique={} depth={}", t.elapsed(), checker.state_count(), checker.unique_state_count(), checker.max_depth());
    for p in checker.model().properties() {
        let d = checker.discovery(p.name);
        println!("  {:?} {}: {}", p.expectation, p.name, match d { None => "-".to_string(), Some(path) => { let acts = path.clone().into_actions(); let last = path.last_state().clone(); format!("discovered, len {}\n{:#?}\nGHOST {:?}", acts.len(), acts, last.ghost) } });
    }
}
