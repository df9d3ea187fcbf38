//! Which properties random walks find broken by each mutant of the catalogue, on one
//! configuration: the figures of specs/properties.md, "Random walks".
//!
//! ```sh
//! cargo run --release -p slotguard-model --example mutant_walks -- large 100000
//! ```
//!
//! Arguments: an embedded configuration (default `large`), how many states the walks of each
//! mutant visit (default 100,000), optionally the mutants to run (`VoteTwicePerEpoch` ...), and
//! `--seed N` (default 0). One thread and a seed: the walks, and so every line, are the same
//! on every run of one build. Each line: the mutant, the seconds its walks took, and
//! each violated property with the length of its counterexample, replayed and re-checked.

use std::time::Instant;

use slotguard_model::check::run::{self, RunOptions, Status};
use slotguard_model::check::CheckConfig;
use slotguard_model::{Bug, Bugs};

mod walk_args;

fn main() {
    let walk_args::WalkArgs {
        config: name,
        states,
        seed,
        rest: only,
    } = walk_args::parse("large", 100_000);
    let config = CheckConfig::embedded(&name).expect("an embedded configuration");
    for bug in Bug::ALL {
        if !only.is_empty() && !only.contains(&format!("{bug:?}")) {
            continue;
        }
        let model = config
            .model_with(Bugs::only(bug))
            .expect("a valid configuration");
        let options = RunOptions::reproducible_walks(seed, states);
        let start = Instant::now();
        let report = run::run(model, &options, |_| {});
        let violated: Vec<String> = report
            .properties
            .iter()
            .filter(|p| p.status == Status::Violated)
            .map(|p| {
                let steps = p.trace.as_ref().map_or(0, |t| t.steps.len());
                let plural = if steps == 1 { "" } else { "s" };
                format!("{} ({steps} step{plural})", p.name)
            })
            .collect();
        let unreplayed: Vec<&str> = report
            .properties
            .iter()
            .filter(|p| p.replay_error.is_some())
            .map(|p| p.name)
            .collect();
        println!(
            "{bug:?}: {:.1} s, violated: {}{}",
            start.elapsed().as_secs_f64(),
            if violated.is_empty() {
                "none".to_string()
            } else {
                violated.join(", ")
            },
            if unreplayed.is_empty() {
                String::new()
            } else {
                format!("; NOT REPLAYED: {unreplayed:?}")
            }
        );
    }
}
