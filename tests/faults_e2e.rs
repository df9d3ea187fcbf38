//! Faults injected into real processes in network namespaces (tests/faults/): partitions,
//! pauses and kills under a recording client, against slotguard and Redis.

mod faults;

use std::path::Path;

use faults::cluster::{system, Cluster};

fn slotguard() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_slotguard"))
}

#[test]
fn clusters_start_in_namespaces() {
    for name in ["slotguard-async", "redis"] {
        let Some(net) = faults::net::net_or_skip(6) else {
            return;
        };
        let c = Cluster::start(
            net,
            system(name).expect("a system"),
            slotguard(),
            3,
            1000,
            true,
        )
        .unwrap_or_else(|e| panic!("{name}: {e}"));
        eprintln!("{name}: healthy, {}", c.dir().display());
    }
}

/// Every system through every scenario, printed (the benchmark's matrix, for exploring).
#[test]
#[ignore]
fn explore_lost_writes() {
    use faults::scenario::{run, Plan, Scenario};
    let only = std::env::var("FAULTS_SYSTEMS").unwrap_or_default();
    for s in faults::cluster::SYSTEMS {
        if !only.is_empty() && !only.split(',').any(|n| n == s.name) {
            continue;
        }
        for sc in Scenario::ALL {
            match run(*s, sc, slotguard(), Plan::standard()) {
                Ok(r) => eprintln!(
                    "{} {}: {:?} traces {:?}\n{}",
                    s.name,
                    sc.name(),
                    r.summary,
                    r.traces_valid,
                    r.summary.shortest_anomaly.clone().unwrap_or_default()
                ),
                Err(e) => eprintln!("{} {}: {e}", s.name, sc.name()),
            }
        }
    }
}

/// The fault matrix, printed (for exploring).
#[test]
#[ignore]
fn explore_matrix() {
    use faults::matrix::{run, Fault};
    let restarts: usize = std::env::var("FAULTS_RESTARTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let only = std::env::var("FAULTS_ONLY").unwrap_or_default();
    for f in Fault::all(restarts) {
        if !only.is_empty() && !f.name().contains(&only) {
            continue;
        }
        match run(f, slotguard(), 1000, 1) {
            Ok(r) => eprintln!(
                "{}: samples {} conflicts {:?} agreed {:?} traces {:?} max epoch {} {:.1}s {}",
                f.name(),
                r.samples,
                r.conflicts,
                r.agreed,
                r.traces
                    .as_ref()
                    .map_err(|e| e.lines().take(30).collect::<Vec<_>>().join("\n")),
                r.max_epoch,
                r.seconds,
                r.detail
            ),
            Err(e) => eprintln!("{}: {e}", f.name()),
        }
    }
}
