//! The node's state file: the actor's `Save(Persisted)` made durable.
//!
//! Format: `SLOTGUARD-STATE 2\n` magic line, then a CRC-32 (4 bytes, big-endian) of the
//! payload, then the payload: postcard of the incarnation (how many times the node has started
//! before, a `u32` the wire stamps on every datagram, §10) followed by the `Persisted` state. Writes are atomic and durable — write a
//! temporary file, fsync it, rename it over the state file, fsync the directory — and complete
//! before any message of the same step is sent (specs/protocol.md §7). A file that exists but
//! cannot be read, has a bad checksum or does not decode stops start-up with an error that
//! names it: a node never silently starts from zero after having voted. Format 1 (before `heard`
//! became durable, specs/protocol.md §3.2) is refused with a message saying so.

use std::fs::{self, File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};

use slotguard_model::Persisted;
use thiserror::Error;

const MAGIC: &[u8] = b"SLOTGUARD-STATE 2\n";
/// The magic line of every format this version does not read.
const OLD_MAGICS: &[(&[u8], u32)] = &[(b"SLOTGUARD-STATE 1\n", 1)];

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
    /// Written by an earlier slotguard, in a format this one does not read.
    #[error("state file {path} has state format {found}, written by an earlier slotguard; this one reads format 2 only — remove the file deliberately to rejoin as a new node")]
    OldFormat {
        /// The file.
        path: PathBuf,
        /// Its format.
        found: u32,
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

    /// The incarnation and persisted state, or `None` if the file does not exist (a new node).
    pub(crate) fn load(&self) -> Result<Option<(u32, Persisted)>, StorageError> {
        let bytes = match fs::read(&self.path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(self.io(e)),
        };
        let corrupt = |why: &str| StorageError::Corrupt {
            path: self.path.clone(),
            why: why.to_string(),
        };
        if let Some(&(_, found)) = OLD_MAGICS.iter().find(|(m, _)| bytes.starts_with(m)) {
            return Err(StorageError::OldFormat {
                path: self.path.clone(),
                found,
            });
        }
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

    /// Writes `incarnation` and `state` atomically and durably.
    pub(crate) fn save(&self, incarnation: u32, state: &Persisted) -> Result<(), StorageError> {
        fs::create_dir_all(&self.dir).map_err(|e| self.io(e))?;
        let payload =
            postcard::to_allocvec(&(incarnation, state)).map_err(|e| StorageError::Corrupt {
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

#[cfg(test)]
mod tests {
    use super::*;
    use slotguard_model::{Layout, NodeId, NodeState};

    fn state_file(name: &str) -> StateFile {
        let dir =
            std::env::temp_dir().join(format!("slotguard-storage-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        StateFile::new(&dir, 0)
    }

    fn persisted() -> Persisted {
        let layout =
            Layout::grid(3, 1, 16384, slotguard_model::InitialEpochs::Distinct).expect("layout");
        NodeState::fresh(&layout, NodeId(0)).persisted()
    }

    #[test]
    fn a_saved_state_loads_back() {
        let f = state_file("roundtrip");
        assert!(f.load().expect("no file yet").is_none());
        let p = persisted();
        f.save(7, &p).expect("save");
        assert_eq!(f.load().expect("load"), Some((7, p)));
    }

    #[test]
    fn a_damaged_or_old_file_is_refused_with_its_name() {
        let f = state_file("refused");
        f.save(0, &persisted()).expect("save");
        let mut bytes = fs::read(f.path()).expect("read");
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        fs::write(f.path(), &bytes).expect("write");
        let err = f.load().expect_err("checksum").to_string();
        assert!(err.contains("checksum mismatch"), "{err}");
        assert!(err.contains(&f.path().display().to_string()), "{err}");

        fs::write(f.path(), b"SLOTGUARD-STATE 1\n\x00\x00\x00\x00old").expect("write");
        let err = f.load().expect_err("old format").to_string();
        assert!(err.contains("state format 1"), "{err}");
        assert!(err.contains(&f.path().display().to_string()), "{err}");
    }
}
