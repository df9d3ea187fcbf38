//! Replica failover: the candidate's election and the masters' votes (specs/protocol.md §5;
//! specs/background.md §R3.1–§R3.3).
//!
//! Safety rests on three rules, each a property of the catalogue:
//! - a candidate runs every election in a fresh epoch (it bumps currentEpoch and persists it
//!   before asking);
//! - a master grants at most one vote per epoch (lastVoteEpoch, persisted before the ACK leaves);
//! - a candidate counts *distinct* voters of *its* epoch, and needs a majority of slot-owning
//!   masters (the network duplicates and delays ACKs).
//!
//! Voters also refuse unless the candidate's master is FAIL in their view and no slot of the
//! request is bound to an owner with a higher configEpoch than the request names (rule 6; a
//! refusal for a stale epoch answers with an UPDATE, Valkey #2178). The Redis rule "no vote for
//! a replica of the same master within 2 × node_timeout" is left out, as Valkey 8.1 did
//! (#1305, #1356): it is not needed for safety.

use crate::actor::{exactly, Step};
use crate::bugs::Bug;
use crate::ids::{Epoch, NodeId};
use crate::message::{Msg, SlotClaim, VoteRequest};
use crate::state::{Election, Health, ManualFailover, Role};
use crate::timer::Timer;

impl Step<'_, '_> {
    /// Whether `node` counts as failed for starting or granting an election.
    fn failed_for_election(&self, node: NodeId) -> bool {
        let health = self.st().peers[node.index()].health;
        health.is_fail() || (self.node.bug(Bug::PFailCountsAsFail) && health == Health::PFail)
    }

    /// My master is FAIL: arm the election delay, unless an attempt is already under way.
    pub(crate) fn schedule_election(&mut self) {
        let no_failover = self.st().no_failover;
        if matches!(self.st().role, Role::Replica { .. })
            && self.st().election == Election::Idle
            && !no_failover
            && self.node.may_run(self.st())
        {
            self.st_mut().election = Election::Scheduled;
            let delay = self.node.timing.election_delay(self.rank());
            self.set_timer(Timer::ElectionDelay, delay);
        }
    }

    /// Replica rank (§3.1): siblings with a larger replication offset, or an equal one and a
    /// smaller id (Valkey #762), go first. Only the runtime's delay depends on it.
    fn rank(&self) -> u32 {
        let st = self.st();
        let Role::Replica { of } = st.role else {
            return 0;
        };
        let mine = st.peers[st.me.index()].repl_offset;
        let ahead = st.peers.iter().enumerate().filter(|(i, p)| {
            *i != st.me.index()
                && p.role == (Role::Replica { of })
                && !p.no_failover
                && (p.repl_offset > mine || (p.repl_offset == mine && *i < st.me.index()))
        });
        ahead.count() as u32
    }

    /// The election delay passed: start an election in a new epoch (§3.1).
    pub(crate) fn on_election_delay(&mut self) {
        let Role::Replica { of: master } = self.st().role else {
            if self.st().election != Election::Idle {
                self.st_mut().election = Election::Idle;
            }
            return;
        };
        if !self.failed_for_election(master) || !self.node.may_run(self.st()) {
            self.st_mut().election = Election::Idle;
            return;
        }
        self.start_election(master, false);
    }

    /// Asks every master for its vote to replace `master`, in a new epoch; `forced`: a manual
    /// failover's election, whose master need not be FAIL (§6.1).
    pub(crate) fn start_election(&mut self, master: NodeId, forced: bool) {
        let stale_votes = match &self.st().election {
            Election::Running { votes, .. } if self.node.bug(Bug::StaleVotesNotReset) => {
                votes.clone()
            }
            _ => Default::default(),
        };
        let bump = !self.node.bug(Bug::SkipEpochBump);
        let st = self.st_mut();
        if bump {
            st.current_epoch = st.current_epoch.next();
        }
        let epoch = st.current_epoch;
        st.election = Election::Running {
            epoch,
            votes: stale_votes,
            forced,
        };
        if self.node.bug(Bug::UnpersistedEpochBump) {
            self.skip_save = true;
        }
        let request = self.vote_request(master, epoch, forced);
        self.broadcast(&Msg::AuthRequest(request));
        let timeout = self.node.timing.auth_timeout();
        self.set_timer(Timer::ElectionTimeout, exactly(timeout));
    }

    /// The request for votes of an election in `epoch` to replace `master`, as I see it now.
    fn vote_request(&self, master: NodeId, epoch: Epoch, forced: bool) -> VoteRequest {
        VoteRequest {
            epoch,
            master,
            master_config_epoch: self.st().epoch_of(master),
            slots: self.st().slots.slots_of(master),
            forced,
        }
    }

    /// On every tick while an election runs: ask again (§6, step 2). A master that had not yet
    /// marked my master FAIL when the first request came refused it; it grants this copy once
    /// it has. A master that already voted in this epoch ignores it, so it is as safe as the
    /// duplicate the network may deliver anyway, and it lets the election delay be short.
    pub(crate) fn repeat_vote_request(&mut self) {
        if let (Election::Running { epoch, forced, .. }, Role::Replica { of }) =
            (&self.st().election, self.st().role)
        {
            let request = self.vote_request(of, *epoch, *forced);
            self.broadcast(&Msg::AuthRequest(request));
        }
    }

    /// No quorum within auth_timeout: retry after auth_retry, if the master is still FAIL then.
    pub(crate) fn on_election_timeout(&mut self) {
        if let Election::Running { forced, .. } = self.st().election {
            if forced {
                // A manual failover's election is not retried (Redis aborts it).
                self.st_mut().election = Election::Idle;
                return;
            }
            if !self.node.bug(Bug::StaleVotesNotReset) {
                self.st_mut().election = Election::Scheduled;
            }
            let retry = self.node.timing.auth_retry();
            self.set_timer(Timer::ElectionDelay, exactly(retry));
        }
    }

    /// A master's vote (`FAILOVER_AUTH_ACK`), counted only if it names me.
    pub(crate) fn on_vote(&mut self, voter: NodeId, epoch: Epoch, candidate: NodeId) {
        self.observe_epoch(epoch);
        if candidate != self.me() {
            return;
        }
        let Election::Running {
            epoch: running,
            votes,
            ..
        } = &self.st().election
        else {
            return;
        };
        let earlier_counts =
            self.node.bug(Bug::StaleVotesNotReset) || self.node.bug(Bug::CountEarlierEpochAcks);
        let of_this_election = epoch == *running || (earlier_counts && epoch < *running);
        if !of_this_election || !self.st().is_voting_master(voter) {
            return;
        }
        let counted = if !votes.contains(voter) {
            voter
        } else if self.node.bug(Bug::CountDuplicateAcks) {
            // Count the duplicate as if it were another vote: a phantom id past the layout.
            NodeId((self.layout().len() + votes.len()) as u16)
        } else {
            return;
        };
        let tally = {
            let Election::Running { votes, .. } = &mut self.st_mut().election else {
                return;
            };
            votes.insert(counted);
            votes.len()
        };
        if tally >= self.layout().quorum() {
            self.promote();
        }
    }

    /// Won: stop replicating, take the failed master's slots at the election epoch, announce it
    /// to everyone (`clusterFailoverReplaceYourMaster`, §3.3).
    fn promote(&mut self) {
        let (Election::Running { epoch, .. }, Role::Replica { of: old }) =
            (&self.st().election, self.st().role)
        else {
            return;
        };
        let epoch = *epoch;
        let taken = self.st().slots.slots_of(old);
        let me = self.me();
        let takes_current = self.node.bug(Bug::WinnerTakesCurrentEpoch);
        let st = self.st_mut();
        st.role = Role::Master;
        st.config_epoch = match takes_current {
            true => st.current_epoch,
            false => st.config_epoch.max(epoch),
        };
        for slot in taken.iter() {
            st.slots.bind(slot, me);
        }
        st.election = Election::Idle;
        st.manual = ManualFailover::Idle;
        self.cancel_timer(Timer::ElectionTimeout);
        self.cancel_timer(Timer::ElectionDelay);
        self.cancel_timer(Timer::ManualFailover);
        // The new header (master, slots, epoch) goes to every node at the end of this step,
        // as every header change does (Redis: `clusterBroadcastPong` after a promotion).
    }

    /// A replica asks for my vote (`clusterSendFailoverAuthIfNeeded`, §3.2).
    pub(crate) fn on_vote_request(&mut self, candidate: NodeId, req: &VoteRequest) {
        self.observe_epoch(req.epoch);
        let st = self.st();
        let me = st.me;
        if !st.is_voting_master(me) || req.epoch < st.current_epoch {
            return;
        }
        if st.last_vote_epoch == st.current_epoch && !self.node.bug(Bug::VoteTwicePerEpoch) {
            return;
        }
        let failed = self.failed_for_election(req.master) || req.forced;
        if st.peers[candidate.index()].role != (Role::Replica { of: req.master })
            || !(failed || self.node.bug(Bug::VoteWithoutFail))
        {
            return;
        }
        let newer_owner = st
            .slots
            .first_owner_among(&req.slots, |o| st.epoch_of(o) > req.master_config_epoch);
        if let Some(owner) = newer_owner {
            let claim = SlotClaim {
                node: owner,
                config_epoch: st.epoch_of(owner),
                slots: st.slots.slots_of(owner),
            };
            self.send(candidate, Msg::Update(claim));
            return;
        }
        let st = self.st_mut();
        st.last_vote_epoch = st.current_epoch;
        let epoch = st.current_epoch;
        let forced = req.forced;
        self.send(
            candidate,
            Msg::AuthAck {
                epoch,
                candidate,
                forced,
            },
        );
    }
}
