//! The cluster-bus datagram: how the actor's messages cross a real network.
//!
//! ```text
//! [version: u8 = 1][sender: u16 BE][incarnation: u32 BE][sequence: u64 BE]
//! [payload: postcard(Vec<Msg>)][tag: HMAC-SHA256 over everything before it, 32 bytes]
//! ```
//!
//! The tag authenticates the sender id under the shared cluster key, so ids cannot be forged
//! and the checker's assumption "a message's source is who sent it" holds. `(incarnation,
//! sequence)` only ever grows per sender (the incarnation is the persisted start count, the
//! sequence counts datagrams within it), so a replayed or stale datagram is recognised and
//! dropped. Dropping reordered datagrams is safe: the protocol was checked on a lossy network.
//! Everything that fails a check is dropped and counted, never an error that stops the node.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use slotguard_model::Msg;

/// Wire format version.
pub(crate) const VERSION: u8 = 1;
const HEADER: usize = 1 + 2 + 4 + 8;
const TAG: usize = 32;
/// Largest datagram accepted or sent.
pub(crate) const MAX_DATAGRAM: usize = 65_000;

type HmacSha256 = Hmac<Sha256>;

/// Why a datagram was dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Rejection {
    /// Shorter than header and tag.
    Truncated,
    /// Larger than [`MAX_DATAGRAM`].
    Oversized,
    /// Unknown version byte.
    Version,
    /// The tag does not verify under the cluster key.
    BadMac,
    /// Authentic, but the payload does not decode, or names ids or slots outside the cluster.
    Undecodable,
    /// Sender id not in the cluster.
    UnknownSender,
    /// Not newer than the last datagram accepted from the same sender (replay or reordering).
    Stale,
}

impl Rejection {
    /// Counter name.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Rejection::Truncated => "truncated",
            Rejection::Oversized => "oversized",
            Rejection::Version => "bad_version",
            Rejection::BadMac => "bad_mac",
            Rejection::Undecodable => "undecodable",
            Rejection::UnknownSender => "unknown_sender",
            Rejection::Stale => "replayed_or_stale",
        }
    }
}

/// An authenticated datagram's contents.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Datagram {
    pub(crate) sender: u16,
    pub(crate) incarnation: u32,
    pub(crate) sequence: u64,
    pub(crate) messages: Vec<Msg>,
}

/// Seals messages into one datagram.
pub(crate) fn seal(
    key: &[u8],
    sender: u16,
    incarnation: u32,
    sequence: u64,
    messages: &[Msg],
) -> Result<Vec<u8>, postcard::Error> {
    let mut out = Vec::with_capacity(256);
    out.push(VERSION);
    out.extend_from_slice(&sender.to_be_bytes());
    out.extend_from_slice(&incarnation.to_be_bytes());
    out.extend_from_slice(&sequence.to_be_bytes());
    let out = postcard::to_extend(messages, out)?;
    let mut out = out;
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(&out);
    out.extend_from_slice(&mac.finalize().into_bytes());
    Ok(out)
}

/// Opens a datagram: size, version, tag, then payload. Does not judge freshness.
pub(crate) fn open(key: &[u8], bytes: &[u8]) -> Result<Datagram, Rejection> {
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
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(body);
    mac.verify_slice(tag).map_err(|_| Rejection::BadMac)?;
    let sender = u16::from_be_bytes([body[1], body[2]]);
    let incarnation = u32::from_be_bytes([body[3], body[4], body[5], body[6]]);
    let mut seq = [0u8; 8];
    seq.copy_from_slice(&body[7..15]);
    let messages: Vec<Msg> =
        postcard::from_bytes(&body[HEADER..]).map_err(|_| Rejection::Undecodable)?;
    Ok(Datagram {
        sender,
        incarnation,
        sequence: u64::from_be_bytes(seq),
        messages,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use slotguard_model::Epoch;

    #[test]
    fn round_trip_and_every_corruption_is_caught() {
        let key = b"k3y";
        let msgs = vec![
            Msg::AuthAck {
                epoch: Epoch(7),
                candidate: slotguard_model::NodeId(4),
            },
            Msg::Fail {
                node: slotguard_model::NodeId(2),
            },
        ];
        let d = seal(key, 3, 1, 9, &msgs).expect("seals");
        let open_ok = open(key, &d).expect("opens");
        assert_eq!(open_ok.messages, msgs);
        assert_eq!(
            (open_ok.sender, open_ok.incarnation, open_ok.sequence),
            (3, 1, 9)
        );
        assert_eq!(open(b"other", &d), Err(Rejection::BadMac));
        assert_eq!(open(key, &d[..10]), Err(Rejection::Truncated));
        let mut v = d.clone();
        v[0] = 9;
        assert_eq!(open(key, &v), Err(Rejection::Version));
        for i in 1..d.len() {
            let mut flipped = d.clone();
            flipped[i] ^= 0x40;
            assert!(open(key, &flipped).is_err(), "bit flip at {i} accepted");
        }
        assert_eq!(
            open(key, &vec![1u8; MAX_DATAGRAM + 1]),
            Err(Rejection::Oversized)
        );
    }

    #[test]
    fn authentic_garbage_is_undecodable_not_a_panic() {
        let key = b"k";
        let mut body = vec![
            VERSION, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5, 0xff, 0xff, 0xff,
        ];
        let mut mac = HmacSha256::new_from_slice(key).expect("key");
        mac.update(&body);
        body.extend_from_slice(&mac.finalize().into_bytes());
        assert_eq!(open(key, &body), Err(Rejection::Undecodable));
    }
}
