//! The node's state file: the actor's `Save(Persisted)` made durable.
//!
//! Format: `SLOTGUARD-STATE 3\n` magic line, then a CRC-32 (4 bytes, big-endian) of the
//! payload, then the payload: postcard of the node's name (20 bytes chosen at creation,
//! identity.rs), the names of its peers as far as it has learnt them (so that a restarted node
//! shows them at once, as Redis's nodes.conf does), the node's id, the cluster's identity (the digest of its layout that the bus tag also covers,
//! wire.rs), the incarnation (how many times the node has started before, a `u32` the wire
//! stamps on every datagram, §10) and the `Persisted` state. A file of another cluster's layout
//! stops start-up with a message naming it: the handlers index peers and slots by id. Format 2
//! is the same without the name and the cluster: it still loads, without a name, and the
//! runtime gives the node one (and logs it); the next save writes format 3. Writes are atomic and durable — write a
//! temporary file, fsync it, rename it over the state file, fsync the directory — and complete
//! before any message of the same step is sent (specs/protocol.md §7). A file that exists but
//! cannot be read, has a bad checksum or does not decode stops start-up with an error that
//! names it: a node never silently starts from zero after having voted. Format 1 (before `heard`
//! became durable, specs/protocol.md §3.2) is refused with a message saying so. The bytes are
//! the library's (`slotguard::state_file`), which the deterministic simulation shares; this
//! file adds the disk and the judgement of whose file it is.

use std::fs::{self, File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};

use slotguard_protocol::Persisted;
use thiserror::Error;

use slotguard::driver::Save;

use super::identity::NodeName;

use slotguard::state_file::{self as format, Contents, FormatError};
#[cfg(test)]
use slotguard::state_file::{MAGIC, MAGIC_2};

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
    #[error("state file {path} has state format {found}, written by an earlier slotguard; this one reads formats 2 and 3 only — remove the file deliberately to rejoin as a new node")]
    OldFormat {
        /// The file.
        path: PathBuf,
        /// Its format.
        found: u32,
    },
    /// Written by a node of a cluster with another layout.
    #[error("state file {path} belongs to a cluster with another layout (masters, replicas, slots or node list differ){detail}; refusing to start — point data_dir elsewhere or remove the file deliberately to join this cluster as a new node")]
    OtherCluster {
        /// The file.
        path: PathBuf,
        /// What differs, where it is known.
        detail: String,
    },
    /// Written by another node of the cluster (a copied file).
    #[error("state file {path} was written by node {written_by}, not by this node ({me}); refusing to start as another node — a copied file would give two nodes one name and one vote")]
    OtherNode {
        /// The file.
        path: PathBuf,
        /// The node that wrote it.
        written_by: u16,
        /// This node.
        me: u16,
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

/// What a state file holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Loaded {
    /// The node's name; `None` in a file of format 2, written before nodes had names.
    pub(crate) name: Option<NodeName>,
    /// Its peers' names, by id, as far as it had learnt them (empty in format 2).
    pub(crate) peers: Vec<Option<NodeName>>,
    /// Starts of the node before the one that wrote the file.
    pub(crate) incarnation: u32,
    /// The protocol's durable state.
    pub(crate) state: Persisted,
}

/// The state file of one node.
pub(crate) struct StateFile {
    path: PathBuf,
    dir: PathBuf,
    id: u16,
    cluster: [u8; 32],
}

impl StateFile {
    /// The state file of node `id` in `dir`, of the cluster whose layout digest is `cluster`
    /// (wire.rs: `cluster_digest`).
    pub(crate) fn new(dir: &Path, id: u16, cluster: [u8; 32]) -> StateFile {
        StateFile {
            path: dir.join(format!("node-{id}.state")),
            dir: dir.to_path_buf(),
            id,
            cluster,
        }
    }

    /// The error for a file of another cluster.
    pub(crate) fn other_cluster(&self, detail: String) -> StorageError {
        StorageError::OtherCluster {
            path: self.path.clone(),
            detail,
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

    /// The name, incarnation and persisted state, or `None` if the file does not exist (a new
    /// node).
    pub(crate) fn load(&self) -> Result<Option<Loaded>, StorageError> {
        let bytes = match fs::read(&self.path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(self.io(e)),
        };
        let contents = format::decode(&bytes).map_err(|e| match e {
            FormatError::Old(found) => StorageError::OldFormat {
                path: self.path.clone(),
                found,
            },
            FormatError::Corrupt(why) => StorageError::Corrupt {
                path: self.path.clone(),
                why,
            },
        })?;
        let Contents {
            name,
            peers,
            writer,
            incarnation,
            state,
        } = contents;
        if let Some((id, cluster)) = writer {
            if cluster != self.cluster {
                return Err(self.other_cluster(String::new()));
            }
            if id != self.id {
                return Err(StorageError::OtherNode {
                    path: self.path.clone(),
                    written_by: id,
                    me: self.id,
                });
            }
        }
        let loaded = Loaded {
            name,
            peers,
            incarnation,
            state,
        };
        Ok(Some(loaded))
    }

    /// Writes `name`, `incarnation` and `state` atomically and durably.
    pub(crate) fn save(
        &self,
        name: &NodeName,
        peers: &[Option<NodeName>],
        incarnation: u32,
        state: &Persisted,
    ) -> Result<(), StorageError> {
        fs::create_dir_all(&self.dir).map_err(|e| self.io(e))?;
        let bytes = format::encode(name, peers, (self.id, self.cluster), incarnation, state)
            .map_err(|e| StorageError::Corrupt {
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
            f.write_all(&bytes).map_err(|e| self.io(e))?;
            f.sync_all().map_err(|e| self.io(e))?;
        }
        fs::rename(&tmp, &self.path).map_err(|e| self.io(e))?;
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| self.io(e))?;
        Ok(())
    }
}

/// Where the shell writes a step's [`Save`]: the state file, or in tests a recorder. Called on
/// a blocking thread; it returns once the write is durable.
pub(crate) trait Store: Send + Sync {
    /// Writes `save` durably.
    fn write(&self, save: &Save) -> Result<(), StorageError>;
}

impl Store for StateFile {
    fn write(&self, save: &Save) -> Result<(), StorageError> {
        self.save(&save.name, &save.peers, save.incarnation, &save.state)
    }
}

#[cfg(test)]
#[path = "storage_proptests.rs"]
mod proptests;

#[cfg(test)]
mod tests {
    use super::*;
    use slotguard_protocol::{Layout, NodeId, NodeState};

    /// A state file in a new directory, removed when the returned guard is dropped.
    fn state_file() -> (tempfile::TempDir, StateFile) {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let file = StateFile::new(&dir.path().join("data"), 0, [1; 32]);
        (dir, file)
    }

    fn persisted() -> Persisted {
        let layout =
            Layout::grid(3, 1, 16384, slotguard_protocol::InitialEpochs::Distinct).expect("layout");
        NodeState::fresh(&layout, NodeId(0)).persisted()
    }

    #[test]
    fn a_saved_state_loads_back() {
        let (_dir, f) = state_file();
        assert!(f.load().expect("no file yet").is_none());
        let p = persisted();
        let name = NodeName([7; 20]);
        f.save(&name, &[None, Some(NodeName([8; 20]))], 7, &p)
            .expect("save");
        let want = Loaded {
            name: Some(name),
            peers: vec![None, Some(NodeName([8; 20]))],
            incarnation: 7,
            state: p,
        };
        assert_eq!(f.load().expect("load"), Some(want));
    }

    #[test]
    fn a_format_2_file_without_a_name_still_loads() {
        let (_dir, f) = state_file();
        let p = persisted();
        let payload = postcard::to_allocvec(&(4u32, &p)).expect("encodes");
        let mut bytes = MAGIC_2.to_vec();
        bytes.extend_from_slice(&crc32fast::hash(&payload).to_be_bytes());
        bytes.extend_from_slice(&payload);
        fs::create_dir_all(&f.dir).expect("dir");
        fs::write(f.path(), bytes).expect("write");
        let want = Loaded {
            name: None,
            peers: Vec::new(),
            incarnation: 4,
            state: p,
        };
        assert_eq!(f.load().expect("format 2 loads"), Some(want));
    }

    #[test]
    fn a_damaged_or_old_file_is_refused_with_its_name() {
        let (_dir, f) = state_file();
        f.save(&NodeName([0; 20]), &[], 0, &persisted())
            .expect("save");
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

    #[test]
    fn a_file_of_another_node_is_refused_with_its_name() {
        let (_dir, f) = state_file();
        f.save(&NodeName([4; 20]), &[], 0, &persisted())
            .expect("save");
        let copy = f.dir.join("node-1.state");
        fs::copy(f.path(), &copy).expect("copy");
        let other = StateFile::new(&f.dir, 1, [1; 32]);
        let err = other.load().expect_err("another node's file").to_string();
        assert!(err.contains("written by node 0"), "{err}");
        assert!(err.contains(&copy.display().to_string()), "{err}");
    }

    #[test]
    fn a_file_of_another_cluster_is_refused_with_its_name() {
        let (_dir, f) = state_file();
        f.save(&NodeName([3; 20]), &[], 0, &persisted())
            .expect("save");
        let other = StateFile::new(&f.dir, 0, [2; 32]);
        let err = other.load().expect_err("another cluster").to_string();
        assert!(err.contains("another layout"), "{err}");
        assert!(err.contains(&f.path().display().to_string()), "{err}");
    }
}
