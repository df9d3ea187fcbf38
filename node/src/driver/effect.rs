//! What a [`Driver`](super::Driver) asks its shell to do, as data (specs/protocol.md §10).
//!
//! Why data and not calls: the driver decides, the shell only carries out, so every decision
//! can be tested by reading the queue, and the one ordering rule that matters — a step's
//! [`Effect::Persist`] is durable before any [`Effect::Transmit`] of the same step leaves
//! (specs/protocol.md §7) — is the plain order of the queue, which the shell keeps by carrying
//! out effects one at a time.

use std::net::SocketAddr;

use slotguard_protocol::{Epoch, NodeId, Persisted};

use crate::identity::NodeName;

/// One thing to do, in queue order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Effect {
    /// Write the state file durably; nothing queued after it may happen before it completes.
    Persist(Save),
    /// Hand a sealed datagram to the socket, then report with
    /// [`Driver::on_transmitted`](super::Driver::on_transmitted).
    Transmit(Transmit),
    /// Log a line for operators.
    Log(Event),
}

/// The whole contents of a state file (the shell's storage writes it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Save {
    /// This node's name.
    pub name: NodeName,
    /// Its peers' names as far as learnt, by id.
    pub peers: Vec<Option<NodeName>>,
    /// This start's incarnation.
    pub incarnation: u32,
    /// The protocol's durable state.
    pub state: Persisted,
}

/// A datagram to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transmit {
    /// The node it is for.
    pub to: NodeId,
    /// That node's bus address.
    pub addr: SocketAddr,
    /// The sealed datagram (wire.rs).
    pub bytes: Vec<u8>,
    /// Its sequence number (a trace names the datagram by it).
    pub sequence: u64,
    /// Whether it carries a PING (CLUSTER NODES shows when the pending one left).
    pub pings: bool,
}

/// A log line, with the fields the shell logs it with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// The node started (logged before anything of its start step is carried out).
    Started {
        /// Its name.
        name: NodeName,
        /// Its role in words (`master`, `replica of 3fa2c1d0(n1)`).
        role: String,
        /// Its configEpoch.
        config_epoch: Epoch,
    },
    /// A step's line (events.rs), logged once the step is carried out.
    Step(String),
    /// A peer's name was learnt from its first authentic datagram.
    PeerNamed {
        /// The peer's label.
        peer: String,
        /// Its name.
        name: NodeName,
    },
    /// A peer now carries another name: it was recreated without its state file.
    PeerRenamed {
        /// The peer's label.
        peer: String,
        /// The name it had.
        old: NodeName,
        /// The name it has.
        new: NodeName,
    },
}
