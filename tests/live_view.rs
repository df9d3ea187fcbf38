//! The live view of a running cluster in a real browser: `slotguard cluster --ui-port` starts
//! three masters with a replica each and serves the page; Debian's headless Chromium must show
//! a card per node with its role; after master n0 is killed with SIGKILL, the page must show
//! its replica n3 promoted (a master, at a higher currentEpoch) and n0 unreachable, each card
//! as the node reports it (`CLUSTER PICTURE`: its election and its votes, nothing "not
//! reported"), and list the promotion among the changes seen. A screenshot is written to `SLOTGUARD_SCREENSHOT_DIR`
//! if set, else to the target's temporary directory.
//!
//! Chromium comes from Debian (`.ci/run` installs it). Without it the test fails under CI
//! (`CI` set) and is skipped with a message elsewhere.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

mod browser;

use browser::chromium;

const DEADLINE: Duration = Duration::from_secs(90);

/// The `slotguard cluster` process; stopped as a user would (SIGTERM), killed if it hangs.
struct ClusterProcess(Child);

impl Drop for ClusterProcess {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.0.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn http_get(addr: &str, path: &str) -> Option<String> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").ok()?;
    let mut body = String::new();
    s.read_to_string(&mut body).ok()?;
    body.split_once("\r\n\r\n").map(|(_, b)| b.to_string())
}

/// The live view's data, once it parses.
fn live(addr: &str) -> Option<serde_json::Value> {
    serde_json::from_str(&http_get(addr, "/api/live")?).ok()
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + DEADLINE;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// The DOM after the page's scripts ran, text unescaped; or a screenshot.
fn render(chromium: &Path, profile: &Path, url: &str, shot: Option<&Path>) -> String {
    let mut cmd = Command::new(chromium);
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        "--window-size=1200,800",
        "--virtual-time-budget=3000",
    ])
    .arg(format!("--user-data-dir={}", profile.display()));
    match shot {
        Some(path) => cmd.arg(format!("--screenshot={}", path.display())),
        None => cmd.arg("--dump-dom"),
    };
    let out = cmd
        .arg(url)
        .stderr(Stdio::null())
        .output()
        .expect("chromium runs");
    assert!(out.status.success(), "chromium failed on {url}");
    String::from_utf8_lossy(&out.stdout)
        .replace("&gt;", ">")
        .replace("&lt;", "<")
        .replace("&amp;", "&")
}

/// The opening tag of node `id`'s card.
fn card_tag<'a>(dom: &'a str, id: &str) -> &'a str {
    let at = dom
        .find(&format!("id=\"card-{id}\""))
        .unwrap_or_else(|| panic!("no card of {id}"));
    let start = dom[..at].rfind('<').unwrap_or(at);
    &dom[start..at + dom[at..].find('>').unwrap_or(0)]
}

/// Node `id`'s card, up to the next card.
fn card_html<'a>(dom: &'a str, id: &str) -> &'a str {
    let at = dom
        .find(&format!("id=\"card-{id}\""))
        .unwrap_or_else(|| panic!("no card of {id}"));
    let rest = &dom[at..];
    let end = rest[1..].find("id=\"card-").map_or(rest.len(), |e| e + 1);
    &rest[..end]
}

fn attr<'a>(tag: &'a str, name: &str) -> &'a str {
    let key = format!("{name}=\"");
    let at = tag
        .find(&key)
        .unwrap_or_else(|| panic!("no {name} in {tag}"));
    let rest = &tag[at + key.len()..];
    &rest[..rest.find('"').unwrap_or(rest.len())]
}

/// The PID of the node process started with `config`, from /proc.
fn pid_of_node(config: &Path) -> Option<u32> {
    let want = config.display().to_string();
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid: u32 = e.file_name().to_str()?.parse().ok()?;
        let cmdline = std::fs::read(e.path().join("cmdline")).ok()?;
        let args: Vec<&[u8]> = cmdline.split(|&b| b == 0).collect();
        let is_node = args.contains(&&b"node"[..]) && args.contains(&want.as_bytes());
        is_node.then_some(pid)
    })
}

#[test]
fn the_live_view_shows_a_failover_as_it_happens() {
    let Some(chromium) = chromium() else { return };
    let dir = std::env::temp_dir().join(format!("slotguard-live-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    // Client ports base..base+5, bus ports base+10000..; apart from cluster_e2e's range.
    let base = 26000 + (std::process::id() % 300) as u16 * 10;
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
        .args(["--ui-port", "0", "--base-port"])
        .arg(base.to_string())
        .arg("--dir")
        .arg(&dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("slotguard cluster starts");
    let stdout = child.stdout.take().expect("stdout");
    let cluster = ClusterProcess(child);
    // Read every line (a closed pipe would fail the command's later output), passing on the
    // live view's address.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(url) = line.trim().strip_prefix("live view: ") {
                let _ = tx.send(url.to_string());
            }
        }
    });
    let url = rx
        .recv_timeout(DEADLINE)
        .expect("the cluster prints the live view's address");
    let addr = url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    let profile = dir.join("chromium");

    wait_until("the view shows every node up", || {
        live(&addr).is_some_and(|v| {
            let nodes = v["picture"]["nodes"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            nodes.len() == 6 && nodes.iter().all(|n| n["down"].is_null())
        })
    });
    let before = render(&chromium, &profile, &url, None);
    assert!(
        before.contains("data-ready=\"yes\""),
        "the page drew its data"
    );
    for (id, role, master) in [("n0", "master", ""), ("n3", "replica", "n0")] {
        let tag = card_tag(&before, id);
        assert_eq!(
            (attr(tag, "data-role"), attr(tag, "data-master")),
            (role, master),
            "{tag}"
        );
    }
    let n3 = card_html(&before, "n3");
    assert!(
        n3.contains("election") && !n3.contains("not reported"),
        "n3 reports its own card, election included: {n3}"
    );
    let epoch_before: u64 = attr(card_tag(&before, "n3"), "data-current-epoch")
        .parse()
        .expect("n3 reports its currentEpoch");

    let node0 = pid_of_node(&dir.join("node-0.toml")).expect("node 0 runs");
    let killed = Command::new("kill")
        .args(["-KILL", &node0.to_string()])
        .status()
        .expect("kill runs");
    assert!(killed.success());
    wait_until("n3 reports itself master and n0 does not answer", || {
        live(&addr).is_some_and(|v| {
            let nodes = &v["picture"]["nodes"];
            nodes[3]["role"] == "master" && nodes[0]["down"].is_string()
        })
    });
    // The nodes' own cards carry their election and votes: the winner reports one, and a
    // master that voted for it reports the winner's epoch as its lastVoteEpoch.
    let view = live(&addr).expect("the live view answers");
    let nodes = &view["picture"]["nodes"];
    assert!(
        nodes[3]["election"]["state"].is_string(),
        "n3 reports its election: {}",
        nodes[3]
    );
    let won = nodes[3]["config_epoch"].as_u64().expect("n3's configEpoch");
    assert!(
        [1, 2]
            .iter()
            .any(|&m| nodes[m]["last_vote_epoch"].as_u64() == Some(won)),
        "a master reports its vote in epoch {won}: {nodes}"
    );
    let after = render(&chromium, &profile, &url, None);
    let n3 = card_tag(&after, "n3");
    assert_eq!(attr(n3, "data-role"), "master", "{n3}");
    let epoch_after: u64 = attr(n3, "data-current-epoch").parse().expect("an epoch");
    assert!(
        epoch_after > epoch_before,
        "{epoch_before} -> {epoch_after}"
    );
    let n0 = card_tag(&after, "n0");
    assert!(attr(n0, "data-down").starts_with("unreachable"), "{n0}");
    assert!(
        after.contains("n3: role replica of n0 -> master"),
        "the promotion is among the changes seen"
    );
    let shot = std::env::var_os("SLOTGUARD_SCREENSHOT_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")));
    std::fs::create_dir_all(&shot).expect("screenshot dir");
    let shot = shot.join("live-view.png");
    let _ = std::fs::remove_file(&shot);
    render(&chromium, &profile, &url, Some(&shot));
    let size = std::fs::metadata(&shot).map(|m| m.len()).unwrap_or(0);
    assert!(size > 10_000, "screenshot at {}", shot.display());
    eprintln!("screenshot: {}", shot.display());
    drop(cluster);
    let _ = std::fs::remove_dir_all(&dir);
}
