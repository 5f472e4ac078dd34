//! The node's status from local state only (R7): `/status.json` and `/status`, one
//! self-contained HTML page (inline CSS and SVG sparklines; no scripts, no external assets), so it
//! renders even when everything else is down.

use serde::Serialize;

use super::resources::Resource;
use super::Shared;

#[derive(Debug, Serialize)]
pub struct Status {
    pub role: String,
    pub identity: Identity,
    pub uptime_s: u64,
    pub ready: bool,
    pub shard_map: MapInfo,
    pub streams: Vec<StreamInfo>,
    pub throughput: Throughput,
    pub resources: Vec<Resource>,
    pub recent_errors: Vec<ErrorInfo>,
    pub totals: Totals,
    /// Its fleet identity and caps, for `levee admin capacity-check`.
    pub budget: super::capacity::Budget,
}

#[derive(Debug, Serialize)]
pub struct Identity {
    pub version: &'static str,
    pub pid: u32,
    pub hostname: String,
    pub account_id: String,
    pub region: String,
    pub api: Option<String>,
    pub admin: String,
    pub data_dir: String,
    pub started_ms: u64,
}

#[derive(Debug, Serialize)]
pub struct MapInfo {
    pub version: u64,
    pub checksum: u32,
    pub age_s: f64,
    pub valid: bool,
    /// The front-end's map keeper: readiness reason, held change, alarms, generations, boot.
    pub keeper: Option<levee_frontend::map_follow::KeeperStatus>,
}

#[derive(Debug, Serialize)]
pub struct StreamInfo {
    pub name: String,
    pub state: String,
    pub open_shards: usize,
    pub shards: Vec<ShardInfo>,
}

#[derive(Debug, Serialize)]
pub struct ShardInfo {
    pub shard_id: String,
    pub state: &'static str,
    pub parent: Option<String>,
}

/// Rates per second between consecutive ring samples, oldest first.
#[derive(Debug, Serialize, Default)]
pub struct Throughput {
    pub at_ms: Vec<u64>,
    pub requests_per_s: Vec<f64>,
    pub errors_per_s: Vec<f64>,
    pub in_records_per_s: Vec<f64>,
    pub in_bytes_per_s: Vec<f64>,
    pub out_records_per_s: Vec<f64>,
    pub out_bytes_per_s: Vec<f64>,
}

#[derive(Debug, Serialize)]
pub struct ErrorInfo {
    pub at_ms: u64,
    pub operation: &'static str,
    pub error: &'static str,
    pub message: String,
}

#[derive(Debug, Serialize)]
pub struct Totals {
    pub requests: u64,
    pub errors: u64,
    pub in_records: u64,
    pub in_bytes: u64,
    pub out_records: u64,
    pub out_bytes: u64,
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}

/// What this process runs, for `/status`.
fn role_text(roles: crate::config::Roles) -> String {
    if roles.embedded() {
        return "embedded: control plane, storage, front-end".into();
    }
    let mut parts = Vec::new();
    if roles.control {
        parts.push("control plane");
    }
    if roles.storage {
        parts.push("storage");
    }
    if roles.frontend {
        parts.push("front-end");
    }
    format!("fleet: {}", parts.join(", "))
}

pub fn collect(shared: &Shared) -> Status {
    use std::sync::atomic::Ordering::Relaxed;
    let now = crate::node::now_ms();
    let (version, seen) = shared.map_version_seen();
    let (streams, checksum, valid) = match shared.map_view() {
        Some((maps, _)) => {
            let map = maps.current();
            let streams = map
                .streams()
                .map(|s| StreamInfo {
                    name: s.name.clone(),
                    state: format!("{:?}", s.state).to_uppercase(),
                    open_shards: s.shards.iter().filter(|x| x.open).count(),
                    shards: s
                        .shards
                        .iter()
                        .map(|x| ShardInfo {
                            shard_id: x.shard_id.to_string(),
                            state: if x.open { "OPEN" } else { "CLOSED" },
                            parent: x.parent.map(|p| p.to_string()),
                        })
                        .collect(),
                })
                .collect();
            (streams, map.checksum(), map.verify().is_ok())
        }
        None => (Vec::new(), 0, false),
    };
    let samples: Vec<_> = shared
        .samples
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .copied()
        .collect();
    let mut tp = Throughput::default();
    for w in samples.windows(2) {
        let (a, b) = (&w[0], &w[1]);
        let dt = b.at_ms.saturating_sub(a.at_ms) as f64 / 1000.0;
        // A restart resets the totals: show no rate across it.
        let rate = |i: usize| {
            if dt <= 0.0 || b.values[i] < a.values[i] {
                0.0
            } else {
                (b.values[i] - a.values[i]) as f64 / dt
            }
        };
        tp.at_ms.push(b.at_ms);
        tp.requests_per_s.push(rate(0));
        tp.errors_per_s.push(rate(1));
        tp.in_records_per_s.push(rate(2));
        tp.in_bytes_per_s.push(rate(3));
        tp.out_records_per_s.push(rate(4));
        tp.out_bytes_per_s.push(rate(5));
    }
    let t = &levee_frontend::metrics::TOTALS;
    Status {
        role: role_text(shared.cfg.roles),
        identity: Identity {
            version: env!("CARGO_PKG_VERSION"),
            pid: std::process::id(),
            hostname: hostname(),
            account_id: shared.cfg.account_id.clone(),
            region: shared.cfg.region.clone(),
            api: shared.api_addr.get().map(|a| format!("http://{a}")),
            admin: format!("http://{}", shared.admin_addr),
            data_dir: shared.cfg.data_dir.display().to_string(),
            started_ms: shared.started_ms,
        },
        uptime_s: shared.started.elapsed().as_secs(),
        ready: shared.ready(),
        shard_map: MapInfo {
            version,
            checksum,
            age_s: now.saturating_sub(seen) as f64 / 1000.0,
            valid,
            keeper: shared.map_view().map(|(_, keeper)| keeper.status()),
        },
        streams,
        throughput: tp,
        resources: shared
            .resources
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone(),
        recent_errors: levee_frontend::metrics::RECENT_ERRORS
            .snapshot()
            .into_iter()
            .rev()
            .map(|e| ErrorInfo {
                at_ms: e.at_ms,
                operation: e.operation,
                error: e.error,
                message: e.message,
            })
            .collect(),
        totals: Totals {
            requests: t.requests.load(Relaxed),
            errors: t.errors.load(Relaxed),
            in_records: t.in_records.load(Relaxed),
            in_bytes: t.in_bytes.load(Relaxed),
            out_records: t.out_records.load(Relaxed),
            out_bytes: t.out_bytes.load(Relaxed),
        },
        budget: super::capacity::budget(&shared.cfg),
    }
}

fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '&' => o.push_str("&amp;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

/// A number with a unit, compact (1.2 GiB, 3.4k).
pub fn human(v: f64, unit: &str) -> String {
    if unit == "bytes" {
        let mut v = v;
        for u in ["B", "KiB", "MiB", "GiB", "TiB"] {
            if v.abs() < 1024.0 || u == "TiB" {
                return if u == "B" {
                    format!("{v:.0} {u}")
                } else {
                    format!("{v:.1} {u}")
                };
            }
            v /= 1024.0;
        }
    }
    if unit == "cores" {
        return format!("{v:.2}");
    }
    if v.abs() >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if v.abs() >= 1e4 {
        format!("{:.1}k", v / 1e3)
    } else if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

/// An inline SVG sparkline of `values` (its own scale, zero at the bottom).
fn sparkline(values: &[f64]) -> String {
    const W: f64 = 360.0;
    const H: f64 = 40.0;
    let max = values.iter().copied().fold(0.0_f64, f64::max);
    let n = values.len();
    let mut pts = String::new();
    for (i, v) in values.iter().enumerate() {
        let x = if n > 1 {
            i as f64 * W / (n - 1) as f64
        } else {
            W
        };
        let y = if max > 0.0 {
            H - v / max * (H - 2.0) - 1.0
        } else {
            H - 1.0
        };
        pts.push_str(&format!("{x:.1},{y:.1} "));
    }
    format!(
        "<svg class=\"spark\" viewBox=\"0 0 {W} {H}\" width=\"{W}\" height=\"{H}\" \
         role=\"img\" aria-label=\"max {max:.1}/s\"><polyline fill=\"none\" \
         stroke=\"#2b6cb0\" stroke-width=\"1.5\" points=\"{}\"/></svg>",
        pts.trim_end()
    )
}

fn ago(ms: u64, now: u64) -> String {
    let s = now.saturating_sub(ms) / 1000;
    if s < 120 {
        format!("{s} s ago")
    } else if s < 7200 {
        format!("{} min ago", s / 60)
    } else {
        format!("{} h ago", s / 3600)
    }
}

pub fn html(s: &Status) -> String {
    let now = crate::node::now_ms();
    let mut h = String::with_capacity(16 * 1024);
    h.push_str(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width\">",
    );
    h.push_str(&format!(
        "<title>Levee status — {}</title>",
        esc(&s.identity.hostname)
    ));
    h.push_str(
        "<style>body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#1a202c;\
         background:#f7fafc}h1{font-size:1.4em;margin:0 0 .2em}h2{font-size:1.1em;\
         margin:1.4em 0 .4em}table{border-collapse:collapse;background:#fff}\
         td,th{border:1px solid #e2e8f0;padding:.25em .6em;text-align:left}\
         th{background:#edf2f7}.ok{background:#c6f6d5}.warn{background:#fefcbf}\
         .critical{background:#fed7d7}.num{text-align:right;font-variant-numeric:tabular-nums}\
         .pill{display:inline-block;padding:0 .5em;border-radius:.6em;font-weight:600}\
         .muted{color:#718096}.spark{background:#fff;border:1px solid #e2e8f0}\
         .bar{background:#e2e8f0;width:120px;height:10px;display:inline-block}\
         .bar>span{display:block;height:10px}.bar>.ok{background:#38a169}\
         .bar>.warn{background:#d69e2e}.bar>.critical{background:#e53e3e}\
         tr.resource.ok{background:#fff}tr.resource.warn{background:#fffff0}\
         tr.resource.critical{background:#fff5f5}</style></head><body>",
    );
    let ready = if s.ready {
        "<span class=\"pill ok\">READY</span>"
    } else {
        "<span class=\"pill critical\">NOT READY</span>"
    };
    h.push_str(&format!(
        "<h1>Levee {} {ready}</h1><div class=\"muted\">{} · pid {} · host {} · up {} s · \
         API {} · admin {} · account {} · {}</div>",
        esc(s.identity.version),
        esc(&s.role),
        s.identity.pid,
        esc(&s.identity.hostname),
        s.uptime_s,
        esc(s.identity.api.as_deref().unwrap_or("not yet listening")),
        esc(&s.identity.admin),
        esc(&s.identity.account_id),
        esc(&s.identity.region),
    ));
    h.push_str(&format!(
        "<h2>Shard map</h2><table><tr><th>version</th><th>age</th><th>checksum</th>\
         <th>valid</th></tr><tr id=\"shard-map\"><td class=\"num\">{}</td><td class=\"num\">\
         {:.0} s</td><td><code>{:08x}</code></td><td class=\"{}\">{}</td></tr></table>",
        s.shard_map.version,
        s.shard_map.age_s,
        s.shard_map.checksum,
        if s.shard_map.valid { "ok" } else { "critical" },
        s.shard_map.valid
    ));
    if let Some(k) = &s.shard_map.keeper {
        if let Some(why) = &k.not_ready_reason {
            h.push_str(&format!(
                "<p class=\"critical\" id=\"map-not-ready\">not ready: {}</p>",
                esc(why)
            ));
        }
        for a in &k.alarms {
            h.push_str(&format!(
                "<p class=\"critical map-alarm\">map alarm <b>{}</b>: {}</p>",
                esc(a.kind),
                esc(&a.message)
            ));
        }
        let gens: Vec<String> = k.generations.iter().map(u64::to_string).collect();
        h.push_str(&format!(
            "<div class=\"muted\">persisted generations {} in {} · boot loaded {} in {} µs</div>",
            esc(&gens.join(", ")),
            esc(&k.location),
            k.boot
                .loaded
                .map_or_else(|| "none".to_owned(), |v| v.to_string()),
            k.boot.took_us
        ));
    }
    let tp = &s.throughput;
    h.push_str("<h2>Throughput (last 3 hours)</h2><table>");
    for (label, vals) in [
        ("requests/s", &tp.requests_per_s),
        ("errors/s", &tp.errors_per_s),
        ("records in/s", &tp.in_records_per_s),
        ("bytes in/s", &tp.in_bytes_per_s),
        ("records out/s", &tp.out_records_per_s),
        ("bytes out/s", &tp.out_bytes_per_s),
    ] {
        let last = vals.last().copied().unwrap_or(0.0);
        h.push_str(&format!(
            "<tr><th>{label}</th><td>{}</td><td class=\"num\">{}</td></tr>",
            sparkline(vals),
            human(
                last,
                if label.starts_with("bytes") {
                    "bytes"
                } else {
                    ""
                }
            )
        ));
    }
    h.push_str(&format!(
        "</table><div class=\"muted\">{} samples · totals: {} requests, {} errors, {} records \
         in, {} records out</div>",
        tp.at_ms.len() + 1,
        s.totals.requests,
        s.totals.errors,
        s.totals.in_records,
        s.totals.out_records
    ));
    h.push_str(&format!(
        "<h2>Streams ({})</h2><table><tr><th>stream</th><th>state</th><th>open shards</th>\
         <th>shards</th></tr>",
        s.streams.len()
    ));
    for st in &s.streams {
        let shards: Vec<String> = st
            .shards
            .iter()
            .map(|x| {
                format!(
                    "<span class=\"{}\">{}</span>",
                    if x.state == "OPEN" { "" } else { "muted" },
                    esc(&x.shard_id)
                )
            })
            .collect();
        h.push_str(&format!(
            "<tr class=\"stream\"><td>{}</td><td>{}</td><td class=\"num\">{}</td><td>{}</td></tr>",
            esc(&st.name),
            esc(&st.state),
            st.open_shards,
            shards.join(" ")
        ));
    }
    h.push_str(
        "</table><h2>Resources against limits</h2><table><tr><th>resource</th><th>used</th>\
         <th>limit</th><th></th><th>limit source</th><th>alarm</th></tr>",
    );
    for r in &s.resources {
        let pct = r.limit.filter(|l| *l > 0.0).map(|l| r.used * 100.0 / l);
        let bar = match pct {
            Some(p) => format!(
                "<span class=\"bar\"><span class=\"{}\" style=\"width:{:.0}%\"></span></span> {p:.1}%",
                r.alarm.as_str(),
                p.min(100.0)
            ),
            None => String::new(),
        };
        h.push_str(&format!(
            "<tr class=\"resource {a}\" data-resource=\"{}\"><td>{}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td>{bar}</td><td class=\"muted\">{}</td>\
             <td><span class=\"pill {a}\">{}</span></td></tr>",
            r.name,
            r.name,
            human(r.used, r.unit),
            r.limit.map_or("—".into(), |l| human(l, r.unit)),
            esc(r.limit_name),
            r.alarm.as_str(),
            a = r.alarm.as_str(),
        ));
    }
    h.push_str("</table><h2>Recent errors</h2>");
    if s.recent_errors.is_empty() {
        h.push_str("<p class=\"muted\">none</p>");
    } else {
        h.push_str("<table><tr><th>when</th><th>operation</th><th>error</th><th>message</th></tr>");
        for e in s.recent_errors.iter().take(20) {
            h.push_str(&format!(
                "<tr class=\"error\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                ago(e.at_ms, now),
                e.operation,
                e.error,
                esc(&e.message)
            ));
        }
        h.push_str("</table>");
    }
    h.push_str(
        "<p class=\"muted\">Served by the node itself from local state; \
         <a href=\"/status.json\">JSON</a> · <a href=\"/metrics\">metrics</a></p></body></html>",
    );
    h
}
