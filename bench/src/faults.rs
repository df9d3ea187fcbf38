//! `slotguard-bench faults`: issue 27's lost-write measurement (every system of the harness
//! through a partition, a kill -9 and a pause of a master) and issue 24's fault matrix on
//! slotguard, on real processes in network namespaces.
//!
//! The harness is the end-to-end tests' own (tests/faults/, included here as a module), so
//! that the benchmark and the CI short form measure with the same client, the same faults
//! and the same checks; this file only chooses the sizes and renders the tables.
//!
//! It needs root (namespaces, iptables, tc); without, it says so and stops.

use std::path::Path;

use anyhow::{bail, Result};
use serde_json::{json, Value};

#[path = "../../tests/faults/mod.rs"]
mod harness;

use harness::cluster::{ClusterError, SYSTEMS};
use harness::matrix::{self, Fault};
use harness::scenario::{self, Plan, Scenario};

/// What to run.
#[derive(Clone, Debug)]
pub(crate) struct Options {
    /// Systems by name (all when empty).
    pub(crate) systems: Vec<String>,
    /// kill -9 restarts in the matrix.
    pub(crate) restarts: usize,
    /// Leave out the matrix.
    pub(crate) no_matrix: bool,
    /// Leave out the lost-write measurement.
    pub(crate) no_lost_writes: bool,
    /// The short form: one scenario, a short plan, a small matrix.
    pub(crate) smoke: bool,
    /// Seed of the matrix's random moments.
    pub(crate) seed: u64,
}

/// Runs what `o` asks; returns the lost-write rows and the matrix rows as JSON.
pub(crate) fn run(slotguard: &Path, o: &Options) -> Result<(Vec<Value>, Vec<Value>)> {
    if let Err(e) = harness::net::available() {
        bail!("{e}: the fault benchmark needs root, ip, iptables and tc");
    }
    let mut lost = Vec::new();
    if !o.no_lost_writes {
        let (scenarios, plan): (&[Scenario], Plan) = if o.smoke {
            (&[Scenario::Kill], Plan::short())
        } else {
            (&Scenario::ALL, Plan::standard())
        };
        for &sc in scenarios {
            for sys in SYSTEMS
                .iter()
                .filter(|s| o.systems.is_empty() || o.systems.iter().any(|n| n == s.name))
            {
                eprintln!("faults: {} under {} ...", sys.name, sc.name());
                let row = match scenario::run(*sys, sc, slotguard, plan) {
                    Ok(r) => {
                        let s = &r.summary;
                        json!({
                            "scenario": sc.name(), "system": sys.name, "status": "measured",
                            "acknowledged": s.acknowledged, "lost": s.lost,
                            "lost_affected": s.lost_affected, "refused": s.refused,
                            "unknown": s.unknown, "unknown_applied": s.unknown_applied,
                            "reads": s.reads, "unread": s.unread,
                            "unavailable_s": s.unavailable_us as f64 / 1e6,
                            "acknowledged_after_fault": s.acknowledged_after_fault,
                            "keys": s.keys, "non_linearizable": s.non_linearizable,
                            "shortest_anomaly": s.shortest_anomaly,
                            "traces_valid": r.traces_valid,
                            "validate_report": r.validate_report,
                            "reasons": r.reasons,
                            "plan": {"node_timeout_ms": plan.node_timeout_ms,
                                     "before_s": plan.before.as_secs_f64(),
                                     "after_s": plan.after.as_secs_f64(),
                                     "workers": plan.workers, "rate": plan.rate},
                        })
                    }
                    Err(ClusterError::Unsupported { why, .. }) => json!({
                        "scenario": sc.name(), "system": sys.name, "status": "unsupported",
                        "why": why,
                    }),
                    Err(e) => json!({
                        "scenario": sc.name(), "system": sys.name, "status": "error",
                        "why": e.to_string(),
                    }),
                };
                eprintln!("{row}");
                lost.push(row);
            }
        }
    }
    let mut faults = Vec::new();
    if !o.no_matrix {
        let list: Vec<Fault> = if o.smoke {
            vec![Fault::Pause, Fault::Restarts(2)]
        } else {
            Fault::all(o.restarts).to_vec()
        };
        for f in list {
            eprintln!("faults: matrix, {} ...", f.name());
            let row = match matrix::run(f, slotguard, 1000, o.seed) {
                Ok(r) => json!({
                    "fault": f.name(), "status": if r.passed() { "pass" } else { "FAIL" },
                    "samples": r.samples, "conflicts": r.conflicts,
                    "agreed": r.agreed.as_ref().err(),
                    "traces_valid": r.traces.is_ok(),
                    "validator_gap": r.validator_gap,
                    "validate_report": r.traces.as_ref().err(),
                    "max_epoch": r.max_epoch, "seconds": r.seconds, "detail": r.detail,
                }),
                Err(e) => json!({"fault": f.name(), "status": "error", "why": e.to_string()}),
            };
            eprintln!("{row}");
            faults.push(row);
        }
    }
    Ok((lost, faults))
}

/// The lost-write table.
pub(crate) fn lost_table(rows: &[Value]) -> String {
    if rows.is_empty() {
        return String::new();
    }
    let mut out = String::from(
        "| scenario | system | writes acknowledged | acknowledged writes lost | writes refused | unknown (of which applied) | longest without an acknowledged write, faulted shard | keys not linearizable / checked | traces |\n\
         |---|---|---|---|---|---|---|---|---|\n",
    );
    for r in rows {
        let (sc, sys) = (
            r["scenario"].as_str().unwrap_or("?"),
            r["system"].as_str().unwrap_or("?"),
        );
        match r["status"].as_str() {
            Some("measured") => out.push_str(&format!(
                "| {sc} | {sys} | {} | **{}** | {} | {} ({}) | {:.1} s | {} / {} | {} |\n",
                r["acknowledged"],
                r["lost"],
                r["refused"],
                r["unknown"],
                r["unknown_applied"],
                r["unavailable_s"].as_f64().unwrap_or(0.0),
                r["non_linearizable"],
                r["keys"],
                match r["traces_valid"].as_bool() {
                    Some(true) => "valid",
                    Some(false) => "INVALID",
                    None => "—",
                }
            )),
            Some("unsupported") => out.push_str(&format!(
                "| {sc} | {sys} | not run: this build refuses the setting ({}) | | | | | | |\n",
                r["why"]
                    .as_str()
                    .unwrap_or("?")
                    .split(", expected")
                    .next()
                    .unwrap_or("?")
            )),
            _ => out.push_str(&format!(
                "| {sc} | {sys} | error: {} | | | | | | |\n",
                r["why"].as_str().unwrap_or("?")
            )),
        }
    }
    out
}

/// The shortest non-linearizable key history of each system in each scenario that had one.
pub(crate) fn anomalies(rows: &[Value]) -> String {
    let mut out = String::new();
    let mut systems: Vec<&str> = Vec::new();
    for sys in rows.iter().filter_map(|r| r["system"].as_str()) {
        if !systems.contains(&sys) {
            systems.push(sys);
        }
    }
    for sys in systems {
        let measured: Vec<&Value> = rows
            .iter()
            .filter(|r| r["system"].as_str() == Some(sys))
            .filter(|r| r["status"].as_str() == Some("measured"))
            .collect();
        if measured.is_empty() {
            continue;
        }
        let found: Vec<(&str, &str)> = measured
            .iter()
            .filter_map(|r| Some((r["scenario"].as_str()?, r["shortest_anomaly"].as_str()?)))
            .collect();
        if found.is_empty() {
            out.push_str(&format!("- {sys}: every key's history linearizable\n\n"));
        }
        for (sc, a) in found {
            out.push_str(&format!(
                "- {sys}, {sc}: {} operations:\n\n```text\n{a}\n```\n\n",
                a.lines().count()
            ));
        }
    }
    out
}

/// The matrix table.
pub(crate) fn matrix_table(rows: &[Value]) -> String {
    if rows.is_empty() {
        return String::new();
    }
    let mut out = String::from(
        "| fault (slotguard, 3 × 1, node_timeout 1000 ms) | result | CLUSTER NODES samples | (slot, configEpoch) with two owners | from the fault's start to healthy again | highest configEpoch | traces | notes |\n\
         |---|---|---|---|---|---|---|---|\n",
    );
    for r in rows {
        if r["status"].as_str() == Some("error") {
            out.push_str(&format!(
                "| {} | error: {} | | | | | | |\n",
                r["fault"].as_str().unwrap_or("?"),
                r["why"].as_str().unwrap_or("?")
            ));
            continue;
        }
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} |\n",
            r["fault"].as_str().unwrap_or("?"),
            r["status"].as_str().unwrap_or("?"),
            r["samples"],
            r["conflicts"].as_array().map_or(0, Vec::len),
            match r["agreed"].as_str() {
                None => format!("{:.1} s", r["seconds"].as_f64().unwrap_or(0.0)),
                Some(e) => format!("NOT: {e}"),
            },
            r["max_epoch"],
            if r["traces_valid"].as_bool() == Some(true) {
                "valid"
            } else if r["validator_gap"].as_bool() == Some(true) {
                "valid but for validate's known gap (a restart after an undurable step)"
            } else {
                "INVALID"
            },
            r["detail"].as_str().unwrap_or("")
        ));
    }
    out
}
