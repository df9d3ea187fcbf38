//! Memory per key: the growth of one master's resident memory when a number of small keys is
//! written to it.
//!
//! Why one master and hash-tagged keys: every key `{m}:...` hashes to one slot, so one process
//! holds them all and its growth in RSS is the cost of the keys, with no replica (the cluster
//! has none) and no client buffers left over (the writes are pipelined in batches and each
//! batch's replies read before the next).

use std::time::Duration;

use anyhow::{anyhow, bail, Result};
use redis_protocol::resp2::types::OwnedFrame;
use serde::Serialize;

use crate::cluster::{Cluster, Shape, System, Tools};
use crate::host;
use crate::resp::{self, Conn};
use crate::view::View;

/// Resident memory before and after the keys.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct MemorySample {
    /// Which system.
    pub(crate) system: System,
    /// Keys written.
    pub(crate) keys: u64,
    /// Key length, bytes.
    pub(crate) key_bytes: usize,
    /// Value length, bytes.
    pub(crate) value_bytes: usize,
    /// RSS of the master before, bytes.
    pub(crate) rss_before: u64,
    /// RSS of the master after, bytes.
    pub(crate) rss_after: u64,
    /// Growth per million keys, bytes.
    pub(crate) bytes_per_million_keys: f64,
}

/// Batch of pipelined SETs: large enough that round trips do not dominate, small enough that
/// replies never pile up.
const BATCH: u64 = 1000;

/// Writes `keys` keys to one master of a fresh 3-master cluster and measures its growth.
pub(crate) fn per_key(tools: &Tools, system: System, keys: u64) -> Result<MemorySample> {
    let shape = Shape {
        masters: 3,
        replicas: 0,
        node_timeout_ms: 5000,
    };
    let cluster = Cluster::start(tools, system, shape)?;
    let view = View::parse(&resp::once(cluster.ports[0], &["CLUSTER", "NODES"])?)?;
    let owner = view
        .owner_port(resp::key_slot("{m}"))
        .ok_or_else(|| anyhow!("nobody owns the slot of {{m}}"))?;
    let index = cluster
        .ports
        .iter()
        .position(|&p| p == owner)
        .ok_or_else(|| anyhow!("port {owner} is not the cluster's"))?;
    let pid = cluster
        .pid(index)
        .ok_or_else(|| anyhow!("node {index} is not running"))?;
    std::thread::sleep(Duration::from_secs(1));
    let rss_before = host::rss_bytes(pid)?;
    let mut conn = Conn::open(owner, Duration::from_secs(30))?;
    let value = "v".repeat(16);
    let key = |i: u64| format!("{{m}}:key:{i:010}");
    let mut written = 0;
    while written < keys {
        let n = BATCH.min(keys - written);
        let mut batch = Vec::new();
        for i in written..written + n {
            batch.extend(resp::encode(&["SET", &key(i), &value]));
        }
        conn.send_raw(&batch)?;
        for _ in 0..n {
            match conn.read()? {
                OwnedFrame::SimpleString(_) => {}
                other => bail!("SET answered {other:?}"),
            }
        }
        written += n;
    }
    std::thread::sleep(Duration::from_secs(1));
    let rss_after = host::rss_bytes(pid)?;
    drop(cluster);
    Ok(MemorySample {
        system,
        keys,
        key_bytes: key(0).len(),
        value_bytes: value.len(),
        rss_before,
        rss_after,
        bytes_per_million_keys: rss_after.saturating_sub(rss_before) as f64 * 1e6 / keys as f64,
    })
}
