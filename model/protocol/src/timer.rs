//! Timers are data: the actor asks for them by name, the checker lets any armed timer fire at any
//! moment (specs/background.md §S1.3), and the node runtime turns them into tokio deadlines with
//! the durations from [`Timing`](crate::Timing). Set replaces, cancel removes, firing removes first
//! — in both worlds.

use serde::{Deserialize, Serialize};

use crate::ids::NodeId;

/// A named timer of one node.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Timer {
    /// Periodic: PING every peer with the current header and gossip (`clusterCron`, §1.5).
    Tick,
    /// No PONG from this peer for node_timeout: mark it PFAIL (§2.1). Re-armed by every PONG.
    PeerTimeout(NodeId),
    /// The failure report of `reporter` about `target` is older than the validity window (§2.2).
    ReportExpiry {
        /// The suspected node.
        target: NodeId,
        /// The master that reported it.
        reporter: NodeId,
    },
    /// FAIL of this slot-owning master may be undone by its next PONG (§2.4).
    FailUndo(NodeId),
    /// A replica's election delay has passed: start (or retry) the election (§3.1).
    ElectionDelay,
    /// The election's auth_timeout has passed without a quorum of votes.
    ElectionTimeout,
    /// A manual failover did not complete in time: the replica gives up, the master resumes
    /// writes (Redis's `CLUSTER_MF_TIMEOUT`).
    ManualFailover,
}

impl std::fmt::Display for Timer {
    /// `Tick`, `PeerTimeout(n1)`, `ReportExpiry(n2 by n0)`, ...: how reports and the explorer
    /// name a timer.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Timer::Tick => write!(f, "Tick"),
            Timer::PeerTimeout(n) => write!(f, "PeerTimeout({n})"),
            Timer::ReportExpiry { target, reporter } => {
                write!(f, "ReportExpiry({target} by {reporter})")
            }
            Timer::FailUndo(n) => write!(f, "FailUndo({n})"),
            Timer::ElectionDelay => write!(f, "ElectionDelay"),
            Timer::ElectionTimeout => write!(f, "ElectionTimeout"),
            Timer::ManualFailover => write!(f, "ManualFailover"),
        }
    }
}
