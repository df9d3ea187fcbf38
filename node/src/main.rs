//! `slotguard`: the model checker, the state explorer and the deployable node, in one binary.
//!
//! Each subcommand lives in its own module; the protocol itself is in `slotguard-protocol` (the
//! checker in `slotguard-check`), and nothing here makes a protocol decision.

mod check_cmd;
mod cluster_cmd;
#[cfg(test)]
mod deploy_tests;
mod explore_cmd;
#[cfg(test)]
mod fuzz_tests;
mod live;
mod node_cmd;
mod page;
mod runtime;
mod validate_cmd;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// mimalloc instead of the system allocator: the model checker allocates and frees a copy of
/// part of the cluster state for every step it computes, and glibc's malloc and free took
/// about 15 % of a `check standard --symmetry` run. Built with `no_thp`: on a kernel whose
/// transparent huge pages are `always`, mimalloc's eagerly committed arena otherwise turns into
/// huge pages, and an idle node resides in twice the memory it uses (specs/performance.md §5);
/// the checker runs as fast without them.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// slotguard: a Redis-Cluster-style failover control plane whose protocol is model-checked.
#[derive(Parser, Debug)]
#[command(name = "slotguard", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Model-check the protocol on a configuration (default: the embedded `tiny`).
    Check(check_cmd::CheckArgs),
    /// Browse the protocol's states as pictures of the cluster (web UI).
    Explore(explore_cmd::ExploreArgs),
    /// Run one cluster node (UDP cluster bus, RESP admin port).
    Node(runtime::config::NodeArgs),
    /// Run a local cluster on loopback, one child process per node.
    Cluster(cluster_cmd::ClusterArgs),
    /// Replay the traces of `node --trace` through the model and check them (exit 1 if not
    /// valid).
    Validate(validate_cmd::ValidateArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Check(args) => check_cmd::run(args),
        Command::Explore(args) => explore_cmd::run(args).map(|()| ExitCode::SUCCESS),
        Command::Node(args) => node_cmd::run(&args).map(|()| ExitCode::SUCCESS),
        Command::Cluster(args) => cluster_cmd::run(&args).map(|()| ExitCode::SUCCESS),
        Command::Validate(args) => validate_cmd::run(&args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("slotguard: error: {err:#}");
            ExitCode::from(2)
        }
    }
}
