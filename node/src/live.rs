//! The live view of `slotguard cluster --ui-port`: the page of `page.rs` with one card per
//! running node, refreshed from the nodes, so that a failover can be watched as it happens.
//!
//! Why each node reports its own card: a card is what one node believes, and the node has that
//! state (the actor's `NodeState`). `CLUSTER PICTURE` answers it as JSON, built by the
//! explorer's own builder (`slotguard_check::picture::node_card`), so a live card is the
//! explorer's card: role, master, epochs, slot owners in its view, the peers it has PFAIL or
//! FAIL with the failure reports it holds, and its election. A node that does not know the
//! command (another build) is read from `CLUSTER NODES` and `CLUSTER INFO` instead, as any
//! client reads them, and what those do not say stays `None` ("not reported").
//!
//! Why a thread per node with a short timeout: a node that is stopped (SIGSTOP) or slow must
//! grey only its own card; polled one after another, it would hold up every card behind it. A
//! node that does not answer keeps its last card, marked unreachable. Each answer is compared
//! with the node's previous one, and the changes (role, master, epochs, suspicions, slot owners,
//! reachability) are listed as events on the page's sequence diagram, newest last.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Result};
use redis_protocol::resp2::types::OwnedFrame;
use serde::Serialize;
use slotguard_check::picture::{Belief, Fact, NodeCard, Picture, SlotRun, StepView};

use crate::cluster_cmd::resp_command_within;
use crate::page;

/// How often each node is asked.
const POLL: Duration = Duration::from_millis(500);
/// How long a node may take to answer before its card is greyed as unreachable: short, so
/// that a stopped node (SIGSTOP, a full disk) shows within a second.
const ANSWER_WITHIN: Duration = Duration::from_millis(1000);
/// Events kept for the page.
const EVENTS: usize = 80;

/// One line of `CLUSTER NODES`, as far as a card needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct NodeLine {
    id: String,
    port: u16,
    myself: bool,
    master_role: bool,
    pfail: bool,
    fail: bool,
    master_id: Option<String>,
    slots: Vec<(u16, u16)>,
}

/// Parses `CLUSTER NODES` (Redis's format, specs/background.md §R8). Lines that do not parse
/// are an error: a node that answers something else is shown as unreachable, with the reason.
fn parse_nodes(text: &str) -> Result<Vec<NodeLine>> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let f: Vec<&str> = line.split(' ').collect();
            if f.len() < 8 {
                bail!("CLUSTER NODES line with {} fields: {line:?}", f.len());
            }
            // `ip:port@bus[,hostname]`
            let port = f[1]
                .split('@')
                .next()
                .and_then(|a| a.rsplit(':').next())
                .and_then(|p| p.parse().ok())
                .ok_or_else(|| anyhow!("no client port in {:?}", f[1]))?;
            let flags: Vec<&str> = f[2].split(',').collect();
            let mut slots = Vec::new();
            for range in &f[8..] {
                let (a, b) = range.split_once('-').unwrap_or((range, range));
                match (a.parse(), b.parse()) {
                    (Ok(a), Ok(b)) if a <= b => slots.push((a, b)),
                    _ => bail!("slot range {range:?} in CLUSTER NODES"),
                }
            }
            Ok(NodeLine {
                id: f[0].to_string(),
                port,
                myself: flags.contains(&"myself"),
                master_role: flags.contains(&"master"),
                pfail: flags.contains(&"fail?"),
                fail: flags.contains(&"fail"),
                master_id: (f[3] != "-").then(|| f[3].to_string()),
                slots,
            })
        })
        .collect()
}

/// `field:value` lines of `CLUSTER INFO`.
fn info_field(info: &str, field: &str) -> Option<String> {
    info.lines()
        .filter_map(|l| l.trim_end().split_once(':'))
        .find(|(k, _)| *k == field)
        .map(|(_, v)| v.to_string())
}

fn bulk_text(frame: OwnedFrame) -> Result<String> {
    match frame {
        OwnedFrame::BulkString(b) | OwnedFrame::SimpleString(b) => {
            Ok(String::from_utf8_lossy(&b).into_owned())
        }
        OwnedFrame::Error(e) => bail!("{e}"),
        other => bail!("unexpected reply {other:?}"),
    }
}

/// The card of the node at `ports[me]` from its own `CLUSTER NODES` and `CLUSTER INFO`.
fn card(me: usize, ports: &[u16], slot_count: usize, nodes: &str, info: &str) -> Result<NodeCard> {
    let lines = parse_nodes(nodes)?;
    let index_of_port = |port: u16| ports.iter().position(|&p| p == port);
    let index_of_id = |id: &str| {
        lines
            .iter()
            .find(|l| l.id == id)
            .and_then(|l| index_of_port(l.port))
    };
    let own = lines
        .iter()
        .find(|l| l.myself)
        .ok_or_else(|| anyhow!("CLUSTER NODES has no `myself` line"))?;
    if index_of_port(own.port) != Some(me) {
        bail!(
            "the node on port {} calls itself the node of port {}",
            ports.get(me).copied().unwrap_or_default(),
            own.port
        );
    }
    let mut owned: Vec<(u16, u16, String)> = lines
        .iter()
        .filter_map(|l| index_of_port(l.port).map(|i| (l, i)))
        .flat_map(|(l, i)| l.slots.iter().map(move |&(a, b)| (a, b, format!("n{i}"))))
        .collect();
    owned.sort();
    let mut slots = Vec::new();
    let mut next: u32 = 0;
    for (a, b, owner) in owned {
        if u32::from(a) > next {
            slots.push(SlotRun {
                start: next as u16,
                end: a - 1,
                owner: None,
            });
        }
        slots.push(SlotRun {
            start: a,
            end: b,
            owner: Some(owner),
        });
        next = u32::from(b) + 1;
    }
    if (next as usize) < slot_count {
        slots.push(SlotRun {
            start: next as u16,
            end: (slot_count - 1) as u16,
            owner: None,
        });
    }
    let beliefs = lines
        .iter()
        .filter(|l| !l.myself && (l.pfail || l.fail))
        .filter_map(|l| {
            Some(Belief {
                peer: format!("n{}", index_of_port(l.port)?),
                health: if l.fail { "FAIL" } else { "PFAIL" }.to_string(),
                reports: Vec::new(),
            })
        })
        .collect();
    let epoch = |field: &str| info_field(info, field).and_then(|v| v.parse().ok());
    let mut extra = Vec::new();
    if let Some(state) = info_field(info, "cluster_state") {
        extra.push(Fact {
            label: "cluster_state".to_string(),
            value: state,
        });
    }
    Ok(NodeCard {
        id: format!("n{me}"),
        name: Some(own.id.chars().take(8).collect()),
        address: Some(format!("127.0.0.1:{}", own.port)),
        down: None,
        role: if own.master_role { "master" } else { "replica" }.to_string(),
        master: own.master_id.as_deref().map(|id| {
            index_of_id(id).map_or_else(|| id.chars().take(8).collect(), |i| format!("n{i}"))
        }),
        current_epoch: epoch("cluster_current_epoch"),
        config_epoch: epoch("cluster_my_epoch"),
        last_vote_epoch: epoch("slotguard_last_vote_epoch"),
        slots,
        beliefs,
        election: None,
        votes: Vec::new(),
        timers: Vec::new(),
        extra,
    })
}

/// What changed on one card between two polls, in words (`role replica -> master`).
fn changes(before: &NodeCard, after: &NodeCard) -> Vec<(String, String)> {
    let mut out = Vec::new();
    match (&before.down, &after.down) {
        (None, Some(why)) => out.push(("unreachable".to_string(), why.clone())),
        (Some(_), None) => out.push(("answers".to_string(), "answers again".to_string())),
        _ => {}
    }
    if after.down.is_some() {
        return out;
    }
    if before.role != after.role || before.master != after.master {
        let role = |c: &NodeCard| match &c.master {
            Some(m) => format!("{} of {m}", c.role),
            None => c.role.clone(),
        };
        out.push((
            format!("now {}", role(after)),
            format!("role {} -> {}", role(before), role(after)),
        ));
    }
    for (name, x, y) in [
        ("currentEpoch", before.current_epoch, after.current_epoch),
        ("configEpoch", before.config_epoch, after.config_epoch),
        (
            "lastVoteEpoch",
            before.last_vote_epoch,
            after.last_vote_epoch,
        ),
    ] {
        if x != y {
            let show = |v: Option<u64>| v.map_or("?".to_string(), |v| v.to_string());
            out.push((
                format!("{name} {}", show(y)),
                format!("{name} {} -> {}", show(x), show(y)),
            ));
        }
    }
    let health = |c: &NodeCard, peer: &str| {
        c.beliefs
            .iter()
            .find(|b| b.peer == peer)
            .map_or("ok".to_string(), |b| b.health.clone())
    };
    let mut peers: Vec<&str> = before
        .beliefs
        .iter()
        .chain(&after.beliefs)
        .map(|b| b.peer.as_str())
        .collect();
    peers.sort_unstable();
    peers.dedup();
    for peer in peers {
        let (x, y) = (health(before, peer), health(after, peer));
        if x != y {
            out.push((format!("{peer} {y}"), format!("{peer}: {x} -> {y}")));
        }
    }
    if before.slots != after.slots {
        let owners = |c: &NodeCard| {
            c.slots
                .iter()
                .map(|r| {
                    format!(
                        "{}-{}:{}",
                        r.start,
                        r.end,
                        r.owner.as_deref().unwrap_or("-")
                    )
                })
                .collect::<Vec<_>>()
                .join(" ")
        };
        out.push((
            "slots moved".to_string(),
            format!("slots [{}] -> [{}]", owners(before), owners(after)),
        ));
    }
    out
}

/// What the page is sent.
#[derive(Clone, Debug, Default, Serialize)]
struct LiveView {
    subtitle: String,
    picture: Picture,
    events: Vec<StepView>,
    poll_ms: u64,
    /// Answers (or failures to answer) so far, over all nodes.
    polls: u64,
    /// Changes listed so far (the number of the next event, less one).
    #[serde(skip)]
    changes_seen: usize,
}

/// One node's card: its own answer to `CLUSTER PICTURE` (the explorer's card builder, run by
/// the node on its own state), or, from a node that does not know that command, the card read
/// from its `CLUSTER NODES` and `CLUSTER INFO`.
fn poll_node(me: usize, ports: &[u16], slot_count: usize) -> Result<NodeCard> {
    let port = *ports
        .get(me)
        .ok_or_else(|| anyhow!("no node {me} among {} ports", ports.len()))?;
    let ask = |args: &[&str]| resp_command_within(port, args, ANSWER_WITHIN);
    match ask(&["CLUSTER", "PICTURE"])? {
        OwnedFrame::Error(e) if e.contains("unknown subcommand") => {
            let nodes = ask(&["CLUSTER", "NODES"]).and_then(bulk_text)?;
            let info = ask(&["CLUSTER", "INFO"]).and_then(bulk_text)?;
            card(me, ports, slot_count, &nodes, &info)
        }
        reply => {
            let card: NodeCard = serde_json::from_str(&bulk_text(reply)?)
                .map_err(|e| anyhow!("CLUSTER PICTURE is not a card: {e}"))?;
            if card.id != format!("n{me}") {
                bail!("the node on port {port} says it is {}", card.id);
            }
            Ok(card)
        }
    }
}

/// Why a node did not answer, in words: a read that timed out says so, rather than the OS's
/// "Resource temporarily unavailable".
fn why_unreachable(e: &anyhow::Error) -> String {
    match e.downcast_ref::<std::io::Error>().map(std::io::Error::kind) {
        Some(std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
            format!("no answer within {} ms", ANSWER_WITHIN.as_millis())
        }
        _ => e.to_string(),
    }
}

/// Polls node `me` for ever, on its own thread: its card in `view` and the changes it shows
/// among the events. A node that does not answer within [`ANSWER_WITHIN`] keeps its last card,
/// marked unreachable; the other nodes' threads do not wait for it.
fn poll_forever(
    me: usize,
    ports: Vec<u16>,
    slot_count: usize,
    view: Arc<Mutex<LiveView>>,
    start: Instant,
) {
    let mut polled = false;
    loop {
        let answer = poll_node(me, &ports, slot_count);
        let Ok(mut v) = view.lock() else { return };
        let Some(before) = v.picture.nodes.get(me).cloned() else {
            return;
        };
        let next = match answer {
            Ok(card) => card,
            Err(e) => NodeCard {
                down: Some(format!("unreachable: {}", why_unreachable(&e))),
                ..before.clone()
            },
        };
        if polled {
            for (label, text) in changes(&before, &next) {
                v.changes_seen += 1;
                let index = v.changes_seen;
                v.events.push(StepView {
                    index,
                    action: format!("+{:.1}s n{me}: {text}", start.elapsed().as_secs_f64()),
                    kind: "event".to_string(),
                    from: None,
                    to: me,
                    label,
                    changes: Vec::new(),
                    sent: Vec::new(),
                });
            }
            let excess = v.events.len().saturating_sub(EVENTS);
            v.events.drain(..excess);
        }
        polled = true;
        v.picture.nodes[me] = next;
        v.polls += 1;
        drop(v);
        std::thread::sleep(POLL);
    }
}

/// Starts polling `ports` and serving the live page on `addr`; returns the address served.
pub(crate) fn serve(
    addr: SocketAddr,
    ports: Vec<u16>,
    slot_count: usize,
    subtitle: String,
) -> Result<SocketAddr> {
    let server = tiny_http::Server::http(addr)
        .map_err(|e| anyhow!("cannot serve the live view on {addr}: {e}"))?;
    let served = server
        .server_addr()
        .to_ip()
        .ok_or_else(|| anyhow!("the live view is not on an IP address"))?;
    let title = "slotguard cluster: live view";
    let html = page::page(
        title,
        &serde_json::json!({"mode": "live", "title": title, "subtitle": subtitle,
                            "poll_ms": POLL.as_millis() as u64}),
    )?;
    let waiting = |i: usize| NodeCard {
        id: format!("n{i}"),
        address: Some(format!("127.0.0.1:{}", ports[i])),
        role: "?".to_string(),
        down: Some("unreachable: not asked yet".to_string()),
        ..NodeCard::default()
    };
    let view = Arc::new(Mutex::new(LiveView {
        subtitle,
        poll_ms: POLL.as_millis() as u64,
        picture: Picture {
            nodes: (0..ports.len()).map(waiting).collect(),
            slot_count,
            ..Picture::default()
        },
        ..LiveView::default()
    }));
    let start = Instant::now();
    for me in 0..ports.len() {
        let (ports, view) = (ports.clone(), Arc::clone(&view));
        std::thread::spawn(move || poll_forever(me, ports, slot_count, view, start));
    }
    std::thread::spawn(move || {
        for request in server.incoming_requests() {
            let response = match request.url() {
                "/" | "/index.html" => {
                    page::response(200, "text/html; charset=utf-8", html.as_bytes())
                }
                "/api/live" => {
                    let body = view
                        .lock()
                        .map_err(|_| anyhow!("a poller panicked"))
                        .and_then(|v| Ok(serde_json::to_vec(&*v)?));
                    match body {
                        Ok(body) => page::response(200, "application/json", body),
                        Err(e) => page::response(500, "text/plain; charset=utf-8", e.to_string()),
                    }
                }
                _ => page::response(404, "text/plain; charset=utf-8", "not found"),
            };
            let _ = request.respond(response);
        }
    });
    Ok(served)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NODES: &str = "\
aaaaaaaa11111111111111111111111111111111 127.0.0.1:7000@17000 master,fail - 0 0 1 disconnected 0-5460
bbbbbbbb22222222222222222222222222222222 127.0.0.1:7001@17001 master - 0 0 2 connected 5461-10922
cccccccc33333333333333333333333333333333 127.0.0.1:7002@17002 master - 0 0 3 connected 10923-16383
dddddddd44444444444444444444444444444444 127.0.0.1:7003@17003 myself,slave aaaaaaaa11111111111111111111111111111111 0 0 1 connected
eeeeeeee55555555555555555555555555555555 127.0.0.1:7004@17004 slave,fail? bbbbbbbb22222222222222222222222222222222 0 0 2 connected
";
    const INFO: &str = "cluster_enabled:1\r\ncluster_state:ok\r\ncluster_current_epoch:6\r\ncluster_my_epoch:1\r\nslotguard_last_vote_epoch:0\r\n";
    const PORTS: [u16; 5] = [7000, 7001, 7002, 7003, 7004];

    #[test]
    fn a_card_shows_the_nodes_own_view() {
        let c = card(3, &PORTS, 16384, NODES, INFO).expect("parses");
        assert_eq!(c.id, "n3");
        assert_eq!(c.name.as_deref(), Some("dddddddd"));
        assert_eq!(
            (c.role.as_str(), c.master.as_deref()),
            ("replica", Some("n0"))
        );
        assert_eq!(
            (c.current_epoch, c.config_epoch, c.last_vote_epoch),
            (Some(6), Some(1), Some(0))
        );
        let owners: Vec<(u16, u16, Option<&str>)> = c
            .slots
            .iter()
            .map(|r| (r.start, r.end, r.owner.as_deref()))
            .collect();
        assert_eq!(
            owners,
            [
                (0, 5460, Some("n0")),
                (5461, 10922, Some("n1")),
                (10923, 16383, Some("n2"))
            ]
        );
        let beliefs: Vec<(&str, &str)> = c
            .beliefs
            .iter()
            .map(|b| (b.peer.as_str(), b.health.as_str()))
            .collect();
        assert_eq!(beliefs, [("n0", "FAIL"), ("n4", "PFAIL")]);
        assert_eq!(c.election, None, "no node reports its election");
    }

    #[test]
    fn unbound_slots_are_runs_without_owner_and_bad_input_is_an_error() {
        let one = "aaaaaaaa 127.0.0.1:7000@17000 myself,master - 0 0 1 connected 10-19\n";
        let c = card(0, &[7000], 30, one, INFO).expect("parses");
        let owners: Vec<(u16, u16, Option<&str>)> = c
            .slots
            .iter()
            .map(|r| (r.start, r.end, r.owner.as_deref()))
            .collect();
        assert_eq!(owners, [(0, 9, None), (10, 19, Some("n0")), (20, 29, None)]);
        assert!(card(0, &[7000], 30, "garbage", INFO).is_err());
        assert!(card(0, &[7000], 30, &one.replace("10-19", "19-x"), INFO).is_err());
        assert!(
            card(1, &[7000, 7001], 30, one, INFO).is_err(),
            "the node on 7001 says it is 7000"
        );
    }

    #[test]
    fn changes_name_a_promotion_a_new_fail_and_a_node_gone() {
        let before = card(3, &PORTS, 16384, NODES, INFO).expect("parses");
        let promoted = NODES
            .replace(
                "myself,slave aaaaaaaa11111111111111111111111111111111 0 0 1 connected",
                "myself,master - 0 0 7 connected 0-5460",
            )
            .replace(
                "master,fail - 0 0 1 disconnected 0-5460",
                "master,fail - 0 0 1 disconnected",
            )
            .replace("slave,fail?", "slave,fail");
        let after =
            card(3, &PORTS, 16384, &promoted, &INFO.replace(":6\r", ":7\r")).expect("parses");
        let labels: Vec<String> = changes(&before, &after)
            .into_iter()
            .map(|(l, _)| l)
            .collect();
        assert!(labels.contains(&"now master".to_string()), "{labels:?}");
        assert!(labels.contains(&"currentEpoch 7".to_string()), "{labels:?}");
        assert!(labels.contains(&"n4 FAIL".to_string()), "{labels:?}");
        assert!(labels.contains(&"slots moved".to_string()), "{labels:?}");
        let mut gone = after.clone();
        gone.down = Some("unreachable: refused".to_string());
        let labels: Vec<String> = changes(&after, &gone).into_iter().map(|(l, _)| l).collect();
        assert_eq!(labels, ["unreachable"]);
    }
}
