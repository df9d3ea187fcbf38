//! The pictures of a counterexample (`slotguard check --html`) show the violation: with a bug
//! switched on, the checker's counterexample, drawn step by step by `picture::trace_view`, has
//! one picture per state, its steps named as the text report names them, and the property
//! holding at its first picture and violated at its last, where a card shows the FAIL.

use slotguard_check::picture::trace_view;
use slotguard_check::properties::names;
use slotguard_check::run::{self, RunOptions, Status};
use slotguard_check::CheckConfig;
use slotguard_protocol::{Bug, Bugs};

#[test]
fn a_counterexample_is_drawn_with_the_violation_at_its_last_step() {
    let config = CheckConfig::embedded("tiny").expect("tiny is embedded");
    let model = config
        .model_with(Bugs::only(Bug::FailWithoutQuorum))
        .expect("valid config");
    let options = RunOptions {
        threads: 1,
        audit: None,
        ..RunOptions::default()
    };
    let report = run::run(model.clone(), &options, |_| {});
    let violated = report
        .properties
        .iter()
        .find(|p| p.name == names::FAIL_NEEDS_QUORUM)
        .expect("the property is checked");
    assert_eq!(violated.status, Status::Violated);
    let trace = violated.trace.as_ref().expect("a replayed counterexample");
    let view = trace_view(
        &model,
        violated.name,
        "counterexample",
        &trace.explorer_path,
        trace.why.clone(),
        "slotguard explore ...".to_string(),
    )
    .expect("the reported path is followed");
    assert_eq!(view.pictures.len(), trace.steps.len() + 1);
    let names_drawn: Vec<&str> = view.steps.iter().map(|s| s.action.as_str()).collect();
    let names_printed: Vec<&str> = trace.steps.iter().map(|s| s.action.as_str()).collect();
    assert_eq!(names_drawn, names_printed);
    let holds_at = |i: usize| {
        view.pictures[i]
            .properties
            .iter()
            .find(|p| p.name == names::FAIL_NEEDS_QUORUM)
            .map(|p| p.holds)
            .expect("the property is evaluated on every picture")
    };
    assert!(holds_at(0), "the initial state has no FAIL at all");
    assert!(
        !holds_at(trace.steps.len()),
        "the last picture shows the violation"
    );
    let last = view.pictures.last().expect("pictures");
    assert!(
        last.nodes
            .iter()
            .flat_map(|n| &n.beliefs)
            .any(|b| b.health.starts_with("FAIL")),
        "some card shows the FAIL that had no quorum"
    );
}
