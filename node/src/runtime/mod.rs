//! The node runtime: a thin tokio shell around the sans-IO [`Driver`](slotguard::driver)
//! (specs/protocol.md §10).
//!
//! One task owns the driver (shell.rs). It reads the bus socket, the timer deadline, host-name
//! lookups and the shutdown signal, hands each input to the driver, and carries out the
//! driver's effects one at a time, in order: a step's state-file write is finished (fsynced,
//! on a blocking thread) before any datagram of that step is handed to the socket (§7). Every
//! protocol decision is the actor's, every translation of the actor's commands the driver's;
//! this module only moves bytes and keeps the clocks.
//!
//! Clients and admins talk RESP on a TCP port (`admin.rs`), reading a snapshot that the owner
//! task publishes after every input; so does the Prometheus endpoint (`metrics.rs`). Beside the
//! protocol, the runtime resolves the peers' bus host names in tasks off the step loop
//! (`resolve.rs`) and keeps the state file (`storage.rs`).

pub(crate) mod admin;
pub(crate) mod command_table;
pub(crate) mod commands;
pub(crate) mod config;
pub(crate) mod format;
pub(crate) mod keys;
pub(crate) mod metrics;
#[cfg(test)]
mod ordering_tests;
pub(crate) mod replication;
#[cfg(test)]
mod replication_tests;
pub(crate) mod request;
pub(crate) mod resolve;
mod shell;
pub(crate) mod storage;
#[cfg(test)]
mod test_support;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};

use slotguard_protocol::state::NodeState;
use slotguard_protocol::ClusterStatus;

pub(crate) use self::shell::Runtime;
pub(crate) use slotguard::{identity, reply, wire};

use self::identity::Directory;

/// What the admin port can see: the node's state after its last step, and counters.
#[derive(Clone)]
pub(crate) struct Snapshot {
    /// The actor state.
    pub(crate) state: NodeState,
    /// The node's verdict on the cluster in that state (what `CLUSTER INFO` says and key
    /// commands are routed by), computed once per step rather than per command.
    pub(crate) status: ClusterStatus,
    /// Starts of this node before this one.
    pub(crate) incarnation: u32,
    /// Datagram counters: received, sent, and drops by reason.
    pub(crate) counters: BTreeMap<&'static str, u64>,
    /// Every node's name as far as known, and when PINGs and PONGs last went and came.
    pub(crate) names: Directory,
    /// Random per start of the process (INFO `run_id`).
    pub(crate) run_id: String,
    /// Every node's bus address as resolved so far (resolve.rs).
    pub(crate) addrs: Vec<Option<SocketAddr>>,
}

/// Shared view for the admin port.
pub(crate) type Shared = Arc<RwLock<Snapshot>>;

/// An input for the actor from the client port, sent to the node's owner task, which runs it
/// as an actor step.
pub(crate) enum OwnerRequest {
    /// An operator's `CLUSTER FAILOVER` (specs/protocol.md §6.1), answered with the actor's
    /// verdict.
    Failover {
        /// The mode asked for.
        mode: slotguard_protocol::FailoverMode,
        /// Where the actor's answer goes.
        answer: tokio::sync::oneshot::Sender<
            Result<(), slotguard_protocol::protocol::manual::FailoverRefused>,
        >,
    },
    /// The replication link applied a full copy of the master's data: a node that lost its
    /// data holds its shard's writes again (specs/protocol.md §13).
    Copied,
    /// The replication link was offered an empty copy over this node's data: its master was
    /// recreated without its state file (specs/protocol.md §13.1).
    MasterRecreated,
    /// An operator's `CLUSTER ACCEPT-DATA-LOSS` (specs/protocol.md §13.1), answered with the
    /// actor's verdict.
    AcceptDataLoss {
        /// Where the actor's answer goes.
        answer: tokio::sync::oneshot::Sender<
            Result<(), slotguard_protocol::durability::DataLossRefused>,
        >,
    },
}

/// Where the client port sends its requests to the owner task.
pub(crate) type Operator = tokio::sync::mpsc::Sender<OwnerRequest>;
