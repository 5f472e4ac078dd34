//! Map publication (the control side) and the front-end's map plumbing in this binary.
//!
//! - [`MapPublisher`]: the maps the control plane has published, each encoded once per version:
//!   the current snapshot frame and a bounded history of delta frames
//!   ([`MAP_DELTA_HISTORY_MAX`]). "Changes after V" is the delta frames after V back to back, or
//!   the snapshot when the history no longer reaches V (or V is not a version it published),
//!   and nothing when V is this publisher's version or newer (a follower that took a newer map
//!   from another voter is never offered an older one); a long poll waits for a version past V
//!   up to a deadline.
//! - [`LocalSource`]: the in-process [`MapSource`] of the embedded node (R5: the front-end runs
//!   the same follower as in a fleet, with N = 1).
//! - [`HttpSource`]: the same over HTTP, from a control plane's admin listener
//!   (`GET /map/snapshot`, `GET /map/deltas?after=V&wait_ms=T`), for fleet front-ends.
//! - [`VfsMapDisk`]: the front-end's [`MapDisk`] — `<data-dir>/map/gen-<version>`, each a
//!   checksummed record written atomically through the storage `Vfs` (so tests inject ENOSPC
//!   and EMFILE with `FaultyVfs`).
//! - [`approve_cmd`]: `levee admin approve-map VERSION`.

use std::collections::VecDeque;
use std::io;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use levee_frontend::backend::BoxFuture;
use levee_frontend::map_follow::{MapDisk, MapSource, SourceError};
use levee_map::codec;
use levee_map::ShardMap;
use levee_storage::vfs::Vfs;

/// Delta frames kept for followers that are behind; older followers get a snapshot.
pub const MAP_DELTA_HISTORY_MAX: usize = 64;
/// The longest a long poll waits on the admin listener (under its 10 s request timeout).
pub const MAP_POLL_WAIT_MS_MAX: u64 = 8_000;
/// Long polls waiting at once on the admin listener (and in the embedded node); more are
/// answered at once (they are told "nothing new" and poll again), so the admin listener always
/// has connections left for `/status` and `/metrics` (F8). The control listener admits its
/// own (`--map-polls-max`, [`MapPublisher::poll_admitted`]).
pub const MAP_LONG_POLLS_MAX: usize = 32;
/// The largest map answer an [`HttpSource`] reads: the same bound as a fleet follower's.
pub use levee_rpc::control::MAP_FEED_BYTES_MAX;

struct Published {
    map: Arc<ShardMap>,
    snapshot: Bytes,
    /// (from version, frame), oldest first, contiguous, ending at `map`'s version.
    deltas: VecDeque<(u64, Bytes)>,
}

/// The control plane's published maps, pre-serialised once per version.
pub struct MapPublisher {
    state: Mutex<Published>,
    version: tokio::sync::watch::Sender<u64>,
    long_polls: tokio::sync::Semaphore,
}

impl MapPublisher {
    pub fn new(map: ShardMap) -> MapPublisher {
        let version = map.version();
        metrics::gauge!("levee_config_limit", "limit" => "map_delta_history")
            .set(MAP_DELTA_HISTORY_MAX as f64);
        metrics::gauge!("levee_config_limit", "limit" => "map_long_polls")
            .set(MAP_LONG_POLLS_MAX as f64);
        MapPublisher {
            state: Mutex::new(Published {
                snapshot: codec::encode_map(&map).into(),
                map: Arc::new(map),
                deltas: VecDeque::new(),
            }),
            version: tokio::sync::watch::channel(version).0,
            long_polls: tokio::sync::Semaphore::new(MAP_LONG_POLLS_MAX),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, Published> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn latest(&self) -> Arc<ShardMap> {
        self.state().map.clone()
    }

    /// Watches the published version.
    pub fn watch_version(&self) -> tokio::sync::watch::Receiver<u64> {
        self.version.subscribe()
    }

    pub fn version(&self) -> u64 {
        *self.version.borrow()
    }

    /// Publishes `next` if it is newer; encodes its snapshot and its delta once.
    pub fn publish(&self, next: ShardMap) -> bool {
        let mut st = self.state();
        if next.version() <= st.map.version() {
            return false;
        }
        let delta = st.map.diff(&next);
        let frame = Bytes::from(codec::encode_delta(&delta));
        st.deltas.push_back((delta.from_version, frame));
        while st.deltas.len() > MAP_DELTA_HISTORY_MAX {
            st.deltas.pop_front();
        }
        st.snapshot = codec::encode_map(&next).into();
        let version = next.version();
        st.map = Arc::new(next);
        metrics::gauge!("levee_control_map_published_version").set(version as f64);
        metrics::gauge!("levee_control_map_snapshot_bytes").set(st.snapshot.len() as f64);
        drop(st);
        self.version.send_replace(version);
        true
    }

    /// The current snapshot frame.
    pub fn snapshot(&self) -> Bytes {
        self.state().snapshot.clone()
    }

    /// The changes after `after` (empty when `after` is the current version, or newer: a
    /// follower ahead of this publisher — a voter still catching up — is not offered an older
    /// map).
    pub fn feed_after(&self, after: u64) -> Bytes {
        let st = self.state();
        if after >= st.map.version() {
            return Bytes::new();
        }
        match st.deltas.iter().position(|(from, _)| *from == after) {
            Some(i) => {
                let frames: Vec<&Bytes> = st.deltas.range(i..).map(|(_, f)| f).collect();
                if frames.len() == 1 {
                    return frames[0].clone();
                }
                let mut out = Vec::with_capacity(frames.iter().map(|f| f.len()).sum());
                for f in frames {
                    out.extend_from_slice(f);
                }
                out.into()
            }
            None => st.snapshot.clone(),
        }
    }

    /// [`MapPublisher::feed_after`], waiting up to `wait` for a change when there is none. At
    /// most [`MAP_LONG_POLLS_MAX`] wait at once; the rest answer at once.
    pub async fn poll(&self, after: u64, wait: Duration) -> Bytes {
        let feed = self.feed_after(after);
        if !feed.is_empty() || wait.is_zero() {
            return feed;
        }
        let Ok(_permit) = self.long_polls.try_acquire() else {
            metrics::counter!("levee_control_map_long_polls_refused_total").increment(1);
            return feed;
        };
        self.poll_admitted(after, wait).await
    }

    /// [`MapPublisher::feed_after`], waiting up to `wait` for a change when there is none,
    /// for a caller that admits its polls itself: the control listener, whose cap
    /// (`--map-polls-max`) answers the excess with 429 so followers back off instead of
    /// polling again at once.
    pub async fn poll_admitted(&self, after: u64, wait: Duration) -> Bytes {
        let mut rx = self.version.subscribe();
        let feed = self.feed_after(after);
        if !feed.is_empty() || wait.is_zero() {
            return feed;
        }
        let _ = tokio::time::timeout(wait, rx.wait_for(|v| *v > after)).await;
        self.feed_after(after)
    }
}

/// The embedded node's map source: the publisher in the same process.
pub struct LocalSource(pub Arc<MapPublisher>);

impl MapSource for LocalSource {
    fn snapshot(&self) -> BoxFuture<Result<Bytes, SourceError>> {
        let s = self.0.snapshot();
        Box::pin(async move { Ok(s) })
    }

    fn deltas(&self, after: u64, wait: Duration) -> BoxFuture<Result<Bytes, SourceError>> {
        let p = self.0.clone();
        Box::pin(async move { Ok(p.poll(after, wait).await) })
    }
}

/// A node's admin map endpoints over HTTP (`base` is its admin listener, `http://host:port`).
/// Only tests use it: fleet nodes follow the control listener through
/// `levee_rpc::control::RemoteMapSource`.
#[allow(dead_code)]
pub struct HttpSource {
    pub base: String,
    /// How long a snapshot fetch may take.
    pub timeout: Duration,
}

#[allow(dead_code)]
impl HttpSource {
    async fn get(url: String, timeout: Duration) -> Result<Bytes, SourceError> {
        let (status, body) = crate::admin::client::request_limited(
            "GET",
            &url,
            "application/octet-stream",
            b"",
            timeout,
            MAP_FEED_BYTES_MAX,
        )
        .await
        .map_err(|e| SourceError(format!("{e:#}")))?;
        if status != 200 {
            return Err(SourceError(format!(
                "{url}: HTTP {status}: {}",
                String::from_utf8_lossy(&body[..body.len().min(200)]).trim()
            )));
        }
        Ok(body.into())
    }
}

impl MapSource for HttpSource {
    fn snapshot(&self) -> BoxFuture<Result<Bytes, SourceError>> {
        Box::pin(Self::get(
            format!("{}/map/snapshot", self.base),
            self.timeout,
        ))
    }

    fn deltas(&self, after: u64, wait: Duration) -> BoxFuture<Result<Bytes, SourceError>> {
        let wait_ms = (wait.as_millis() as u64).min(MAP_POLL_WAIT_MS_MAX);
        let url = format!("{}/map/deltas?after={after}&wait_ms={wait_ms}", self.base);
        Box::pin(Self::get(
            url,
            self.timeout + Duration::from_millis(wait_ms),
        ))
    }
}

/// `<dir>/gen-<version>`: one storage record file per generation.
pub struct VfsMapDisk {
    vfs: Arc<dyn Vfs>,
    dir: PathBuf,
}

const GEN_PREFIX: &str = "gen-";

impl VfsMapDisk {
    pub fn open(vfs: Arc<dyn Vfs>, dir: PathBuf) -> io::Result<VfsMapDisk> {
        vfs.create_dir_all(&dir)?;
        Ok(VfsMapDisk { vfs, dir })
    }

    fn name(version: u64) -> String {
        format!("{GEN_PREFIX}{version:020}")
    }
}

fn io_err(e: levee_storage::Error) -> io::Error {
    io::Error::other(e.to_string())
}

impl MapDisk for VfsMapDisk {
    fn generations(&self) -> io::Result<Vec<u64>> {
        Ok(self
            .vfs
            .list_dir(&self.dir)?
            .iter()
            .filter_map(|n| n.strip_prefix(GEN_PREFIX))
            .filter(|v| v.len() == 20 && v.bytes().all(|b| b.is_ascii_digit()))
            .filter_map(|v| v.parse().ok())
            .collect())
    }

    fn write(&self, version: u64, bytes: &[u8]) -> io::Result<()> {
        levee_storage::record_file::write(&*self.vfs, &self.dir, &Self::name(version), bytes)
            .map_err(io_err)
    }

    fn read(&self, version: u64) -> io::Result<Vec<u8>> {
        levee_storage::record_file::read(&*self.vfs, &self.dir, &Self::name(version))
            .map_err(io_err)?
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))
    }

    fn remove(&self, version: u64) -> io::Result<()> {
        self.vfs.remove_file(&self.dir.join(Self::name(version)))
    }

    fn location(&self) -> String {
        self.dir.display().to_string()
    }
}

/// `levee admin approve-map VERSION`: asks the node to swap in the map it holds.
pub fn approve_cmd(admin: &str, version: u64) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let url = format!(
        "{}/map/approve?version={version}",
        admin.trim_end_matches('/')
    );
    let (status, body) = rt.block_on(crate::admin::client::request(
        "POST",
        &url,
        "text/plain",
        b"",
        Duration::from_secs(30),
    ))?;
    let text = String::from_utf8_lossy(&body).trim().to_owned();
    anyhow::ensure!(status == 200, "{text}");
    println!("{text}");
    Ok(())
}

#[cfg(test)]
#[path = "map_publish_tests.rs"]
mod tests;
