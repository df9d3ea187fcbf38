//! Failure detection: PFAIL, failure reports, FAIL, and clearing them (specs/protocol.md §4;
//! specs/background.md §R2).
//!
//! - PFAIL: the [`Timer::PeerTimeout`] of a peer fired (no PONG for node_timeout). Local only.
//! - Reports: a slot-owning master's gossip entry calling a node PFAIL/FAIL is a report; an entry
//!   calling it healthy withdraws the report. Each report expires after the validity window.
//!   A report counts only if it arrives while I suspect the node myself, and my reports about a
//!   node are discarded when that suspicion ends (PONG, or FAIL). Redis also keeps reports that
//!   arrived before its own PFAIL; we do not, because reporters repeat their suspicions on every
//!   tick (so FAIL comes at most one ping interval later), because a FAIL then never rests on
//!   reports older than my own evidence, and because it keeps report state bounded: in Redis's
//!   form every stale, re-delivered datagram re-adds a report that later expires, which the
//!   checker must explore for every (observer, suspect, reporter) triple (specs/protocol.md §8).
//! - FAIL: a node I have PFAIL is marked FAIL once reports from a majority of slot-owning masters
//!   (counting myself if I am one) agree, and I broadcast FAIL. A FAIL message is adopted by a
//!   node that suspects the node itself. Redis adopts it unconditionally, which over TCP is
//!   harmless; over UDP a FAIL datagram can arrive long after the node was cleared, and adopting
//!   it would fail a healthy node again. It also means a master that can still reach a node
//!   never votes to replace it (as Raft's pre-vote), so the majority that fails a master over is
//!   a majority that cannot reach it.
//! - Clearing: a PONG clears PFAIL; it clears FAIL of a replica or slot-less master at once, and
//!   of a slot-owning master only after the FAIL-undo time (§2.4).

use crate::actor::{exactly, Step};
use crate::bugs::Bug;
use crate::ids::NodeId;
use crate::message::{GossipEntry, Suspicion};
use crate::state::{Health, NodeState, Role};
use crate::timer::Timer;

/// Whether a PONG from `peer` would end `state`'s suspicion of it (§2.4): it clears PFAIL, and
/// FAIL of a replica or a slot-less master at once, of a slot-owning master only once its
/// FAIL-undo time has passed. Otherwise a PONG does nothing a PING with the same header does not
/// also do, which the checker uses to skip a PING whose PONG twin is in flight
/// (specs/protocol.md §8.9).
pub fn pong_clears(state: &NodeState, peer: NodeId) -> bool {
    let Some(p) = state.peer(peer) else {
        return false;
    };
    match p.health {
        Health::Ok => false,
        Health::PFail => true,
        Health::Fail { undo_ready } => {
            undo_ready || p.role != Role::Master || !state.slots.owns_any(peer)
        }
    }
}

impl Step<'_, '_> {
    /// My PING to `peer` went unanswered for node_timeout.
    pub(crate) fn on_peer_timeout(&mut self, peer: NodeId) {
        if self.st().peers[peer.index()].health == Health::Ok {
            self.st_mut().peers[peer.index()].health = Health::PFail;
            self.mark_failing_if_needed(peer);
            if self.node.bug(Bug::PFailCountsAsFail)
                && self.st().role == (Role::Replica { of: peer })
            {
                self.schedule_election();
            }
        }
    }

    /// A PONG from `peer`: it is alive (§2.4).
    pub(crate) fn on_peer_alive(&mut self, peer: NodeId) {
        let p = peer.index();
        if pong_clears(self.st(), peer) {
            self.st_mut().peers[p].health = Health::Ok;
            self.discard_reports(peer);
            self.cancel_timer(Timer::FailUndo(peer));
        }
        if self.st().peers[p].health == Health::Ok {
            let timeout = self.node.timing.node_timeout;
            self.set_timer(Timer::PeerTimeout(peer), exactly(timeout));
        }
    }

    /// A gossip entry from `from`: a failure report (or its withdrawal) if `from` is a
    /// slot-owning master (§2.2), and the configEpoch of a suspect (Valkey #2169).
    pub(crate) fn on_gossip(&mut self, from: NodeId, e: &GossipEntry) {
        let target = e.node;
        if target == self.me() || target == from {
            return;
        }
        let t = target.index();
        let p = &self.st().peers[t];
        if p.role == Role::Master && e.config_epoch > p.config_epoch {
            self.st_mut().peers[t].config_epoch = e.config_epoch;
        }
        let is_report = (e.from_voting_master && self.st().is_voting_master(from))
            || (self.node.bug(Bug::ReplicaReportsCount) && !e.from_voting_master);
        if !is_report {
            return;
        }
        match e.suspicion {
            Suspicion::PFail => {
                // Reports count only while I suspect the node myself (see the module docs).
                if self.st().peers[t].health != Health::PFail {
                    return;
                }
                if !self.st().peers[t].reports.contains(from) {
                    self.st_mut().peers[t].reports.insert(from);
                }
                // Refresh: the runtime re-arms the deadline; the checker sees no change.
                let validity = self.node.timing.report_validity();
                let expiry = Timer::ReportExpiry {
                    target,
                    reporter: from,
                };
                self.set_timer(expiry, exactly(validity));
                self.mark_failing_if_needed(target);
            }
            Suspicion::None => {
                if self.st().peers[t].reports.contains(from) {
                    self.st_mut().peers[t].reports.remove(from);
                    self.cancel_timer(Timer::ReportExpiry {
                        target,
                        reporter: from,
                    });
                }
            }
        }
    }

    /// Any message from `peer` shows it is up: restart its PFAIL deadline (Redis's
    /// `data_received`, §2.1). Only a PONG clears a PFAIL or FAIL already set.
    pub(crate) fn on_peer_heard(&mut self, peer: NodeId) {
        if self.st().peers[peer.index()].health == Health::Ok {
            let timeout = self.node.timing.node_timeout;
            self.set_timer(Timer::PeerTimeout(peer), exactly(timeout));
        }
    }

    /// A report's validity window passed.
    pub(crate) fn on_report_expiry(&mut self, target: NodeId, reporter: NodeId) {
        if self.st().peers[target.index()].reports.contains(reporter) {
            self.st_mut().peers[target.index()].reports.remove(reporter);
        }
    }

    /// `markNodeAsFailingIfNeeded` (§2.3).
    fn mark_failing_if_needed(&mut self, target: NodeId) {
        let st = self.st();
        let p = &st.peers[target.index()];
        if p.health != Health::PFail {
            return;
        }
        let count_all = self.node.bug(Bug::ReplicaReportsCount);
        let reports = p
            .reports
            .iter()
            .filter(|&r| count_all || st.is_voting_master(r))
            .count();
        // Reports are counted from masters that still serve slots in my view; myself counts
        // if I am one.
        let mine = usize::from(st.is_voting_master(st.me));
        if reports + mine >= self.layout().quorum() || self.node.bug(Bug::FailWithoutQuorum) {
            // The FAIL broadcast is the announcement of the change at the end of this step.
            self.mark_fail(target);
        }
    }

    /// Forgets every failure report about `target` (its PFAIL episode is over).
    fn discard_reports(&mut self, target: NodeId) {
        let t = target.index();
        if self.st().peers[t].reports.is_empty() {
            return;
        }
        let reporters: Vec<NodeId> = self.st().peers[t].reports.iter().collect();
        self.st_mut().peers[t].reports.clear();
        for reporter in reporters {
            self.cancel_timer(Timer::ReportExpiry { target, reporter });
        }
    }

    /// Sets FAIL on `target` (by my quorum or by a FAIL message).
    fn mark_fail(&mut self, target: NodeId) {
        let t = target.index();
        self.st_mut().peers[t].health = Health::Fail { undo_ready: false };
        self.discard_reports(target);
        self.cancel_timer(Timer::PeerTimeout(target));
        // Armed whatever the node is now: I may learn later that it owns slots (a promotion I
        // had not heard of), and its FAIL must still end once it answers (specs/protocol.md §5.5).
        if !self.node.bug(Bug::FailUndoOnlyForOwners) || self.st().is_voting_master(target) {
            let undo = self.node.timing.fail_undo();
            self.set_timer(Timer::FailUndo(target), exactly(undo));
        }
        if self.st().role == (Role::Replica { of: target }) {
            self.schedule_election();
        }
    }

    /// FAIL from another node: adopted without checking a quorum (§1.7), but only if I suspect
    /// the node myself (see the module docs). Adopting it announces it in turn, as the FAIL flag
    /// of Redis gossip spreads.
    pub(crate) fn on_fail_message(&mut self, target: NodeId) {
        if target == self.me() {
            return;
        }
        let adopt = match self.st().peers[target.index()].health {
            Health::PFail => true,
            Health::Ok => self.node.bug(Bug::AdoptFailUnconditionally),
            Health::Fail { .. } => false,
        };
        if adopt {
            self.mark_fail(target);
        }
    }

    /// The FAIL-undo time of a slot-owning master passed: its next PONG clears FAIL.
    pub(crate) fn on_fail_undo(&mut self, node: NodeId) {
        if self.st().peers[node.index()].health == (Health::Fail { undo_ready: false }) {
            self.st_mut().peers[node.index()].health = Health::Fail { undo_ready: true };
        }
    }
}
