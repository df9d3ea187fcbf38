//! The node's state file: the actor's `Save(Persisted)` made durable.
//!
//! Format: `SLOTGUARD-STATE 1\n` magic line, then a CRC-32 (4 bytes, big-endian) of the
//! payload, then the payload: postcard(`Persisted`). Writes are atomic and durable — write a
//! temporary file, fsync it, rename it over the state file, fsync the directory — and complete
//! before any message of the same step is sent (specs/protocol.md §7). A file that exists but
//! cannot be read, has a bad checksum or does not decode stops start-up with an error that
//! names it: a node never silently starts from zero after having voted.

use std::fs::{self, File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};

use slotguard_model::Persisted;
use thiserror::Error;

const MAGIC: &[u8] = b"SLOTGUARD-STATE 1\n";

/// A state file that cannot be used.
#[derive(Debug, Error)]
pub(crate) enum StorageError {
    /// I/O failed.
    #[error("state file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The contents are damaged.
    #[error("state file {path} is corrupt ({why}); refusing to start from an unknown state — restore it or remove it deliberately to rejoin as a new node")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
}

/// The state file of one node.
pub(crate) struct StateFile {
    path: PathBuf,
    dir: PathBuf,
}

impl StateFile {
    /// The state file of node `id` in `dir`.
    pub(crate) fn new(dir: &Path, id: u16) -> StateFile {
        StateFile {
            path: dir.join(format!("node-{id}.state")),
            dir: dir.to_path_buf(),
        }
    }

    /// Its path.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    fn io(&self, source: std::io::Error) -> StorageError {
        StorageError::Io {
            path: self.path.clone(),
            source,
        }
    }

    /// The persisted state, or `None` if the file does not exist (a new node).
    pub(crate) fn load(&self) -> Result<Option<Persisted>, StorageError> {
        let bytes = match fs::read(&self.path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(self.io(e)),
        };
        let corrupt = |why: &str| StorageError::Corrupt {
            path: self.path.clone(),
            why: why.to_string(),
        };
        let rest = bytes
            .strip_prefix(MAGIC)
            .ok_or_else(|| corrupt("not a slotguard state file, or an unknown version"))?;
        if rest.len() < 4 {
            return Err(corrupt("truncated"));
        }
        let (crc, payload) = rest.split_at(4);
        let expected = u32::from_be_bytes([crc[0], crc[1], crc[2], crc[3]]);
        if crc32fast::hash(payload) != expected {
            return Err(corrupt("checksum mismatch"));
        }
        postcard::from_bytes(payload)
            .map(Some)
            .map_err(|e| corrupt(&format!("undecodable: {e}")))
    }

    /// Writes `state` atomically and durably.
    pub(crate) fn save(&self, state: &Persisted) -> Result<(), StorageError> {
        fs::create_dir_all(&self.dir).map_err(|e| self.io(e))?;
        let payload = postcard::to_allocvec(state).map_err(|e| StorageError::Corrupt {
            path: self.path.clone(),
            why: format!("cannot encode: {e}"),
        })?;
        let tmp = self.path.with_extension("state.tmp");
        {
            let mut f = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .open(&tmp)
                .map_err(|e| self.io(e))?;
            f.write_all(MAGIC).map_err(|e| self.io(e))?;
            f.write_all(&crc32fast::hash(&payload).to_be_bytes())
                .map_err(|e| self.io(e))?;
            f.write_all(&payload).map_err(|e| self.io(e))?;
            f.sync_all().map_err(|e| self.io(e))?;
        }
        fs::rename(&tmp, &self.path).map_err(|e| self.io(e))?;
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| self.io(e))?;
        Ok(())
    }
}
