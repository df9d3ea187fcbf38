//! Structural validation of peer input: every node id names a node of the layout and every slot
//! is below the slot count. A message that fails is dropped whole before any handler runs, so
//! handlers may index per-node and per-slot tables without checks, and a malformed datagram can
//! never change state (the node runtime counts such drops).

use crate::bitset::SlotSet;
use crate::ids::NodeId;
use crate::layout::Layout;
use crate::message::{Header, Msg};

fn node_ok(layout: &Layout, node: NodeId) -> bool {
    node.index() < layout.len()
}

fn slots_ok(layout: &Layout, slots: &SlotSet) -> bool {
    slots
        .last()
        .is_none_or(|s| usize::from(s) < layout.slot_count())
}

fn header_ok(layout: &Layout, h: &Header) -> bool {
    h.master.is_none_or(|m| node_ok(layout, m)) && slots_ok(layout, &h.slots)
}

/// Whether every id and slot in `msg` is within the layout.
pub fn message_is_valid(layout: &Layout, msg: &Msg) -> bool {
    match msg {
        Msg::Ping(h) | Msg::Pong(h) => header_ok(layout, h),
        Msg::Gossip(e) => node_ok(layout, e.node),
        Msg::Fail { node } => node_ok(layout, *node),
        Msg::AuthRequest(req) => node_ok(layout, req.master) && slots_ok(layout, &req.slots),
        Msg::AuthAck { candidate, .. } => node_ok(layout, *candidate),
        Msg::FailoverStart => true,
        Msg::Update(claim) => node_ok(layout, claim.node) && slots_ok(layout, &claim.slots),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::Epoch;
    use crate::layout::InitialEpochs;
    use crate::message::SlotClaim;

    #[test]
    fn rejects_out_of_range_ids_and_slots() {
        let layout = Layout::grid(3, 1, 3, InitialEpochs::Distinct).expect("valid");
        assert!(message_is_valid(&layout, &Msg::Fail { node: NodeId(5) }));
        assert!(!message_is_valid(&layout, &Msg::Fail { node: NodeId(6) }));
        let claim = |slot: u16| {
            Msg::Update(SlotClaim {
                node: NodeId(0),
                config_epoch: Epoch(1),
                slots: [slot].into_iter().collect(),
            })
        };
        assert!(message_is_valid(&layout, &claim(2)));
        assert!(!message_is_valid(&layout, &claim(3)));
    }
}
