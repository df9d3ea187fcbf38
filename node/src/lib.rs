//! The slotguard node's core, as a library: what the `slotguard` binary's node runtime and
//! the tests and benches outside it share (specs/protocol.md §10).
//!
//! - [`driver`]: the sans-IO protocol engine — the model's actor, timers, replay filter,
//!   datagram batching, peer names and counters — fed inputs with the time as a parameter,
//!   answering with effects as data.
//! - [`wire`]: the authenticated cluster-bus datagram (seal and open).
//! - [`identity`]: node names and what a node knows of its peers' names and liveness.
//! - [`data`]: the data plane's storage: key slots, the keyspace, the key commands.
//! - [`reply`]: RESP replies, built once and encoded as RESP2 or RESP3.
//! - [`state_file`]: the bytes of the state file (the binary's storage writes them to disk).
//!
//! Sockets, files, clocks and the client port are the binary's (`node/src/runtime/`): a thin
//! tokio shell that carries the driver's effects out in order.

pub mod data;
pub mod driver;
mod events;
pub mod identity;
pub mod reply;
#[cfg(test)]
mod sim;
pub mod state_file;
mod timers;
pub mod trace;
pub mod wire;
