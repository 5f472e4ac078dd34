//! Small durable records: one file holding one CRC-protected body, replaced atomically.
//!
//! Raft needs a few values to be durable outside the log (the vote, the committed and the last
//! purged log id, the state machine's snapshot). Each is written whole as `<name>.tmp`, synced,
//! renamed over `<name>`, and the directory synced, so a crash leaves either the old record or
//! the new one, never a mixture. A record that fails its checksum is an error, never skipped:
//! after a complete rename it can only be damage.
//!
//! Format (integers little-endian):
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 4 | magic `"LVRC"` |
//! | 4 | 4 | format version (1) |
//! | 8 | 8 | body length in bytes |
//! | 16 | n | body |
//! | 16 + n | 4 | CRC32C of bytes `0..16 + n` |

use std::path::Path;

use crate::codec::{u32_at, u64_at, PutLe};
use crate::error::{Error, Result};
use crate::vfs::Vfs;

const RECORD_MAGIC: u32 = u32::from_le_bytes(*b"LVRC");
const RECORD_VERSION: u32 = 1;
const RECORD_HEADER_BYTES: u64 = 16;
const RECORD_CRC_BYTES: u64 = 4;
/// Largest body a record may hold (a catalog snapshot is the biggest user).
pub const RECORD_BODY_BYTES_MAX: u64 = 1 << 30;

/// Writes `body` as the record `dir/name`, durably and atomically.
pub fn write(vfs: &dyn Vfs, dir: &Path, name: &str, body: &[u8]) -> Result<()> {
    if body.len() as u64 > RECORD_BODY_BYTES_MAX {
        return Err(Error::EntryTooLarge {
            size_bytes: body.len() as u64,
            limit_bytes: RECORD_BODY_BYTES_MAX,
        });
    }
    let mut bytes =
        Vec::with_capacity(body.len() + (RECORD_HEADER_BYTES + RECORD_CRC_BYTES) as usize);
    bytes.put_u32(RECORD_MAGIC);
    bytes.put_u32(RECORD_VERSION);
    bytes.put_u64(body.len() as u64);
    bytes.extend_from_slice(body);
    let crc = crc32c::crc32c(&bytes);
    bytes.put_u32(crc);
    let tmp = dir.join(format!("{name}.tmp"));
    let path = dir.join(name);
    let file = vfs
        .create(&tmp)
        .map_err(|e| Error::io("create record", &tmp, e))?;
    file.write_all_at(&bytes, 0)
        .map_err(|e| Error::io("write record", &tmp, e))?;
    file.sync_data()
        .map_err(|e| Error::io("fdatasync", &tmp, e))?;
    drop(file);
    vfs.rename(&tmp, &path)
        .map_err(|e| Error::io("rename record", &tmp, e))?;
    vfs.sync_dir(dir)
        .map_err(|e| Error::io("sync directory", dir, e))?;
    Ok(())
}

/// Reads the record `dir/name`: `None` if there is none, an error if it is damaged.
pub fn read(vfs: &dyn Vfs, dir: &Path, name: &str) -> Result<Option<Vec<u8>>> {
    let path = dir.join(name);
    if !vfs.exists(&path) {
        return Ok(None);
    }
    let len = vfs
        .file_len(&path)
        .map_err(|e| Error::io("stat record", &path, e))?;
    if len > RECORD_BODY_BYTES_MAX + RECORD_HEADER_BYTES + RECORD_CRC_BYTES {
        return Err(Error::corrupt(
            &path,
            0,
            format!("record of {len} bytes is too large"),
        ));
    }
    let file = vfs
        .open(&path)
        .map_err(|e| Error::io("open record", &path, e))?;
    let mut bytes = vec![0u8; len as usize];
    let n = file
        .read_full_at(&mut bytes, 0)
        .map_err(|e| Error::io("read record", &path, e))?;
    bytes.truncate(n);
    let corrupt = |detail: &str| Error::corrupt(&path, 0, detail.to_string());
    if u32_at(&bytes, 0) != Some(RECORD_MAGIC) || u32_at(&bytes, 4) != Some(RECORD_VERSION) {
        return Err(corrupt("bad record magic or version"));
    }
    let body_len = u64_at(&bytes, 8).ok_or_else(|| corrupt("short record header"))?;
    if body_len + RECORD_HEADER_BYTES + RECORD_CRC_BYTES != bytes.len() as u64 {
        return Err(corrupt("record length does not match its file"));
    }
    let crc_at = (RECORD_HEADER_BYTES + body_len) as usize;
    let stored = u32_at(&bytes, crc_at).ok_or_else(|| corrupt("short record"))?;
    let covered = bytes.get(..crc_at).ok_or_else(|| corrupt("short record"))?;
    if crc32c::crc32c(covered) != stored {
        return Err(corrupt("record checksum mismatch"));
    }
    Ok(covered
        .get(RECORD_HEADER_BYTES as usize..)
        .map(<[u8]>::to_vec))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vfs::OsVfs;

    #[test]
    fn records_round_trip_and_damage_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read(&OsVfs, dir.path(), "meta").unwrap(), None);
        write(&OsVfs, dir.path(), "meta", b"hello").unwrap();
        write(&OsVfs, dir.path(), "meta", b"hello, again").unwrap();
        assert_eq!(
            read(&OsVfs, dir.path(), "meta").unwrap().as_deref(),
            Some(&b"hello, again"[..])
        );
        let path = dir.path().join("meta");
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[17] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        assert!(matches!(
            read(&OsVfs, dir.path(), "meta"),
            Err(Error::Corrupt { .. })
        ));
        std::fs::write(&path, &bytes[..10]).unwrap();
        assert!(read(&OsVfs, dir.path(), "meta").is_err());
    }
}
