//! The cluster-bus datagram: how the actor's messages cross a real network.
//!
//! ```text
//! [version: u8 = 3][sender: u16 BE][sender's name: 20 bytes][destination: u16 BE]
//! [incarnation: u32 BE][sequence: u64 BE][payload: postcard(Vec<Msg>)]
//! [tag: HMAC-SHA256(key, "slotguard-bus-v3" || cluster digest || everything before it),
//!  truncated to its first 16 bytes]
//! ```
//!
//! The tag authenticates the sender id under the shared cluster key, so ids cannot be forged
//! and the checker's assumption "a message's source is who sent it" holds; the sender's random
//! name (identity.rs) rides along for operators and clients, so a peer learns it from the
//! first datagram and notices a recreated node on the next. It also covers the
//! destination, so a datagram captured on its way to one node is refused by every other
//! (`misdirected`): the checker delivers a message only to the node it was sent to, and a vote
//! redirected to another candidate would break that. And it covers the cluster's identity, a
//! digest of the layout every node shares (specs/protocol.md §10), without sending it: a
//! datagram of another cluster that happens to share the key, or of a node configured with
//! another layout, does not verify. `(incarnation, sequence)` only ever grows per sender (the
//! incarnation is the persisted start count, the sequence counts datagrams within it), so a
//! replayed or stale datagram is recognised and dropped. Dropping reordered datagrams is safe:
//! the protocol was checked on a lossy network. Everything that fails a check is dropped and
//! counted, never an error that stops the node.

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};
use slotguard_protocol::layout::{InitialRole, Layout};
use slotguard_protocol::Msg;

/// Wire format version.
pub const VERSION: u8 = 3;
const HEADER: usize = 1 + 2 + NAME + 2 + 4 + 8;
/// Length of a node's name (identity.rs).
const NAME: usize = 20;
/// The tag's length: HMAC-SHA256 truncated to 128 bits (RFC 2104 §5 allows truncation to
/// at least half the output; 128 bits leave a forger a 2^-128 chance per try). It is a third of
/// a heartbeat datagram, so the full 32 bytes would cost a third more bus bytes for nothing.
const TAG: usize = 16;
/// What the tag covers before the datagram: the format's name, so that a tag of another use
/// of the key never verifies here.
const DOMAIN: &[u8] = b"slotguard-bus-v3";
/// Largest datagram accepted or sent.
pub const MAX_DATAGRAM: usize = 65_000;

type HmacSha256 = Hmac<Sha256>;

/// Why a datagram was dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Rejection {
    /// Shorter than header and tag.
    Truncated,
    /// Larger than [`MAX_DATAGRAM`].
    Oversized,
    /// Unknown version byte.
    Version,
    /// The tag does not verify under the cluster key and identity.
    BadMac,
    /// Authentic, but addressed to another node.
    Misdirected,
    /// Authentic, but the payload does not decode, or names ids or slots outside the cluster.
    Undecodable,
    /// Sender id not in the cluster.
    UnknownSender,
    /// Not newer than the last datagram accepted from the same sender (replay or reordering).
    Stale,
}

impl Rejection {
    /// Every reason, for listing counters that are still zero.
    pub const ALL: [Rejection; 8] = [
        Rejection::Truncated,
        Rejection::Oversized,
        Rejection::Version,
        Rejection::BadMac,
        Rejection::Misdirected,
        Rejection::Undecodable,
        Rejection::UnknownSender,
        Rejection::Stale,
    ];

    /// Counter name.
    pub fn name(self) -> &'static str {
        match self {
            Rejection::Truncated => "truncated",
            Rejection::Oversized => "oversized",
            Rejection::Version => "bad_version",
            Rejection::BadMac => "bad_mac",
            Rejection::Misdirected => "misdirected",
            Rejection::Undecodable => "undecodable",
            Rejection::UnknownSender => "unknown_sender",
            Rejection::Stale => "replayed_or_stale",
        }
    }
}

/// An authenticated datagram's contents.
#[derive(Debug, PartialEq, Eq)]
pub struct Datagram {
    /// The sending node's id (authenticated by the tag).
    pub sender: u16,
    /// The sender's name (identity.rs).
    pub name: [u8; NAME],
    /// The sender's start count.
    pub incarnation: u32,
    /// The datagram's number within the sender's start.
    pub sequence: u64,
    /// The actor messages it carries, in order.
    pub messages: Vec<Msg>,
}

/// What a datagram is authenticated under: the shared cluster key and the cluster's identity.
pub struct BusKey {
    key: Vec<u8>,
    cluster: [u8; 32],
}

impl BusKey {
    /// The key of the cluster with this layout.
    pub fn new(key: &[u8], layout: &Layout) -> BusKey {
        BusKey {
            key: key.to_vec(),
            cluster: cluster_digest(layout),
        }
    }

    fn mac(&self) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("HMAC takes keys of any length");
        mac.update(DOMAIN);
        mac.update(&self.cluster);
        mac
    }
}

/// The cluster's identity: SHA-256 of its layout (who is in it, who starts as what, which
/// master serves which slots), the value every node of one cluster shares. Every state file
/// records it, so it must not change when a type's serialization does: it is computed over a
/// fixed encoding of its own ([`IdentityLayout`]), the postcard bytes a layout had when state
/// files started recording it (slot sets as their 64-bit words), so that state files written by
/// earlier versions still belong to their cluster.
pub fn cluster_digest(layout: &Layout) -> [u8; 32] {
    let identity = IdentityLayout {
        slot_count: u16::try_from(layout.slot_count()).unwrap_or(u16::MAX),
        nodes: layout
            .specs()
            .iter()
            .map(|spec| IdentityNode {
                role: match &spec.role {
                    InitialRole::Master { slots } => IdentityRole::Master {
                        slots: slots.words().to_vec(),
                    },
                    InitialRole::Replica { of } => IdentityRole::Replica { of: of.0 },
                },
                config_epoch: spec.config_epoch.0,
                no_failover: spec.no_failover,
            })
            .collect(),
        shards: layout.shards(),
    };
    let encoded = postcard::to_allocvec(&identity).unwrap_or_default();
    Sha256::digest(&encoded).into()
}

/// What [`cluster_digest`] encodes: a layout's fields in their order, by value.
#[derive(serde::Serialize)]
struct IdentityLayout {
    slot_count: u16,
    nodes: Vec<IdentityNode>,
    shards: usize,
}

#[derive(serde::Serialize)]
struct IdentityNode {
    role: IdentityRole,
    config_epoch: u64,
    no_failover: bool,
}

#[derive(serde::Serialize)]
enum IdentityRole {
    Master { slots: Vec<u64> },
    Replica { of: u16 },
}

/// Where a datagram goes and with which stamp.
#[derive(Clone, Copy, Debug)]
pub struct Address {
    /// The sending node's id.
    pub sender: u16,
    /// The sender's name (identity.rs).
    pub name: [u8; NAME],
    /// The node the datagram is for.
    pub destination: u16,
    /// The sender's start count.
    pub incarnation: u32,
    /// The datagram's number within the sender's start.
    pub sequence: u64,
}

/// Seals messages into one datagram.
pub fn seal(key: &BusKey, address: Address, messages: &[Msg]) -> Result<Vec<u8>, postcard::Error> {
    let payload = postcard::to_allocvec(messages)?;
    Ok(seal_payload(key, address, &payload))
}

/// Seals `payload` as given, whatever it encodes: [`seal`] of encoded messages, and the way to
/// make an authentic datagram whose payload does not decode (tests of the receiving side).
pub fn seal_payload(key: &BusKey, address: Address, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER + payload.len() + TAG);
    out.push(VERSION);
    out.extend_from_slice(&address.sender.to_be_bytes());
    out.extend_from_slice(&address.name);
    out.extend_from_slice(&address.destination.to_be_bytes());
    out.extend_from_slice(&address.incarnation.to_be_bytes());
    out.extend_from_slice(&address.sequence.to_be_bytes());
    out.extend_from_slice(payload);
    let mut mac = key.mac();
    mac.update(&out);
    out.extend_from_slice(&mac.finalize().into_bytes()[..TAG]);
    out
}

/// Opens a datagram addressed to node `me`: size, version, tag, destination, then payload.
/// Does not judge freshness.
pub fn open(key: &BusKey, me: u16, bytes: &[u8]) -> Result<Datagram, Rejection> {
    if bytes.len() > MAX_DATAGRAM {
        return Err(Rejection::Oversized);
    }
    if bytes.len() < HEADER + TAG {
        return Err(Rejection::Truncated);
    }
    if bytes[0] != VERSION {
        return Err(Rejection::Version);
    }
    let (body, tag) = bytes.split_at(bytes.len() - TAG);
    let mut mac = key.mac();
    mac.update(body);
    mac.verify_truncated_left(tag)
        .map_err(|_| Rejection::BadMac)?;
    let be16 = |at: usize| u16::from_be_bytes([body[at], body[at + 1]]);
    let at = 3 + NAME;
    if be16(at) != me {
        return Err(Rejection::Misdirected);
    }
    let mut name = [0u8; NAME];
    name.copy_from_slice(&body[3..at]);
    let mut incarnation = [0u8; 4];
    incarnation.copy_from_slice(&body[at + 2..at + 6]);
    let mut seq = [0u8; 8];
    seq.copy_from_slice(&body[at + 6..HEADER]);
    // Every byte must belong to the messages: postcard's `from_bytes` would ignore a tail.
    let messages = match postcard::take_from_bytes::<Vec<Msg>>(&body[HEADER..]) {
        Ok((messages, [])) => messages,
        _ => return Err(Rejection::Undecodable),
    };
    Ok(Datagram {
        sender: be16(1),
        name,
        incarnation: u32::from_be_bytes(incarnation),
        sequence: u64::from_be_bytes(seq),
        messages,
    })
}

#[cfg(test)]
#[path = "wire_proptests.rs"]
mod proptests;

#[cfg(test)]
mod tests {
    use super::*;
    use slotguard_protocol::layout::InitialEpochs;
    use slotguard_protocol::{Epoch, NodeId};

    fn layout(replicas: usize) -> Layout {
        Layout::grid(3, replicas, 16384, InitialEpochs::Distinct).expect("valid")
    }

    fn to(destination: u16) -> Address {
        Address {
            sender: 3,
            name: [0xab; NAME],
            destination,
            incarnation: 1,
            sequence: 9,
        }
    }

    #[test]
    fn round_trip_and_every_corruption_is_caught() {
        let key = BusKey::new(b"k3y", &layout(1));
        let msgs = vec![
            Msg::AuthAck {
                epoch: Epoch(7),
                candidate: NodeId(4),
                forced: false,
            },
            Msg::Fail { node: NodeId(2) },
        ];
        let d = seal(&key, to(4), &msgs).expect("seals");
        let open_ok = open(&key, 4, &d).expect("opens");
        assert_eq!(open_ok.messages, msgs);
        assert_eq!(
            (open_ok.sender, open_ok.incarnation, open_ok.sequence),
            (3, 1, 9)
        );
        assert_eq!(open_ok.name, [0xab; NAME]);
        let other_key = BusKey::new(b"other", &layout(1));
        assert_eq!(open(&other_key, 4, &d), Err(Rejection::BadMac));
        assert_eq!(open(&key, 4, &d[..10]), Err(Rejection::Truncated));
        let mut v = d.clone();
        v[0] = 9;
        assert_eq!(open(&key, 4, &v), Err(Rejection::Version));
        for i in 1..d.len() {
            let mut flipped = d.clone();
            flipped[i] ^= 0x40;
            assert!(open(&key, 4, &flipped).is_err(), "bit flip at {i} accepted");
        }
        assert_eq!(
            open(&key, 4, &vec![VERSION; MAX_DATAGRAM + 1]),
            Err(Rejection::Oversized)
        );
    }

    /// A vote captured on its way to node 4 is refused by node 5, another candidate of the
    /// same master in a 3 × 2 cluster.
    #[test]
    fn a_redirected_datagram_is_refused() {
        let key = BusKey::new(b"k3y", &layout(2));
        let vote = [Msg::AuthAck {
            epoch: Epoch(7),
            candidate: NodeId(4),
            forced: false,
        }];
        let d = seal(&key, to(4), &vote).expect("seals");
        assert!(open(&key, 4, &d).is_ok());
        assert_eq!(open(&key, 5, &d), Err(Rejection::Misdirected));
        // Rewriting the destination field breaks the tag.
        let mut redirected = d.clone();
        redirected[3 + NAME..5 + NAME].copy_from_slice(&5u16.to_be_bytes());
        assert_eq!(open(&key, 5, &redirected), Err(Rejection::BadMac));
    }

    /// The same key in a cluster of another layout does not verify.
    #[test]
    fn another_cluster_with_the_same_key_is_refused() {
        let ours = BusKey::new(b"shared", &layout(1));
        let theirs = BusKey::new(b"shared", &layout(2));
        let d = seal(&theirs, to(4), &[Msg::Fail { node: NodeId(2) }]).expect("seals");
        assert_eq!(open(&ours, 4, &d), Err(Rejection::BadMac));
    }

    #[test]
    fn authentic_garbage_is_undecodable_not_a_panic() {
        let key = BusKey::new(b"k", &layout(1));
        let mut body = vec![VERSION, 0, 1];
        body.extend_from_slice(&[0x11; NAME]);
        body.extend_from_slice(&[0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5]);
        body.extend_from_slice(&[0xff, 0xff, 0xff]);
        let mut mac = key.mac();
        mac.update(&body);
        body.extend_from_slice(&mac.finalize().into_bytes()[..TAG]);
        assert_eq!(open(&key, 4, &body), Err(Rejection::Undecodable));
        let address = Address {
            sender: 1,
            name: [0x11; NAME],
            destination: 4,
            incarnation: 0,
            sequence: 5,
        };
        assert_eq!(seal_payload(&key, address, &[0xff; 3]), body);
    }

    /// A state file written by slotguard 9c1fcc9 (a node of `slotguard cluster --masters 3
    /// --replicas 1`) still belongs to its cluster: the identity digest does not move when a
    /// type's serialization does (a slot set's did, with wire format 3).
    #[test]
    fn a_state_file_of_an_earlier_version_still_belongs_to_its_cluster() {
        let bytes = include_bytes!("fixtures/node-0-9c1fcc9.state");
        let contents = crate::state_file::decode(bytes).expect("a format-3 state file");
        let (id, digest) = contents.writer.expect("format 3 names its cluster");
        assert_eq!(id, 0);
        assert_eq!(digest, cluster_digest(&layout(1)));
        assert_ne!(digest, cluster_digest(&layout(2)));
    }

    #[test]
    fn every_rejection_is_listed() {
        for (i, r) in Rejection::ALL.iter().enumerate() {
            // A new variant stops this match compiling; its index must then be listed.
            let index = match r {
                Rejection::Truncated => 0,
                Rejection::Oversized => 1,
                Rejection::Version => 2,
                Rejection::BadMac => 3,
                Rejection::Misdirected => 4,
                Rejection::Undecodable => 5,
                Rejection::UnknownSender => 6,
                Rejection::Stale => 7,
            };
            assert_eq!(index, i);
        }
    }
}
