//! Checker configurations: what cluster, which faults, which bounds. The files in
//! `specs/configs/` are these, in TOML; `tiny` is embedded as the default.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::crash_twins::CrashTwins;
use crate::model::ClusterModel;
use crate::noop_cache::NoopCache;
use crate::properties::Witness;
use crate::reductions::Reductions;
use crate::repeats::Repeats;
use crate::settle_memo::SettleMemo;
use slotguard_protocol::actor::ClusterNode;
use slotguard_protocol::bugs::Bugs;
use slotguard_protocol::durability::Durability;
use slotguard_protocol::ids::Epoch;
use slotguard_protocol::layout::{InitialEpochs, Layout, LayoutError, Timing};
use slotguard_protocol::protocol::manual::FailoverMode;

/// How the simulated network treats datagrams. Both are unordered and duplicating, as UDP is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum NetworkKind {
    /// Any sent envelope may be delivered any number of times, in any order, or never.
    #[default]
    Duplicating,
    /// As `Duplicating`, and the checker also branches on dropping each envelope. Reaches the
    /// same node states with more network states (specs/protocol.md §8.2).
    LossyDuplicating,
}

/// Replica counts: the same for every master, or one count per master.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Replicas {
    /// Every master has this many replicas.
    Each(usize),
    /// Master `i` has `counts[i]` replicas.
    PerMaster(Vec<usize>),
}

impl Replicas {
    /// Replica count of each of `masters` masters.
    pub fn counts(&self, masters: usize) -> Vec<usize> {
        match self {
            Replicas::Each(n) => vec![*n; masters],
            Replicas::PerMaster(v) => (0..masters)
                .map(|i| v.get(i).copied().unwrap_or(0))
                .collect(),
        }
    }
}

/// One checker configuration.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckConfig {
    /// Name shown in reports.
    pub name: String,
    /// Masters at creation.
    pub masters: usize,
    /// Replicas of each master: one number for all, or one per master (`[1, 0, 0]`).
    pub replicas: Replicas,
    /// Hash slots (split among masters).
    pub slots: usize,
    /// Crashes a behaviour may contain (each may be followed by a restart).
    pub crashes: u8,
    /// PFAIL events a behaviour may contain: times some node's peer timeout fires, true or
    /// false suspicion alike. Two suspicions of one master by two masters make a FAIL.
    pub suspicions: u8,
    /// Network semantics.
    #[serde(default)]
    pub network: NetworkKind,
    /// Elections a behaviour may contain: the bound is initial currentEpoch + `elections`
    /// (configEpoch collisions also spend this budget).
    pub elections: u64,
    /// How masters' configEpochs are assigned at creation.
    #[serde(default)]
    pub epochs: InitialEpochs,
    /// Only these nodes may be suspected (their peers' timeouts about them may fire); absent:
    /// any node. For targeted checks such as "two replicas of one master compete".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspects: Option<Vec<u16>>,
    /// Sometimes-properties beyond the catalogue that a run of this configuration must reach,
    /// for configurations whose budgets go past one failover: `failback`, `second-failover`,
    /// `retry-election-won` (specs/properties.md, "Budgets").
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub witnesses: Vec<Witness>,
    /// Manual failovers (`CLUSTER FAILOVER`) an operator may ask of any replica in a
    /// behaviour, in any of `failover_modes` (specs/protocol.md §6.1).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub manual_failovers: u8,
    /// The modes those may use (absent: `default` and `force`; `takeover` only when named).
    #[serde(
        default = "safe_failover_modes",
        skip_serializing_if = "is_safe_failover_modes"
    )]
    pub failover_modes: Vec<FailoverMode>,
    /// Abstract writes clients may issue in a behaviour (specs/protocol.md §13); 0: the data
    /// plane is not modelled.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub writes: u8,
    /// When masters acknowledge writes: `async` (Redis's semantics) or `sync`.
    #[serde(default, skip_serializing_if = "is_async")]
    pub durability: Durability,
}

fn is_async(d: &Durability) -> bool {
    *d == Durability::Async
}

fn is_zero(n: &u8) -> bool {
    *n == 0
}

/// The manual failover modes that keep every property: `default` and `force`.
pub fn safe_failover_modes() -> Vec<FailoverMode> {
    vec![FailoverMode::Default, FailoverMode::Force]
}

fn is_safe_failover_modes(modes: &[FailoverMode]) -> bool {
    modes == safe_failover_modes()
}

/// A configuration that cannot be checked.
#[derive(Debug, Error)]
pub enum ConfigError {
    /// TOML syntax or unknown field.
    #[error("invalid configuration: {0}")]
    Parse(#[from] toml::de::Error),
    /// The cluster it describes is invalid.
    #[error("invalid cluster: {0}")]
    Layout(#[from] LayoutError),
    /// `suspects` names a node the cluster does not have.
    #[error("suspects: the cluster has no node {node} (its nodes are 0 to {last})")]
    UnknownSuspect {
        /// The id named.
        node: u16,
        /// The cluster's last node id.
        last: usize,
    },
}

/// The embedded configurations, by name.
pub const EMBEDDED: [(&str, &str); 10] = [
    ("tiny", include_str!("../../../specs/configs/tiny.toml")),
    (
        "standard",
        include_str!("../../../specs/configs/standard.toml"),
    ),
    ("large", include_str!("../../../specs/configs/large.toml")),
    (
        "compete",
        include_str!("../../../specs/configs/compete.toml"),
    ),
    (
        "tiny-sync",
        include_str!("../../../specs/configs/tiny-sync.toml"),
    ),
    (
        "failback",
        include_str!("../../../specs/configs/failback.toml"),
    ),
    (
        "tiny-deep",
        include_str!("../../../specs/configs/tiny-deep.toml"),
    ),
    (
        "standard-deep",
        include_str!("../../../specs/configs/standard-deep.toml"),
    ),
    (
        "large-deep",
        include_str!("../../../specs/configs/large-deep.toml"),
    ),
    (
        "compete-deep",
        include_str!("../../../specs/configs/compete-deep.toml"),
    ),
];

impl CheckConfig {
    /// Parses a TOML configuration.
    pub fn from_toml(text: &str) -> Result<CheckConfig, ConfigError> {
        let config: CheckConfig = toml::from_str(text)?;
        config.validate()?;
        Ok(config)
    }

    /// Checks that the configuration describes a valid cluster, and that its `suspects` are
    /// nodes of it.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let layout = self.layout()?;
        if let Some(&node) = self
            .suspects
            .iter()
            .flatten()
            .find(|&&n| usize::from(n) >= layout.len())
        {
            return Err(ConfigError::UnknownSuspect {
                node,
                last: layout.len() - 1,
            });
        }
        Ok(())
    }

    /// One of the embedded configurations ([`EMBEDDED`]).
    pub fn embedded(name: &str) -> Option<CheckConfig> {
        EMBEDDED
            .iter()
            .find(|(n, _)| *n == name)
            .and_then(|(_, text)| CheckConfig::from_toml(text).ok())
    }

    /// The cluster layout.
    pub fn layout(&self) -> Result<Layout, LayoutError> {
        Layout::with_replicas(&self.replicas.counts(self.masters), self.slots, self.epochs)
    }

    /// The model to check, with the protocol as specified.
    pub fn model(&self) -> Result<ClusterModel, LayoutError> {
        self.model_with(Bugs::NONE)
    }

    /// The model to check, with the given injected bugs.
    pub fn model_with(&self, bugs: Bugs) -> Result<ClusterModel, LayoutError> {
        let layout = Arc::new(self.layout()?);
        let max_epoch = Epoch(layout.initial_current_epoch().0 + self.elections);
        let mut actor =
            ClusterNode::new(layout, Timing::default()).with_durability(self.durability);
        actor.bugs = bugs;
        Ok(ClusterModel {
            actor,
            crash_budget: self.crashes,
            suspicion_budget: self.suspicions,
            lossy: self.network == NetworkKind::LossyDuplicating,
            suspectable: self.suspects.as_ref().map(|v| {
                v.iter()
                    .map(|&n| slotguard_protocol::ids::NodeId(n))
                    .collect()
            }),
            max_epoch,
            reductions: Reductions::all(),
            crash_twins: CrashTwins::new(),
            noop_cache: NoopCache::new(),
            rewrites: crate::network::RewriteMemo::new(),
            repeats: Repeats::new(),
            settle_memo: SettleMemo::new(),
            verify_early_fingerprints: false,
            stop: Arc::new(AtomicBool::new(false)),
            symmetry: None,
            witnesses: self.witnesses.clone(),
            manual_failover_budget: self.manual_failovers,
            failover_modes: self.failover_modes.clone(),
            write_budget: self.writes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_configurations_parse() {
        for (name, _) in EMBEDDED {
            let config = CheckConfig::embedded(name).expect("embedded config parses");
            assert_eq!(config.name, name);
            config.model().expect("embedded config is a valid cluster");
        }
    }

    #[test]
    fn unknown_fields_are_rejected() {
        let err = CheckConfig::from_toml(
            "name='x'\nmasters=3\nreplicas=1\nslots=3\ncrashes=0\nsuspicions=2\nelections=1\nmastrs=2\n",
        );
        assert!(matches!(err, Err(ConfigError::Parse(_))));
    }

    #[test]
    fn suspects_must_be_nodes_of_the_cluster() {
        let text =
            "name='x'\nmasters=3\nreplicas=1\nslots=3\ncrashes=0\nsuspicions=2\nelections=1\n";
        assert!(CheckConfig::from_toml(&format!("{text}suspects=[5]\n")).is_ok());
        let err = CheckConfig::from_toml(&format!("{text}suspects=[0, 6]\n"));
        assert!(
            matches!(err, Err(ConfigError::UnknownSuspect { node: 6, last: 5 })),
            "{err:?}"
        );
    }
}
