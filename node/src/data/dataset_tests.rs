//! Replicas that lose their link at any moment, reconnect, and follow a promoted sibling end
//! with exactly the keys of the master they follow: a partial resync is granted only to a
//! replica whose keys are a prefix of the master's stream.

use bytes::Bytes;
use proptest::prelude::*;

use super::super::replication::{change_of, Follower};
use super::*;

const NOW: u64 = 1_000;

fn id(n: u8) -> ReplId {
    ReplId::parse(&format!("{n:040x}")).expect("40 hex digits")
}

/// A replica's link: what the master has sent but the replica not yet read, and where the
/// master's side of the link is in its stream.
struct Link {
    follower: Follower,
    in_flight: Vec<u8>,
    sent_up_to: u64,
}

/// Three nodes, one master; replicas with or without a link.
struct Cluster {
    data: Vec<Dataset>,
    links: Vec<Option<Link>>,
    master: usize,
    continued: usize,
    renames: u8,
}

#[derive(Clone, Debug)]
enum Op {
    Write(u8, Option<u8>),
    Deliver(usize, usize),
    Break(usize),
    Connect(usize),
    Promote(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u8..4, proptest::option::of(0u8..255)).prop_map(|(k, v)| Op::Write(k, v)),
        4 => (0usize..3, 0usize..40).prop_map(|(r, n)| Op::Deliver(r, n)),
        1 => (0usize..3).prop_map(Op::Break),
        2 => (0usize..3).prop_map(Op::Connect),
        1 => (0usize..3).prop_map(Op::Promote),
    ]
}

impl Cluster {
    fn new() -> Cluster {
        Cluster {
            data: (1..=3).map(|n| Dataset::new(id(n), 96)).collect(),
            links: (0..3).map(|_| None).collect(),
            master: 0,
            continued: 0,
            renames: 10,
        }
    }

    fn run(&mut self, op: Op) {
        match op {
            Op::Write(k, v) => self.write(k, v),
            Op::Deliver(r, n) if r != self.master => self.deliver(r, n),
            Op::Break(r) => self.links[r] = None,
            Op::Connect(r) if r != self.master && self.links[r].is_none() => self.connect(r),
            Op::Promote(r) if r != self.master => self.promote(r),
            _ => {}
        }
    }

    fn write(&mut self, key: u8, value: Option<u8>) {
        let data = &mut self.data[self.master];
        let key = Bytes::from(vec![b'k', key]);
        match value {
            Some(v) => data.keys.put(&key, &[v], None),
            None => data.keys.delete(&key),
        }
        let change = change_of(&mut data.keys, &key, NOW);
        data.log.append(change);
    }

    fn connect(&mut self, r: usize) {
        let asked = self.data[r].follow(NodeId(self.master as u16));
        let answer = self.data[self.master].answer_sync(asked, NOW);
        if matches!(answer, SyncAnswer::Continue { .. }) {
            self.continued += 1;
        }
        let (in_flight, sent_up_to) = answer.into_frames();
        self.links[r] = Some(Link {
            follower: Follower::default(),
            in_flight,
            sent_up_to,
        });
    }

    /// The master sends what its link lacks; the replica reads `n` bytes of what is in flight.
    fn deliver(&mut self, r: usize, n: usize) {
        let Some(link) = self.links[r].as_mut() else {
            return;
        };
        match self.data[self.master].log.since(link.sent_up_to) {
            Some(more) => link.in_flight.extend(more),
            None => {
                self.links[r] = None;
                return;
            }
        }
        link.sent_up_to = self.data[self.master].offset();
        let n = n.min(link.in_flight.len());
        let bytes: Vec<u8> = link.in_flight.drain(..n).collect();
        link.follower
            .receive(&bytes, &mut self.data[r])
            .expect("the master sends a valid stream");
    }

    fn promote(&mut self, r: usize) {
        self.renames += 1;
        self.data[r].promote(id(self.renames));
        self.links.iter_mut().for_each(|l| *l = None);
        self.master = r;
    }

    /// Every replica connects and reads everything: it must then hold the master's keys.
    fn settle(&mut self) -> Result<(), TestCaseError> {
        let master = self.master;
        for r in (0..3).filter(|&r| r != master) {
            if self.links[r].is_none() {
                self.connect(r);
            }
            self.deliver(r, usize::MAX);
            if self.links[r].is_none() {
                self.connect(r);
                self.deliver(r, usize::MAX);
            }
            let sorted = |d: &Dataset| {
                let entries = d.keys.entries(NOW);
                let mut all: Vec<_> = entries
                    .iter()
                    .map(|(k, v, at)| (k.to_vec(), v.to_vec(), at))
                    .collect();
                all.sort();
                all
            };
            prop_assert_eq!(sorted(&self.data[r]), sorted(&self.data[self.master]));
            prop_assert_eq!(self.data[r].offset(), self.data[self.master].offset());
            prop_assert_eq!(self.data[r].id(), self.data[self.master].id());
        }
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn replicas_end_with_the_keys_of_the_master_they_follow(
        ops in proptest::collection::vec(op(), 0..60),
    ) {
        let mut cluster = Cluster::new();
        for op in ops {
            cluster.run(op);
        }
        cluster.settle()?;
    }
}

/// Two replicas in sync, a write that reaches only the master, and one replica promoted.
fn failover() -> Cluster {
    let mut c = Cluster::new();
    for r in [1, 2] {
        c.connect(r);
    }
    c.write(1, Some(1));
    for r in [1, 2] {
        c.deliver(r, usize::MAX);
    }
    c.write(2, Some(2));
    c.promote(1);
    c
}

#[test]
fn a_sibling_continues_from_the_promoted_replica() {
    let mut c = failover();
    c.write(3, Some(3));
    c.connect(2);
    assert_eq!(
        c.continued, 1,
        "the sibling continued instead of a full copy"
    );
    c.settle().expect("in sync");
}

#[test]
fn an_old_master_with_writes_the_winner_lacks_gets_a_full_copy_that_drops_them() {
    let mut c = failover();
    c.connect(0);
    assert_eq!(
        c.continued, 0,
        "the old master is past the promotion offset"
    );
    c.deliver(0, usize::MAX);
    assert!(c.data[0]
        .keys
        .entries(NOW)
        .iter()
        .all(|(k, ..)| k != b"k\x02"));
    c.settle().expect("in sync");
}

#[test]
fn a_replica_cut_off_during_its_copy_does_not_continue_from_half_a_copy() {
    let mut c = Cluster::new();
    for k in 0..4 {
        c.write(k, Some(k));
    }
    c.connect(1);
    c.deliver(1, 30);
    c.links[1] = None;
    assert_eq!(c.data[1].follow(NodeId(0)), None);
    c.connect(1);
    assert_eq!(c.continued, 0);
    c.settle().expect("in sync");
}

#[test]
fn stream_names_print_and_parse_as_forty_hex_digits() {
    let name = ReplId::random().expect("randomness");
    assert_eq!(ReplId::parse(&name.to_string()), Some(name));
    assert_eq!(name.to_string().len(), 40);
    assert_eq!(ReplId::parse("xyz"), None);
    assert_eq!(ReplId::parse(&"g".repeat(40)), None);
}
