//! Deterministic simulation of the node runtime (specs/protocol.md §14): N nodes' real
//! runtime code below the tokio shell — the [`Driver`](crate::driver::Driver) with its replay
//! filter, datagram sealing and timers, and the state file's real encoding — in one process,
//! on a simulated clock and network, with seeded loss, duplication, reordering, delay,
//! partitions (symmetric and one-way), pauses and crash-restarts from the last durable save.
//! A seed replays its run exactly. Every run is checked throughout (checks.rs) and must agree
//! again once its faults stop.
//!
//! Why a layer of our own rather than the `turmoil` crate: turmoil simulates hosts that run
//! tokio code over simulated sockets, which would be the right tool for a shell full of
//! decisions; ours has none (§10), and the driver is already sans-IO, taking the time as an
//! argument. What the simulation must control is below what turmoil offers: when a state-file
//! write becomes durable relative to the datagrams queued after it, a crash that drops the
//! write in flight (or lets it land), which steps the world has seen, and the timers' random
//! jitter — none of which turmoil models (it has no disk), and all of which are a few lines
//! against the driver's effect queue. A single-threaded event loop over the drivers is also
//! cheaper than a tokio runtime per host, which is what lets CI run thousands of seeds
//! (specs/protocol.md §14.4).
//!
//! Files: plan.rs (a seed's run), net.rs (the bus), host.rs (one node's shell and disk),
//! world.rs (the event loop), checks.rs (the properties), rng.rs (the seeded generator).

mod checks;
mod host;
mod net;
mod plan;
mod rng;
#[cfg(test)]
mod tests;
mod world;

pub(crate) use self::plan::{Breakage, Config, Plan, CI};
pub(crate) use self::rng::splitmix;
pub(crate) use self::world::Outcome;

/// Runs seed `seed` of `config` on this thread; `verbose` keeps the run's log.
pub(crate) fn run(seed: u64, config: &Config, verbose: bool) -> Outcome {
    run_plan(Plan::draw(seed, config), verbose)
}

/// Runs `plan` on this thread (its seed seeds what the plan leaves to chance).
pub(crate) fn run_plan(plan: Plan, verbose: bool) -> Outcome {
    let seed = plan.seed;
    crate::timers::seed_draws(Some(rng::Rng::new(seed, 3).next_u64()));
    crate::driver::observe_steps(true);
    let outcome = world::World::new(plan, verbose).run();
    crate::driver::observe_steps(false);
    crate::timers::seed_draws(None);
    outcome
}
