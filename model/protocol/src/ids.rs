//! Identifiers and epochs as newtypes, so a node index can never be passed where an epoch is meant.
//!
//! A [`NodeId`] is the index of a node in the [`Layout`](crate::Layout). The checker and the real
//! node both use `stateright::actor::Id::from(index)`, so ids agree between the two worlds and any
//! id-based tie-break behaves identically (see specs/background.md §S3).

use std::fmt;

use serde::{Deserialize, Serialize};
use stateright::actor::Id;

/// Index of a node in the cluster layout (0-based).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default,
)]
pub struct NodeId(pub u16);

impl NodeId {
    /// The index as `usize`, for indexing per-node tables.
    #[inline]
    pub fn index(self) -> usize {
        usize::from(self.0)
    }

    /// Converts an actor id back to a node id, if it names a node of a cluster of `nodes` nodes.
    ///
    /// Peer input passes through here, so out-of-range ids are an error, not a panic.
    pub fn from_actor_id(id: Id, nodes: usize) -> Option<NodeId> {
        let index = usize::from(id);
        if index < nodes {
            u16::try_from(index).ok().map(NodeId)
        } else {
            None
        }
    }
}

impl From<NodeId> for Id {
    fn from(node: NodeId) -> Id {
        Id::from(node.index())
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "n{}", self.0)
    }
}

/// A cluster epoch: `currentEpoch`, `configEpoch` and `lastVoteEpoch` are all epochs
/// (specs/background.md §R1.3, §R3). Epochs only grow on a node, across restarts (property 4).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default,
)]
pub struct Epoch(pub u64);

impl Epoch {
    /// The next epoch (`currentEpoch++` of an election or a collision bump).
    pub fn next(self) -> Epoch {
        Epoch(self.0.saturating_add(1))
    }
}

impl fmt::Display for Epoch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}
