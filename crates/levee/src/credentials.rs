//! Stored credentials: access key id → secret and account, managed with
//! `levee credentials create|list|revoke` and read by the server's SigV4 verifier.
//!
//! The file is `<data-dir>/credentials.json`. Ids, names, accounts and creation times are plain;
//! each secret is sealed under the master key (`levee-keys`, outside the data directory) with the
//! key id as associated data, so the data directory alone reveals no secret and a sealed secret
//! cannot be moved to another id. Writers hold `credentials.lock` (an exclusive file lock) for the
//! read-modify-write and replace the file atomically (write, fsync, rename, fsync the directory).
//!
//! A running server picks changes up two ways: a poll of the file's metadata every
//! [`CREDENTIALS_POLL_MS`] (revocations take effect within that), and a reload when a request
//! names an unknown key id, at most once per [`RELOAD_ON_MISS_MIN_MS`] (a new key works at once
//! and unknown-key floods cost no more than that rate of file reads).

use std::collections::HashMap;
use std::fs::File;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{bail, Context};
use base64::Engine as _;
use levee_frontend::auth::{format_amz_date, CredentialSource, Secret};
use levee_keys::Key;
use serde::{Deserialize, Serialize};

/// The credentials file, inside the data directory.
pub const CREDENTIALS_FILE: &str = "credentials.json";
const LOCK_FILE: &str = "credentials.lock";
/// How often a running server checks the credentials file for changes.
pub const CREDENTIALS_POLL_MS: u64 = 1000;
/// The least time between two reloads caused by unknown key ids.
pub const RELOAD_ON_MISS_MIN_MS: u64 = 250;
/// Credentials one data directory holds at most.
pub const CREDENTIALS_MAX: usize = 10_000;
const FILE_VERSION: u32 = 1;

/// One stored credential.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Entry {
    pub id: String,
    pub name: String,
    pub account: String,
    /// `YYYYMMDDTHHMMSSZ`.
    pub created: String,
    /// The secret sealed under the master key (base64), with AAD [`aad`]`(id)`.
    pub sealed_secret: String,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
struct FileBody {
    version: u32,
    /// The master key's fingerprint, to name the problem when another key is configured.
    master_key: String,
    credentials: Vec<Entry>,
}

fn aad(id: &str) -> Vec<u8> {
    format!("levee credential v1\0{id}").into_bytes()
}

pub fn path(data_dir: &Path) -> PathBuf {
    data_dir.join(CREDENTIALS_FILE)
}

/// The stored credentials (no secret is opened); empty if there is no file.
pub fn list(data_dir: &Path) -> anyhow::Result<Vec<Entry>> {
    Ok(read(data_dir)?.map(|b| b.credentials).unwrap_or_default())
}

fn read(data_dir: &Path) -> anyhow::Result<Option<FileBody>> {
    let p = path(data_dir);
    match std::fs::read(&p) {
        Ok(bytes) => {
            let body: FileBody = serde_json::from_slice(&bytes)
                .with_context(|| format!("parsing {}", p.display()))?;
            anyhow::ensure!(
                body.version == FILE_VERSION,
                "{}: unknown version {}",
                p.display(),
                body.version
            );
            Ok(Some(body))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", p.display())),
    }
}

fn write(data_dir: &Path, body: &FileBody) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let p = path(data_dir);
    let tmp = data_dir.join(format!("{CREDENTIALS_FILE}.tmp"));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("creating {}", tmp.display()))?;
    f.write_all(&serde_json::to_vec_pretty(body)?)?;
    f.sync_all()?;
    std::fs::rename(&tmp, &p).with_context(|| format!("replacing {}", p.display()))?;
    levee_storage::vfs::Vfs::sync_dir(&levee_storage::vfs::OsVfs, data_dir)?;
    Ok(())
}

/// Runs `f` on the file's contents under the exclusive writer lock and writes its result.
fn modify<T>(
    data_dir: &Path,
    master_key: &Key,
    f: impl FnOnce(&mut Vec<Entry>) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("creating data directory {}", data_dir.display()))?;
    let lock = File::create(data_dir.join(LOCK_FILE))?;
    lock.lock().context("locking the credentials file")?;
    let mut body = read(data_dir)?.unwrap_or(FileBody {
        version: FILE_VERSION,
        master_key: master_key.fingerprint(),
        credentials: Vec::new(),
    });
    check_key(&body, master_key, data_dir)?;
    let out = f(&mut body.credentials)?;
    write(data_dir, &body)?;
    Ok(out)
}

fn check_key(body: &FileBody, master_key: &Key, data_dir: &Path) -> anyhow::Result<()> {
    if body.master_key != master_key.fingerprint() {
        bail!(
            "{} was sealed under master key {}, but the configured master key is {}",
            path(data_dir).display(),
            body.master_key,
            master_key.fingerprint()
        );
    }
    Ok(())
}

/// A new access key id: `AKIA` and 16 characters of A–Z2–7, as AWS's look.
fn new_key_id() -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let b: [u8; 16] = rand::random();
    let mut id = String::from("AKIA");
    id.extend(b.iter().map(|x| ALPHABET[(x & 31) as usize] as char));
    id
}

/// A new secret: 40 characters (30 random bytes, base64), as AWS's.
fn new_secret() -> String {
    let b: [u8; 30] = rand::random();
    base64::engine::general_purpose::STANDARD.encode(b)
}

/// Creates a credential; returns it and its secret (shown once, never stored in clear).
pub fn create(
    data_dir: &Path,
    master_key: &Key,
    account: &str,
    name: &str,
) -> anyhow::Result<(Entry, String)> {
    anyhow::ensure!(
        account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit()),
        "account id must be 12 digits, got {account:?}"
    );
    modify(data_dir, master_key, |entries| {
        anyhow::ensure!(
            entries.len() < CREDENTIALS_MAX,
            "at most {CREDENTIALS_MAX} credentials per data directory"
        );
        let id = new_key_id();
        let secret = new_secret();
        let entry = Entry {
            id: id.clone(),
            name: name.to_owned(),
            account: account.to_owned(),
            created: format_amz_date(SystemTime::now()),
            sealed_secret: base64::engine::general_purpose::STANDARD
                .encode(master_key.seal(&aad(&id), secret.as_bytes())),
        };
        entries.push(entry.clone());
        Ok((entry, secret))
    })
}

/// Removes credential `id`; an unknown id is an error.
pub fn revoke(data_dir: &Path, master_key: &Key, id: &str) -> anyhow::Result<()> {
    modify(data_dir, master_key, |entries| {
        let before = entries.len();
        entries.retain(|e| e.id != id);
        anyhow::ensure!(entries.len() < before, "no credential {id:?}");
        Ok(())
    })
}

/// Opens every secret of the file (none if there is no file).
fn load(
    data_dir: &Path,
    master_key: &dyn Fn() -> anyhow::Result<Key>,
) -> anyhow::Result<HashMap<String, Arc<Secret>>> {
    let Some(body) = read(data_dir)? else {
        return Ok(HashMap::new());
    };
    if body.credentials.is_empty() {
        return Ok(HashMap::new());
    }
    let key = master_key()?;
    check_key(&body, &key, data_dir)?;
    body.credentials
        .into_iter()
        .map(|e| {
            let sealed = base64::engine::general_purpose::STANDARD
                .decode(&e.sealed_secret)
                .with_context(|| format!("credential {}: bad sealed secret", e.id))?;
            let secret = key
                .open(&aad(&e.id), &sealed)
                .map_err(|_| anyhow::anyhow!("credential {}: cannot open its secret", e.id))?;
            let secret = String::from_utf8(secret)
                .with_context(|| format!("credential {}: secret not UTF-8", e.id))?;
            Ok((
                e.id,
                Arc::new(Secret {
                    secret,
                    account: e.account,
                    name: e.name,
                }),
            ))
        })
        .collect()
}

/// What identifies one version of the file, from its metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
    inode: u64,
}

fn stamp(data_dir: &Path) -> Option<Stamp> {
    use std::os::unix::fs::MetadataExt as _;
    std::fs::metadata(path(data_dir)).ok().map(|m| Stamp {
        modified: m.modified().ok(),
        len: m.len(),
        inode: m.ino(),
    })
}

/// The server's view of the credentials: opened secrets, reloaded when the file changes.
pub struct Store {
    data_dir: PathBuf,
    master_key_file: PathBuf,
    master_key: OnceLock<Key>,
    secrets: RwLock<Arc<HashMap<String, Arc<Secret>>>>,
    /// The file version loaded, and when a reload was last tried.
    state: Mutex<(Option<Stamp>, Instant)>,
}

impl Store {
    /// Loads the credentials of `data_dir`; the master key is read only if some exist.
    pub fn open(data_dir: &Path, master_key_file: &Path) -> anyhow::Result<Arc<Store>> {
        let store = Store {
            data_dir: data_dir.to_owned(),
            master_key_file: master_key_file.to_owned(),
            master_key: OnceLock::new(),
            secrets: RwLock::new(Arc::new(HashMap::new())),
            state: Mutex::new((None, Instant::now())),
        };
        store.reload()?;
        Ok(Arc::new(store))
    }

    /// How many credentials are loaded.
    pub fn len(&self) -> usize {
        self.secrets.read().unwrap_or_else(|e| e.into_inner()).len()
    }

    fn key(&self) -> anyhow::Result<Key> {
        if let Some(k) = self.master_key.get() {
            return Ok(k.clone());
        }
        let k = levee_keys::load_master_key(&self.master_key_file).with_context(|| {
            format!(
                "loading the master key {} to open stored credentials",
                self.master_key_file.display()
            )
        })?;
        Ok(self.master_key.get_or_init(|| k).clone())
    }

    /// Reads the file again if its metadata changed.
    fn reload(&self) -> anyhow::Result<()> {
        let now_stamp = stamp(&self.data_dir);
        {
            let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
            st.1 = Instant::now();
            if st.0 == now_stamp && now_stamp.is_some() {
                return Ok(());
            }
        }
        let secrets = load(&self.data_dir, &|| self.key())?;
        let n = secrets.len();
        *self.secrets.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(secrets);
        self.state.lock().unwrap_or_else(|e| e.into_inner()).0 = now_stamp;
        metrics::gauge!("levee_auth_credentials").set(n as f64);
        tracing::debug!(credentials = n, "credentials loaded");
        Ok(())
    }

    fn reload_logged(&self) {
        if let Err(e) = self.reload() {
            tracing::error!(error = %format!("{e:#}"), "cannot reload credentials; keeping the last good set");
        }
    }

    /// Polls the file every [`CREDENTIALS_POLL_MS`] until the runtime stops.
    pub fn watch(self: &Arc<Self>) {
        let this = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(CREDENTIALS_POLL_MS));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(store) = this.upgrade() else { return };
                store.reload_logged();
            }
        });
    }
}

impl CredentialSource for Store {
    fn lookup(&self, key_id: &str) -> Option<Arc<Secret>> {
        let get = || {
            self.secrets
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .get(key_id)
                .cloned()
        };
        if let Some(s) = get() {
            return Some(s);
        }
        let due = {
            let st = self.state.lock().unwrap_or_else(|e| e.into_inner());
            st.1.elapsed() >= Duration::from_millis(RELOAD_ON_MISS_MIN_MS)
        };
        if due {
            metrics::counter!("levee_auth_credential_reloads_total", "cause" => "unknown_key")
                .increment(1);
            self.reload_logged();
            return get();
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_list_revoke_and_no_secret_in_the_data_directory() {
        let dir = tempfile::tempdir().unwrap();
        let keydir = tempfile::tempdir().unwrap();
        let key_file = keydir.path().join("master.key");
        let key = levee_keys::load_or_create_master_key(&key_file).unwrap();
        assert!(list(dir.path()).unwrap().is_empty());
        let (a, secret_a) = create(dir.path(), &key, "111122223333", "alice").unwrap();
        let (b, secret_b) = create(dir.path(), &key, "111122223333", "bob").unwrap();
        assert_eq!(a.id.len(), 20);
        assert_eq!(secret_a.len(), 40);
        let ids: Vec<_> = list(dir.path())
            .unwrap()
            .into_iter()
            .map(|e| e.id)
            .collect();
        assert_eq!(ids, vec![a.id.clone(), b.id.clone()]);
        // No file in the data directory holds a secret in clear.
        for f in std::fs::read_dir(dir.path()).unwrap() {
            let bytes = std::fs::read(f.unwrap().path()).unwrap();
            let text = String::from_utf8_lossy(&bytes);
            assert!(!text.contains(&secret_a) && !text.contains(&secret_b));
        }
        let store = Store::open(dir.path(), &key_file).unwrap();
        assert_eq!(store.lookup(&a.id).unwrap().secret, secret_a);
        assert_eq!(store.lookup(&b.id).unwrap().account, "111122223333");
        revoke(dir.path(), &key, &a.id).unwrap();
        assert!(revoke(dir.path(), &key, &a.id).is_err());
        store.reload().unwrap();
        assert!(store.lookup(&a.id).is_none());
        assert_eq!(store.lookup(&b.id).unwrap().secret, secret_b);
        // Another master key cannot open the file.
        let other = Key::generate();
        let err = create(dir.path(), &other, "111122223333", "eve").unwrap_err();
        assert!(err.to_string().contains("sealed under master key"), "{err}");
    }

    #[test]
    fn a_sealed_secret_moved_to_another_id_does_not_open() {
        let dir = tempfile::tempdir().unwrap();
        let keydir = tempfile::tempdir().unwrap();
        let key_file = keydir.path().join("master.key");
        let key = levee_keys::load_or_create_master_key(&key_file).unwrap();
        create(dir.path(), &key, "111122223333", "a").unwrap();
        create(dir.path(), &key, "111122223333", "b").unwrap();
        let mut body = read(dir.path()).unwrap().unwrap();
        let s0 = body.credentials[0].sealed_secret.clone();
        body.credentials[1].sealed_secret = s0;
        write(dir.path(), &body).unwrap();
        let err = Store::open(dir.path(), &key_file).err().unwrap();
        assert!(
            format!("{err:#}").contains("cannot open its secret"),
            "{err:#}"
        );
    }
}
