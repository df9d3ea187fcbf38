//! The recording workload: workers write unique values to fresh keys and read back keys
//! written lately (by any worker), at a steady pace, recording every operation with its
//! invoke and completion times and its outcome.
//!
//! Why each key is written once (its value is its own number): a key written again after a
//! write was lost would hide the loss from the final read, so every acknowledged write could
//! not be accounted for. Reads of keys other workers wrote make the per-key histories
//! concurrent, so that a stale read (a key read as absent after its write was acknowledged)
//! is an anomaly the linearizability check sees.
//!
//! Why the client runs in the host namespace: it reaches every node, the isolated one too,
//! like a client on the isolated node's side of a partition would. That is the case in which
//! an isolated master can acknowledge writes at all (a client that cannot reach it loses
//! nothing to it), so it is the one that measures what a partition can cost.

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::client::{Answer, Client};
use super::resp::Reply;

/// What became of an operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Completed at `at_us`; a read returns `read` (0: the key is absent).
    Ok {
        /// Completion, µs since the start.
        at_us: u64,
        /// A read's value.
        read: u64,
    },
    /// Surely not applied.
    Fail,
    /// Maybe applied, at any time from its invocation on.
    Unknown,
}

/// One operation of the history.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Op {
    /// The logical process: a worker gets a new one after an operation of unknown outcome
    /// (that operation stays in flight forever, as Jepsen treats a crashed process).
    pub(crate) process: u64,
    /// The key's number, also the value written to it.
    pub(crate) key: u64,
    /// A write (of `key`) or a read.
    pub(crate) write: bool,
    /// Invocation, µs since the start.
    pub(crate) invoke_us: u64,
    /// The outcome.
    pub(crate) outcome: Outcome,
}

/// The process number of the final read-back.
pub(crate) const FINAL: u64 = u64::MAX;

/// The key's name.
pub(crate) fn key_name(key: u64) -> String {
    format!("fk:{key}")
}

/// A value read, as a number: 0 when absent, `u64::MAX - 1` when it is not a value any
/// write wrote.
fn value_of(reply: &Reply) -> u64 {
    match reply {
        Reply::Nil => 0,
        Reply::Text(t) => t.parse().unwrap_or(u64::MAX - 1),
        _ => u64::MAX - 1,
    }
}

/// The shape of the load.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Load {
    /// Client threads.
    pub(crate) workers: usize,
    /// Operations per second per worker.
    pub(crate) rate: u32,
    /// Share of reads, percent.
    pub(crate) read_percent: u32,
    /// How long a request waits for its reply.
    pub(crate) timeout: Duration,
    /// `WAIT 1 <ms>` after each write.
    pub(crate) wait_ms: Option<u64>,
}

/// A running load.
pub(crate) struct Recorder {
    start: Instant,
    stop: Arc<AtomicBool>,
    ops: Arc<Mutex<Vec<Op>>>,
    reasons: Arc<Mutex<BTreeMap<String, usize>>>,
    workers: Vec<std::thread::JoinHandle<()>>,
}

impl Recorder {
    /// Starts `load` against the nodes `seeds`.
    pub(crate) fn start(seeds: Vec<SocketAddr>, load: Load) -> Recorder {
        let start = Instant::now();
        let stop = Arc::new(AtomicBool::new(false));
        let ops = Arc::new(Mutex::new(Vec::new()));
        let next_key = Arc::new(AtomicU64::new(1));
        let recent = Arc::new(Mutex::new(VecDeque::new()));
        let reasons = Arc::new(Mutex::new(BTreeMap::new()));
        let workers = (0..load.workers)
            .map(|w| {
                let (stop, ops, next_key, recent, reasons, seeds) = (
                    Arc::clone(&stop),
                    Arc::clone(&ops),
                    Arc::clone(&next_key),
                    Arc::clone(&recent),
                    Arc::clone(&reasons),
                    seeds.clone(),
                );
                std::thread::spawn(move || {
                    let shared = Shared {
                        start,
                        stop,
                        ops,
                        next_key,
                        recent,
                        reasons,
                    };
                    work(w, seeds, load, &shared)
                })
            })
            .collect();
        Recorder {
            start,
            stop,
            ops,
            reasons,
            workers,
        }
    }

    /// µs since the load started.
    pub(crate) fn now_us(&self) -> u64 {
        self.start.elapsed().as_micros() as u64
    }

    /// Stops the workers and returns their history, and how often each reason of a failed
    /// or unknown operation came up.
    pub(crate) fn finish(self) -> (Vec<Op>, BTreeMap<String, usize>) {
        self.stop.store(true, Ordering::Relaxed);
        for w in self.workers {
            let _ = w.join();
        }
        let ops = self.ops.lock().map(|o| o.clone()).unwrap_or_default();
        let reasons = self.reasons.lock().map(|r| r.clone()).unwrap_or_default();
        (ops, reasons)
    }

    /// Reads every key written (by any attempt) once more, retrying each until it answers
    /// (within `within` in all), and appends these reads to `ops` as the final read-back.
    pub(crate) fn read_back(
        start: Instant,
        seeds: Vec<SocketAddr>,
        ops: &mut Vec<Op>,
        within: Duration,
    ) -> usize {
        let keys: std::collections::BTreeSet<u64> =
            ops.iter().filter(|o| o.write).map(|o| o.key).collect();
        let mut client = Client::new(seeds, Duration::from_secs(2), None, 0);
        let end = Instant::now() + within;
        let mut unread = 0;
        for key in keys {
            let name = key_name(key);
            loop {
                let invoke_us = start.elapsed().as_micros() as u64;
                if let Answer::Done(r) = client.get(&name) {
                    ops.push(Op {
                        process: FINAL,
                        key,
                        write: false,
                        invoke_us,
                        outcome: Outcome::Ok {
                            at_us: start.elapsed().as_micros() as u64,
                            read: value_of(&r),
                        },
                    });
                    break;
                }
                if Instant::now() > end {
                    unread += 1;
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        unread
    }

    /// When the load started.
    pub(crate) fn started(&self) -> Instant {
        self.start
    }
}

struct Shared {
    start: Instant,
    stop: Arc<AtomicBool>,
    ops: Arc<Mutex<Vec<Op>>>,
    next_key: Arc<AtomicU64>,
    recent: Arc<Mutex<VecDeque<u64>>>,
    reasons: Arc<Mutex<BTreeMap<String, usize>>>,
}

/// A reason without the addresses and numbers that differ from one occurrence to the next:
/// the error reply's code (`CLUSTERDOWN`, `NOREPLICAS`), or the I/O error's kind.
fn reason_kind(why: &str) -> String {
    let why = why.split_once(": ").map_or(why, |(_, rest)| rest);
    let why = why.strip_prefix("WAIT: ").unwrap_or(why);
    let words: Vec<&str> = why
        .split(' ')
        .filter(|w| !w.contains(':') && !w.chars().any(|c| c.is_ascii_digit()))
        .take(4)
        .collect();
    match words.first() {
        // A RESP error: its code says it all.
        Some(code) if code.chars().all(|c| c.is_ascii_uppercase()) => code.to_string(),
        _ => words.join(" ").trim_end_matches(" (os").to_string(),
    }
}

fn work(w: usize, seeds: Vec<SocketAddr>, load: Load, s: &Shared) {
    let mut client = Client::new(seeds, load.timeout, load.wait_ms, w);
    let period = Duration::from_secs(1) / load.rate.max(1);
    let mut rng = 0x9e37_79b9_7f4a_7c15_u64 ^ (w as u64 + 1).wrapping_mul(0x2545_f491_4f6c_dd1d);
    let mut generation = 0u64;
    let mut last_us = 0u64;
    let mut mine = Vec::new();
    let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
    while !s.stop.load(Ordering::Relaxed) {
        let began = Instant::now();
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let read_key = if rng % 100 < u64::from(load.read_percent) {
            s.recent
                .lock()
                .ok()
                .and_then(|r| (!r.is_empty()).then(|| r[(rng >> 8) as usize % r.len()]))
        } else {
            None
        };
        let (key, write) = match read_key {
            Some(k) => (k, false),
            None => (s.next_key.fetch_add(1, Ordering::Relaxed), true),
        };
        let process = (w as u64) << 32 | generation;
        // A worker's operations follow one another: the next is invoked after the last
        // returned, also when both fall in the same microsecond.
        let invoke_us = (s.start.elapsed().as_micros() as u64).max(last_us + 1);
        let name = key_name(key);
        let answer = if write {
            if let Ok(mut r) = s.recent.lock() {
                r.push_back(key);
                if r.len() > 200 {
                    r.pop_front();
                }
            }
            client.set(&name, &key.to_string())
        } else {
            client.get(&name)
        };
        let at_us = (s.start.elapsed().as_micros() as u64).max(invoke_us);
        last_us = at_us;
        match &answer {
            Answer::Refused(why) => {
                *reasons
                    .entry(format!("refused: {}", reason_kind(why)))
                    .or_default() += 1
            }
            Answer::Unknown(why) => {
                *reasons
                    .entry(format!("unknown: {}", reason_kind(why)))
                    .or_default() += 1
            }
            Answer::Done(_) => {}
        }
        let outcome = match &answer {
            Answer::Done(r) => Outcome::Ok {
                at_us,
                read: if write { 0 } else { value_of(r) },
            },
            Answer::Refused(_) => Outcome::Fail,
            Answer::Unknown(_) => {
                generation += 1;
                Outcome::Unknown
            }
        };
        mine.push(Op {
            process,
            key,
            write,
            invoke_us,
            outcome,
        });
        if !matches!(answer, Answer::Done(_)) {
            // A failed request is retried no faster than every 20 ms, as clients back off.
            std::thread::sleep(Duration::from_millis(20));
        }
        if let Some(rest) = period.checked_sub(began.elapsed()) {
            std::thread::sleep(rest);
        }
    }
    if let Ok(mut ops) = s.ops.lock() {
        ops.extend(mine);
    }
    if let Ok(mut all) = s.reasons.lock() {
        for (k, n) in reasons {
            *all.entry(k).or_default() += n;
        }
    }
}

/// The operations of each key, in invocation order.
pub(crate) fn by_key(ops: &[Op]) -> BTreeMap<u64, Vec<Op>> {
    let mut m: BTreeMap<u64, Vec<Op>> = BTreeMap::new();
    for o in ops {
        m.entry(o.key).or_default().push(*o);
    }
    for v in m.values_mut() {
        v.sort_by_key(|o| o.invoke_us);
    }
    m
}
