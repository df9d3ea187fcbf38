//! The data plane's storage: which slot a key is in ([`keyslot`]) and the keys a node holds
//! ([`keyspace`]). Whether a node may serve a key's slot at all is not decided here but by the
//! protocol (the checked actor state); this module only keeps the data.

pub mod commands;
pub mod dataset;
pub mod glob;
pub mod keyslot;
pub mod keyspace;
pub mod replication;
