//! Network namespaces on a bridge of their own, one per node, and the faults the tests inject
//! between them.
//!
//! Why namespaces and not loopback: a fault has to cut one node off from some peers while its
//! process, its sockets and its clients stay as they are, which is what a real partition does.
//! Each node gets its own IP (10.77.X.i on a bridge the harness creates); the host end of the
//! bridge (10.77.X.254) is where the test's clients run, so every fault below is between nodes
//! only and a client keeps reaching every node unless a fault says otherwise.
//!
//! Why iptables and htb rather than `tc netem`: netem is a kernel module that not every kernel
//! has (this project's CI kernel does not), whereas iptables' `statistic` match drops a random
//! share of packets and an htb class of low rate holds a random share back behind the others,
//! which reorders them.
//!
//! Everything created is named with a prefix and the number of its subnet, and removed on drop,
//! also when a test panics. A lock file per subnet keeps concurrent tests and test processes
//! apart, and resources left by a process that died without dropping (kill -9 of a test run)
//! are removed by the next run.

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Why the harness could not do something.
#[derive(Debug)]
pub(crate) enum NetError {
    /// Not root, or `ip` / `iptables` missing, or namespaces refused: the test may skip.
    Unavailable(String),
    /// A command of the harness failed.
    Command {
        /// The command line.
        command: String,
        /// Its stderr.
        stderr: String,
    },
}

impl fmt::Display for NetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NetError::Unavailable(why) => write!(f, "network namespaces unavailable: {why}"),
            NetError::Command { command, stderr } => {
                write!(f, "`{command}` failed: {}", stderr.trim())
            }
        }
    }
}

impl std::error::Error for NetError {}

/// Runs a command and returns its stdout, or the command and its stderr.
pub(crate) fn run(program: &str, args: &[&str]) -> Result<String, NetError> {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| NetError::Command {
            command: format!("{program} {}", args.join(" ")),
            stderr: e.to_string(),
        })?;
    if !out.status.success() {
        return Err(NetError::Command {
            command: format!("{program} {}", args.join(" ")),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Whether this machine lets the harness create namespaces, a bridge and iptables rules;
/// `Err` says why not.
pub(crate) fn available() -> Result<(), NetError> {
    let uid = run("id", &["-u"])?;
    if uid.trim() != "0" {
        return Err(NetError::Unavailable(format!(
            "not root (uid {})",
            uid.trim()
        )));
    }
    for tool in ["ip", "iptables", "tc"] {
        if run("sh", &["-c", &format!("command -v {tool}")]).is_err() {
            return Err(NetError::Unavailable(format!(
                "{tool} is not installed (apt-get install iproute2 iptables)"
            )));
        }
    }
    Ok(())
}

/// Whether namespaces can be used here; if not, prints why and returns false, or under CI (the
/// `CI` variable set) panics instead, as every test that needs a tool does.
pub(crate) fn available_or_skip() -> bool {
    let ci = std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "false");
    match available() {
        Ok(()) => true,
        Err(e) if ci => panic!(
            "{e} (CI is set: these tests need root, and .ci/run installs iproute2 and iptables)"
        ),
        Err(e) => {
            eprintln!("SKIPPED: {e}");
            false
        }
    }
}

const LOCKS: &str = "/tmp/slotguard-netns-locks";

/// N namespaces on one bridge, each with one address.
pub(crate) struct Net {
    tag: String,
    subnet: u8,
    nodes: usize,
    lock: PathBuf,
}

impl Net {
    /// Creates the bridge and `nodes` namespaces joined to it.
    pub(crate) fn new(nodes: usize) -> Result<Net, NetError> {
        assert!(nodes < 250, "one /24 per Net");
        std::fs::create_dir_all(LOCKS).map_err(|e| NetError::Unavailable(e.to_string()))?;
        clean_stale();
        let (subnet, tag, lock) = claim_subnet(std::process::id(), nodes)?;
        let net = Net {
            tag,
            subnet,
            nodes,
            lock,
        };
        net.create().map_err(|e| match e {
            NetError::Command { command, stderr } if stderr.contains("Operation not permitted") => {
                NetError::Unavailable(format!("{command}: {}", stderr.trim()))
            }
            other => other,
        })?;
        Ok(net)
    }

    fn bridge(&self) -> String {
        format!("sgf{}b", self.tag)
    }

    /// The host end of node `i`'s veth (on the bridge).
    fn host_end(&self, i: usize) -> String {
        format!("sgf{}h{i}", self.tag)
    }

    /// Node `i`'s namespace.
    pub(crate) fn ns(&self, i: usize) -> String {
        format!("sgf{}n{i}", self.tag)
    }

    /// Node `i`'s address.
    pub(crate) fn ip(&self, i: usize) -> String {
        format!("10.77.{}.{}", self.subnet, i + 1)
    }

    /// The host's address on the bridge, where clients run.
    pub(crate) fn host_ip(&self) -> String {
        format!("10.77.{}.254", self.subnet)
    }

    /// How many namespaces.
    pub(crate) fn len(&self) -> usize {
        self.nodes
    }

    fn create(&self) -> Result<(), NetError> {
        let br = self.bridge();
        run("ip", &["link", "add", &br, "type", "bridge"])?;
        run(
            "ip",
            &["addr", "add", &format!("{}/24", self.host_ip()), "dev", &br],
        )?;
        run("ip", &["link", "set", &br, "up"])?;
        for i in 0..self.nodes {
            let (ns, host, peer) = (self.ns(i), self.host_end(i), format!("sgf{}p{i}", self.tag));
            run("ip", &["netns", "add", &ns])?;
            run(
                "ip",
                &["link", "add", &host, "type", "veth", "peer", "name", &peer],
            )?;
            run("ip", &["link", "set", &peer, "netns", &ns])?;
            run("ip", &["link", "set", &host, "master", &br])?;
            run("ip", &["link", "set", &host, "up"])?;
            self.exec(i, "ip", &["link", "set", &peer, "name", "eth0"])?;
            self.exec(
                i,
                "ip",
                &["addr", "add", &format!("{}/24", self.ip(i)), "dev", "eth0"],
            )?;
            self.exec(i, "ip", &["link", "set", "eth0", "up"])?;
            self.exec(i, "ip", &["link", "set", "lo", "up"])?;
        }
        Ok(())
    }

    /// Runs a command inside node `i`'s namespace.
    pub(crate) fn exec(&self, i: usize, program: &str, args: &[&str]) -> Result<String, NetError> {
        let ns = self.ns(i);
        let mut all = vec!["netns", "exec", ns.as_str(), program];
        all.extend_from_slice(args);
        run("ip", &all)
    }

    /// A command that runs `program` inside node `i`'s namespace (`ip netns exec` replaces
    /// itself with the program, so the child's pid is the program's).
    pub(crate) fn command(&self, i: usize, program: &Path) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.ns(i)]).arg(program);
        c
    }

    fn iptables(&self, i: usize, rule: &[&str]) -> Result<(), NetError> {
        self.exec(i, "iptables", rule).map(drop)
    }

    /// Node `i` neither sends to nor hears from any other node; clients (the host) still
    /// reach it.
    pub(crate) fn isolate(&self, i: usize) -> Result<(), NetError> {
        for j in (0..self.nodes).filter(|&j| j != i) {
            let peer = self.ip(j);
            self.iptables(i, &["-I", "INPUT", "-s", &peer, "-j", "DROP"])?;
            self.iptables(i, &["-I", "OUTPUT", "-d", &peer, "-j", "DROP"])?;
        }
        Ok(())
    }

    /// Node `i` hears nothing from the other nodes while they still hear it: a one-way
    /// partition.
    pub(crate) fn deafen(&self, i: usize) -> Result<(), NetError> {
        for j in (0..self.nodes).filter(|&j| j != i) {
            self.iptables(i, &["-I", "INPUT", "-s", &self.ip(j), "-j", "DROP"])?;
        }
        Ok(())
    }

    /// Nothing node `i` sends reaches the other nodes, while it still hears them: the other
    /// one-way partition.
    pub(crate) fn mute(&self, i: usize) -> Result<(), NetError> {
        for j in (0..self.nodes).filter(|&j| j != i) {
            self.iptables(i, &["-I", "OUTPUT", "-d", &self.ip(j), "-j", "DROP"])?;
        }
        Ok(())
    }

    /// Every node drops `percent` % of what it receives from other nodes and holds back
    /// another `percent` % of what it sends to them behind a slow queue (reordering it
    /// against the rest). Client traffic is untouched.
    pub(crate) fn lossy(&self, percent: u32) -> Result<(), NetError> {
        let p = format!("{:.2}", f64::from(percent) / 100.0);
        let subnet = format!("10.77.{}.0/24", self.subnet);
        let host = self.host_ip();
        for i in 0..self.nodes {
            // The host's packets (clients) are accepted before the random rules see them.
            self.iptables(i, &["-A", "INPUT", "-s", &host, "-j", "ACCEPT"])?;
            self.iptables(
                i,
                &[
                    "-A",
                    "INPUT",
                    "-s",
                    &subnet,
                    "-m",
                    "statistic",
                    "--mode",
                    "random",
                    "--probability",
                    &p,
                    "-j",
                    "DROP",
                ],
            )?;
            self.iptables(
                i,
                &[
                    "-t",
                    "mangle",
                    "-A",
                    "POSTROUTING",
                    "-d",
                    &host,
                    "-j",
                    "ACCEPT",
                ],
            )?;
            self.iptables(
                i,
                &[
                    "-t",
                    "mangle",
                    "-A",
                    "POSTROUTING",
                    "-d",
                    &subnet,
                    "-m",
                    "statistic",
                    "--mode",
                    "random",
                    "--probability",
                    &p,
                    "-j",
                    "CLASSIFY",
                    "--set-class",
                    "1:2",
                ],
            )?;
            // Packets classified 1:2 leave through a 64 kbit/s class with almost no burst: each
            // waits for those queued before it (a 150-byte datagram alone, ~19 ms), while the
            // rest pass at once, so they arrive out of order. (htb honours the class set by
            // iptables' CLASSIFY; the u32 classifier's `mark` match does not select here.)
            let tc = |args: &[&str]| self.exec(i, "tc", args).map(drop);
            tc(&[
                "qdisc", "add", "dev", "eth0", "root", "handle", "1:", "htb", "default", "1",
                "r2q", "1000",
            ])?;
            tc(&[
                "class", "add", "dev", "eth0", "parent", "1:", "classid", "1:1", "htb", "rate",
                "1gbit",
            ])?;
            tc(&[
                "class", "add", "dev", "eth0", "parent", "1:", "classid", "1:2", "htb", "rate",
                "64kbit", "ceil", "64kbit", "burst", "100b", "cburst", "100b", "quantum", "1600",
            ])?;
        }
        Ok(())
    }

    /// Packets the slow queues of [`Net::lossy`] held back, summed over the nodes (0 when
    /// none is installed): evidence that the reordering took place.
    pub(crate) fn held_back(&self) -> u64 {
        (0..self.nodes)
            .filter_map(|i| {
                self.exec(i, "tc", &["-s", "class", "show", "dev", "eth0"])
                    .ok()
            })
            .map(|text| {
                let mut in_slow = false;
                let mut n = 0;
                for l in text.lines() {
                    if l.starts_with("class htb") {
                        in_slow = l.starts_with("class htb 1:2 ");
                    } else if in_slow {
                        if let Some(rest) = l.trim().strip_prefix("Sent ") {
                            n += rest
                                .split(' ')
                                .nth(2)
                                .and_then(|p| p.parse::<u64>().ok())
                                .unwrap_or(0);
                        }
                    }
                }
                n
            })
            .sum()
    }

    /// Takes node `i`'s link down (`up = false`) or up: while down, it reaches nobody and
    /// nobody, clients included, reaches it.
    pub(crate) fn link(&self, i: usize, up: bool) -> Result<(), NetError> {
        run(
            "ip",
            &[
                "link",
                "set",
                &self.host_end(i),
                if up { "up" } else { "down" },
            ],
        )
        .map(drop)
    }

    /// Removes every fault: rules, queues, links down.
    pub(crate) fn heal(&self) -> Result<(), NetError> {
        for i in 0..self.nodes {
            self.iptables(i, &["-F"])?;
            self.iptables(i, &["-t", "mangle", "-F"])?;
            let _ = self.exec(i, "tc", &["qdisc", "del", "dev", "eth0", "root"]);
            self.link(i, true)?;
        }
        Ok(())
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        remove(&self.tag, self.nodes);
        let _ = std::fs::remove_file(&self.lock);
    }
}

/// Removes a Net's namespaces, veths and bridge; each may already be gone.
fn remove(tag: &str, nodes: usize) {
    for i in 0..nodes {
        let _ = run("ip", &["netns", "del", &format!("sgf{tag}n{i}")]);
        let _ = run("ip", &["link", "del", &format!("sgf{tag}h{i}")]);
    }
    let _ = run("ip", &["link", "del", &format!("sgf{tag}b")]);
}

/// Takes a free 10.77.X.0/24 and the names that go with it: the lock file `X` is created
/// exclusively and holds the owner's pid, the tag of its names and its node count. The tag is
/// made of X, so that no two live owners share a name.
fn claim_subnet(pid: u32, nodes: usize) -> Result<(u8, String, PathBuf), NetError> {
    let start = (pid as usize).wrapping_mul(31) % 240;
    // Subnets some interface of the host already uses (not ours to take).
    let used = run("ip", &["-4", "-o", "addr", "show"]).unwrap_or_default();
    for k in 0..240 {
        let subnet = (1 + (start + k) % 240) as u8;
        if used.contains(&format!(" 10.77.{subnet}.")) {
            continue;
        }
        let lock = Path::new(LOCKS).join(subnet.to_string());
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&lock);
        if let Ok(mut f) = file {
            use std::io::Write;
            let tag = format!("{subnet:03}");
            let _ = writeln!(f, "{pid} {tag} {nodes}");
            return Ok((subnet, tag, lock));
        }
    }
    Err(NetError::Unavailable(format!(
        "no free subnet 10.77.X.0/24 left ({LOCKS})"
    )))
}

/// Removes what processes that no longer run left behind.
fn clean_stale() {
    let Ok(entries) = std::fs::read_dir(LOCKS) else {
        return;
    };
    for e in entries.flatten() {
        let text = std::fs::read_to_string(e.path()).unwrap_or_default();
        let mut f = text.split_whitespace();
        let (Some(pid), Some(tag), Some(nodes)) = (f.next(), f.next(), f.next()) else {
            continue;
        };
        if Path::new("/proc").join(pid).exists() {
            continue;
        }
        let nodes: usize = nodes.parse().unwrap_or(0);
        remove(tag, nodes);
        let _ = std::fs::remove_file(e.path());
    }
}
