//! End-to-end tests of `slotguard check`: the real binary, its exit status, its JSON report.

use std::process::Command;

fn slotguard() -> Command {
    Command::new(env!("CARGO_BIN_EXE_slotguard"))
}

fn json(args: &[&str]) -> (i32, serde_json::Value) {
    let out = slotguard()
        .arg("check")
        .args(args)
        .arg("--json")
        .arg("--quiet")
        .output()
        .expect("slotguard runs");
    let code = out.status.code().expect("exited");
    let value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is one JSON object ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    });
    (code, value)
}

/// The status a JSON report gives the property `name`, if the report lists it.
fn status(report: &serde_json::Value, name: &str) -> Option<serde_json::Value> {
    report["properties"]
        .as_array()
        .expect("properties")
        .iter()
        .find(|p| p["name"] == name)
        .map(|p| p["status"].clone())
}

/// `--timeout` stops a single-threaded run too (stateright's own timeout is checked only when a
/// worker runs out of work, which one depth-first worker never does before the end), and the
/// run is INCOMPLETE. `standard` cannot finish in the time the test allows, so a timeout that
/// is ignored makes the test fail at its deadline instead of hanging.
#[test]
fn a_single_threaded_run_stops_at_its_timeout() {
    let mut child = slotguard()
        .args([
            "check",
            "standard",
            "--threads",
            "1",
            "--timeout",
            "2",
            "--json",
            "--quiet",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("slotguard runs");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(300);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("a 2-second run was still going after 300 s");
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    let out = child.wait_with_output().expect("output");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    assert_eq!(status.code(), Some(3), "{report:#}");
    assert_eq!(report["complete"], false);
    assert_eq!(report["threads"], 1);
}

/// A small, complete configuration passes: exit 0, `complete`, every property as expected.
#[test]
fn a_complete_passing_run_exits_zero() {
    let (code, report) = json(&["tiny", "--crashes", "0"]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["complete"], true);
    assert_eq!(report["passed"], true);
    let props = report["properties"].as_array().expect("properties");
    assert!(props.len() >= 12);
    for p in props {
        match p["kind"].as_str() {
            Some("always") => assert_eq!(p["status"], "holds", "{p:#}"),
            Some("sometimes") => {
                assert_eq!(p["status"], "found", "{p:#}");
                assert!(p["counterexample"]["steps"]
                    .as_array()
                    .is_some_and(|s| !s.is_empty()));
            }
            other => panic!("unexpected kind {other:?}"),
        }
    }
    assert!(report["unique_states"].as_u64().is_some_and(|n| n > 1000));
    // The canonical network was audited before the PASS (model/check/src/audit.rs).
    assert_eq!(report["audit"]["status"], "ran", "{report:#}");
    let audit = &report["audit"]["report"];
    assert!(audit["failure"].is_null(), "{audit:#}");
    assert!(
        audit["rechecks"].as_u64().is_some_and(|n| n > 10_000),
        "{audit:#}"
    );
    let (_, exact) = json(&["tiny", "--crashes", "0", "--exact-network"]);
    assert!(
        exact["audit"].is_null(),
        "nothing to audit without the reduction"
    );
}

/// A run cut short by a limit is INCOMPLETE: non-zero exit, never "holds".
#[test]
fn a_truncated_run_is_incomplete_and_fails() {
    let (code, report) = json(&["tiny", "--max-states", "2000"]);
    assert_eq!(code, 3, "{report:#}");
    assert_eq!(report["complete"], false);
    assert_eq!(report["passed"], false);
    for p in report["properties"].as_array().expect("properties") {
        assert_ne!(p["status"], "holds");
    }
}

/// A run that outgrows `--max-memory-mb` stops INCOMPLETE with a report instead of being killed
/// (on a lossy network a depth-first search's paths grow to thousands of steps, and every
/// pending state keeps its path). The timeout is a backstop: a limit that is ignored ends the
/// run at the time limit, with the wrong reason.
#[test]
fn a_run_stops_at_its_memory_limit() {
    let (code, report) = json(&[
        "tiny",
        "--network",
        "lossy-duplicating",
        "--max-memory-mb",
        "300",
        "--timeout",
        "120",
    ]);
    assert_eq!(code, 3, "{report:#}");
    assert_eq!(report["complete"], false);
    assert!(
        report["incomplete_reason"]
            .as_str()
            .is_some_and(|r| r.contains("memory limit")),
        "{report:#}"
    );
}

/// A configuration in which no failover can happen (too few suspicions for a replica to see its
/// master fail) is reported as a failure: the sometimes-properties are not found.
#[test]
fn a_vacuous_configuration_fails() {
    let (code, report) = json(&["tiny", "--crashes", "0", "--suspicions", "2"]);
    assert_eq!(code, 1);
    assert_eq!(report["complete"], true);
    assert_eq!(
        status(&report, "failover-completes"),
        Some("not-found".into())
    );
}

/// Two replicas of one master compete only with four suspicions: each needs its own suspicion
/// of the master besides the two masters' that make the FAIL (specs/properties.md,
/// `replicas-compete`). With three, a complete run of `compete` (here without its crash, to be
/// quick) has failovers but no race, and fails for it. The targeted bound is in the report.
#[test]
fn three_suspicions_never_let_two_replicas_compete() {
    let (code, report) = json(&[
        "compete",
        "--suspicions",
        "3",
        "--crashes",
        "0",
        "--symmetry",
    ]);
    assert_eq!(code, 1, "{report:#}");
    assert_eq!(report["complete"], true);
    assert_eq!(report["config"]["suspects"], serde_json::json!([2]));
    assert_eq!(status(&report, "failover-completes"), Some("found".into()));
    assert_eq!(
        status(&report, "replicas-compete"),
        Some("not-found".into())
    );
}

/// `--suspects` sets the targeted bound from the command line and `any` lifts it. With only
/// the replica of `tiny` suspectable, no master can fail, so no failover happens and the
/// complete run fails for it.
#[test]
fn the_suspects_bound_can_be_set_and_lifted() {
    let (code, report) = json(&["tiny", "--suspects", "3", "--crashes", "0"]);
    assert_eq!(code, 1, "{report:#}");
    assert_eq!(report["complete"], true);
    assert_eq!(report["config"]["suspects"], serde_json::json!([3]));
    assert_eq!(
        status(&report, "failover-completes"),
        Some("not-found".into())
    );
    let (_, report) = json(&["compete", "--suspects", "any", "--max-states", "2000"]);
    assert!(report["config"].get("suspects").is_none(), "{report:#}");
}

/// `--symmetry` on a layout with interchangeable replicas: the report says so, lists the
/// self-check, and the reduced run gives the verdicts of the plain one with fewer states.
#[test]
fn symmetry_reduces_and_reports_itself() {
    let args = ["tiny", "--replicas", "0,0,2", "--suspicions", "2"];
    let (plain_code, plain) = json(&args);
    let mut with = args.to_vec();
    with.push("--symmetry");
    let (code, reduced) = json(&with);
    assert_eq!(code, plain_code);
    assert_eq!(reduced["symmetry"], true);
    assert_eq!(plain["symmetry"], false);
    assert!(reduced["unique_states"].as_u64() < plain["unique_states"].as_u64());
    assert_eq!(status(&reduced, "symmetry-sound"), Some("holds".into()));
    assert_eq!(status(&plain, "symmetry-sound"), None);
    for p in plain["properties"].as_array().expect("properties") {
        let name = p["name"].as_str().expect("name");
        assert_eq!(status(&reduced, name), Some(p["status"].clone()), "{name}");
    }
}

/// `--exact` turns every exact reduction off: the report says which were used, and the exact
/// run gives the reduced run's verdicts with more states.
#[test]
fn exact_runs_agree_with_reduced_runs() {
    let args = ["tiny", "--crashes", "0"];
    let (code, reduced) = json(&args);
    let mut with = args.to_vec();
    with.push("--exact");
    let (exact_code, exact) = json(&with);
    assert_eq!(code, exact_code);
    assert_eq!(
        reduced["reductions"],
        serde_json::json!([
            "canonical-network",
            "urgent-fail-undo",
            "settled-grants",
            "ping-twins"
        ])
    );
    assert_eq!(exact["reductions"], serde_json::json!([]));
    assert!(reduced["unique_states"].as_u64() < exact["unique_states"].as_u64());
    let statuses = |r: &serde_json::Value| -> Vec<(String, String)> {
        r["properties"]
            .as_array()
            .expect("properties")
            .iter()
            .map(|p| (p["name"].to_string(), p["status"].to_string()))
            .collect()
    };
    assert_eq!(statuses(&reduced), statuses(&exact));
}

/// Bad configurations get a one-line error and exit 2.
#[test]
fn bad_configurations_are_rejected() {
    for args in [
        vec!["no-such-config"],
        vec!["tiny", "--masters", "5", "--slots", "3"],
        vec!["tiny", "--replicas", "x"],
        vec!["tiny", "--symmetry", "--strategy", "bfs"],
        vec!["tiny", "--symmetry", "--strategy", "random"],
        vec!["tiny", "--suspects", "9"],
        vec!["tiny", "--suspects", "0,x"],
    ] {
        let out = slotguard().arg("check").args(&args).output().expect("runs");
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("error"), "{args:?}: {err}");
    }
}

/// Random walks on `large` find its failovers, report themselves, and never pass: exit 3
/// (incomplete, no violation), whatever they found. Seed 1 finds every sometimes-property
/// within 20,000 states; how many states walks need, seed by seed, is model/check/tests/walks.rs's
/// and specs/properties.md's business, not the CLI's.
#[test]
fn random_walks_are_reported_as_incomplete() {
    let (code, report) = json(&[
        "large",
        "--strategy",
        "random",
        "--threads",
        "1",
        "--max-states",
        "40000",
        "--seed",
        "1",
    ]);
    assert_eq!(code, 3, "{report:#}");
    assert_eq!(report["complete"], false);
    assert_eq!(report["passed"], false);
    assert_eq!(report["strategy"], "random");
    assert_eq!(report["walks"]["seed"], 1);
    assert!(report["walks"]["walks"].as_u64().is_some_and(|n| n > 0));
    assert!(report["incomplete_reason"]
        .as_str()
        .is_some_and(|r| r.contains("random walks")));
    assert_eq!(status(&report, "replicas-compete"), Some("found".into()));
    assert_eq!(
        status(&report, "one-winner-per-epoch"),
        Some("not-violated-so-far".into())
    );
}

/// The human report shows a table and the verdict.
#[test]
fn the_human_report_has_a_table_and_a_verdict() {
    let out = slotguard()
        .args(["check", "tiny", "--crashes", "0", "--quiet", "--examples"])
        .output()
        .expect("runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("slot-epoch-unique"));
    assert!(text.contains("complete: every reachable state was explored"));
    assert!(text.contains("example for failover-completes"));
    assert!(text.contains("explorer path: 0/"));
    assert!(text.trim_end().ends_with("RESULT: PASS"), "{text}");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

fn http_get(port: u16, path: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").ok()?;
    let mut body = String::new();
    s.read_to_string(&mut body).ok()?;
    Some(body)
}

/// The explorer path that `check` reports for a discovery opens in `explore`, at a state where
/// the discovery holds (here: the failover example, whose last state has a promoted replica).
#[test]
fn a_reported_path_opens_in_the_explorer() {
    let (_, report) = json(&["tiny", "--crashes", "0"]);
    let path = report["properties"]
        .as_array()
        .expect("properties")
        .iter()
        .find(|p| p["name"] == "failover-completes")
        .and_then(|p| p["counterexample"]["explorer_path"].as_str())
        .expect("the example has an explorer path")
        .to_string();
    let port = free_port();
    let mut child = slotguard()
        .args([
            "explore",
            "tiny",
            "--crashes",
            "0",
            "--path",
            &path,
            "--addr",
        ])
        .arg(format!("127.0.0.1:{port}"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("explore starts");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let body = loop {
        if let Some(b) = http_get(port, &format!("/api/steps/{path}")) {
            break b;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "explorer did not come up"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    let _ = child.kill();
    let _ = child.wait();
    let head: String = body.chars().take(200).collect();
    assert!(
        body.lines().next().is_some_and(|l| l.contains(" 200 ")),
        "{head}"
    );
    // The explorer draws the path's last state, which has n3 promoted.
    let json = body.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    let view: serde_json::Value = serde_json::from_str(json).expect("the view is JSON");
    assert_eq!(view["path"], path.as_str());
    assert_eq!(
        view["picture"]["nodes"][3]["role"], "master",
        "n3 is a master after the path: {head}"
    );
}

/// Bad explore arguments: one line on stderr, non-zero exit.
#[test]
fn explore_rejects_a_bad_address_a_used_port_and_a_bad_path() {
    let holder = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let used = holder.local_addr().expect("addr").to_string();
    for args in [
        vec!["explore", "--addr", "not-an-address"],
        vec!["explore", "--addr", used.as_str()],
        vec!["explore", "--path", "0/9999"],
    ] {
        let out = slotguard().args(&args).output().expect("runs");
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.trim().lines().count(), 1, "{args:?}: {err}");
        assert!(err.starts_with("slotguard: error:"), "{err}");
    }
}

/// `--durability` models clients' writes (implying `--writes 1`) and adds property 12: `sync`
/// passes, `async` is refused with Redis's lost write, said in words (specs/properties.md,
/// "Durability").
#[test]
fn durability_sync_passes_and_async_loses_a_write() {
    let (code, sync) = json(&["tiny", "--crashes", "0", "--durability", "sync"]);
    assert_eq!(code, 0, "{sync:#}");
    assert_eq!(
        status(&sync, "acknowledged-writes-kept"),
        Some("holds".into())
    );
    let (code, lost) = json(&["tiny", "--crashes", "0", "--durability", "async"]);
    assert_ne!(code, 0);
    assert_eq!(
        status(&lost, "acknowledged-writes-kept"),
        Some("violated".into()),
        "{lost:#}"
    );
    let property = lost["properties"]
        .as_array()
        .and_then(|p| p.iter().find(|p| p["name"] == "acknowledged-writes-kept"))
        .expect("listed");
    let why = property["counterexample"]["why"]
        .as_str()
        .unwrap_or_default();
    assert!(why.contains("acknowledged to the client"), "{property:#}");
    let (_, plain) = json(&["tiny", "--crashes", "0"]);
    assert_eq!(status(&plain, "acknowledged-writes-kept"), None);
}
