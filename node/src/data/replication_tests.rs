//! A replica that attaches at any moment and receives the stream in any cuts ends with exactly
//! the master's keys and offset; a broken stream is an error, never a panic or half a change.

use proptest::prelude::*;

use super::*;

const NOW: u64 = 1_000;

/// A stream name for tests.
fn id(n: u8) -> ReplId {
    ReplId::parse(&format!("{n:040x}")).expect("40 hex digits")
}

fn change() -> impl Strategy<Value = Change> {
    let key = (0u8..6).prop_map(|k| vec![b'k', k]);
    prop_oneof![
        4 => (key.clone(), proptest::collection::vec(any::<u8>(), 0..8), proptest::option::of(NOW + 1..NOW + 50))
            .prop_map(|(key, value, expires_at)| Change::Set { key, value, expires_at }),
        2 => key.prop_map(|key| Change::Del { key }),
        1 => Just(Change::Flush),
    ]
}

/// Applies `change` to the master's keys and backlog, as the node does after a write.
fn write(keys: &mut Keyspace, log: &mut Backlog, change: Change) {
    let propagated = match &change {
        Change::Flush => Change::Flush,
        Change::Set { key, .. } | Change::Del { key } => {
            apply_change(keys, change.clone());
            change_of(keys, key, NOW)
        }
    };
    if propagated == Change::Flush {
        keys.clear();
    }
    log.append(propagated);
}

type Owned = (Vec<u8>, Vec<u8>, Option<u64>);

fn sorted(keys: &Keyspace) -> Vec<Owned> {
    let entries = keys.entries(NOW);
    let mut all: Vec<Owned> = entries
        .iter()
        .map(|(k, v, at)| (k.to_vec(), v.to_vec(), at))
        .collect();
    all.sort();
    all
}

proptest! {
    #[test]
    fn a_replica_ends_with_the_masters_keys(
        before in proptest::collection::vec(change(), 0..20),
        after in proptest::collection::vec(change(), 0..20),
        cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..8),
    ) {
        let (mut master, mut log) = (Keyspace::new(), Backlog::new(1 << 20));
        for c in before {
            write(&mut master, &mut log, c);
        }
        let attached_at = log.end();
        let mut stream = full_copy(id(1), attached_at, master.entries(NOW));
        for c in after {
            write(&mut master, &mut log, c);
        }
        stream.extend(log.since(attached_at).expect("the backlog reaches back"));
        let mut cuts: Vec<usize> = cuts.iter().map(|i| i.index(stream.len() + 1)).collect();
        cuts.extend([0, stream.len()]);
        cuts.sort_unstable();
        let (mut replica, mut follower) = (Dataset::new(id(2), 1 << 20), Follower::default());
        replica.keys.put(b"stale", b"", None);
        for w in cuts.windows(2) {
            follower.receive(&stream[w[0]..w[1]], &mut replica).expect("a valid stream");
        }
        prop_assert_eq!(sorted(&replica.keys), sorted(&master));
        prop_assert!(follower.synced());
        prop_assert_eq!(replica.offset(), log.end());
        prop_assert_eq!(replica.log.since(attached_at), log.since(attached_at));
    }

    #[test]
    fn arbitrary_bytes_are_an_error_or_wait_never_a_panic(
        chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 0..6),
    ) {
        let (mut data, mut follower) = (Dataset::new(id(1), 1 << 10), Follower::default());
        for chunk in chunks {
            if follower.receive(&chunk, &mut data).is_err() {
                break;
            }
        }
    }
}

#[test]
fn a_replica_too_far_behind_needs_a_new_copy() {
    let mut log = Backlog::new(64);
    for i in 0..20u8 {
        log.append(Change::Del { key: vec![i] });
    }
    assert!(log.since(0).is_none(), "the start was dropped");
    assert_eq!(log.since(log.end()), Some(Vec::new()));
    assert!(log.since(log.end() + 1).is_none());
}

#[test]
fn a_change_before_any_copy_is_out_of_order() {
    let (mut data, mut follower) = (Dataset::new(id(1), 1 << 10), Follower::default());
    let frame = Frame::Change(Change::Flush).encode();
    assert_eq!(
        follower.receive(&frame, &mut data),
        Err(StreamError::OutOfOrder)
    );
    let oversized = (MAX_FRAME as u32 + 1).to_be_bytes();
    let mut fresh = Follower::default();
    assert!(matches!(
        fresh.receive(&oversized, &mut data),
        Err(StreamError::Oversized(_))
    ));
    let elsewhere = Frame::Continue {
        id: id(1),
        offset: 7,
    };
    assert_eq!(
        Follower::default().receive(&elsewhere.encode(), &mut data),
        Err(StreamError::OutOfOrder),
        "a replica at offset 0 cannot continue from 7"
    );
}

#[test]
fn good_replicas_are_those_that_acknowledged_within_the_lag() {
    let now = Instant::now();
    let ago = |ms| now - Duration::from_millis(ms);
    let acks = [ago(0), ago(900), ago(1_999), ago(2_000), ago(60_000)];
    assert_eq!(good_replicas(acks, now, Duration::from_secs(1)), 3);
    assert_eq!(good_replicas(acks, now, Duration::ZERO), 2);
    assert_eq!(good_replicas([], now, Duration::from_secs(1)), 0);
}

/// `sync` mode (specs/protocol.md §13.1): a replica that holds data refuses an empty full copy
/// (a master recreated without its state file) and keeps its keys; a copy with data, or an
/// empty one to an empty replica, is taken. A master's error line is read as its text.
#[test]
fn a_replica_with_data_refuses_an_empty_copy_in_sync_mode() {
    let (mut master, mut log) = (Keyspace::new(), Backlog::new(1 << 20));
    write(
        &mut master,
        &mut log,
        Change::Set {
            key: b"k".to_vec(),
            value: b"v".to_vec(),
            expires_at: None,
        },
    );
    let copy = full_copy(id(1), log.end(), master.entries(NOW));
    let mut replica = Dataset::new(id(2), 1 << 10);
    let mut follower = Follower::new(slotguard_protocol::Durability::Sync);
    follower
        .receive(&copy, &mut replica)
        .expect("a copy with data");
    assert!(follower.synced() && replica.offset() > 0);
    let empty = full_copy(id(3), 0, Entries::default());
    let mut again = Follower::new(slotguard_protocol::Durability::Sync);
    assert_eq!(
        again.receive(&empty, &mut replica),
        Err(StreamError::EmptyCopy(replica.offset()))
    );
    assert_eq!(sorted(&replica.keys), sorted(&master));
    Follower::default()
        .receive(&empty, &mut replica)
        .expect("async takes it, as Redis does");
    let mut new = Dataset::new(id(4), 1 << 10);
    Follower::new(slotguard_protocol::Durability::Sync)
        .receive(&empty, &mut new)
        .expect("an empty replica takes an empty copy (a new cluster)");
    let refused = Follower::default().receive(b"-LOADING no copies\r\n", &mut new);
    assert_eq!(
        refused,
        Err(StreamError::Refused("LOADING no copies".into()))
    );
}
