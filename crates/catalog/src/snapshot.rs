//! Snapshot bytes: the catalog state framed and checksummed, so that a damaged snapshot is refused
//! rather than half-loaded (design rule F3).
//!
//! Layout (integers little-endian):
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 4 | magic `"LVCS"` |
//! | 4 | 4 | format version, 1 |
//! | 8 | 8 | payload length |
//! | 16 | … | payload: the state as JSON (`serde_json`; maps are sorted, so the bytes are canonical) |
//! | 16 + len | 4 | CRC32C of every byte before it |

use crate::CatalogState;

const MAGIC: [u8; 4] = *b"LVCS";
const FORMAT_VERSION: u32 = 1;
const HEADER_BYTES: usize = 16;
const TRAILER_BYTES: usize = 4;

/// Why snapshot bytes were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotError {
    #[error("snapshot is {len} bytes, shorter than its framing")]
    TooShort { len: usize },
    #[error("snapshot magic is not LVCS")]
    BadMagic,
    #[error("snapshot format version {0} is not supported")]
    UnsupportedVersion(u32),
    #[error("snapshot payload length {claimed} does not match the {actual} bytes present")]
    Length { claimed: u64, actual: usize },
    #[error("snapshot checksum {got:08x} does not match {want:08x}")]
    Checksum { want: u32, got: u32 },
    #[error("snapshot payload does not decode: {0}")]
    Decode(String),
    #[error("snapshot payload does not encode: {0}")]
    Encode(String),
    #[error("snapshot state is invalid: {0}")]
    Invalid(String),
}

pub(crate) fn encode(state: &CatalogState) -> Result<Vec<u8>, SnapshotError> {
    let payload = serde_json::to_vec(state).map_err(|e| SnapshotError::Encode(e.to_string()))?;
    let mut out = Vec::with_capacity(HEADER_BYTES + payload.len() + TRAILER_BYTES);
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    out.extend_from_slice(&payload);
    let crc = crc32c::crc32c(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    Ok(out)
}

pub(crate) fn decode(bytes: &[u8]) -> Result<CatalogState, SnapshotError> {
    let too_short = SnapshotError::TooShort { len: bytes.len() };
    if bytes.len() < HEADER_BYTES + TRAILER_BYTES {
        return Err(too_short);
    }
    let (body, trailer) = bytes.split_at(bytes.len() - TRAILER_BYTES);
    let want = u32::from_le_bytes(array(trailer).ok_or(too_short.clone())?);
    let got = crc32c::crc32c(body);
    if want != got {
        return Err(SnapshotError::Checksum { want, got });
    }
    let (header, payload) = body.split_at(HEADER_BYTES);
    if header.get(0..4) != Some(&MAGIC[..]) {
        return Err(SnapshotError::BadMagic);
    }
    let version = u32::from_le_bytes(header.get(4..8).and_then(array).ok_or(too_short.clone())?);
    if version != FORMAT_VERSION {
        return Err(SnapshotError::UnsupportedVersion(version));
    }
    let claimed = u64::from_le_bytes(header.get(8..16).and_then(array).ok_or(too_short)?);
    if usize::try_from(claimed).ok() != Some(payload.len()) {
        return Err(SnapshotError::Length {
            claimed,
            actual: payload.len(),
        });
    }
    serde_json::from_slice(payload).map_err(|e| SnapshotError::Decode(e.to_string()))
}

fn array<const N: usize>(b: &[u8]) -> Option<[u8; N]> {
    b.try_into().ok()
}
