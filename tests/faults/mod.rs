//! Real faults on real processes (issues 24 and 27): a harness of network namespaces, clusters
//! of slotguard or Redis in them, a client that records every operation, and the checks of
//! what it recorded. Shared by tests/faults_e2e.rs (the short form CI runs) and
//! `slotguard-bench faults` (the full matrix), which includes this folder as a module.

// Each user takes the part it needs.
#![allow(dead_code)]

pub(crate) mod client;
pub(crate) mod cluster;
pub(crate) mod history;
pub(crate) mod matrix;
pub(crate) mod net;
pub(crate) mod resp;
pub(crate) mod scenario;
pub(crate) mod workload;
