//! Generated and mutated input for the three readers of untrusted bytes: the datagram decoder
//! (through the whole [`Driver`] intake, so what decodes reaches the actor), the RESP request
//! parser and the replication stream reader (specs/protocol.md §12.5). Zero panics, and memory
//! bounded: the peak resident size is printed and checked.
//!
//! A short run is an ordinary test (CI); the run at scale, whose figures are in specs/, is
//! `cargo test --release -p slotguard --bin slotguard fuzz_at_scale -- --ignored --nocapture`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use slotguard::data::dataset::{Dataset, ReplId};
use slotguard::data::replication::{Change, Follower, Frame};
use slotguard::driver::{Driver, Now, Setup};
use slotguard::identity::NodeName;
use slotguard::wire::{self, BusKey};
use slotguard_protocol::{
    Epoch, GossipEntry, Header, InitialEpochs, Layout, Msg, NodeId, SlotSet, Suspicion, Timing,
};

use crate::runtime::request::{Limits, Parser};

const KEY: &[u8] = b"fuzz-test-key-0123456789";

/// splitmix64: a seeded generator, so a run is the same every time.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

/// `base` with one to four mutations: bit flips, interesting bytes, insertions, deletions,
/// truncation, duplicated or random splices.
fn mutate(rng: &mut Rng, base: &[u8]) -> Vec<u8> {
    let mut v = base.to_vec();
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(v.len() + 1);
        match rng.below(7) {
            0 if at < v.len() => v[at] ^= 1 << rng.below(8),
            1 if at < v.len() => {
                v[at] = [0, 1, 0x7f, 0x80, 0xff, b'\r', b'\n', b'$', b'*'][rng.below(9)]
            }
            2 => {
                let n = 1 + rng.below(8);
                let extra = rng.bytes(n);
                v.splice(at..at, extra);
            }
            3 if at < v.len() => {
                let end = (at + 1 + rng.below(8)).min(v.len());
                v.drain(at..end);
            }
            4 => v.truncate(at),
            5 if at < v.len() => {
                let end = (at + 1 + rng.below(16)).min(v.len());
                let chunk = v[at..end].to_vec();
                v.splice(at..at, chunk);
            }
            _ => {
                let n = rng.below(6);
                v.extend(rng.bytes(n));
            }
        }
    }
    v
}

/// Peak resident set size of this process, in bytes (Linux; 0 elsewhere).
fn peak_rss() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

fn slots(rng: &mut Rng) -> SlotSet {
    let start = rng.below(16384) as u16;
    (start..(start + rng.below(6000) as u16).min(16384)).collect()
}

fn message(rng: &mut Rng) -> Msg {
    let epoch = |rng: &mut Rng| Epoch(rng.below(8) as u64);
    let node = |rng: &mut Rng| NodeId(rng.below(6) as u16);
    match rng.below(4) {
        0 | 1 => {
            let h = Header {
                current_epoch: epoch(rng),
                config_epoch: epoch(rng),
                master: (rng.below(2) == 0).then(|| node(rng)),
                slots: slots(rng),
                repl_offset: rng.next() % 1000,
                flags: Default::default(),
            };
            if rng.below(2) == 0 {
                Msg::Ping(h)
            } else {
                Msg::Pong(h)
            }
        }
        2 => Msg::Gossip(GossipEntry {
            node: node(rng),
            suspicion: Suspicion::PFail,
            config_epoch: epoch(rng),
            from_voting_master: true,
        }),
        _ => Msg::AuthAck {
            epoch: epoch(rng),
            candidate: node(rng),
            forced: false,
        },
    }
}

/// Datagrams for node 0 of a 3 × 1 cluster of 16384 slots, through its driver: random bytes,
/// mutated authentic datagrams (the tag fails), and authentic datagrams around mutated or random
/// payloads (which decode, or not, and reach the actor when they do). Returns the driver's
/// counters.
fn fuzz_datagrams(inputs: u64, seed: u64) -> BTreeMap<&'static str, u64> {
    let layout = Arc::new(Layout::grid(3, 1, 16384, InitialEpochs::Distinct).expect("layout"));
    let addr = |i: usize| Some(SocketAddr::from(([127, 0, 0, 1], 29_000 + i as u16)));
    let mut now = Now {
        at: Instant::now(),
        unix_ms: 1_000_000,
    };
    let mut driver = Driver::start(
        Setup {
            layout: Arc::clone(&layout),
            timing: Timing::from_node_timeout(Duration::from_millis(1000)),
            durability: Default::default(),
            me: NodeId(0),
            key: KEY.to_vec(),
            name: NodeName([1; 20]),
            peer_names: Vec::new(),
            incarnation: 0,
            stored: None,
            addrs: (0..6).map(addr).collect(),
            trace: false,
        },
        now,
    );
    let key = BusKey::new(KEY, &layout);
    let mut rng = Rng(seed);
    for i in 0..inputs {
        let sender = 1 + rng.below(5) as u16;
        // Newer than every datagram before it: the replay filter lets the valid ones in.
        let sequence = i + 1;
        let address = wire::Address {
            sender,
            name: [sender as u8 + 1; 20],
            destination: 0,
            incarnation: 0,
            sequence,
        };
        let msgs: Vec<Msg> = (0..1 + rng.below(3)).map(|_| message(&mut rng)).collect();
        let bytes = match i % 4 {
            0 => {
                let n = rng.below(300);
                rng.bytes(n)
            }
            1 => mutate(&mut rng, &wire::seal(&key, address, &msgs).expect("seals")),
            2 => {
                let payload = postcard::to_allocvec(&msgs).expect("encodes");
                wire::seal_payload(&key, address, &mutate(&mut rng, &payload))
            }
            _ => {
                let n = rng.below(200);
                wire::seal_payload(&key, address, &rng.bytes(n))
            }
        };
        driver.handle_datagram(&bytes, now);
        while driver.poll_effect().is_some() {}
        if i % 1024 == 0 {
            now.at += Duration::from_millis(10);
            driver.handle_timeout(now);
            while driver.poll_effect().is_some() {}
        }
    }
    driver.counters().clone()
}

/// Requests for the RESP parser: mutated valid requests (multibulk and inline) and random bytes,
/// fed in random cuts; a connection whose error closes it starts afresh. Returns (commands,
/// recoverable errors, closing errors).
fn fuzz_resp(inputs: u64, seed: u64) -> (u64, u64, u64) {
    let limits = Limits {
        max_bulk_len: 512 << 20,
        max_multibulk_len: 1 << 20,
    };
    let corpus: [&[u8]; 6] = [
        b"*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\r\n",
        b"*2\r\n$3\r\nGET\r\n$3\r\nkey\r\n",
        b"PING\r\n",
        b"set \"a b\" 'c d'\r\n",
        b"*1\r\n$4\r\nPING\r\n*2\r\n$4\r\nECHO\r\n$0\r\n\r\n",
        b"*5\r\n$4\r\nMSET\r\n$1\r\na\r\n$1\r\n1\r\n$1\r\nb\r\n$1\r\n2\r\n",
    ];
    let mut rng = Rng(seed);
    let (mut commands, mut recoverable, mut closing) = (0, 0, 0);
    for i in 0..inputs {
        let input = if i % 5 == 0 {
            let n = rng.below(100);
            rng.bytes(n)
        } else {
            let base = corpus[rng.below(corpus.len())];
            mutate(&mut rng, base)
        };
        let mut parser = Parser::new(limits);
        let mut buf = BytesMut::new();
        let mut rest = &input[..];
        'feed: while !rest.is_empty() {
            let (chunk, tail) = rest.split_at(1 + rng.below(rest.len()));
            rest = tail;
            buf.extend_from_slice(chunk);
            loop {
                match parser.next(&mut buf) {
                    Ok(Some(args)) => {
                        assert!(!args.is_empty());
                        commands += 1;
                    }
                    Ok(None) => break,
                    Err(e) if e.recoverable() => recoverable += 1,
                    Err(_) => {
                        closing += 1;
                        break 'feed;
                    }
                }
            }
        }
    }
    (commands, recoverable, closing)
}

/// Streams for a replica: a valid stream (a copy, then changes) mutated or cut, fed in random
/// cuts to a fresh follower; a broken stream ends the link. Returns (streams read to the end,
/// streams refused).
fn fuzz_replication(inputs: u64, seed: u64) -> (u64, u64) {
    let mut rng = Rng(seed);
    let id = ReplId::parse(&"ab".repeat(20)).expect("40 hex digits");
    let mut stream = Frame::Full { id, offset: 0 }.encode();
    for k in 0..4u8 {
        let change = Change::Set {
            key: vec![b'k', k],
            value: vec![k; 5],
            expires_at: (k % 2 == 0).then_some(2_000_000),
        };
        stream.extend(Frame::Change(change).encode());
    }
    stream.extend(Frame::Synced.encode());
    stream.extend(
        Frame::Change(Change::Del {
            key: b"k1".to_vec(),
        })
        .encode(),
    );
    stream.extend(Frame::Change(Change::Flush).encode());
    let (mut read, mut refused) = (0, 0);
    for i in 0..inputs {
        let input = if i % 5 == 0 {
            let n = rng.below(100);
            rng.bytes(n)
        } else {
            mutate(&mut rng, &stream)
        };
        let mut data = Dataset::new(id, 1 << 16);
        let mut follower = Follower::default();
        let mut rest = &input[..];
        let mut ok = true;
        while !rest.is_empty() && ok {
            let (chunk, tail) = rest.split_at(1 + rng.below(rest.len()));
            rest = tail;
            ok = follower.receive(chunk, &mut data).is_ok();
        }
        if ok {
            read += 1;
        } else {
            refused += 1;
        }
    }
    (read, refused)
}

/// Runs the three at the given counts and prints the figures; returns the peak RSS.
fn run(datagrams: u64, requests: u64, streams: u64) -> u64 {
    let began = Instant::now();
    let counters = fuzz_datagrams(datagrams, 1);
    let t = began.elapsed().as_secs_f64();
    println!(
        "datagrams: {datagrams} in {t:.1}s ({:.0}/s), no panic; driver counters: {counters:?}",
        datagrams as f64 / t
    );
    let began = Instant::now();
    let (commands, recoverable, closing) = fuzz_resp(requests, 2);
    let t = began.elapsed().as_secs_f64();
    println!(
        "RESP requests: {requests} in {t:.1}s ({:.0}/s), no panic; {commands} commands parsed, {recoverable} recoverable errors, {closing} closing errors",
        requests as f64 / t
    );
    let began = Instant::now();
    let (read, refused) = fuzz_replication(streams, 3);
    let t = began.elapsed().as_secs_f64();
    println!(
        "replication streams: {streams} in {t:.1}s ({:.0}/s), no panic; {read} read to the end, {refused} refused",
        streams as f64 / t
    );
    let peak = peak_rss();
    println!("peak RSS: {:.1} MB", peak as f64 / 1e6);
    peak
}

/// Memory the runs may reach: far above what they need (a few tens of MB), far below what
/// growth with the number of inputs would take.
const PEAK_RSS_LIMIT: u64 = 512 << 20;

#[test]
fn fuzz_short() {
    let peak = run(40_000, 20_000, 20_000);
    assert!(peak < PEAK_RSS_LIMIT, "peak RSS {peak}");
}

#[test]
#[ignore = "a run at scale: minutes; figures in specs/protocol.md §12.5"]
fn fuzz_at_scale() {
    let peak = run(10_000_000, 1_000_000, 1_000_000);
    assert!(peak < PEAK_RSS_LIMIT, "peak RSS {peak}");
}
