//! `levee status`: a node's status in the terminal, read from its admin listener's
//! `/status.json` — the same local state the status page shows.

use std::fmt::Write as _;
use std::time::Duration;

use anyhow::Context;
use serde_json::Value;

use super::status::human;

/// How long `levee status` waits for the node.
pub const STATUS_TIMEOUT_MS: u64 = 5_000;

pub fn run(admin: &str, json: bool) -> anyhow::Result<()> {
    let url = format!("{}/status.json", admin.trim_end_matches('/'));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (code, body) = rt.block_on(super::client::request(
        "GET",
        &url,
        "application/json",
        b"",
        Duration::from_millis(STATUS_TIMEOUT_MS),
    ))?;
    anyhow::ensure!(code == 200, "{url} answered HTTP {code}");
    if json {
        println!("{}", String::from_utf8_lossy(&body));
        return Ok(());
    }
    let v: Value = serde_json::from_slice(&body).with_context(|| format!("parsing {url}"))?;
    print!("{}", render(&v));
    Ok(())
}

fn s(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

/// The summary printed by `levee status`.
pub fn render(v: &Value) -> String {
    let mut o = String::new();
    let id = &v["identity"];
    let _ = writeln!(
        o,
        "Levee {}  {}  (pid {}, host {}, up {} s)",
        s(&id["version"]),
        if v["ready"] == Value::Bool(true) {
            "READY"
        } else {
            "NOT READY"
        },
        s(&id["pid"]),
        s(&id["hostname"]),
        s(&v["uptime_s"])
    );
    let _ = writeln!(o, "role:      {}", s(&v["role"]));
    let b = &v["budget"];
    let _ = writeln!(
        o,
        "node:      {} in {}; worst case {} threads, {} fds",
        s(&b["node_id"]),
        s(&b["cell"]),
        s(&b["threads"]),
        s(&b["fds"])
    );
    let _ = writeln!(o, "api:       {}", s(&id["api"]));
    let _ = writeln!(o, "admin:     {}", s(&id["admin"]));
    let _ = writeln!(o, "data dir:  {}", s(&id["data_dir"]));
    let m = &v["shard_map"];
    let _ = writeln!(
        o,
        "shard map: version {}, age {:.0} s, valid {}",
        s(&m["version"]),
        m["age_s"].as_f64().unwrap_or(0.0),
        s(&m["valid"])
    );
    if let Some(why) = m["keeper"]["not_ready_reason"].as_str() {
        let _ = writeln!(o, "not ready: {why}");
    }
    for a in m["keeper"]["alarms"].as_array().into_iter().flatten() {
        let _ = writeln!(o, "MAP ALARM: {}: {}", s(&a["kind"]), s(&a["message"]));
    }
    let t = &v["totals"];
    let _ = writeln!(
        o,
        "totals:    {} requests, {} errors, {} records in, {} records out",
        s(&t["requests"]),
        s(&t["errors"]),
        s(&t["in_records"]),
        s(&t["out_records"])
    );
    let streams = v["streams"].as_array().cloned().unwrap_or_default();
    let _ = writeln!(o, "\nSTREAMS ({})", streams.len());
    let _ = writeln!(
        o,
        "  {:<32} {:<10} {:>11}  SHARDS",
        "NAME", "STATE", "OPEN SHARDS"
    );
    for st in &streams {
        let shards = st["shards"].as_array().map_or(0, |a| a.len());
        let _ = writeln!(
            o,
            "  {:<32} {:<10} {:>11}  {}",
            s(&st["name"]),
            s(&st["state"]),
            s(&st["open_shards"]),
            shards
        );
    }
    let _ = writeln!(o, "\nRESOURCES");
    let _ = writeln!(
        o,
        "  {:<16} {:>12} {:>12} {:>7}  {:<9} LIMIT",
        "NAME", "USED", "LIMIT", "%", "ALARM"
    );
    for r in v["resources"].as_array().cloned().unwrap_or_default() {
        let unit = r["unit"].as_str().unwrap_or("");
        let used = r["used"].as_f64().unwrap_or(0.0);
        let limit = r["limit"].as_f64();
        let pct = limit
            .filter(|l| *l > 0.0)
            .map_or("-".into(), |l| format!("{:.1}", used * 100.0 / l));
        let _ = writeln!(
            o,
            "  {:<16} {:>12} {:>12} {:>7}  {:<9} {}",
            s(&r["name"]),
            human(used, unit),
            limit.map_or("-".into(), |l| human(l, unit)),
            pct,
            s(&r["alarm"]).to_uppercase(),
            s(&r["limit_name"])
        );
    }
    let errors = v["recent_errors"].as_array().cloned().unwrap_or_default();
    let _ = writeln!(o, "\nRECENT ERRORS ({})", errors.len());
    for e in errors.iter().take(10) {
        let _ = writeln!(
            o,
            "  {} {} {}: {}",
            s(&e["at_ms"]),
            s(&e["operation"]),
            s(&e["error"]),
            s(&e["message"])
        );
    }
    o
}
