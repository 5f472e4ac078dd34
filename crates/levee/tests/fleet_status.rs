//! The fleet view and the capacity check against a live fleet (1 control plane, 4 storage
//! nodes — one under a lowered fd limit — and 3 front-ends): `levee status --fleet` lists every
//! node from a front-end's persisted map and keeps working with the control plane killed;
//! `levee admin capacity-check` flags an addition that would take the limited node past half
//! its fd limit, and passes a small one.

mod common;

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::fleet::{Fleet, Proc};
use serde_json::Value;

/// The lowered RLIMIT_NOFILE (soft and hard) of the fourth storage node.
const LOWERED_NOFILE: u64 = 512;

fn levee(args: &[&str], data_dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_levee"))
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .env("LEVEE_LOG", "warn")
        .output()
        .expect("run levee")
}

fn fleet_json(data_dir: &Path) -> Value {
    let out = levee(&["status", "--fleet", "--json"], data_dir);
    assert!(out.status.success(), "{out:?}");
    serde_json::from_slice(&out.stdout).expect("JSON")
}

fn nodes(view: &Value) -> Vec<Value> {
    view["nodes"].as_array().expect("nodes").clone()
}

fn by_address<'a>(nodes: &'a [Value], address: &str) -> &'a Value {
    nodes
        .iter()
        .find(|n| n["address"] == address)
        .unwrap_or_else(|| panic!("no node at {address} in {nodes:#?}"))
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn the_fleet_view_needs_no_control_plane_and_capacity_check_flags_a_lowered_fd_limit() {
    let mut fleet = Fleet::start();
    let limited = Proc::start_with(
        &[
            "--role",
            "storage",
            "--control",
            &fleet.control_addr.clone(),
            "--storage-listen",
            "127.0.0.14:0",
            "--admin-listen",
            "127.0.0.14:0",
            // Its worst case must fit the lowered limit, or it refuses to start.
            "--connections-max",
            "16",
        ],
        &fleet.dir.path().join("storage-4"),
        &fleet.master_key(),
        "registered as storage node",
        |cmd| {
            // SAFETY: setrlimit is async-signal-safe; nothing else runs in the child.
            unsafe {
                cmd.pre_exec(|| {
                    let lim = libc::rlimit {
                        rlim_cur: LOWERED_NOFILE,
                        rlim_max: LOWERED_NOFILE,
                    };
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        },
    );
    let limited_addr = limited.addr("storage listening on");
    let frontend_dir = fleet.dir.path().join("frontend-1");
    let storage_dir = fleet.dir.path().join("storage-1");

    // Every node registers (the control node too) and reaches the persisted maps of a
    // front-end and a storage node.
    let deadline = Instant::now() + Duration::from_secs(20);
    let settled = |dir: &Path| loop {
        let view = fleet_json(dir);
        let all = nodes(&view);
        let count = |role: &str| all.iter().filter(|n| n["role"] == role).count();
        if (count("control"), count("storage"), count("frontend")) == (1, 4, 3)
            && all.iter().all(|n| n["reachable"] == true)
        {
            break view;
        }
        assert!(Instant::now() < deadline, "fleet not listed: {view:#}");
        std::thread::sleep(Duration::from_millis(100));
    };
    settled(&storage_dir);
    let view = settled(&frontend_dir);
    let all = nodes(&view);
    let control = by_address(&all, &fleet.control_addr);
    assert_eq!(control["role"], "control");
    assert_eq!(control["admin"], fleet.control.addr("admin listening on"));
    for (i, admin) in fleet.admins.iter().enumerate() {
        let fe = by_address(&all, &fleet.apis[i]);
        assert_eq!(fe["role"], "frontend");
        assert_eq!(
            &fe["admin"], admin,
            "a front-end registers its API and admin listeners"
        );
        assert_eq!(fe["ready"], true);
    }
    let limited_node = by_address(&all, &limited_addr);
    assert_eq!(limited_node["fd_limit"], LOWERED_NOFILE as f64);
    let limited_id = limited_node["id"].as_u64().expect("id").to_string();
    for n in &all {
        assert!(n["map_version"].as_u64().expect("map version") > 0, "{n}");
        assert!(n["threads"].as_f64().expect("threads") > 0.0, "{n}");
    }
    // The table names every node.
    let out = levee(&["status", "--fleet"], &frontend_dir);
    assert!(out.status.success(), "{out:?}");
    let table = text(&out.stdout);
    assert!(table.contains("8 nodes, 8 up, 0 down"), "{table}");
    for n in &all {
        assert!(table.contains(&n["id"].to_string()), "{table}");
    }

    // A small addition fits everywhere.
    let out = levee(
        &["admin", "capacity-check", "--add-frontends", "1"],
        &frontend_dir,
    );
    let report = text(&out.stdout);
    assert!(out.status.success(), "{report}\n{}", text(&out.stderr));
    assert!(report.contains("OK: no node would reach"), "{report}");
    // 250 front-ends more: each holds a connection to every storage node, which takes the
    // limited node past half its 512 fds; no other node is near a limit.
    let out = levee(
        &["admin", "capacity-check", "--add-frontends", "250"],
        &frontend_dir,
    );
    let report = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{report}");
    let flagged: Vec<&str> = report
        .lines()
        .filter(|l| l.starts_with("FLAGGED:"))
        .collect();
    assert_eq!(
        flagged,
        vec![format!(
            "FLAGGED: storage {limited_id} ({limited_addr}): fds would be {} of limit 512 (threshold 256)",
            report
                .lines()
                .find(|l| l.starts_with(&limited_id) && l.contains(" fds "))
                .and_then(|l| l.split_whitespace().nth(5))
                .expect("the limited node's fds row")
        )],
        "{report}"
    );
    assert!(text(&out.stderr).contains("flagged"), "{out:?}");
    let json = levee(
        &[
            "admin",
            "capacity-check",
            "--add-frontends",
            "250",
            "--json",
        ],
        &frontend_dir,
    );
    let rows: Value = serde_json::from_slice(&json.stdout).expect("JSON");
    let fds = rows["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .find(|r| r["node"] == limited_id.as_str() && r["metric"] == "fds")
        .expect("fds row")
        .clone();
    assert_eq!(fds["verdict"], "flagged");
    assert!(
        fds["projected"].as_f64().expect("projected") >= 256.0,
        "{fds}"
    );

    // The control plane and one storage node die: the view still lists all eight, those two
    // shown down.
    fleet.control.kill();
    let storage_2 = fleet.storage[1].addr("storage listening on");
    fleet.storage[1].kill();
    let view = fleet_json(&frontend_dir);
    let all = nodes(&view);
    assert_eq!(all.len(), 8, "{view:#}");
    for n in &all {
        let address = n["address"].as_str().expect("address");
        let down = address == fleet.control_addr || address == storage_2;
        assert_eq!(n["reachable"], !down, "{n}");
        if down {
            assert!(n["error"].as_str().is_some(), "{n}");
        } else {
            assert_eq!(n["ready"], true, "{n}");
        }
    }
    let out = levee(&["status", "--fleet"], &frontend_dir);
    assert!(out.status.success(), "{out:?}");
    let table = text(&out.stdout);
    assert!(table.contains("8 nodes, 6 up, 2 down"), "{table}");
    assert_eq!(table.matches("DOWN").count(), 2, "{table}");
    // Any node's data directory will do: a storage node's map lists the same fleet.
    let view = fleet_json(&storage_dir);
    let all = nodes(&view);
    assert_eq!(all.len(), 8, "{view:#}");
    assert_eq!(all.iter().filter(|n| n["reachable"] == false).count(), 2);
    drop(limited);
}
