//! End-to-end tests of real `slotguard node` processes on loopback: agreement, failover after
//! `kill -9`, rejoin after restart, hostile datagrams, a corrupt state file, and `redis-cli`.
//!
//! Every wait polls with a generous deadline; nothing asserts how long anything took.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use slotguard::data::keyslot::key_slot;
use slotguard::wire;

const KEY: &str = "slotguard-e2e-test-key-0123456789";
const DEADLINE: Duration = Duration::from_secs(90);

/// A cluster of node processes in a temporary directory.
struct Cluster {
    dir: PathBuf,
    base: u16,
    masters: usize,
    replicas: usize,
    children: Vec<Option<Child>>,
    /// Lines appended to every node's configuration.
    extra: String,
    /// The host every node is listed under in `nodes`.
    host: &'static str,
    /// Hosts of particular nodes, instead of `host`.
    hosts: BTreeMap<usize, &'static str>,
}

fn unique_base(slot: u16) -> u16 {
    // Ports base..base+n for clients and base+10000.. for the bus; distinct per test and run.
    21000 + ((std::process::id() as u16 % 200) * 20 + slot * 7) % 4000
}

impl Cluster {
    fn new(name: &str, masters: usize, replicas: usize, slot: u16) -> Cluster {
        let dir = std::env::temp_dir().join(format!("slotguard-e2e-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("test dir");
        std::fs::write(dir.join("cluster.key"), KEY).expect("key");
        let n = masters * (1 + replicas);
        Cluster {
            dir,
            base: unique_base(slot),
            masters,
            replicas,
            children: (0..n).map(|_| None).collect(),
            extra: String::new(),
            host: "127.0.0.1",
            hosts: BTreeMap::new(),
        }
    }

    /// The same cluster with `lines` added to every node's configuration.
    fn with_config(mut self, lines: &str) -> Cluster {
        self.extra = lines.to_string();
        self
    }

    fn len(&self) -> usize {
        self.children.len()
    }

    fn port(&self, i: usize) -> u16 {
        self.base + i as u16
    }

    fn bus(&self, i: usize) -> u16 {
        self.base + 10000 + i as u16
    }

    fn config(&self, i: usize) -> PathBuf {
        let path = self.dir.join(format!("node-{i}.toml"));
        let nodes: Vec<String> = (0..self.len())
            .map(|j| {
                let host = self.hosts.get(&j).copied().unwrap_or(self.host);
                format!("\"{host}:{}@{}\"", self.port(j), self.bus(j))
            })
            .collect();
        let text = format!(
            "id = {i}\nmasters = {}\nreplicas = {}\nnode_timeout_ms = 1000\ndata_dir = \"{}\"\ncluster_key_file = \"{}\"\nnodes = [{}]\n{}\n",
            self.masters,
            self.replicas,
            self.dir.join(format!("n{i}")).display(),
            self.dir.join("cluster.key").display(),
            nodes.join(", "),
            self.extra
        );
        std::fs::write(&path, text).expect("config");
        path
    }

    fn start(&mut self, i: usize) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join(format!("node-{i}.log")))
            .expect("log");
        let traces = self.dir.join("traces");
        std::fs::create_dir_all(&traces).expect("trace dir");
        let child = Command::new(env!("CARGO_BIN_EXE_slotguard"))
            .arg("node")
            .arg("--config")
            .arg(self.config(i))
            .arg("--trace")
            .arg(traces.join(format!("node-{i}.trace")))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("node starts");
        self.children[i] = Some(child);
    }

    /// Starts every node and waits until they agree on the slot map; returns their indexes.
    fn start_and_agree(&mut self) -> Vec<usize> {
        self.start_all();
        let all: Vec<usize> = (0..self.len()).collect();
        wait_until("the nodes agree", || agree(self, &all).is_some());
        all
    }

    fn start_all(&mut self) {
        for i in 0..self.len() {
            self.start(i);
        }
    }

    fn kill9(&mut self, i: usize) {
        if let Some(mut c) = self.children[i].take() {
            c.kill().expect("SIGKILL");
            c.wait().expect("reaped");
        }
    }

    /// Sends `signal` (`STOP`, `CONT`) to node `i`'s process.
    fn signal(&self, i: usize, signal: &str) {
        let pid = self.children[i].as_ref().expect("running").id();
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &pid.to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -{signal} {pid}");
    }

    fn live(&self) -> Vec<usize> {
        (0..self.len())
            .filter(|&i| self.children[i].is_some())
            .collect()
    }

    fn log(&self, i: usize) -> String {
        std::fs::read_to_string(self.dir.join(format!("node-{i}.log"))).unwrap_or_default()
    }
}

impl Drop for Cluster {
    /// Stops every node and validates their traces (specs/protocol.md §12): a test whose
    /// nodes' steps do not replay through the model, or whose global states break a property,
    /// fails. Removes the directory unless the test failed (its logs tell why).
    fn drop(&mut self) {
        for i in 0..self.len() {
            self.kill9(i);
        }
        if !std::thread::panicking() && self.dir.join("traces").is_dir() {
            let out = validate(&self.dir.join("traces"));
            if !out.status.success() {
                eprintln!("node logs, traces and state files: {}", self.dir.display());
                panic!(
                    "slotguard validate failed on the traces of this test:\n{}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
            }
        }
        if std::thread::panicking() {
            eprintln!("node logs and state files: {}", self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Runs `slotguard validate` on a directory of traces.
fn validate(dir: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_slotguard"))
        .arg("validate")
        .arg(dir)
        .output()
        .expect("slotguard validate runs")
}

/// One RESP request; the reply as text (bulk/simple strings) or a debug rendering.
fn resp(port: u16, args: &[&str]) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let mut req = format!("*{}\r\n", args.len());
    for a in args {
        req.push_str(&format!("${}\r\n{a}\r\n", a.len()));
    }
    s.write_all(req.as_bytes()).ok()?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 65536];
    loop {
        if let Ok(Some((frame, _))) = redis_protocol::resp2::decode::decode(&buf) {
            return Some(match frame {
                redis_protocol::resp2::types::OwnedFrame::BulkString(b)
                | redis_protocol::resp2::types::OwnedFrame::SimpleString(b) => {
                    String::from_utf8_lossy(&b).into_owned()
                }
                other => format!("{other:?}"),
            });
        }
        let n = s.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// A parsed CLUSTER NODES line.
#[derive(Clone, Debug, PartialEq, Eq)]
struct NodeLine {
    id: String,
    flags: String,
    master: String,
    epoch: u64,
    slots: String,
}

fn cluster_nodes(port: u16) -> Option<Vec<NodeLine>> {
    let text = resp(port, &["CLUSTER", "NODES"])?;
    text.lines()
        .map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            Some(NodeLine {
                id: f.first()?.to_string(),
                flags: f.get(2)?.to_string(),
                master: f.get(3)?.to_string(),
                epoch: f.get(6)?.parse().ok()?,
                slots: f.get(8..).map(|s| s.join(" ")).unwrap_or_default(),
            })
        })
        .collect()
}

/// `slots -> (owner, epoch)` as one node reports it.
fn slot_owners(lines: &[NodeLine]) -> BTreeMap<String, (String, u64)> {
    lines
        .iter()
        .filter(|l| !l.slots.is_empty())
        .flat_map(|l| {
            l.slots
                .split(' ')
                .map(|r| (r.to_string(), (l.id.clone(), l.epoch)))
                .collect::<Vec<_>>()
        })
        .collect()
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let end = Instant::now() + DEADLINE;
    while !f() {
        assert!(Instant::now() < end, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn agree(c: &Cluster, nodes: &[usize]) -> Option<BTreeMap<String, (String, u64)>> {
    let maps: Vec<_> = nodes
        .iter()
        .map(|&i| cluster_nodes(c.port(i)).map(|l| slot_owners(&l)))
        .collect::<Option<_>>()?;
    let first = maps.first()?.clone();
    (maps.iter().all(|m| *m == first) && first.len() == c.masters).then_some(first)
}

/// A node's name (`CLUSTER MYID`): random per node, chosen at creation.
fn myid(port: u16) -> String {
    resp(port, &["CLUSTER", "MYID"]).expect("CLUSTER MYID answers")
}

/// Samples every live node's CLUSTER NODES until stopped, and records any (slot range,
/// configEpoch) pair reported with two different owners.
fn sampler(
    c: &Cluster,
    live: Arc<Mutex<Vec<usize>>>,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<(usize, Vec<String>)> {
    let ports: Vec<u16> = (0..c.len()).map(|i| c.port(i)).collect();
    std::thread::spawn(move || {
        let mut seen: BTreeMap<(String, u64), String> = BTreeMap::new();
        let mut conflicts = Vec::new();
        let mut samples = 0;
        while !stop.load(Ordering::Relaxed) {
            let nodes = live.lock().map(|l| l.clone()).unwrap_or_default();
            for i in nodes {
                let Some(lines) = cluster_nodes(ports[i]) else {
                    continue;
                };
                samples += 1;
                for (range, (owner, epoch)) in slot_owners(&lines) {
                    let prev = seen
                        .entry((range.clone(), epoch))
                        .or_insert_with(|| owner.clone());
                    if *prev != owner {
                        conflicts.push(format!(
                            "{range} at epoch {epoch}: {prev} and {owner} (from n{i})"
                        ));
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        (samples, conflicts)
    })
}

#[test]
fn kill_a_master_a_replica_takes_over_and_the_old_master_rejoins_as_its_replica() {
    let mut c = Cluster::new("failover", 3, 1, 0);
    c.start_all();
    let all: Vec<usize> = (0..c.len()).collect();
    wait_until("all six nodes agree on the slot map", || {
        agree(&c, &all).is_some()
    });
    let before = agree(&c, &all).expect("agreed");
    let n3 = myid(c.port(3));
    let max_epoch = before.values().map(|(_, e)| *e).max().unwrap_or(0);

    let live = Arc::new(Mutex::new(all.clone()));
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = sampler(&c, Arc::clone(&live), Arc::clone(&stop));

    // kill -9 master n0; its replica is n3 (masters 0..3, replicas 3..6, replica i of master i-3).
    if let Ok(mut l) = live.lock() {
        l.retain(|&i| i != 0);
    }
    c.kill9(0);
    let survivors = c.live();
    wait_until(
        "every live node binds n0's slots to n3 at a higher configEpoch",
        || {
            agree(&c, &survivors).is_some_and(|m| {
                m.values()
                    .any(|(owner, epoch)| *owner == n3 && *epoch > max_epoch)
            })
        },
    );
    let lines = cluster_nodes(c.port(3)).expect("n3 answers");
    let me = lines
        .iter()
        .find(|l| l.flags.contains("myself"))
        .expect("myself");
    assert!(me.flags.contains("master"), "{me:?}");

    // Restart n0: it recovers from its state file and follows the winner.
    c.start(0);
    if let Ok(mut l) = live.lock() {
        l.push(0);
    }
    wait_until("n0 rejoins as a replica of n3", || {
        cluster_nodes(c.port(0)).is_some_and(|lines| {
            lines
                .iter()
                .any(|l| l.flags.contains("myself") && l.flags.contains("slave") && l.master == n3)
        })
    });
    let all = c.live();
    wait_until("all six nodes agree again", || agree(&c, &all).is_some());
    let info = resp(c.port(0), &["CLUSTER", "INFO"]).expect("info");
    assert!(
        info.contains("slotguard_incarnation:1"),
        "n0 restarted from its state file: {info}"
    );
    // Its epochs came back from disk: the restart logged the recovered currentEpoch, which was 3
    // (three masters created with configEpochs 1..3) when it was killed.
    assert!(
        c.log(0)
            .lines()
            .any(|l| l.contains("recovered state") && l.contains("current_epoch=3")),
        "{}",
        c.log(0)
    );
    assert!(c.log(3).contains("role: now MASTER"));
    // Logs name nodes as CLUSTER NODES does (first 8 hex digits of the name, then the index),
    // a master says when it votes, and roles never print as Rust debug.
    let candidate = format!("vote granted candidate={}(n3)", &n3[..8]);
    assert!(
        [1, 2].iter().any(|&i| c.log(i).contains(&candidate)),
        "{}",
        c.log(1)
    );
    for i in 0..c.len() {
        assert!(!c.log(i).contains("Replica {"), "{}", c.log(i));
    }

    stop.store(true, Ordering::Relaxed);
    let (samples, conflicts) = watcher.join().expect("sampler");
    assert!(samples > 10, "the sampler saw the cluster");
    assert!(
        conflicts.is_empty(),
        "two owners for one slot and epoch: {conflicts:?}"
    );
}

#[test]
fn validate_accepts_the_traces_and_names_a_tampered_step() {
    let mut c = Cluster::new("tamper", 3, 0, 14);
    c.start_and_agree();
    std::thread::sleep(Duration::from_millis(500));
    for i in 0..c.len() {
        c.kill9(i);
    }
    let traces = c.dir.join("traces");
    let out = validate(&traces);
    let report = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{report}");
    assert!(report.contains("RESULT: VALID"), "{report}");
    // A copy of the traces in which one step of n1 records another state digest.
    let copy = c.dir.join("tampered");
    std::fs::create_dir_all(&copy).expect("dir");
    for i in 0..c.len() {
        let name = format!("node-{i}.trace");
        std::fs::copy(traces.join(&name), copy.join(&name)).expect("copy");
    }
    let text = std::fs::read_to_string(copy.join("node-1.trace")).expect("trace");
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    let (i, line) = lines
        .iter()
        .enumerate()
        .skip(10)
        .find(|(_, l)| l.starts_with("{\"step\""))
        .expect("a step");
    let at = line.find("\"digest\":\"").expect("a digest") + 10;
    let mut tampered = line.clone();
    let flipped = if &tampered[at..at + 1] == "0" {
        "1"
    } else {
        "0"
    };
    tampered.replace_range(at..at + 1, flipped);
    lines[i] = tampered;
    std::fs::write(copy.join("node-1.trace"), lines.join("\n") + "\n").expect("write");
    let out = validate(&copy);
    let report = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(1), "{report}");
    assert!(report.contains("DIVERGENCE"), "{report}");
    assert!(
        report.contains(&format!("node-1.trace:{}", i + 1)),
        "the report names the tampered line {}: {report}",
        i + 1
    );
}

/// The bus key of the 3-master, replica-less cluster the hostile test forges datagrams for.
fn bus_key(key: &[u8]) -> wire::BusKey {
    let layout = slotguard_protocol::layout::Layout::grid(
        3,
        0,
        16384,
        slotguard_protocol::layout::InitialEpochs::Distinct,
    )
    .expect("layout");
    wire::BusKey::new(key, &layout)
}

/// Where a forged datagram goes and with which stamp; the sender's name is a fixed test name.
fn forged((sender, destination): (u16, u16), incarnation: u32, sequence: u64) -> wire::Address {
    wire::Address {
        sender,
        name: [0x42; 20],
        destination,
        incarnation,
        sequence,
    }
}

/// A datagram sealed as a node of that cluster seals it (the node's own wire code).
fn seal(
    key: &[u8],
    route: (u16, u16),
    incarnation: u32,
    sequence: u64,
    msgs: &[slotguard_protocol::Msg],
) -> Vec<u8> {
    wire::seal(&bus_key(key), forged(route, incarnation, sequence), msgs).expect("seals")
}

fn counter(port: u16, name: &str) -> u64 {
    resp(port, &["CLUSTER", "INFO"])
        .and_then(|info| {
            info.lines().find_map(|l| {
                l.strip_prefix(&format!("slotguard_{name}:"))
                    .map(|v| v.trim().to_string())
            })
        })
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Every node's CLUSTER NODES ids, in line order.
fn ids_seen_by(port: u16) -> Option<Vec<String>> {
    cluster_nodes(port).map(|lines| lines.into_iter().map(|l| l.id).collect())
}

#[test]
fn nodes_have_random_persistent_names_that_every_peer_learns() {
    let mut c = Cluster::new("names", 3, 0, 16);
    let all = c.start_and_agree();
    let names: Vec<String> = all.iter().map(|&i| myid(c.port(i))).collect();
    for n in &names {
        assert!(
            n.len() == 40 && n.bytes().all(|b| b.is_ascii_hexdigit()),
            "{n}"
        );
        assert!(!n.starts_with("00000000"), "not an index: {n}");
    }
    assert!(names[0] != names[1] && names[1] != names[2] && names[0] != names[2]);
    wait_until("every node shows every other by its name", || {
        all.iter()
            .all(|&i| ids_seen_by(c.port(i)).as_ref() == Some(&names))
    });
    // ping-sent / pong-recv come from the node's clock: a PONG arrived within the last minute.
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as u64;
    let text = resp(c.port(0), &["CLUSTER", "NODES"]).expect("nodes");
    let peer = text
        .lines()
        .find(|l| !l.contains("myself"))
        .expect("a peer");
    let pong: u64 = peer
        .split(' ')
        .nth(5)
        .and_then(|v| v.parse().ok())
        .expect("pong-recv");
    assert!(pong + 60_000 > now_ms && pong <= now_ms + 1000, "{peer}");
    let run_id = |port| {
        resp(port, &["INFO"])
            .and_then(|i| {
                i.lines()
                    .find_map(|l| l.strip_prefix("run_id:").map(str::to_string))
            })
            .expect("run_id")
    };
    let first_run = run_id(c.port(1));
    assert_ne!(first_run, names[1], "run_id is not the node's name");
    // A restart keeps the name (state file) and draws a new run id.
    c.kill9(1);
    c.start(1);
    wait_until("n1 answers again", || resp(c.port(1), &["PING"]).is_some());
    assert_eq!(myid(c.port(1)), names[1]);
    assert_ne!(run_id(c.port(1)), first_run);
    // Another cluster's nodes get other names.
    let mut other = Cluster::new("names-other", 3, 0, 17);
    other.start(0);
    wait_until("the other node answers", || {
        resp(other.port(0), &["PING"]).is_some()
    });
    assert!(!names.contains(&myid(other.port(0))));
}

#[test]
fn a_state_file_without_a_name_loads_and_the_node_is_named_and_says_so() {
    let mut c = Cluster::new("format2", 3, 0, 18);
    let layout =
        slotguard_protocol::Layout::grid(3, 0, 16384, slotguard_protocol::InitialEpochs::Distinct)
            .expect("layout");
    let persisted =
        slotguard_protocol::NodeState::fresh(&layout, slotguard_protocol::NodeId(0)).persisted();
    let payload = postcard::to_allocvec(&(2u32, &persisted)).expect("encodes");
    let mut bytes = b"SLOTGUARD-STATE 2\n".to_vec();
    bytes.extend_from_slice(&crc32fast::hash(&payload).to_be_bytes());
    bytes.extend_from_slice(&payload);
    std::fs::create_dir_all(c.dir.join("n0")).expect("dir");
    let file = c.dir.join("n0").join("node-0.state");
    std::fs::write(&file, bytes).expect("format 2 file");
    c.start(0);
    wait_until("n0 answers", || resp(c.port(0), &["PING"]).is_some());
    let name = myid(c.port(0));
    assert_eq!(name.len(), 40);
    let log = c.log(0);
    assert!(
        log.contains("state file has no node name") && log.contains(&name),
        "{log}"
    );
    let info = resp(c.port(0), &["CLUSTER", "INFO"]).expect("info");
    assert!(info.contains("slotguard_incarnation:3"), "{info}");
    let saved = std::fs::read(&file).expect("state file");
    assert!(
        saved.starts_with(b"SLOTGUARD-STATE 3\n"),
        "saved in the new format"
    );
    c.kill9(0);
    c.start(0);
    wait_until("n0 answers again", || resp(c.port(0), &["PING"]).is_some());
    assert_eq!(
        myid(c.port(0)),
        name,
        "the name given at the upgrade is kept"
    );
}

/// `GET path` over HTTP/1.0: the status line and the body.
fn http_get(port: u16, path: &str) -> Option<(String, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    Some((head.lines().next()?.to_string(), body.to_string()))
}

/// A sample's value in Prometheus text: the line starting with `series` (name and labels).
fn metric(body: &str, series: &str) -> Option<f64> {
    body.lines()
        .find_map(|l| l.strip_prefix(series))
        .and_then(|v| v.trim().parse().ok())
}

#[test]
fn metrics_are_served_for_prometheus_when_a_port_is_configured() {
    let metrics_port = unique_base(19) + 5000;
    let c = one_node("metrics", 19, &format!("metrics_port = {metrics_port}"));
    let sent = "slotguard_datagrams_total{event=\"datagrams_sent\"}";
    let pfail = "slotguard_peers{health=\"pfail\"}";
    wait_until(
        "the scrape shows datagrams sent and both silent peers suspected",
        || {
            http_get(metrics_port, "/metrics").is_some_and(|(status, body)| {
                status.contains("200")
                    && metric(&body, sent).is_some_and(|v| v >= 1.0)
                    && metric(&body, pfail) == Some(2.0)
            })
        },
    );
    let (_, body) = http_get(metrics_port, "/metrics").expect("scrape");
    assert_eq!(metric(&body, "slotguard_is_master "), Some(1.0), "{body}");
    assert!(
        metric(&body, "slotguard_uptime_seconds ").is_some(),
        "{body}"
    );
    assert!(
        metric(&body, "slotguard_connected_clients ").is_some(),
        "{body}"
    );
    let (status, _) = http_get(metrics_port, "/").expect("answers");
    assert!(status.contains("404"), "{status}");
    // Half-sent requests hold at most a bounded number of connections, each for a bounded
    // time, and cost no thread each: the node keeps its few threads, and a scrape gets through.
    let pid = c.children[0].as_ref().expect("running").id();
    let stalled: Vec<TcpStream> = (0..24)
        .map(|_| {
            let mut s = TcpStream::connect(("127.0.0.1", metrics_port)).expect("connect");
            let _ = s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n");
            s
        })
        .collect();
    let threads = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .expect("status")
        .lines()
        .find_map(|l| l.strip_prefix("Threads:").map(|v| v.trim().parse::<u32>()))
        .expect("Threads line")
        .expect("a number");
    assert!(threads < 20, "{threads} threads");
    wait_until("a scrape gets through the stalled requests", || {
        http_get(metrics_port, "/metrics").is_some_and(|(status, _)| status.contains("200"))
    });
    drop(stalled);
    drop(c);
    // Off by default: a node without metrics_port listens on no such port.
    let plain = one_node("no-metrics", 20, "");
    assert!(TcpStream::connect(("127.0.0.1", unique_base(20) + 5000)).is_err());
    drop(plain);
}

#[test]
fn nodes_listed_by_host_name_resolve_each_other_and_agree() {
    let mut c = Cluster::new("hostnames", 3, 0, 21);
    c.host = "localhost";
    c.start_all();
    let all: Vec<usize> = (0..c.len()).collect();
    wait_until("the nodes, listed as localhost, agree", || {
        agree(&c, &all).is_some()
    });
    let names: Vec<String> = all.iter().map(|&i| myid(c.port(i))).collect();
    wait_until("every node knows every other's name", || {
        all.iter()
            .all(|&i| ids_seen_by(c.port(i)).as_ref() == Some(&names))
    });
    let text = resp(c.port(0), &["CLUSTER", "NODES"]).expect("nodes");
    let want = format!("127.0.0.1:{}@{},localhost ", c.port(1), c.bus(1));
    assert!(
        text.contains(&want),
        "the resolved IP, then the name: {text}"
    );
    assert!(c.log(0).contains("bus address resolved"), "{}", c.log(0));
    assert_eq!(counter(c.port(0), "bad_mac"), 0);
}

#[test]
fn a_name_that_does_not_resolve_holds_up_nothing_and_is_counted() {
    let mut c = Cluster::new("unresolvable", 3, 0, 22);
    c.host = "localhost";
    // RFC 6761: names under .invalid never resolve.
    c.hosts.insert(2, "slotguard-missing.invalid");
    c.start(0);
    c.start(1);
    wait_until("n0 and n1 learn each other's names", || {
        [0, 1].iter().all(|&i| {
            cluster_nodes(c.port(i))
                .is_some_and(|l| l.iter().filter(|l| !l.flags.contains("handshake")).count() == 2)
        })
    });
    wait_until("datagrams for n2 are counted, not sent", || {
        counter(c.port(0), "unresolved") >= 1
    });
    let text = resp(c.port(0), &["CLUSTER", "NODES"]).expect("nodes");
    let n2 = format!(
        "slotguard-missing.invalid:{}@{},slotguard-missing.invalid ",
        c.port(2),
        c.bus(2)
    );
    assert!(text.contains(&n2), "{text}");
    assert_eq!(resp(c.port(0), &["PING"]).as_deref(), Some("PONG"));
}

#[test]
fn hostile_datagrams_are_dropped_and_counted_and_change_nothing() {
    let mut c = Cluster::new("hostile", 3, 0, 1);
    let all = c.start_and_agree();
    let target = format!("127.0.0.1:{}", c.bus(0));
    let sock = UdpSocket::bind("127.0.0.1:0").expect("udp");
    let fail_n1 = [slotguard_protocol::Msg::Fail {
        node: slotguard_protocol::NodeId(1),
    }];
    // Garbage, a truncated datagram, one under the wrong key, and a replay of an old one.
    sock.send_to(&[7u8; 100], &target).expect("send");
    sock.send_to(&[2u8, 0, 1], &target).expect("send");
    sock.send_to(
        &seal(b"not-the-cluster-key-at-all", (1, 0), 0, 1 << 40, &fail_n1),
        &target,
    )
    .expect("send");
    sock.send_to(&seal(KEY.as_bytes(), (1, 0), 0, 1, &fail_n1), &target)
        .expect("send");
    // An authentic datagram from node 2 to node 1, captured and sent to node 0.
    let to_n1 = seal(KEY.as_bytes(), (2, 1), 0, 1 << 42, &fail_n1);
    sock.send_to(&to_n1, &target).expect("send");
    // An authentic datagram whose payload does not decode.
    let junk = wire::seal_payload(
        &bus_key(KEY.as_bytes()),
        forged((2, 0), 0, 1 << 41),
        &[0xff; 9],
    );
    sock.send_to(&junk, &target).expect("send");
    // A real node's datagram under a forged name: the tag covers the name.
    let mut renamed = seal(KEY.as_bytes(), (1, 0), 0, 1 << 43, &fail_n1);
    renamed[3] ^= 1;
    sock.send_to(&renamed, &target).expect("send");
    let port = c.port(0);
    wait_until("every kind of drop is counted", || {
        counter(port, "bad_version") >= 1
            && counter(port, "truncated") >= 1
            && counter(port, "bad_mac") >= 2
            && counter(port, "replayed_or_stale") >= 1
            && counter(port, "undecodable") >= 1
            && counter(port, "misdirected") >= 1
    });
    assert_eq!(resp(port, &["PING"]).as_deref(), Some("PONG"));
    let lines = cluster_nodes(port).expect("answers");
    assert!(
        lines.iter().all(|l| !l.flags.contains("fail")),
        "nothing was marked FAIL: {lines:?}"
    );
    assert!(agree(&c, &all).is_some(), "the cluster still agrees");
}

#[test]
fn bad_resp_gets_an_error_and_the_connection_lives() {
    let mut c = Cluster::new("resp", 3, 0, 2);
    c.start(0);
    let port = c.port(0);
    wait_until("n0 answers", || resp(port, &["PING"]).is_some());
    let too_many = resp(port, &["PING", "a", "b"]).expect("answers");
    assert!(
        too_many.contains("wrong number of arguments for 'ping' command"),
        "{too_many}"
    );
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    s.write_all(b"*1\r\n$4\r\nNOPE\r\n").expect("write");
    s.write_all(b"$x\r\n").expect("write");
    s.write_all(b"*1\r\n$4\r\nPING\r\n").expect("write");
    let mut got = String::new();
    let mut buf = [0u8; 1024];
    let end = Instant::now() + DEADLINE;
    while !got.contains("+PONG") && Instant::now() < end {
        let n = s.read(&mut buf).expect("read");
        got.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    assert!(got.starts_with("-ERR unknown command"), "{got}");
    assert!(got.contains("-ERR Protocol error"), "{got}");
    assert!(got.ends_with("+PONG\r\n"), "{got}");
    // ECHO and PING return bytes that are not UTF-8 as they came (`redis-cli --pipe` checks
    // the ECHO of 20 random bytes it ends its input with).
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    s.write_all(
        b"*2\r\n$4\r\nECHO\r\n$4\r\n\xe8\xd9A\x80\r\n*2\r\n$4\r\nPING\r\n$2\r\n\xff\x00\r\n",
    )
    .expect("write");
    let want: &[u8] = b"$4\r\n\xe8\xd9A\x80\r\n$2\r\n\xff\x00\r\n";
    let mut got = Vec::new();
    while got.len() < want.len() && Instant::now() < end {
        let n = s.read(&mut buf).expect("read");
        got.extend_from_slice(&buf[..n]);
    }
    assert_eq!(got, want, "{}", String::from_utf8_lossy(&got));
}

#[test]
fn a_corrupt_state_file_stops_start_up_with_its_name() {
    let c = Cluster::new("corrupt", 3, 0, 3);
    let data = c.dir.join("n0");
    std::fs::create_dir_all(&data).expect("dir");
    let file = data.join("node-0.state");
    std::fs::write(&file, b"SLOTGUARD-STATE 2\n\x00\x00\x00\x00garbage").expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_slotguard"))
        .arg("node")
        .arg("--config")
        .arg(c.config(0))
        .output()
        .expect("runs");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&file.display().to_string()), "{err}");
    assert!(err.contains("corrupt"), "{err}");
    assert_eq!(
        std::fs::read(&file).expect("kept"),
        b"SLOTGUARD-STATE 2\n\x00\x00\x00\x00garbage"
    );
}

/// A state file written by a node of another layout (3 masters) stops start-up of a node of
/// 3 masters with a replica each, with a message naming the file, and stays as it was.
#[test]
fn a_state_file_of_another_layout_stops_start_up_with_its_name() {
    let mut small = Cluster::new("layout", 3, 0, 31);
    small.start(0);
    let file = small.dir.join("n0").join("node-0.state");
    wait_until("node 0 wrote its state file", || file.exists());
    small.kill9(0);
    let written = std::fs::read(&file).expect("state file");
    // The same data directory, configured as a node of a 3 x 1 cluster.
    let nodes: Vec<String> = (0..6)
        .map(|j| format!("\"127.0.0.1:{}@{}\"", small.port(j), small.bus(j)))
        .collect();
    let config = small.dir.join("node-0-larger.toml");
    let text = format!(
        "id = 0\nmasters = 3\nreplicas = 1\nnode_timeout_ms = 1000\ndata_dir = \"{}\"\ncluster_key_file = \"{}\"\nnodes = [{}]\n",
        small.dir.join("n0").display(),
        small.dir.join("cluster.key").display(),
        nodes.join(", ")
    );
    std::fs::write(&config, text).expect("config");
    let out = Command::new(env!("CARGO_BIN_EXE_slotguard"))
        .arg("node")
        .arg("--config")
        .arg(&config)
        .output()
        .expect("runs");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&file.display().to_string()), "{err}");
    assert!(err.contains("another layout"), "{err}");
    assert_eq!(std::fs::read(&file).expect("kept"), written);
}

fn redis_cli() -> Option<PathBuf> {
    let p = Path::new("/usr/bin/redis-cli");
    p.exists().then(|| p.to_path_buf())
}

#[test]
fn redis_cli_reads_cluster_nodes_and_slots() {
    let Some(cli) = redis_cli() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "redis-cli is not installed; .ci/run installs it"
        );
        eprintln!("SKIPPED: redis-cli is not installed (apt-get install redis-tools)");
        return;
    };
    let mut c = Cluster::new("rediscli", 3, 0, 4);
    c.start_and_agree();
    let run = |args: &[&str]| {
        let out = Command::new(&cli)
            .arg("-p")
            .arg(c.port(1).to_string())
            .args(args)
            .output()
            .expect("redis-cli runs");
        assert!(out.status.success());
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let nodes = run(&["cluster", "nodes"]);
    assert!(nodes.contains("myself,master"), "{nodes}");
    assert!(nodes.contains(" 0-5461"), "{nodes}");
    let slots = run(&["cluster", "slots"]);
    assert!(slots.contains("5461") && slots.contains("16383"), "{slots}");
    assert_eq!(run(&["ping"]).trim(), "PONG");
}

/// `slotguard cluster` starts every node, waits for agreement, says how to connect, and stops
/// every node when it is told to stop.
#[test]
fn the_local_cluster_command_starts_agrees_and_stops_everything() {
    use std::io::BufRead;
    let dir = std::env::temp_dir().join(format!("slotguard-e2e-cmd-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let base = unique_base(5);
    let mut child = Command::new(env!("CARGO_BIN_EXE_slotguard"))
        .args([
            "cluster",
            "--masters",
            "3",
            "--replicas",
            "1",
            "--node-timeout",
            "1000",
        ])
        .arg("--base-port")
        .arg(base.to_string())
        .arg("--dir")
        .arg(&dir)
        .arg("--trace")
        .arg(dir.join("traces"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("cluster starts");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = std::io::BufReader::new(stdout).lines();
    let ready = lines.next().and_then(Result::ok).unwrap_or_default();
    assert!(ready.starts_with("cluster ready: 6 nodes agree"), "{ready}");
    let hint = lines.next().and_then(Result::ok).unwrap_or_default();
    assert!(
        hint.contains(&format!("redis-cli -p {base} cluster nodes")),
        "{hint}"
    );
    let map = cluster_nodes(base).expect("node 0 answers");
    assert_eq!(map.len(), 6);
    Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .expect("kill");
    let status = child.wait().expect("exits");
    assert!(status.success(), "{status}");
    wait_until("every node stopped", || {
        (0..6).all(|i| TcpStream::connect(("127.0.0.1", base + i)).is_err())
    });
    for i in 0..6 {
        let log = std::fs::read_to_string(dir.join(format!("node-{i}.log"))).unwrap_or_default();
        assert!(
            log.contains("shutting down"),
            "node {i} stopped gracefully: {log}"
        );
    }
    let out = validate(&dir.join("traces"));
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{report}");
    assert!(
        report.contains("n5") && report.contains("RESULT: VALID"),
        "{report}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Whether missing tools must fail a test rather than skip it (CI sets `CI`).
fn in_ci() -> bool {
    std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "false")
}

/// Skips (or, in CI, fails) a test that needs `what`.
fn missing(what: &str, install: &str) {
    assert!(
        !in_ci(),
        "{what} is missing; .ci/run installs it ({install})"
    );
    eprintln!("SKIPPED: {what} is missing ({install})");
}

/// A connection to a node's client port, with a read timeout.
fn connect(port: u16) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    s
}

/// Everything the node sends until it closes the connection (panics on a read timeout).
fn read_to_close(s: &mut TcpStream) -> String {
    let mut got = Vec::new();
    s.read_to_end(&mut got)
        .expect("the node closes the connection");
    String::from_utf8_lossy(&got).into_owned()
}

/// Reads until `want` has arrived; everything read so far.
fn read_until(s: &mut TcpStream, want: &str) -> String {
    let mut got = String::new();
    let mut buf = [0u8; 4096];
    while !got.contains(want) {
        let n = s.read(&mut buf).expect("read");
        assert!(n > 0, "closed before {want:?}: {got:?}");
        got.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    got
}

/// One node of a 3-master layout, started and answering.
fn one_node(name: &str, slot: u16, config: &str) -> Cluster {
    let mut c = Cluster::new(name, 3, 0, slot).with_config(config);
    c.start(0);
    let port = c.port(0);
    wait_until("n0 answers", || resp(port, &["PING"]).is_some());
    c
}

/// Issue 21: ~7,700 nested arrays overflowed the stack of the recursive decoder and killed
/// the node. Now the request is refused on its second line and the node lives.
#[test]
fn a_deeply_nested_request_is_refused_and_the_node_lives() {
    let c = one_node("nested", 6, "");
    let port = c.port(0);
    let mut s = connect(port);
    let mut req = b"*1\r\n".repeat(7_700);
    req.extend_from_slice(b"$4\r\nPING\r\n");
    // The node may close before it has read everything: a failed write is fine.
    let _ = s.write_all(&req);
    let got = read_to_close(&mut s);
    assert_eq!(got, "-ERR Protocol error: expected '$', got '*'\r\n");
    assert_eq!(resp(port, &["PING"]).as_deref(), Some("PONG"), "alive");
}

/// A bulk length over `proto_max_bulk_len` is refused when its header arrives, not after the
/// data it announces.
#[test]
fn an_oversized_bulk_header_is_refused_at_once_and_closed() {
    let c = one_node("bulk", 7, "");
    let mut s = connect(c.port(0));
    s.write_all(b"*1\r\n$536870913\r\n").expect("write");
    let got = read_to_close(&mut s);
    assert_eq!(got, "-ERR Protocol error: invalid bulk length\r\n");
    // Within the limit, the node waits for the data instead.
    let mut s = connect(c.port(0));
    s.set_read_timeout(Some(Duration::from_millis(500)))
        .expect("timeout");
    s.write_all(b"*1\r\n$536870912\r\n").expect("write");
    let mut buf = [0u8; 64];
    let waiting = s.read(&mut buf).map_err(|e| e.kind());
    assert!(
        matches!(
            waiting,
            Err(std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut)
        ),
        "{waiting:?}"
    );
}

#[test]
fn maxclients_refuses_the_connection_past_the_limit() {
    let c = one_node("maxclients", 8, "maxclients = 2");
    let port = c.port(0);
    // Connections the test closed a moment ago may still count: retry until admitted.
    let end = Instant::now() + DEADLINE;
    let admit = || loop {
        assert!(Instant::now() < end, "never admitted");
        let mut s = connect(port);
        let _ = s.write_all(b"PING\r\n");
        let mut buf = [0u8; 64];
        if s.read(&mut buf)
            .is_ok_and(|n| buf[..n].starts_with(b"+PONG"))
        {
            return s;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut admitted = vec![admit(), admit()];
    let mut third = connect(port);
    assert_eq!(
        read_to_close(&mut third),
        "-ERR max number of clients reached\r\n"
    );
    // A place freed is a place to take.
    drop(admitted.pop());
    wait_until("a freed place is taken", || {
        resp(port, &["PING"]).as_deref() == Some("PONG")
    });
}

/// A node whose limit on open files is below `maxclients` lowers `maxclients` to fit, and says
/// so: client connections alone must never use up the descriptors the state file needs (they
/// once did, and the next save stopped the node).
#[test]
fn maxclients_fits_the_limit_on_open_files() {
    let c = Cluster::new("nofile", 3, 0, 33);
    let config = c.config(0);
    let log = c.dir.join("node-0.log");
    let child = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ulimit -n 200 && exec {} node --config {} 2>{}",
            env!("CARGO_BIN_EXE_slotguard"),
            config.display(),
            log.display()
        ))
        .spawn()
        .expect("sh runs");
    let mut guard = KillOnDrop(child);
    let port = c.port(0);
    wait_until("n0 answers", || resp(port, &["PING"]).is_some());
    assert_eq!(info_field(port, "maxclients"), Some(136));
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(text.contains("maxclients lowered"), "{text}");
    // Past the lowered limit, connections are refused and the node lives on.
    let held: Vec<TcpStream> = (0..140).map(|_| connect(port)).collect();
    let mut refused = connect(port);
    assert_eq!(
        read_to_close(&mut refused),
        "-ERR max number of clients reached\r\n"
    );
    drop(held);
    wait_until("n0 answers again", || {
        resp(port, &["PING"]).as_deref() == Some("PONG")
    });
    assert!(guard.0.try_wait().expect("status").is_none(), "n0 is alive");
}

/// Kills the child when the test ends, passed or not.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn an_idle_client_is_closed_after_timeout_seconds() {
    let c = one_node("idle", 9, "timeout = 1");
    let mut s = connect(c.port(0));
    s.write_all(b"PING\r\n").expect("write");
    read_until(&mut s, "+PONG\r\n");
    let start = Instant::now();
    assert_eq!(read_to_close(&mut s), "", "closed without a word");
    assert!(start.elapsed() >= Duration::from_millis(900));
}

/// The INFO line `name:value`.
fn info_field(port: u16, name: &str) -> Option<u64> {
    let info = resp(port, &["INFO"])?;
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}:")))
        .and_then(|v| v.trim().parse().ok())
}

#[test]
fn query_buffers_are_bounded_per_client_and_in_total() {
    let c = one_node(
        "qbuf",
        10,
        "proto_max_bulk_len = 40000\nclient_query_buffer_limit = 50000\nquery_buffer_total = 70000",
    );
    let port = c.port(0);
    // Bulk strings within proto_max_bulk_len, but a request of three of them is past the
    // client's own limit before it is complete.
    let bulk = |fill: u8, len: usize| {
        let mut b = b"$40000\r\n".to_vec();
        b.extend(std::iter::repeat_n(fill, len));
        if len == 40_000 {
            b.extend_from_slice(b"\r\n");
        }
        b
    };
    let mut s = connect(port);
    s.write_all(b"*3\r\n").expect("write");
    s.write_all(&bulk(b'a', 40_000)).expect("write");
    let _ = s.write_all(&bulk(b'a', 20_000));
    let got = read_to_close(&mut s);
    assert!(got.starts_with("-ERR query buffer limit reached"), "{got}");
    // Two clients within their own limit, past the total together.
    let mut a = connect(port);
    a.write_all(b"*2\r\n").expect("write");
    a.write_all(&bulk(b'a', 40_000)).expect("write");
    a.write_all(&bulk(b'a', 5_000)).expect("write");
    wait_until("the first client's bytes are held", || {
        info_field(port, "client_query_buffers_bytes").is_some_and(|b| b >= 45_000)
    });
    let mut b = connect(port);
    b.write_all(b"*1\r\n").expect("write");
    let _ = b.write_all(&bulk(b'b', 30_000));
    let got = read_to_close(&mut b);
    assert!(got.contains("query_buffer_total"), "{got}");
    drop(a);
    wait_until("a closed client's bytes are given back", || {
        info_field(port, "client_query_buffers_bytes") == Some(0)
    });
}

#[test]
fn hello_3_switches_to_resp3_and_every_counter_is_listed() {
    let c = one_node("hello", 11, "");
    let port = c.port(0);
    let mut s = connect(port);
    s.write_all(b"HELLO 3\r\nCLIENT GETNAME\r\nHELLO 2\r\nCLIENT GETNAME\r\n")
        .expect("write");
    let got = read_until(&mut s, "$-1\r\n");
    assert!(got.starts_with("%7\r\n$6\r\nserver\r\n"), "{got}");
    assert!(got.contains("$5\r\nproto\r\n:3\r\n"), "{got}");
    assert!(
        got.contains("_\r\n*14\r\n"),
        "RESP3 null, then a RESP2 array: {got}"
    );
    s.write_all(b"HELLO 4\r\nSELECT 1\r\nDBSIZE\r\n")
        .expect("write");
    let got = read_until(&mut s, ":0\r\n");
    assert_eq!(
        got,
        "-NOPROTO unsupported protocol version\r\n-ERR SELECT is not allowed in cluster mode\r\n:0\r\n"
    );
    // A node that has seen no bad datagram still lists the counter, at zero.
    let info = resp(port, &["CLUSTER", "INFO"]).expect("answers");
    assert!(info.contains("slotguard_bad_mac:0\r\n"), "{info}");
    for field in ["uptime_in_seconds", "connected_clients", "used_memory"] {
        assert!(info_field(port, field).is_some(), "INFO has {field}");
    }
    assert!(info_field(port, "used_memory").is_some_and(|m| m > 0));
}

/// A Python with the `redis` module: `python3`, or Debian's (`python3-redis`).
fn python_with_redis() -> Option<String> {
    ["python3", "/usr/bin/python3"]
        .into_iter()
        .find(|p| {
            Command::new(p)
                .args(["-c", "import redis.cluster"])
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .map(str::to_string)
}

/// Runs `script` with `python`; its standard output, or a panic with its standard error.
fn run_python(python: &str, script: &str) -> String {
    let out = Command::new(python)
        .args(["-c", script])
        .output()
        .expect("python runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// redis-py's `RedisCluster` reads COMMAND and CLUSTER SLOTS before it does anything; it
/// could not connect before issue 21.
#[test]
fn redis_py_cluster_client_connects_and_reads_the_cluster() {
    let Some(python) = python_with_redis() else {
        return missing("python3 with redis-py", "apt-get install python3-redis");
    };
    let mut c = Cluster::new("redispy", 3, 0, 12);
    c.start_and_agree();
    let script = format!(
        "from redis.cluster import RedisCluster\n\
         rc = RedisCluster(host='127.0.0.1', port={})\n\
         info = rc.cluster_info()\n\
         assert info['cluster_state'] == 'ok', info\n\
         assert rc.ping() is True\n\
         ports = sorted(n.port for n in rc.get_nodes())\n\
         print('nodes', ports)\n\
         assert ports == [{}, {}, {}], ports\n\
         import redis\n\
         if int(redis.__version__.split('.')[0]) >= 5:\n\
         \x20   rc3 = RedisCluster(host='127.0.0.1', port={}, protocol=3)\n\
         \x20   assert rc3.cluster_info()['cluster_state'] == 'ok'\n\
         \x20   assert rc3.ping() is True\n\
         \x20   print('RESP3 checked too')\n\
         else:\n\
         \x20   print('RESP3 not checked: redis-py', redis.__version__, 'predates it')\n",
        c.port(1),
        c.port(0),
        c.port(1),
        c.port(2),
        c.port(2)
    );
    let stdout = run_python(&python, &script);
    assert!(stdout.starts_with("nodes ["), "{stdout}");
    eprintln!("{stdout}");
}

/// `redis-cli --cluster check` printed `ERR unknown command 'DBSIZE'` before issue 21.
#[test]
fn redis_cli_cluster_check_reports_no_error() {
    let Some(cli) = redis_cli() else {
        return missing("redis-cli", "apt-get install redis-tools");
    };
    let mut c = Cluster::new("clicheck", 3, 0, 13);
    c.start_and_agree();
    let out = Command::new(&cli)
        .args(["--cluster", "check"])
        .arg(format!("127.0.0.1:{}", c.port(0)))
        .output()
        .expect("redis-cli runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(!stdout.contains("ERR"), "{stdout}");
    assert!(stdout.contains("[OK] All 16384 slots covered."), "{stdout}");
    assert!(stdout.contains("0 keys in 3 masters"), "{stdout}");
}

/// `slotguard cluster` with a port taken fails before starting any node, naming the port.
#[test]
fn the_local_cluster_command_names_a_taken_port_before_starting_anything() {
    let dir = std::env::temp_dir().join(format!("slotguard-e2e-clash-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let base = unique_base(14);
    for (taken, what) in [
        (base + 1, "client port of node 1"),
        (base + 10002, "cluster bus port of node 2"),
    ] {
        let _tcp = (taken < base + 10000).then(|| {
            std::net::TcpListener::bind(("127.0.0.1", taken)).expect("the test takes the port")
        });
        let _udp = (taken >= base + 10000)
            .then(|| UdpSocket::bind(("127.0.0.1", taken)).expect("the test takes the port"));
        let out = Command::new(env!("CARGO_BIN_EXE_slotguard"))
            .args(["cluster", "--masters", "3", "--replicas", "1"])
            .arg("--base-port")
            .arg(base.to_string())
            .arg("--dir")
            .arg(&dir)
            .output()
            .expect("runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{stderr}");
        assert!(
            stderr.contains(&format!("port {taken} ({what}")),
            "{stderr}"
        );
        assert!(!stderr.contains("started"), "{stderr}");
        assert!(!dir.join("node-0.log").exists(), "no node was started");
    }
}

/// A node of `slotguard cluster` that dies is reported once, and at the stop its reaped PID
/// is not signalled (`kill` would complain of no such process).
#[test]
fn the_local_cluster_command_reports_a_death_once_and_never_signals_the_dead() {
    use std::io::BufRead;
    let dir = std::env::temp_dir().join(format!("slotguard-e2e-death-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let base = unique_base(15);
    let mut child = Command::new(env!("CARGO_BIN_EXE_slotguard"))
        .args(["cluster", "--masters", "3", "--replicas", "0"])
        .args(["--node-timeout", "1000", "--base-port"])
        .arg(base.to_string())
        .arg("--dir")
        .arg(&dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cluster starts");
    let stderr = child.stderr.take().expect("stderr");
    let lines = Arc::new(Mutex::new(Vec::<String>::new()));
    let sink = Arc::clone(&lines);
    let reader = std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            sink.lock().expect("lines").push(line);
        }
    });
    // Kept open to the end: the command prints more after this line.
    let mut stdout = std::io::BufReader::new(child.stdout.take().expect("stdout")).lines();
    let ready = stdout.next().and_then(Result::ok).unwrap_or_default();
    assert!(ready.starts_with("cluster ready"), "{ready}");
    // Node 1's process, found by its own configuration file, dies.
    let config = dir.join("node-1.toml");
    let pgrep = Command::new("pgrep")
        .args(["-f", "--"])
        .arg(config.display().to_string())
        .output()
        .expect("pgrep runs");
    let pid = String::from_utf8_lossy(&pgrep.stdout).trim().to_string();
    assert!(
        !pid.is_empty() && !pid.contains('\n'),
        "one node 1: {pid:?}"
    );
    Command::new("kill")
        .args(["-KILL", &pid])
        .status()
        .expect("kill");
    let said = |what: &str| {
        let lines = lines.lock().expect("lines");
        lines.iter().filter(|l| l.contains(what)).count()
    };
    wait_until("the death is reported", || said("node 1 exited") >= 1);
    // Several of the command's 500 ms rounds.
    std::thread::sleep(Duration::from_secs(2));
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(child.wait().expect("exits").success());
    reader.join().expect("reader");
    assert_eq!(said("node 1 exited"), 1, "{:?}", lines.lock());
    assert_eq!(said("No such process"), 0, "{:?}", lines.lock());
    assert_eq!(said("stopping"), 1, "{:?}", lines.lock());
}

fn cluster_state(port: u16) -> Option<String> {
    resp(port, &["CLUSTER", "INFO"])?.lines().find_map(|l| {
        l.strip_prefix("cluster_state:")
            .map(|v| v.trim().to_string())
    })
}

/// A master that can reach no other master reports `cluster_state:fail`, as Redis's minority
/// master does after node_timeout (model/src/cluster_state.rs), and `ok` again once it can.
#[test]
fn an_isolated_master_reports_the_cluster_failed() {
    let mut c = Cluster::new("isolated", 3, 0, 30);
    c.start_and_agree();
    assert_eq!(cluster_state(c.port(0)).as_deref(), Some("ok"));
    c.signal(1, "STOP");
    c.signal(2, "STOP");
    wait_until("node 0 reports fail", || {
        cluster_state(c.port(0)).as_deref() == Some("fail")
    });
    c.signal(1, "CONT");
    c.signal(2, "CONT");
    wait_until("node 0 reports ok again", || {
        cluster_state(c.port(0)).as_deref() == Some("ok")
    });
}

/// `slotguard cluster` refuses a cluster without masters and ports it cannot use, before it
/// starts anything (exit 2, a usage error).
#[test]
fn the_local_cluster_command_refuses_impossible_arguments() {
    for args in [["--masters", "0"], ["--base-port", "0"]] {
        let out = Command::new(env!("CARGO_BIN_EXE_slotguard"))
            .arg("cluster")
            .args(args)
            .output()
            .expect("runs");
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(args[0]), "{err}");
    }
}

/// Runs `redis-cli` with `args` and returns its output, or panics with its stderr.
fn cli_output(cli: &Path, args: &[&str]) -> String {
    let out = Command::new(cli)
        .args(args)
        .output()
        .expect("redis-cli runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// `redis-cli -c` writes keys through any node and reads them through another: every master
/// ends up holding the keys of its own slots, a node that does not own a key's slot answers
/// `-MOVED` with the owner's address, and keys of two slots in one command are refused.
#[test]
fn keys_are_written_and_read_through_moved_on_every_master() {
    let Some(cli) = redis_cli() else {
        return missing("redis-cli", "apt-get install redis-tools");
    };
    let mut c = Cluster::new("keys", 3, 0, 40);
    c.start_and_agree();
    let (p0, p2) = (c.port(0).to_string(), c.port(2).to_string());
    for i in 0..30 {
        let (key, value) = (format!("key:{i}"), format!("value {i}"));
        assert_eq!(
            cli_output(&cli, &["-c", "-p", &p0, "set", &key, &value]),
            "OK"
        );
    }
    for i in 0..30 {
        let key = format!("key:{i}");
        assert_eq!(
            cli_output(&cli, &["-c", "-p", &p2, "get", &key]),
            format!("value {i}")
        );
    }
    let sizes: Vec<u64> = (0..3)
        .map(|i| {
            let size = resp(c.port(i), &["DBSIZE"]).expect("DBSIZE");
            size.trim_start_matches("Integer(")
                .trim_end_matches(')')
                .parse()
                .expect("a count")
        })
        .collect();
    assert!(
        sizes.iter().all(|&n| n > 0),
        "every master holds keys: {sizes:?}"
    );
    assert_eq!(
        sizes.iter().sum::<u64>(),
        30,
        "each key on one master: {sizes:?}"
    );
    // foo is in slot 12182, which the third master serves.
    let moved = cli_output(&cli, &["-p", &p0, "get", "foo"]);
    assert_eq!(moved, format!("MOVED 12182 127.0.0.1:{}", c.port(2)));
    let cross = cli_output(&cli, &["-p", &p0, "mget", "key:1", "key:2"]);
    assert!(cross.starts_with("CROSSSLOT"), "{cross}");
    let together = cli_output(&cli, &["-c", "-p", &p0, "mset", "{t}a", "1", "{t}b", "2"]);
    assert_eq!(together, "OK");
    let slot = cli_output(&cli, &["-p", &p0, "cluster", "keyslot", "{t}a"]);
    assert_eq!(slot, "15891");
    let count = cli_output(&cli, &["-p", &p2, "cluster", "countkeysinslot", "15891"]);
    assert_eq!(count, "2");
}

/// The write rule live (specs/protocol.md §5.6): a master that can no longer reach a majority
/// of the masters refuses commands on its own slots with `-CLUSTERDOWN`, and serves them again
/// once the majority is back.
#[test]
fn a_master_cut_off_from_the_majority_refuses_writes_until_it_is_back() {
    let mut c = Cluster::new("minority", 3, 0, 41);
    c.start_and_agree();
    // A key of master 0's slots: the first that master 0 takes without a redirect.
    let key = (0..100)
        .map(|i| format!("k{i}"))
        .find(|k| resp(c.port(0), &["SET", k, "before"]).as_deref() == Some("OK"))
        .expect("some key of master 0's slots");
    c.kill9(1);
    c.kill9(2);
    wait_until("master 0 refuses the write", || {
        resp(c.port(0), &["SET", &key, "during"])
            .is_some_and(|r| r.contains("CLUSTERDOWN The cluster is down"))
    });
    assert_eq!(
        resp(c.port(0), &["GET", &key])
            .as_deref()
            .map(|r| r.contains("CLUSTERDOWN")),
        Some(true)
    );
    c.start(1);
    c.start(2);
    wait_until("master 0 serves its slots again", || {
        resp(c.port(0), &["SET", &key, "after"]).as_deref() == Some("OK")
    });
    assert_eq!(resp(c.port(0), &["GET", &key]).as_deref(), Some("after"));
}

/// redis-py's `RedisCluster` routes key commands itself (from COMMAND's key positions and
/// CLUSTER SLOTS): strings, counters, expiry and several keys of one slot all work.
#[test]
fn redis_py_cluster_client_stores_and_reads_keys() {
    let Some(python) = python_with_redis() else {
        return missing("python3 with redis-py", "apt-get install python3-redis");
    };
    let mut c = Cluster::new("redispy-keys", 3, 0, 42);
    c.start_and_agree();
    let script = format!(
        "from redis.cluster import RedisCluster\n\
         rc = RedisCluster(host='127.0.0.1', port={})\n\
         for i in range(300):\n\
         \x20   assert rc.set(f'key:{{i}}', i)\n\
         assert all(rc.get(f'key:{{i}}') == str(i).encode() for i in range(300))\n\
         assert rc.incr('counter') == 1 and rc.incrby('counter', 41) == 42\n\
         assert rc.expire('counter', 100) and 99 <= rc.ttl('counter') <= 100\n\
         assert rc.mset_nonatomic({{'{{u}}a': 'x', '{{u}}b': 'y'}})\n\
         assert rc.mget('{{u}}a', '{{u}}b') == [b'x', b'y']\n\
         assert rc.delete('key:1') == 1 and rc.exists('key:1') == 0\n\
         sizes = [rc.get_redis_connection(n).dbsize() for n in rc.get_primaries()]\n\
         assert sum(sizes) == 302 and min(sizes) > 0, sizes\n\
         print('ok')\n",
        c.port(1)
    );
    assert_eq!(run_python(&python, &script).trim(), "ok");
}

/// `redis-benchmark --cluster` (redis-tools) runs SET and GET against the cluster to the end.
/// Its figures are not asserted here: they are measured in the benchmarks.
#[test]
fn redis_benchmark_cluster_completes() {
    let bench = Path::new("/usr/bin/redis-benchmark");
    if !bench.exists() {
        return missing("redis-benchmark", "apt-get install redis-tools");
    }
    let mut c = Cluster::new("benchmark", 3, 0, 43);
    c.start_and_agree();
    let out = Command::new(bench)
        .args(["--cluster", "-p", &c.port(0).to_string()])
        .args(["-t", "set,get", "-n", "20000", "-c", "20", "-q"])
        .output()
        .expect("redis-benchmark runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("SET:") && stdout.contains("GET:"),
        "{stdout}"
    );
    assert!(!stdout.to_lowercase().contains("error"), "{stdout}");
    eprintln!("{stdout}");
}

/// Sends `commands` on one connection and returns each reply, as `resp` renders one.
fn resp_pipeline(port: u16, commands: &[&[&str]]) -> Option<Vec<String>> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let mut req = String::new();
    for args in commands {
        req.push_str(&format!("*{}\r\n", args.len()));
        for a in *args {
            req.push_str(&format!("${}\r\n{a}\r\n", a.len()));
        }
    }
    s.write_all(req.as_bytes()).ok()?;
    let (mut buf, mut replies, mut chunk) = (Vec::new(), Vec::new(), [0u8; 65536]);
    while replies.len() < commands.len() {
        match redis_protocol::resp2::decode::decode(&buf) {
            Ok(Some((frame, used))) => {
                replies.push(match frame {
                    redis_protocol::resp2::types::OwnedFrame::BulkString(b)
                    | redis_protocol::resp2::types::OwnedFrame::SimpleString(b) => {
                        String::from_utf8_lossy(&b).into_owned()
                    }
                    other => format!("{other:?}"),
                });
                buf.drain(..used);
            }
            _ => {
                let n = s.read(&mut chunk).ok()?;
                if n == 0 {
                    return None;
                }
                buf.extend_from_slice(&chunk[..n]);
            }
        }
    }
    Some(replies)
}

/// The port a `-MOVED <slot> <ip>:<port>` reply names.
fn moved_to(reply: &str) -> Option<u16> {
    reply
        .strip_prefix("Error(\"MOVED ")?
        .split(':')
        .nth(1)?
        .trim_end_matches("\")")
        .parse()
        .ok()
}

/// `commands` run on the owner of their key's slot, found by following MOVED from `port`.
fn on_owner(port: u16, commands: &[&[&str]]) -> Option<Vec<String>> {
    let mut port = port;
    for _ in 0..3 {
        let replies = resp_pipeline(port, commands)?;
        match moved_to(&replies[0]) {
            Some(owner) => port = owner,
            None => return Some(replies),
        }
    }
    None
}

/// Writes acknowledged by the master and by a replica (`WAIT 1`) survive a kill -9 of the
/// master: its replica is promoted with every one of them, and the old master, restarted,
/// rejoins as a replica of the winner and copies its keys.
#[test]
fn replicated_writes_survive_a_kill_9_failover_and_the_old_master_resyncs() {
    let mut c = Cluster::new("replicated", 3, 1, 44);
    c.start_and_agree();
    wait_until("every replica is attached", || {
        (0..3).all(|i| info_field(c.port(i), "connected_slaves") == Some(1))
    });
    let mut replicated = 0;
    for i in 0..300 {
        let (key, value) = (format!("key:{i}"), format!("value {i}"));
        let replies = on_owner(c.port(1), &[&["SET", &key, &value], &["WAIT", "1", "2000"]])
            .expect("the owner answers");
        assert_eq!(replies[0], "OK", "{key}");
        replicated += usize::from(replies[1] == "Integer(1)");
    }
    assert_eq!(
        replicated, 300,
        "every write reached the replica within WAIT's 2 s"
    );
    let before = resp(c.port(0), &["DBSIZE"]).expect("DBSIZE");
    c.kill9(0);
    let n3 = myid(c.port(3));
    let live: Vec<usize> = (1..c.len()).collect();
    wait_until("node 3 takes over node 0's slots", || {
        agree(&c, &live).is_some_and(|owners| owners.values().any(|(owner, _)| *owner == n3))
    });
    for i in 0..300 {
        let key = format!("key:{i}");
        let got = on_owner(c.port(1), &[&["GET", &key]]).expect("the owner answers");
        assert_eq!(got[0], format!("value {i}"), "{key} after the failover");
    }
    assert_eq!(
        resp(c.port(3), &["DBSIZE"]),
        Some(before),
        "the promoted replica has them all"
    );
    c.start(0);
    wait_until("node 0 follows node 3 and copies its keys", || {
        info_field(c.port(3), "connected_slaves") == Some(1)
            && resp(c.port(0), &["DBSIZE"]) == resp(c.port(3), &["DBSIZE"])
    });
}

/// A cluster client library (the `redis` crate's `ClusterClient`) keeps writing, each `SET`
/// followed by `WAIT 1 1000` on the connection to the key's owner, while a master is killed with
/// kill -9. The client follows the failover on its own (MOVED, refreshed slot map); some writes
/// fail meanwhile (refused connections, `CLUSTERDOWN`, and after the failover every write to
/// the promoted replica's shard is unconfirmed, since no replica is left to confirm it). At the
/// end every write the owner acknowledged and `WAIT` reported on a replica reads back with its
/// value through a fresh client.
#[test]
fn writes_confirmed_by_wait_survive_a_failover_under_load() {
    let mut c = Cluster::new("underload", 3, 1, 45);
    c.start_and_agree();
    wait_until("every replica is attached", || {
        (0..3).all(|i| info_field(c.port(i), "connected_slaves") == Some(1))
    });
    let seeds = vec![format!("redis://127.0.0.1:{}/", c.port(1))];
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (stop, seeds) = (Arc::clone(&stop), seeds.clone());
        std::thread::spawn(move || write_and_wait_until(&stop, seeds))
    };
    std::thread::sleep(Duration::from_millis(1500));
    c.kill9(0);
    let n3 = myid(c.port(3));
    let live: Vec<usize> = (1..c.len()).collect();
    wait_until("node 3 takes over node 0's slots", || {
        agree(&c, &live).is_some_and(|owners| owners.values().any(|(owner, _)| *owner == n3))
    });
    std::thread::sleep(Duration::from_millis(1500));
    stop.store(true, Ordering::Relaxed);
    let (confirmed, failed) = writer.join().expect("the writer ends");
    eprintln!(
        "{} writes confirmed by WAIT, {failed} writes failed or went unconfirmed during the failover",
        confirmed.len()
    );
    assert!(
        confirmed.len() > 50,
        "the writer made progress: {}",
        confirmed.len()
    );
    let client = redis::cluster::ClusterClient::new(seeds).expect("a client");
    let mut con = client.get_connection().expect("the cluster answers");
    for i in confirmed {
        let key = format!("key:{i}");
        let got: Option<String> = redis::cmd("GET").arg(&key).query(&mut con).expect("GET");
        assert_eq!(
            got,
            Some(format!("value {i}")),
            "{key}, confirmed before or after the kill"
        );
    }
}

/// The writer of the test above: `SET key:i "value i"` then `WAIT 1 1000` on the owner's
/// connection, until `stop`; returns the `i` that `WAIT` confirmed and the count of the rest.
fn write_and_wait_until(stop: &AtomicBool, seeds: Vec<String>) -> (Vec<u32>, u32) {
    use redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr};
    let client = redis::cluster::ClusterClient::builder(seeds)
        .connection_timeout(Duration::from_millis(500))
        .response_timeout(Duration::from_secs(3))
        .build()
        .expect("a client");
    let mut con = client.get_connection().expect("the cluster answers");
    let (mut confirmed, mut failed, mut i) = (Vec::new(), 0u32, 0u32);
    while !stop.load(Ordering::Relaxed) {
        let (key, value) = (format!("key:{i}"), format!("value {i}"));
        let set: redis::RedisResult<()> = redis::cmd("SET").arg(&key).arg(&value).query(&mut con);
        let owner = Route::new(key_slot(key.as_bytes()), SlotAddr::Master);
        let wait = set.and_then(|()| {
            let routing = RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(owner));
            con.route_command(redis::cmd("WAIT").arg(1).arg(1000), routing)
        });
        match wait {
            Ok(redis::Value::Int(1)) => confirmed.push(i),
            _ => {
                failed += 1;
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        i += 1;
    }
    (confirmed, failed)
}

/// A key whose slot is among the first `slots` (the first master's, in an even layout).
fn key_in_first(slots: u16) -> String {
    (0..)
        .map(|i| format!("key:{i}"))
        .find(|k| key_slot(k.as_bytes()) < slots)
        .expect("some key hashes low")
}

/// After a failover the promoted replica's sibling continues from its own offset, with no
/// full copy: the winner remembers the old master's stream up to where it stopped following
/// it (specs/protocol.md §11.1), and the sibling holds every key. The old master, restarted
/// empty, is sent a full copy.
#[test]
fn a_sibling_continues_from_the_promoted_replica_without_a_full_copy() {
    // Nine nodes: ports of the next slot number (47) are taken too.
    let mut c = Cluster::new("psync", 3, 2, 46);
    c.start_and_agree();
    wait_until("every replica is attached", || {
        (0..3).all(|i| info_field(c.port(i), "connected_slaves") == Some(2))
    });
    for i in 0..200 {
        let (key, value) = (format!("key:{i}"), format!("value {i}"));
        let replies = on_owner(c.port(1), &[&["SET", &key, &value], &["WAIT", "2", "2000"]])
            .expect("the owner answers");
        assert_eq!(replies, ["OK", "Integer(2)"], "{key}");
    }
    let keys = resp(c.port(0), &["DBSIZE"]).expect("DBSIZE");
    c.kill9(0);
    let live: Vec<usize> = (1..c.len()).collect();
    let (n3, n4) = (myid(c.port(3)), myid(c.port(4)));
    let mut winner = 0;
    wait_until("node 3 or 4 takes over node 0's slots", || {
        let owners = agree(&c, &live).unwrap_or_default();
        winner = match owners.values().find(|(o, _)| *o == n3 || *o == n4) {
            Some((o, _)) if *o == n3 => 3,
            Some(_) => 4,
            None => 0,
        };
        winner != 0
    });
    let (winner, sibling) = (c.port(winner), c.port(7 - winner));
    wait_until("the sibling follows the winner", || {
        info_field(winner, "connected_slaves") == Some(1)
            && resp(sibling, &["INFO"]).is_some_and(|i| i.contains("master_link_status:up"))
    });
    let replid = |port: u16| {
        let info = resp(port, &["INFO"]).unwrap_or_default();
        info.lines()
            .find_map(|l| l.strip_prefix("master_replid:"))
            .map(str::to_string)
    };
    assert_eq!(
        replid(sibling),
        replid(winner),
        "the sibling streams under the winner's new name, before any write of the winner"
    );
    assert_eq!(
        info_field(winner, "sync_partial_ok"),
        Some(1),
        "the sibling continued"
    );
    assert_eq!(
        info_field(winner, "sync_full"),
        Some(0),
        "no full copy was sent"
    );
    assert_eq!(resp(sibling, &["DBSIZE"]), Some(keys.clone()));
    let key = key_in_first(5461);
    let replies = resp_pipeline(winner, &[&["SET", &key, "after"], &["WAIT", "1", "2000"]]);
    assert_eq!(replies, Some(vec!["OK".into(), "Integer(1)".into()]));
    c.start(0);
    wait_until("the old master follows the winner with a full copy", || {
        info_field(winner, "connected_slaves") == Some(2)
            && info_field(winner, "sync_full") == Some(1)
    });
}

/// With `min_replicas_to_write = 1`, a master whose only replica stops acknowledging (SIGSTOP)
/// refuses writes with `-NOREPLICAS` once `min_replicas_max_lag` has passed, still serves
/// reads, and accepts writes again when the replica is back.
#[test]
fn a_master_without_a_good_replica_refuses_writes() {
    let mut c = Cluster::new("minreplicas", 3, 1, 48)
        .with_config("min_replicas_to_write = 1\nmin_replicas_max_lag = 2\n");
    c.start_and_agree();
    wait_until("every replica is attached", || {
        (0..3).all(|i| info_field(c.port(i), "min_slaves_good_slaves") == Some(1))
    });
    let key = key_in_first(5461);
    assert_eq!(resp(c.port(0), &["SET", &key, "v"]).as_deref(), Some("OK"));
    c.signal(3, "STOP");
    wait_until("node 0 refuses writes", || {
        resp(c.port(0), &["SET", &key, "w"]).is_some_and(|r| r.contains("NOREPLICAS"))
    });
    assert_eq!(info_field(c.port(0), "min_slaves_good_slaves"), Some(0));
    let read = resp(c.port(0), &["GET", &key]);
    assert!(matches!(read.as_deref(), Some("v" | "w")), "{read:?}");
    c.signal(3, "CONT");
    wait_until("node 0 accepts writes again", || {
        resp(c.port(0), &["SET", &key, "x"]).as_deref() == Some("OK")
    });
}

/// `CLUSTER FAILOVER` on a replica (specs/protocol.md §6.1) while a client keeps writing to its
/// master: the master pauses writes (`-TRYAGAIN`), the replica catches up to its final offset
/// and wins an election without any FAIL, the old master follows it, and every write either
/// master acknowledged reads back. Sent to a master, the command is refused; `TAKEOVER` then
/// gives the slots back without an election.
#[test]
fn a_manual_failover_swaps_master_and_replica_and_loses_no_acknowledged_write() {
    let mut c = Cluster::new("manual", 3, 1, 52);
    c.start_and_agree();
    wait_until("every replica is attached", || {
        (0..3).all(|i| info_field(c.port(i), "connected_slaves") == Some(1))
    });
    let refused = resp(c.port(0), &["CLUSTER", "FAILOVER"]).unwrap_or_default();
    assert!(
        refused.contains("send CLUSTER FAILOVER to a replica"),
        "{refused}"
    );
    let entry = c.port(1);
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let (mut acknowledged, mut refused, mut i) = (Vec::new(), 0u32, 0u32);
            while !stop.load(Ordering::Relaxed) {
                let key = format!("{{b}}:{i}");
                match on_owner(entry, &[&["SET", &key, &format!("value {i}")]]) {
                    Some(r) if r[0] == "OK" => acknowledged.push(i),
                    _ => refused += 1,
                }
                i += 1;
            }
            (acknowledged, refused)
        })
    };
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        resp(c.port(3), &["CLUSTER", "FAILOVER"]).as_deref(),
        Some("OK")
    );
    let (n0, n3) = (myid(c.port(0)), myid(c.port(3)));
    let all: Vec<usize> = (0..c.len()).collect();
    wait_until("node 3 owns node 0's slots and node 0 follows it", || {
        agree(&c, &all).is_some_and(|owners| owners.values().any(|(o, _)| *o == n3))
            && cluster_nodes(c.port(0))
                .is_some_and(|l| l.iter().any(|n| n.id == n0 && n.master == n3))
    });
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);
    let (acknowledged, refused) = writer.join().expect("the writer ends");
    eprintln!(
        "{} writes acknowledged, {refused} refused during the manual failover",
        acknowledged.len()
    );
    assert!(acknowledged.len() > 20, "the writer made progress");
    for i in acknowledged {
        let key = format!("{{b}}:{i}");
        let got = on_owner(entry, &[&["GET", &key]]).expect("the owner answers");
        assert_eq!(got[0], format!("value {i}"), "{key}");
    }
    assert_eq!(
        resp(c.port(0), &["CLUSTER", "FAILOVER", "TAKEOVER"]).as_deref(),
        Some("OK")
    );
    wait_until("node 0 owns its slots again", || {
        agree(&c, &all).is_some_and(|owners| owners.values().any(|(o, _)| *o == n0))
    });
}

/// `durability = "sync"` (specs/protocol.md §13): a write is acknowledged only once the other
/// node of its shard has it. A writer keeps writing to node 0's shard while
/// - node 0 is killed with kill -9 and restarted at once, before anyone marks it FAIL: it
///   comes back without its data, refuses its slots, and its replica (node 3) takes them by a
///   forced election; node 0 follows node 3 and copies its keys;
/// - then node 3 is killed and stays down: node 0 wins the election that follows, and
///   refuses writes (`-NOREPLICAS`) until node 3 is back and has copied its keys.
///
/// Every acknowledged write reads back at the end.
#[test]
fn sync_durability_loses_no_acknowledged_write_through_restarts_and_failovers() {
    let mut c = Cluster::new("sync", 3, 1, 53).with_config("durability = \"sync\"");
    c.start_and_agree();
    wait_until("every replica is attached", || {
        (0..3).all(|i| info_field(c.port(i), "connected_slaves") == Some(1))
    });
    let entry = c.port(1);
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let (mut acknowledged, mut refused, mut i) = (Vec::new(), Vec::new(), 0u32);
            while !stop.load(Ordering::Relaxed) {
                let key = format!("{{b}}:{i}");
                match on_owner(entry, &[&["SET", &key, &format!("value {i}")]]) {
                    Some(r) if r[0] == "OK" => acknowledged.push(i),
                    other => {
                        refused.push(other.map(|r| r[0].clone()).unwrap_or_default());
                        std::thread::sleep(Duration::from_millis(10));
                    }
                }
                i += 1;
            }
            (acknowledged, refused)
        })
    };
    let (n0, n3) = (myid(c.port(0)), myid(c.port(3)));
    let all: Vec<usize> = (0..c.len()).collect();
    std::thread::sleep(Duration::from_millis(500));
    c.kill9(0);
    c.start(0);
    wait_until("node 3 owns node 0's slots and node 0 follows it", || {
        agree(&c, &all).is_some_and(|owners| owners.values().any(|(o, _)| *o == n3))
            && cluster_nodes(c.port(0))
                .is_some_and(|l| l.iter().any(|n| n.id == n0 && n.master == n3))
    });
    wait_until("node 0 has copied node 3's keys", || {
        info_field(c.port(3), "connected_slaves") == Some(1)
            && resp(c.port(0), &["DBSIZE"]) == resp(c.port(3), &["DBSIZE"])
    });
    std::thread::sleep(Duration::from_millis(500));
    c.kill9(3);
    let live: Vec<usize> = (0..3).collect();
    wait_until("node 0 takes its slots back", || {
        agree(&c, &live).is_some_and(|owners| owners.values().any(|(o, _)| *o == n0))
    });
    let refusal = on_owner(entry, &[&["SET", "{b}:alone", "x"]]).expect("the owner answers");
    assert!(
        refusal[0].contains("NOREPLICAS"),
        "a write with the shard's other node down: {refusal:?}"
    );
    c.start(3);
    wait_until("node 3 follows node 0 and writes are taken again", || {
        on_owner(entry, &[&["SET", "{b}:back", "x"]]).is_some_and(|r| r[0] == "OK")
    });
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    let (acknowledged, refused) = writer.join().expect("the writer ends");
    eprintln!(
        "{} writes acknowledged, {} refused or unconfirmed: {:?}",
        acknowledged.len(),
        refused.len(),
        refused.iter().collect::<std::collections::BTreeSet<_>>()
    );
    assert!(acknowledged.len() > 20, "the writer made progress");
    for i in acknowledged {
        let key = format!("{{b}}:{i}");
        let got = on_owner(entry, &[&["GET", &key]]).expect("the owner answers");
        assert_eq!(got[0], format!("value {i}"), "{key}");
    }
}

/// `durability = "sync"`: a master killed and started again at once *without its state file*
/// (a wiped volume) is a new, empty node that cannot know it lost anything. Its replica holds
/// the shard's data and refuses the new node's empty copy (specs/protocol.md §13.1), wins the
/// election that replaces the old node, and the new node follows it and copies the keys: every
/// acknowledged write reads back. (With the replica taking the empty copy, as Redis's would,
/// every key is lost.)
#[test]
fn sync_durability_keeps_the_data_when_a_master_is_recreated_without_its_state_file() {
    let mut c = Cluster::new("recreated", 3, 1, 54).with_config("durability = \"sync\"");
    c.start_and_agree();
    wait_until("every replica is attached", || {
        (0..3).all(|i| info_field(c.port(i), "connected_slaves") == Some(1))
    });
    let entry = c.port(1);
    let mut acknowledged = Vec::new();
    for i in 0..200 {
        let key = format!("{{b}}:{i}");
        if on_owner(entry, &[&["SET", &key, &format!("value {i}")]]).is_some_and(|r| r[0] == "OK") {
            acknowledged.push(i);
        }
    }
    assert!(
        acknowledged.len() > 150,
        "{} acknowledged",
        acknowledged.len()
    );
    let n3 = myid(c.port(3));
    c.kill9(0);
    std::fs::remove_file(c.dir.join("n0").join("node-0.state")).expect("the state file");
    c.start(0);
    let all: Vec<usize> = (0..c.len()).collect();
    wait_until(
        "node 3 owns node 0's slots and node 0 follows it with its keys",
        || {
            agree(&c, &all).is_some_and(|owners| owners.values().any(|(o, _)| *o == n3))
                && info_field(c.port(3), "connected_slaves") == Some(1)
                && resp(c.port(0), &["DBSIZE"]) == resp(c.port(3), &["DBSIZE"])
        },
    );
    for i in acknowledged {
        let key = format!("{{b}}:{i}");
        let got = on_owner(entry, &[&["GET", &key]]).expect("the owner answers");
        assert_eq!(got[0], format!("value {i}"), "{key}");
    }
    // A node recreated without its state file is a new node that its old traces cannot
    // continue: there is nothing for `slotguard validate` to replay here (specs/protocol.md §12.3).
    let _ = std::fs::remove_dir_all(c.dir.join("traces"));
}

/// `durability = "sync"`: when every node of a shard restarts, every copy of its keys is gone
/// and nothing may serve the shard as if it were whole: the master answers `-TRYAGAIN` and the
/// replica cannot take over. `CLUSTER ACCEPT-DATA-LOSS` on the master is the operator's way out
/// (specs/protocol.md §13.1): refused on a replica; on the master, it serves again (empty) and
/// its replica copies it, and writes are acknowledged again.
#[test]
fn sync_durability_serves_a_shard_that_lost_every_copy_only_once_the_operator_accepts() {
    let mut c = Cluster::new("lostall", 3, 1, 55).with_config("durability = \"sync\"");
    c.start_and_agree();
    wait_until("every replica is attached", || {
        (0..3).all(|i| info_field(c.port(i), "connected_slaves") == Some(1))
    });
    let entry = c.port(1);
    let set = |value: &str| on_owner(entry, &[&["SET", "{b}:k", value]]).unwrap_or_default();
    assert_eq!(set("before")[0], "OK");
    c.kill9(0);
    c.kill9(3);
    c.start(0);
    c.start(3);
    let all: Vec<usize> = (0..c.len()).collect();
    wait_until("the nodes agree again", || agree(&c, &all).is_some());
    let refused = resp(c.port(0), &["GET", "{b}:k"]).unwrap_or_default();
    assert!(refused.contains("TRYAGAIN"), "{refused}");
    let on_replica = resp(c.port(3), &["CLUSTER", "ACCEPT-DATA-LOSS"]).unwrap_or_default();
    assert!(on_replica.contains("to the master"), "{on_replica}");
    assert_eq!(
        resp(c.port(0), &["CLUSTER", "ACCEPT-DATA-LOSS"]).as_deref(),
        Some("OK")
    );
    wait_until("writes are acknowledged again", || set("after")[0] == "OK");
    assert_eq!(
        on_owner(entry, &[&["GET", "{b}:k"]]).expect("the owner answers")[0],
        "after"
    );
}
