//! Checking: the model that hosts the actors ([`model`]), the history it keeps ([`ghost`]), the
//! property catalogue ([`properties`]) and the configurations ([`config`]).

pub mod config;
pub mod counter;
pub mod crash_twins;
pub mod ghost;
pub mod hashed;
pub mod model;
pub mod network;
pub mod noop_cache;
pub mod properties;
pub mod render;
pub mod repeats;
pub mod run;
pub mod settle;
pub mod settle_memo;
pub mod symmetry;
pub mod trace;

pub use config::{CheckConfig, ConfigError, NetworkKind};
pub use model::{Action, ClusterModel, ClusterState, Envelope};
