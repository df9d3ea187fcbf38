//! A step's commands turned into effects (specs/protocol.md §10, Commands): `Save` becomes a
//! [`Effect::Persist`] in its place, timers are armed or cancelled at once, and the step's
//! messages are packed per destination into sealed datagrams queued after everything else of
//! the step — so the queue itself says "persist before you promise" (§7).

use std::collections::BTreeMap;

use slotguard_protocol::{ClusterNode, Msg, NodeId, Persisted};
use stateright::actor::{Command, Out};

use super::{Driver, Effect, Now, Save, Transmit};
use crate::trace::Tx;
use crate::wire;

impl Driver {
    /// Queues the effects of a step's commands, in order.
    pub(super) fn interpret(&mut self, out: Out<ClusterNode>, now: Now) {
        let mut batches: BTreeMap<usize, Vec<Msg>> = BTreeMap::new();
        for command in out {
            match command {
                Command::Save(p) => self.queue_save(p),
                Command::Send(to, msg) => batches.entry(usize::from(to)).or_default().push(msg),
                Command::SetTimer(t, range) => self.timers.set(t, &range, now.at),
                Command::CancelTimer(t) => self.timers.cancel(&t),
                Command::ChooseRandom(..) => {}
            }
        }
        for (to, msgs) in batches {
            self.seal_for(to, &msgs);
        }
    }

    /// Queues a write of the state file with `state` and what the runtime keeps beside it.
    pub(super) fn queue_save(&mut self, state: Persisted) {
        if let Some(trace) = &mut self.trace {
            trace.saved();
        }
        self.effects.push_back(Effect::Persist(Save {
            name: self.names.my_name(),
            peers: self.names.peer_names(),
            incarnation: self.incarnation,
            state,
        }));
    }

    /// Queues `msgs` to node `to` in one datagram, or halves of them in several if one would
    /// be larger than [`wire::MAX_DATAGRAM`]. A node whose address is unknown gets nothing
    /// (counted `unresolved`): the protocol sees a lost message.
    fn seal_for(&mut self, to: usize, msgs: &[Msg]) {
        let Some(addr) = self.addrs.get(to).copied().flatten() else {
            self.count("unresolved");
            return;
        };
        self.sequence += 1;
        let address = wire::Address {
            sender: self.me.0,
            name: self.names.my_name().0,
            destination: to as u16,
            incarnation: self.incarnation,
            sequence: self.sequence,
        };
        match wire::seal(&self.bus_key, address, msgs) {
            Ok(bytes) if bytes.len() <= wire::MAX_DATAGRAM => {
                if let Some(trace) = &mut self.trace {
                    trace.sealed(Tx {
                        to: to as u16,
                        seq: self.sequence,
                        n: msgs.len() as u32,
                    });
                }
                self.effects.push_back(Effect::Transmit(Transmit {
                    to: NodeId(to as u16),
                    addr,
                    bytes,
                    sequence: self.sequence,
                    pings: msgs.iter().any(|m| matches!(m, Msg::Ping(_))),
                }));
            }
            Ok(_) if msgs.len() > 1 => {
                let (a, b) = msgs.split_at(msgs.len() / 2);
                self.seal_for(to, a);
                self.seal_for(to, b);
            }
            _ => self.count("unsendable"),
        }
    }
}
