//! proptest schedules (specs/properties.md, "Budgets"): clusters far past any exhaustive
//! search, 9 masters × 2 replicas with two slots each, many crashes, suspicions and elections.
//! A schedule is a list of choices; each picks the next step among the enabled ones (a timer or
//! any action), and every always-property is checked after every step. A failing schedule is
//! shrunk by proptest to a short one, replayed through the checker's own replay, and printed
//! with the `slotguard explore` command that opens it.

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestError, TestRunner};
use slotguard_check::properties::names;
use slotguard_check::trace::replay;
use slotguard_check::{Action, CheckConfig, ClusterModel, ClusterState};
use slotguard_protocol::{Bug, Bugs, Msg, Timer};
use stateright::{Expectation, Model};

/// 9 masters × 2 replicas, 18 slots, and budgets no search exhausts.
fn big() -> CheckConfig {
    let mut config = CheckConfig::embedded("large").expect("large is embedded");
    config.name = "9x2".into();
    config.masters = 9;
    config.slots = 18;
    config.crashes = 6;
    config.suspicions = 40;
    config.elections = 8;
    config
}

/// The flags that give `slotguard explore large` the cluster of [`big`].
const BIG_FLAGS: &str = "large --masters 9 --slots 18 --crashes 6 --suspicions 40 --elections 8";

/// One step of a schedule: the `pick`-th (counting round) of the enabled steps of one kind that
/// changes the state, or of any kind if none of that kind does.
#[derive(Clone, Copy, Debug)]
struct Choice {
    kind: Kind,
    pick: u16,
}

/// Which steps a choice picks among. With 27 nodes, PINGs and PONGs make up most of a
/// thousand messages in flight: picking among all of them, the failure reports and votes that
/// make a failover arrive too rarely for one to happen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// A timer firing.
    Timer,
    /// A delivery of anything but a PING or PONG.
    Control,
    /// Any step.
    Any,
}

/// A schedule: the nodes whose peers' timeouts may fire (suspicions spread over 26 peers
/// rarely add up to a FAIL; the random walks of check/walks.rs focus the same way), and the
/// choices.
#[derive(Clone, Debug)]
struct Schedule {
    suspects: Vec<u16>,
    choices: Vec<Choice>,
}

fn choice() -> impl Strategy<Value = Choice> {
    let kind = prop_oneof![
        2 => Just(Kind::Timer),
        2 => Just(Kind::Control),
        1 => Just(Kind::Any),
    ];
    (kind, any::<u16>()).prop_map(|(kind, pick)| Choice { kind, pick })
}

fn schedule(masters: u16, steps: usize) -> impl Strategy<Value = Schedule> {
    (
        prop::collection::vec(0..masters, 1..3),
        prop::collection::vec(choice(), steps / 2..steps),
    )
        .prop_map(|(suspects, choices)| Schedule { suspects, choices })
}

/// The step `c` chooses in `s`, and the state it leads to; `None` if nothing is enabled.
fn step(
    model: &ClusterModel,
    s: &ClusterState,
    suspects: &[u16],
    c: Choice,
) -> Option<(Action, ClusterState)> {
    let mut actions = Vec::new();
    model.actions(s, &mut actions);
    actions.sort();
    actions.retain(|a| match a {
        Action::Timeout {
            timer: Timer::PeerTimeout(p),
            ..
        } => suspects.contains(&p.0),
        _ => true,
    });
    let of_kind: Vec<Action> = actions
        .iter()
        .filter(|a| match (c.kind, a) {
            (Kind::Timer, Action::Timeout { .. }) => true,
            (Kind::Control, Action::Deliver(env)) => {
                !matches!(env.msg, Msg::Ping(_) | Msg::Pong(_))
            }
            _ => false,
        })
        .cloned()
        .collect();
    let first = |pool: &[Action]| {
        let n = pool.len();
        (0..n).find_map(|k| {
            let a = pool[(usize::from(c.pick) + k) % n].clone();
            let next = model.next_state(s, a.clone())?;
            model.within_boundary(&next).then_some((a, next))
        })
    };
    first(&of_kind).or_else(|| first(&actions))
}

/// Runs `schedule` on `model`, checking every always-property after every step; on a
/// violation, the actions up to it and the property's name.
fn violation(model: &ClusterModel, schedule: &Schedule) -> Option<(Vec<Action>, &'static str)> {
    let always: Vec<_> = model
        .properties()
        .into_iter()
        .filter(|p| p.expectation == Expectation::Always)
        .collect();
    let mut s = model.init_states().remove(0);
    let mut taken = Vec::new();
    let last = schedule.choices.len();
    for (i, &c) in schedule.choices.iter().enumerate() {
        let Some((a, next)) = step(model, &s, &schedule.suspects, c) else {
            break;
        };
        taken.push(a);
        s = next;
        // Convergence (property 8) runs a whole fault-free continuation of 27 nodes: every
        // CONVERGENCE_EVERY steps and at the end, the rest after every step.
        let settle_now = (i + 1) % CONVERGENCE_EVERY == 0 || i + 1 == last;
        let broken = always
            .iter()
            .filter(|p| settle_now || p.name != names::CONVERGES)
            .find(|p| !(p.condition)(model, &s));
        if let Some(p) = broken {
            return Some((taken, p.name));
        }
    }
    None
}

/// How often schedules check property 8 (and at their end).
const CONVERGENCE_EVERY: usize = 100;

/// Runs `cases` random schedules of up to `steps` steps on `model`; on a failure, the shrunk
/// schedule's report: the property, the replayed steps and the command that opens the path.
fn run_schedules(model: &ClusterModel, cases: u32, steps: usize) -> Result<(), String> {
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        rng_algorithm: proptest::test_runner::RngAlgorithm::ChaCha,
        ..Config::default()
    });
    let masters = model.actor.layout.shards() as u16;
    let result = runner.run(&schedule(masters, steps), |schedule| {
        match violation(model, &schedule) {
            None => Ok(()),
            Some((_, name)) => Err(TestCaseError::fail(name)),
        }
    });
    match result {
        Ok(()) => Ok(()),
        Err(TestError::Fail(_, schedule)) => Err(report(model, &schedule)),
        Err(e) => Err(e.to_string()),
    }
}

/// The shrunk schedule's violation, replayed by the checker's replay (check/trace.rs).
fn report(model: &ClusterModel, schedule: &Schedule) -> String {
    let Some((actions, name)) = violation(model, schedule) else {
        return "a failing schedule that does not fail again".into();
    };
    match replay(model, name, &actions) {
        Ok(trace) => format!(
            "{name} violated after {} steps (shrunk); open it: slotguard explore {BIG_FLAGS} --path {}\n{}",
            trace.steps.len(),
            trace.explorer_path,
            trace
                .steps
                .iter()
                .map(|s| format!("  {:>3}. {}", s.index, s.action))
                .collect::<Vec<_>>()
                .join("\n")
        ),
        Err(e) => format!("{name} violated, but the path does not replay: {e}"),
    }
}

/// The protocol as specified: no always-property fails on any schedule.
#[test]
fn schedules_of_nine_shards_keep_every_always_property() {
    let model = big().model().expect("valid");
    if let Err(report) = run_schedules(&model, 24, 800) {
        panic!("{report}");
    }
}

/// The schedules bite: with a master that votes twice per epoch they find a violation, shrink
/// it, and the report replays and names the explorer path.
#[test]
fn schedules_find_a_double_vote_and_shrink_it() {
    let model = big()
        .model_with(Bugs::only(Bug::VoteTwicePerEpoch))
        .expect("valid");
    let report = run_schedules(&model, 256, 800).expect_err("the schedules find the double vote");
    assert!(report.contains("one-vote-per-epoch"), "{report}");
    assert!(report.contains("--path 0/"), "{report}");
}
