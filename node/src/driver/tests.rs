//! Drivers wired together in memory: datagrams passed by hand, time advanced by hand.

use std::collections::{BTreeSet, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use slotguard_protocol::state::Role;
use slotguard_protocol::{Epoch, InitialEpochs, Layout, Msg, NodeId, Timing};

use super::{Driver, Effect, Event, Now, Setup, Transmit};
use crate::identity::NodeName;
use crate::wire::{self, BusKey};

const KEY: &[u8] = b"driver-test-key-0123456789";
const STEP: Duration = Duration::from_millis(10);

fn addr(i: usize) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 17_000 + i as u16))
}

/// A cluster of drivers on a perfect in-memory network, with every effect recorded.
struct Net {
    layout: Arc<Layout>,
    drivers: Vec<Driver>,
    now: Now,
    /// Nodes that are crashed: they take no input and nothing reaches them.
    down: BTreeSet<usize>,
    in_flight: VecDeque<Transmit>,
    /// Every node's log lines.
    logs: Vec<Vec<String>>,
    /// Every node's last saved lastVoteEpoch.
    saved_vote: Vec<Epoch>,
}

impl Net {
    fn new(masters: usize, replicas: usize) -> Net {
        let layout =
            Arc::new(Layout::grid(masters, replicas, 6, InitialEpochs::Distinct).expect("layout"));
        let now = Now {
            at: Instant::now(),
            unix_ms: 1_000_000,
        };
        let n = layout.len();
        let drivers = (0..n)
            .map(|i| {
                let setup = Setup {
                    layout: Arc::clone(&layout),
                    timing: Timing::from_node_timeout(Duration::from_millis(1000)),
                    durability: Default::default(),
                    me: NodeId(i as u16),
                    key: KEY.to_vec(),
                    name: NodeName([i as u8 + 1; 20]),
                    peer_names: Vec::new(),
                    incarnation: 0,
                    stored: None,
                    addrs: (0..n).map(|j| Some(addr(j))).collect(),
                    trace: false,
                };
                Driver::start(setup, now)
            })
            .collect();
        let mut net = Net {
            layout,
            drivers,
            now,
            down: BTreeSet::new(),
            in_flight: VecDeque::new(),
            logs: vec![Vec::new(); n],
            saved_vote: vec![Epoch(0); n],
        };
        for i in 0..n {
            net.drain(i);
        }
        net
    }

    /// Carries out node `i`'s effects as the shell would, checking that every vote it sends
    /// was saved before (persist before promise, specs/protocol.md §7).
    fn drain(&mut self, i: usize) {
        while let Some(effect) = self.drivers[i].poll_effect() {
            match effect {
                Effect::Persist(save) => self.saved_vote[i] = save.state.last_vote_epoch,
                Effect::Transmit(t) => {
                    let key = BusKey::new(KEY, &self.layout);
                    let d = wire::open(&key, t.to.0, &t.bytes).expect("a driver seals validly");
                    for m in &d.messages {
                        if let Msg::AuthAck { epoch, .. } = m {
                            assert!(self.saved_vote[i] >= *epoch, "vote sent before saved");
                        }
                    }
                    self.drivers[i].on_transmitted(&t, true, self.now);
                    self.in_flight.push_back(t);
                }
                Effect::Log(Event::Step(line)) => self.logs[i].push(line),
                Effect::Log(_) => {}
            }
        }
    }

    fn deliver_all(&mut self) {
        while let Some(t) = self.in_flight.pop_front() {
            let to = t.to.index();
            if !self.down.contains(&to) {
                self.drivers[to].handle_datagram(&t.bytes, self.now);
                self.drain(to);
            }
        }
    }

    /// Advances virtual time by `d`, firing due timers and delivering everything sent.
    fn advance(&mut self, d: Duration) {
        let end = self.now.at + d;
        while self.now.at < end {
            self.now.at += STEP;
            self.now.unix_ms += STEP.as_millis() as u64;
            for i in 0..self.drivers.len() {
                if self.down.contains(&i) {
                    continue;
                }
                if self.drivers[i]
                    .poll_timeout()
                    .is_some_and(|t| t <= self.now.at)
                {
                    self.drivers[i].handle_timeout(self.now);
                    self.drain(i);
                }
            }
            self.deliver_all();
        }
    }

    /// Advances until `done` holds, at most `limit`.
    fn advance_until(&mut self, limit: Duration, done: impl Fn(&Net) -> bool) -> bool {
        let end = self.now.at + limit;
        while self.now.at < end {
            if done(self) {
                return true;
            }
            self.advance(STEP);
        }
        done(self)
    }

    fn logged(&self, i: usize, prefix: &str) -> bool {
        self.logs[i].iter().any(|l| l.starts_with(prefix))
    }
}

#[test]
fn a_dead_master_is_suspected_failed_and_replaced_by_its_replica() {
    let mut net = Net::new(3, 1);
    net.advance(Duration::from_secs(2));
    assert_eq!(net.drivers[3].state().role, Role::Replica { of: NodeId(0) });
    net.down.insert(0);
    let promoted = net.advance_until(Duration::from_secs(30), |net| {
        net.drivers[3].state().role == Role::Master
            && [1, 2, 4, 5]
                .iter()
                .all(|&i| net.drivers[i].state().slots.owner(0) == Some(NodeId(3)))
    });
    assert!(promoted, "logs: {:?}", net.logs);
    assert!(
        net.logged(1, "PFAIL peer=") && net.logged(1, "FAIL peer="),
        "{:?}",
        net.logs[1]
    );
    assert!(net.logged(3, "election started"), "{:?}", net.logs[3]);
    assert!(net.logged(3, "role: now MASTER"), "{:?}", net.logs[3]);
    assert!(
        [1, 2].iter().any(|&i| net.logged(i, "vote granted")),
        "the masters voted"
    );
}

#[test]
fn malformed_datagrams_are_dropped_and_counted_and_change_nothing() {
    let mut net = Net::new(3, 0);
    let before = net.drivers[0].state().clone();
    let key = BusKey::new(KEY, &net.layout);
    let from = |sender: u16| wire::Address {
        sender,
        name: [9; 20],
        destination: 0,
        incarnation: 0,
        sequence: 1,
    };
    let fail = [Msg::Fail { node: NodeId(1) }];
    let other_key = BusKey::new(b"another-key-0123456789", &net.layout);
    let hostile: [(Vec<u8>, &str); 6] = [
        (vec![7; 100], "bad_version"),
        (vec![2, 0, 1], "truncated"),
        (
            wire::seal(&other_key, from(1), &fail).expect("seals"),
            "bad_mac",
        ),
        (wire::seal_payload(&key, from(1), &[0xff; 9]), "undecodable"),
        (
            wire::seal(&key, from(9), &fail).expect("seals"),
            "unknown_sender",
        ),
        (
            wire::seal(&key, from(0), &fail).expect("seals"),
            "unknown_sender",
        ),
    ];
    for (bytes, _) in &hostile {
        net.drivers[0].handle_datagram(bytes, net.now);
        assert_eq!(
            net.drivers[0].poll_effect(),
            None,
            "no effect of a dropped datagram"
        );
    }
    let counters = net.drivers[0].counters();
    for (_, reason) in &hostile {
        assert!(
            counters.get(reason).is_some_and(|&n| n >= 1),
            "{reason}: {counters:?}"
        );
    }
    assert_eq!(counters.get("datagrams_received"), Some(&6));
    assert_eq!(counters.get("datagrams_accepted"), None);
    assert_eq!(net.drivers[0].state(), &before);
}

#[test]
fn a_replayed_datagram_is_dropped_and_counted() {
    let mut net = Net::new(3, 0);
    let first = net
        .in_flight
        .iter()
        .find(|t| t.to == NodeId(0))
        .cloned()
        .expect("the start step announces to node 0");
    net.deliver_all();
    let accepted = net.drivers[0].counters().get("datagrams_accepted").copied();
    net.drivers[0].handle_datagram(&first.bytes, net.now);
    assert_eq!(net.drivers[0].poll_effect(), None);
    let counters = net.drivers[0].counters();
    assert_eq!(counters.get("replayed_or_stale"), Some(&1));
    assert_eq!(counters.get("datagrams_accepted").copied(), accepted);
}

#[test]
fn the_start_step_saves_before_it_announces_and_a_learnt_name_is_saved() {
    let net = Net::new(3, 0);
    // Node 0 again, as if restarted: its queue is inspected by hand.
    let setup = Setup {
        layout: Arc::clone(&net.layout),
        timing: Timing::from_node_timeout(Duration::from_millis(1000)),
        durability: Default::default(),
        me: NodeId(0),
        key: KEY.to_vec(),
        name: NodeName([1; 20]),
        peer_names: Vec::new(),
        incarnation: 1,
        stored: None,
        addrs: (0..3).map(|j| Some(addr(j))).collect(),
        trace: false,
    };
    let mut d = Driver::start(setup, net.now);
    assert!(matches!(
        d.poll_effect(),
        Some(Effect::Log(Event::Started { .. }))
    ));
    assert!(matches!(d.poll_effect(), Some(Effect::Persist(s)) if s.incarnation == 1));
    let rest: Vec<Effect> = std::iter::from_fn(|| d.poll_effect()).collect();
    assert!(
        rest.iter().all(|e| matches!(e, Effect::Transmit(_))),
        "{rest:?}"
    );
    assert_eq!(rest.len(), 2, "one datagram per peer");
    assert!(d.poll_timeout().is_some(), "timers armed");
    // Node 1's first datagram names it: the name is saved, then logged.
    let hello = net
        .in_flight
        .iter()
        .find(|t| t.to == NodeId(0))
        .cloned()
        .expect("an announcement to node 0");
    d.handle_datagram(&hello.bytes, net.now);
    match d.poll_effect() {
        Some(Effect::Persist(s)) => assert!(s.peers.iter().flatten().next().is_some()),
        other => panic!("expected a save first, got {other:?}"),
    }
    assert!(matches!(
        d.poll_effect(),
        Some(Effect::Log(Event::PeerNamed { .. }))
    ));
    assert_eq!(d.names().peer_names().iter().flatten().count(), 1);
}

#[test]
fn no_timer_fires_before_its_deadline() {
    let net = Net::new(3, 0);
    let mut d = net.drivers.into_iter().next().expect("a driver");
    let deadline = d.poll_timeout().expect("armed");
    let early = Now {
        at: deadline - Duration::from_millis(1),
        unix_ms: 0,
    };
    d.handle_timeout(early);
    assert_eq!(d.poll_effect(), None);
    d.handle_timeout(Now {
        at: deadline,
        unix_ms: 0,
    });
    assert!(d.poll_effect().is_some(), "the tick fired");
}
