//! The sender's name beside each cluster-bus datagram, as an authenticated trailer.
//!
//! ```text
//! [datagram as wire.rs seals it][name: 20 bytes][tag: HMAC-SHA256(key, DOMAIN || all before), 32 bytes]
//! ```
//!
//! Why a trailer and not a field of the model's messages or of wire.rs's header: names are
//! runtime identity (identity.rs), not protocol, so the checked messages must not carry them;
//! and the datagram header (wire.rs) belongs to another line of work. A trailer around whatever
//! wire.rs seals keeps the two independent: `seal_name` wraps the sealed bytes, and
//! `peer_name_from_datagram` checks and strips the trailer before `wire::open` sees the rest.
//! When the header is next reworked, the name can move into it and this file go away.
//!
//! Why every datagram and not an occasional announcement: a peer learns the name from whatever
//! datagram arrives first, a recreated node is renamed by its next one, and nothing extra has to
//! be scheduled or lost. 52 bytes per datagram is the price. The trailer has its own tag (under
//! a domain-separated input) so a name cannot be attached to someone else's datagram; the inner
//! datagram keeps its own tag, so wire.rs's checks are unchanged.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use super::identity::{NodeName, NAME_LEN};
use super::wire::{Rejection, MAX_DATAGRAM};

/// Bytes the trailer adds.
pub(crate) const TRAILER: usize = NAME_LEN + TAG;
/// Largest datagram with its trailer.
pub(crate) const MAX_NAMED: usize = MAX_DATAGRAM + TRAILER;
const TAG: usize = 32;
/// Distinguishes this tag's input from wire.rs's, which is computed under the same key.
const DOMAIN: &[u8] = b"slotguard node name v1\0";

fn mac(key: &[u8]) -> Hmac<Sha256> {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(DOMAIN);
    mac
}

/// Appends `name` and the trailer's tag to a sealed datagram.
pub(crate) fn seal_name(key: &[u8], name: &NodeName, mut datagram: Vec<u8>) -> Vec<u8> {
    datagram.extend_from_slice(&name.0);
    let mut m = mac(key);
    m.update(&datagram);
    datagram.extend_from_slice(&m.finalize().into_bytes());
    datagram
}

/// The sender's name and the datagram inside, once the trailer's tag verifies.
pub(crate) fn peer_name_from_datagram<'a>(
    key: &[u8],
    bytes: &'a [u8],
) -> Result<(NodeName, &'a [u8]), Rejection> {
    if bytes.len() > MAX_NAMED {
        return Err(Rejection::Oversized);
    }
    let Some(body_len) = bytes.len().checked_sub(TAG) else {
        return Err(Rejection::Truncated);
    };
    let (body, tag) = bytes.split_at(body_len);
    let Some(inner_len) = body.len().checked_sub(NAME_LEN) else {
        return Err(Rejection::Truncated);
    };
    let mut m = mac(key);
    m.update(body);
    m.verify_slice(tag).map_err(|_| Rejection::BadMac)?;
    let (inner, name) = body.split_at(inner_len);
    let mut n = [0u8; NAME_LEN];
    n.copy_from_slice(name);
    Ok((NodeName(n), inner))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_name_round_trips_and_any_change_is_refused() {
        let key = b"cluster-key";
        let name = NodeName([0x5a; NAME_LEN]);
        let inner = vec![1u8, 2, 3, 4];
        let sealed = seal_name(key, &name, inner.clone());
        assert_eq!(sealed.len(), inner.len() + TRAILER);
        assert_eq!(
            peer_name_from_datagram(key, &sealed),
            Ok((name, &inner[..]))
        );
        for i in 0..sealed.len() {
            let mut flipped = sealed.clone();
            flipped[i] ^= 1;
            assert!(
                peer_name_from_datagram(key, &flipped).is_err(),
                "flip at {i}"
            );
        }
        assert_eq!(
            peer_name_from_datagram(b"other-key", &sealed),
            Err(Rejection::BadMac)
        );
        assert_eq!(
            peer_name_from_datagram(key, &sealed[..TRAILER - 1]),
            Err(Rejection::Truncated)
        );
        assert_eq!(
            peer_name_from_datagram(key, &vec![0u8; MAX_NAMED + 1]),
            Err(Rejection::Oversized)
        );
    }

    #[test]
    fn a_name_cannot_be_moved_onto_another_datagram() {
        let key = b"cluster-key";
        let a = seal_name(key, &NodeName([1; NAME_LEN]), vec![9u8; 10]);
        let mut b = vec![8u8; 10];
        b.extend_from_slice(&a[10..]);
        assert_eq!(peer_name_from_datagram(key, &b), Err(Rejection::BadMac));
    }
}
