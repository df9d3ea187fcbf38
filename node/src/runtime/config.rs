//! Node configuration: a TOML file plus flags (flags win). The cluster key never comes from a
//! flag (it would show in `ps`): it is read from a file or the `SLOTGUARD_CLUSTER_KEY`
//! environment variable.
//!
//! ```toml
//! id = 0                         # this node's index in `nodes`
//! masters = 3                    # the layout every node of the cluster shares
//! replicas = 1
//! slots = 16384
//! node_timeout_ms = 15000
//! data_dir = "data/n0"
//! cluster_key_file = "cluster.key"
//! nodes = ["127.0.0.1:7000@17000", "127.0.0.1:7001@17001", ...]   # client-port@bus-port, by id
//! ```

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::Args;
use serde::Deserialize;
use slotguard_model::{InitialEpochs, Layout, Timing};

/// Environment variable that may hold the cluster key.
pub(crate) const KEY_ENV: &str = "SLOTGUARD_CLUSTER_KEY";

/// One node's addresses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Endpoint {
    /// Client (RESP) address.
    pub(crate) client: SocketAddr,
    /// Cluster-bus (UDP) address.
    pub(crate) bus: SocketAddr,
}

impl std::str::FromStr for Endpoint {
    type Err = anyhow::Error;
    /// `IP:PORT@BUSPORT` (as in CLUSTER NODES) or `IP:PORT@IP:BUSPORT`.
    fn from_str(s: &str) -> Result<Endpoint> {
        let (client, bus) = s
            .split_once('@')
            .with_context(|| format!("{s:?}: expected IP:PORT@BUSPORT"))?;
        let client: SocketAddr = client
            .parse()
            .with_context(|| format!("{s:?}: bad client address"))?;
        let bus: SocketAddr = match bus.parse::<u16>() {
            Ok(port) => SocketAddr::new(client.ip(), port),
            Err(_) => bus
                .parse()
                .with_context(|| format!("{s:?}: bad bus address"))?,
        };
        Ok(Endpoint { client, bus })
    }
}

/// The file format.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    id: Option<u16>,
    masters: Option<usize>,
    replicas: Option<usize>,
    slots: Option<usize>,
    node_timeout_ms: Option<u64>,
    data_dir: Option<PathBuf>,
    cluster_key_file: Option<PathBuf>,
    nodes: Option<Vec<String>>,
}

/// Flags of `slotguard node`.
#[derive(Args, Debug, Clone)]
pub(crate) struct NodeArgs {
    /// TOML configuration file.
    #[arg(long)]
    config: Option<PathBuf>,
    /// This node's id (its index in the node list).
    #[arg(long)]
    id: Option<u16>,
    /// Override this node's cluster-bus address (IP:PORT).
    #[arg(long)]
    bus: Option<SocketAddr>,
    /// Override this node's client (RESP) port.
    #[arg(long)]
    port: Option<u16>,
    /// Every node's addresses in id order: `IP:PORT@BUSPORT,...`.
    #[arg(long, value_delimiter = ',')]
    peers: Option<Vec<String>>,
    /// Masters at cluster creation (nodes 0..masters).
    #[arg(long)]
    masters: Option<usize>,
    /// Replicas per master at creation.
    #[arg(long)]
    replicas: Option<usize>,
    /// Directory of the state file.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// cluster-node-timeout in milliseconds.
    #[arg(long)]
    node_timeout: Option<u64>,
    /// File holding the shared cluster key (else the SLOTGUARD_CLUSTER_KEY variable).
    #[arg(long)]
    cluster_key_file: Option<PathBuf>,
}

/// A validated node configuration.
#[derive(Debug)]
pub(crate) struct NodeConfig {
    pub(crate) id: u16,
    pub(crate) layout: Arc<Layout>,
    pub(crate) timing: Timing,
    pub(crate) nodes: Vec<Endpoint>,
    pub(crate) data_dir: PathBuf,
    pub(crate) key: Vec<u8>,
}

impl NodeConfig {
    /// Merges file and flags, and validates.
    pub(crate) fn from_args(args: &NodeArgs) -> Result<NodeConfig> {
        let file = match &args.config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read {}", path.display()))?;
                toml::from_str::<FileConfig>(&text)
                    .with_context(|| format!("invalid configuration {}", path.display()))?
            }
            None => FileConfig::default(),
        };
        let id = args
            .id
            .or(file.id)
            .context("no node id: give --id or `id` in the config")?;
        let peers =
            args.peers.clone().or(file.nodes).context(
                "no node list: give --peers IP:PORT@BUSPORT,... or `nodes` in the config",
            )?;
        let mut nodes: Vec<Endpoint> = peers
            .iter()
            .map(|s| s.trim().parse())
            .collect::<Result<_>>()?;
        let masters = args.masters.or(file.masters).context("no --masters")?;
        let replicas = args.replicas.or(file.replicas).unwrap_or(0);
        let slots = file.slots.unwrap_or(16384);
        let layout = Layout::grid(masters, replicas, slots, InitialEpochs::Distinct)?;
        if layout.len() != nodes.len() {
            bail!(
                "{masters} masters with {replicas} replicas each are {} nodes, but {} addresses are listed",
                layout.len(),
                nodes.len()
            );
        }
        let me = nodes
            .get_mut(usize::from(id))
            .with_context(|| format!("id {id} is not in the node list"))?;
        if let Some(bus) = args.bus {
            me.bus = bus;
        }
        if let Some(port) = args.port {
            me.client.set_port(port);
        }
        let timeout = args.node_timeout.or(file.node_timeout_ms).unwrap_or(15_000);
        if timeout < 100 {
            bail!("node timeout {timeout} ms is too short (at least 100 ms)");
        }
        let data_dir = args
            .data_dir
            .clone()
            .or(file.data_dir)
            .context("no --data-dir")?;
        let key = match args.cluster_key_file.clone().or(file.cluster_key_file) {
            Some(path) => std::fs::read(&path)
                .with_context(|| format!("cannot read the cluster key file {}", path.display()))?,
            None => std::env::var(KEY_ENV)
                .map(String::into_bytes)
                .map_err(|_| {
                    anyhow::anyhow!("no cluster key: give --cluster-key-file or set {KEY_ENV}")
                })?,
        };
        let key: Vec<u8> = key.trim_ascii().to_vec();
        if key.len() < 16 {
            bail!("the cluster key must be at least 16 bytes");
        }
        Ok(NodeConfig {
            id,
            layout: Arc::new(layout),
            timing: Timing::from_node_timeout(Duration::from_millis(timeout)),
            nodes,
            data_dir,
            key,
        })
    }

    /// The IP other nodes and clients reach node `i` on.
    pub(crate) fn ip(&self, i: usize) -> IpAddr {
        self.nodes[i].client.ip()
    }
}
