//! The state file's bytes: the encoding of a node's `Save` (specs/protocol.md §10, Effects),
//! without the file.
//!
//! Format: `SLOTGUARD-STATE 3\n` magic line, then a CRC-32 (4 bytes, big-endian) of the
//! payload, then the payload: postcard of the node's name, its peers' names, the node's id, the
//! cluster's identity (wire.rs: `cluster_digest`), the incarnation and the `Persisted` state.
//! Format 2 is the same payload without the name, the peers' names, the id and the cluster.
//!
//! Why apart from the file: the binary's storage (runtime/storage.rs) writes these bytes
//! durably to disk and judges whose file they are; the deterministic simulation (sim/) keeps
//! the same bytes on a simulated disk, so that a simulated restart decodes exactly what a real
//! one would (specs/protocol.md §14).

use slotguard_protocol::Persisted;
use thiserror::Error;

use crate::identity::NodeName;

/// The magic line of format 3.
pub const MAGIC: &[u8] = b"SLOTGUARD-STATE 3\n";
/// Format 2: the same payload without the name (written before nodes had names).
pub const MAGIC_2: &[u8] = b"SLOTGUARD-STATE 2\n";
/// The magic line of every format this version does not read.
const OLD_MAGICS: &[(&[u8], u32)] = &[(b"SLOTGUARD-STATE 1\n", 1)];

/// A format-3 payload: name, peers' names, node id, cluster digest, incarnation, state.
type Record = (
    NodeName,
    Vec<Option<NodeName>>,
    u16,
    [u8; 32],
    u32,
    Persisted,
);

/// Bytes that are not a state file this version reads.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum FormatError {
    /// Written by an earlier slotguard, in a format this one does not read.
    #[error("state format {0}")]
    Old(u32),
    /// Damaged, or not a state file at all.
    #[error("{0}")]
    Corrupt(String),
}

/// What a state file's bytes hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Contents {
    /// The node's name; `None` in format 2.
    pub name: Option<NodeName>,
    /// Its peers' names, by id, as far as learnt (empty in format 2).
    pub peers: Vec<Option<NodeName>>,
    /// The node that wrote it and the digest of its cluster's layout; `None` in format 2.
    pub writer: Option<(u16, [u8; 32])>,
    /// Starts of the node before the one that wrote the file.
    pub incarnation: u32,
    /// The protocol's durable state.
    pub state: Persisted,
}

/// The bytes of a format-3 state file.
pub fn encode(
    name: &NodeName,
    peers: &[Option<NodeName>],
    (id, cluster): (u16, [u8; 32]),
    incarnation: u32,
    state: &Persisted,
) -> Result<Vec<u8>, postcard::Error> {
    let record = (name, peers, id, cluster, incarnation, state);
    let payload = postcard::to_allocvec(&record)?;
    let mut bytes = Vec::with_capacity(MAGIC.len() + 4 + payload.len());
    bytes.extend_from_slice(MAGIC);
    bytes.extend_from_slice(&crc32fast::hash(&payload).to_be_bytes());
    bytes.extend_from_slice(&payload);
    Ok(bytes)
}

/// Reads the bytes of a state file of format 2 or 3.
pub fn decode(bytes: &[u8]) -> Result<Contents, FormatError> {
    let corrupt = |why: &str| FormatError::Corrupt(why.to_string());
    if let Some(&(_, found)) = OLD_MAGICS.iter().find(|(m, _)| bytes.starts_with(m)) {
        return Err(FormatError::Old(found));
    }
    let (named, rest) = match (bytes.strip_prefix(MAGIC), bytes.strip_prefix(MAGIC_2)) {
        (Some(rest), _) => (true, rest),
        (None, Some(rest)) => (false, rest),
        (None, None) => return Err(corrupt("not a slotguard state file, or an unknown version")),
    };
    if rest.len() < 4 {
        return Err(corrupt("truncated"));
    }
    let (crc, payload) = rest.split_at(4);
    let expected = u32::from_be_bytes([crc[0], crc[1], crc[2], crc[3]]);
    if crc32fast::hash(payload) != expected {
        return Err(corrupt("checksum mismatch"));
    }
    let undecodable = |e: postcard::Error| corrupt(&format!("undecodable: {e}"));
    if !named {
        let (incarnation, state) = postcard::from_bytes(payload).map_err(undecodable)?;
        return Ok(Contents {
            name: None,
            peers: Vec::new(),
            writer: None,
            incarnation,
            state,
        });
    }
    let (name, peers, id, cluster, incarnation, state): Record =
        postcard::from_bytes(payload).map_err(undecodable)?;
    Ok(Contents {
        name: Some(name),
        peers,
        writer: Some((id, cluster)),
        incarnation,
        state,
    })
}
