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
