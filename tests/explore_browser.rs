//! A real browser against slotguard's pages: Debian's headless Chromium loads the explorer
//! served by `slotguard explore` and the report written by `slotguard check --html`, and the
//! cards it draws must show what the model says — a peer timeout followed through the page's
//! own button marks the peer PFAIL on the acting node's card; after the failover path that
//! `check` reports, replica n3 is a master at the election's epoch; and the steps are named as
//! `check` names them. Screenshots are written to `SLOTGUARD_SCREENSHOT_DIR` if set (the
//! README's come from there), else to the target's temporary directory.
//!
//! Chromium comes from Debian (`.ci/run` installs it). Without it the tests fail under CI
//! (`CI` set) and are skipped with a message elsewhere.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

mod browser;

use browser::chromium;

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

fn http_get(port: u16, path: &str) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").ok()?;
    let mut body = String::new();
    s.read_to_string(&mut body).ok()?;
    body.split_once("\r\n\r\n").map(|(_, b)| b.to_string())
}

/// A directory for Chromium's profile, one per test.
fn profile(test: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("slotguard-chromium-{test}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("profile dir");
    dir
}

/// Where screenshots go.
fn screenshot(name: &str) -> PathBuf {
    let dir = std::env::var_os("SLOTGUARD_SCREENSHOT_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")));
    std::fs::create_dir_all(&dir).expect("screenshot dir");
    dir.join(name)
}

/// Loads `url` in headless Chromium and returns the DOM after its scripts have run, with the
/// HTML escapes of text undone (so `n0 -> n3` reads as written), or writes a screenshot.
fn render(chromium: &Path, profile: &Path, url: &str, shot: Option<&Path>) -> String {
    let mut cmd = Command::new(chromium);
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        "--window-size=1200,800",
        "--virtual-time-budget=10000",
    ])
    .arg(format!("--user-data-dir={}", profile.display()));
    match shot {
        Some(path) => {
            let _ = std::fs::remove_file(path);
            cmd.arg(format!("--screenshot={}", path.display()))
        }
        None => cmd.arg("--dump-dom"),
    };
    let out = cmd
        .arg(url)
        .stderr(Stdio::null())
        .output()
        .expect("chromium runs");
    assert!(out.status.success(), "chromium failed on {url}");
    if let Some(path) = shot {
        let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        assert!(size > 10_000, "screenshot saved at {}", path.display());
        eprintln!("screenshot: {}", path.display());
    }
    String::from_utf8_lossy(&out.stdout)
        .replace("&gt;", ">")
        .replace("&lt;", "<")
        .replace("&quot;", "\"")
        .replace("&amp;", "&")
}

/// The markup of node `id`'s card in a rendered page.
fn card<'a>(dom: &'a str, id: &str) -> &'a str {
    let at = dom
        .find(&format!("id=\"card-{id}\""))
        .unwrap_or_else(|| panic!("no card of {id} in the page"));
    let start = dom[..at].rfind('<').unwrap_or(at);
    // Up to the next card, or the end of the cards' section.
    let end = [
        dom[at + 1..].find("id=\"card-"),
        dom[at..].find("</section>").map(|e| e - 1),
    ]
    .into_iter()
    .flatten()
    .min()
    .map_or(dom.len(), |e| at + 1 + e);
    &dom[start..end]
}

/// The value of attribute `name` in the first tag of `markup`.
fn attr<'a>(markup: &'a str, name: &str) -> &'a str {
    let tag = &markup[..markup.find('>').unwrap_or(markup.len())];
    let key = format!("{name}=\"");
    let at = tag
        .find(&key)
        .unwrap_or_else(|| panic!("no {name} in {tag}"));
    let rest = &tag[at + key.len()..];
    &rest[..rest.find('"').unwrap_or(rest.len())]
}

/// The path of `check`'s failover example on `tiny` without crashes, with its step names.
fn failover_example(html: Option<&Path>) -> (String, Vec<String>) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_slotguard"));
    cmd.args([
        "check",
        "tiny",
        "--crashes",
        "0",
        "--json",
        "--examples",
        "-q",
    ]);
    if let Some(file) = html {
        cmd.arg("--html").arg(file);
    }
    let out = cmd.output().expect("check runs");
    assert!(out.status.success(), "check passes");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    let example = report["properties"]
        .as_array()
        .expect("properties")
        .iter()
        .find(|p| p["name"] == "failover-completes")
        .map(|p| &p["counterexample"])
        .expect("the failover example");
    let path = example["explorer_path"]
        .as_str()
        .expect("a path")
        .to_string();
    let steps = example["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|s| s["action"].as_str().expect("a step name").to_string())
        .collect();
    (path, steps)
}

#[test]
fn the_explorer_page_draws_cards_and_follows_actions_and_a_failover_path() {
    let Some(chromium) = chromium() else { return };
    let (path, steps) = failover_example(None);
    let port = free_port();
    let _server = Server(
        Command::new(env!("CARGO_BIN_EXE_slotguard"))
            .args(["explore", "tiny", "--crashes", "0", "--addr"])
            .arg(format!("127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // From a directory with no `ui/`: the page is in the binary.
            .current_dir(std::env::temp_dir())
            .spawn()
            .expect("slotguard explore starts"),
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    while http_get(port, "/api/steps/0").is_none() {
        assert!(Instant::now() < deadline, "explorer did not come up");
        std::thread::sleep(Duration::from_millis(200));
    }
    let profile = profile("explore");
    let base = format!("http://127.0.0.1:{port}/#/steps/0");

    // The initial state: n3 replicates n2, nobody suspects anybody.
    let first = render(&chromium, &profile, &base, None);
    assert!(
        first.contains("data-ready=\"yes\""),
        "the page drew its data"
    );
    let n3 = card(&first, "n3");
    assert_eq!(
        (attr(n3, "data-role"), attr(n3, "data-master")),
        ("replica", "n2")
    );
    assert!(card(&first, "n0").contains("nobody"));
    // Follow the page's own button for n0's peer timeout of n1, as a click does.
    let label = "n0: timer PeerTimeout(n1) fires";
    let button_end = first
        .find(&format!(">{label}</button>"))
        .expect("the timeout is a button, named as check names steps");
    let button = &first[first[..button_end].rfind("<button").expect("its tag")..];
    let index = attr(button, "data-index");
    let after = render(&chromium, &profile, &format!("{base}/{index}"), None);
    assert!(
        card(&after, "n0").contains("n1 PFAIL"),
        "n0 suspects n1 after its timeout: {}",
        card(&after, "n0")
    );
    assert!(after.contains(&format!("1. {label}")), "the step is drawn");

    // The failover path check reports: every step drawn under check's name, n3 promoted.
    let url = format!("http://127.0.0.1:{port}/#/steps/{path}");
    let end = render(&chromium, &profile, &url, None);
    for (i, step) in steps.iter().enumerate() {
        assert!(
            end.contains(&format!("{}. {step}", i + 1)),
            "step {} ({step}) in the diagram",
            i + 1
        );
    }
    let n3 = card(&end, "n3");
    assert_eq!(attr(n3, "data-role"), "master", "{n3}");
    assert_eq!(attr(n3, "data-master"), "");
    // The election of tiny starts from currentEpoch 3; the winner takes its epoch (property 10).
    assert_eq!(
        (
            attr(n3, "data-current-epoch"),
            attr(n3, "data-config-epoch")
        ),
        ("4", "4")
    );
    assert!(end.contains("<svg"), "the sequence diagram is drawn");
    render(&chromium, &profile, &url, Some(&screenshot("explorer.png")));
}

#[test]
fn a_check_report_is_one_self_contained_page_that_draws_its_steps() {
    let Some(chromium) = chromium() else { return };
    let dir = profile("report");
    let file = dir.join("report.html");
    let _ = std::fs::remove_file(&file);
    let (_, steps) = failover_example(Some(&file));
    let html = std::fs::read_to_string(&file).expect("the report is written");
    // Self-contained: nothing to fetch, no address at all.
    for external in ["http://", "https://", " src=", "<link", "@import"] {
        assert!(!html.contains(external), "the report refers to {external}");
    }
    for step in &steps {
        let json = serde_json::to_string(step)
            .expect("a string")
            .replace('<', "\\u003c");
        assert!(html.contains(&json), "the report has step {step}");
    }
    let dom = render(&chromium, &dir, &format!("file://{}", file.display()), None);
    assert!(dom.contains("data-ready=\"yes\""), "the page drew its data");
    assert!(dom.contains("RESULT: PASS"));
    // The first path shown is the failover example, at its last step.
    assert!(dom.contains("example for failover-completes"));
    for (i, step) in steps.iter().enumerate() {
        assert!(
            dom.contains(&format!("{}. {step}", i + 1)),
            "step {} ({step}) drawn",
            i + 1
        );
    }
    let n3 = card(&dom, "n3");
    assert_eq!(attr(n3, "data-role"), "master", "{n3}");
    assert_eq!(attr(n3, "data-current-epoch"), "4");
    render(
        &chromium,
        &dir,
        &format!("file://{}", file.display()),
        Some(&screenshot("check-report.png")),
    );
}
