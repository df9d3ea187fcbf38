//! A cluster of 3 masters × 1 replica of either system, one node per namespace, and the
//! process faults (kill -9 and restart, SIGSTOP and SIGCONT).
//!
//! The systems compared are data ([`SYSTEMS`]): a system is a name and what its nodes'
//! configurations add, so a new durability mode is one more line. A slotguard system whose
//! configuration the node refuses at start-up (a key it does not know yet) is reported as
//! unsupported, not as a failure of the measurement.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::net::{Net, NetError};
use super::resp::{once, Reply};

/// The client port of every node (each node has its own IP).
pub(crate) const PORT: u16 = 7000;
/// The bus port of every node.
pub(crate) const BUS: u16 = 17000;
const KEY: &str = "slotguard-faults-test-key-0123456789";

/// Which program a system runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `redis-server` in cluster mode.
    Redis {
        /// `min-replicas-to-write`.
        min_replicas_to_write: u32,
        /// `WAIT 1 <ms>` after every write; a write counts as acknowledged only if WAIT
        /// reports a replica.
        wait_ms: Option<u64>,
    },
    /// `slotguard node`.
    Slotguard {
        /// Lines added to every node's TOML.
        toml: &'static str,
    },
}

/// A system under test.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct System {
    /// Its name in tables.
    pub(crate) name: &'static str,
    /// What runs.
    pub(crate) kind: Kind,
}

/// Every system measured, in table order.
pub(crate) const SYSTEMS: &[System] = &[
    System {
        name: "redis",
        kind: Kind::Redis {
            min_replicas_to_write: 0,
            wait_ms: None,
        },
    },
    System {
        name: "redis-wait",
        kind: Kind::Redis {
            min_replicas_to_write: 1,
            wait_ms: Some(1000),
        },
    },
    System {
        name: "slotguard-async",
        kind: Kind::Slotguard { toml: "" },
    },
    System {
        name: "slotguard-sync",
        kind: Kind::Slotguard {
            toml: "durability = \"sync\"\n",
        },
    },
];

/// The system of that name.
pub(crate) fn system(name: &str) -> Option<System> {
    SYSTEMS.iter().copied().find(|s| s.name == name)
}

/// Why a cluster could not be used.
#[derive(Debug)]
pub(crate) enum ClusterError {
    /// The namespaces.
    Net(NetError),
    /// A node refused its configuration at start-up: the system is not supported by this build.
    Unsupported {
        /// The node.
        node: usize,
        /// The line of its log that says why.
        why: String,
    },
    /// A node process exited.
    Died {
        /// The node.
        node: usize,
        /// The end of its log.
        log: String,
    },
    /// Something did not happen in time.
    Timeout(String),
    /// A file or process could not be created.
    Io(String),
}

impl fmt::Display for ClusterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClusterError::Net(e) => write!(f, "{e}"),
            ClusterError::Unsupported { node, why } => {
                write!(f, "node {node} refused its configuration: {why}")
            }
            ClusterError::Died { node, log } => {
                write!(f, "node {node} exited; its log ends:\n{log}")
            }
            ClusterError::Timeout(what) => write!(f, "timed out waiting until {what}"),
            ClusterError::Io(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for ClusterError {}

impl From<NetError> for ClusterError {
    fn from(e: NetError) -> ClusterError {
        ClusterError::Net(e)
    }
}

fn io(what: &str) -> impl Fn(std::io::Error) -> ClusterError + '_ {
    move |e| ClusterError::Io(format!("{what}: {e}"))
}

/// A running cluster.
pub(crate) struct Cluster {
    /// The namespaces.
    pub(crate) net: Net,
    /// What runs.
    pub(crate) system: System,
    /// Masters (nodes 0..masters); node `masters + i` replicates master `i`.
    pub(crate) masters: usize,
    /// node_timeout, ms.
    pub(crate) node_timeout_ms: u64,
    dir: PathBuf,
    slotguard: PathBuf,
    children: Vec<Option<Child>>,
    trace: bool,
    keep: bool,
}

impl Cluster {
    /// Starts `masters` × 1 of `system` in `net` (which must have 2 × masters namespaces),
    /// and waits until every node agrees and every replica is attached. With `trace`, each
    /// slotguard node records its steps, and the traces are validated when the cluster drops.
    pub(crate) fn start(
        net: Net,
        system: System,
        slotguard: &Path,
        masters: usize,
        node_timeout_ms: u64,
        trace: bool,
    ) -> Result<Cluster, ClusterError> {
        let dir = std::env::temp_dir().join(format!(
            "slotguard-faults-{}-{}-{}",
            system.name,
            net.ns(0),
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("traces")).map_err(io("cluster dir"))?;
        std::fs::write(dir.join("cluster.key"), KEY).map_err(io("cluster key"))?;
        let n = net.len();
        let mut c = Cluster {
            net,
            system,
            masters,
            node_timeout_ms,
            dir,
            slotguard: slotguard.to_path_buf(),
            children: (0..n).map(|_| None).collect(),
            trace,
            keep: false,
        };
        for i in 0..n {
            c.spawn(i)?;
        }
        if matches!(system.kind, Kind::Redis { .. }) {
            c.create_redis_cluster()?;
        }
        c.wait_healthy(Duration::from_secs(60))?;
        Ok(c)
    }

    /// How many nodes.
    pub(crate) fn len(&self) -> usize {
        self.children.len()
    }

    /// Node `i`'s client address.
    pub(crate) fn addr(&self, i: usize) -> SocketAddr {
        let ip: std::net::IpAddr = self.net.ip(i).parse().expect("an IPv4 literal");
        SocketAddr::new(ip, PORT)
    }

    /// Every node's client address.
    pub(crate) fn addrs(&self) -> Vec<SocketAddr> {
        (0..self.len()).map(|i| self.addr(i)).collect()
    }

    /// Where node `i` logs.
    pub(crate) fn log_path(&self, i: usize) -> PathBuf {
        self.dir.join(format!("node-{i}.log"))
    }

    /// The end of node `i`'s log.
    pub(crate) fn log_tail(&self, i: usize) -> String {
        let text = std::fs::read_to_string(self.log_path(i)).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    }

    fn spawn(&mut self, i: usize) -> Result<(), ClusterError> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path(i))
            .map_err(io("node log"))?;
        let err = log.try_clone().map_err(io("node log"))?;
        let mut cmd = match self.system.kind {
            Kind::Slotguard { toml } => {
                let config = self.dir.join(format!("node-{i}.toml"));
                let nodes: Vec<String> = (0..self.len())
                    .map(|j| format!("\"{}:{PORT}@{BUS}\"", self.net.ip(j)))
                    .collect();
                let text = format!(
                    "id = {i}\nmasters = {}\nreplicas = 1\nnode_timeout_ms = {}\ndata_dir = \"{}\"\ncluster_key_file = \"{}\"\nnodes = [{}]\n{toml}",
                    self.masters,
                    self.node_timeout_ms,
                    self.dir.join(format!("n{i}")).display(),
                    self.dir.join("cluster.key").display(),
                    nodes.join(", "),
                );
                std::fs::write(&config, text).map_err(io("node config"))?;
                let mut cmd = self.net.command(i, &self.slotguard);
                cmd.arg("node").arg("--config").arg(&config);
                if self.trace {
                    cmd.arg("--trace")
                        .arg(self.dir.join("traces").join(format!("node-{i}.trace")));
                }
                cmd
            }
            Kind::Redis {
                min_replicas_to_write,
                ..
            } => {
                let data = self.dir.join(format!("n{i}"));
                std::fs::create_dir_all(&data).map_err(io("redis dir"))?;
                let mut cmd = self.net.command(i, Path::new("/usr/bin/redis-server"));
                cmd.args(["--port", &PORT.to_string()])
                    .args(["--bind", &self.net.ip(i)])
                    .args(["--protected-mode", "no"])
                    .args(["--cluster-enabled", "yes"])
                    .args(["--cluster-config-file", "nodes.conf"])
                    .args(["--cluster-node-timeout", &self.node_timeout_ms.to_string()])
                    .args([
                        "--min-replicas-to-write",
                        &min_replicas_to_write.to_string(),
                    ])
                    .arg("--dir")
                    .arg(&data);
                cmd
            }
        };
        let child = cmd
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            .spawn()
            .map_err(io("spawn a node"))?;
        self.children[i] = Some(child);
        Ok(())
    }

    /// Joins the redis-server processes as `redis-cli --cluster create` would, but with the
    /// same layout as slotguard's: node `i < masters` serves the i-th third of the slots, node
    /// `masters + i` replicates it.
    fn create_redis_cluster(&mut self) -> Result<(), ClusterError> {
        let addrs = self.addrs();
        self.wait("every redis-server answers", Duration::from_secs(20), |c| {
            c.check_alive()?;
            Ok(addrs.iter().all(|a| once(*a, &["PING"]).is_some()))
        })?;
        let per = 16384 / self.masters;
        for (m, addr) in addrs.iter().copied().enumerate().take(self.masters) {
            let (lo, hi) = (
                m * per,
                if m + 1 == self.masters {
                    16383
                } else {
                    (m + 1) * per - 1
                },
            );
            let epoch = (m + 1).to_string();
            command_ok(addr, &["CLUSTER", "SET-CONFIG-EPOCH", &epoch])?;
            command_ok(
                addr,
                &["CLUSTER", "ADDSLOTSRANGE", &lo.to_string(), &hi.to_string()],
            )?;
        }
        let ip0 = self.net.ip(0);
        for a in &addrs[1..] {
            command_ok(*a, &["CLUSTER", "MEET", &ip0, &PORT.to_string()])?;
        }
        let n = self.len();
        self.wait(
            "every redis node knows every other",
            Duration::from_secs(30),
            |c| {
                c.check_alive()?;
                Ok(addrs.iter().all(|a| {
                    nodes_lines(*a).is_some_and(|l| {
                        l.len() == n && l.iter().all(|x| !x.flags.contains("handshake"))
                    })
                }))
            },
        )?;
        for r in self.masters..n {
            let id = myid(addrs[r - self.masters])
                .ok_or_else(|| ClusterError::Timeout("CLUSTER MYID".into()))?;
            command_ok(addrs[r], &["CLUSTER", "REPLICATE", &id])?;
        }
        Ok(())
    }

    /// Waits until every live node agrees on the slot owners, reports the cluster ok, and
    /// every master has its replica attached.
    pub(crate) fn wait_healthy(&mut self, within: Duration) -> Result<(), ClusterError> {
        let masters = self.masters;
        self.wait("the cluster is healthy", within, |c| {
            c.check_alive()?;
            let live = c.live();
            let Some(owners) = agreed_owners(&c.addrs(), &live) else {
                return Ok(false);
            };
            if owners.len() != masters {
                return Ok(false);
            }
            let ok = live.iter().all(|&i| {
                let info = once(c.addr(i), &["CLUSTER", "INFO"]);
                info.as_ref()
                    .and_then(Reply::text)
                    .is_some_and(|t| t.contains("cluster_state:ok"))
            });
            let attached = owners.values().all(|(owner, _)| {
                live.iter().any(|&i| {
                    myid(c.addr(i)).as_deref() == Some(owner)
                        && info_field(c.addr(i), "connected_slaves") == Some(1)
                })
            });
            // A replica is in sync once its link is up and no full copy is in progress (Redis
            // starts a diskless copy only after repl-diskless-sync-delay, 5 s by default).
            let synced = live.iter().all(|&i| {
                let Some(info) = once(c.addr(i), &["INFO", "replication"]) else {
                    return false;
                };
                let text = info.text().unwrap_or_default();
                !text.contains("role:slave")
                    || (text.contains("master_link_status:up")
                        && !text.contains("master_sync_in_progress:1"))
            });
            Ok(ok && attached && synced)
        })
    }

    /// Polls `f` every 100 ms until it is true, within `within`.
    pub(crate) fn wait(
        &mut self,
        what: &str,
        within: Duration,
        mut f: impl FnMut(&mut Cluster) -> Result<bool, ClusterError>,
    ) -> Result<(), ClusterError> {
        let end = Instant::now() + within;
        loop {
            if f(self)? {
                return Ok(());
            }
            if Instant::now() > end {
                return Err(ClusterError::Timeout(what.to_string()));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// An error if a node that should run has exited (a refused configuration is
    /// [`ClusterError::Unsupported`]).
    pub(crate) fn check_alive(&mut self) -> Result<(), ClusterError> {
        for i in 0..self.len() {
            let exited = match self.children[i].as_mut() {
                Some(c) => c.try_wait().map_err(io("wait"))?.is_some(),
                None => false,
            };
            if exited {
                self.children[i] = None;
                let log = self.log_tail(i);
                if let Some(line) = log
                    .lines()
                    .find(|l| l.contains("unknown field") || l.contains("unknown variant"))
                {
                    return Err(ClusterError::Unsupported {
                        node: i,
                        why: line.trim().to_string(),
                    });
                }
                return Err(ClusterError::Died { node: i, log });
            }
        }
        Ok(())
    }

    /// Nodes whose process runs (stopped ones included).
    pub(crate) fn live(&self) -> Vec<usize> {
        (0..self.len())
            .filter(|&i| self.children[i].is_some())
            .collect()
    }

    /// kill -9 of node `i`.
    pub(crate) fn kill9(&mut self, i: usize) {
        if let Some(mut c) = self.children[i].take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts node `i` again, from its state file (slotguard) or nodes.conf (Redis).
    pub(crate) fn restart(&mut self, i: usize) -> Result<(), ClusterError> {
        self.kill9(i);
        self.spawn(i)
    }

    /// Sends `signal` (`STOP`, `CONT`) to node `i`.
    pub(crate) fn signal(&self, i: usize, signal: &str) -> Result<(), ClusterError> {
        let pid = self.children[i]
            .as_ref()
            .ok_or_else(|| ClusterError::Io(format!("node {i} is not running")))?
            .id();
        super::net::run("kill", &[&format!("-{signal}"), &pid.to_string()])?;
        Ok(())
    }

    /// Keeps the cluster's directory (logs, state files, traces) after drop.
    pub(crate) fn keep_files(&mut self) {
        self.keep = true;
    }

    /// The directory of logs, configurations, state files and traces.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// Stops every node and runs `slotguard validate` on their traces (when traced):
    /// `Err` with the report if the traces do not replay through the model.
    pub(crate) fn stop_and_validate(&mut self) -> Result<String, String> {
        let _ = self.net.heal();
        for i in 0..self.len() {
            let _ = self.signal(i, "CONT");
            self.kill9(i);
        }
        if !self.trace {
            return Ok(String::new());
        }
        let out = Command::new(&self.slotguard)
            .arg("validate")
            .arg(self.dir.join("traces"))
            .output()
            .map_err(|e| format!("slotguard validate: {e}"))?;
        let report = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        if out.status.success() {
            Ok(report)
        } else {
            self.keep = true;
            Err(report)
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for i in 0..self.len() {
            self.kill9(i);
        }
        if self.keep || std::thread::panicking() {
            eprintln!("cluster files kept: {}", self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

fn command_ok(addr: SocketAddr, args: &[&str]) -> Result<(), ClusterError> {
    match once(addr, args) {
        Some(Reply::Text(_)) => Ok(()),
        other => Err(ClusterError::Io(format!(
            "{addr} {}: {other:?}",
            args.join(" ")
        ))),
    }
}

/// A node's name.
pub(crate) fn myid(addr: SocketAddr) -> Option<String> {
    once(addr, &["CLUSTER", "MYID"])?.text().map(str::to_string)
}

/// An INFO field of a node, as a number.
pub(crate) fn info_field(addr: SocketAddr, name: &str) -> Option<u64> {
    let info = once(addr, &["INFO"])?;
    info.text()?
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name}:")))
        .and_then(|v| v.trim().parse().ok())
}

/// A parsed CLUSTER NODES line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct NodeLine {
    /// The node's name.
    pub(crate) id: String,
    /// Its flags.
    pub(crate) flags: String,
    /// Its configEpoch.
    pub(crate) epoch: u64,
    /// Its slot ranges, `(first, last)`.
    pub(crate) slots: Vec<(u16, u16)>,
}

/// A node's CLUSTER NODES.
pub(crate) fn nodes_lines(addr: SocketAddr) -> Option<Vec<NodeLine>> {
    let reply = once(addr, &["CLUSTER", "NODES"])?;
    reply
        .text()?
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            let slots = f
                .get(8..)
                .unwrap_or_default()
                .iter()
                .filter(|r| !r.starts_with('['))
                .map(|r| {
                    let (lo, hi) = r.split_once('-').unwrap_or((r, r));
                    Some((lo.parse().ok()?, hi.parse().ok()?))
                })
                .collect::<Option<Vec<_>>>()?;
            Some(NodeLine {
                id: f.first()?.to_string(),
                flags: f.get(2)?.to_string(),
                epoch: f.get(6)?.parse().ok()?,
                slots,
            })
        })
        .collect()
}

/// `first slot -> (owner, configEpoch)` as one node reports it.
pub(crate) fn owners(lines: &[NodeLine]) -> BTreeMap<u16, (String, u64)> {
    lines
        .iter()
        .flat_map(|l| l.slots.iter().map(|&(lo, _)| (lo, (l.id.clone(), l.epoch))))
        .collect()
}

/// The slot owners every node of `nodes` reports, if they all report the same.
pub(crate) fn agreed_owners(
    addrs: &[SocketAddr],
    nodes: &[usize],
) -> Option<BTreeMap<u16, (String, u64)>> {
    let maps: Vec<_> = nodes
        .iter()
        .map(|&i| nodes_lines(addrs[i]).map(|l| owners(&l)))
        .collect::<Option<_>>()?;
    let first = maps.first()?.clone();
    maps.iter().all(|m| *m == first).then_some(first)
}
