//! Helpers shared by the model's integration tests.

use std::collections::HashSet;

use slotguard_model::check::{ClusterModel, ClusterState};
use stateright::Model;

/// Explicit depth-first search of the states `model` reaches within its boundary, independent
/// of stateright's checkers. A state whose `key` was already seen is skipped (with the
/// fingerprint as key, that is plain search; with a representative's fingerprint, symmetry
/// reduction). `visit` sees every state kept. Returns how many were kept.
pub(crate) fn search(
    model: &ClusterModel,
    key: impl Fn(&ClusterState) -> u64,
    mut visit: impl FnMut(&ClusterState),
) -> usize {
    let mut seen = HashSet::new();
    let mut stack: Vec<ClusterState> = model.init_states();
    let mut actions = Vec::new();
    while let Some(s) = stack.pop() {
        if !model.within_boundary(&s) || !seen.insert(key(&s)) {
            continue;
        }
        visit(&s);
        actions.clear();
        model.actions(&s, &mut actions);
        for a in actions.drain(..) {
            if let Some(next) = model.next_state(&s, a) {
                stack.push(next);
            }
        }
    }
    seen.len()
}
