//! PING/PONG: building a node's header and gossip, and applying a peer's
//! (specs/protocol.md §3; specs/background.md §R1.7 for the processing order).
//!
//! Slot ownership spreads only through claims: a master's header claims its slots at its
//! configEpoch, and every receiver rebinds a slot to a claim with a *strictly* higher configEpoch
//! than the current owner's (§3.4, "last failover wins"). A receiver that knows a higher claim
//! than the one it hears answers with an UPDATE. A replica's header speaks for its master
//! (its master's epoch and slots): it is used to detect stale claims, never to rebind slots, and
//! the advertised epoch is never stored as the replica's own (Valkey #754; see
//! [`Bug::ReplicaEpochAsOwn`] for what goes wrong otherwise).

use crate::actor::{exactly, Step};
use crate::bitset::SlotSet;
use crate::bugs::Bug;
use crate::ids::{Epoch, NodeId};
use crate::message::{GossipEntry, Header, HeaderFlags, Msg, SlotClaim, Suspicion};
use crate::state::{Election, Health, ManualFailover, NodeState, Role};
use crate::timer::Timer;

/// The header `state` advertises.
pub fn header(state: &NodeState) -> Header {
    Header {
        slots: state.slots.slots_of(state.shard_master()),
        ..header_fields(state)
    }
}

/// The header `state` advertises, with its slots left empty.
fn header_fields(state: &NodeState) -> Header {
    Header {
        current_epoch: state.current_epoch,
        config_epoch: state.advertised_config_epoch(),
        master: state.role.master(),
        slots: SlotSet::new(),
        repl_offset: state.peers[state.me.index()].repl_offset,
        flags: HeaderFlags {
            no_failover: state.no_failover,
            paused: matches!(
                state.manual,
                ManualFailover::Paused {
                    announced: true,
                    ..
                }
            ),
            data_lost: state.role == Role::Master && !state.data.complete,
        },
    }
}

/// What `state` says about `node` in gossip: a FAIL message if it has the node FAIL, a gossip
/// entry otherwise.
pub fn gossip_about(state: &NodeState, node: NodeId) -> Msg {
    let p = &state.peers[node.index()];
    let suspicion = match p.health {
        Health::Ok => Suspicion::None,
        Health::PFail => Suspicion::PFail,
        Health::Fail { .. } => return Msg::Fail { node },
    };
    Msg::Gossip(GossipEntry {
        node,
        suspicion,
        config_epoch: p.config_epoch,
        from_voting_master: state.is_voting_master(state.me),
    })
}

/// What a step changed in what `before` advertised, as messages for every peer: the new header
/// if it changed, and each changed gossip entry (to everyone but its subject, whom gossip never
/// describes to itself, Redis #13046). Together with [`Step::on_tick`] this keeps every peer's
/// copy of a node's header and gossip current without waiting for the next tick.
pub fn announcements(before: &NodeState, after: &NodeState) -> Vec<(Option<NodeId>, Msg)> {
    let mut out = Vec::new();
    if header_changed(before, after) {
        out.extend(header_announcement(header(after)));
    }
    for (i, (b, a)) in before.peers.iter().zip(&after.peers).enumerate() {
        let node = NodeId(i as u16);
        if node == after.me {
            continue;
        }
        // A healthy node's entry is news only when it just became healthy (a withdrawal);
        // a suspect's whenever anything in it changed.
        let now = gossip_about(after, node);
        let news = if a.health == Health::Ok {
            b.health != Health::Ok
        } else {
            now != gossip_about(before, node)
        };
        if news {
            out.push((Some(node), now));
        }
    }
    out
}

/// Whether `header(after)` differs from `header(before)`, without building the slot sets
/// unless the slot maps differ (a real node's have 16,384 slots, and most steps change none).
fn header_changed(before: &NodeState, after: &NodeState) -> bool {
    let may_differ = before.slots != after.slots || before.shard_master() != after.shard_master();
    header_fields(before) != header_fields(after)
        || (may_differ
            && before.slots.slots_of(before.shard_master())
                != after.slots.slots_of(after.shard_master()))
}

/// How a node announces a new header: as an unsolicited PONG (Redis broadcasts one after a
/// promotion; it also lets every peer clear a suspicion of the sender) and as a PING (which asks
/// every peer for its own PONG). The PONG a peer sends back to any later PING carries the same
/// header as the one it announced, so replies repeat what is already in flight.
pub fn header_announcement(h: Header) -> [(Option<NodeId>, Msg); 2] {
    [(None, Msg::Ping(h.clone())), (None, Msg::Pong(h))]
}

impl Step<'_, '_> {
    /// Periodic tick: PING every peer with my header, gossip about every node I suspect and
    /// FAIL for every node I have FAIL, repeat a running election's request for votes, then
    /// re-arm. (Everything it sends was already sent when it last changed; the tick
    /// repeats it because datagrams get lost.)
    pub(crate) fn on_tick(&mut self) {
        if self.node.bug(Bug::TickSendsNothing) {
            let interval = self.node.timing.ping_interval;
            self.set_timer(Timer::Tick, exactly(interval));
            return;
        }
        self.announce_pause();
        let st = self.st();
        let ping = Msg::Ping(header(st));
        let suspects: Vec<(NodeId, Msg)> = self
            .layout()
            .ids()
            .filter(|&n| n != st.me && st.peers[n.index()].health != Health::Ok)
            .map(|n| (n, gossip_about(st, n)))
            .collect();
        for peer in self.peers() {
            self.send(peer, ping.clone());
            for (about, msg) in &suspects {
                if *about != peer {
                    self.send(peer, msg.clone());
                }
            }
        }
        self.repeat_vote_request();
        // While paused for a manual failover, tick (and so send the header with the offset) as
        // often as Redis's cron pings the replica, whatever node_timeout is (§6.1).
        let interval = match self.st().manual {
            ManualFailover::Paused { .. } => self.node.timing.manual_failover_ping(),
            _ => self.node.timing.ping_interval,
        };
        self.set_timer(Timer::Tick, exactly(interval));
    }

    /// A PING or PONG from `from`.
    pub(crate) fn on_heartbeat(&mut self, from: NodeId, h: &Header, is_pong: bool) {
        self.observe_epoch(h.current_epoch);
        self.apply_header(from, h);
        self.on_master_paused(from, h);
        self.on_master_lost_data(from, h);
        if is_pong {
            self.on_peer_alive(from);
        } else {
            let pong = Msg::Pong(header(self.st()));
            self.send(from, pong);
        }
    }

    /// `currentEpoch = max(currentEpoch, seen)` (§1.7 step 2).
    pub(crate) fn observe_epoch(&mut self, seen: Epoch) {
        if seen > self.st().current_epoch {
            self.st_mut().current_epoch = seen;
        }
    }

    /// Role, epoch and slot claim of the sender (§1.7). A header older than the last one
    /// applied from the same sender (lower advertised configEpoch, see [`PeerView::heard`]) is
    /// a reordered datagram: it must not turn back what the sender said since (its role above
    /// all), so only its currentEpoch counts.
    ///
    /// [`PeerView::heard`]: crate::state::PeerView::heard
    fn apply_header(&mut self, from: NodeId, h: &Header) {
        let f = from.index();
        if h.config_epoch < self.st().peers[f].heard {
            return;
        }
        if h.config_epoch > self.st().peers[f].heard {
            self.st_mut().peers[f].heard = h.config_epoch;
        }
        if self.st().peers[f].repl_offset != h.repl_offset
            || self.st().peers[f].no_failover != h.flags.no_failover
        {
            let p = &mut self.st_mut().peers[f];
            p.repl_offset = h.repl_offset;
            p.no_failover = h.flags.no_failover;
        }
        match h.master {
            None => {
                let p = &self.st().peers[f];
                if p.role != Role::Master || h.config_epoch > p.config_epoch {
                    let p = &mut self.st_mut().peers[f];
                    p.role = Role::Master;
                    p.config_epoch = p.config_epoch.max(h.config_epoch);
                }
                self.apply_claim(from, h.config_epoch, &h.slots);
                self.answer_stale_claim(from, h.config_epoch, &h.slots);
                if self.st().role == Role::Master && h.config_epoch == self.st().config_epoch {
                    self.resolve_epoch_collision(from);
                }
            }
            Some(master) => {
                if self.st().peers[f].role != (Role::Replica { of: master }) {
                    self.st_mut().peers[f].role = Role::Replica { of: master };
                }
                if self.node.bug(Bug::ReplicaEpochAsOwn)
                    && h.config_epoch > self.st().peers[f].config_epoch
                {
                    self.st_mut().peers[f].config_epoch = h.config_epoch;
                }
                // A replica speaks for its master: tell it if that claim is stale.
                self.answer_stale_claim(from, h.config_epoch, &h.slots);
            }
        }
    }

    /// `clusterUpdateSlotsConfigWith` (§3.4): rebind every slot `claimer` claims at `epoch`
    /// whose owner has a strictly lower configEpoch; follow `claimer` if that took my shard's
    /// last slot.
    pub(crate) fn apply_claim(&mut self, claimer: NodeId, epoch: Epoch, claimed: &SlotSet) {
        // Most claims are repeats of what is bound already (a real node's every header).
        if self.st().slots.all_bound_to(claimed, claimer) {
            return;
        }
        let my_shard = self.st().shard_master();
        let mut took_from_my_shard = false;
        for slot in claimed.iter() {
            let owner = self.st().slots.owner(slot);
            let wins = match owner {
                Some(o) if o == claimer => false,
                Some(o) => self.st().epoch_of(o) < epoch || self.node.bug(Bug::AcceptStaleClaim),
                None => true,
            };
            if wins {
                self.st_mut().slots.bind(slot, claimer);
                took_from_my_shard |= owner == Some(my_shard);
            }
        }
        if took_from_my_shard && !self.st().slots.owns_any(my_shard) {
            self.follow(claimer);
        }
    }

    /// If a slot in `claimed` is bound to a node with a configEpoch above `epoch`, send `to`
    /// an UPDATE about that owner (Redis reports the first such owner only).
    fn answer_stale_claim(&mut self, to: NodeId, epoch: Epoch, claimed: &SlotSet) {
        let st = self.st();
        let newer = st
            .slots
            .first_owner_among(claimed, |o| o != to && st.epoch_of(o) > epoch);
        if let Some(owner) = newer {
            let claim = SlotClaim {
                node: owner,
                config_epoch: st.epoch_of(owner),
                slots: st.slots.slots_of(owner),
            };
            self.send(to, Msg::Update(claim));
        }
    }

    /// My shard lost its last slot to `new_master`: replicate it (`clusterSetMaster`). A master
    /// becomes a replica here ("an old master rejoins as a replica of the winner"); a replica
    /// switches to the winner. Any election of mine is abandoned.
    fn follow(&mut self, new_master: NodeId) {
        if self.node.bug(Bug::NoFollowWinner) && self.st().role == Role::Master {
            return;
        }
        let st = self.st_mut();
        st.role = Role::Replica { of: new_master };
        st.election = Election::Idle;
        st.manual = ManualFailover::Idle;
        self.cancel_timer(Timer::ElectionDelay);
        self.cancel_timer(Timer::ElectionTimeout);
        self.cancel_timer(Timer::ManualFailover);
        // If the new master is already FAIL in my view, its replicas must try to replace it.
        if self.st().peers[new_master.index()].health.is_fail() {
            self.schedule_election();
        }
    }

    /// Two masters with one configEpoch (§3.5): the one with the smaller id takes a new epoch,
    /// so all epochs become distinct; the largest id never moves.
    fn resolve_epoch_collision(&mut self, other: NodeId) {
        if self.me() < other {
            let st = self.st_mut();
            st.current_epoch = st.current_epoch.next();
            st.config_epoch = st.current_epoch;
        }
    }

    /// UPDATE: someone knows a newer claim than the one I advertised or hold.
    pub(crate) fn on_update(&mut self, claim: &SlotClaim) {
        if claim.node == self.me() {
            return;
        }
        let n = claim.node.index();
        if claim.config_epoch < self.st().peers[n].config_epoch {
            return;
        }
        if claim.config_epoch > self.st().peers[n].config_epoch {
            let p = &mut self.st_mut().peers[n];
            p.role = Role::Master;
            p.config_epoch = claim.config_epoch;
        }
        self.apply_claim(claim.node, claim.config_epoch, &claim.slots);
    }
}
