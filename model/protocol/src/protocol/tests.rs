//! Unit tests of the handlers: one node, driven by hand through the actor interface, with its
//! output inspected as the runtime would see it.

use std::borrow::Cow;
use std::sync::Arc;

use stateright::actor::{Actor, Command, Id, Out};

use crate::actor::ClusterNode;
use crate::ids::{Epoch, NodeId};
use crate::layout::{InitialEpochs, Layout, Timing};
use crate::message::{GossipEntry, Msg, SlotClaim, Suspicion, VoteRequest};
use crate::state::{Election, Health, NodeState, Persisted, Role};
use crate::timer::Timer;

/// 3 masters (slots 0, 1, 2; configEpochs 1, 2, 3), one replica each (n3 of n0, n4 of n1, n5 of
/// n2).
fn actor() -> ClusterNode {
    let layout = Layout::grid(3, 1, 3, InitialEpochs::Distinct).expect("valid");
    ClusterNode::new(Arc::new(layout), Timing::default())
}

fn start(a: &ClusterNode, me: u16) -> NodeState {
    let mut out = Out::new();
    a.on_start(Id::from(me as usize), &None, &mut out)
}

fn deliver(
    a: &ClusterNode,
    s: &mut NodeState,
    from: u16,
    msg: Msg,
) -> Vec<Command<Msg, Timer, (), Persisted>> {
    let mut cow = Cow::Borrowed(&*s);
    let mut out = Out::new();
    a.on_msg(
        Id::from(s.me.index()),
        &mut cow,
        Id::from(from as usize),
        msg,
        &mut out,
    );
    let next = cow.into_owned();
    *s = next;
    out.into_iter().collect()
}

fn fire(a: &ClusterNode, s: &mut NodeState, t: Timer) -> Vec<Command<Msg, Timer, (), Persisted>> {
    let mut cow = Cow::Borrowed(&*s);
    let mut out = Out::new();
    a.on_timeout(Id::from(s.me.index()), &mut cow, &t, &mut out);
    let next = cow.into_owned();
    *s = next;
    out.into_iter().collect()
}

fn sends(cmds: &[Command<Msg, Timer, (), Persisted>]) -> Vec<(usize, Msg)> {
    cmds.iter()
        .filter_map(|c| match c {
            Command::Send(to, m) => Some((usize::from(*to), m.clone())),
            _ => None,
        })
        .collect()
}

/// Master 0 with master 2 FAIL in its view (its own PFAIL plus master 1's report).
fn master0_with_n2_failed(a: &ClusterNode) -> NodeState {
    let mut s = start(a, 0);
    fire(a, &mut s, Timer::PeerTimeout(NodeId(2)));
    assert_eq!(s.peers[2].health, Health::PFail);
    deliver(a, &mut s, 1, n2_pfail_report(true));
    assert!(s.peers[2].health.is_fail());
    s
}

/// A gossip entry calling n2 PFAIL, from a slot-owning master or not.
fn n2_pfail_report(from_voting_master: bool) -> Msg {
    Msg::Gossip(GossipEntry {
        node: NodeId(2),
        suspicion: Suspicion::PFail,
        config_epoch: Epoch(3),
        from_voting_master,
    })
}

fn request(epoch: u64) -> Msg {
    Msg::AuthRequest(VoteRequest {
        epoch: Epoch(epoch),
        master: NodeId(2),
        master_config_epoch: Epoch(3),
        slots: [2u16].into_iter().collect(),
        forced: false,
    })
}

#[test]
fn pfail_alone_is_not_fail() {
    let a = actor();
    let mut s = start(&a, 0);
    fire(&a, &mut s, Timer::PeerTimeout(NodeId(2)));
    assert_eq!(s.peers[2].health, Health::PFail);
    // A replica's report does not count (Valkey #634).
    deliver(&a, &mut s, 5, n2_pfail_report(false));
    assert_eq!(s.peers[2].health, Health::PFail);
}

#[test]
fn quorum_of_reports_marks_fail_and_broadcasts_it() {
    let a = actor();
    let mut s = start(&a, 0);
    fire(&a, &mut s, Timer::PeerTimeout(NodeId(2)));
    let out = deliver(&a, &mut s, 1, n2_pfail_report(true));
    assert!(s.peers[2].health.is_fail());
    let fails: Vec<usize> = sends(&out)
        .into_iter()
        .filter(|(_, m)| *m == Msg::Fail { node: NodeId(2) })
        .map(|(to, _)| to)
        .collect();
    assert_eq!(
        fails,
        vec![1, 3, 4, 5],
        "FAIL goes to everyone but its subject"
    );
}

#[test]
fn a_master_votes_once_per_epoch_and_saves_before_acking() {
    let a = actor();
    let mut s = master0_with_n2_failed(&a);
    let out = deliver(&a, &mut s, 5, request(4));
    assert_eq!(s.last_vote_epoch, Epoch(4));
    let save = out
        .iter()
        .position(|c| matches!(c, Command::Save(p) if p.last_vote_epoch == Epoch(4)));
    let ack = out
        .iter()
        .position(|c| matches!(c, Command::Send(_, Msg::AuthAck { .. })));
    assert!(
        save.expect("vote persisted") < ack.expect("vote sent"),
        "persist before you promise"
    );
    // A second request in the same epoch, from anyone, gets nothing.
    let again = deliver(&a, &mut s, 5, request(4));
    assert!(!sends(&again)
        .iter()
        .any(|(_, m)| matches!(m, Msg::AuthAck { .. })));
    // A later epoch gets a vote.
    let later = deliver(&a, &mut s, 5, request(5));
    assert!(sends(&later).iter().any(|(to, m)| *to == 5
        && *m
            == Msg::AuthAck {
                epoch: Epoch(5),
                candidate: NodeId(5),
                forced: false,
            }));
}

#[test]
fn no_vote_while_the_master_is_not_fail() {
    let a = actor();
    let mut s = start(&a, 0);
    let out = deliver(&a, &mut s, 5, request(4));
    assert!(!sends(&out)
        .iter()
        .any(|(_, m)| matches!(m, Msg::AuthAck { .. })));
    assert_eq!(s.last_vote_epoch, Epoch(0));
}

/// A vote of `epoch` for node 5, the replica of master 2.
fn ack(epoch: u64) -> Msg {
    Msg::AuthAck {
        epoch: Epoch(epoch),
        candidate: NodeId(5),
        forced: false,
    }
}

#[test]
fn replica_election_bumps_persists_and_wins_with_distinct_votes() {
    let a = actor();
    let mut s = start(&a, 5);
    fire(&a, &mut s, Timer::PeerTimeout(NodeId(2)));
    deliver(&a, &mut s, 0, Msg::Fail { node: NodeId(2) });
    assert_eq!(s.election, Election::Scheduled);
    let out = fire(&a, &mut s, Timer::ElectionDelay);
    assert_eq!(s.current_epoch, Epoch(4));
    let save = out
        .iter()
        .position(|c| matches!(c, Command::Save(p) if p.current_epoch == Epoch(4)));
    let req = out
        .iter()
        .position(|c| matches!(c, Command::Send(_, Msg::AuthRequest(_))));
    assert!(save.expect("epoch persisted") < req.expect("request sent"));
    // The same voter twice (a duplicated datagram) is one vote.
    deliver(&a, &mut s, 0, ack(4));
    deliver(&a, &mut s, 0, ack(4));
    assert!(matches!(s.role, Role::Replica { .. }));
    // A vote of another epoch does not count.
    deliver(&a, &mut s, 1, ack(3));
    assert!(matches!(s.role, Role::Replica { .. }));
    deliver(&a, &mut s, 1, ack(4));
    assert_eq!(s.role, Role::Master);
    assert_eq!(s.config_epoch, Epoch(4));
    assert_eq!(s.slots.owner(2), Some(NodeId(5)));
}

#[test]
fn claims_rebind_only_at_a_strictly_higher_config_epoch() {
    let a = actor();
    let mut s = start(&a, 0);
    let claim = |epoch: u64| {
        Msg::Update(SlotClaim {
            node: NodeId(5),
            config_epoch: Epoch(epoch),
            slots: [2u16].into_iter().collect(),
        })
    };
    deliver(&a, &mut s, 1, claim(3));
    assert_eq!(
        s.slots.owner(2),
        Some(NodeId(2)),
        "equal epoch does not rebind"
    );
    deliver(&a, &mut s, 1, claim(4));
    assert_eq!(s.slots.owner(2), Some(NodeId(5)));
}

/// n5's header after winning n2's slot in epoch 4.
fn n5_promoted_header(a: &ClusterNode) -> crate::message::Header {
    let mut h = crate::protocol::heartbeat::header(&start(a, 5));
    h.master = None;
    h.config_epoch = Epoch(4);
    h.current_epoch = Epoch(4);
    h.slots = [2u16].into_iter().collect();
    h
}

#[test]
fn an_old_master_that_lost_its_slots_follows_the_winner() {
    let a = actor();
    let mut s = start(&a, 2);
    deliver(&a, &mut s, 5, Msg::Pong(n5_promoted_header(&a)));
    assert_eq!(s.role, Role::Replica { of: NodeId(5) });
    assert_eq!(s.slots.owner(2), Some(NodeId(5)));
}

#[test]
fn a_restart_recovers_epochs_and_vote_from_storage() {
    let a = actor();
    let mut s = master0_with_n2_failed(&a);
    deliver(&a, &mut s, 5, request(4));
    let persisted = s.persisted();
    let mut out = Out::new();
    let back = a.on_start(Id::from(0usize), &Some(persisted), &mut out);
    assert_eq!(back.last_vote_epoch, Epoch(4));
    assert_eq!(back.current_epoch, Epoch(4));
    assert_eq!(
        back.peers.iter().map(|p| p.heard).collect::<Vec<_>>(),
        s.peers.iter().map(|p| p.heard).collect::<Vec<_>>(),
        "heard is durable"
    );
    assert_eq!(back.peers[2].health, Health::Ok, "suspicions are volatile");
}

#[test]
fn out_of_range_peer_input_is_ignored() {
    let a = actor();
    let mut s = start(&a, 0);
    let before = s.clone();
    let out = deliver(&a, &mut s, 1, Msg::Fail { node: NodeId(99) });
    assert!(out.is_empty());
    let out = deliver(&a, &mut s, 77, ack(9));
    assert!(out.is_empty());
    assert_eq!(s, before);
}

#[test]
fn a_restarted_node_still_ignores_headers_older_than_it_persisted() {
    let a = actor();
    // n0 learns that n5 took slot 2 at configEpoch 4, then restarts.
    let mut s = start(&a, 0);
    let h = n5_promoted_header(&a);
    deliver(&a, &mut s, 5, Msg::Pong(h.clone()));
    assert_eq!(s.peers[5].role, Role::Master);
    let mut out = Out::new();
    let mut back = a.on_start(Id::from(0usize), &Some(s.persisted()), &mut out);
    // A datagram from before n5's promotion arrives late: n5 as a replica of n2 at epoch 3.
    let stale = crate::protocol::heartbeat::header(&start(&a, 5));
    deliver(&a, &mut back, 5, Msg::Pong(stale));
    assert_eq!(
        back.peers[5].role,
        Role::Master,
        "the stale role is not applied"
    );
    // The current header is applied as usual.
    deliver(&a, &mut back, 5, Msg::Pong(h));
    assert_eq!(back.peers[5].role, Role::Master);
}

/// A node marked FAIL while it is a replica in my view, and learnt later to own slots (a
/// promotion I hear of by an UPDATE), must still be cleared once it answers: FAIL-undo is armed
/// with every FAIL, not only for the slot owners of the moment (specs/protocol.md §5.5). The
/// stuck FAIL that real nodes showed after overlapping restarts.
#[test]
fn a_fail_of_a_node_later_seen_to_own_slots_still_ends() {
    let a = actor();
    let mut s = start(&a, 0);
    fire(&a, &mut s, Timer::PeerTimeout(NodeId(5)));
    let report = Msg::Gossip(GossipEntry {
        node: NodeId(5),
        suspicion: Suspicion::PFail,
        config_epoch: Epoch(3),
        from_voting_master: true,
    });
    let out = deliver(&a, &mut s, 1, report);
    assert!(s.peers[5].health.is_fail());
    let armed = out
        .iter()
        .any(|c| matches!(c, Command::SetTimer(Timer::FailUndo(n), _) if *n == NodeId(5)));
    assert!(armed, "FAIL-undo armed for a replica's FAIL too");
    let claim = SlotClaim {
        node: NodeId(5),
        config_epoch: Epoch(4),
        slots: [2u16].into_iter().collect(),
    };
    deliver(&a, &mut s, 1, Msg::Update(claim));
    assert_eq!(s.slots.owner(2), Some(NodeId(5)));
    fire(&a, &mut s, Timer::FailUndo(NodeId(5)));
    let header = crate::message::Header {
        current_epoch: Epoch(4),
        config_epoch: Epoch(4),
        master: None,
        slots: [2u16].into_iter().collect(),
        repl_offset: 0,
        flags: Default::default(),
    };
    deliver(&a, &mut s, 5, Msg::Pong(header));
    assert_eq!(s.peers[5].health, Health::Ok);
}

/// A vote names its candidate: another replica of the same epoch does not count it.
#[test]
fn a_vote_for_another_candidate_does_not_count() {
    let a = actor();
    let mut s = start(&a, 5);
    fire(&a, &mut s, Timer::PeerTimeout(NodeId(2)));
    deliver(&a, &mut s, 0, Msg::Fail { node: NodeId(2) });
    fire(&a, &mut s, Timer::ElectionDelay);
    let for_other = |epoch| Msg::AuthAck {
        epoch: Epoch(epoch),
        candidate: NodeId(3),
        forced: false,
    };
    deliver(&a, &mut s, 0, for_other(4));
    deliver(&a, &mut s, 1, for_other(4));
    assert!(matches!(s.role, Role::Replica { .. }));
    deliver(&a, &mut s, 0, ack(4));
    deliver(&a, &mut s, 1, ack(4));
    assert_eq!(s.role, Role::Master);
}

/// The replication offset the runtime notes is advertised in the header, and the replica rank
/// puts the sibling with the larger offset first: its election waits a second less.
#[test]
fn the_noted_offset_is_advertised_and_the_most_up_to_date_replica_goes_first() {
    let layout = Layout::grid(3, 2, 3, InitialEpochs::Distinct).expect("valid");
    let a = ClusterNode::new(Arc::new(layout), Timing::default());
    let delay_after_fail = |mine: u64, sibling: u64| {
        let mut s = start(&a, 4); // a replica of n0; n3 is its sibling
        s.note_replication_offset(mine);
        assert_eq!(crate::protocol::heartbeat::header(&s).repl_offset, mine);
        let mut sibling_header = crate::protocol::heartbeat::header(&start(&a, 3));
        sibling_header.repl_offset = sibling;
        deliver(&a, &mut s, 3, Msg::Ping(sibling_header));
        fire(&a, &mut s, Timer::PeerTimeout(NodeId(0)));
        let out = deliver(&a, &mut s, 1, Msg::Fail { node: NodeId(0) });
        out.iter()
            .find_map(|c| match c {
                Command::SetTimer(Timer::ElectionDelay, range) => Some(range.start),
                _ => None,
            })
            .expect("an election is scheduled")
    };
    let ahead = delay_after_fail(200, 100);
    let behind = delay_after_fail(100, 200);
    assert_eq!(behind - ahead, Timing::default().ping_interval * 2);
}

/// The `Tick` durations a step asks for.
fn ticks(cmds: &[Command<Msg, Timer, (), Persisted>]) -> Vec<std::time::Duration> {
    cmds.iter()
        .filter_map(|c| match c {
            Command::SetTimer(Timer::Tick, range) => Some(range.start),
            _ => None,
        })
        .collect()
}

/// A master paused for a manual failover (specs/protocol.md §6.1) announces the pause within
/// 100 ms and keeps sending its header every 100 ms, whatever node_timeout is (15 s here, a
/// ping interval of 3.75 s); once the pause ends it ticks at the ping interval again.
#[test]
fn a_paused_master_ticks_every_100_ms_until_the_pause_ends() {
    use crate::state::ManualFailover;
    let a = actor();
    let fast = std::time::Duration::from_millis(100);
    let mut master = start(&a, 0);
    let on_request = deliver(&a, &mut master, 3, Msg::FailoverStart);
    assert!(matches!(
        master.manual,
        ManualFailover::Paused {
            announced: false,
            ..
        }
    ));
    assert_eq!(ticks(&on_request), [fast]);
    let tick = fire(&a, &mut master, Timer::Tick);
    assert_eq!(ticks(&tick), [fast]);
    let announced = sends(&tick)
        .iter()
        .any(|(to, m)| *to == 3 && matches!(m, Msg::Ping(h) if h.flags.paused));
    assert!(announced, "the pause is in the tick's header");
    fire(&a, &mut master, Timer::ManualFailover);
    assert_eq!(master.manual, ManualFailover::Idle);
    let after = fire(&a, &mut master, Timer::Tick);
    assert_eq!(ticks(&after), [a.timing.ping_interval]);
}

#[test]
fn a_running_election_asks_again_on_every_tick_and_a_late_voter_grants_the_repeat() {
    let a = actor();
    let mut candidate = start(&a, 5);
    fire(&a, &mut candidate, Timer::PeerTimeout(NodeId(2)));
    deliver(&a, &mut candidate, 0, Msg::Fail { node: NodeId(2) });
    fire(&a, &mut candidate, Timer::ElectionDelay);
    let tick = fire(&a, &mut candidate, Timer::Tick);
    let asked: Vec<(usize, Msg)> = sends(&tick)
        .into_iter()
        .filter(|(_, m)| matches!(m, Msg::AuthRequest(r) if r.epoch == Epoch(4)))
        .collect();
    assert_eq!(
        asked.iter().map(|(to, _)| *to).collect::<Vec<_>>(),
        vec![0, 1, 2, 3, 4]
    );
    let repeat = asked[0].1.clone();
    // Master 0 did not have n2 FAIL when the first request came: refused.
    let mut voter = start(&a, 0);
    let early = deliver(&a, &mut voter, 5, repeat.clone());
    assert!(!sends(&early)
        .iter()
        .any(|(_, m)| matches!(m, Msg::AuthAck { .. })));
    // It marks n2 FAIL, and grants the repeat.
    fire(&a, &mut voter, Timer::PeerTimeout(NodeId(2)));
    deliver(&a, &mut voter, 1, n2_pfail_report(true));
    let late = deliver(&a, &mut voter, 5, repeat);
    assert!(sends(&late).contains(&(5, ack(4))));
    // Once it has won, its ticks ask for nothing.
    deliver(&a, &mut candidate, 0, ack(4));
    deliver(&a, &mut candidate, 1, ack(4));
    assert_eq!(candidate.role, Role::Master);
    let after = fire(&a, &mut candidate, Timer::Tick);
    assert!(!sends(&after)
        .iter()
        .any(|(_, m)| matches!(m, Msg::AuthRequest(_))));
}
