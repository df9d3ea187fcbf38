//! A cluster of either system on loopback, started for one measurement and stopped when
//! dropped: Redis as `redis-server` processes in cluster mode joined by `redis-cli --cluster
//! create`, slotguard as `slotguard cluster`, which starts one `slotguard node` per node.
//!
//! Why each benchmark starts its own clusters: a failover or a million keys leave a cluster
//! in another shape than a fresh one, and comparing fresh clusters of the same layout (masters
//! × replicas, node timeout) is the only comparison that means the same for both systems.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use serde::Serialize;

use crate::host;
use crate::resp;

/// The two systems compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum System {
    /// Redis Cluster (`redis-server`).
    Redis,
    /// slotguard.
    Slotguard,
}

impl System {
    /// Both, in the order of run `run`: alternating, so that neither always runs first (a
    /// machine that warms up or gets busier over a sitting favours one side otherwise).
    pub(crate) fn alternating(run: usize) -> [System; 2] {
        if run.is_multiple_of(2) {
            [System::Redis, System::Slotguard]
        } else {
            [System::Slotguard, System::Redis]
        }
    }

    /// Its name in tables.
    pub(crate) fn name(self) -> &'static str {
        match self {
            System::Redis => "redis",
            System::Slotguard => "slotguard",
        }
    }

    /// Client port of node 0: apart from the ranges the end-to-end tests use (client ports
    /// 21000-30000, bus ports 31000-39000), and bus ports (base + 10000) below Linux's
    /// ephemeral range (32768-), so that no outgoing connection takes one.
    fn base_port(self) -> u16 {
        match self {
            System::Redis => 10100,
            System::Slotguard => 10400,
        }
    }
}

/// What a benchmark needs to start clusters.
#[derive(Clone, Debug)]
pub(crate) struct Tools {
    /// The slotguard binary.
    pub(crate) slotguard: PathBuf,
    /// Where clusters keep their files (a directory per cluster under it).
    pub(crate) work: PathBuf,
}

impl Tools {
    /// Finds the slotguard binary (`explicit`, or `slotguard` beside this binary) and checks
    /// that redis-server, redis-cli and redis-benchmark are installed.
    pub(crate) fn find(explicit: Option<PathBuf>, work: PathBuf) -> Result<Tools> {
        let slotguard = match explicit {
            Some(p) => p,
            None => std::env::current_exe()?
                .parent()
                .map(|d| d.join("slotguard"))
                .ok_or_else(|| anyhow!("cannot locate the bench binary's directory"))?,
        };
        if !host::executable(&slotguard) {
            bail!(
                "no slotguard binary at {} (build it with `cargo build --release -p slotguard`, \
                 or pass --slotguard PATH)",
                slotguard.display()
            );
        }
        for tool in ["redis-server", "redis-cli", "redis-benchmark"] {
            let found = Command::new(tool)
                .arg("--version")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if !found {
                bail!(
                    "{tool} is not installed; the comparison needs Redis 7 (Debian/Ubuntu: \
                     apt-get install redis-server redis-tools)"
                );
            }
        }
        std::fs::create_dir_all(&work)
            .with_context(|| format!("cannot create {}", work.display()))?;
        Ok(Tools { slotguard, work })
    }

    /// `redis-server --version`'s `v=` field.
    pub(crate) fn redis_version() -> String {
        Command::new("redis-server")
            .arg("--version")
            .output()
            .ok()
            .and_then(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .split_whitespace()
                    .find_map(|w| w.strip_prefix("v=").map(str::to_string))
            })
            .unwrap_or_else(|| "unknown".to_string())
    }
}

/// A running cluster. Dropping it stops every process it started.
pub(crate) struct Cluster {
    /// Which system.
    pub(crate) system: System,
    /// Client port of each node.
    pub(crate) ports: Vec<u16>,
    /// The node processes, by node; `None` once killed.
    pids: Vec<Option<u32>>,
    /// Child processes to stop and reap on drop.
    children: Vec<Child>,
    dir: PathBuf,
}

/// The shape of a cluster to start.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Shape {
    /// Masters.
    pub(crate) masters: usize,
    /// Replicas per master.
    pub(crate) replicas: usize,
    /// cluster-node-timeout, ms.
    pub(crate) node_timeout_ms: u64,
}

impl Shape {
    /// Nodes in all.
    pub(crate) fn nodes(self) -> usize {
        self.masters * (1 + self.replicas)
    }
}

impl Cluster {
    /// Starts a cluster of `shape` and waits until it is ready: every node up, agreeing on the
    /// slot map, every replica's link to its master up.
    pub(crate) fn start(tools: &Tools, system: System, shape: Shape) -> Result<Cluster> {
        let n = shape.nodes();
        let base = system.base_port();
        let ports: Vec<u16> = (0..n).map(|i| base + i as u16).collect();
        for &p in &ports {
            if std::net::TcpListener::bind(("127.0.0.1", p)).is_err() {
                bail!("port {p} is taken: a cluster of an earlier run may still be up");
            }
        }
        let dir = tools
            .work
            .join(format!("{}-{}", system.name(), std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        let mut cluster = Cluster {
            system,
            ports,
            pids: vec![None; n],
            children: Vec::new(),
            dir,
        };
        match system {
            System::Redis => cluster.start_redis(shape)?,
            System::Slotguard => cluster.start_slotguard(tools, shape)?,
        }
        cluster.wait_ready(Duration::from_secs(60 + n as u64))?;
        Ok(cluster)
    }

    fn start_redis(&mut self, shape: Shape) -> Result<()> {
        for (i, &port) in self.ports.iter().enumerate() {
            let conf = self.dir.join(format!("redis-{port}.conf"));
            std::fs::write(
                &conf,
                format!(
                    "port {port}\nbind 127.0.0.1\nprotected-mode no\ncluster-enabled yes\n\
                     cluster-config-file nodes-{port}.conf\ncluster-node-timeout {}\n\
                     appendonly no\nsave \"\"\ndir {}\nlogfile redis-{port}.log\n",
                    shape.node_timeout_ms,
                    self.dir.display()
                ),
            )?;
            let child = Command::new("redis-server")
                .arg(&conf)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .context("cannot start redis-server")?;
            self.pids[i] = Some(child.id());
            self.children.push(child);
        }
        for &port in &self.ports {
            wait_for(Duration::from_secs(10), &format!("redis on {port}"), || {
                resp::once(port, &["PING"]).is_ok()
            })?;
        }
        let mut create = Command::new("redis-cli");
        create.arg("--cluster").arg("create");
        for &port in &self.ports {
            create.arg(format!("127.0.0.1:{port}"));
        }
        let out = create
            .args([
                "--cluster-replicas",
                &shape.replicas.to_string(),
                "--cluster-yes",
            ])
            .stdin(Stdio::null())
            .output()
            .context("cannot run redis-cli --cluster create")?;
        if !out.status.success() {
            bail!(
                "redis-cli --cluster create failed: {}",
                String::from_utf8_lossy(&out.stdout)
            );
        }
        Ok(())
    }

    fn start_slotguard(&mut self, tools: &Tools, shape: Shape) -> Result<()> {
        let mut child = Command::new(&tools.slotguard)
            .arg("cluster")
            .args(["--masters", &shape.masters.to_string()])
            .args(["--replicas", &shape.replicas.to_string()])
            .args(["--node-timeout", &shape.node_timeout_ms.to_string()])
            .args(["--base-port", &self.ports[0].to_string()])
            .arg("--dir")
            .arg(&self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("cannot start slotguard cluster")?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| anyhow!("no stdout from slotguard cluster"))?;
        self.children.push(child);
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            // Read every line, so that the command never writes to a closed pipe.
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.starts_with("cluster ready") {
                    let _ = tx.send(());
                }
            }
        });
        rx.recv_timeout(Duration::from_secs(60 + self.ports.len() as u64))
            .map_err(|_| {
                anyhow!(
                    "slotguard cluster was not ready (see {})",
                    self.dir.display()
                )
            })?;
        for i in 0..self.ports.len() {
            let config = self.dir.join(format!("node-{i}.toml"));
            let config = config.display().to_string();
            self.pids[i] = Some(
                host::pid_with_args(&["node", "--config", &config])
                    .ok_or_else(|| anyhow!("no process of node {i}"))?,
            );
        }
        Ok(())
    }

    /// Waits until every live node agrees on the slot map and every replica's link is up.
    fn wait_ready(&self, within: Duration) -> Result<()> {
        let what = format!("{} cluster ready", self.system.name());
        wait_for(within, &what, || self.ready().unwrap_or(false))
    }

    fn ready(&self) -> Result<bool> {
        let mut maps = Vec::new();
        for &port in &self.ports {
            let info = resp::once(port, &["CLUSTER", "INFO"])?;
            if resp::field(&info, "cluster_state") != Some("ok") {
                return Ok(false);
            }
            let nodes = resp::once(port, &["CLUSTER", "NODES"])?;
            let view = crate::view::View::parse(&nodes)?;
            if view.lines.len() != self.ports.len()
                || view.lines.iter().any(|l| l.handshake || l.pfail || l.fail)
            {
                return Ok(false);
            }
            maps.push(view.slot_owner_ports());
            let repl = resp::once(port, &["INFO", "replication"])?;
            if resp::field(&repl, "role") == Some("slave")
                && resp::field(&repl, "master_link_status") != Some("up")
            {
                return Ok(false);
            }
        }
        Ok(maps.windows(2).all(|w| w[0] == w[1]))
    }

    /// The process of node `i`, while it runs.
    pub(crate) fn pid(&self, i: usize) -> Option<u32> {
        self.pids.get(i).copied().flatten()
    }

    /// Kills node `i` with SIGKILL.
    pub(crate) fn kill(&mut self, i: usize) -> Result<()> {
        let pid = self
            .pid(i)
            .ok_or_else(|| anyhow!("node {i} is not running"))?;
        let status = Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status()?;
        if !status.success() {
            bail!("kill -9 {pid} failed");
        }
        self.pids[i] = None;
        Ok(())
    }

    /// The live nodes' processes.
    pub(crate) fn live_pids(&self) -> Vec<u32> {
        self.pids.iter().flatten().copied().collect()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // slotguard cluster stops its nodes on SIGTERM; redis-server stops on SIGTERM.
        for c in &self.children {
            let _ = Command::new("kill")
                .args(["-TERM", &c.id().to_string()])
                .stderr(Stdio::null())
                .status();
        }
        if self.system == System::Slotguard {
            // Nodes the command could not stop (it was told to stop: they get SIGTERM from it).
            for pid in self.pids.iter().flatten() {
                let _ = Command::new("kill")
                    .args(["-TERM", &pid.to_string()])
                    .stderr(Stdio::null())
                    .status();
            }
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        for c in &mut self.children {
            while Instant::now() < deadline {
                if let Ok(Some(_)) = c.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
        // Wait until the ports are free again for the next cluster.
        let ports = self.ports.clone();
        let _ = wait_for(Duration::from_secs(10), "ports free", || {
            ports
                .iter()
                .all(|&p| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok())
        });
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Waits until `ready` holds, checking every 100 ms.
pub(crate) fn wait_for(
    within: Duration,
    what: &str,
    mut ready: impl FnMut() -> bool,
) -> Result<()> {
    let deadline = Instant::now() + within;
    while !ready() {
        if Instant::now() > deadline {
            bail!("timed out after {} s waiting for {what}", within.as_secs());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}
