//! Two replicas of one master competing for its slots (specs/properties.md, `replicas-compete`,
//! and the `compete` configuration).
//!
//! A layout where some master has two replicas gets the sometimes-property `replicas-compete`:
//! without a witness, a run has not shown that it checked properties 2 and 3 against two
//! candidates of one failed master. These tests show that the embedded `compete` reaches it,
//! that the witness is a real pair of running elections, and which layouts get the property.

use slotguard_check::properties::names;
use slotguard_check::{CheckConfig, ClusterModel, ClusterState};
use slotguard_protocol::ids::NodeId;
use slotguard_protocol::state::{Election, Role};
use stateright::{Checker, HasDiscoveries, Model};

fn embedded(name: &str) -> CheckConfig {
    CheckConfig::embedded(name).expect("embedded configuration")
}

fn has_property(model: &ClusterModel, name: &str) -> bool {
    model.properties().iter().any(|p| p.name == name)
}

/// The replicas of `master` running an election in `s`.
fn running_replicas_of(s: &ClusterState, master: NodeId) -> Vec<NodeId> {
    s.nodes
        .iter()
        .zip(&s.crashed)
        .filter(|(n, crashed)| {
            !**crashed
                && n.role == Role::Replica { of: master }
                && matches!(n.election, Election::Running { .. })
        })
        .map(|(n, _)| n.me)
        .collect()
}

#[test]
fn only_layouts_with_two_replicas_of_one_master_get_the_property() {
    for (name, expected) in [
        ("tiny", false),
        ("standard", false),
        ("large", true),
        ("compete", true),
    ] {
        let model = embedded(name).model().expect("valid configuration");
        assert_eq!(
            has_property(&model, names::REPLICAS_COMPETE),
            expected,
            "{name}"
        );
    }
}

#[test]
fn compete_reaches_two_running_elections_for_one_master() {
    let model = embedded("compete").model().expect("valid configuration");
    let prop = model
        .properties()
        .into_iter()
        .find(|p| p.name == names::REPLICAS_COMPETE)
        .expect("compete has a replica pair");
    let init = model.init_states().remove(0);
    assert!(
        !(prop.condition)(&model, &init),
        "nobody runs an election at creation"
    );
    // Breadth-first: the witness is 10 steps deep, and a depth-first search, which dives to
    // depth 60 first, took two minutes to meet it.
    let checker = model
        .checker()
        .threads(2)
        .finish_when(HasDiscoveries::AnyOf(
            [names::REPLICAS_COMPETE].into_iter().collect(),
        ))
        .spawn_bfs()
        .join();
    let path = checker
        .discovery(names::REPLICAS_COMPETE)
        .expect("compete reaches two competing replicas");
    let last = path.last_state();
    assert_eq!(
        running_replicas_of(last, NodeId(2)).len(),
        2,
        "both replicas of master 2 run an election in the witness"
    );
}
