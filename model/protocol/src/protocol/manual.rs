//! Manual failover: `CLUSTER FAILOVER [FORCE | TAKEOVER]` sent to a replica (specs/protocol.md
//! §6.1; Redis's `clusterCommand` "failover" and `clusterHandleManualFailover`).
//!
//! - **Default**: the replica asks its master to pause writes (`MFSTART`). The master pauses at
//!   once and says so from its next header on, with its replication offset, which is then final
//!   (the header is built in a later step than the pause, so no write of the master is newer).
//!   Once the replica has applied that offset it runs an election whose voters grant although
//!   the master is not FAIL (`forced`). The master acknowledged nothing past the offset the
//!   replica reached, so nothing acknowledged is lost: the way to upgrade or move a master.
//! - **FORCE**: the same election at once, without the master's pause: for a master that is down
//!   or cut off. Writes the replica had not received are lost.
//! - **TAKEOVER**: no election. The replica takes a new configEpoch on its own (currentEpoch + 1)
//!   and its master's slots. No majority agrees to that epoch, so another node may take the same
//!   one at the same time (an election under way, another takeover); Redis documents it as
//!   unsafe under partitions, and specs/properties.md has the checker's counterexample.
//!
//! Every mode starts with a command from an operator, which the node runtime hands to
//! [`ClusterNode::on_failover`] and the checker offers as an action within a budget.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use stateright::actor::Out;
use thiserror::Error;

use crate::actor::{exactly, ClusterNode, Step};
use crate::ids::NodeId;
use crate::message::{Header, Msg};
use crate::state::{Election, ManualFailover, NodeState, Role};
use crate::timer::Timer;

/// How a manual failover goes (the argument of `CLUSTER FAILOVER`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FailoverMode {
    /// With the master's pause: nothing acknowledged is lost.
    Default,
    /// An election without the master's pause.
    Force,
    /// No election: a new configEpoch taken without agreement.
    Takeover,
}

impl FailoverMode {
    /// Every mode, in the order the checker offers them.
    pub const ALL: [FailoverMode; 3] = [
        FailoverMode::Default,
        FailoverMode::Force,
        FailoverMode::Takeover,
    ];

    /// The mode's name in `CLUSTER FAILOVER [FORCE | TAKEOVER]` and in reports.
    pub fn name(self) -> &'static str {
        match self {
            FailoverMode::Default => "default",
            FailoverMode::Force => "force",
            FailoverMode::Takeover => "takeover",
        }
    }
}

/// Why a node refuses `CLUSTER FAILOVER`, in Redis's words.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum FailoverRefused {
    /// Sent to a master.
    #[error("You should send CLUSTER FAILOVER to a replica")]
    NotAReplica,
    /// Default mode while the master is FAIL: there is no master to pause.
    #[error("Master is down or failed, please use CLUSTER FAILOVER FORCE")]
    MasterDown,
    /// The replica restarted and has no complete copy of its master's data yet (`sync` mode:
    /// it could lose acknowledged writes, specs/protocol.md §13).
    #[error("Replica has no complete copy of its master's data yet")]
    DataIncomplete,
}

impl ClusterNode {
    /// An operator's `CLUSTER FAILOVER` in `mode`, as one step of this node.
    pub fn on_failover(
        &self,
        state: &mut Cow<'_, NodeState>,
        mode: FailoverMode,
        o: &mut Out<Self>,
    ) -> Result<(), FailoverRefused> {
        let mut result = Ok(());
        self.step(state, o, |s| result = s.failover(mode));
        result
    }
}

impl Step<'_, '_> {
    fn failover(&mut self, mode: FailoverMode) -> Result<(), FailoverRefused> {
        let Role::Replica { of: master } = self.st().role else {
            return Err(FailoverRefused::NotAReplica);
        };
        if !self.node.may_run(self.st()) {
            return Err(FailoverRefused::DataIncomplete);
        }
        let timeout = self.node.timing.manual_failover_timeout();
        match mode {
            FailoverMode::Default => {
                if self.st().peers[master.index()].health.is_fail() {
                    return Err(FailoverRefused::MasterDown);
                }
                self.st_mut().manual = ManualFailover::Waiting;
                self.send(master, Msg::FailoverStart);
                self.set_timer(Timer::ManualFailover, exactly(timeout));
            }
            FailoverMode::Force => {
                self.cancel_timer(Timer::ElectionDelay);
                self.start_election(master, true);
            }
            FailoverMode::Takeover => self.take_over(master),
        }
        Ok(())
    }

    /// TAKEOVER: a new configEpoch without agreement, and the master's slots.
    fn take_over(&mut self, master: NodeId) {
        let me = self.me();
        let taken = self.st().slots.slots_of(master);
        let st = self.st_mut();
        st.current_epoch = st.current_epoch.next();
        st.config_epoch = st.current_epoch;
        st.role = Role::Master;
        st.election = Election::Idle;
        st.manual = ManualFailover::Idle;
        for slot in taken.iter() {
            st.slots.bind(slot, me);
        }
        self.cancel_timer(Timer::ElectionDelay);
        self.cancel_timer(Timer::ElectionTimeout);
        self.cancel_timer(Timer::ManualFailover);
    }

    /// `MFSTART` from `replica`: pause writes for its manual failover, if it is mine.
    pub(crate) fn on_failover_start(&mut self, replica: NodeId) {
        let me = self.me();
        let st = self.st();
        if st.role != Role::Master || st.peers[replica.index()].role != (Role::Replica { of: me }) {
            return;
        }
        self.st_mut().manual = ManualFailover::Paused {
            replica,
            announced: false,
        };
        let timeout = self.node.timing.manual_failover_timeout();
        self.set_timer(Timer::ManualFailover, exactly(timeout));
        // The pause is announced at the next tick: make it come soon.
        let soon = self.node.timing.manual_failover_ping();
        self.set_timer(Timer::Tick, exactly(soon));
    }

    /// On a tick: a pause not yet in my headers goes into them now.
    pub(crate) fn announce_pause(&mut self) {
        if let ManualFailover::Paused {
            replica,
            announced: false,
        } = self.st().manual
        {
            self.st_mut().manual = ManualFailover::Paused {
                replica,
                announced: true,
            };
        }
    }

    /// A header from `from`: if it is my master, paused for my manual failover, and I have
    /// applied its final offset, run the election.
    pub(crate) fn on_master_paused(&mut self, from: NodeId, h: &Header) {
        let st = self.st();
        let caught_up = st.peers[st.me.index()].repl_offset >= h.repl_offset;
        if st.manual == ManualFailover::Waiting
            && st.role == (Role::Replica { of: from })
            && h.master.is_none()
            && h.flags.paused
            && caught_up
        {
            self.st_mut().manual = ManualFailover::Idle;
            self.start_election(from, true);
        }
    }

    /// The manual failover took too long: the replica gives up waiting, the master resumes
    /// writes. An election already started runs to its own timeout.
    pub(crate) fn on_manual_failover_timeout(&mut self) {
        if self.st().manual != ManualFailover::Idle {
            self.st_mut().manual = ManualFailover::Idle;
        }
    }
}
