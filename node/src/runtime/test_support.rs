//! A node configuration and published state for unit tests of the client port.

use std::sync::Arc;
use std::time::Duration;

use slotguard_protocol::{InitialEpochs, Layout, NodeId, NodeState, Timing};

use super::config::{ClientLimits, Endpoint, NodeConfig};
use super::identity::{Directory, NodeName, NAME_LEN};
use super::Snapshot;

/// Node `me` of a `masters` × `replicas` cluster of 6 slots whose node `i` has client port
/// `ports[i]` (bus port 17000 + i).
pub(super) fn config(masters: usize, replicas: usize, me: u16, ports: &[u16]) -> NodeConfig {
    let layout = Layout::grid(masters, replicas, 6, InitialEpochs::Distinct).expect("layout");
    NodeConfig {
        id: me,
        layout: Arc::new(layout),
        timing: Timing::from_node_timeout(Duration::from_secs(1)),
        nodes: ports
            .iter()
            .enumerate()
            .map(|(i, port)| format!("127.0.0.1:{port}@{}", 17000 + i).parse())
            .collect::<anyhow::Result<Vec<Endpoint>>>()
            .expect("endpoints"),
        data_dir: "unused".into(),
        key: vec![0; 16],
        clients: ClientLimits::default(),
        metrics_port: None,
        bind_ip: None,
        trace: None,
        durability: Default::default(),
    }
}

/// What node `cfg.id` publishes before its first step.
pub(super) fn snapshot(cfg: &NodeConfig) -> Snapshot {
    let me = NodeId(cfg.id);
    let state = NodeState::fresh(&cfg.layout, me);
    Snapshot {
        status: slotguard_protocol::cluster_status(&state, &cfg.layout),
        state,
        incarnation: 0,
        counters: Default::default(),
        names: Directory::new(me, NodeName([0x3f; NAME_LEN]), cfg.nodes.len()),
        run_id: "ab".repeat(20),
        addrs: vec![None; cfg.nodes.len()],
    }
}
