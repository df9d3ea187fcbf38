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
//!
//! # The client port's limits ([`ClientLimits`]; Redis's names and defaults where Redis has them)
//! maxclients = 10000                       # more connections get "-ERR max number of clients reached"
//! timeout = 0                              # seconds a client may stay idle; 0 = forever
//! proto_max_bulk_len = 536870912           # largest bulk string of a request (512 MB)
//! max_multibulk_len = 1048576              # most arguments in one request
//! client_query_buffer_limit = 1073741824   # bytes one connection may buffer unparsed (1 GB)
//! query_buffer_total = 1073741824          # bytes all connections together may (1 GB)
//! maxmemory = 0                            # bytes of keys above which writes that add data get -OOM; 0 = no limit
//! min_replicas_to_write = 0                # a master refuses writes (-NOREPLICAS) with fewer good replicas; 0 = off
//! min_replicas_max_lag = 10                # seconds since its last acknowledgement within which a replica is good
//! durability = "async"     # "sync": a write is acknowledged once every other node of its shard has it (specs/protocol.md §13)
//!
//! metrics_port = 9121      # Prometheus text on http://<client IP>:9121/metrics; off if absent
//! bind_ip = "0.0.0.0"      # where to listen; default: own address if an IP, else 0.0.0.0
//! ```
//!
//! Hosts in `nodes` are IP literals or DNS names (`sg-1.sg.db.svc.cluster.local:6379@16379`):
//! names are resolved by the runtime, off the step loop (resolve.rs), so that a node moved to
//! another address (a rescheduled pod) is found again.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::Args;
use serde::Deserialize;
use slotguard_protocol::{Durability, InitialEpochs, Layout, Timing};

/// Environment variable that may hold the cluster key.
pub(crate) const KEY_ENV: &str = "SLOTGUARD_CLUSTER_KEY";

/// A host: an IP literal, or a DNS name resolved by the runtime (resolve.rs).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Host {
    /// Used as it is.
    Ip(IpAddr),
    /// Resolved at start, and again whenever the node stays silent for node_timeout.
    Name(String),
}

impl std::fmt::Display for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Host::Ip(ip) => write!(f, "{ip}"),
            Host::Name(n) => f.write_str(n),
        }
    }
}

/// A host and a port.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Address {
    pub(crate) host: Host,
    pub(crate) port: u16,
}

impl Address {
    /// The socket address, if the host is an IP literal.
    pub(crate) fn literal(&self) -> Option<SocketAddr> {
        match self.host {
            Host::Ip(ip) => Some(SocketAddr::new(ip, self.port)),
            Host::Name(_) => None,
        }
    }
}

impl std::fmt::Display for Address {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.host {
            Host::Ip(ip) => write!(f, "{}", SocketAddr::new(ip, self.port)),
            Host::Name(ref n) => write!(f, "{n}:{}", self.port),
        }
    }
}

impl std::str::FromStr for Address {
    type Err = anyhow::Error;
    /// `IP:PORT`, `[IPv6]:PORT` or `NAME:PORT` (a DNS name: letters, digits, `-`, `.`).
    fn from_str(s: &str) -> Result<Address> {
        if let Ok(a) = s.parse::<SocketAddr>() {
            return Ok(Address {
                host: Host::Ip(a.ip()),
                port: a.port(),
            });
        }
        let (host, port) = s.rsplit_once(':').context("expected HOST:PORT")?;
        let port: u16 = port.parse().context("bad port")?;
        let name_ok = !host.is_empty()
            && host.len() <= 253
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
        if !name_ok {
            bail!("{host:?} is neither an IP address nor a host name");
        }
        let host = match host.parse::<IpAddr>() {
            Ok(ip) => Host::Ip(ip),
            Err(_) => Host::Name(host.to_ascii_lowercase()),
        };
        Ok(Address { host, port })
    }
}

/// One node's addresses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Endpoint {
    /// Client (RESP) address.
    pub(crate) client: Address,
    /// Cluster-bus (UDP) address.
    pub(crate) bus: Address,
}

impl std::str::FromStr for Endpoint {
    type Err = anyhow::Error;
    /// `HOST:PORT@BUSPORT` (as in CLUSTER NODES) or `HOST:PORT@HOST:BUSPORT`, where a host is
    /// an IP literal or a DNS name.
    fn from_str(s: &str) -> Result<Endpoint> {
        let (client, bus) = s
            .split_once('@')
            .with_context(|| format!("{s:?}: expected HOST:PORT@BUSPORT"))?;
        let client: Address = client
            .parse()
            .with_context(|| format!("{s:?}: bad client address"))?;
        let bus: Address = match bus.parse::<u16>() {
            Ok(port) => Address {
                host: client.host.clone(),
                port,
            },
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
    maxclients: Option<usize>,
    timeout: Option<u64>,
    proto_max_bulk_len: Option<usize>,
    max_multibulk_len: Option<usize>,
    client_query_buffer_limit: Option<usize>,
    query_buffer_total: Option<usize>,
    maxmemory: Option<usize>,
    min_replicas_to_write: Option<usize>,
    min_replicas_max_lag: Option<u64>,
    metrics_port: Option<u16>,
    bind_ip: Option<IpAddr>,
    durability: Option<Durability>,
}

/// Limits of the client port. Redis bounds each connection; a node also bounds them all
/// together (`query_buffer_total`), since 10,000 clients each within a 1 GB query buffer limit
/// would still exhaust any machine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ClientLimits {
    /// Most client connections at once (Redis `maxclients`).
    pub(crate) maxclients: usize,
    /// Idle seconds before a client is closed; 0: never (Redis `timeout`).
    pub(crate) timeout_secs: u64,
    /// Largest bulk string in a request (Redis `proto-max-bulk-len`).
    pub(crate) max_bulk_len: usize,
    /// Most elements in one multibulk request.
    pub(crate) max_multibulk_len: usize,
    /// Bytes one connection may hold unparsed (Redis `client-query-buffer-limit`).
    pub(crate) query_buffer: usize,
    /// Bytes all connections together may hold unparsed.
    pub(crate) query_buffer_total: usize,
    /// Bytes of keys above which commands that add data are refused with `-OOM` (Redis
    /// `maxmemory`, counted over the keyspace only); 0: no limit.
    pub(crate) maxmemory: usize,
    /// A master refuses writes while fewer replicas than this are good (Redis
    /// `min-replicas-to-write`); 0: never.
    pub(crate) min_replicas_to_write: usize,
    /// A replica is good if it acknowledged the stream within this many seconds (Redis
    /// `min-replicas-max-lag`).
    pub(crate) min_replicas_max_lag: u64,
}

impl Default for ClientLimits {
    fn default() -> ClientLimits {
        ClientLimits {
            maxclients: 10_000,
            timeout_secs: 0,
            max_bulk_len: 512 << 20,
            max_multibulk_len: 1 << 20,
            query_buffer: 1 << 30,
            query_buffer_total: 1 << 30,
            maxmemory: 0,
            min_replicas_to_write: 0,
            min_replicas_max_lag: 10,
        }
    }
}

impl ClientLimits {
    /// The file's settings over the defaults.
    fn from_file(file: &FileConfig) -> Result<ClientLimits> {
        let d = ClientLimits::default();
        let limits = ClientLimits {
            maxclients: file.maxclients.unwrap_or(d.maxclients),
            timeout_secs: file.timeout.unwrap_or(d.timeout_secs),
            max_bulk_len: file.proto_max_bulk_len.unwrap_or(d.max_bulk_len),
            max_multibulk_len: file.max_multibulk_len.unwrap_or(d.max_multibulk_len),
            query_buffer: file.client_query_buffer_limit.unwrap_or(d.query_buffer),
            query_buffer_total: file.query_buffer_total.unwrap_or(d.query_buffer_total),
            maxmemory: file.maxmemory.unwrap_or(d.maxmemory),
            min_replicas_to_write: file
                .min_replicas_to_write
                .unwrap_or(d.min_replicas_to_write),
            min_replicas_max_lag: file.min_replicas_max_lag.unwrap_or(d.min_replicas_max_lag),
        };
        let zero = [
            ("maxclients", limits.maxclients),
            ("proto_max_bulk_len", limits.max_bulk_len),
            ("max_multibulk_len", limits.max_multibulk_len),
            ("client_query_buffer_limit", limits.query_buffer),
            ("query_buffer_total", limits.query_buffer_total),
        ]
        .into_iter()
        .find(|(_, v)| *v == 0);
        if let Some((name, _)) = zero {
            bail!("{name} must be at least 1");
        }
        let buffers = [
            ("client_query_buffer_limit", limits.query_buffer),
            ("query_buffer_total", limits.query_buffer_total),
        ];
        if let Some((name, value)) = buffers.into_iter().find(|(_, v)| *v <= limits.max_bulk_len) {
            bail!(
                "{name} ({value}) must be larger than proto_max_bulk_len ({}): a request with a bulk string of the largest allowed size could never be read",
                limits.max_bulk_len
            );
        }
        Ok(limits)
    }
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
    /// Serve Prometheus metrics on this TCP port (`/metrics`); off unless given.
    #[arg(long)]
    metrics_port: Option<u16>,
    /// IP to listen on (client, bus and metrics ports); default: this node's own address
    /// when it is an IP literal, else 0.0.0.0.
    #[arg(long)]
    bind_ip: Option<IpAddr>,
    /// Record every step of the node's actor in this file (NDJSON, appended to), for
    /// `slotguard validate` (specs/protocol.md §12); off unless given.
    #[arg(long, value_name = "FILE")]
    trace: Option<PathBuf>,
    /// When a write is acknowledged: `async` (once applied, as Redis) or `sync` (once every
    /// other node of its shard has it; specs/protocol.md §13). Every node of a cluster must
    /// use the same.
    #[arg(long, value_parser = parse_durability)]
    durability: Option<Durability>,
}

fn parse_durability(text: &str) -> Result<Durability, String> {
    match text {
        "async" => Ok(Durability::Async),
        "sync" => Ok(Durability::Sync),
        other => Err(format!("{other:?}: expected async or sync")),
    }
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
    pub(crate) clients: ClientLimits,
    /// Port of the Prometheus endpoint, on the client port's IP; `None`: no endpoint.
    pub(crate) metrics_port: Option<u16>,
    /// The IP to listen on when this node's own address is a host name.
    pub(crate) bind_ip: Option<IpAddr>,
    /// Where to append the trace of every step (specs/protocol.md §12); `None`: no trace.
    pub(crate) trace: Option<PathBuf>,
    /// When a write is acknowledged (specs/protocol.md §13).
    pub(crate) durability: Durability,
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
        let clients = ClientLimits::from_file(&file)?;
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
                "{masters} masters with {replicas} replica(s) each are {} nodes, but {} addresses are listed",
                layout.len(),
                nodes.len()
            );
        }
        let me = nodes
            .get_mut(usize::from(id))
            .with_context(|| format!("id {id} is not in the node list"))?;
        if let Some(bus) = args.bus {
            me.bus = Address {
                host: Host::Ip(bus.ip()),
                port: bus.port(),
            };
        }
        if let Some(port) = args.port {
            me.client.port = port;
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
        let durability = args.durability.or(file.durability).unwrap_or_default();
        if durability == Durability::Sync && replicas == 0 {
            bail!("durability = \"sync\" needs at least one replica per master: a write is acknowledged once the other nodes of its shard have it");
        }
        Ok(NodeConfig {
            id,
            layout: Arc::new(layout),
            timing: Timing::from_node_timeout(Duration::from_millis(timeout)),
            nodes,
            data_dir,
            key,
            clients,
            metrics_port: args.metrics_port.or(file.metrics_port),
            bind_ip: args.bind_ip.or(file.bind_ip),
            trace: args.trace.clone(),
            durability,
        })
    }

    /// Where this node listens for `address` (its own client or bus address): `bind_ip` if
    /// given, else the address itself when it is an IP literal, else every IPv4 interface (a
    /// host name is how others find the node; its IP may not even be published yet).
    pub(crate) fn listen_on(&self, address: &Address) -> SocketAddr {
        match (self.bind_ip, &address.host) {
            (Some(ip), _) | (None, &Host::Ip(ip)) => SocketAddr::new(ip, address.port),
            (None, Host::Name(_)) => SocketAddr::from(([0, 0, 0, 0], address.port)),
        }
    }

    /// This node's own addresses.
    pub(crate) fn me(&self) -> &Endpoint {
        &self.nodes[usize::from(self.id)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(text: &str) -> Result<ClientLimits> {
        let file: FileConfig = toml::from_str(text)?;
        ClientLimits::from_file(&file)
    }

    #[test]
    fn endpoints_take_ip_literals_and_host_names() -> Result<()> {
        let e: Endpoint = "127.0.0.1:7000@17000".parse()?;
        assert_eq!(e.bus.literal(), Some("127.0.0.1:17000".parse()?));
        let e: Endpoint = "[::1]:7000@17000".parse()?;
        assert_eq!(e.client.literal(), Some("[::1]:7000".parse()?));
        let e: Endpoint = "sg-0.SG.db.svc:6379@16379".parse()?;
        assert_eq!(e.client.host, Host::Name("sg-0.sg.db.svc".into()));
        assert_eq!((e.client.port, e.bus.port), (6379, 16379));
        assert_eq!(e.bus.host, e.client.host);
        assert_eq!(e.bus.to_string(), "sg-0.sg.db.svc:16379");
        let e: Endpoint = "localhost:7000@10.0.0.1:17000".parse()?;
        assert_eq!(e.bus.literal(), Some("10.0.0.1:17000".parse()?));
        for bad in ["host_name:1@2", "a b:1@2", ":1@2", "h:port@2", "h:1"] {
            assert!(bad.parse::<Endpoint>().is_err(), "{bad} accepted");
        }
        Ok(())
    }

    #[test]
    fn client_limits_default_to_redis_and_the_file_overrides_them() -> Result<()> {
        let d = limits("")?;
        assert_eq!(d, ClientLimits::default());
        assert_eq!((d.maxclients, d.timeout_secs), (10_000, 0));
        assert_eq!(d.max_bulk_len, 536_870_912);
        let l = limits(
            "maxclients = 3\ntimeout = 7\nproto_max_bulk_len = 10\nquery_buffer_total = 99",
        )?;
        let err =
            limits("proto_max_bulk_len = 100\nquery_buffer_total = 100").expect_err("refused");
        assert!(
            err.to_string().contains("query_buffer_total (100)"),
            "{err}"
        );
        assert_eq!((l.maxclients, l.timeout_secs), (3, 7));
        assert_eq!((l.max_bulk_len, l.query_buffer_total), (10, 99));
        assert_eq!(l.query_buffer, d.query_buffer);
        let err = limits("maxclients = 0").expect_err("refused");
        assert!(err.to_string().contains("maxclients"), "{err}");
        Ok(())
    }
}
