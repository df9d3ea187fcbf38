//! Replication without I/O: what a master streams to its replicas, the backlog it streams from,
//! and a replica's incremental reader of that stream (specs/protocol.md §11.1).
//!
//! Why a stream of resulting values rather than of commands: a master sends, after every write,
//! the state each key it touched ended in (`Set` with value and absolute expiry time, or `Del`).
//! Applying a change is then idempotent and needs no command semantics on the replica (no
//! clock-dependent `EX`, no `INCR` re-run), and a replica applies exactly what the master
//! acknowledged. The price is a whole value per write to a key (an `APPEND` to a large string
//! resends it); Redis propagates the command and pays for it with rewriting rules instead.
//!
//! The stream is a sequence of frames, each a big-endian `u32` length and a postcard-encoded
//! [`Frame`]. A replica that connects either continues where it stopped (`Continue`, when the
//! master's backlog still holds the stream from there: the decision is
//! [`Dataset::answer_sync`](super::dataset::Dataset::answer_sync)) or gets a full copy (`Full`,
//! one `Change` per key, `Synced`); then every change from that offset on. Offsets count the
//! bytes of `Change` frames of the stream proper, as Redis's replication offset counts bytes of
//! its stream: the master's offset is where its backlog ends, a replica's how far it has
//! applied, and a replica keeps a backlog of what it applied, so that once promoted it can let
//! its former siblings continue.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::{Buf, BytesMut};
use serde::{Deserialize, Serialize};
use slotguard_protocol::Durability;
use thiserror::Error;

use super::dataset::{Dataset, ReplId};
use super::keyspace::{Entries, Keyspace};

/// Largest frame a reader accepts: a value of up to `proto_max_bulk_len` and its key fit.
pub const MAX_FRAME: usize = 513 << 20;

/// One change to the keyspace.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Change {
    /// `key` now holds `value`, expiring at `expires_at` (ms since the epoch) if set.
    Set {
        /// The key.
        key: Vec<u8>,
        /// Its value.
        value: Vec<u8>,
        /// When it expires.
        expires_at: Option<u64>,
    },
    /// `key` no longer exists.
    Del {
        /// The key.
        key: Vec<u8>,
    },
    /// Every key is gone (`FLUSHALL`).
    Flush,
}

/// One frame of the replication stream.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Frame {
    /// A full copy follows, taken at this offset of stream `id`: the replica drops its keys.
    Full {
        /// The master's stream.
        id: ReplId,
        /// The master's offset when the copy was taken.
        offset: u64,
    },
    /// The replica's keys are the stream `id` up to `offset`: changes from there follow.
    Continue {
        /// The master's stream (it may have been renamed since the replica last synced).
        id: ReplId,
        /// Where the replica's keys end, and the stream resumes.
        offset: u64,
    },
    /// A change: part of the copy before `Synced`, of the stream after it.
    Change(Change),
    /// The copy is complete; changes from the copy's offset follow.
    Synced,
}

impl Frame {
    /// The frame with its length prefix.
    pub fn encode(&self) -> Vec<u8> {
        let body = postcard::to_allocvec(self).unwrap_or_default();
        let mut out = Vec::with_capacity(4 + body.len());
        out.extend_from_slice(&(body.len() as u32).to_be_bytes());
        out.extend_from_slice(&body);
        out
    }
}

/// Why a replica drops its link to the master (and resyncs).
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum StreamError {
    /// A frame longer than [`MAX_FRAME`].
    #[error("replication frame of {0} bytes is over the limit")]
    Oversized(usize),
    /// A frame that does not decode.
    #[error("replication frame does not decode")]
    Undecodable,
    /// Frames out of order (a change before any copy, a second `Synced`, a `Continue` from
    /// an offset the replica is not at).
    #[error("replication frame out of order")]
    OutOfOrder,
    /// An empty full copy offered to a replica that holds the stream up to this offset, in
    /// `sync` mode: the master was recreated without its state file (specs/protocol.md §13.1).
    #[error("the master offers an empty copy (stream offset 0) and this replica holds the stream up to {0}: the master was recreated without its data, so the replica keeps its own")]
    EmptyCopy(u64),
    /// The master answered with an error line instead of a stream.
    #[error("the master refused: {0}")]
    Refused(String),
}

/// The changes a master keeps for replicas that fall behind: the newest `capacity` bytes of
/// the stream (Redis's `repl-backlog-size`).
#[derive(Debug)]
pub struct Backlog {
    bytes: VecDeque<u8>,
    /// Offset of the first byte kept.
    start: u64,
    capacity: usize,
}

impl Backlog {
    /// An empty backlog at offset 0.
    pub fn new(capacity: usize) -> Backlog {
        Backlog {
            bytes: VecDeque::new(),
            start: 0,
            capacity,
        }
    }

    /// The offset after the last change (Redis's `master_repl_offset`).
    pub fn end(&self) -> u64 {
        self.start + self.bytes.len() as u64
    }

    /// The offset of the first byte kept.
    pub fn start(&self) -> u64 {
        self.start
    }

    /// Bytes kept at most.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Appends `change`; returns the offset after it.
    pub fn append(&mut self, change: Change) -> u64 {
        self.append_frame(&Frame::Change(change).encode())
    }

    /// Appends an encoded `Change` frame as received from a master; returns the offset after.
    pub fn append_frame(&mut self, frame: &[u8]) -> u64 {
        self.bytes.extend(frame);
        let excess = self.bytes.len().saturating_sub(self.capacity);
        self.bytes.drain(..excess);
        self.start += excess as u64;
        self.end()
    }

    /// Empties the backlog, which now ends (and starts) at `offset`: a full copy taken there
    /// replaced the keys.
    pub fn reset(&mut self, offset: u64) {
        self.bytes.clear();
        self.start = offset;
    }

    /// The stream from `offset` to the end; `None` if the backlog no longer reaches back that
    /// far (the replica needs a new full copy) or `offset` lies beyond the end.
    pub fn since(&self, offset: u64) -> Option<Vec<u8>> {
        let from = usize::try_from(offset.checked_sub(self.start)?).ok()?;
        (from <= self.bytes.len()).then(|| self.bytes.range(from..).copied().collect())
    }
}

/// How many replicas acknowledged the stream within `max_lag` before `now`, given when each
/// last did (Redis's "good replicas", which `min-replicas-to-write` counts). Lags are whole
/// seconds, as Redis counts them and `INFO` shows them: a replica is good while its lag in
/// seconds is at most `max_lag`'s.
pub fn good_replicas(
    acked_at: impl IntoIterator<Item = Instant>,
    now: Instant,
    max_lag: Duration,
) -> usize {
    acked_at
        .into_iter()
        .filter(|at| now.saturating_duration_since(*at).as_secs() <= max_lag.as_secs())
        .count()
}

/// The changes that bring a replica's copy of `key` to what `keys` holds now.
pub fn change_of(keys: &mut Keyspace, key: &[u8], now: u64) -> Change {
    match keys.entry(key, now) {
        Some((value, expires_at)) => Change::Set {
            key: key.to_vec(),
            value: value.to_vec(),
            expires_at,
        },
        None => Change::Del { key: key.to_vec() },
    }
}

/// The frames of a full copy of `entries`, taken at `offset` of stream `id`: the keys are
/// copied as [`Keyspace::entries`] while they are locked, and encoded here after they are
/// released.
pub fn full_copy(id: ReplId, offset: u64, entries: Entries) -> Vec<u8> {
    let mut out = Frame::Full { id, offset }.encode();
    for (key, value, expires_at) in entries.iter() {
        let change = Change::Set {
            key: key.to_vec(),
            value: value.to_vec(),
            expires_at,
        };
        out.extend(Frame::Change(change).encode());
    }
    out.extend(Frame::Synced.encode());
    out
}

/// A replica's side of the stream: it decodes frames as bytes arrive and applies them to its
/// [`Dataset`], whose backlog then ends at the master offset applied.
#[derive(Debug, Default)]
pub struct Follower {
    buf: BytesMut,
    state: FollowerState,
    /// The cluster's mode, which says which full copies may replace the replica's data
    /// (`Durability::accepts_copy`, specs/protocol.md §13.1).
    durability: Durability,
}

#[derive(Debug, Default, PartialEq, Eq)]
enum FollowerState {
    /// Before the master's first frame.
    #[default]
    Waiting,
    /// A full copy is arriving.
    Copying,
    /// The keys are the master's stream up to the dataset's offset.
    Streaming,
}

impl Follower {
    /// A follower for a cluster in `durability` mode.
    pub fn new(durability: Durability) -> Follower {
        Follower {
            durability,
            ..Follower::default()
        }
    }

    /// Whether the replica's keys are a prefix of the master's stream (the copy, if one was
    /// needed, is complete): only then is its offset worth acknowledging.
    pub fn synced(&self) -> bool {
        self.state == FollowerState::Streaming
    }

    /// Takes `bytes` from the master and applies every complete frame to `data`. A frame is
    /// applied whole or not at all; an error means the link must be dropped.
    pub fn receive(&mut self, bytes: &[u8], data: &mut Dataset) -> Result<(), StreamError> {
        self.buf.extend_from_slice(bytes);
        while let Some((frame, size)) = self.next_frame()? {
            self.apply(frame, size, data)?;
            self.buf.advance(size);
        }
        Ok(())
    }

    /// The next complete frame and its size with the prefix; the bytes stay in the buffer.
    fn next_frame(&self) -> Result<Option<(Frame, usize)>, StreamError> {
        if self.state == FollowerState::Waiting && self.buf.first() == Some(&b'-') {
            // A RESP error instead of a stream (`-LOADING ...` from a master that lost its
            // data): its text, not a frame length.
            let line: &[u8] = self.buf[..]
                .split(|&b| b == b'\r')
                .next()
                .unwrap_or_default();
            let text =
                String::from_utf8_lossy(line.get(1..line.len().min(200)).unwrap_or_default());
            return Err(StreamError::Refused(text.into_owned()));
        }
        let Some(prefix) = self.buf.get(..4) else {
            return Ok(None);
        };
        let len = u32::from_be_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]) as usize;
        if len > MAX_FRAME {
            return Err(StreamError::Oversized(len));
        }
        if self.buf.len() < 4 + len {
            return Ok(None);
        }
        match postcard::take_from_bytes::<Frame>(&self.buf[4..4 + len]) {
            Ok((frame, [])) => Ok(Some((frame, 4 + len))),
            _ => Err(StreamError::Undecodable),
        }
    }

    fn apply(&mut self, frame: Frame, size: usize, data: &mut Dataset) -> Result<(), StreamError> {
        use FollowerState::{Copying, Streaming, Waiting};
        self.state = match (&self.state, frame) {
            (Waiting, Frame::Full { offset, .. })
                if !self.durability.accepts_copy(data.offset(), offset) =>
            {
                return Err(StreamError::EmptyCopy(data.offset()));
            }
            (Waiting, Frame::Full { id, offset }) => {
                data.start_copy(id, offset);
                Copying
            }
            (Waiting, Frame::Continue { id, offset }) if offset == data.offset() => {
                data.continue_stream(id);
                Streaming
            }
            (Copying, Frame::Change(change)) => {
                apply_change(&mut data.keys, change);
                Copying
            }
            (Copying, Frame::Synced) => {
                data.finish_copy();
                Streaming
            }
            (Streaming, Frame::Change(change)) => {
                apply_change(&mut data.keys, change);
                data.log.append_frame(&self.buf[..size]);
                Streaming
            }
            _ => return Err(StreamError::OutOfOrder),
        };
        Ok(())
    }
}

pub(super) fn apply_change(keys: &mut Keyspace, change: Change) {
    match change {
        Change::Set {
            key,
            value,
            expires_at,
        } => keys.put(&key, &value, expires_at),
        Change::Del { key } => keys.delete(&key),
        Change::Flush => keys.clear(),
    }
}

#[cfg(test)]
#[path = "replication_tests.rs"]
mod tests;
