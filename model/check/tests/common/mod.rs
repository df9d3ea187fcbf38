//! Helpers shared by the model's integration tests.

use std::collections::HashSet;

use slotguard_check::{CheckConfig, ClusterModel, ClusterState};
use stateright::Model;

/// Explicit depth-first search of the states `model` reaches within its boundary, independent
/// of stateright's checkers. A state whose `key` was already seen is skipped (with the
/// fingerprint as key, that is plain search; with a representative's fingerprint, symmetry
/// reduction). `visit` sees every state kept. Returns how many were kept.
#[allow(dead_code)]
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

/// The value of every property of `model` in `s`, in catalogue order.
#[allow(dead_code)]
pub(crate) fn verdicts(model: &ClusterModel, s: &ClusterState) -> Vec<bool> {
    model
        .properties()
        .iter()
        .map(|p| (p.condition)(model, s))
        .collect()
}

/// A small deterministic generator (xorshift64*) for random walks: the walks are the same on
/// every run. (Each test binary compiles this module; those that do not walk leave it unused.)
#[allow(dead_code)]
pub(crate) struct Walk(pub(crate) u64);

#[allow(dead_code)]
impl Walk {
    /// A number below `n` (`n > 0`).
    pub(crate) fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 33) as usize % n
    }
}

/// Runs `check` on every item at once, one thread each (the comparisons are independent and
/// each is single-threaded). A panic in any fails the test.
#[allow(dead_code)]
pub(crate) fn each_in_parallel<T: Sync>(items: &[T], check: impl Fn(&T) + Sync) {
    std::thread::scope(|scope| {
        for item in items {
            let check = &check;
            scope.spawn(move || check(item));
        }
    });
}

/// The embedded `tiny`, and `tiny` with a second election of its one replica, whose master (2)
/// is the only node that may be suspected: configEpoch collisions, stale votes and a retry, in
/// a state space the comparison tests can search twice.
#[allow(dead_code)]
pub(crate) fn tiny_and_two_elections() -> [CheckConfig; 2] {
    let tiny = CheckConfig::embedded("tiny").expect("tiny is embedded");
    let two = CheckConfig {
        name: "tiny, 2 elections, master 2 suspected".into(),
        elections: 2,
        suspects: Some(vec![2]),
        ..tiny.clone()
    };
    [tiny, two]
}

/// `standard` (three masters with one replica each, whole shards interchangeable) with two
/// suspicions and one election: small enough to search twice, under symmetry reduction, in
/// seconds.
#[allow(dead_code)]
pub(crate) fn standard_two_suspicions_one_election() -> CheckConfig {
    let mut c = CheckConfig::embedded("standard").expect("standard is embedded");
    c.name = "standard, 2 suspicions, 1 election".into();
    c.suspicions = 2;
    c.elections = 1;
    c
}

/// What the exactness tests compare a reduction on, with whether to search under symmetry:
/// `tiny` and `tiny` with a second election plainly, small `standard` symmetrically.
#[allow(dead_code)]
pub(crate) fn comparison_configs() -> [(CheckConfig, bool); 3] {
    let [tiny, two] = tiny_and_two_elections();
    [
        (tiny, false),
        (two, false),
        (standard_two_suspicions_one_election(), true),
    ]
}

/// Follows `schedule` from `model`'s initial state: each step is the first enabled action whose
/// description (as `slotguard check` prints it) starts with the step's text. Returns the path
/// and the state reached; panics naming the enabled actions if a step matches none.
#[allow(dead_code)]
pub(crate) fn follow(
    model: &ClusterModel,
    schedule: &[&str],
) -> (Vec<slotguard_check::Action>, ClusterState) {
    use slotguard_check::trace::describe_action;
    let mut state = model.init_states().remove(0);
    let mut path = Vec::new();
    for step in schedule {
        let mut actions = Vec::new();
        model.actions(&state, &mut actions);
        let Some(action) = actions
            .iter()
            .find(|a| describe_action(a).starts_with(step))
            .cloned()
        else {
            let enabled: Vec<String> = actions.iter().map(describe_action).collect();
            panic!("no enabled action matches {step:?} among {enabled:#?}");
        };
        state = model
            .next_state(&state, action.clone())
            .unwrap_or_else(|| panic!("{step:?} changes nothing"));
        path.push(action);
    }
    (path, state)
}
