//! Levee against real OS limits, as an unprivileged user under a low `prlimit`: the start-up
//! check refuses a configuration that cannot fit (naming the limit and the setting), and the
//! resource alarms go warn at 50 % and critical at 80 % when the user's tasks (RLIMIT_NPROC) or
//! the open fds (RLIMIT_NOFILE) are pushed past them.
//!
//! Run as root (as CI does), each test drops to its own unused uid with `setpriv`, so RLIMIT_NPROC
//! — not enforced for root, and counted per user — applies and parallel tests do not share a
//! count. Run as an ordinary user, the tests use that user.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::PermissionsExt;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// A `levee serve` started under `prlimit`, as `uid` when we are root.
struct Limited {
    child: Child,
    stderr: Arc<Mutex<String>>,
    stdout: Option<std::io::Lines<BufReader<std::process::ChildStdout>>>,
    _bin: tempfile::TempDir,
    _data: tempfile::TempDir,
}

/// Wraps a command so it runs as `uid` (when root) under the given limits.
fn as_user(uid: u32, limits: &[String]) -> Command {
    let mut c;
    if is_root() {
        c = Command::new("setpriv");
        c.args([
            format!("--reuid={uid}"),
            format!("--regid={uid}"),
            "--clear-groups".into(),
            "prlimit".into(),
        ]);
    } else {
        c = Command::new("prlimit");
    }
    c.args(limits).arg("--");
    c
}

fn spawn(uid: u32, limits: &[String], args: &[&str]) -> Limited {
    // The binary and the data directory must be reachable by the unprivileged user.
    let bin = tempfile::tempdir().unwrap();
    std::fs::set_permissions(bin.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let exe = bin.path().join("levee");
    std::fs::copy(env!("CARGO_BIN_EXE_levee"), &exe).unwrap();
    let data = tempfile::tempdir().unwrap();
    std::fs::set_permissions(data.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let mut child = as_user(uid, limits)
        .arg(&exe)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
        ])
        .arg("--data-dir")
        .arg(data.path().join("d"))
        .arg("--master-key-file")
        .arg(data.path().join("master.key"))
        .args(["--status-sample-ms", "100"])
        .args(args)
        .env("LEVEE_LOG", "warn,levee=info")
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn levee under setpriv/prlimit");
    let stderr = Arc::new(Mutex::new(String::new()));
    let sink = stderr.clone();
    let mut err = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = err.read(&mut buf) {
            if n == 0 {
                break;
            }
            sink.lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    let stdout = BufReader::new(child.stdout.take().unwrap()).lines();
    Limited {
        child,
        stderr,
        stdout: Some(stdout),
        _bin: bin,
        _data: data,
    }
}

impl Limited {
    /// Waits for both listening lines: (admin, api).
    fn addrs(&mut self) -> (String, String) {
        let mut admin = String::new();
        for line in self.stdout.as_mut().unwrap() {
            let line = line.unwrap();
            if let Some(a) = line.strip_prefix("admin listening on http://") {
                admin = a.to_owned();
            }
            if let Some(a) = line.strip_prefix("levee listening on http://") {
                return (admin, a.to_owned());
            }
        }
        panic!(
            "levee exited before listening: {:?}\n{}",
            self.child.wait(),
            self.stderr.lock().unwrap()
        );
    }

    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Waits for the process to exit; its status and stderr.
    fn exit(mut self) -> (std::process::ExitStatus, String) {
        let status = self.child.wait().unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while !self.stderr().contains("Error") && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        (status, self.stderr())
    }
}

impl Drop for Limited {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn get(addr: &str, path: &str) -> String {
    common::http_get(addr, path).1
}

/// `levee_resource_<what>{resource="<name>"}` values.
fn resource(admin: &str, name: &str) -> BTreeMap<String, f64> {
    let text = get(admin, "/metrics");
    let tag = format!("{{resource=\"{name}\"}} ");
    text.lines()
        .filter_map(|l| {
            let (series, v) = l.split_once(&tag)?;
            Some((series.to_owned(), v.parse().ok()?))
        })
        .collect()
}

/// Polls until the resource's alarm level is `level`; returns its usage and limit then.
fn await_alarm(admin: &str, name: &str, level: f64) -> (f64, f64) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r = resource(admin, name);
        if r.get("levee_resource_alarm_level") == Some(&level) {
            return (r["levee_resource_used"], r["levee_resource_limit"]);
        }
        assert!(
            Instant::now() < deadline,
            "{name} never reached alarm level {level}: {r:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn await_log(l: &Limited, needle: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !l.stderr().contains(needle) {
        assert!(
            Instant::now() < deadline,
            "no log line {needle:?}:\n{}",
            l.stderr()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn refuses_to_start_when_connections_cannot_fit_rlimit_nofile() {
    let l = spawn(65532, &["--nofile=512:512".into()], &[]);
    let (status, err) = l.exit();
    assert!(!status.success(), "{err}");
    assert!(err.contains("refusing to start"), "{err}");
    assert!(err.contains("RLIMIT_NOFILE"), "{err}");
    assert!(err.contains("--connections-max (4096)"), "{err}");
}

#[test]
fn refuses_to_start_when_threads_cannot_fit_rlimit_nproc() {
    let l = spawn(
        65531,
        &["--nproc=16:16".into(), "--nofile=4096:4096".into()],
        &["--worker-threads", "2", "--connections-max", "100"],
    );
    let (status, err) = l.exit();
    assert!(!status.success(), "{err}");
    assert!(err.contains("RLIMIT_NPROC"), "{err}");
    assert!(err.contains("--blocking-threads (16)"), "{err}");
}

#[test]
fn thread_alarms_count_every_task_of_the_user() {
    const NPROC: u64 = 120;
    let uid = 65530;
    let mut l = spawn(
        uid,
        &[
            format!("--nproc={NPROC}:{NPROC}"),
            "--nofile=4096:4096".into(),
        ],
        &[
            "--worker-threads",
            "1",
            "--blocking-threads",
            "2",
            "--connections-max",
            "100",
        ],
    );
    let (admin, _) = l.addrs();
    let (used, limit) = await_alarm(&admin, "threads_user", 0.0);
    assert_eq!(limit, NPROC as f64);
    // Other processes of the same user count against RLIMIT_NPROC too.
    let mut sleepers: Vec<Child> = Vec::new();
    let mut spawn_sleepers = |n: u64| {
        for _ in 0..n {
            sleepers.push(
                as_user(uid, &[])
                    .args(["sleep", "120"])
                    .stdout(Stdio::null())
                    .spawn()
                    .unwrap(),
            );
        }
    };
    spawn_sleepers((NPROC * 55 / 100).saturating_sub(used as u64));
    let (used, _) = await_alarm(&admin, "threads_user", 1.0);
    assert!(used >= NPROC as f64 * 0.5, "{used}");
    await_log(&l, "resource alarm warn");
    spawn_sleepers((NPROC * 87 / 100).saturating_sub(used as u64));
    let (used, _) = await_alarm(&admin, "threads_user", 2.0);
    assert!(used >= NPROC as f64 * 0.8, "{used}");
    await_log(&l, "resource alarm critical");
    assert!(l.stderr().contains("threads_user"), "{}", l.stderr());
    for mut s in sleepers {
        let _ = s.kill();
        let _ = s.wait();
    }
    // And back to ok once they are gone.
    await_alarm(&admin, "threads_user", 0.0);
    await_log(&l, "resource alarm cleared");
}

#[test]
fn fd_alarms_warn_and_go_critical_under_a_lowered_rlimit_nofile() {
    const NOFILE: u64 = 3000;
    // The worst case (2600 connections + admin, file cache, fixed) fits, with under 2× headroom.
    let mut l = spawn(
        65529,
        &[
            format!("--nofile={NOFILE}:{NOFILE}"),
            "--nproc=200:200".into(),
        ],
        &[
            "--worker-threads",
            "1",
            "--blocking-threads",
            "2",
            "--connections-max",
            "2600",
        ],
    );
    let (admin, api) = l.addrs();
    await_log(&l, "less than 2");
    let (_, limit) = await_alarm(&admin, "fds", 0.0);
    assert_eq!(limit, NOFILE as f64);
    // Our own side of the connections needs fds too.
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: get/setrlimit on a struct we own.
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut r);
        r.rlim_cur = r.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &r);
    }
    let mut conns = Vec::new();
    let mut open = |n: usize| {
        for _ in 0..n {
            conns.push(std::net::TcpStream::connect(&api).unwrap());
        }
    };
    open(1600);
    let (used, _) = await_alarm(&admin, "fds", 1.0);
    assert!(used >= NOFILE as f64 * 0.5, "{used}");
    await_log(&l, "resource alarm warn");
    open(850);
    let (used, _) = await_alarm(&admin, "fds", 2.0);
    assert!(used >= NOFILE as f64 * 0.8, "{used}");
    await_log(&l, "resource alarm critical");
    drop(conns);
    await_alarm(&admin, "fds", 0.0);
}
