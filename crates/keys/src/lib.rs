//! Keys at rest. A **master key** (32 random bytes in a file kept *outside* the data directory)
//! wraps everything secret that Levee writes to disk: per-stream data keys for encryption at rest
//! and stored credentials. A **data key** encrypts records. Both seal with XChaCha20-Poly1305: a
//! random 24-byte nonce per message (safe to pick at random at any volume Levee will see), and
//! associated data that binds a ciphertext to where it belongs (a stream, a credential id), so a
//! sealed value copied to another place does not open.
//!
//! Sealed layout: `version (1 byte = 1) ‖ nonce (24) ‖ ciphertext ‖ tag (16)`.

use std::fmt;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore as _;
use sha2::{Digest as _, Sha256};

/// Bytes in a key.
pub const KEY_BYTES: usize = 32;
const NONCE_BYTES: usize = 24;
const TAG_BYTES: usize = 16;
const SEALED_VERSION: u8 = 1;
/// Bytes a sealed value adds to its plaintext.
pub const SEAL_OVERHEAD: usize = 1 + NONCE_BYTES + TAG_BYTES;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("master key file {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("master key file {path} holds {len} bytes, expected {KEY_BYTES}")]
    BadLength { path: PathBuf, len: usize },
    #[error("sealed value is malformed or was not sealed with this key and context")]
    Open,
}

/// A 256-bit AEAD key. Its bytes never appear in `Debug` output.
#[derive(Clone)]
pub struct Key {
    bytes: [u8; KEY_BYTES],
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Key({})", self.fingerprint())
    }
}

impl Key {
    /// A fresh random key.
    pub fn generate() -> Key {
        let mut bytes = [0u8; KEY_BYTES];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        Key { bytes }
    }

    pub fn from_bytes(bytes: [u8; KEY_BYTES]) -> Key {
        Key { bytes }
    }

    /// A short public identifier of the key (first 8 bytes of SHA-256 over a label and the key,
    /// hex): names the key in logs and metadata without revealing it.
    pub fn fingerprint(&self) -> String {
        let mut h = Sha256::new();
        h.update(b"levee-key-fingerprint\0");
        h.update(self.bytes);
        h.finalize()[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// A key derived from this one for one purpose (SHA-256 over a label, the purpose and the
    /// key): the same master key gives every node of a fleet the same derived key, and the
    /// derived key reveals nothing about the master.
    pub fn derive(&self, purpose: &str) -> [u8; KEY_BYTES] {
        let mut h = Sha256::new();
        h.update(b"levee-key-derive\0");
        h.update((purpose.len() as u64).to_le_bytes());
        h.update(purpose.as_bytes());
        h.update(self.bytes);
        h.finalize().into()
    }

    /// Encrypts and authenticates `plaintext`, bound to `aad`.
    pub fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_BYTES];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let cipher = XChaCha20Poly1305::new((&self.bytes).into());
        let ct = cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad,
                },
            )
            .expect("XChaCha20-Poly1305 encryption cannot fail for in-memory buffers");
        let mut out = Vec::with_capacity(SEAL_OVERHEAD + plaintext.len());
        out.push(SEALED_VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        out
    }

    /// Opens a value sealed by [`Key::seal`] with the same key and `aad`.
    pub fn open(&self, aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, KeyError> {
        if sealed.len() < SEAL_OVERHEAD || sealed[0] != SEALED_VERSION {
            return Err(KeyError::Open);
        }
        let nonce = XNonce::from_slice(&sealed[1..1 + NONCE_BYTES]);
        let cipher = XChaCha20Poly1305::new((&self.bytes).into());
        cipher
            .decrypt(
                nonce,
                Payload {
                    msg: &sealed[1 + NONCE_BYTES..],
                    aad,
                },
            )
            .map_err(|_| KeyError::Open)
    }

    /// Seals another key under this one (wrapping a data key under the master key).
    pub fn wrap(&self, aad: &[u8], key: &Key) -> Vec<u8> {
        self.seal(aad, &key.bytes)
    }

    /// Opens a key wrapped by [`Key::wrap`].
    pub fn unwrap_key(&self, aad: &[u8], wrapped: &[u8]) -> Result<Key, KeyError> {
        let bytes = self.open(aad, wrapped)?;
        let bytes: [u8; KEY_BYTES] = bytes.try_into().map_err(|_| KeyError::Open)?;
        Ok(Key { bytes })
    }
}

/// The default master key file: `$XDG_CONFIG_HOME/levee/master.key`, else
/// `$HOME/.config/levee/master.key` — outside any data directory, so a copy of the data
/// directory alone reveals no secret.
pub fn default_master_key_path() -> PathBuf {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
        .unwrap_or_else(|| PathBuf::from("."));
    base.join("levee").join("master.key")
}

/// Loads the master key from `path` (exactly 32 raw bytes).
pub fn load_master_key(path: &Path) -> Result<Key, KeyError> {
    let io = |source| KeyError::Io {
        path: path.to_owned(),
        source,
    };
    let bytes = std::fs::read(path).map_err(io)?;
    let bytes: [u8; KEY_BYTES] = bytes.try_into().map_err(|b: Vec<u8>| KeyError::BadLength {
        path: path.to_owned(),
        len: b.len(),
    })?;
    Ok(Key { bytes })
}

/// Loads the master key from `path`, creating it (mode 0600, parent directories 0700) with a
/// fresh random key if the file does not exist.
pub fn load_or_create_master_key(path: &Path) -> Result<Key, KeyError> {
    use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
    let io = |source| KeyError::Io {
        path: path.to_owned(),
        source,
    };
    match load_master_key(path) {
        Err(KeyError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {}
        other => return other,
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(io)?;
    }
    let key = Key::generate();
    // Write to a temporary name and link into place, so two processes racing to create the key
    // agree on one (the loser loads the winner's).
    let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(io)?;
    f.write_all(&key.bytes).map_err(io)?;
    f.sync_all().map_err(io)?;
    drop(f);
    let linked = std::fs::hard_link(&tmp, path);
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => Ok(key),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => load_master_key(path),
        Err(e) => Err(io(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_keys_are_stable_per_key_and_purpose() {
        let k = Key::from_bytes([7; KEY_BYTES]);
        assert_eq!(k.derive("a"), Key::from_bytes([7; KEY_BYTES]).derive("a"));
        assert_ne!(k.derive("a"), k.derive("b"));
        assert_ne!(k.derive("a"), Key::from_bytes([8; KEY_BYTES]).derive("a"));
        assert_ne!(k.derive("a"), [7; KEY_BYTES]);
    }

    #[test]
    fn seal_open_round_trip_and_binding() {
        let k = Key::generate();
        let s = k.seal(b"stream/a", b"hello");
        assert_eq!(s.len(), 5 + SEAL_OVERHEAD);
        assert_eq!(k.open(b"stream/a", &s).unwrap(), b"hello");
        assert!(k.open(b"stream/b", &s).is_err(), "aad binds the value");
        assert!(Key::generate().open(b"stream/a", &s).is_err());
        let mut t = s.clone();
        *t.last_mut().unwrap() ^= 1;
        assert!(k.open(b"stream/a", &t).is_err(), "tampering is detected");
        assert!(k.open(b"", &[]).is_err());
    }

    #[test]
    fn wrap_unwrap() {
        let master = Key::generate();
        let data = Key::generate();
        let w = master.wrap(b"s", &data);
        assert_eq!(
            master.unwrap_key(b"s", &w).unwrap().fingerprint(),
            data.fingerprint()
        );
        let hex: String = data.bytes.iter().map(|b| format!("{b:02x}")).collect();
        assert!(
            !format!("{data:?}").contains(&hex),
            "Debug never shows key bytes"
        );
    }

    #[test]
    fn master_key_file_is_created_once_with_mode_0600() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("conf/levee/master.key");
        let a = load_or_create_master_key(&path).unwrap();
        let b = load_or_create_master_key(&path).unwrap();
        assert_eq!(a.fingerprint(), b.fingerprint());
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        std::fs::write(&path, b"short").unwrap();
        assert!(matches!(
            load_master_key(&path),
            Err(KeyError::BadLength { len: 5, .. })
        ));
    }
}
