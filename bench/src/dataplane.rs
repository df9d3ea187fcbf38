//! Requests per second and latency of the data plane, by `redis-benchmark --cluster` against
//! each system: the same client, the same cluster shape (3 masters with a replica each), the
//! same machine.

use std::process::Command;

use anyhow::{anyhow, bail, Context, Result};
use serde::Serialize;

use crate::cluster::{Cluster, Shape, System, Tools};

/// One test of one `redis-benchmark` run.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct DataPlaneSample {
    /// Which system.
    pub(crate) system: System,
    /// `SET` or `GET`.
    pub(crate) test: String,
    /// Pipeline depth (`-P`).
    pub(crate) pipeline: u32,
    /// Requests.
    pub(crate) requests: u64,
    /// Clients.
    pub(crate) clients: u32,
    /// Requests per second.
    pub(crate) rps: f64,
    /// Median latency, ms.
    pub(crate) p50_ms: f64,
    /// 99th percentile latency, ms.
    pub(crate) p99_ms: f64,
}

/// Runs `redis-benchmark --cluster -t set,get -n requests -c clients -P p` for each `p` of
/// `pipelines` against a fresh cluster of `system`.
pub(crate) fn run(
    tools: &Tools,
    system: System,
    requests: u64,
    clients: u32,
    pipelines: &[u32],
) -> Result<Vec<DataPlaneSample>> {
    let shape = Shape {
        masters: 3,
        replicas: 1,
        node_timeout_ms: 5000,
    };
    let cluster = Cluster::start(tools, system, shape)?;
    let mut out = Vec::new();
    for &p in pipelines {
        let run = Command::new("redis-benchmark")
            .args(["--cluster", "-h", "127.0.0.1", "-p"])
            .arg(cluster.ports[0].to_string())
            .args(["-t", "set,get", "-n", &requests.to_string()])
            .args(["-c", &clients.to_string(), "-P", &p.to_string(), "--csv"])
            .output()
            .context("cannot run redis-benchmark")?;
        if !run.status.success() {
            bail!(
                "redis-benchmark failed against {}: {}",
                system.name(),
                String::from_utf8_lossy(&run.stderr)
            );
        }
        let text = String::from_utf8_lossy(&run.stdout);
        for (test, rps, p50, p99) in parse_csv(&text)? {
            out.push(DataPlaneSample {
                system,
                test,
                pipeline: p,
                requests,
                clients,
                rps,
                p50_ms: p50,
                p99_ms: p99,
            });
        }
    }
    Ok(out)
}

/// `(test, rps, p50, p99)` of each row of redis-benchmark's `--csv` output (Redis 7: a header
/// naming the columns, then one row per test).
fn parse_csv(text: &str) -> Result<Vec<(String, f64, f64, f64)>> {
    let mut lines = text.lines().filter(|l| l.starts_with('"')).map(|l| {
        l.split(',')
            .map(|f| f.trim_matches('"'))
            .collect::<Vec<_>>()
    });
    let header = lines
        .next()
        .ok_or_else(|| anyhow!("redis-benchmark printed no CSV: {text:?}"))?;
    let col = |name: &str| {
        header
            .iter()
            .position(|h| *h == name)
            .ok_or_else(|| anyhow!("no column {name} in redis-benchmark's CSV"))
    };
    let (rps, p50, p99) = (col("rps")?, col("p50_latency_ms")?, col("p99_latency_ms")?);
    lines
        .map(|row| {
            let num = |i: usize| -> Result<f64> {
                row.get(i)
                    .and_then(|v| v.parse().ok())
                    .ok_or_else(|| anyhow!("unreadable CSV row {row:?}"))
            };
            Ok((row[0].to_string(), num(rps)?, num(p50)?, num(p99)?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redis_benchmark_csv_is_read_by_column_name() {
        let text = "\"test\",\"rps\",\"avg_latency_ms\",\"min_latency_ms\",\"p50_latency_ms\",\"p95_latency_ms\",\"p99_latency_ms\",\"max_latency_ms\"\n\
\"SET\",\"47619.05\",\"0.754\",\"0.232\",\"0.559\",\"0.871\",\"7.023\",\"7.255\"\n";
        let rows = parse_csv(text).expect("parses");
        assert_eq!(rows, [("SET".to_string(), 47619.05, 0.559, 7.023)]);
        assert!(parse_csv("").is_err());
    }
}
