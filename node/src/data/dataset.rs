//! A node's data as replication sees it: its keys, the stream they are a prefix of, and the
//! backlog of that stream (specs/protocol.md §11.1).
//!
//! Why a stream has a name ([`ReplId`], Redis's replid): an offset means something only within
//! one history of writes. A replica that reconnects asks to continue stream `id` at offset `o`,
//! and the master lets it only if its own keys are the same stream past `o` and its backlog
//! still holds the bytes from `o`. When a replica is promoted it starts a new stream under a
//! fresh name and remembers the old name with the offset where it stopped following it (Redis's
//! replid2 and second_repl_offset): a former sibling at or before that offset is a prefix of the
//! new master's keys and continues; an old master that acknowledged writes past it (writes the
//! winner never had) is not, and gets a full copy that drops them.

use std::fmt;

use serde::{Deserialize, Serialize};
use slotguard_protocol::NodeId;

use super::keyspace::Keyspace;
use super::replication::{full_copy, Backlog, Frame};
use crate::identity::NoRandomness;

/// The name of one history of writes: 20 random bytes, shown as 40 hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ReplId([u8; 20]);

impl ReplId {
    /// A fresh name from the OS CSPRNG.
    pub fn random() -> Result<ReplId, NoRandomness> {
        let mut bytes = [0u8; 20];
        getrandom::fill(&mut bytes).map_err(|e| NoRandomness(e.to_string()))?;
        Ok(ReplId(bytes))
    }

    /// Parses 40 hex digits, as [`fmt::Display`] writes them.
    pub fn parse(text: &str) -> Option<ReplId> {
        if text.len() != 40 || !text.is_ascii() {
            return None;
        }
        let mut bytes = [0u8; 20];
        for (i, byte) in bytes.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
        }
        Some(ReplId(bytes))
    }
}

impl fmt::Display for ReplId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl fmt::Debug for ReplId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ReplId({self})")
    }
}

/// What a master answers a replica that asks to continue.
#[derive(Debug, PartialEq, Eq)]
pub enum SyncAnswer {
    /// The replica's keys are this stream up to `offset`: send `Continue` and the backlog from
    /// there.
    Continue {
        /// The frames to send: `Continue` and the changes since `offset`.
        frames: Vec<u8>,
        /// The offset after them.
        end: u64,
    },
    /// The replica needs a full copy of these entries, taken at `offset`.
    Full {
        /// The stream's name.
        id: ReplId,
        /// Where the copy was taken.
        offset: u64,
        /// The keys, copied.
        entries: super::keyspace::Entries,
    },
}

impl SyncAnswer {
    /// The frames to send, and the offset the stream continues from after them.
    pub fn into_frames(self) -> (Vec<u8>, u64) {
        match self {
            SyncAnswer::Continue { frames, end } => (frames, end),
            SyncAnswer::Full {
                id,
                offset,
                entries,
            } => (full_copy(id, offset, entries), offset),
        }
    }
}

/// A node's keys, the stream they are a prefix of, and that stream's recent bytes.
#[derive(Debug)]
pub struct Dataset {
    /// The keys.
    pub keys: Keyspace,
    /// The stream's recent changes; it ends at this node's replication offset.
    pub log: Backlog,
    /// The stream the keys are a prefix of.
    id: ReplId,
    /// The stream this node followed before its promotion, and where it stopped.
    previous: Option<(ReplId, u64)>,
    /// The master this node replicates, or `None` while it serves as a master.
    upstream: Option<NodeId>,
    /// False while a full copy arrives: the keys are then no prefix of any stream, and the
    /// node must neither continue from them nor let others continue from it.
    complete: bool,
}

impl Dataset {
    /// No keys, at offset 0 of a new stream `id`, keeping `backlog` bytes of it.
    pub fn new(id: ReplId, backlog: usize) -> Dataset {
        Dataset {
            keys: Keyspace::new(),
            log: Backlog::new(backlog),
            id,
            previous: None,
            upstream: None,
            complete: true,
        }
    }

    /// This node's replication offset: where its stream ends.
    pub fn offset(&self) -> u64 {
        self.log.end()
    }

    /// The stream the keys are a prefix of.
    pub fn id(&self) -> ReplId {
        self.id
    }

    /// The stream followed before the last promotion and the offset it was left at.
    pub fn previous(&self) -> Option<(ReplId, u64)> {
        self.previous
    }

    /// The master this node replicates, if it does.
    pub fn upstream(&self) -> Option<NodeId> {
        self.upstream
    }

    /// Starts following `master`: returns the stream and offset to ask it to continue from,
    /// `None` if there is nothing to continue (the keys are half a copy, or the stream has not
    /// started: a new node asks as Redis's replicas do, with `PSYNC ? -1`).
    pub fn follow(&mut self, master: NodeId) -> Option<(ReplId, u64)> {
        self.upstream = Some(master);
        let resumable = self.complete && self.offset() > 0;
        resumable.then_some((self.id, self.offset()))
    }

    /// Stops following (the node was promoted) and starts stream `fresh` where the old one
    /// was left, so that writes from now on are told apart from the old master's. Does
    /// nothing if the node follows no master.
    pub fn promote(&mut self, fresh: ReplId) {
        if self.upstream.take().is_some() {
            self.previous = self.complete.then_some((self.id, self.offset()));
            self.id = fresh;
            self.complete = true;
        }
    }

    /// Whether this node's keys are stream `id` up to `offset` and its backlog still holds
    /// every change after it.
    fn can_continue(&self, id: ReplId, offset: u64) -> bool {
        let same_stream =
            id == self.id || self.previous.is_some_and(|(p, at)| p == id && offset <= at);
        same_stream && offset >= self.log.start() && offset <= self.offset()
    }

    /// What to answer a replica whose keys are stream `id` up to `offset` (`None`: a replica
    /// with nothing to continue).
    pub fn answer_sync(&self, asked: Option<(ReplId, u64)>, now: u64) -> SyncAnswer {
        let resumable = asked.filter(|&(id, offset)| self.can_continue(id, offset));
        match resumable.and_then(|(_, offset)| Some((offset, self.log.since(offset)?))) {
            Some((offset, changes)) => {
                let mut frames = Frame::Continue {
                    id: self.id,
                    offset,
                }
                .encode();
                frames.extend(changes);
                SyncAnswer::Continue {
                    frames,
                    end: self.offset(),
                }
            }
            None => SyncAnswer::Full {
                id: self.id,
                offset: self.offset(),
                entries: self.keys.entries(now),
            },
        }
    }

    /// A full copy of stream `id` taken at `offset` begins: the keys go, and the stream
    /// becomes the master's.
    pub(super) fn start_copy(&mut self, id: ReplId, offset: u64) {
        self.keys.clear();
        self.log.reset(offset);
        self.id = id;
        self.previous = None;
        self.complete = false;
    }

    /// The full copy is complete: the keys are the stream up to its offset.
    pub(super) fn finish_copy(&mut self) {
        self.complete = true;
    }

    /// The master lets this node continue; its stream may have been renamed since (a promotion).
    pub(super) fn continue_stream(&mut self, id: ReplId) {
        self.id = id;
        self.previous = None;
    }
}

#[cfg(test)]
#[path = "dataset_tests.rs"]
mod tests;
