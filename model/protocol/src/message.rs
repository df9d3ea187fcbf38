//! The cluster-bus messages (specs/background.md §R1.2), as one enum that is both what the checker
//! puts on its simulated network and what the node encodes into UDP datagrams.
//!
//! A datagram is a batch of these messages (the runtime packs every message one step sends to
//! one node into one datagram). A PING datagram is a `Ping` with the sender's whole header —
//! role, master, currentEpoch, configEpoch (its master's when the sender is a replica), the
//! slots of its shard, replication offset and flags — followed by one `Gossip` message per node
//! the sender suspects (PFAIL) or has marked FAIL, with that node's configEpoch: Redis appends
//! all PFAIL nodes to every ping (specs/background.md §R1.4), and Valkey #2169 shows that gossip
//! without configEpoch lets a replica keep a stale epoch for its dead master forever.
//!
//! The checker lets the messages of one datagram arrive separately (a superset of the atomic
//! case), so every message is self-contained and applied idempotently in any order — the
//! "idempotent config push" of specs/background.md §R1.3.

use serde::{Deserialize, Serialize};

use crate::bitset::SlotSet;
use crate::ids::{Epoch, NodeId};

/// What a node says about itself in every PING and PONG (`clusterMsg` header, §1.3).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Header {
    /// The sender's currentEpoch.
    pub current_epoch: Epoch,
    /// The sender's configEpoch if it is a master, its master's (as it knows it) if a replica.
    pub config_epoch: Epoch,
    /// `None` for a master; the master it replicates for a replica (`slaveof`).
    pub master: Option<NodeId>,
    /// Slots of the sender's shard: its own if a master, its master's (as it sees them) if a
    /// replica.
    pub slots: SlotSet,
    /// Replication offset (for replica rank). slotguard has no data plane yet, so this is 0 on
    /// every node and rank falls back to node id (Valkey #762).
    pub repl_offset: u64,
    /// Header flags.
    pub flags: HeaderFlags,
}

/// Node flags a header carries (Redis's `flags`; role bits are [`Header::master`], PFAIL/FAIL
/// travel in gossip entries).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default,
)]
pub struct HeaderFlags {
    /// The sender is a replica configured never to fail over (`cluster-replica-no-failover`).
    pub no_failover: bool,
    /// The sender is a master that paused writes for a manual failover (Redis's
    /// `CLUSTERMSG_FLAG0_PAUSED`): its replication offset is final until the failover ends.
    pub paused: bool,
    /// The sender is a master that restarted without its data in `sync` mode: it serves
    /// nothing, and its replicas with a complete copy take its slots (specs/protocol.md §13.2).
    pub data_lost: bool,
}

/// What a sender believes about another node that it has not marked FAIL (a FAIL node is
/// described by a [`Msg::Fail`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Suspicion {
    /// No suspicion (withdraws an earlier report).
    None,
    /// The sender's own PING to the node went unanswered for node_timeout.
    PFail,
}

/// A gossip entry: what the sender believes about one other node.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct GossipEntry {
    /// The node the entry is about.
    pub node: NodeId,
    /// How the sender sees it.
    pub suspicion: Suspicion,
    /// The node's configEpoch as the sender knows it (Valkey #2169: a replica must be able to
    /// learn its dead master's latest epoch from others).
    pub config_epoch: Epoch,
    /// The sender was a slot-owning master when it wrote the entry: only such entries are
    /// failure reports (Valkey #634). Carried in the entry because parts of a datagram may
    /// arrive apart from the header that says what the sender is.
    pub from_voting_master: bool,
}

/// A candidate's request for votes (`FAILOVER_AUTH_REQUEST`, §3.1).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct VoteRequest {
    /// The election epoch: the candidate's bumped currentEpoch.
    pub epoch: Epoch,
    /// The failed master the candidate wants to replace.
    pub master: NodeId,
    /// That master's configEpoch as the candidate knows it.
    pub master_config_epoch: Epoch,
    /// That master's slots as the candidate sees them.
    pub slots: SlotSet,
    /// A manual failover (`CLUSTER FAILOVER` or `FORCE`): grant the vote although the master
    /// is not FAIL (Redis's `CLUSTERMSG_FLAG0_FORCEACK`).
    pub forced: bool,
}

/// A slot claim sent to a node whose claim is stale (`UPDATE`, §1.2, §3.4).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct SlotClaim {
    /// The node that owns the slots.
    pub node: NodeId,
    /// Its configEpoch.
    pub config_epoch: Epoch,
    /// The slots bound to it.
    pub slots: SlotSet,
}

/// A cluster-bus message.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Msg {
    /// Probe carrying the sender's header; answered with a PONG. Sent on every tick and at
    /// once whenever the header changes.
    Ping(Header),
    /// Answer to a PING: proof the sender is alive, and its header.
    Pong(Header),
    /// One gossip entry. Sent with every tick for each node the sender suspects, and at once
    /// whenever the sender's belief about a node changes (a withdrawal included).
    Gossip(GossipEntry),
    /// "This node is FAIL": broadcast at once by every node that marks it FAIL (by its own
    /// quorum of reports, or by adopting another node's FAIL), and repeated with every tick
    /// while it stays FAIL — the FAIL broadcast and the FAIL flag of Redis gossip in one.
    Fail {
        /// The failed node.
        node: NodeId,
    },
    /// A replica asks a master for its vote.
    AuthRequest(VoteRequest),
    /// A master grants its vote for `epoch` to `candidate`.
    AuthAck {
        /// The election epoch the vote is for.
        epoch: Epoch,
        /// The replica the vote is for. The destination says it too, but a message must mean
        /// one thing wherever it lands: a vote that names its candidate cannot be counted by
        /// another candidate of the same epoch (the node's MAC also binds the destination).
        candidate: NodeId,
        /// Granted to a manual failover's request (the master need not have been FAIL).
        forced: bool,
    },
    /// A replica asks its master to pause writes for a manual failover (`MFSTART`).
    FailoverStart,
    /// "Your claim is stale: this node owns these slots at this epoch."
    Update(SlotClaim),
}

impl Msg {
    /// Short name of the message kind, for logs and counters.
    pub fn kind(&self) -> &'static str {
        match self {
            Msg::Ping(_) => "PING",
            Msg::Pong(_) => "PONG",
            Msg::Gossip(_) => "GOSSIP",
            Msg::Fail { .. } => "FAIL",
            Msg::AuthRequest(_) => "AUTH_REQUEST",
            Msg::AuthAck { .. } => "AUTH_ACK",
            Msg::FailoverStart => "MFSTART",
            Msg::Update(_) => "UPDATE",
        }
    }
}
