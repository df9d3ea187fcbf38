//! Failover time and detection time: a master is killed with SIGKILL under a steady client
//! load, and the times from the kill are read from the nodes themselves and from the client.
//!
//! Why from the nodes' own `CLUSTER NODES`, every few milliseconds, on one connection and one
//! thread per node: "marked FAIL", "promoted" and "agrees on the new owner" are states of each
//! node's view, and a client sees a view only by asking; a thread per node keeps one slow
//! answer from delaying the others' timestamps. The first write is the client's side: a
//! client that follows `MOVED`, as cluster clients do, writing a key of the killed master's
//! slots every 10 ms.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Result};
use redis_protocol::resp2::types::OwnedFrame;
use serde::Serialize;

use crate::cluster::{Cluster, Shape, System, Tools};
use crate::resp::{self, Conn};
use crate::view::View;

/// The times of one failover, in seconds from the kill (`None`: not seen before the run's
/// deadline).
#[derive(Clone, Debug, Serialize)]
pub(crate) struct FailoverRun {
    /// Which system.
    pub(crate) system: System,
    /// Nodes in the cluster.
    pub(crate) nodes: usize,
    /// cluster-node-timeout, ms.
    pub(crate) node_timeout_ms: u64,
    /// The first node shows the killed master `fail`.
    pub(crate) first_fail: Option<f64>,
    /// Every live node shows it `fail` (detection time at scale).
    pub(crate) all_fail: Option<f64>,
    /// Its replica shows itself master.
    pub(crate) promoted: Option<f64>,
    /// Every live node shows the replica as the owner of the killed master's slots.
    pub(crate) all_agree: Option<f64>,
    /// The client's first write accepted by the new owner.
    pub(crate) first_write: Option<f64>,
}

/// What the pollers and the writer saw, as instants.
#[derive(Default)]
struct Marks {
    fail: Vec<Option<Instant>>,
    agree: Vec<Option<Instant>>,
    promoted: Option<Instant>,
    first_write: Option<Instant>,
}

/// Runs one failover on a fresh cluster of `shape`, polling each node every `poll`.
pub(crate) fn run(
    tools: &Tools,
    system: System,
    shape: Shape,
    poll: Duration,
) -> Result<FailoverRun> {
    let mut cluster = Cluster::start(tools, system, shape)?;
    // A moment of steady state: every ping schedule running, no start-up traffic.
    std::thread::sleep(Duration::from_secs(1));
    let view = View::parse(&resp::once(cluster.ports[0], &["CLUSTER", "NODES"])?)?;
    let victim_port = view
        .owner_port(0)
        .ok_or_else(|| anyhow!("nobody owns slot 0"))?;
    let victim = view
        .by_port(victim_port)
        .ok_or_else(|| anyhow!("no line for port {victim_port}"))?
        .clone();
    let replicas: Vec<u16> = view
        .lines
        .iter()
        .filter(|l| l.master_id.as_deref() == Some(victim.id.as_str()))
        .map(|l| l.port)
        .collect();
    if replicas.is_empty() {
        return Err(anyhow!("the master of slot 0 has no replica"));
    }
    let (first, last) = victim.slots.first().copied().unwrap_or((0, 0));
    let key = (0..)
        .map(|n| format!("{{bench{n}}}"))
        .find(|k| (first..=last).contains(&resp::key_slot(k)))
        .ok_or_else(|| anyhow!("no key for slots {first}-{last}"))?;
    let victim_index = cluster
        .ports
        .iter()
        .position(|&p| p == victim_port)
        .ok_or_else(|| anyhow!("port {victim_port} is not one of the cluster's"))?;
    let live: Vec<u16> = cluster
        .ports
        .iter()
        .copied()
        .filter(|&p| p != victim_port)
        .collect();

    let marks = Arc::new(Mutex::new(Marks {
        fail: vec![None; live.len()],
        agree: vec![None; live.len()],
        ..Marks::default()
    }));
    let killed = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let mut threads = Vec::new();
    for (i, &port) in live.iter().enumerate() {
        let (marks, killed, stop, victim_id, replicas) = (
            Arc::clone(&marks),
            Arc::clone(&killed),
            Arc::clone(&stop),
            victim.id.clone(),
            replicas.clone(),
        );
        threads.push(std::thread::spawn(move || {
            let mut conn: Option<Conn> = None;
            while !stop.load(Ordering::Relaxed) {
                let answer = match conn.as_mut() {
                    Some(c) => c.text(&["CLUSTER", "NODES"]),
                    None => Conn::open(port, Duration::from_secs(1)).and_then(|mut c| {
                        let t = c.text(&["CLUSTER", "NODES"]);
                        conn = Some(c);
                        t
                    }),
                };
                let now = Instant::now();
                match answer.and_then(|t| View::parse(&t)) {
                    Ok(view) if killed.load(Ordering::Relaxed) => {
                        if let Ok(mut m) = marks.lock() {
                            if view.by_id(&victim_id).is_some_and(|l| l.fail) {
                                m.fail[i].get_or_insert(now);
                            }
                            if view
                                .owner_port(first)
                                .is_some_and(|p| replicas.contains(&p))
                            {
                                m.agree[i].get_or_insert(now);
                            }
                            let me = view.lines.iter().find(|l| l.myself);
                            if replicas.contains(&port) && me.is_some_and(|l| l.master) {
                                m.promoted.get_or_insert(now);
                            }
                        }
                    }
                    Ok(_) => {}
                    Err(_) => conn = None,
                }
                std::thread::sleep(poll);
            }
        }));
    }
    {
        let (marks, killed, stop, live) = (
            Arc::clone(&marks),
            Arc::clone(&killed),
            Arc::clone(&stop),
            live.clone(),
        );
        threads.push(std::thread::spawn(move || {
            write_until_stopped(&key, victim_port, &live, &marks, &killed, &stop)
        }));
    }
    std::thread::sleep(Duration::from_millis(200));
    let t0 = Instant::now();
    killed.store(true, Ordering::Relaxed);
    cluster.kill(victim_index)?;
    let deadline = t0 + Duration::from_millis(shape.node_timeout_ms * 20) + Duration::from_secs(10);
    loop {
        let done = marks.lock().is_ok_and(|m| {
            m.fail.iter().all(Option::is_some)
                && m.agree.iter().all(Option::is_some)
                && m.promoted.is_some()
                && m.first_write.is_some()
        });
        if done || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        let _ = t.join();
    }
    let m = marks.lock().map_err(|_| anyhow!("a poller panicked"))?;
    let since = |t: Option<Instant>| t.map(|t| t.saturating_duration_since(t0).as_secs_f64());
    let all = |v: &[Option<Instant>]| -> Option<Instant> {
        v.iter()
            .copied()
            .collect::<Option<Vec<_>>>()?
            .into_iter()
            .max()
    };
    Ok(FailoverRun {
        system,
        nodes: shape.nodes(),
        node_timeout_ms: shape.node_timeout_ms,
        first_fail: since(m.fail.iter().flatten().min().copied()),
        all_fail: since(all(&m.fail)),
        promoted: since(m.promoted),
        all_agree: since(all(&m.agree)),
        first_write: since(m.first_write),
    })
}

/// The client: `SET key` every 10 ms, following `MOVED`; a node that does not answer sends it
/// to the next live node, which redirects it to the owner in its view.
fn write_until_stopped(
    key: &str,
    start_port: u16,
    live: &[u16],
    marks: &Mutex<Marks>,
    killed: &AtomicBool,
    stop: &AtomicBool,
) {
    let mut target = start_port;
    let mut conn: Option<(u16, Conn)> = None;
    let mut next_live = 0;
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let value = n.to_string();
        let reply = match &mut conn {
            Some((port, c)) if *port == target => c.cmd(&["SET", key, &value]),
            _ => Conn::open(target, Duration::from_millis(500)).and_then(|mut c| {
                let r = c.cmd(&["SET", key, &value]);
                conn = Some((target, c));
                r
            }),
        };
        let now = Instant::now();
        match reply {
            Ok(OwnedFrame::SimpleString(_)) => {
                if killed.load(Ordering::Relaxed) && target != start_port {
                    if let Ok(mut m) = marks.lock() {
                        m.first_write.get_or_insert(now);
                    }
                }
            }
            Ok(OwnedFrame::Error(e)) => {
                // `MOVED <slot> <ip>:<port>`; anything else (CLUSTERDOWN): retry.
                if let Some(port) = e
                    .strip_prefix("MOVED ")
                    .and_then(|r| r.rsplit(':').next())
                    .and_then(|p| p.parse().ok())
                {
                    target = port;
                    std::thread::sleep(Duration::from_millis(1));
                    continue;
                }
            }
            Ok(_) => {}
            Err(_) => {
                conn = None;
                target = live[next_live % live.len()];
                next_live += 1;
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}
