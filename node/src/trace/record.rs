//! The trace's records and the driver's side of recording them (specs/protocol.md §12.1).

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};
use slotguard_protocol::{
    ClusterNode, FailoverMode, Msg, NodeSpec, NodeState, Persisted, Timer, Timing,
};
use stateright::actor::{Command, Out};

use super::digest;

/// One line of a trace.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Record {
    /// The node started: `on_start` with the state its state file held.
    Start(Box<Start>),
    /// One actor step after the start.
    Step(Box<Step>),
    /// The shell reports the save queued by step `step` of this start durable.
    Durable {
        /// The step whose save it is.
        step: u64,
    },
    /// The shell reports the datagram `seq` handed to the socket (`ok`) or refused by it.
    Sent {
        /// The datagram's sequence number.
        seq: u64,
        /// Whether the socket took it.
        ok: bool,
    },
}

/// A start: everything needed to rebuild the actor and replay `on_start`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Start {
    /// This node.
    pub node: u16,
    /// This start's incarnation (its datagrams' stamps carry it).
    pub incarnation: u32,
    /// The layout's slot count.
    pub slot_count: u16,
    /// The layout's nodes.
    pub layout: Vec<NodeSpec>,
    /// Timer durations.
    pub timing: Timing,
    /// When a write is acknowledged: what a restart leaves of the data (specs/protocol.md §13).
    #[serde(default)]
    pub durability: slotguard_protocol::Durability,
    /// What the state file held (`None`: a new node).
    pub stored: Option<Persisted>,
    /// Wall-clock milliseconds of the start.
    pub t: u64,
    /// What `on_start` produced ([`render`]).
    pub out: Vec<String>,
    /// Digest of the state after it.
    pub digest: String,
    /// The datagrams its messages left in.
    pub tx: Vec<Tx>,
}

/// One step: its input, what it produced, the state's digest after it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    /// Its number in this start (the start is 0).
    pub n: u64,
    /// Wall-clock milliseconds of the input.
    pub t: u64,
    /// The replication offset the runtime noted into the state before the step, when it
    /// changed since the last record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
    /// What the actor consumed.
    pub input: Input,
    /// What it produced ([`render`]).
    pub out: Vec<String>,
    /// Digest of the state after it.
    pub digest: String,
    /// The datagrams its messages left in.
    pub tx: Vec<Tx>,
}

/// What a step consumed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Input {
    /// Message `idx` of the datagram stamped `(inc, seq)` by node `from`.
    Msg {
        /// The sender.
        from: u16,
        /// The sender's incarnation.
        inc: u32,
        /// The datagram's sequence number.
        seq: u64,
        /// The message's place in the datagram.
        idx: u32,
        /// The message.
        msg: Msg,
    },
    /// A timer fired.
    Timer(Timer),
    /// An operator's `CLUSTER FAILOVER` in this mode (specs/protocol.md §6.1).
    Failover(FailoverMode),
    /// The replication link applied a full copy of the master's data (specs/protocol.md §13).
    Copied,
    /// The replication link was offered an empty copy over the node's data (§13.1).
    MasterRecreated,
    /// An operator's `CLUSTER ACCEPT-DATA-LOSS` (§13.1).
    DataLossAccepted,
}

/// A datagram a step's messages left in: `n` messages to node `to`, in the order the actor sent
/// them (a step's messages to one node are packed in order, split when too large).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tx {
    /// The destination.
    pub to: u16,
    /// The datagram's sequence number.
    pub seq: u64,
    /// How many messages it carries.
    pub n: u32,
}

/// A step's commands in words, as a trace records them and the validator compares them: a save
/// and a message by digest, a timer by name and range.
pub(crate) fn render(out: &Out<ClusterNode>) -> Vec<String> {
    out.iter()
        .map(|command| match command {
            Command::Save(p) => format!("save {}", digest(p)),
            Command::Send(to, msg) => {
                format!("send n{} {} {}", usize::from(*to), msg.kind(), digest(msg))
            }
            Command::SetTimer(t, r) => format!("set {t} {:?}..{:?}", r.start, r.end),
            Command::CancelTimer(t) => format!("cancel {t}"),
            Command::ChooseRandom(..) => String::from("random"),
        })
        .collect()
}

/// The driver's recorder: it fills a buffer of NDJSON lines that the shell drains
/// ([`Driver::take_trace`](crate::driver::Driver::take_trace)).
#[derive(Debug, Default)]
pub(crate) struct Recorder {
    buf: Vec<u8>,
    /// The next step's number.
    next: u64,
    /// The step being recorded, until its effects are queued.
    open: Option<Record>,
    /// Per save queued and not yet reported durable, in order: the step it belongs to (`None`:
    /// a save of the runtime's, of peers' names).
    saves: VecDeque<Option<u64>>,
    /// The replication offset last recorded.
    offset: u64,
    /// The digest of the state after the last step, and whether the state may have changed
    /// since (a step that changed nothing keeps it: hashing a 16384-slot state costs).
    last_digest: String,
    stale: bool,
}

impl Recorder {
    /// Opens the start record; its outputs are rendered from `out`.
    pub(crate) fn start(&mut self, start: Start) {
        self.next = 1;
        self.stale = true;
        self.open = Some(Record::Start(Box::new(start)));
    }

    /// Opens a step record for `input`, rendering `out`; `changed`: whether the step wrote the
    /// state. `state_offset` is the offset the state carries.
    pub(crate) fn step(
        &mut self,
        input: Input,
        out: &Out<ClusterNode>,
        changed: bool,
        state_offset: u64,
        t: u64,
    ) {
        let offset = (state_offset != self.offset).then_some(state_offset);
        self.offset = state_offset;
        self.stale |= changed || offset.is_some();
        let n = self.next;
        self.next += 1;
        self.open = Some(Record::Step(Box::new(Step {
            n,
            t,
            offset,
            input,
            out: render(out),
            digest: String::new(),
            tx: Vec::new(),
        })));
    }

    /// The step being recorded: its number.
    pub(crate) fn current(&self) -> Option<u64> {
        match &self.open {
            Some(Record::Start(_)) => Some(0),
            Some(Record::Step(s)) => Some(s.n),
            _ => None,
        }
    }

    /// A save was queued (by the open step, or by the runtime if none is open).
    pub(crate) fn saved(&mut self) {
        let step = self.current();
        self.saves.push_back(step);
    }

    /// A datagram of the open step was sealed.
    pub(crate) fn sealed(&mut self, tx: Tx) {
        match &mut self.open {
            Some(Record::Start(s)) => s.tx.push(tx),
            Some(Record::Step(s)) => s.tx.push(tx),
            _ => {}
        }
    }

    /// Closes the open record with the state after it and writes it to the buffer.
    pub(crate) fn close(&mut self, state: &NodeState) {
        if self.stale {
            self.last_digest = digest(state);
            self.stale = false;
        }
        let Some(mut record) = self.open.take() else {
            return;
        };
        match &mut record {
            Record::Start(s) => s.digest.clone_from(&self.last_digest),
            Record::Step(s) => s.digest.clone_from(&self.last_digest),
            _ => {}
        }
        self.write(&record);
    }

    /// The shell carried out the oldest save still queued.
    pub(crate) fn durable(&mut self) {
        if let Some(Some(step)) = self.saves.pop_front() {
            self.write(&Record::Durable { step });
        }
    }

    /// The shell handed datagram `seq` to the socket.
    pub(crate) fn sent(&mut self, seq: u64, ok: bool) {
        self.write(&Record::Sent { seq, ok });
    }

    /// The lines recorded since the last call.
    pub(crate) fn take(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.buf)
    }

    fn write(&mut self, record: &Record) {
        // Serialising these types cannot fail (no maps with non-string keys); a line that
        // failed would be missing, which validation reports.
        if serde_json::to_writer(&mut self.buf, record).is_ok() {
            self.buf.push(b'\n');
        }
    }
}
