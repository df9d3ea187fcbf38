//! `slotguard cluster`: a local cluster on loopback in one command — generated configuration
//! and key in a directory, one `slotguard node` child process per node, a wait until every node
//! reports the same slot map, and a clean stop on Ctrl-C.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Args;
use redis_protocol::resp2::decode::decode;
use redis_protocol::resp2::types::OwnedFrame;

/// Arguments of `slotguard cluster`.
#[derive(Args, Debug)]
pub(crate) struct ClusterArgs {
    /// Masters (at least one).
    #[arg(long, default_value_t = 3,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    masters: usize,
    /// Replicas per master.
    #[arg(long, default_value_t = 1)]
    replicas: usize,
    /// Client port of node 0; node i uses base+i, and its cluster bus base+10000+i.
    #[arg(long, default_value_t = 7000, value_parser = clap::value_parser!(u16).range(1024..))]
    base_port: u16,
    /// Directory for configuration, key, state files and logs (default: a new temporary one).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// cluster-node-timeout in milliseconds.
    #[arg(long, default_value_t = 2000)]
    node_timeout: u64,
    /// Serve a live view of the cluster (node cards refreshed from the nodes) on this port of
    /// 127.0.0.1; 0 picks a free one. The URL is printed once the cluster is ready.
    #[arg(long)]
    ui_port: Option<u16>,
    /// Every node records a trace (`node --trace`) in this directory, as `node-<i>.trace`,
    /// for `slotguard validate DIR` (specs/protocol.md §12).
    #[arg(long, value_name = "DIR")]
    trace: Option<PathBuf>,
    /// When a write is acknowledged: `async` (once applied, as Redis) or `sync` (once every
    /// other node of its shard has it; specs/protocol.md §13).
    #[arg(long, default_value = "async", value_parser = ["async", "sync"])]
    durability: String,
}

/// Hash slots of the clusters this command makes (the node's default, `slots` unset).
const SLOTS: usize = 16384;

/// Sends one command to a RESP port and returns the reply.
pub(crate) fn resp_command(port: u16, args: &[&str]) -> Result<OwnedFrame> {
    resp_command_within(port, args, Duration::from_secs(5))
}

/// Sends one command to a RESP port of 127.0.0.1 and returns the reply; connecting, sending
/// and each read may each take up to `within`.
pub(crate) fn resp_command_within(
    port: u16,
    args: &[&str],
    within: Duration,
) -> Result<OwnedFrame> {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let mut stream = TcpStream::connect_timeout(&addr, within)?;
    stream.set_read_timeout(Some(within))?;
    stream.set_write_timeout(Some(within))?;
    let mut req = format!("*{}\r\n", args.len());
    for a in args {
        req.push_str(&format!("${}\r\n{a}\r\n", a.len()));
    }
    stream.write_all(req.as_bytes())?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        if let Some((frame, _)) = decode(&buf).map_err(|e| anyhow::anyhow!("{}", e.details()))? {
            return Ok(frame);
        }
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            bail!("connection closed");
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// `(owner id, slot ranges)` of the masters that serve slots, as one node reports them.
fn slot_map(port: u16) -> Result<Vec<(String, String)>> {
    let OwnedFrame::BulkString(text) = resp_command(port, &["CLUSTER", "NODES"])? else {
        bail!("unexpected reply");
    };
    let text = String::from_utf8_lossy(&text).into_owned();
    let mut map: Vec<(String, String)> = text
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            (f.len() > 8).then(|| (f[0].to_string(), f[8..].join(" ")))
        })
        .collect();
    map.sort();
    Ok(map)
}

/// A fresh cluster key: 32 bytes from the operating system's CSPRNG, in hex.
fn random_key() -> Result<String> {
    let mut key = [0u8; 32];
    getrandom::fill(&mut key).map_err(|e| anyhow::anyhow!("no randomness for the key: {e}"))?;
    Ok(key.iter().map(|b| format!("{b:02x}")).collect())
}

/// The node processes, by id; `None` once a child is reaped, so that its PID, which the OS may
/// have given to another process since, is never signalled.
struct Children(Vec<Option<Child>>);

impl Children {
    /// Reaps the children that have exited: `(id, status)` of each, once.
    fn reap(&mut self) -> Vec<(usize, std::process::ExitStatus)> {
        let mut exited = Vec::new();
        for (i, slot) in self.0.iter_mut().enumerate() {
            let status = slot.as_mut().and_then(|c| c.try_wait().ok().flatten());
            if let Some(status) = status {
                *slot = None;
                exited.push((i, status));
            }
        }
        exited
    }
}

impl Drop for Children {
    fn drop(&mut self) {
        for c in self.0.iter().flatten() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(c.id().to_string())
                .status();
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        for c in self.0.iter_mut().flatten() {
            while Instant::now() < deadline {
                if let Ok(Some(_)) = c.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Fails, naming the port, if a client (TCP) or bus (UDP) port of the cluster is taken: a
/// node that cannot bind would otherwise only fail after every other node was started.
fn check_ports_free(base: u16, n: usize) -> Result<()> {
    for i in 0..n {
        let client = base + i as u16;
        let bus = client + 10000;
        if let Err(e) = std::net::TcpListener::bind(("127.0.0.1", client)) {
            bail!("port {client} (client port of node {i}) is not free: {e}");
        }
        if let Err(e) = std::net::UdpSocket::bind(("127.0.0.1", bus)) {
            bail!("port {bus} (cluster bus port of node {i}, UDP) is not free: {e}");
        }
    }
    Ok(())
}

/// Writes the configuration of every node into `dir`.
fn write_configs(args: &ClusterArgs, dir: &Path) -> Result<usize> {
    let n = args.masters * (1 + args.replicas);
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let key = dir.join("cluster.key");
    if !key.exists() {
        std::fs::write(&key, random_key()?)?;
    }
    let nodes: Vec<String> = (0..n)
        .map(|i| {
            let port = usize::from(args.base_port) + i;
            format!("\"127.0.0.1:{port}@{}\"", port + 10000)
        })
        .collect();
    for i in 0..n {
        let text = format!(
            "id = {i}\nmasters = {}\nreplicas = {}\nnode_timeout_ms = {}\ndurability = \"{}\"\ndata_dir = \"{}\"\ncluster_key_file = \"{}\"\nnodes = [{}]\n",
            args.masters,
            args.replicas,
            args.node_timeout,
            args.durability,
            dir.join(format!("n{i}")).display(),
            key.display(),
            nodes.join(", ")
        );
        std::fs::write(dir.join(format!("node-{i}.toml")), text)?;
    }
    Ok(n)
}

/// Runs `slotguard cluster`.
pub(crate) fn run(args: &ClusterArgs) -> Result<()> {
    if usize::from(args.base_port) + args.masters * (1 + args.replicas) + 10000 > 65535 {
        bail!(
            "--base-port {} leaves no room for the bus ports (base+10000+i)",
            args.base_port
        );
    }
    if args.durability == "sync" && args.replicas == 0 {
        bail!("--durability sync needs --replicas 1 or more: a write is acknowledged once the other nodes of its shard have it");
    }
    let dir = args.dir.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("slotguard-cluster-{}", std::process::id()))
    });
    check_ports_free(args.base_port, args.masters * (1 + args.replicas))?;
    if let Some(port) = args.ui_port.filter(|&p| p != 0) {
        if let Err(e) = std::net::TcpListener::bind(("127.0.0.1", port)) {
            bail!("--ui-port {port} is not free: {e}");
        }
    }
    let n = write_configs(args, &dir)?;
    let exe = std::env::current_exe().context("cannot find the slotguard binary")?;
    let mut children = Children(Vec::new());
    for i in 0..n {
        // Appended to: a rerun in the same directory keeps the last run's log.
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join(format!("node-{i}.log")))?;
        let mut command = Command::new(&exe);
        command
            .arg("node")
            .arg("--config")
            .arg(dir.join(format!("node-{i}.toml")));
        if let Some(traces) = &args.trace {
            std::fs::create_dir_all(traces)
                .with_context(|| format!("cannot create {}", traces.display()))?;
            command
                .arg("--trace")
                .arg(traces.join(format!("node-{i}.trace")));
        }
        let child = command
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("cannot start a node")?;
        children.0.push(Some(child));
    }
    eprintln!("started {n} nodes in {} (logs: node-*.log)", dir.display());
    let ports: Vec<u16> = (0..n).map(|i| args.base_port + i as u16).collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some((i, status)) = children.reap().first() {
            bail!(
                "node {i} exited ({status}); see {}",
                dir.join(format!("node-{i}.log")).display()
            );
        }
        let maps: Vec<_> = ports.iter().map(|&p| slot_map(p).ok()).collect();
        if maps.iter().all(|m| m.is_some()) && maps.windows(2).all(|w| w[0] == w[1]) {
            break;
        }
        if Instant::now() > deadline {
            bail!("the nodes did not agree on the slot map within 60 s");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    println!("cluster ready: {n} nodes agree on the slot map");
    println!("  redis-cli -p {} cluster nodes", args.base_port);
    println!("  redis-cli -p {} cluster slots", args.base_port);
    if let Some(port) = args.ui_port {
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        let subtitle = format!(
            "{} master{}, {} replica{} each, client ports {}-{}, node timeout {} ms; logs in {}",
            args.masters,
            if args.masters == 1 { "" } else { "s" },
            args.replicas,
            if args.replicas == 1 { "" } else { "s" },
            args.base_port,
            args.base_port + (n - 1) as u16,
            args.node_timeout,
            dir.display()
        );
        let served = crate::live::serve(addr, ports.clone(), SLOTS, subtitle)?;
        println!("  live view: http://{served}/");
    }
    println!("press Ctrl-C to stop every node");
    let (tx, rx) = std::sync::mpsc::channel();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    std::thread::spawn(move || {
        runtime.block_on(crate::node_cmd::shutdown_signal());
        let _ = tx.send(());
    });
    loop {
        if rx.recv_timeout(Duration::from_millis(500)).is_ok() {
            break;
        }
        for (i, status) in children.reap() {
            eprintln!("node {i} exited ({status})");
        }
    }
    eprintln!("stopping {n} nodes");
    drop(children);
    Ok(())
}
