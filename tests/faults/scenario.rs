//! The lost-write scenarios of issue 27, one system at a time: a cluster of 3 masters × 1
//! replica under the recording load, one fault of master 0, the load continuing past its end,
//! then the cluster healthy again and every key read back.
//!
//! - `partition`: master 0 cut off from every other node (not from clients: see workload.rs)
//!   for 5 × node_timeout, then healed;
//! - `kill`: kill -9 of master 0, restarted after 5 × node_timeout with its files;
//! - `pause`: SIGSTOP of master 0 for 3 × node_timeout, then SIGCONT.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use slotguard::data::keyslot::key_slot;

use super::cluster::{myid, nodes_lines, Cluster, ClusterError, Kind, System};
use super::history::{summarize, Summary};
use super::net::Net;
use super::workload::{key_name, Load, Recorder};

/// A fault of master 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Scenario {
    /// Isolated from the other nodes for 5 × node_timeout.
    Partition,
    /// kill -9, restarted after 5 × node_timeout.
    Kill,
    /// SIGSTOP for 3 × node_timeout.
    Pause,
}

impl Scenario {
    /// All three, in table order.
    pub(crate) const ALL: [Scenario; 3] = [Scenario::Partition, Scenario::Kill, Scenario::Pause];

    /// Its name in tables.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Scenario::Partition => "partition",
            Scenario::Kill => "kill -9",
            Scenario::Pause => "pause",
        }
    }
}

/// How long each phase lasts.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Plan {
    /// node_timeout, ms.
    pub(crate) node_timeout_ms: u64,
    /// Load before the fault.
    pub(crate) before: Duration,
    /// Load after the fault ends.
    pub(crate) after: Duration,
    /// Client threads and their pace.
    pub(crate) workers: usize,
    /// Operations per second per worker.
    pub(crate) rate: u32,
}

impl Plan {
    /// The plan of the issue: node_timeout 1000 ms, 2 s of load before, 5 s after.
    pub(crate) fn standard() -> Plan {
        Plan {
            node_timeout_ms: 1000,
            before: Duration::from_secs(2),
            after: Duration::from_secs(5),
            workers: 4,
            rate: 100,
        }
    }

    /// The short form CI runs: the same faults, 1 s of load before and 2 s after.
    pub(crate) fn short() -> Plan {
        Plan {
            before: Duration::from_secs(1),
            after: Duration::from_secs(2),
            ..Plan::standard()
        }
    }
}

/// One run's result.
#[derive(Clone, Debug)]
pub(crate) struct Run {
    /// The system.
    pub(crate) system: &'static str,
    /// The fault.
    pub(crate) scenario: Scenario,
    /// What the history shows.
    pub(crate) summary: Summary,
    /// `slotguard validate` on the nodes' traces: `None` for Redis, else whether valid.
    pub(crate) traces_valid: Option<bool>,
    /// The validation report when it failed.
    pub(crate) validate_report: String,
    /// Why operations failed or went unanswered, with counts.
    pub(crate) reasons: BTreeMap<String, usize>,
}

/// Runs `scenario` against `system`: `Err(ClusterError::Unsupported)` if the system's nodes
/// refuse their configuration.
pub(crate) fn run(
    system: System,
    scenario: Scenario,
    slotguard: &Path,
    plan: Plan,
) -> Result<Run, ClusterError> {
    let net = Net::new(6)?;
    let mut c = Cluster::start(net, system, slotguard, 3, plan.node_timeout_ms, true)?;
    let me = myid(c.addr(0)).ok_or_else(|| ClusterError::Timeout("CLUSTER MYID".into()))?;
    let ranges: Vec<(u16, u16)> = nodes_lines(c.addr(0))
        .and_then(|l| l.into_iter().find(|n| n.id == me))
        .map(|n| n.slots)
        .unwrap_or_default();
    let affected = move |key: u64| {
        let slot = key_slot(key_name(key).as_bytes());
        ranges.iter().any(|&(lo, hi)| lo <= slot && slot <= hi)
    };
    let wait_ms = match system.kind {
        Kind::Redis { wait_ms, .. } => wait_ms,
        Kind::Slotguard { .. } => None,
    };
    let load = Load {
        workers: plan.workers,
        rate: plan.rate,
        read_percent: 20,
        timeout: Duration::from_millis(plan.node_timeout_ms),
        wait_ms,
    };
    let rec = Recorder::start(c.addrs(), load);
    let start = rec.started();
    std::thread::sleep(plan.before);
    let nt = Duration::from_millis(plan.node_timeout_ms);
    let fault_us = rec.now_us();
    match scenario {
        Scenario::Partition => {
            c.net.isolate(0)?;
            std::thread::sleep(5 * nt);
            c.net.heal()?;
        }
        Scenario::Kill => {
            c.kill9(0);
            std::thread::sleep(5 * nt);
            c.restart(0)?;
        }
        Scenario::Pause => {
            c.signal(0, "STOP")?;
            std::thread::sleep(3 * nt);
            c.signal(0, "CONT")?;
        }
    }
    let fault_end_us = rec.now_us();
    std::thread::sleep(plan.after);
    let end_us = rec.now_us();
    let (mut ops, reasons) = rec.finish();
    c.wait_healthy(Duration::from_secs(90))?;
    let unread = Recorder::read_back(start, c.addrs(), &mut ops, Duration::from_secs(60));
    let summary = summarize(&ops, affected, (fault_us, fault_end_us, end_us), unread)
        .map_err(|e| ClusterError::Io(format!("the history is malformed: {e}")))?;
    let (traces_valid, validate_report) = match system.kind {
        Kind::Redis { .. } => (None, String::new()),
        Kind::Slotguard { .. } => match c.stop_and_validate() {
            Ok(_) => (Some(true), String::new()),
            Err(report) => (Some(false), report),
        },
    };
    Ok(Run {
        system: system.name,
        scenario,
        summary,
        traces_valid,
        validate_report,
        reasons,
    })
}
