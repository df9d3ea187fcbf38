//! Which hash slot a key belongs to: CRC16-XMODEM of the key, or of its hash tag, modulo 16384,
//! exactly as Redis Cluster's `keyHashSlot` (cluster.c) computes it, so that every Redis Cluster
//! client routes a key to the node that serves it (specs/protocol.md §1).
//!
//! The hash tag rule: if the key has a `{` and, after it, a `}` with at least one byte between
//! them, only the bytes between the first `{` and the first `}` after it are hashed. This is
//! what lets a client keep several keys in one slot (`{user1}.name`, `{user1}.mail`) for
//! commands on several keys.

use crc::{Crc, CRC_16_XMODEM};

/// Redis Cluster's number of hash slots.
pub const SLOT_COUNT: u16 = 16384;

const XMODEM: Crc<u16> = Crc::<u16>::new(&CRC_16_XMODEM);

/// The hash slot of `key`.
pub fn key_slot(key: &[u8]) -> u16 {
    XMODEM.checksum(hash_tag(key).unwrap_or(key)) % SLOT_COUNT
}

/// The bytes between the first `{` and the first `}` after it, when there is at least one.
fn hash_tag(key: &[u8]) -> Option<&[u8]> {
    let open = key.iter().position(|&b| b == b'{')?;
    let rest = &key[open + 1..];
    let close = rest.iter().position(|&b| b == b'}')?;
    (close > 0).then(|| &rest[..close])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `CLUSTER KEYSLOT` answers of a real redis-server for 476 keys: the edge cases of the hash
    /// tag rule (empty tags, nested and repeated braces, NUL and non-ASCII bytes) and random keys.
    const REDIS_ANSWERS: &str = include_str!("fixtures/keyslot.tsv");

    #[test]
    fn agrees_with_redis_cluster_keyslot() {
        let mut checked = 0;
        for line in REDIS_ANSWERS.lines().filter(|l| !l.starts_with('#')) {
            let (slot, key) = line.split_once('\t').expect("slot, tab, key");
            let slot: u16 = slot.parse().expect("a slot number");
            let key: String = serde_json::from_str(key).expect("a JSON string");
            assert_eq!(key_slot(key.as_bytes()), slot, "key {key:?}");
            checked += 1;
        }
        assert_eq!(checked, 476);
    }

    #[test]
    fn hash_tags_follow_redis_rule() {
        assert_eq!(hash_tag(b"{user1000}.following"), Some(&b"user1000"[..]));
        assert_eq!(hash_tag(b"foo{}{bar}"), None);
        assert_eq!(hash_tag(b"foo{{bar}}zap"), Some(&b"{bar"[..]));
        assert_eq!(hash_tag(b"foo{bar}{zap}"), Some(&b"bar"[..]));
        assert_eq!(hash_tag(b"no tag"), None);
    }
}
