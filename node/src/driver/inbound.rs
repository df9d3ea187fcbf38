//! Which received datagrams reach the actor: the checks of specs/protocol.md §10 (Wire), in
//! order, each failure a counted [`Rejection`].
//!
//! Why here and not in wire.rs: opening a datagram needs only the key, but judging it needs
//! what the driver knows — the layout (sender and message ids in range) and the last stamp
//! accepted from each sender (the replay filter).

use std::collections::BTreeMap;

use slotguard_protocol::validate::message_is_valid;
use slotguard_protocol::Layout;

use crate::wire::{self, BusKey, Datagram, Rejection};

/// The newest `(incarnation, sequence)` accepted from each sender: anything not newer is a
/// replay or reordered, and dropping it is safe (the protocol was checked on a lossy network).
#[derive(Debug, Default)]
pub(crate) struct ReplayFilter {
    last_seen: BTreeMap<u16, (u32, u64)>,
    /// A deliberately broken filter that admits every stamp (tests that show trace validation
    /// catches it: trace/tests.rs).
    #[cfg(test)]
    pub(crate) admits_everything: bool,
}

impl ReplayFilter {
    /// Whether `stamp` is newer than the last accepted from `sender`; if so, it is now the last.
    pub(crate) fn admit(&mut self, sender: u16, stamp: (u32, u64)) -> bool {
        #[cfg(test)]
        if self.admits_everything {
            return true;
        }
        if self
            .last_seen
            .get(&sender)
            .is_some_and(|&last| stamp <= last)
        {
            return false;
        }
        self.last_seen.insert(sender, stamp);
        true
    }
}

/// Opens `bytes` as node `me` of `layout` and judges it: authentic, addressed here, from
/// another node of the cluster, every message within the layout, and fresh.
pub(crate) fn accept(
    key: &BusKey,
    layout: &Layout,
    me: u16,
    replay: &mut ReplayFilter,
    bytes: &[u8],
) -> Result<Datagram, Rejection> {
    let datagram = wire::open(key, me, bytes)?;
    if usize::from(datagram.sender) >= layout.len() || datagram.sender == me {
        return Err(Rejection::UnknownSender);
    }
    if !datagram
        .messages
        .iter()
        .all(|m| message_is_valid(layout, m))
    {
        return Err(Rejection::Undecodable);
    }
    if !replay.admit(datagram.sender, (datagram.incarnation, datagram.sequence)) {
        return Err(Rejection::Stale);
    }
    Ok(datagram)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_newer_stamps_pass_per_sender() {
        let mut f = ReplayFilter::default();
        assert!(f.admit(1, (0, 5)));
        assert!(!f.admit(1, (0, 5)), "a replay");
        assert!(!f.admit(1, (0, 4)), "reordered");
        assert!(f.admit(2, (0, 1)), "senders are separate");
        assert!(
            f.admit(1, (1, 1)),
            "a new incarnation restarts the sequence"
        );
        assert!(
            !f.admit(1, (0, 9)),
            "the last incarnation's datagrams are stale"
        );
    }
}
