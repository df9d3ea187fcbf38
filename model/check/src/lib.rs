//! The checking behind `slotguard check` (specs/protocol.md §8): the model that hosts
//! slotguard-protocol's actors ([`model`]), what a message in flight can still do to its
//! receiver ([`residual`], §8.4), the history it keeps ([`ghost`]), the property catalogue
//! ([`properties`]) and the configurations ([`config`]).
//!
//! It is a crate of its own so that the protocol, which the node runs, neither contains nor
//! depends on the checker's machinery.

/// `Default` (an empty memo, from `new()`), `Clone` (a fresh, empty memo: a cloned model may run
/// a different protocol variant, a mutant, which must never read the original's results) and
/// `Debug` (the type's name) for the checker's memos.
macro_rules! memo_impls {
    ($memo:ident) => {
        impl Default for $memo {
            fn default() -> Self {
                $memo::new()
            }
        }

        impl Clone for $memo {
            fn clone(&self) -> Self {
                $memo::new()
            }
        }

        impl std::fmt::Debug for $memo {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(stringify!($memo))
            }
        }
    };
}

pub mod audit;
mod commands;
pub mod config;
pub mod counter;
pub mod crash_twins;
mod data;
pub mod ghost;
pub mod hashed;
pub mod model;
pub mod network;
pub mod noop_cache;
pub mod observe;
pub mod picture;
pub mod properties;
pub mod reductions;
pub mod render;
pub mod repeats;
pub mod residual;
pub mod run;
pub mod settle;
pub mod settle_memo;
pub mod symmetry;
pub mod trace;
pub mod walks;

pub use config::{CheckConfig, ConfigError, NetworkKind};
pub use model::{Action, ClusterModel, ClusterState, Envelope};
pub use reductions::{Reduction, Reductions};
