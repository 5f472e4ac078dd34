//! All file I/O of the storage engine goes through the [`Vfs`] / [`VFile`] traits, so that tests
//! can inject faults ([`FaultyVfs`]: ENOSPC or EIO at the n-th write or sync) and count what
//! recovery reads ([`VfsStats`]), while production uses the operating system ([`OsVfs`]).
//!
//! Files are addressed by absolute offset (`pread`/`pwrite`), never by a shared cursor, so one
//! open file can be read by many threads while the single writer appends.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::os::unix::io::AsRawFd;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

/// An open file: positional reads and writes, syncs and size changes.
pub trait VFile: Send + Sync + 'static {
    /// Reads up to `buf.len()` bytes at `offset`; returns the number read (0 at end of file).
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize>;
    /// Writes all of `buf` at `offset`.
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()>;
    /// Makes written data durable (`fdatasync`).
    fn sync_data(&self) -> io::Result<()>;
    fn len(&self) -> io::Result<u64>;
    fn set_len(&self, len: u64) -> io::Result<()>;

    fn is_empty(&self) -> io::Result<bool> {
        Ok(self.len()? == 0)
    }

    /// Reads until `buf` is full or the file ends; returns the number of bytes read.
    fn read_full_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let mut done = 0;
        while done < buf.len() {
            let n = self.read_at(&mut buf[done..], offset + done as u64)?;
            if n == 0 {
                break;
            }
            done += n;
        }
        Ok(done)
    }
}

/// A file system: opening, listing, renaming and removing files.
pub trait Vfs: Send + Sync + 'static {
    /// Opens an existing file for reading and writing.
    fn open(&self, path: &Path) -> io::Result<Arc<dyn VFile>>;
    /// Creates (or truncates) a file for reading and writing.
    fn create(&self, path: &Path) -> io::Result<Arc<dyn VFile>>;
    fn remove_file(&self, path: &Path) -> io::Result<()>;
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    fn create_dir_all(&self, path: &Path) -> io::Result<()>;
    fn remove_dir_all(&self, path: &Path) -> io::Result<()>;
    /// The names of the entries of a directory, unsorted.
    fn list_dir(&self, path: &Path) -> io::Result<Vec<String>>;
    /// Makes a directory's entries (creations, renames, removals) durable.
    fn sync_dir(&self, path: &Path) -> io::Result<()>;
    fn exists(&self, path: &Path) -> bool;
    /// The size of a file in bytes, from its metadata (reads no data).
    fn file_len(&self, path: &Path) -> io::Result<u64>;
}

/// The operating system's file system.
#[derive(Debug, Default, Clone, Copy)]
pub struct OsVfs;

struct OsFile(File);

impl VFile for OsFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        loop {
            match self.0.read_at(buf, offset) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                r => return r,
            }
        }
    }
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.0.write_all_at(buf, offset)
    }
    fn sync_data(&self) -> io::Result<()> {
        self.0.sync_data()
    }
    fn len(&self) -> io::Result<u64> {
        Ok(self.0.metadata()?.len())
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.0.set_len(len)
    }
}

impl Vfs for OsVfs {
    fn open(&self, path: &Path) -> io::Result<Arc<dyn VFile>> {
        let f = OpenOptions::new().read(true).write(true).open(path)?;
        Ok(Arc::new(OsFile(f)))
    }
    fn create(&self, path: &Path) -> io::Result<Arc<dyn VFile>> {
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)?;
        Ok(Arc::new(OsFile(f)))
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_file(path)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        std::fs::rename(from, to)
    }
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        std::fs::create_dir_all(path)
    }
    fn remove_dir_all(&self, path: &Path) -> io::Result<()> {
        match std::fs::remove_dir_all(path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            r => r,
        }
    }
    fn list_dir(&self, path: &Path) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(path)? {
            if let Some(name) = entry?.file_name().to_str() {
                names.push(name.to_owned());
            }
        }
        Ok(names)
    }
    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        let dir = File::open(path)?;
        // SAFETY: `dir` is an open file descriptor for the duration of the call.
        let rc = unsafe { libc::fsync(dir.as_raw_fd()) };
        if rc == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }
    fn exists(&self, path: &Path) -> bool {
        path.exists()
    }
    fn file_len(&self, path: &Path) -> io::Result<u64> {
        Ok(std::fs::metadata(path)?.len())
    }
}

/// Counters of what went through a [`FaultyVfs`].
#[derive(Debug, Default)]
pub struct VfsStats {
    pub bytes_read: AtomicU64,
    pub bytes_written: AtomicU64,
    /// Write-kind operations (writes, `set_len`, creates, renames), attempted.
    pub writes: AtomicU64,
    /// Sync-kind operations (file and directory syncs), attempted.
    pub syncs: AtomicU64,
}

/// Which operation a fault is injected into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultOp {
    /// `write_all_at` and `set_len`.
    Write,
    /// `sync_data` and `sync_dir`.
    Sync,
}

#[derive(Debug, Clone, Copy)]
struct Fault {
    op: FaultOp,
    /// Zero-based index of the first operation of that kind to fail, counted from when the fault
    /// was armed.
    at: u64,
    errno: i32,
    /// Whether every later operation of that kind fails too (a full disk stays full).
    sticky: bool,
}

/// A [`Vfs`] over the real file system that counts operations and can fail the n-th write or
/// sync with a chosen errno. Used by the fault-injection tests and to measure recovery reads.
pub struct FaultyVfs {
    inner: OsVfs,
    state: Arc<FaultState>,
}

#[derive(Default)]
struct FaultState {
    stats: VfsStats,
    fault: Mutex<Option<(Fault, u64)>>,
}

impl FaultState {
    /// Counts one operation of kind `op` (every place a fault of that kind can be injected) and
    /// fails it if a fault is armed for it.
    fn check(&self, op: FaultOp) -> io::Result<()> {
        match op {
            FaultOp::Write => self.stats.writes.fetch_add(1, Ordering::Relaxed),
            FaultOp::Sync => self.stats.syncs.fetch_add(1, Ordering::Relaxed),
        };
        let mut guard = self.fault.lock();
        if let Some((fault, seen)) = guard.as_mut() {
            if fault.op == op {
                let index = *seen;
                *seen += 1;
                if index == fault.at || (fault.sticky && index > fault.at) {
                    return Err(io::Error::from_raw_os_error(fault.errno));
                }
            }
        }
        Ok(())
    }
}

impl Default for FaultyVfs {
    fn default() -> Self {
        Self::new()
    }
}

impl FaultyVfs {
    pub fn new() -> Self {
        Self {
            inner: OsVfs,
            state: Arc::new(FaultState::default()),
        }
    }

    pub fn stats(&self) -> &VfsStats {
        &self.state.stats
    }

    /// From now on, the `at`-th (zero-based) operation of kind `op` fails with `errno`; with
    /// `sticky`, so does every later one until [`FaultyVfs::clear`].
    pub fn arm(&self, op: FaultOp, at: u64, errno: i32, sticky: bool) {
        *self.state.fault.lock() = Some((
            Fault {
                op,
                at,
                errno,
                sticky,
            },
            0,
        ));
    }

    /// Removes any armed fault.
    pub fn clear(&self) {
        *self.state.fault.lock() = None;
    }

    /// Whether an armed fault has fired at least once.
    pub fn fired(&self) -> bool {
        self.state
            .fault
            .lock()
            .as_ref()
            .is_some_and(|(f, seen)| *seen > f.at)
    }
}

struct FaultyFile {
    inner: Arc<dyn VFile>,
    state: Arc<FaultState>,
}

impl VFile for FaultyFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let n = self.inner.read_at(buf, offset)?;
        self.state
            .stats
            .bytes_read
            .fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.state.check(FaultOp::Write)?;
        self.state
            .stats
            .bytes_written
            .fetch_add(buf.len() as u64, Ordering::Relaxed);
        self.inner.write_all_at(buf, offset)
    }
    fn sync_data(&self) -> io::Result<()> {
        self.state.check(FaultOp::Sync)?;
        self.inner.sync_data()
    }
    fn len(&self) -> io::Result<u64> {
        self.inner.len()
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.state.check(FaultOp::Write)?;
        self.inner.set_len(len)
    }
}

impl Vfs for FaultyVfs {
    fn open(&self, path: &Path) -> io::Result<Arc<dyn VFile>> {
        Ok(Arc::new(FaultyFile {
            inner: self.inner.open(path)?,
            state: self.state.clone(),
        }))
    }
    fn create(&self, path: &Path) -> io::Result<Arc<dyn VFile>> {
        self.state.check(FaultOp::Write)?;
        Ok(Arc::new(FaultyFile {
            inner: self.inner.create(path)?,
            state: self.state.clone(),
        }))
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        self.inner.remove_file(path)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.state.check(FaultOp::Write)?;
        self.inner.rename(from, to)
    }
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        self.inner.create_dir_all(path)
    }
    fn remove_dir_all(&self, path: &Path) -> io::Result<()> {
        self.inner.remove_dir_all(path)
    }
    fn list_dir(&self, path: &Path) -> io::Result<Vec<String>> {
        self.inner.list_dir(path)
    }
    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        self.state.check(FaultOp::Sync)?;
        self.inner.sync_dir(path)
    }
    fn exists(&self, path: &Path) -> bool {
        self.inner.exists(path)
    }
    fn file_len(&self, path: &Path) -> io::Result<u64> {
        self.inner.file_len(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faulty_vfs_fails_the_nth_write_once() {
        let dir = tempfile::tempdir().unwrap();
        let vfs = FaultyVfs::new();
        let f = vfs.create(&dir.path().join("a")).unwrap();
        vfs.arm(FaultOp::Write, 1, libc::ENOSPC, false);
        f.write_all_at(b"one", 0).unwrap();
        let err = f.write_all_at(b"two", 3).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ENOSPC));
        assert!(vfs.fired());
        f.write_all_at(b"three", 3).unwrap();
        let mut buf = [0u8; 8];
        assert_eq!(f.read_full_at(&mut buf, 0).unwrap(), 8);
        assert_eq!(&buf, b"onethree");
        assert_eq!(vfs.stats().bytes_read.load(Ordering::Relaxed), 8);
    }

    #[test]
    fn sticky_sync_fault_keeps_failing_until_cleared() {
        let dir = tempfile::tempdir().unwrap();
        let vfs = FaultyVfs::new();
        let f = vfs.create(&dir.path().join("a")).unwrap();
        vfs.arm(FaultOp::Sync, 0, libc::EIO, true);
        assert_eq!(f.sync_data().unwrap_err().raw_os_error(), Some(libc::EIO));
        assert_eq!(f.sync_data().unwrap_err().raw_os_error(), Some(libc::EIO));
        vfs.clear();
        f.sync_data().unwrap();
    }
}
