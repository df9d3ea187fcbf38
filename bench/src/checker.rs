//! The checker's figures: `slotguard check` on the configurations, with 1 and 2
//! threads: unique states, states per second, time and peak memory.
//!
//! Peak memory is the process's high-water mark (VmHWM), read every 50 ms while it runs: the
//! last reading before it exits, so a rise within its last 50 ms is missed.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{anyhow, Context, Result};
use serde::Serialize;

use crate::host;

/// One configuration to check.
#[derive(Clone, Debug)]
pub(crate) struct Case {
    /// How the table names it (`standard --symmetry`).
    pub(crate) label: String,
    /// Arguments after `slotguard check`.
    pub(crate) args: Vec<String>,
}

/// One run of `slotguard check`.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct CheckerSample {
    /// The configuration and flags.
    pub(crate) label: String,
    /// The command run.
    pub(crate) command: String,
    /// Threads.
    pub(crate) threads: usize,
    /// Whole state space explored.
    pub(crate) complete: bool,
    /// PASS.
    pub(crate) passed: bool,
    /// Unique states (random walks: distinct states visited).
    pub(crate) unique_states: u64,
    /// States generated.
    pub(crate) states: u64,
    /// Seconds of search (as the report says).
    pub(crate) seconds: f64,
    /// Unique states per second.
    pub(crate) unique_per_second: f64,
    /// Unique states per minute.
    pub(crate) unique_per_minute: f64,
    /// Peak resident memory, bytes.
    pub(crate) peak_rss: u64,
}

/// The configurations; `random_seconds` bounds the random walks of `large`.
pub(crate) fn cases(random_seconds: u64, smoke: bool) -> Vec<Case> {
    let case = |label: &str, args: &[&str]| Case {
        label: label.to_string(),
        args: args.iter().map(|a| a.to_string()).collect(),
    };
    let timeout = random_seconds.to_string();
    if smoke {
        return vec![
            case("tiny", &["tiny"]),
            case(
                "large --strategy random",
                &["large", "--strategy", "random", "--timeout", &timeout],
            ),
        ];
    }
    vec![
        case("tiny", &["tiny"]),
        case("standard --symmetry", &["standard", "--symmetry"]),
        case("compete --symmetry", &["compete", "--symmetry"]),
        case(
            "large --strategy random",
            &["large", "--strategy", "random", "--timeout", &timeout],
        ),
    ]
}

/// Runs one case with `threads` threads.
pub(crate) fn run(slotguard: &Path, case: &Case, threads: usize) -> Result<CheckerSample> {
    let mut args = vec!["check".to_string()];
    args.extend(case.args.iter().cloned());
    args.extend([
        "--threads".to_string(),
        threads.to_string(),
        "--json".to_string(),
    ]);
    let mut child = Command::new(slotguard)
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("cannot run slotguard check")?;
    let pid = child.id();
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| anyhow!("no stdout from slotguard check"))?;
    let reader = std::thread::spawn(move || std::io::read_to_string(stdout));
    let mut peak = 0;
    while child.try_wait()?.is_none() {
        if let Ok(hwm) = host::peak_rss_bytes(pid) {
            peak = peak.max(hwm);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let text = reader
        .join()
        .map_err(|_| anyhow!("the reader of slotguard check's output panicked"))??;
    let json: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("slotguard {} printed no JSON report", args.join(" ")))?;
    let num = |k: &str| {
        json[k]
            .as_f64()
            .ok_or_else(|| anyhow!("no {k} in the JSON report"))
    };
    let seconds = num("seconds")?;
    let unique = num("unique_states")?;
    Ok(CheckerSample {
        label: case.label.clone(),
        command: format!("slotguard {}", args[..args.len() - 1].join(" ")),
        threads,
        complete: json["complete"].as_bool().unwrap_or(false),
        passed: json["passed"].as_bool().unwrap_or(false),
        unique_states: unique as u64,
        states: num("states")? as u64,
        seconds,
        unique_per_second: unique / seconds.max(1e-9),
        unique_per_minute: unique / seconds.max(1e-9) * 60.0,
        peak_rss: peak,
    })
}
