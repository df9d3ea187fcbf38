//! `slotguard check`: run the model checker on a configuration and report honestly
//! (specs/properties.md; the verdict rules are in `slotguard_check::run`).
//!
//! Exit status: 0 only if the run was complete, every always-property holds and every
//! sometimes-property was found; 1 if a property failed; 3 if the run was cut short by a limit
//! (INCOMPLETE); 2 for a bad configuration or usage.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use serde::Serialize;
use slotguard_check::config::{CheckConfig, NetworkKind, Replicas, EMBEDDED};
use slotguard_check::properties::Witness;
use slotguard_check::run::{self, AuditOutcome, Kind, RunOptions, RunReport, Status, Strategy};
use slotguard_check::{ClusterModel, Reductions};
use slotguard_protocol::layout::InitialEpochs;
use slotguard_protocol::FailoverMode;

/// Which configuration to check or explore, with overrides (shared by `check` and `explore`).
#[derive(Args, Debug, Clone)]
pub(crate) struct ConfigArgs {
    /// A configuration: an embedded name (tiny, standard, large, compete, failback, and the
    /// random-walk budgets tiny-deep, standard-deep, large-deep, compete-deep) or a TOML file
    /// (see specs/configs/). Default: tiny.
    config: Option<String>,
    /// Override: number of masters.
    #[arg(long)]
    masters: Option<usize>,
    /// Override: replicas per master, one number for all or one per master (`0,0,1`).
    #[arg(long)]
    replicas: Option<String>,
    /// Override: number of hash slots.
    #[arg(long)]
    slots: Option<usize>,
    /// Override: crashes a behaviour may contain (each may be followed by a restart).
    #[arg(long)]
    crashes: Option<u8>,
    /// Override: PFAIL events (peer timeouts firing) a behaviour may contain.
    #[arg(long)]
    suspicions: Option<u8>,
    /// Override: elections a behaviour may contain (epoch bound).
    #[arg(long)]
    elections: Option<u64>,
    /// Override: only timeouts about these nodes may fire (`2`, `0,1,2`), a bound for
    /// targeted checks (specs/protocol.md §8.1); `any` lifts it.
    #[arg(long)]
    suspects: Option<String>,
    /// Override: sometimes-properties past one failover that the run must reach
    /// (`failback,second-failover,retry-election-won,two-writers`); `none` clears them.
    #[arg(long)]
    witnesses: Option<String>,
    /// Override: network semantics.
    #[arg(long, value_enum)]
    network: Option<NetworkArg>,
    /// Override: manual failovers (`CLUSTER FAILOVER`) an operator may ask of any replica in
    /// a behaviour (specs/protocol.md §6.1).
    #[arg(long)]
    manual_failovers: Option<u8>,
    /// Override: the modes they may use, from `default,force,takeover` (default: `default,force`;
    /// `takeover` breaks a property: specs/properties.md). Implies one manual failover if
    /// `--manual-failovers` is not given.
    #[arg(long)]
    failover_modes: Option<String>,
    /// Override: abstract writes clients may issue in a behaviour, with replicas' copies of
    /// them (specs/protocol.md §13); adds the property `acknowledged-writes-kept`.
    #[arg(long)]
    writes: Option<u8>,
    /// Override: when masters acknowledge writes (`async`: Redis's semantics; `sync`: once
    /// every other node of the shard has the write). Implies one write if `--writes` is not
    /// given.
    #[arg(long, value_enum)]
    durability: Option<DurabilityArg>,
    /// Keep every message in flight exactly as sent: no canonical forms, no dropping of
    /// messages that can no longer change their receiver (specs/protocol.md §8.4). Same
    /// verdicts, more states; for cross-checking that reduction.
    #[arg(long)]
    exact_network: bool,
    /// Explore without any of the exact reductions of specs/protocol.md §8.4 and §8.6-8.10:
    /// every message kept as sent, FAIL-undo fired at any later moment, every vote grant
    /// remembered, crashed nodes restarted by a separate step, every crash twin explored, every
    /// PING offered (the memo of no-op deliveries, a cache, stays on). Same verdicts, more
    /// states; for cross-checking the reductions.
    #[arg(long)]
    exact: bool,
}

impl ConfigArgs {
    /// The same selection as command-line arguments (to print a command that reopens it).
    pub(crate) fn to_args(&self) -> Vec<String> {
        let mut v = Vec::new();
        if let Some(c) = &self.config {
            v.push(c.clone());
        }
        let mut flag = |name: &str, value: Option<String>| {
            if let Some(value) = value {
                v.push(format!("--{name}"));
                v.push(value);
            }
        };
        flag("masters", self.masters.map(|x| x.to_string()));
        flag("replicas", self.replicas.clone());
        flag("slots", self.slots.map(|x| x.to_string()));
        flag("crashes", self.crashes.map(|x| x.to_string()));
        flag("suspicions", self.suspicions.map(|x| x.to_string()));
        flag("elections", self.elections.map(|x| x.to_string()));
        flag("suspects", self.suspects.clone());
        flag("witnesses", self.witnesses.clone());
        flag(
            "manual-failovers",
            self.manual_failovers.map(|x| x.to_string()),
        );
        flag("failover-modes", self.failover_modes.clone());
        flag("writes", self.writes.map(|x| x.to_string()));
        flag(
            "durability",
            self.durability.map(|d| d.value().name().to_string()),
        );
        flag(
            "network",
            self.network.map(|n| match n {
                NetworkArg::Duplicating => "duplicating".to_string(),
                NetworkArg::LossyDuplicating => "lossy-duplicating".to_string(),
            }),
        );
        if self.exact_network {
            v.push("--exact-network".to_string());
        }
        if self.exact {
            v.push("--exact".to_string());
        }
        v
    }

    /// The model of the loaded configuration, with this selection's checking options.
    pub(crate) fn model(&self, config: &CheckConfig) -> Result<ClusterModel> {
        let mut model = config.model().context("invalid cluster")?;
        model.reductions = match (self.exact, self.exact_network) {
            (true, _) => Reductions::exact(),
            (false, true) => Reductions::exact_network(),
            (false, false) => Reductions::all(),
        };
        Ok(model)
    }
}

/// Arguments of `slotguard check`.
#[derive(Args, Debug)]
pub(crate) struct CheckArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// Search order. BFS holds whole states in memory; use it for small models only. `random`:
    /// seeded random walks, every property checked at every state, for configurations no
    /// search exhausts (`large`); never complete (60 s unless --timeout or --max-states).
    #[arg(long, value_enum, default_value_t = StrategyArg::Dfs)]
    strategy: StrategyArg,
    /// Random walks: seed of the first thread's generator (thread t uses seed + t).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Random walks: the longest walk, in steps.
    #[arg(long, default_value_t = slotguard_check::walks::DEFAULT_WALK_STEPS)]
    walk_steps: usize,
    /// Worker threads (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Stop after about this many generated states (random walks: states visited; the run is
    /// then INCOMPLETE).
    #[arg(long)]
    max_states: Option<usize>,
    /// Stop after this many seconds (the run is then INCOMPLETE).
    #[arg(long)]
    timeout: Option<u64>,
    /// Stop once the checker's resident memory exceeds this many MiB (the run is then
    /// INCOMPLETE); default: half of the machine's memory. 0: no limit.
    #[arg(long)]
    max_memory_mb: Option<u64>,
    /// Print the report as one JSON object on stdout.
    #[arg(long)]
    json: bool,
    /// Also print the example path of each sometimes-property (and, with --html, draw it).
    #[arg(long)]
    examples: bool,
    /// Also write the report as one self-contained HTML page to this file: every
    /// counterexample (and, with --examples, example) step by step, with the cluster drawn as
    /// node cards and a sequence diagram, to attach to a bug.
    #[arg(long, value_name = "FILE")]
    html: Option<PathBuf>,
    /// No progress lines on stderr.
    #[arg(long, short)]
    quiet: bool,
    /// Symmetry reduction over interchangeable shards (master, replicas, slots and creation
    /// epoch) and over the replicas of each master (DFS only; specs/protocol.md §8.5). Adds the
    /// self-check property `symmetry-sound`.
    #[arg(long)]
    symmetry: bool,
}

/// `--durability`.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub(crate) enum DurabilityArg {
    /// Acknowledged once applied on the master (Redis's semantics).
    Async,
    /// Acknowledged once every other node of the shard has it.
    Sync,
}

impl DurabilityArg {
    fn value(self) -> slotguard_protocol::Durability {
        match self {
            DurabilityArg::Async => slotguard_protocol::Durability::Async,
            DurabilityArg::Sync => slotguard_protocol::Durability::Sync,
        }
    }
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub(crate) enum NetworkArg {
    /// Unordered, duplicating (no explicit loss; see specs/protocol.md §8.2).
    Duplicating,
    /// Unordered, duplicating and lossy.
    LossyDuplicating,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum StrategyArg {
    Dfs,
    Bfs,
    Random,
}

/// Loads the named or given configuration and applies the overrides.
pub(crate) fn load(args: &ConfigArgs) -> Result<CheckConfig> {
    let name = args.config.as_deref().unwrap_or("tiny");
    let mut config = match CheckConfig::embedded(name) {
        Some(c) => c,
        None => {
            let path = PathBuf::from(name);
            let text = std::fs::read_to_string(&path).with_context(|| {
                let names: Vec<&str> = EMBEDDED.iter().map(|(n, _)| *n).collect();
                format!(
                    "{name} is neither an embedded configuration ({}) nor a readable file",
                    names.join(", ")
                )
            })?;
            CheckConfig::from_toml(&text).with_context(|| format!("in {}", path.display()))?
        }
    };
    if let Some(m) = args.masters {
        config.masters = m;
    }
    if let Some(r) = &args.replicas {
        let counts: Vec<usize> = comma_list(r)
            .with_context(|| format!("--replicas {r}: expected a number or a list like 0,0,1"))?;
        config.replicas = match counts.as_slice() {
            [n] => Replicas::Each(*n),
            _ => Replicas::PerMaster(counts),
        };
    }
    if let Some(s) = args.slots {
        config.slots = s;
    }
    if let Some(c) = args.crashes {
        config.crashes = c;
    }
    if let Some(s) = args.suspicions {
        config.suspicions = s;
    }
    if let Some(e) = args.elections {
        config.elections = e;
    }
    if let Some(list) = &args.suspects {
        config.suspects = if list.trim() == "any" {
            None
        } else {
            Some(comma_list(list).with_context(|| {
                format!("--suspects {list}: expected node ids like 0,1,2, or `any`")
            })?)
        };
    }
    if let Some(list) = &args.witnesses {
        config.witnesses = witnesses(list)?;
    }
    if let Some(list) = &args.failover_modes {
        config.failover_modes = failover_modes(list)?;
        config.manual_failovers = config.manual_failovers.max(1);
    }
    if let Some(n) = args.manual_failovers {
        config.manual_failovers = n;
    }
    if let Some(d) = args.durability {
        config.durability = d.value();
        config.writes = config.writes.max(1);
    }
    if let Some(n) = args.writes {
        config.writes = n;
    }
    if let Some(n) = args.network {
        config.network = match n {
            NetworkArg::Duplicating => NetworkKind::Duplicating,
            NetworkArg::LossyDuplicating => NetworkKind::LossyDuplicating,
        };
    }
    config.validate()?;
    Ok(config)
}

/// The witnesses named by a comma-separated list, or none for `none`.
fn witnesses(list: &str) -> Result<Vec<Witness>> {
    if list.trim() == "none" {
        return Ok(Vec::new());
    }
    list.split(',')
        .map(|name| {
            Witness::from_name(name.trim()).with_context(|| {
                let known: Vec<&str> = Witness::ALL.iter().map(|w| w.name()).collect();
                format!(
                    "--witnesses: no witness {name:?} (known: {}, or none)",
                    known.join(", ")
                )
            })
        })
        .collect()
}

/// The manual failover modes named by a comma-separated list.
fn failover_modes(list: &str) -> Result<Vec<FailoverMode>> {
    list.split(',')
        .map(|name| {
            let name = name.trim();
            FailoverMode::ALL
                .into_iter()
                .find(|m| m.name() == name)
                .with_context(|| {
                    format!("--failover-modes: no mode {name:?} (known: default, force, takeover)")
                })
        })
        .collect()
}

/// A comma-separated list of numbers (`0,0,1`; one number is a list of one).
fn comma_list<T: std::str::FromStr>(text: &str) -> Result<Vec<T>, T::Err> {
    text.split(',').map(|x| x.trim().parse()).collect()
}

pub(crate) fn describe(config: &CheckConfig) -> String {
    let mut text = format!(
        "{}: {} masters, replicas {:?}, {} slots, crashes {}, suspicions {}, elections {}, network {:?}",
        config.name,
        config.masters,
        config.replicas.counts(config.masters),
        config.slots,
        config.crashes,
        config.suspicions,
        config.elections,
        config.network
    );
    if config.epochs == InitialEpochs::Zero {
        text.push_str(", configEpochs all 0 at creation");
    }
    if !config.witnesses.is_empty() {
        let names: Vec<&str> = config.witnesses.iter().map(|w| w.name()).collect();
        text.push_str(&format!(", witnesses {}", names.join(", ")));
    }
    if config.manual_failovers > 0 {
        let modes: Vec<&str> = config.failover_modes.iter().map(|m| m.name()).collect();
        text.push_str(&format!(
            ", manual failovers {} ({})",
            config.manual_failovers,
            modes.join(", ")
        ));
    }
    if config.writes > 0 {
        text.push_str(&format!(
            ", writes {} ({})",
            config.writes,
            config.durability.name()
        ));
    }
    // A targeted bound is part of the result like the others (specs/protocol.md §8.1).
    if let Some(suspects) = &config.suspects {
        text.push_str(&format!(
            ", only timeouts about nodes {suspects:?} (suspects)"
        ));
    }
    text
}

#[derive(Serialize)]
struct JsonReport<'a> {
    config: &'a CheckConfig,
    passed: bool,
    #[serde(flatten)]
    run: &'a RunReport,
}

/// Runs `slotguard check`.
pub(crate) fn run(args: CheckArgs) -> Result<ExitCode> {
    let config = load(&args.config)?;
    if args.threads == Some(0) {
        bail!("--threads must be at least 1");
    }
    let mut model = args.config.model(&config)?;
    if args.symmetry {
        match args.strategy {
            StrategyArg::Bfs => {
                bail!("--symmetry needs --strategy dfs: stateright's BFS ignores symmetry")
            }
            StrategyArg::Random => {
                bail!("--symmetry needs --strategy dfs: random walks have no visited set to reduce")
            }
            StrategyArg::Dfs => {}
        }
        let classes = model.symmetry_classes();
        if classes.is_trivial() {
            eprintln!(
                "note: --symmetry has nothing to permute here (shards differ in shape, and no master has two interchangeable replicas)"
            );
        } else {
            model.symmetry = Some(std::sync::Arc::new(classes));
        }
    }
    let mut options = RunOptions {
        strategy: match args.strategy {
            StrategyArg::Dfs => Strategy::Dfs,
            StrategyArg::Bfs => Strategy::Bfs,
            StrategyArg::Random => Strategy::Random,
        },
        seed: args.seed,
        walk_steps: args.walk_steps,
        max_states: args.max_states,
        timeout: args.timeout.map(Duration::from_secs),
        max_memory: match args.max_memory_mb {
            Some(0) => None,
            Some(mib) => Some(mib << 20),
            None => slotguard_check::run::half_of_memory(),
        },
        ..RunOptions::default()
    };
    if let Some(t) = args.threads {
        options.threads = t;
    }
    if !args.quiet {
        eprintln!("checking {}", describe(&config));
        eprintln!(
            "strategy {:?}, {} thread(s)",
            options.strategy, options.threads
        );
        if options.strategy == Strategy::Random {
            eprintln!(
                "random walks of at most {} steps, seed {}{}",
                options.walk_steps,
                options.seed,
                if options.timeout.is_none() && options.max_states.is_none() {
                    format!(
                        "; no limit given: they stop after {:?}",
                        run::DEFAULT_WALK_TIME
                    )
                } else {
                    String::new()
                }
            );
        }
    }
    let quiet = args.quiet;
    // The paths of the report are followed again, for its pictures, through a model that
    // offers the same actions (a clone with empty memos; the run stops only its own).
    let replay_model = args.html.as_ref().map(|_| model.clone());
    let report = run::run(model, &options, |p| {
        if !quiet {
            let secs = p.elapsed.as_secs_f64();
            eprintln!(
                "  [{secs:6.0}s] states {:>12}  unique {:>11}  depth {:>4}  ({:.0} unique/s)",
                p.states,
                p.unique,
                p.depth,
                p.unique as f64 / secs.max(0.001)
            );
        }
    });
    let passed = report.passed();
    if args.json {
        let json = JsonReport {
            config: &config,
            passed,
            run: &report,
        };
        println!("{}", serde_json::to_string_pretty(&json)?);
    } else {
        print_human(&config, &args.config, &report, args.examples)?;
    }
    // After the text or JSON report, which a failure to write the page does not hold back.
    if let (Some(file), Some(model)) = (&args.html, &replay_model) {
        write_html(file, model, &config, &args.config, &report, args.examples)?;
        if !quiet {
            eprintln!("report written to {}", file.display());
        }
    }
    Ok(if passed {
        ExitCode::SUCCESS
    } else if !report.complete
        && !report.audit_failed()
        && report
            .properties
            .iter()
            .all(|p| p.status != Status::Violated && p.replay_error.is_none())
    {
        ExitCode::from(3)
    } else {
        ExitCode::from(1)
    })
}

fn status_text(s: Status) -> &'static str {
    match s {
        Status::Holds => "holds",
        Status::NotViolatedSoFar => "not violated so far",
        Status::Violated => "VIOLATED",
        Status::Found => "found",
        Status::NotFound => "NOT FOUND",
    }
}

/// The command that opens `path` in the explorer, with the same configuration.
fn reopen_command(selection: &ConfigArgs, path: &str) -> String {
    let mut reopen = vec!["slotguard".to_string(), "explore".to_string()];
    reopen.extend(selection.to_args());
    reopen.push("--path".to_string());
    reopen.push(path.to_string());
    reopen.join(" ")
}

/// `PASS`, `FAIL` or `INCOMPLETE`, as the last line of the text report.
fn result_word(report: &RunReport) -> &'static str {
    if report.passed() {
        "PASS"
    } else if report.complete {
        "FAIL"
    } else {
        "INCOMPLETE"
    }
}

/// Writes the report as one self-contained page (node/src/page.rs): the verdicts, and each
/// path the text report prints, with the cluster after every step.
fn write_html(
    file: &std::path::Path,
    model: &ClusterModel,
    config: &CheckConfig,
    selection: &ConfigArgs,
    report: &RunReport,
    examples: bool,
) -> Result<()> {
    use slotguard_check::picture::{self, ReportView, VerdictRow};
    let mut verdicts = Vec::new();
    let mut traces = Vec::new();
    for p in &report.properties {
        let mut result = status_text(p.status).to_string();
        if let Some(t) = &p.trace {
            result.push_str(&format!(" ({} steps)", t.steps.len()));
        }
        if let Some(e) = &p.replay_error {
            result.push_str(&format!("; the discovery did not replay: {e}"));
        }
        verdicts.push(VerdictRow {
            name: p.name.to_string(),
            kind: match p.kind {
                Kind::Always => "always",
                Kind::Sometimes => "sometimes",
            }
            .to_string(),
            result,
            failed: matches!(p.status, Status::Violated | Status::NotFound)
                || p.replay_error.is_some(),
        });
        let Some(trace) = &p.trace else { continue };
        let what = match p.kind {
            Kind::Always => "counterexample",
            Kind::Sometimes if examples => "example",
            Kind::Sometimes => continue,
        };
        let view = picture::trace_view(
            model,
            p.name,
            what,
            &trace.explorer_path,
            trace.why.clone(),
            reopen_command(selection, &trace.explorer_path),
        )
        .with_context(|| format!("drawing the path of {}", p.name))?;
        traces.push(view);
    }
    let mut summary = vec![format!(
        "states {}  unique {}  max depth {}  time {:.1}s  ({:?}, {} threads)",
        report.states,
        report.unique_states,
        report.max_depth,
        report.seconds,
        report.strategy,
        report.threads
    )];
    summary.push(match &report.incomplete_reason {
        None => "complete: every reachable state was explored".to_string(),
        Some(why) => format!("INCOMPLETE: {why}; results are for the explored part only"),
    });
    summary.push(
        "paths are replayed and re-checked, not necessarily the shortest; messages in flight are shown in their canonical form for their receiver (specs/protocol.md §8.4)"
            .to_string(),
    );
    let view = ReportView {
        configuration: describe(config),
        result: result_word(report).to_string(),
        summary,
        verdicts,
        traces,
    };
    let title = format!("slotguard check {}: {}", config.name, view.result);
    let html = crate::page::page(
        &title,
        &serde_json::json!({"mode": "report", "title": title, "report": view}),
    )?;
    std::fs::write(file, html).with_context(|| format!("cannot write {}", file.display()))?;
    Ok(())
}

fn print_human(
    config: &CheckConfig,
    selection: &ConfigArgs,
    report: &RunReport,
    examples: bool,
) -> Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "configuration {}", describe(config))?;
    writeln!(out)?;
    writeln!(out, "{:<36} {:<10} {:<20}", "property", "kind", "result")?;
    writeln!(out, "{}", "-".repeat(68))?;
    for p in &report.properties {
        let kind = match p.kind {
            Kind::Always => "always",
            Kind::Sometimes => "sometimes",
        };
        let mut result = status_text(p.status).to_string();
        if let Some(t) = &p.trace {
            result.push_str(&format!(" ({} steps)", t.steps.len()));
        }
        writeln!(out, "{:<36} {:<10} {}", p.name, kind, result)?;
    }
    writeln!(out, "{}", "-".repeat(68))?;
    writeln!(
        out,
        "states {}  unique {}  max depth {}  time {:.1}s  ({:.0} unique states/s, {:?}, {} threads)",
        report.states,
        report.unique_states,
        report.max_depth,
        report.seconds,
        report.states_per_second,
        report.strategy,
        report.threads
    )?;
    writeln!(
        out,
        "exact reductions: {} (specs/protocol.md §8.4-8.10; --exact turns them off)",
        if report.reductions.is_empty() {
            "none".to_string()
        } else {
            report.reductions.join(", ")
        }
    )?;
    if report.crash_twins_refused + report.crash_twins_not_expanded > 0 {
        writeln!(
            out,
            "crash twins: {} generated states not explored and {} unique states not expanded, each equal but for the count of crashes to an explored state with fewer crashes spent",
            report.crash_twins_refused, report.crash_twins_not_expanded
        )?;
    }
    if report.repeats > 0 {
        writeln!(
            out,
            "repeats: {} of the generated states were exact repeats of a recent one, refused before the look-up ({} of them before the state was built; check/repeats.rs)",
            report.repeats, report.repeats_before_built
        )?;
    }
    if let Some(w) = &report.walks {
        writeln!(
            out,
            "random walks: {} walks of at most {} steps (seed {}); unique counts the distinct states they visited",
            w.walks, w.max_steps, w.seed
        )?;
    }
    match &report.audit {
        Some(AuditOutcome::Ran { report: a, seconds }) if a.sound() => writeln!(
            out,
            "canonical-network audit: sound along {} walks without it ({} messages judged, {} re-deliveries agreed, {seconds:.1}s; check/audit.rs)",
            a.walks, a.judged, a.rechecks
        )?,
        Some(AuditOutcome::Ran { report: a, .. }) => writeln!(
            out,
            "CANONICAL-NETWORK AUDIT FAILED: the reduction's reading of the handlers no longer holds, so this search may have missed behaviours (check with --exact-network):\n{}",
            a.failure.as_deref().unwrap_or_default()
        )?,
        Some(AuditOutcome::Skipped) => writeln!(
            out,
            "canonical-network audit: skipped, so the run cannot pass"
        )?,
        None if report.walks.is_some() => writeln!(
            out,
            "canonical-network audit: not run (random walks never pass)"
        )?,
        None => {}
    }
    if report.symmetry {
        writeln!(
            out,
            "symmetry reduction: unique states are counted up to renaming interchangeable shards and replicas"
        )?;
    }
    match &report.incomplete_reason {
        None => writeln!(out, "complete: every reachable state was explored")?,
        Some(why) => writeln!(
            out,
            "INCOMPLETE: {why}; results are for the explored part only"
        )?,
    }
    for p in &report.properties {
        if let Some(e) = &p.replay_error {
            writeln!(
                out,
                "\n{}: the checker's discovery did not replay: {e}",
                p.name
            )?;
        }
        let Some(trace) = &p.trace else { continue };
        let show = match p.kind {
            Kind::Always => true,
            Kind::Sometimes => examples,
        };
        if !show {
            continue;
        }
        let what = match p.kind {
            Kind::Always => "counterexample",
            Kind::Sometimes => "example",
        };
        writeln!(
            out,
            "\n{what} for {} ({} steps, replayed and re-checked; not necessarily the shortest):",
            p.name,
            trace.steps.len()
        )?;
        for step in &trace.steps {
            writeln!(out, "  {:>3}. {}", step.index, step.action)?;
            for c in &step.changes {
                writeln!(out, "         ~ {c}")?;
            }
            for s in &step.sent {
                writeln!(out, "         > {s}")?;
            }
        }
        writeln!(out, "  final state:")?;
        for line in &trace.final_state {
            writeln!(out, "    {line}")?;
        }
        if let Some(why) = &trace.why {
            writeln!(out, "  why: {why}")?;
        }
        writeln!(out, "  explorer path: {}", trace.explorer_path)?;
        writeln!(
            out,
            "  open it in the explorer: {}",
            reopen_command(selection, &trace.explorer_path)
        )?;
    }
    writeln!(out, "\nRESULT: {}", result_word(report))?;
    Ok(())
}
