//! `slotguard-bench`: slotguard and Redis Cluster side by side on one machine, one command per
//! row of the comparison, each printing a table with ratios to Redis and writing the samples as
//! JSON (issue #25).
//!
//! Why a Rust binary in the workspace rather than scripts: it builds and runs wherever the
//! project does (`cargo run -p slotguard-bench`), with the lockfile's crates only; it parses
//! the systems' replies with types instead of text tools; and the same code renders the README's
//! and the specs' tables from the JSON of a run. What it drives are the real programs: Debian's
//! `redis-server`, `redis-cli` and `redis-benchmark`, and the release `slotguard` binary.
//!
//! No figure is asserted anywhere: the smoke form (`all --smoke`, in CI) only shows that every
//! benchmark still runs.

mod bus;
mod checker;
mod cluster;
mod dataplane;
mod failover;
mod faults;
mod host;
mod memory;
mod report;
mod resp;
mod sim;
mod view;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use serde::{Deserialize, Serialize};

use crate::cluster::{Shape, System, Tools};
use crate::report::{row, Figure, Row};

/// slotguard and Redis Cluster side by side: failover time, bus traffic, detection at scale,
/// data plane, memory, and the checker.
#[derive(Parser, Debug)]
#[command(name = "slotguard-bench")]
struct Cli {
    /// The slotguard binary (default: `slotguard` beside this one, i.e. target/release).
    #[arg(long, global = true)]
    slotguard: Option<PathBuf>,
    /// Where to write the run's JSON (default: target/bench/<command>.json).
    #[arg(long, global = true)]
    json: Option<PathBuf>,
    /// Where clusters keep their files while they run.
    #[arg(long, global = true)]
    work: Option<PathBuf>,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Failover time: kill -9 a master of 3 masters × 1 replica under a client load.
    Failover(FailoverArgs),
    /// Bus traffic, CPU and memory per node: idle, or during a failover.
    Bus(BusArgs),
    /// Detection time at scale: until every node marks a killed master FAIL.
    Detect(DetectArgs),
    /// `redis-benchmark --cluster -t set,get` against both.
    DataPlane(DataPlaneArgs),
    /// Resident memory per million small keys.
    Memory(MemoryArgs),
    /// `slotguard check` on the configurations; with --write-specs, the table in
    /// specs/properties.md.
    Checker(CheckerArgs),
    /// Scale beyond processes: every node's engine in one process on a simulated clock.
    Sim(SimArgs),
    /// Lost writes under a partition, kill -9 and pause of a master (Redis, Redis with WAIT,
    /// slotguard's durability modes), and the fault matrix on slotguard; needs root
    /// (network namespaces). Not part of `all`.
    Faults(FaultsArgs),
    /// Every benchmark, one after another; with --smoke, each in a few seconds (CI).
    All(AllArgs),
    /// Prints the tables of a run's JSON again; with --write-readme / --write-specs, writes them.
    Render(RenderArgs),
}

#[derive(Args, Debug, Clone)]
struct FailoverArgs {
    /// node_timeout values, ms.
    #[arg(long, value_delimiter = ',', default_values_t = [1000u64, 5000])]
    node_timeouts: Vec<u64>,
    /// Runs per system and node_timeout (the issue asks for 20).
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// How often each node's CLUSTER NODES is read, ms.
    #[arg(long, default_value_t = 10)]
    poll_ms: u64,
}

#[derive(Args, Debug, Clone)]
struct BusArgs {
    /// Cluster sizes (masters with one replica each).
    #[arg(long, value_delimiter = ',', default_values_t = [6usize, 20])]
    nodes: Vec<usize>,
    /// Length of the window, s.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// node_timeout, ms.
    #[arg(long, default_value_t = 1000)]
    node_timeout: u64,
    /// slotguard's node_timeout, ms, if not `--node-timeout`: to compare at equal detection
    /// time (slotguard's node_timeout counts from the last reply, Redis's from the first
    /// unanswered ping, so equal settings detect at different times).
    #[arg(long)]
    slotguard_node_timeout: Option<u64>,
    /// The window starts with the kill -9 of a master, and counts the survivors: detection,
    /// election and rebinding, rather than an idle cluster.
    #[arg(long)]
    during_failover: bool,
}

#[derive(Args, Debug, Clone)]
struct DetectArgs {
    /// Cluster sizes (masters with one replica each).
    #[arg(long, value_delimiter = ',', default_values_t = [6usize, 20])]
    nodes: Vec<usize>,
    /// Runs per system and size.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// node_timeout, ms.
    #[arg(long, default_value_t = 1000)]
    node_timeout: u64,
    /// slotguard's node_timeout, ms, if not `--node-timeout` (as for `bus`).
    #[arg(long)]
    slotguard_node_timeout: Option<u64>,
    /// How often each node's CLUSTER NODES is read, ms.
    #[arg(long, default_value_t = 20)]
    poll_ms: u64,
}

#[derive(Args, Debug, Clone)]
struct DataPlaneArgs {
    /// Requests per test (`-n`).
    #[arg(long, default_value_t = 1_000_000)]
    requests: u64,
    /// Clients (`-c`).
    #[arg(long, default_value_t = 50)]
    clients: u32,
    /// Pipeline depths (`-P`).
    #[arg(long, value_delimiter = ',', default_values_t = [1u32, 16])]
    pipelines: Vec<u32>,
}

#[derive(Args, Debug, Clone)]
struct MemoryArgs {
    /// Keys written.
    #[arg(long, default_value_t = 1_000_000)]
    keys: u64,
}

#[derive(Args, Debug, Clone)]
struct CheckerArgs {
    /// Seconds of random walks on `large`.
    #[arg(long, default_value_t = 60)]
    random_seconds: u64,
    /// Thread counts.
    #[arg(long, value_delimiter = ',', default_values_t = [1usize, 2])]
    threads: Vec<usize>,
    /// Only `tiny` and a few seconds of walks.
    #[arg(long)]
    smoke: bool,
    /// Write the table into specs/properties.md (between its bench:checker markers).
    #[arg(long)]
    write_specs: bool,
}

#[derive(Args, Debug, Clone)]
struct SimArgs {
    /// Cluster sizes (masters with one replica each).
    #[arg(long, value_delimiter = ',', default_values_t = [20usize, 100, 200])]
    nodes: Vec<usize>,
    /// node_timeout, ms.
    #[arg(long, default_value_t = 1000)]
    node_timeout: u64,
    /// One-way latency of every datagram, µs.
    #[arg(long, default_value_t = 100)]
    latency_us: u64,
    /// Simulated seconds of idle traffic measured.
    #[arg(long, default_value_t = 2)]
    idle_seconds: u64,
    /// Wall-clock seconds each size may take before it is cut short.
    #[arg(long, default_value_t = 300)]
    wall_budget: u64,
}

#[derive(Args, Debug, Clone)]
struct FaultsArgs {
    /// Systems of the lost-write measurement (default: all: redis, redis-wait,
    /// slotguard-async, slotguard-sync).
    #[arg(long, value_delimiter = ',')]
    systems: Vec<String>,
    /// kill -9 restarts at random moments in the matrix.
    #[arg(long, default_value_t = 100)]
    restarts: usize,
    /// Seed of the matrix's random moments.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Leave out the fault matrix.
    #[arg(long)]
    no_matrix: bool,
    /// Leave out the lost-write measurement.
    #[arg(long)]
    no_lost_writes: bool,
    /// One scenario, short phases, a small matrix (CI).
    #[arg(long)]
    smoke: bool,
    /// Write the tables into README.md and specs/faults.md (between their bench:faults
    /// markers).
    #[arg(long)]
    write: bool,
}

#[derive(Args, Debug, Clone)]
struct AllArgs {
    /// Tiny sizes: each benchmark in seconds (what CI runs).
    #[arg(long)]
    smoke: bool,
    /// Failover runs per system and node_timeout.
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Cluster sizes of the bus and detection rows.
    #[arg(long, value_delimiter = ',', default_values_t = [6usize, 20])]
    nodes: Vec<usize>,
    /// Leave out the checker row (it takes the longest).
    #[arg(long)]
    no_checker: bool,
    /// Write the comparison into README.md (between its bench:performance markers).
    #[arg(long)]
    write_readme: bool,
    /// Write the checker table into specs/properties.md.
    #[arg(long)]
    write_specs: bool,
}

#[derive(Args, Debug, Clone)]
struct RenderArgs {
    /// A run's JSON.
    from: PathBuf,
    /// Write the comparison into README.md.
    #[arg(long)]
    write_readme: bool,
    /// Write the checker table into specs/properties.md.
    #[arg(long)]
    write_specs: bool,
    /// Write the fault tables (a `faults` run) into README.md and specs/faults.md.
    #[arg(long)]
    write_faults: bool,
}

/// Everything one run measured, and the rows computed from it.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Results {
    /// When the run started (UTC).
    date: String,
    /// The command, as run.
    command: String,
    /// Logical CPUs.
    cores: usize,
    /// Load averages (1, 5, 15 min) at the start and at the end.
    load_before: Option<serde_json::Value>,
    load_after: Option<serde_json::Value>,
    /// `redis-server --version`.
    redis_version: String,
    /// The slotguard commit measured.
    slotguard_commit: String,
    failover: Vec<serde_json::Value>,
    detect: Vec<serde_json::Value>,
    bus: Vec<serde_json::Value>,
    memory: Vec<serde_json::Value>,
    data_plane: Vec<serde_json::Value>,
    checker: Vec<serde_json::Value>,
    #[serde(default)]
    sim: Vec<serde_json::Value>,
    /// Lost writes per scenario and system (`faults`).
    #[serde(default)]
    lost_writes: Vec<serde_json::Value>,
    /// The fault matrix (`faults`).
    #[serde(default)]
    fault_matrix: Vec<serde_json::Value>,
    /// The comparison's rows.
    rows: Vec<Row>,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    if let Cmd::Render(args) = &cli.command {
        let text = std::fs::read_to_string(&args.from)
            .with_context(|| format!("cannot read {}", args.from.display()))?;
        let results: Results = serde_json::from_str(&text)?;
        publish(&results, args.write_readme, args.write_specs)?;
        if !results.lost_writes.is_empty() || !results.fault_matrix.is_empty() {
            publish_faults(&results, args.write_faults)?;
        }
        return Ok(());
    }
    let work = cli
        .work
        .clone()
        .unwrap_or_else(|| std::env::temp_dir().join("slotguard-bench"));
    let tools = Tools::find(cli.slotguard.clone(), work)?;
    let mut results = Results {
        date: now_utc(),
        command: std::env::args().collect::<Vec<_>>().join(" "),
        cores: host::cores(),
        load_before: host::load().ok().and_then(|l| serde_json::to_value(l).ok()),
        redis_version: Tools::redis_version(),
        slotguard_commit: git_commit(),
        ..Results::default()
    };
    let (name, write_readme, write_specs) = match &cli.command {
        Cmd::Failover(a) => {
            failover(&tools, a, &mut results)?;
            ("failover", false, false)
        }
        Cmd::Bus(a) => {
            bus(&tools, a, &mut results)?;
            ("bus", false, false)
        }
        Cmd::Detect(a) => {
            detect(&tools, a, &mut results)?;
            ("detect", false, false)
        }
        Cmd::DataPlane(a) => {
            data_plane(&tools, a, &mut results)?;
            ("data-plane", false, false)
        }
        Cmd::Memory(a) => {
            memory(&tools, a, &mut results)?;
            ("memory", false, false)
        }
        Cmd::Checker(a) => {
            checker(&tools, a, &mut results)?;
            ("checker", false, a.write_specs)
        }
        Cmd::Sim(a) => {
            simulate(a, &mut results)?;
            ("sim", false, false)
        }
        Cmd::Faults(a) => {
            let (lost, matrix) = faults::run(
                &tools.slotguard,
                &faults::Options {
                    systems: a.systems.clone(),
                    restarts: a.restarts,
                    no_matrix: a.no_matrix,
                    no_lost_writes: a.no_lost_writes,
                    smoke: a.smoke,
                    seed: a.seed,
                },
            )?;
            results.lost_writes = lost;
            results.fault_matrix = matrix;
            ("faults", false, false)
        }
        Cmd::All(a) => {
            all(&tools, a, &mut results)?;
            ("all", a.write_readme, a.write_specs)
        }
        Cmd::Render(_) => unreachable!("handled above"),
    };
    results.load_after = host::load().ok().and_then(|l| serde_json::to_value(l).ok());
    let path = cli
        .json
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("target/bench/{name}.json")));
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&path, serde_json::to_string_pretty(&results)?)
        .with_context(|| format!("cannot write {}", path.display()))?;
    publish(&results, write_readme, write_specs)?;
    if let Cmd::Faults(a) = &cli.command {
        publish_faults(&results, a.write)?;
    }
    eprintln!("samples: {}", path.display());
    Ok(())
}

/// Prints the fault tables; with `write`, writes them into README.md and specs/faults.md.
fn publish_faults(results: &Results, write: bool) -> Result<()> {
    let lost = faults::lost_table(&results.lost_writes);
    let matrix = faults::matrix_table(&results.fault_matrix);
    let anomalies = faults::anomalies(&results.lost_writes);
    println!("{lost}\n{anomalies}{matrix}");
    if write {
        let text = format!("{}\n{lost}\n{matrix}", run_line(results));
        report::replace_section(std::path::Path::new("README.md"), "faults", &text)?;
        let text = format!(
            "{}\n{lost}\nThe shortest history that is not linearizable, per system and scenario:\n\n{anomalies}{matrix}",
            run_line(results)
        );
        report::replace_section(std::path::Path::new("specs/faults.md"), "faults", &text)?;
        eprintln!("README.md and specs/faults.md: fault tables written");
    }
    Ok(())
}

/// Prints the tables and writes them where asked.
fn publish(results: &Results, write_readme: bool, write_specs: bool) -> Result<()> {
    let table = report::markdown(&results.rows);
    if !results.rows.is_empty() {
        println!("{table}");
    }
    let checker = checker_table(results);
    if !checker.is_empty() {
        println!("{checker}");
    }
    let sim = sim_table(results);
    if !sim.is_empty() {
        println!("{sim}");
    }
    if write_readme {
        report::replace_section(
            std::path::Path::new("README.md"),
            "performance",
            &readme_section(results, &format!("{table}\n{sim}")),
        )?;
        eprintln!("README.md: Performance table written");
    }
    if write_specs {
        report::replace_section(
            std::path::Path::new("specs/properties.md"),
            "checker",
            &format!("{}\n{checker}", run_line(results)),
        )?;
        eprintln!("specs/properties.md: checker table written");
    }
    Ok(())
}

fn load_text(v: &Option<serde_json::Value>) -> String {
    v.as_ref().map_or("?".to_string(), |l| {
        format!("{} {} {}", l["one"], l["five"], l["fifteen"])
    })
}

fn run_line(r: &Results) -> String {
    format!(
        "Measured {} on {} cores (load averages 1/5/15 min: {} at the start, {} at the end), \
         Redis {}, slotguard {}, by `{}`.\n",
        r.date,
        r.cores,
        load_text(&r.load_before),
        load_text(&r.load_after),
        r.redis_version,
        r.slotguard_commit,
        r.command
    )
}

fn readme_section(r: &Results, table: &str) -> String {
    format!("{}\n{table}", run_line(r))
}

fn checker_table(r: &Results) -> String {
    if r.checker.is_empty() {
        return String::new();
    }
    let mut out = String::from(
        "| configuration | threads | result | unique states | time | unique states/s | unique states/min | peak RSS |\n|---|---|---|---|---|---|---|---|\n",
    );
    for c in &r.checker {
        let result = match (c["complete"].as_bool(), c["passed"].as_bool()) {
            (Some(true), Some(true)) => "complete, PASS",
            (Some(true), _) => "complete, FAIL",
            (_, _) => "incomplete (walks)",
        };
        out.push_str(&format!(
            "| `{}` | {} | {} | {} | {:.1} s | {} | {} | {:.0} MB |\n",
            c["label"].as_str().unwrap_or("?"),
            c["threads"],
            result,
            thousands(c["unique_states"].as_f64().unwrap_or(0.0)),
            c["seconds"].as_f64().unwrap_or(0.0),
            thousands(c["unique_per_second"].as_f64().unwrap_or(0.0)),
            thousands(c["unique_per_minute"].as_f64().unwrap_or(0.0)),
            c["peak_rss"].as_f64().unwrap_or(0.0) / 1e6,
        ));
    }
    out
}

fn sim_table(r: &Results) -> String {
    if r.sim.is_empty() {
        return String::new();
    }
    let secs = |v: &serde_json::Value| {
        v.as_f64()
            .map_or("not reached".to_string(), |x| format!("{x:.2} s"))
    };
    let mut out = String::from(
        "Simulated (`slotguard-bench sim`: every node's engine in one process, simulated clock, every datagram delivered after the same latency):\n\n\
         | nodes | node_timeout | all heard from all after start | idle bus KB/s per node | datagrams/s per node | every node FAIL after the kill | promoted | all agree | wall time |\n\
         |---|---|---|---|---|---|---|---|---|\n",
    );
    for s in &r.sim {
        out.push_str(&format!(
            "| {} | {} ms | {} | {:.1} | {:.0} | {} | {} | {} | {:.0} s{} |\n",
            s["nodes"],
            s["node_timeout_ms"],
            secs(&s["all_heard_s"]),
            s["bytes_per_node_s"].as_f64().unwrap_or(0.0) / 1e3,
            s["datagrams_per_node_s"].as_f64().unwrap_or(0.0),
            secs(&s["all_fail_s"]),
            secs(&s["promoted_s"]),
            secs(&s["all_agree_s"]),
            s["wall_s"].as_f64().unwrap_or(0.0),
            if s["cut_short"].as_bool() == Some(true) {
                " (cut short)"
            } else {
                ""
            },
        ));
    }
    out
}

/// `1234567.8` as `1,234,568`.
fn thousands(x: f64) -> String {
    let digits = format!("{:.0}", x.max(0.0));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn now_utc() -> String {
    std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

fn git_commit() -> String {
    std::process::Command::new("git")
        .args(["describe", "--always", "--dirty"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".to_string())
}

fn to_json<T: Serialize>(v: &T) -> Result<serde_json::Value> {
    Ok(serde_json::to_value(v)?)
}

fn failover(tools: &Tools, a: &FailoverArgs, results: &mut Results) -> Result<()> {
    let cmd = |nt: u64| {
        format!(
            "slotguard-bench failover --node-timeouts {nt} --runs {}",
            a.runs
        )
    };
    for &nt in &a.node_timeouts {
        let shape = Shape {
            masters: 3,
            replicas: 1,
            node_timeout_ms: nt,
        };
        let mut runs = Vec::new();
        for r in 0..a.runs {
            for system in System::alternating(r) {
                let run = failover::run(tools, system, shape, Duration::from_millis(a.poll_ms))
                    .with_context(|| format!("failover run {r} of {}", system.name()))?;
                eprintln!("{run:?}");
                runs.push(run);
            }
        }
        type Pick = fn(&failover::FailoverRun) -> Option<f64>;
        let measures: [(&str, Pick); 4] = [
            ("first node marks FAIL", |r| r.first_fail),
            ("replica promoted", |r| r.promoted),
            ("all nodes agree on the new owner", |r| r.all_agree),
            ("first write accepted on the new owner", |r| r.first_write),
        ];
        for (measure, pick) in measures {
            let of = |s: System| -> Vec<Option<f64>> {
                runs.iter().filter(|r| r.system == s).map(pick).collect()
            };
            results.rows.push(row(
                &format!("failover, node_timeout {nt} ms, {} runs", a.runs),
                &format!("{measure}, s from the kill: median (p95)"),
                Figure::with_p95(&of(System::Redis), " s"),
                Figure::with_p95(&of(System::Slotguard), " s"),
                "≤ 0.6",
                &cmd(nt),
            ));
        }
        for run in &runs {
            results.failover.push(to_json(run)?);
        }
    }
    Ok(())
}

/// How the benchmark names a comparison's node timeouts, and the flag that gives slotguard its
/// own.
fn timeouts(redis: u64, slotguard: Option<u64>) -> (String, String) {
    match slotguard {
        Some(g) if g != redis => (
            format!("node_timeout Redis {redis} ms, slotguard {g} ms"),
            format!(" --slotguard-node-timeout {g}"),
        ),
        _ => (format!("node_timeout {redis} ms"), String::new()),
    }
}

fn detect(tools: &Tools, a: &DetectArgs, results: &mut Results) -> Result<()> {
    let (label, flag) = timeouts(a.node_timeout, a.slotguard_node_timeout);
    for &n in &a.nodes {
        let shape = Shape {
            masters: n / 2,
            replicas: 1,
            node_timeout_ms: a.node_timeout,
        };
        let mut runs = Vec::new();
        for r in 0..a.runs {
            for system in System::alternating(r) {
                let shape = match (system, a.slotguard_node_timeout) {
                    (System::Slotguard, Some(g)) => Shape {
                        node_timeout_ms: g,
                        ..shape
                    },
                    _ => shape,
                };
                let run = failover::run(tools, system, shape, Duration::from_millis(a.poll_ms))
                    .with_context(|| {
                        format!("detection run {r} of {} at {n} nodes", system.name())
                    })?;
                eprintln!("{run:?}");
                runs.push(run);
            }
        }
        let of = |s: System| -> Vec<Option<f64>> {
            runs.iter()
                .filter(|r| r.system == s)
                .map(|r| r.all_fail)
                .collect()
        };
        results.rows.push(row(
            &format!(
                "detection at scale, {} nodes, {label}, {} runs",
                shape.nodes(),
                a.runs
            ),
            "every live node marks the killed master FAIL, s: median (p95)",
            Figure::with_p95(&of(System::Redis), " s"),
            Figure::with_p95(&of(System::Slotguard), " s"),
            "flat in N, < 1",
            &format!(
                "slotguard-bench detect --nodes {} --runs {} --node-timeout {}{flag}",
                shape.nodes(),
                a.runs,
                a.node_timeout
            ),
        ));
        for run in &runs {
            results.detect.push(to_json(run)?);
        }
    }
    Ok(())
}

fn bus(tools: &Tools, a: &BusArgs, results: &mut Results) -> Result<()> {
    let length = Duration::from_secs(a.seconds);
    let window = match a.during_failover {
        true => bus::Window::Failover,
        false => bus::Window::Idle,
    };
    let (label, mut flag) = timeouts(a.node_timeout, a.slotguard_node_timeout);
    if a.during_failover {
        flag.push_str(" --during-failover");
    }
    for (k, &n) in a.nodes.iter().enumerate() {
        let mut samples = Vec::new();
        for system in System::alternating(k) {
            let node_timeout = match system {
                System::Slotguard => a.slotguard_node_timeout.unwrap_or(a.node_timeout),
                System::Redis => a.node_timeout,
            };
            let s = bus::measure(tools, system, n, node_timeout, (window, length))
                .with_context(|| format!("bus of {} at {n} nodes", system.name()))?;
            eprintln!("{s:?}");
            samples.push(s);
        }
        let pick = |s: System| samples.iter().find(|x| x.system == s);
        let (r, g) = (pick(System::Redis), pick(System::Slotguard));
        let bench = match window {
            bus::Window::Idle => format!("idle bus, {n} nodes, {label}"),
            bus::Window::Failover => format!(
                "bus during a failover (the {} s from a master's kill -9; the survivors), {n} nodes, {label}",
                a.seconds
            ),
        };
        let cpu = match window {
            bus::Window::Idle => "CPU per idle node",
            bus::Window::Failover => "CPU per node",
        };
        let cmd = format!(
            "slotguard-bench bus --nodes {n} --seconds {} --node-timeout {}{flag}",
            a.seconds, a.node_timeout
        );
        type Pick = fn(&bus::BusSample) -> f64;
        let measures: [(&str, Pick, usize, &str, &str); 4] = [
            (
                "bus payload KB/s per node",
                |s| s.bytes_per_node_s / 1e3,
                1,
                "",
                "≤ 0.1",
            ),
            (
                "packets/s per node (Redis: TCP segments, ACKs included; slotguard: datagrams)",
                |s| s.packets_per_node_s,
                0,
                "",
                "≤ 1",
            ),
            (
                "bus messages/s per node (Redis: cluster_stats_messages_sent)",
                |s| s.messages_per_node_s,
                0,
                "",
                "—",
            ),
            (cpu, |s| s.cpu_percent_per_node, 2, " %", "≤ 1"),
        ];
        for (measure, f, decimals, unit, target) in measures {
            results.rows.push(row(
                &bench,
                measure,
                Figure::new(r.map(f), decimals, unit),
                Figure::new(g.map(f), decimals, unit),
                target,
                &cmd,
            ));
        }
        if window == bus::Window::Failover {
            results
                .bus
                .extend(samples.iter().map(to_json).collect::<Result<Vec<_>>>()?);
            continue;
        }
        results.rows.push(row(
            &format!("memory, idle cluster of {n} nodes"),
            "RSS per idle node",
            Figure::new(r.map(|s| s.rss_per_node / 1e6), 1, " MB"),
            Figure::new(g.map(|s| s.rss_per_node / 1e6), 1, " MB"),
            "≤ 1.5",
            &cmd,
        ));
        for s in &samples {
            results.bus.push(to_json(s)?);
        }
    }
    Ok(())
}

fn data_plane(tools: &Tools, a: &DataPlaneArgs, results: &mut Results) -> Result<()> {
    let mut samples = Vec::new();
    for system in System::alternating(0) {
        samples.extend(
            dataplane::run(tools, system, a.requests, a.clients, &a.pipelines)
                .with_context(|| format!("redis-benchmark against {}", system.name()))?,
        );
    }
    for &p in &a.pipelines {
        for test in ["SET", "GET"] {
            let pick = |s: System| {
                samples
                    .iter()
                    .find(|x| x.system == s && x.pipeline == p && x.test == test)
            };
            let (r, g) = (pick(System::Redis), pick(System::Slotguard));
            let bench = format!(
                "data plane, redis-benchmark --cluster -t set,get -n {} -c {} -P {p}",
                a.requests, a.clients
            );
            let cmd = format!(
                "slotguard-bench data-plane --requests {} --clients {} --pipelines {p}",
                a.requests, a.clients
            );
            results.rows.push(row(
                &bench,
                &format!("{test} requests/s"),
                Figure::new(r.map(|s| s.rps), 0, ""),
                Figure::new(g.map(|s| s.rps), 0, ""),
                "≥ 0.8",
                &cmd,
            ));
            results.rows.push(row(
                &bench,
                &format!("{test} p99 latency"),
                Figure::new(r.map(|s| s.p99_ms), 3, " ms"),
                Figure::new(g.map(|s| s.p99_ms), 3, " ms"),
                "≤ 1.5",
                &cmd,
            ));
        }
    }
    for s in &samples {
        results.data_plane.push(to_json(s)?);
    }
    Ok(())
}

fn memory(tools: &Tools, a: &MemoryArgs, results: &mut Results) -> Result<()> {
    let mut samples = Vec::new();
    for system in System::alternating(0) {
        let s = memory::per_key(tools, system, a.keys)
            .with_context(|| format!("keys into {}", system.name()))?;
        eprintln!("{s:?}");
        samples.push(s);
    }
    let pick = |s: System| samples.iter().find(|x| x.system == s);
    let (r, g) = (pick(System::Redis), pick(System::Slotguard));
    let shape = r.or(g).map_or(String::new(), |s| {
        format!(", {}-byte keys, {}-byte values", s.key_bytes, s.value_bytes)
    });
    results.rows.push(row(
        &format!("memory, {} keys into one master{shape}", a.keys),
        "RSS growth per million keys",
        Figure::new(r.map(|s| s.bytes_per_million_keys / 1e6), 1, " MB"),
        Figure::new(g.map(|s| s.bytes_per_million_keys / 1e6), 1, " MB"),
        "≤ 1.5",
        &format!("slotguard-bench memory --keys {}", a.keys),
    ));
    for s in &samples {
        results.memory.push(to_json(s)?);
    }
    Ok(())
}

fn checker(tools: &Tools, a: &CheckerArgs, results: &mut Results) -> Result<()> {
    for case in checker::cases(a.random_seconds, a.smoke) {
        for &t in &a.threads {
            let s = checker::run(&tools.slotguard, &case, t)
                .with_context(|| format!("slotguard check {}", case.label))?;
            eprintln!("{s:?}");
            results.checker.push(to_json(&s)?);
        }
    }
    Ok(())
}

fn simulate(a: &SimArgs, results: &mut Results) -> Result<()> {
    for &n in &a.nodes {
        let r = sim::run(
            (n / 2).max(1),
            a.node_timeout,
            Duration::from_micros(a.latency_us),
            Duration::from_secs(a.idle_seconds),
            Duration::from_secs(a.wall_budget),
        )
        .with_context(|| format!("simulating {n} nodes"))?;
        eprintln!("{r:?}");
        results.sim.push(to_json(&r)?);
    }
    Ok(())
}

/// slotguard's node_timeout, ms, at which it detects a dead master when Redis does at a
/// node_timeout of 1000 ms.
const EQUAL_DETECTION_NODE_TIMEOUT: u64 = 1500;

fn all(tools: &Tools, a: &AllArgs, results: &mut Results) -> Result<()> {
    let smoke = a.smoke;
    failover(
        tools,
        &FailoverArgs {
            node_timeouts: if smoke { vec![1000] } else { vec![1000, 5000] },
            runs: if smoke { 1 } else { a.runs },
            poll_ms: 10,
        },
        results,
    )?;
    bus(
        tools,
        &BusArgs {
            nodes: if smoke { vec![6] } else { a.nodes.clone() },
            seconds: if smoke { 2 } else { 10 },
            node_timeout: 1000,
            slotguard_node_timeout: None,
            during_failover: false,
        },
        results,
    )?;
    // At equal detection time: slotguard detects a dead master at about 1.05 × its
    // node_timeout, Redis at about 1.6 × (specs/performance.md §2).
    let equal_detection = Some(EQUAL_DETECTION_NODE_TIMEOUT);
    for slotguard_node_timeout in [None, equal_detection] {
        detect(
            tools,
            &DetectArgs {
                nodes: if smoke { vec![6] } else { a.nodes.clone() },
                runs: if smoke { 1 } else { 3 },
                node_timeout: 1000,
                slotguard_node_timeout,
                poll_ms: 20,
            },
            results,
        )?;
        if smoke {
            break;
        }
    }
    if !smoke {
        bus(
            tools,
            &BusArgs {
                nodes: a.nodes.clone(),
                seconds: 10,
                node_timeout: 1000,
                slotguard_node_timeout: equal_detection,
                during_failover: false,
            },
            results,
        )?;
    }
    // During a failover, at equal detection time; the window holds Redis's failover
    // (about 2.5 s at node_timeout 1000 ms) with room to spare.
    bus(
        tools,
        &BusArgs {
            nodes: if smoke { vec![6] } else { a.nodes.clone() },
            seconds: 5,
            node_timeout: 1000,
            slotguard_node_timeout: equal_detection,
            during_failover: true,
        },
        results,
    )?;
    data_plane(
        tools,
        &DataPlaneArgs {
            requests: if smoke { 10_000 } else { 1_000_000 },
            clients: 50,
            pipelines: vec![1, 16],
        },
        results,
    )?;
    memory(
        tools,
        &MemoryArgs {
            keys: if smoke { 20_000 } else { 1_000_000 },
        },
        results,
    )?;
    simulate(
        &SimArgs {
            nodes: if smoke { vec![6] } else { vec![20, 100, 200] },
            node_timeout: 1000,
            latency_us: 100,
            idle_seconds: if smoke { 1 } else { 2 },
            wall_budget: if smoke { 60 } else { 300 },
        },
        results,
    )?;
    if !a.no_checker {
        checker(
            tools,
            &CheckerArgs {
                random_seconds: if smoke { 3 } else { 60 },
                threads: if smoke { vec![1] } else { vec![1, 2] },
                smoke,
                write_specs: false,
            },
            results,
        )?;
    }
    Ok(())
}
