//! The datagram codec under generated input (proptest): every batch of messages a node can
//! send comes back unchanged, and no byte string, authentic or not, makes `open` panic.

use proptest::prelude::*;
use slotguard_protocol::layout::InitialEpochs;
use slotguard_protocol::message::{HeaderFlags, Suspicion};
use slotguard_protocol::{Epoch, GossipEntry, Header, NodeId, SlotClaim, SlotSet, VoteRequest};

use super::*;

/// Nodes of the 3 × 1 layout the tests seal under.
const NODES: u16 = 6;

fn layout() -> Layout {
    Layout::grid(3, 1, 16384, InitialEpochs::Distinct).expect("valid")
}

fn node() -> impl Strategy<Value = NodeId> {
    (0..NODES).prop_map(NodeId)
}

fn epoch() -> impl Strategy<Value = Epoch> {
    prop_oneof![0u64..8, Just(u64::MAX)].prop_map(Epoch)
}

fn slots() -> impl Strategy<Value = SlotSet> {
    proptest::collection::vec((0u16..16384, 0u16..600), 0..4).prop_map(|ranges| {
        ranges
            .into_iter()
            .flat_map(|(start, len)| start..start.saturating_add(len).min(16384))
            .collect()
    })
}

fn header() -> impl Strategy<Value = Header> {
    (
        epoch(),
        epoch(),
        proptest::option::of(node()),
        slots(),
        any::<u64>(),
        any::<(bool, bool, bool)>(),
    )
        .prop_map(
            |(
                current_epoch,
                config_epoch,
                master,
                slots,
                repl_offset,
                (no_failover, paused, data_lost),
            )| {
                Header {
                    current_epoch,
                    config_epoch,
                    master,
                    slots,
                    repl_offset,
                    flags: HeaderFlags {
                        no_failover,
                        paused,
                        data_lost,
                    },
                }
            },
        )
}

fn message() -> impl Strategy<Value = Msg> {
    let suspicion = prop_oneof![Just(Suspicion::None), Just(Suspicion::PFail)];
    prop_oneof![
        header().prop_map(Msg::Ping),
        header().prop_map(Msg::Pong),
        (node(), suspicion, epoch(), any::<bool>()).prop_map(
            |(node, suspicion, config_epoch, v)| {
                Msg::Gossip(GossipEntry {
                    node,
                    suspicion,
                    config_epoch,
                    from_voting_master: v,
                })
            }
        ),
        node().prop_map(|node| Msg::Fail { node }),
        (epoch(), node(), epoch(), slots(), any::<bool>()).prop_map(
            |(epoch, master, master_config_epoch, slots, forced)| {
                Msg::AuthRequest(VoteRequest {
                    epoch,
                    master,
                    master_config_epoch,
                    slots,
                    forced,
                })
            }
        ),
        (epoch(), node(), any::<bool>()).prop_map(|(epoch, candidate, forced)| Msg::AuthAck {
            epoch,
            candidate,
            forced
        }),
        Just(Msg::FailoverStart),
        (node(), epoch(), slots()).prop_map(|(node, config_epoch, slots)| Msg::Update(SlotClaim {
            node,
            config_epoch,
            slots
        })),
    ]
}

fn address() -> impl Strategy<Value = Address> {
    (
        0..NODES,
        any::<[u8; NAME]>(),
        0..NODES,
        any::<u32>(),
        any::<u64>(),
    )
        .prop_map(
            |(sender, name, destination, incarnation, sequence)| Address {
                sender,
                name,
                destination,
                incarnation,
                sequence,
            },
        )
}

proptest! {
    #[test]
    fn sealed_messages_open_unchanged(
        address in address(),
        messages in proptest::collection::vec(message(), 0..12),
    ) {
        let key = BusKey::new(b"cluster key", &layout());
        let bytes = seal(&key, address, &messages).expect("seals");
        let opened = open(&key, address.destination, &bytes).expect("opens");
        prop_assert_eq!(opened.messages, messages);
        prop_assert_eq!(
            (opened.sender, opened.name, opened.incarnation, opened.sequence),
            (address.sender, address.name, address.incarnation, address.sequence)
        );
    }

    #[test]
    fn arbitrary_bytes_are_rejected_without_panicking(
        bytes in proptest::collection::vec(any::<u8>(), 0..2048),
        me in 0..NODES,
    ) {
        let key = BusKey::new(b"cluster key", &layout());
        prop_assert!(open(&key, me, &bytes).is_err());
    }

    #[test]
    fn authentic_arbitrary_payloads_decode_or_are_undecodable(
        address in address(),
        payload in proptest::collection::vec(any::<u8>(), 0..512),
    ) {
        let key = BusKey::new(b"cluster key", &layout());
        let bytes = seal_payload(&key, address, &payload);
        match open(&key, address.destination, &bytes) {
            Ok(d) => {
                let again = postcard::to_allocvec(&d.messages).expect("encodes");
                prop_assert_eq!(again, payload);
            }
            Err(reason) => prop_assert_eq!(reason, Rejection::Undecodable),
        }
    }
}

/// Found by `authentic_arbitrary_payloads_decode_or_are_undecodable`: postcard's `from_bytes`
/// ignores bytes after the value, so an authentic datagram with a tail after its messages was
/// accepted.
#[test]
fn bytes_after_the_messages_make_a_datagram_undecodable() {
    let key = BusKey::new(b"cluster key", &layout());
    let address = Address {
        sender: 1,
        name: [7; NAME],
        destination: 2,
        incarnation: 0,
        sequence: 1,
    };
    let mut payload = postcard::to_allocvec(&vec![Msg::Fail { node: NodeId(0) }]).expect("encodes");
    assert!(open(&key, 2, &seal_payload(&key, address, &payload)).is_ok());
    payload.push(0);
    let bytes = seal_payload(&key, address, &payload);
    assert_eq!(open(&key, 2, &bytes), Err(Rejection::Undecodable));
}
