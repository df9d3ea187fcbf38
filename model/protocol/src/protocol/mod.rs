//! The protocol's handlers, one file per concern. Each is a set of methods on
//! [`Step`](crate::actor::Step), the context of one atomic actor step.

pub(crate) mod election;
pub mod failure;
pub mod heartbeat;
pub mod manual;

#[cfg(test)]
mod tests;
