//! The data a node is parameterised by: who is in the cluster, who starts as what, which master
//! serves which slots, and the timing values the runtime gives to timers.
//!
//! Membership is static in slotguard (no `CLUSTER MEET`, no resharding; specs/protocol.md §1), so
//! the layout is the same value on every node. Because of that the number of slot-owning masters
//! that quorums are computed from (`cluster->size` in Redis, specs/background.md §R2.3) is a
//! property of the layout, not of a node's possibly stale view: this closes the "two candidates
//! with a smaller local size" hole noted in specs/background.md §R4.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::bitset::SlotSet;
use crate::ids::{Epoch, NodeId};

/// How a node starts when it has no persisted state.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum InitialRole {
    /// A master serving `slots`.
    Master {
        /// Slots the master serves at cluster creation.
        slots: SlotSet,
    },
    /// A replica of the given master.
    Replica {
        /// The master it replicates.
        of: NodeId,
    },
}

/// One node of the layout.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct NodeSpec {
    /// Role at cluster creation.
    pub role: InitialRole,
    /// configEpoch at cluster creation (masters: as `redis-cli --cluster create` assigns with
    /// `CLUSTER SET-CONFIG-EPOCH`; replicas: 0, as Redis loads them since #10798).
    pub config_epoch: Epoch,
    /// A replica that never fails over (`cluster-replica-no-failover`).
    #[serde(default)]
    pub no_failover: bool,
}

/// How initial configEpochs are assigned to masters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum InitialEpochs {
    /// Masters get 1..=m, as `redis-cli --cluster create` does. No collisions at start.
    #[default]
    Distinct,
    /// Every master starts at 0, as a fresh cluster without `SET-CONFIG-EPOCH`: collisions are
    /// resolved by the configEpoch collision rule (specs/background.md §R3.5).
    Zero,
}

/// Errors in a layout description.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum LayoutError {
    /// The layout has no masters.
    #[error("a cluster needs at least one master")]
    NoMasters,
    /// More masters than slots.
    #[error("{masters} masters cannot share {slots} slots (each master needs at least one)")]
    TooFewSlots {
        /// Masters asked for.
        masters: usize,
        /// Slots available.
        slots: usize,
    },
    /// Slot count outside 1..=16384.
    #[error("slot count must be between 1 and 16384, got {0}")]
    SlotCount(usize),
    /// Too many nodes for a 16-bit node id.
    #[error("at most 65535 nodes are supported, got {0}")]
    TooManyNodes(usize),
    /// A replica names a node that is not a master.
    #[error("node {replica} replicates {of}, which is not a master of the layout")]
    BadReplicaOf {
        /// The replica.
        replica: NodeId,
        /// What it names.
        of: NodeId,
    },
    /// Two masters claim one slot, or a slot is out of range.
    #[error("slot {0} is claimed twice or out of range")]
    BadSlot(u16),
}

/// The cluster as created: every node's initial role and epoch, and the slot count.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Layout {
    slot_count: u16,
    nodes: Vec<NodeSpec>,
    /// Number of masters owning at least one slot (the quorum base).
    shards: usize,
}

impl Layout {
    /// Validates and builds a layout from explicit node specs.
    pub fn new(slot_count: usize, nodes: Vec<NodeSpec>) -> Result<Layout, LayoutError> {
        if slot_count == 0 || slot_count > 16384 {
            return Err(LayoutError::SlotCount(slot_count));
        }
        if nodes.len() > usize::from(u16::MAX) {
            return Err(LayoutError::TooManyNodes(nodes.len()));
        }
        let mut seen = SlotSet::new();
        let mut shards = 0;
        for (i, spec) in nodes.iter().enumerate() {
            match &spec.role {
                InitialRole::Master { slots } => {
                    for slot in slots.iter() {
                        if usize::from(slot) >= slot_count || !seen.insert(slot) {
                            return Err(LayoutError::BadSlot(slot));
                        }
                    }
                    if !slots.is_empty() {
                        shards += 1;
                    }
                }
                InitialRole::Replica { of } => {
                    let is_master = nodes
                        .get(of.index())
                        .is_some_and(|n| matches!(n.role, InitialRole::Master { .. }));
                    if !is_master {
                        return Err(LayoutError::BadReplicaOf {
                            replica: NodeId(i as u16),
                            of: *of,
                        });
                    }
                }
            }
        }
        if shards == 0 {
            return Err(LayoutError::NoMasters);
        }
        Ok(Layout {
            slot_count: slot_count as u16,
            nodes,
            shards,
        })
    }

    /// `masters` masters with `replicas` replicas each, slots split into contiguous ranges as
    /// `redis-cli --cluster create` does. Masters are nodes `0..masters`; the replicas of master
    /// `i` are `masters + i*replicas ..`, so a master and its replicas form a block.
    pub fn grid(
        masters: usize,
        replicas: usize,
        slot_count: usize,
        epochs: InitialEpochs,
    ) -> Result<Layout, LayoutError> {
        Layout::with_replicas(&vec![replicas; masters], slot_count, epochs)
    }

    /// One master per entry of `replicas`, with that many replicas; otherwise as
    /// [`Layout::grid`]. `[1, 0, 0]` is three masters of which only the first has a replica.
    pub fn with_replicas(
        replicas: &[usize],
        slot_count: usize,
        epochs: InitialEpochs,
    ) -> Result<Layout, LayoutError> {
        let masters = replicas.len();
        if masters == 0 {
            return Err(LayoutError::NoMasters);
        }
        if masters > slot_count {
            return Err(LayoutError::TooFewSlots {
                masters,
                slots: slot_count,
            });
        }
        let mut nodes = Vec::with_capacity(masters + replicas.iter().sum::<usize>());
        let per = slot_count / masters;
        let extra = slot_count % masters;
        let mut next = 0usize;
        for i in 0..masters {
            let n = per + usize::from(i < extra);
            let slots: SlotSet = (next..next + n).map(|s| s as u16).collect();
            next += n;
            let config_epoch = match epochs {
                InitialEpochs::Distinct => Epoch(i as u64 + 1),
                InitialEpochs::Zero => Epoch(0),
            };
            nodes.push(NodeSpec {
                role: InitialRole::Master { slots },
                config_epoch,
                no_failover: false,
            });
        }
        for (i, &count) in replicas.iter().enumerate() {
            for _ in 0..count {
                nodes.push(NodeSpec {
                    role: InitialRole::Replica {
                        of: NodeId(i as u16),
                    },
                    config_epoch: Epoch(0),
                    no_failover: false,
                });
            }
        }
        Layout::new(slot_count, nodes)
    }

    /// Number of hash slots.
    #[inline]
    pub fn slot_count(&self) -> usize {
        usize::from(self.slot_count)
    }

    /// Number of nodes.
    #[inline]
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether the layout has no nodes (never true for a validated layout).
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// All node ids.
    pub fn ids(&self) -> impl Iterator<Item = NodeId> + '_ {
        (0..self.nodes.len()).map(|i| NodeId(i as u16))
    }

    /// The spec of one node.
    pub fn spec(&self, id: NodeId) -> Option<&NodeSpec> {
        self.nodes.get(id.index())
    }

    /// All node specs, by id.
    pub fn specs(&self) -> &[NodeSpec] {
        &self.nodes
    }

    /// The master `node` was created as or with: its shard, for life. Membership is static and
    /// a failover only moves roles inside a shard (a replica of the winner, or the old master
    /// following it), so the nodes of a shard never change (specs/protocol.md §13).
    pub fn shard_of(&self, node: NodeId) -> NodeId {
        match self.spec(node).map(|s| &s.role) {
            Some(InitialRole::Replica { of }) => *of,
            _ => node,
        }
    }

    /// Every node of `node`'s shard, itself included.
    pub fn shard_members(&self, node: NodeId) -> impl Iterator<Item = NodeId> + '_ {
        let shard = self.shard_of(node);
        self.ids().filter(move |&n| self.shard_of(n) == shard)
    }

    /// Number of masters owning slots at creation: the base of every quorum
    /// (`needed_quorum = size/2 + 1`, specs/background.md §R2.3, §R3.1).
    pub fn shards(&self) -> usize {
        self.shards
    }

    /// Votes or failure reports needed for a majority of slot-owning masters.
    pub fn quorum(&self) -> usize {
        self.shards / 2 + 1
    }

    /// The largest initial epoch: every node's initial currentEpoch.
    pub fn initial_current_epoch(&self) -> Epoch {
        self.nodes
            .iter()
            .map(|n| n.config_epoch)
            .max()
            .unwrap_or_default()
    }
}

/// Timer durations. The model ignores them (every armed timer may fire at any time); the node
/// runtime uses them. Defaults follow Redis (specs/background.md §R7) at a 15 s node timeout; local
/// clusters use shorter ones.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Timing {
    /// No PONG for this long marks a peer PFAIL (`cluster-node-timeout`).
    pub node_timeout: Duration,
    /// How often a node pings all peers.
    pub ping_interval: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Timing::from_node_timeout(Duration::from_millis(15_000))
    }
}

impl Timing {
    /// Timing derived from a node timeout, as Redis derives its constants.
    pub fn from_node_timeout(node_timeout: Duration) -> Timing {
        Timing {
            node_timeout,
            ping_interval: (node_timeout / 4).max(Duration::from_millis(10)),
        }
    }

    /// Failure reports older than this are discarded (`CLUSTER_FAIL_REPORT_VALIDITY_MULT` = 2).
    pub fn report_validity(&self) -> Duration {
        self.node_timeout * 2
    }

    /// A FAIL slot-owning master may be cleared after this long (`CLUSTER_FAIL_UNDO_TIME_MULT`).
    pub fn fail_undo(&self) -> Duration {
        self.node_timeout * 2
    }

    /// Delay before a replica starts an election: `d + random(0..d) + rank × 2 × ping_interval`,
    /// with `d = node_timeout / 20`, at most Redis's 500 ms (Redis: 500 ms + random(0..500 ms) +
    /// rank × 1 s, specs/background.md §R3.1). Safety does not depend on it (the checker fires
    /// the timer at any time). Why `d` can be short once candidates repeat their request on every
    /// tick, and why ranks must be two ping intervals apart (siblings learn of the FAIL up to that
    /// far apart), is specs/protocol.md §6.2. The random part is data: the runtime draws from the
    /// range.
    pub fn election_delay(&self, rank: u32) -> std::ops::Range<Duration> {
        let d = (self.node_timeout / 20).min(Duration::from_millis(500));
        let base = d + self.ping_interval * 2 * rank;
        base..base + d
    }

    /// How long a candidate waits for votes (`auth_timeout = max(2 × node_timeout, 2 s)`).
    pub fn auth_timeout(&self) -> Duration {
        (self.node_timeout * 2).max(Duration::from_millis(2000))
    }

    /// Pause after an expired election before the next attempt (`auth_retry_time` =
    /// 2 × auth_timeout, less the auth_timeout already waited).
    pub fn auth_retry(&self) -> Duration {
        self.auth_timeout()
    }

    /// How long a manual failover may take before the replica gives up and the master
    /// resumes writes (Redis's `CLUSTER_MF_TIMEOUT`, 5 s).
    pub fn manual_failover_timeout(&self) -> Duration {
        Duration::from_millis(5000)
    }

    /// How often a master paused for a manual failover sends its header (Redis pings the
    /// replica on every 100 ms cron run during one).
    pub fn manual_failover_ping(&self) -> Duration {
        self.ping_interval.min(Duration::from_millis(100))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_splits_slots_like_redis_cli() {
        let l = Layout::grid(3, 1, 16384, InitialEpochs::Distinct).expect("valid");
        assert_eq!(l.len(), 6);
        let ranges: Vec<_> = l
            .specs()
            .iter()
            .filter_map(|s| match &s.role {
                InitialRole::Master { slots } => Some(slots.ranges()),
                InitialRole::Replica { .. } => None,
            })
            .collect();
        assert_eq!(
            ranges,
            vec![vec![(0, 5461)], vec![(5462, 10922)], vec![(10923, 16383)]]
        );
        assert_eq!(l.quorum(), 2);
        assert_eq!(l.initial_current_epoch(), Epoch(3));
        assert_eq!(
            l.spec(NodeId(4)).map(|s| &s.role),
            Some(&InitialRole::Replica { of: NodeId(1) })
        );
    }

    #[test]
    fn the_election_delay_is_short_and_ranks_are_two_ping_intervals_apart() {
        let ms = Duration::from_millis;
        let at = |node_timeout: u64, rank: u32| {
            Timing::from_node_timeout(ms(node_timeout)).election_delay(rank)
        };
        assert_eq!(at(1000, 0), ms(50)..ms(100));
        assert_eq!(at(1000, 1), ms(550)..ms(600));
        assert_eq!(at(5000, 0), ms(250)..ms(500));
        assert_eq!(at(15_000, 0), ms(500)..ms(1000));
        assert_eq!(at(15_000, 2), ms(15_500)..ms(16_000));
    }

    #[test]
    fn rejects_bad_layouts() {
        assert_eq!(
            Layout::grid(0, 1, 3, InitialEpochs::Distinct),
            Err(LayoutError::NoMasters)
        );
        assert_eq!(
            Layout::grid(4, 0, 3, InitialEpochs::Distinct),
            Err(LayoutError::TooFewSlots {
                masters: 4,
                slots: 3
            })
        );
        let replica_of_replica = vec![
            NodeSpec {
                role: InitialRole::Master {
                    slots: [0].into_iter().collect(),
                },
                config_epoch: Epoch(1),
                no_failover: false,
            },
            NodeSpec {
                role: InitialRole::Replica { of: NodeId(0) },
                config_epoch: Epoch(1),
                no_failover: false,
            },
            NodeSpec {
                role: InitialRole::Replica { of: NodeId(1) },
                config_epoch: Epoch(1),
                no_failover: false,
            },
        ];
        assert!(matches!(
            Layout::new(1, replica_of_replica),
            Err(LayoutError::BadReplicaOf { .. })
        ));
    }
}
