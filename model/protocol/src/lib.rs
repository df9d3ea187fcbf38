//! slotguard's cluster protocol: gossip, failure detection and replica failover in the style of
//! Redis Cluster, written once as a [`stateright`] actor and run unchanged by the model checker
//! and by the deployable node.
//!
//! This crate is sans-IO: no sockets, no clocks, no OS randomness, no tokio. Time arrives as
//! timer events ([`Timer`]), and every protocol decision is made here, where the checker sees it.
//! The specification is `specs/protocol.md`; the safety properties and what they were checked
//! on are in `specs/properties.md`.
//!
//! - [`ClusterNode`] is the actor; [`NodeState`] its state; [`Persisted`] its durable part.
//! - [`Msg`] is the cluster-bus message set, [`Timer`] the timers.
//!
//! The checker (the model that hosts the actors, the properties, the configurations) is the
//! crate slotguard-check, which depends on this one and not the other way round.

pub mod actor;
pub mod bitset;
pub mod bugs;
pub mod cluster_state;
pub mod durability;
pub mod ids;
pub mod layout;
pub mod message;
pub mod protocol;
pub mod routing;
pub mod state;
pub mod timer;
pub mod validate;

pub use actor::ClusterNode;
pub use bitset::{NodeSet, SlotSet};
pub use bugs::{Bug, Bugs};
pub use cluster_state::{cluster_status, ClusterStatus, FailReason};
pub use durability::{Data, Durability, WriteId};
pub use ids::{Epoch, NodeId};
pub use layout::{InitialEpochs, InitialRole, Layout, LayoutError, NodeSpec, Timing};
pub use message::{GossipEntry, Header, Msg, SlotClaim, Suspicion, VoteRequest};
pub use protocol::manual::FailoverMode;
pub use routing::{accepts_write, route, route_in, Access, Down, Route};
pub use state::{
    Election, Health, ManualFailover, NodeState, PeerView, Persisted, PersistedPeer, Role, SlotMap,
};
pub use timer::Timer;
