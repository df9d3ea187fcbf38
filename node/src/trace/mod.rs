//! Traces of what a node's actor consumed and produced, and their validation against the model
//! (specs/protocol.md §12).
//!
//! Why: the checker verifies the actor, and the node runs the same actor, but the runtime around
//! it (wire, replay filter, timers, state file) decides what the actor is given. A trace records,
//! at the [`Driver`](crate::driver::Driver) boundary, every input the actor consumed (its start
//! with the recovered state, each message with its sender and datagram, each timer) with what
//! the step produced and a digest of the state after it, plus what the shell reported doing
//! with the step's effects (a save durable, a datagram handed to the socket). [`validate`]
//! replays every node's trace through the model's actor, merges the nodes' steps into global
//! states in an order where every message is received after it was sent, and evaluates the
//! checker's always-properties on each.
//!
//! The format is NDJSON, one [`Record`] per line, appended to (a restarted node adds a new
//! [`Record::Start`]). The driver only fills a buffer ([`Recorder`]); the shell writes it.

mod record;
#[cfg(test)]
mod tests;
pub mod validate;

pub(crate) use self::record::{render, Recorder};
pub use self::record::{Input, Record, Start, Step, Tx};

/// The digest of a value, as a trace records it: a stable 64-bit hash (the checker's
/// fingerprint, `slotguard_check::hashed::stable_hash`), in hexadecimal. Stable within one
/// build: validate a trace with the binary that recorded it.
pub fn digest<T: std::hash::Hash + ?Sized>(value: &T) -> String {
    format!("{:016x}", slotguard_check::hashed::stable_hash(value))
}
