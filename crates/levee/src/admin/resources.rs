//! Resource accounting against the limits that really apply (F2): each resource is measured
//! from `/proc`, `/sys/fs/cgroup` and `statvfs`, set beside its limit, and given an alarm state —
//! ok, warn at [`WARN_PERCENT`] %, critical at [`CRITICAL_PERCENT`] % — that is logged when it
//! changes. Threads are held against every limit that can stop a thread being created:
//! RLIMIT_NPROC counted over all of the *user's* tasks (it is a per-user limit), the system's
//! threads-max and pid_max, and the cgroup's pids.max.
//!
//! [`preflight`] does the same at start-up for the configuration's worst case: over a limit it
//! refuses to start, naming the limit and the setting to change; under 2× headroom it warns.
//!
//! Everything here reads only local files; it runs on the admin runtime, never on the request
//! path.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use serde::Serialize;

/// Usage at or above this share of a limit raises a warning.
pub const WARN_PERCENT: f64 = 50.0;
/// Usage at or above this share of a limit is critical.
pub const CRITICAL_PERCENT: f64 = 80.0;
/// Start-up wants this much headroom over the worst case before it stops warning.
pub const HEADROOM_FACTOR: u64 = 2;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Alarm {
    Ok,
    Warn,
    Critical,
}

impl Alarm {
    pub fn of(used: f64, limit: Option<f64>) -> Alarm {
        match limit {
            Some(l) if l > 0.0 => {
                let pct = used * 100.0 / l;
                if pct >= CRITICAL_PERCENT {
                    Alarm::Critical
                } else if pct >= WARN_PERCENT {
                    Alarm::Warn
                } else {
                    Alarm::Ok
                }
            }
            _ => Alarm::Ok,
        }
    }

    pub fn level(self) -> f64 {
        match self {
            Alarm::Ok => 0.0,
            Alarm::Warn => 1.0,
            Alarm::Critical => 2.0,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Alarm::Ok => "ok",
            Alarm::Warn => "warn",
            Alarm::Critical => "critical",
        }
    }
}

/// One measured resource and the limit that applies to it.
#[derive(Debug, Clone, Serialize)]
pub struct Resource {
    /// Stable key, the `resource` label of the metrics.
    pub name: &'static str,
    /// What the limit is (shown to operators).
    pub limit_name: &'static str,
    pub unit: &'static str,
    pub used: f64,
    pub limit: Option<f64>,
    pub alarm: Alarm,
}

fn res(
    name: &'static str,
    limit_name: &'static str,
    unit: &'static str,
    used: f64,
    limit: Option<f64>,
) -> Resource {
    Resource {
        name,
        limit_name,
        unit,
        used,
        limit,
        alarm: Alarm::of(used, limit),
    }
}

fn read_trim(path: impl AsRef<Path>) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_owned())
}

fn read_u64(path: impl AsRef<Path>) -> Option<u64> {
    read_trim(path)?.parse().ok()
}

/// A limit file holding a number or `max` (no limit).
fn read_limit(path: impl AsRef<Path>) -> Option<u64> {
    let s = read_trim(path)?;
    if s == "max" {
        None
    } else {
        s.parse().ok()
    }
}

pub fn rlimit(resource: libc::__rlimit_resource_t) -> Option<(u64, u64)> {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we own.
    if unsafe { libc::getrlimit(resource, &mut r) } != 0 {
        return None;
    }
    let f = |v: libc::rlim_t| (v != libc::RLIM_INFINITY).then_some(v);
    Some((f(r.rlim_cur)?, f(r.rlim_max).unwrap_or(u64::MAX)))
}

/// Raises the soft RLIMIT_NOFILE to the hard limit (as Go's runtime does): the soft limit is
/// a compatibility default, the hard one is what the operator granted.
pub fn raise_nofile() {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit on a struct we own.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) == 0 && r.rlim_cur < r.rlim_max {
            r.rlim_cur = r.rlim_max;
            let _ = libc::setrlimit(libc::RLIMIT_NOFILE, &r);
        }
    }
}

fn uid() -> u32 {
    // SAFETY: getuid has no preconditions.
    unsafe { libc::getuid() }
}

/// Threads (tasks) of every process of this user: what RLIMIT_NPROC counts.
pub fn user_tasks(uid: u32) -> u64 {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0;
    };
    let mut n = 0;
    for e in dir.flatten() {
        let name = e.file_name();
        if !name.to_string_lossy().bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let path = e.path();
        // The real uid is what RLIMIT_NPROC charges; /proc/<pid>/status has it first.
        let Some(status) = read_trim(path.join("status")) else {
            continue;
        };
        let mut real_uid = None;
        let mut threads = 1;
        for line in status.lines() {
            if let Some(v) = line.strip_prefix("Uid:") {
                real_uid = v
                    .split_whitespace()
                    .next()
                    .and_then(|x| x.parse::<u32>().ok());
            } else if let Some(v) = line.strip_prefix("Threads:") {
                threads = v.trim().parse().unwrap_or(1);
            }
        }
        if real_uid == Some(uid) {
            n += threads;
        }
    }
    n
}

fn status_field(status: &str, key: &str) -> Option<u64> {
    status.lines().find_map(|l| {
        l.strip_prefix(key)
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
    })
}

/// The cgroup files for a controller: v2 unified, else v1.
fn cgroup_file(controller: &str, v2: &str, v1: &str) -> Option<std::path::PathBuf> {
    let text = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (id, ctrls, path) = (parts.next()?, parts.next()?, parts.next()?);
        let path = path.trim_start_matches('/');
        if id == "0" && ctrls.is_empty() {
            let p = Path::new("/sys/fs/cgroup").join(path).join(v2);
            if p.exists() {
                return Some(p);
            }
        } else if ctrls.split(',').any(|c| c == controller) {
            let p = Path::new("/sys/fs/cgroup")
                .join(controller)
                .join(path)
                .join(v1);
            if p.exists() {
                return Some(p);
            }
        }
    }
    None
}

fn cgroup_pids_max() -> Option<u64> {
    read_limit(cgroup_file("pids", "pids.max", "pids.max")?)
}

fn cgroup_memory_max() -> Option<u64> {
    // v1 reports "no limit" as a huge number.
    read_limit(cgroup_file(
        "memory",
        "memory.max",
        "memory.limit_in_bytes",
    )?)
    .filter(|&v| v < (1u64 << 62))
}

fn system_threads() -> Option<u64> {
    // The fourth field of /proc/loadavg is "running/total scheduling entities".
    let s = read_trim("/proc/loadavg")?;
    s.split_whitespace().nth(3)?.split('/').nth(1)?.parse().ok()
}

fn statvfs(path: &Path) -> Option<libc::statvfs> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    // SAFETY: a zeroed statvfs is a valid out-parameter; the path is NUL-terminated.
    let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: see above.
    (unsafe { libc::statvfs(c.as_ptr(), &mut s) } == 0).then_some(s)
}

/// CPU time and major faults of this process, from /proc/self/stat.
fn self_stat() -> Option<(f64, u64)> {
    let s = read_trim("/proc/self/stat")?;
    // Fields after the command name (which may hold spaces) start at field 3.
    let rest = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // field 12 majflt → index 9; 14 utime → 11; 15 stime → 12.
    let majflt = f.get(9)?.parse().ok()?;
    let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    Some((ticks / hz, majflt))
}

fn cpu_limit_cores() -> f64 {
    if let Some(p) = cgroup_file("cpu", "cpu.max", "cpu.cfs_quota_us") {
        if let Some(s) = read_trim(&p) {
            let mut it = s.split_whitespace();
            if let (Some(q), Some(period)) = (it.next(), it.next()) {
                if let (Ok(q), Ok(period)) = (q.parse::<f64>(), period.parse::<f64>()) {
                    return q / period;
                }
            } else if let Ok(q) = s.parse::<f64>() {
                let period = p
                    .parent()
                    .and_then(|d| read_u64(d.join("cpu.cfs_period_us")))
                    .unwrap_or(100_000) as f64;
                if q > 0.0 {
                    return q / period;
                }
            }
        }
    }
    std::thread::available_parallelism().map_or(1.0, |n| n.get() as f64)
}

/// Counts for CPU use between two samples.
#[derive(Debug, Default, Clone, Copy)]
pub struct CpuClock {
    at: Option<std::time::Instant>,
    cpu_s: f64,
}

/// Measures every resource now. `connections` is the front-end's open connection count and
/// `connections_max` its cap.
pub fn sample(data_dir: &Path, connections_max: u64, cpu: &mut CpuClock) -> Vec<Resource> {
    let mut out = Vec::new();
    let status = read_trim("/proc/self/status").unwrap_or_default();
    let threads = status_field(&status, "Threads:").unwrap_or(0) as f64;
    let me = uid();
    let user = user_tasks(me) as f64;
    out.push(res(
        "threads_user",
        "RLIMIT_NPROC (tasks of this user)",
        "tasks",
        user,
        rlimit(libc::RLIMIT_NPROC).map(|l| l.0 as f64),
    ));
    let system = system_threads().unwrap_or(0) as f64;
    out.push(res(
        "threads_system",
        "kernel.threads-max",
        "tasks",
        system,
        read_u64("/proc/sys/kernel/threads-max").map(|v| v as f64),
    ));
    out.push(res(
        "pids_system",
        "kernel.pid_max",
        "tasks",
        system,
        read_u64("/proc/sys/kernel/pid_max").map(|v| v as f64),
    ));
    if let Some(p) = cgroup_file("pids", "pids.current", "pids.current") {
        out.push(res(
            "pids_cgroup",
            "cgroup pids.max",
            "tasks",
            read_u64(p).unwrap_or(0) as f64,
            cgroup_pids_max().map(|v| v as f64),
        ));
    }
    out.push(res(
        "threads",
        "(process threads)",
        "threads",
        threads,
        None,
    ));
    let mut fds = 0u64;
    let mut sockets = 0u64;
    if let Ok(d) = std::fs::read_dir("/proc/self/fd") {
        for e in d.flatten() {
            fds += 1;
            if std::fs::read_link(e.path())
                .is_ok_and(|t| t.to_string_lossy().starts_with("socket:"))
            {
                sockets += 1;
            }
        }
    }
    out.push(res(
        "fds",
        "RLIMIT_NOFILE",
        "fds",
        fds as f64,
        rlimit(libc::RLIMIT_NOFILE).map(|l| l.0 as f64),
    ));
    out.push(res(
        "sockets",
        "connections-max (front-end)",
        "sockets",
        sockets as f64,
        Some(connections_max as f64),
    ));
    let rss = status_field(&status, "VmRSS:").unwrap_or(0) * 1024;
    let mem_limit = cgroup_memory_max().or_else(|| {
        read_trim("/proc/meminfo").and_then(|m| status_field(&m, "MemTotal:").map(|k| k * 1024))
    });
    out.push(res(
        "memory_rss",
        if cgroup_memory_max().is_some() {
            "cgroup memory.max"
        } else {
            "MemTotal"
        },
        "bytes",
        rss as f64,
        mem_limit.map(|v| v as f64),
    ));
    let maps = std::fs::read_to_string("/proc/self/maps")
        .map(|m| m.lines().count())
        .unwrap_or(0);
    out.push(res(
        "memory_maps",
        "vm.max_map_count",
        "maps",
        maps as f64,
        read_u64("/proc/sys/vm/max_map_count").map(|v| v as f64),
    ));
    if let Some(s) = statvfs(data_dir) {
        let frsize = s.f_frsize as f64;
        let total = s.f_blocks as f64 * frsize;
        // What an unprivileged writer may still use.
        let avail = s.f_bavail as f64 * frsize;
        out.push(res(
            "disk_bytes",
            "data directory filesystem size",
            "bytes",
            (total - avail).max(0.0),
            Some(total),
        ));
        let files = s.f_files as f64;
        if files > 0.0 {
            out.push(res(
                "disk_inodes",
                "data directory filesystem inodes",
                "inodes",
                files - s.f_favail as f64,
                Some(files),
            ));
        }
    }
    if let Some((cpu_s, majflt)) = self_stat() {
        let now = std::time::Instant::now();
        let cores = match cpu.at {
            Some(at) => {
                let wall = now.duration_since(at).as_secs_f64();
                if wall > 0.0 {
                    (cpu_s - cpu.cpu_s) / wall
                } else {
                    0.0
                }
            }
            None => 0.0,
        };
        *cpu = CpuClock {
            at: Some(now),
            cpu_s,
        };
        out.push(res(
            "cpu",
            "cores (cgroup cpu.max or online CPUs)",
            "cores",
            cores,
            Some(cpu_limit_cores()),
        ));
        out.push(res(
            "major_faults",
            "(cumulative, no limit)",
            "faults",
            majflt as f64,
            None,
        ));
    }
    out
}

/// Storage on disk: bytes and segment files under the storage directory.
pub fn storage_usage(dir: &Path) -> (u64, u64) {
    let mut bytes = 0;
    let mut segments = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let Ok(m) = e.metadata() else { continue };
            if m.is_dir() {
                stack.push(e.path());
            } else {
                bytes += m.blocks() * 512;
                if e.path().extension().is_some_and(|x| x == "seg") {
                    segments += 1;
                }
            }
        }
    }
    (bytes, segments)
}

/// The configuration's worst case.
#[derive(Debug, Clone, Copy)]
pub struct Needs {
    pub threads: u64,
    pub fds: u64,
    pub connections: u64,
    pub worker_threads: u64,
    pub blocking_threads: u64,
    pub connections_max: u64,
}

/// Threads beside the request runtime's and the admin blocking pool: main, the admin runtime,
/// the log writer, the two group-log writers (storage and catalog), the map thread and the map
/// I/O thread, and 3 spare.
pub const FIXED_THREADS: u64 = 10;
/// File descriptors beside connections and the storage file cache: logs, epoll, eventfds,
/// the catalog, the metrics ring, standard streams.
pub const FIXED_FDS: u64 = 64;

/// What the start-up check concluded.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Fine,
    /// Under 2× headroom: start, but say so.
    Warn(Vec<String>),
    /// Over a limit: refuse to start.
    Refuse(String),
}

/// Compares worst-case needs with the limits in force now.
pub fn preflight(n: &Needs) -> Verdict {
    let mut warns = Vec::new();
    let me = uid();
    let mut check =
        |what: &str, need: u64, room: Option<u64>, limit: &str, setting: &str| -> Option<String> {
            let room = room?;
            if need > room {
                return Some(format!(
                    "levee needs up to {need} {what} but {limit} leaves room for {room}; \
                 lower {setting} or raise {limit}"
                ));
            }
            if need.saturating_mul(HEADROOM_FACTOR) > room {
                warns.push(format!(
                    "{limit} leaves room for {room} {what}, less than {HEADROOM_FACTOR}× the \
                 worst case of {need}; consider lowering {setting} or raising {limit}"
                ));
            }
            None
        };
    let thread_setting = format!(
        "--worker-threads ({}) or --blocking-threads ({})",
        n.worker_threads, n.blocking_threads
    );
    // RLIMIT_NPROC is not enforced for root.
    let nproc_room = if me == 0 {
        None
    } else {
        rlimit(libc::RLIMIT_NPROC)
            .map(|(soft, _)| soft.saturating_sub(user_tasks(me).saturating_sub(1)))
    };
    let others = system_threads().unwrap_or(0);
    let refusals = [
        check(
            "threads",
            n.threads,
            nproc_room,
            "RLIMIT_NPROC (ulimit -u)",
            &thread_setting,
        ),
        check(
            "threads",
            n.threads,
            read_u64("/proc/sys/kernel/threads-max").map(|m| m.saturating_sub(others)),
            "kernel.threads-max",
            &thread_setting,
        ),
        check(
            "threads",
            n.threads,
            cgroup_pids_max().map(|m| {
                m.saturating_sub(
                    cgroup_file("pids", "pids.current", "pids.current")
                        .and_then(read_u64)
                        .unwrap_or(0),
                )
            }),
            "cgroup pids.max",
            &thread_setting,
        ),
        check(
            "file descriptors",
            n.fds,
            rlimit(libc::RLIMIT_NOFILE).map(|l| l.0),
            "RLIMIT_NOFILE (ulimit -n)",
            &format!("--connections-max ({})", n.connections_max),
        ),
    ];
    if let Some(r) = refusals.into_iter().flatten().next() {
        return Verdict::Refuse(r);
    }
    if warns.is_empty() {
        Verdict::Fine
    } else {
        Verdict::Warn(warns)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alarm_thresholds() {
        assert_eq!(Alarm::of(49.0, Some(100.0)), Alarm::Ok);
        assert_eq!(Alarm::of(50.0, Some(100.0)), Alarm::Warn);
        assert_eq!(Alarm::of(79.9, Some(100.0)), Alarm::Warn);
        assert_eq!(Alarm::of(80.0, Some(100.0)), Alarm::Critical);
        assert_eq!(Alarm::of(1e9, None), Alarm::Ok);
    }

    #[test]
    fn sample_sees_this_process() {
        let mut cpu = CpuClock::default();
        let r = sample(Path::new("/"), 10, &mut cpu);
        let get = |n: &str| {
            r.iter()
                .find(|x| x.name == n)
                .unwrap_or_else(|| panic!("{n}"))
        };
        assert!(get("threads").used >= 1.0);
        assert!(get("fds").used >= 3.0);
        assert!(get("fds").limit.is_some());
        assert!(get("threads_user").used >= get("threads").used);
        assert!(get("memory_rss").used > 0.0);
        assert!(get("memory_maps").limit.is_some());
        assert!(get("disk_bytes").limit.is_some());
    }

    #[test]
    fn preflight_refuses_what_cannot_fit() {
        let nofile = rlimit(libc::RLIMIT_NOFILE).map(|l| l.0).unwrap_or(1024);
        let n = Needs {
            threads: 4,
            fds: nofile + 1,
            connections: 1,
            worker_threads: 1,
            blocking_threads: 1,
            connections_max: nofile,
        };
        match preflight(&n) {
            Verdict::Refuse(m) => {
                assert!(m.contains("RLIMIT_NOFILE"), "{m}");
                assert!(m.contains("--connections-max"), "{m}");
            }
            v => panic!("{v:?}"),
        }
        let n = Needs {
            fds: nofile / 2 + 1,
            ..n
        };
        assert!(matches!(preflight(&n), Verdict::Warn(_)));
    }
}
