//! The state file under generated input (proptest): every state a node can save loads back
//! unchanged, and no damaged, truncated or arbitrary file makes `load` panic or succeed with
//! something else: each is refused with an error that names the file and says why.

use proptest::prelude::*;
use slotguard_protocol::{Epoch, NodeId, PersistedPeer, Role, SlotMap};

use super::*;

/// Nodes and slots of the small layouts the states are drawn for (16384 slots are drawn too).
const NODES: u16 = 6;

fn node() -> impl Strategy<Value = NodeId> {
    (0..NODES).prop_map(NodeId)
}

fn epoch() -> impl Strategy<Value = Epoch> {
    prop_oneof![0u64..8, Just(u64::MAX)].prop_map(Epoch)
}

fn role() -> impl Strategy<Value = Role> {
    prop_oneof![
        Just(Role::Master),
        node().prop_map(|of| Role::Replica { of })
    ]
}

fn slot_map() -> impl Strategy<Value = SlotMap> {
    prop_oneof![Just(16usize), Just(16384usize)].prop_flat_map(|n| {
        proptest::collection::vec((0..n as u16, proptest::option::of(node())), 0..40).prop_map(
            move |binds| {
                let mut map = SlotMap::unbound(n);
                for (slot, owner) in binds {
                    if let Some(owner) = owner {
                        map.bind(slot, owner);
                    }
                }
                map
            },
        )
    })
}

fn persisted() -> impl Strategy<Value = Persisted> {
    let peer = (role(), epoch(), epoch()).prop_map(|(role, config_epoch, heard)| PersistedPeer {
        role,
        config_epoch,
        heard,
    });
    (
        epoch(),
        epoch(),
        epoch(),
        role(),
        slot_map(),
        proptest::collection::vec(peer, NODES as usize),
    )
        .prop_map(
            |(current_epoch, last_vote_epoch, config_epoch, role, slots, peers)| Persisted {
                current_epoch,
                last_vote_epoch,
                config_epoch,
                role,
                slots,
                peers,
            },
        )
}

fn name() -> impl Strategy<Value = NodeName> {
    any::<[u8; 20]>().prop_map(NodeName)
}

fn names() -> impl Strategy<Value = Vec<Option<NodeName>>> {
    proptest::collection::vec(proptest::option::of(name()), 0..=NODES as usize)
}

/// How a valid file is damaged.
#[derive(Clone, Debug)]
enum Damage {
    /// One byte changed (xor with a non-zero value).
    Flip(prop::sample::Index, u8),
    /// Cut short.
    Truncate(prop::sample::Index),
    /// Bytes added at the end.
    Append(Vec<u8>),
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        (any::<prop::sample::Index>(), 1u8..).prop_map(|(i, x)| Damage::Flip(i, x)),
        any::<prop::sample::Index>().prop_map(Damage::Truncate),
        proptest::collection::vec(any::<u8>(), 1..16).prop_map(Damage::Append),
    ]
}

fn state_file() -> (tempfile::TempDir, StateFile) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let file = StateFile::new(dir.path(), 2, [5; 32]);
    (dir, file)
}

/// Whether `err` is a refusal that names the file.
fn names_the_file(err: &StorageError, file: &StateFile) -> bool {
    err.to_string().contains(&file.path().display().to_string())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn every_state_loads_back_unchanged(
        state in persisted(), me in name(), peers in names(), incarnation in any::<u32>(),
    ) {
        let (_dir, file) = state_file();
        file.save(&me, &peers, incarnation, &state).expect("saves");
        let loaded = file.load().expect("loads").expect("exists");
        prop_assert_eq!(loaded, Loaded { name: Some(me), peers, incarnation, state });
    }

    #[test]
    fn a_damaged_file_is_refused_with_its_name_and_a_reason(
        state in persisted(), me in name(), damage in damage(),
    ) {
        let (_dir, file) = state_file();
        file.save(&me, &[], 1, &state).expect("saves");
        let mut bytes = std::fs::read(file.path()).expect("reads");
        match &damage {
            Damage::Flip(i, x) => {
                let i = i.index(bytes.len());
                bytes[i] ^= x;
            }
            Damage::Truncate(i) => bytes.truncate(i.index(bytes.len())),
            Damage::Append(tail) => bytes.extend_from_slice(tail),
        }
        std::fs::write(file.path(), &bytes).expect("writes");
        match file.load() {
            // Postcard ignores bytes after the record, but the checksum covers them.
            Ok(loaded) => prop_assert!(false, "{damage:?} loaded: {loaded:?}"),
            Err(err) => prop_assert!(names_the_file(&err, &file), "{err}"),
        }
    }

    #[test]
    fn arbitrary_bytes_are_refused_without_panicking(
        magic in prop_oneof![Just(&b""[..]), Just(MAGIC), Just(MAGIC_2)],
        payload in proptest::collection::vec(any::<u8>(), 0..512),
        checksummed in any::<bool>(),
    ) {
        let (_dir, file) = state_file();
        let mut bytes = magic.to_vec();
        if checksummed {
            bytes.extend_from_slice(&crc32fast::hash(&payload).to_be_bytes());
        }
        bytes.extend_from_slice(&payload);
        std::fs::write(file.path(), &bytes).expect("writes");
        // Arbitrary bytes behind a valid checksum may decode as a state; anything else is
        // refused, with the file's name.
        if let Err(err) = file.load() {
            prop_assert!(names_the_file(&err, &file), "{err}");
        }
    }
}
