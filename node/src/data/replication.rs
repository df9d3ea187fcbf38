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
//! [`Frame`]. A replica that connects gets a full copy (`Full`, one `Change` per key, `Synced`),
//! then every change from the offset the copy was taken at. Offsets count the bytes of frames
//! after `Synced`, as Redis's replication offset counts bytes of the stream: the master's offset
//! is where its backlog ends, a replica's how far it has applied.

use std::collections::VecDeque;

use bytes::{Buf, Bytes, BytesMut};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::keyspace::Keyspace;

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
    /// A full copy follows, taken at this master offset: the replica drops its keys.
    Full {
        /// The master's offset when the copy was taken.
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
    /// Frames out of order (a change before any copy, a second `Synced`).
    #[error("replication frame out of order")]
    OutOfOrder,
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

    /// Appends `change`; returns the offset after it.
    pub fn append(&mut self, change: Change) -> u64 {
        self.bytes.extend(Frame::Change(change).encode());
        let excess = self.bytes.len().saturating_sub(self.capacity);
        self.bytes.drain(..excess);
        self.start += excess as u64;
        self.end()
    }

    /// The stream from `offset` to the end; `None` if the backlog no longer reaches back that
    /// far (the replica needs a new full copy) or `offset` lies beyond the end.
    pub fn since(&self, offset: u64) -> Option<Vec<u8>> {
        let from = usize::try_from(offset.checked_sub(self.start)?).ok()?;
        (from <= self.bytes.len()).then(|| self.bytes.range(from..).copied().collect())
    }
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

/// A full copy of `keys`, taken at master offset `offset`: the frames a new replica gets first.
pub fn full_copy(keys: &Keyspace, offset: u64, now: u64) -> Vec<u8> {
    let mut out = Frame::Full { offset }.encode();
    for (key, value, expires_at) in keys.entries(now) {
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

/// A replica's side of the stream: it decodes frames as bytes arrive and applies them.
#[derive(Debug, Default)]
pub struct Follower {
    buf: BytesMut,
    /// `None` before the first `Full`; the copy's offset while it arrives; then the offset
    /// applied so far.
    state: FollowerState,
}

#[derive(Debug, Default, PartialEq, Eq)]
enum FollowerState {
    #[default]
    Waiting,
    Copying(u64),
    Streaming(u64),
}

impl Follower {
    /// The master offset applied so far, once the copy is complete.
    pub fn offset(&self) -> Option<u64> {
        match self.state {
            FollowerState::Streaming(offset) => Some(offset),
            _ => None,
        }
    }

    /// Takes `bytes` from the master and applies every complete frame to `keys`. A frame is
    /// applied whole or not at all; an error means the link must be dropped.
    pub fn receive(&mut self, bytes: &[u8], keys: &mut Keyspace) -> Result<(), StreamError> {
        self.buf.extend_from_slice(bytes);
        while let Some((frame, size)) = self.next_frame()? {
            self.apply(frame, size, keys)?;
        }
        Ok(())
    }

    fn next_frame(&mut self) -> Result<Option<(Frame, usize)>, StreamError> {
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
        let frame = match postcard::take_from_bytes::<Frame>(&self.buf[4..4 + len]) {
            Ok((frame, [])) => frame,
            _ => return Err(StreamError::Undecodable),
        };
        self.buf.advance(4 + len);
        Ok(Some((frame, 4 + len)))
    }

    fn apply(&mut self, frame: Frame, size: usize, keys: &mut Keyspace) -> Result<(), StreamError> {
        self.state = match (&self.state, frame) {
            (_, Frame::Full { offset }) => {
                keys.clear();
                FollowerState::Copying(offset)
            }
            (FollowerState::Copying(offset), Frame::Change(change)) => {
                apply_change(keys, change);
                FollowerState::Copying(*offset)
            }
            (FollowerState::Copying(offset), Frame::Synced) => FollowerState::Streaming(*offset),
            (FollowerState::Streaming(offset), Frame::Change(change)) => {
                apply_change(keys, change);
                FollowerState::Streaming(offset + size as u64)
            }
            _ => return Err(StreamError::OutOfOrder),
        };
        Ok(())
    }
}

fn apply_change(keys: &mut Keyspace, change: Change) {
    match change {
        Change::Set {
            key,
            value,
            expires_at,
        } => keys.put(Bytes::from(key), Bytes::from(value), expires_at),
        Change::Del { key } => keys.delete(&key),
        Change::Flush => keys.clear(),
    }
}

#[cfg(test)]
#[path = "replication_tests.rs"]
mod tests;
