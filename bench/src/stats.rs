//! What a run measures and how it is reported: latency histograms (HdrHistogram, microseconds),
//! the generator's own CPU time (getrusage) so it can be seen not to be the bottleneck, the
//! server's CPU time and resident memory (summed over its process tree from /proc), and the
//! one-line JSON result that `levee-bench report` turns into tables.

use std::collections::HashMap;
use std::fs;
use std::io::Write as _;
use std::path::Path;
use std::time::Duration;

use anyhow::Result;
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Highest latency a histogram records; longer ones are clamped to it.
const LATENCY_US_MAX: u64 = 120_000_000;

/// A latency histogram in microseconds.
pub struct Latency {
    hist: Histogram<u64>,
}

impl Latency {
    pub fn new() -> Self {
        // Three significant figures over 1 µs .. 120 s.
        let hist = Histogram::new_with_bounds(1, LATENCY_US_MAX, 3)
            .expect("constant histogram bounds are valid");
        Latency { hist }
    }

    pub fn record(&mut self, d: Duration) {
        let us = u64::try_from(d.as_micros())
            .unwrap_or(LATENCY_US_MAX)
            .clamp(1, LATENCY_US_MAX);
        let _ = self.hist.record(us);
    }

    pub fn merge(&mut self, other: &Latency) {
        let _ = self.hist.add(&other.hist);
    }

    pub fn summary(&self) -> LatencySummary {
        let ms = |us: u64| us as f64 / 1000.0;
        LatencySummary {
            count: self.hist.len(),
            p50_ms: ms(self.hist.value_at_quantile(0.50)),
            p99_ms: ms(self.hist.value_at_quantile(0.99)),
            p999_ms: ms(self.hist.value_at_quantile(0.999)),
            max_ms: ms(self.hist.max()),
            mean_ms: self.hist.mean() / 1000.0,
        }
    }
}

impl Default for Latency {
    fn default() -> Self {
        Self::new()
    }
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct LatencySummary {
    pub count: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
    pub mean_ms: f64,
}

/// This process's user + system CPU time.
pub fn own_cpu() -> Duration {
    // SAFETY: getrusage only writes into the zeroed struct we pass.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    if rc != 0 {
        return Duration::ZERO;
    }
    let tv = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// CPU time (user + system) and resident memory of a process and all its descendants.
#[derive(Clone, Copy, Debug, Default)]
pub struct TreeUsage {
    pub cpu: Duration,
    pub rss_bytes: u64,
    pub threads: u64,
}

/// Reads `/proc` for `root` and its descendants; `None` when `root` is gone.
pub fn tree_usage(root: u32) -> Option<TreeUsage> {
    // SAFETY: sysconf has no memory effects.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(1) as u64;
    // pid -> (ppid, utime + stime ticks, rss pages, threads)
    let mut procs: HashMap<u32, (u32, u64, u64, u64)> = HashMap::new();
    for entry in fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // Fields after the command name, which is in parentheses and may hold spaces.
        let Some(rest) = stat.rfind(')').and_then(|i| stat.get(i + 2..)) else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        // rest[0] is field 3 (state): ppid is field 4, utime 14, stime 15, threads 20, rss 24.
        let num = |i: usize| {
            fields
                .get(i)
                .and_then(|f| f.parse::<u64>().ok())
                .unwrap_or(0)
        };
        procs.insert(pid, (num(1) as u32, num(11) + num(12), num(21), num(17)));
    }
    procs.get(&root)?;
    let mut total = TreeUsage::default();
    let mut frontier = vec![root];
    let mut seen = 0usize;
    while let Some(pid) = frontier.pop() {
        seen += 1;
        if seen > procs.len() {
            break;
        }
        if let Some(&(_, cpu_ticks, rss_pages, threads)) = procs.get(&pid) {
            total.cpu += Duration::from_micros(cpu_ticks * 1_000_000 / ticks);
            total.rss_bytes += rss_pages * page;
            total.threads += threads;
        }
        frontier.extend(procs.iter().filter(|(_, v)| v.0 == pid).map(|(k, _)| *k));
    }
    Some(total)
}

/// One workload's result against one target; one JSON line in a results file.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct BenchResult {
    /// The server measured (`levee`, `ferrokinesis`, …) or `machine` for the disk limits.
    pub target: String,
    /// `put`, `get`, `e2e` or `fsync`.
    pub kind: String,
    /// A stable name for the workload and its parameters, the row key in reports.
    pub workload: String,
    pub params: serde_json::Value,
    pub elapsed_s: f64,
    pub requests: u64,
    pub records: u64,
    /// Record payload bytes (not wire bytes).
    pub bytes: u64,
    pub errors: u64,
    pub error_sample: Option<String>,
    pub records_per_s: f64,
    pub mb_per_s: f64,
    pub requests_per_s: f64,
    /// Request latency (put, get) or put → visible latency (e2e) or write + fdatasync (fsync).
    pub latency: LatencySummary,
    /// For e2e: the producers' PutRecord latency.
    pub put_latency: Option<LatencySummary>,
    /// The generator's CPU over the measured interval, as % of one core.
    pub gen_cpu_pct: f64,
    pub server_cpu_pct: Option<f64>,
    pub server_rss_mib: Option<f64>,
    /// Threads of the server's process tree at the end of the measured interval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_threads: Option<u64>,
    /// Levee's fsyncs and group commits over the measured interval (`--metrics-url`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_syncs: Option<StorageSyncs>,
    pub notes: Vec<String>,
    /// For growth runs: the measured window cut into equal time slices, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub slices: Vec<SliceSummary>,
}

/// One time slice of a growth run.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct SliceSummary {
    pub records_per_s: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

impl BenchResult {
    /// Prints a human summary to stderr and appends the JSON line to `json_out`, if any.
    pub fn emit(&self, json_out: Option<&Path>) -> Result<()> {
        let l = &self.latency;
        eprintln!(
            "[{}] {}: {:.0} records/s, {:.2} MB/s, {:.0} req/s | latency p50 {:.3} ms p99 {:.3} ms p999 {:.3} ms max {:.3} ms (n={}) | errors {} | generator CPU {:.0}%{}{}",
            self.target,
            self.workload,
            self.records_per_s,
            self.mb_per_s,
            self.requests_per_s,
            l.p50_ms,
            l.p99_ms,
            l.p999_ms,
            l.max_ms,
            l.count,
            self.errors,
            self.gen_cpu_pct,
            self.server_cpu_pct.map(|c| format!(", server CPU {c:.0}%")).unwrap_or_default(),
            self.server_rss_mib.map(|r| format!(", server RSS {r:.0} MiB")).unwrap_or_default(),
        );
        if let Some(p) = &self.put_latency {
            eprintln!(
                "    put ack latency p50 {:.3} ms p99 {:.3} ms p999 {:.3} ms",
                p.p50_ms, p.p99_ms, p.p999_ms
            );
        }
        if let Some(e) = &self.error_sample {
            eprintln!("    first error: {e}");
        }
        for n in &self.notes {
            eprintln!("    note: {n}");
        }
        let line = serde_json::to_string(self)?;
        println!("{line}");
        if let Some(path) = json_out {
            let mut f = fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)?;
            writeln!(f, "{line}")?;
        }
        Ok(())
    }
}

/// A Levee storage node's durability counters (its `/metrics`), summed over its logs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StorageSyncs {
    /// fdatasyncs of the logs.
    pub fsyncs: u64,
    /// Group commits: batches of appends made durable together.
    pub group_commits: u64,
    /// Appends in those batches.
    pub entries: u64,
}

impl StorageSyncs {
    /// Reads them from `url` (`http://HOST:PORT/metrics`); `None` if it cannot.
    pub fn scrape(url: &str) -> Option<Self> {
        use std::io::Read as _;
        let rest = url.strip_prefix("http://")?;
        let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
        let addr: std::net::SocketAddr = host.parse().ok()?;
        let timeout = Duration::from_secs(2);
        let mut conn = std::net::TcpStream::connect_timeout(&addr, timeout).ok()?;
        conn.set_read_timeout(Some(timeout)).ok()?;
        write!(conn, "GET /{path} HTTP/1.0\r\nHost: {host}\r\n\r\n").ok()?;
        let mut text = String::new();
        conn.take(METRICS_BYTES_MAX)
            .read_to_string(&mut text)
            .ok()?;
        let (head, body) = text.split_once("\r\n\r\n")?;
        if !head.starts_with("HTTP/1.1 200") && !head.starts_with("HTTP/1.0 200") {
            return None;
        }
        Some(Self::parse(body))
    }

    fn parse(text: &str) -> Self {
        let mut s = StorageSyncs::default();
        for line in text.lines() {
            let Some((name, value)) = line.split_once(' ') else {
                continue;
            };
            let metric = name.split('{').next().unwrap_or(name);
            let Ok(v) = value.trim().parse::<f64>() else {
                continue;
            };
            match metric {
                "levee_storage_fsync_duration_seconds_count" => s.fsyncs += v as u64,
                "levee_storage_group_commit_batch_entries_count" => s.group_commits += v as u64,
                "levee_storage_group_commit_batch_entries_sum" => s.entries += v as u64,
                _ => {}
            }
        }
        s
    }

    fn since(self, start: Self) -> Self {
        StorageSyncs {
            fsyncs: self.fsyncs.saturating_sub(start.fsyncs),
            group_commits: self.group_commits.saturating_sub(start.group_commits),
            entries: self.entries.saturating_sub(start.entries),
        }
    }
}

/// Largest metrics page read.
const METRICS_BYTES_MAX: u64 = 4 << 20;

/// Samples the generator's and the server's CPU at the start of the measured interval.
pub struct CpuProbe {
    server_pid: Option<u32>,
    metrics_url: Option<String>,
    syncs_start: Option<StorageSyncs>,
    own_start: Duration,
    server_start: Option<TreeUsage>,
    wall_start: std::time::Instant,
}

impl CpuProbe {
    pub fn start(server_pid: Option<u32>, metrics_url: Option<&str>) -> Self {
        CpuProbe {
            server_pid,
            metrics_url: metrics_url.map(str::to_owned),
            syncs_start: metrics_url.and_then(StorageSyncs::scrape),
            own_start: own_cpu(),
            server_start: server_pid.and_then(tree_usage),
            wall_start: std::time::Instant::now(),
        }
    }

    /// Fills the CPU and memory fields of `result` for the interval since `start`.
    pub fn finish(&self, result: &mut BenchResult) {
        let wall = self.wall_start.elapsed().as_secs_f64().max(1e-9);
        result.gen_cpu_pct =
            (own_cpu().saturating_sub(self.own_start)).as_secs_f64() / wall * 100.0;
        if let (Some(url), Some(start)) = (&self.metrics_url, self.syncs_start) {
            result.server_syncs = StorageSyncs::scrape(url).map(|now| now.since(start));
        }
        if let (Some(pid), Some(start)) = (self.server_pid, self.server_start) {
            if let Some(now) = tree_usage(pid) {
                result.server_cpu_pct =
                    Some(now.cpu.saturating_sub(start.cpu).as_secs_f64() / wall * 100.0);
                result.server_rss_mib = Some(now.rss_bytes as f64 / (1024.0 * 1024.0));
                result.server_threads = Some(now.threads);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles() {
        let mut l = Latency::new();
        for us in 1..=1000u64 {
            l.record(Duration::from_micros(us));
        }
        let s = l.summary();
        assert_eq!(s.count, 1000);
        assert!((s.p50_ms - 0.5).abs() < 0.01, "{s:?}");
        assert!((s.p99_ms - 0.99).abs() < 0.01, "{s:?}");
    }

    #[test]
    fn own_process_is_visible() {
        let me = std::process::id();
        let u = tree_usage(me).expect("own /proc entry");
        assert!(u.rss_bytes > 0);
        assert!(u.threads >= 1);
    }
}

#[cfg(test)]
mod sync_tests {
    use super::*;

    #[test]
    fn storage_syncs_are_summed_over_logs() {
        let text = "# TYPE levee_storage_fsync_duration_seconds histogram\n\
levee_storage_fsync_duration_seconds_bucket{log=\"sequential\",le=\"0.001\"} 3\n\
levee_storage_fsync_duration_seconds_count{log=\"explicit\"} 14\n\
levee_storage_fsync_duration_seconds_count{log=\"sequential\"} 317\n\
levee_storage_group_commit_batch_entries_sum{log=\"sequential\"} 2418\n\
levee_storage_group_commit_batch_entries_count{log=\"sequential\"} 317\n\
levee_storage_group_commit_batch_entries_sum{log=\"explicit\"} 14\n\
levee_storage_group_commit_batch_entries_count{log=\"explicit\"} 14\n";
        let s = StorageSyncs::parse(text);
        assert_eq!(
            s,
            StorageSyncs {
                fsyncs: 331,
                group_commits: 331,
                entries: 2432
            }
        );
        let later = StorageSyncs {
            fsyncs: 400,
            group_commits: 401,
            entries: 3000,
        };
        assert_eq!(
            later.since(s),
            StorageSyncs {
                fsyncs: 69,
                group_commits: 70,
                entries: 568
            }
        );
    }
}
