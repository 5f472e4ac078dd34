//! `levee status --fleet`: the whole fleet's status with no control plane (F8, R7). The node
//! table comes from a node's own persisted shard map (`<data-dir>/map`, the newest generation
//! that checks out — the map every front-end and storage node already keeps); each node is then
//! asked for its `/status.json` on its admin listener, all at once (at most
//! [`FLEET_FETCHES_IN_FLIGHT_MAX`] in flight, each within [`FLEET_STATUS_TIMEOUT_MS`]). A node
//! that does not answer is shown down; it is never an error.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use levee_frontend::map_follow::MapDisk;
use levee_map::{NodeRole, ShardMap};
use serde::Serialize;
use serde_json::Value;

/// How long one node's `/status.json` may take before it is shown down.
pub const FLEET_STATUS_TIMEOUT_MS: u64 = 2_000;
/// Nodes asked at once.
pub const FLEET_FETCHES_IN_FLIGHT_MAX: usize = 32;

/// One node of the map and what it answered.
#[derive(Debug, Clone, Serialize)]
pub struct NodeReport {
    pub id: u64,
    #[serde(serialize_with = "role_name")]
    pub role: NodeRole,
    pub cell: String,
    pub address: String,
    /// Where it was asked (empty when the map has no admin address for it).
    pub admin: String,
    pub reachable: bool,
    pub ready: Option<bool>,
    /// Why it is shown down.
    pub error: Option<String>,
    /// Its `/status.json` (not printed; the summary fields below come from it).
    #[serde(skip)]
    pub status: Option<Value>,
    pub map_version: Option<u64>,
    pub uptime_s: Option<u64>,
    pub threads: Option<f64>,
    pub fds: Option<f64>,
    pub fd_limit: Option<f64>,
    /// The worst resource alarm it reports and the resources at it ("ok", "warn: fds", …).
    pub alarm: Option<String>,
}

fn role_name<S: serde::Serializer>(role: &NodeRole, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(role.as_str())
}

/// The fleet as one node's map lists it.
#[derive(Debug, Clone, Serialize)]
pub struct FleetView {
    /// The map generation the node table was read from.
    pub map_version: u64,
    pub map_dir: String,
    pub nodes: Vec<NodeReport>,
}

/// The newest persisted map in `<data-dir>/map` that decodes and checks out.
pub fn local_map(data_dir: &Path) -> anyhow::Result<ShardMap> {
    let dir = data_dir.join("map");
    anyhow::ensure!(
        dir.is_dir(),
        "{} has no persisted shard map (is {} a fleet node's data directory?)",
        dir.display(),
        data_dir.display()
    );
    let disk = crate::map_publish::VfsMapDisk::open(Arc::new(levee_storage::vfs::OsVfs), dir)?;
    let mut versions = disk
        .generations()
        .with_context(|| format!("listing {}", disk.location()))?;
    versions.sort_unstable_by(|a, b| b.cmp(a));
    let mut why = Vec::new();
    for v in versions {
        match disk
            .read(v)
            .map_err(anyhow::Error::from)
            .and_then(|b| Ok(levee_map::codec::decode_map(&b)?))
        {
            Ok(map) => return Ok(map),
            Err(e) => why.push(format!("generation {v}: {e}")),
        }
    }
    anyhow::bail!(
        "no valid shard map generation in {}{}",
        disk.location(),
        if why.is_empty() {
            String::new()
        } else {
            format!(" ({})", why.join("; "))
        }
    )
}

/// Where to reach a node's admin listener: its admin address, with a wildcard IP replaced by
/// the IP of its inter-node address (a node listening on all interfaces).
pub fn admin_target(entry: &levee_map::NodeEntry) -> Option<String> {
    let admin: SocketAddr = entry.admin.parse().ok()?;
    if admin.ip().is_unspecified() {
        let node: SocketAddr = entry.address.parse().ok()?;
        return Some(SocketAddr::new(node.ip(), admin.port()).to_string());
    }
    Some(admin.to_string())
}

async fn fetch(admin: String) -> Result<Value, String> {
    let url = format!("http://{admin}/status.json");
    let (code, body) = super::client::request(
        "GET",
        &url,
        "application/json",
        b"",
        Duration::from_millis(FLEET_STATUS_TIMEOUT_MS),
    )
    .await
    .map_err(|e| format!("{e:#}"))?;
    if code != 200 {
        return Err(format!("{url} answered HTTP {code}"));
    }
    serde_json::from_slice(&body).map_err(|e| format!("{url}: {e}"))
}

/// Reads the local map and asks every node it lists for its status.
pub fn gather(data_dir: &Path) -> anyhow::Result<FleetView> {
    let map = local_map(data_dir)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let permits = Arc::new(tokio::sync::Semaphore::new(FLEET_FETCHES_IN_FLIGHT_MAX));
    let nodes = rt.block_on(async {
        let mut tasks = tokio::task::JoinSet::new();
        for (i, entry) in map.nodes().values().enumerate() {
            let target = admin_target(entry);
            let permits = permits.clone();
            tasks.spawn(async move {
                let answer = match target {
                    None => Err("no admin address in the map".to_string()),
                    Some(admin) => {
                        let _permit = permits.acquire_owned().await;
                        fetch(admin).await
                    }
                };
                (i, answer)
            });
        }
        let mut answers: Vec<Result<Value, String>> = (0..map.nodes().len())
            .map(|_| Err("no answer".to_string()))
            .collect();
        while let Some(done) = tasks.join_next().await {
            if let Ok((i, a)) = done {
                if let Some(slot) = answers.get_mut(i) {
                    *slot = a;
                }
            }
        }
        answers
    });
    let mut reports = Vec::new();
    for ((id, entry), answer) in map.nodes().iter().zip(nodes) {
        let mut r = NodeReport {
            id: id.0,
            role: entry.role,
            cell: entry.cell.clone(),
            address: entry.address.clone(),
            admin: admin_target(entry).unwrap_or_default(),
            reachable: false,
            ready: None,
            error: None,
            status: None,
            map_version: None,
            uptime_s: None,
            threads: None,
            fds: None,
            fd_limit: None,
            alarm: None,
        };
        match answer {
            Err(e) => r.error = Some(e),
            Ok(s) => {
                let resource = |name: &str| {
                    s["resources"]
                        .as_array()
                        .and_then(|a| a.iter().find(|x| x["name"] == name))
                        .cloned()
                };
                r.reachable = true;
                r.ready = s["ready"].as_bool();
                r.map_version = s["shard_map"]["version"].as_u64();
                r.uptime_s = s["uptime_s"].as_u64();
                r.threads = resource("threads").and_then(|t| t["used"].as_f64());
                let fds = resource("fds");
                r.fds = fds.as_ref().and_then(|f| f["used"].as_f64());
                r.fd_limit = fds.as_ref().and_then(|f| f["limit"].as_f64());
                r.alarm = s["resources"].as_array().map(|a| worst_alarm(a));
                r.status = Some(s);
            }
        }
        reports.push(r);
    }
    // Control nodes first, then storage nodes, then front-ends; by cell and id within.
    reports.sort_by(|a, b| {
        let rank = |r: NodeRole| match r {
            NodeRole::Control => 0,
            NodeRole::Storage => 1,
            NodeRole::Frontend => 2,
        };
        (rank(a.role), &a.cell, a.id).cmp(&(rank(b.role), &b.cell, b.id))
    });
    Ok(FleetView {
        map_version: map.version(),
        map_dir: data_dir.join("map").display().to_string(),
        nodes: reports,
    })
}

/// The worst alarm of a node's resources and what raised it: "ok", "warn: fds", …
fn worst_alarm(resources: &[Value]) -> String {
    let level = |a: &str| match a {
        "critical" => 2,
        "warn" => 1,
        _ => 0,
    };
    let worst = resources
        .iter()
        .filter_map(|x| x["alarm"].as_str())
        .map(level)
        .max()
        .unwrap_or(0);
    if worst == 0 {
        return "ok".into();
    }
    let names: Vec<&str> = resources
        .iter()
        .filter(|x| x["alarm"].as_str().map(level) == Some(worst))
        .filter_map(|x| x["name"].as_str())
        .collect();
    format!(
        "{}: {}",
        if worst == 2 { "critical" } else { "warn" },
        names.join(",")
    )
}

fn opt<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map_or("-".into(), |v| v.to_string())
}

/// The fleet view as a table.
pub fn render(view: &FleetView) -> String {
    let mut o = String::new();
    let up = view.nodes.iter().filter(|n| n.reachable).count();
    let _ = writeln!(
        o,
        "Fleet from {} (map version {}): {} nodes, {} up, {} down",
        view.map_dir,
        view.map_version,
        view.nodes.len(),
        up,
        view.nodes.len() - up
    );
    let _ = writeln!(
        o,
        "{:<20} {:<8} {:<8} {:<21} {:<21} {:<9} {:>6} {:>8} {:>7} {:>12}  ALARM",
        "NODE", "ROLE", "CELL", "ADDRESS", "ADMIN", "STATE", "MAP", "UPTIME", "THREADS", "FDS"
    );
    for n in &view.nodes {
        let state = match (n.reachable, n.ready) {
            (false, _) => "DOWN",
            (true, Some(true)) => "ready",
            (true, _) => "NOT READY",
        };
        let fds = match (n.fds, n.fd_limit) {
            (Some(f), Some(l)) => format!("{f:.0}/{l:.0}"),
            (Some(f), None) => format!("{f:.0}"),
            _ => "-".into(),
        };
        let _ = writeln!(
            o,
            "{:<20} {:<8} {:<8} {:<21} {:<21} {:<9} {:>6} {:>8} {:>7} {:>12}  {}",
            n.id,
            n.role.as_str(),
            n.cell,
            n.address,
            if n.admin.is_empty() { "-" } else { &n.admin },
            state,
            opt(n.map_version),
            n.uptime_s.map_or("-".into(), |u| format!("{u} s")),
            opt(n.threads.map(|t| t as u64)),
            fds,
            n.alarm.as_deref().unwrap_or("-")
        );
    }
    if view.nodes.is_empty() {
        let _ = writeln!(
            o,
            "The map lists no nodes: an embedded node's map has none (use `levee status`), and a \
             fleet node's lists them once they have registered."
        );
    }
    for n in view.nodes.iter().filter(|n| !n.reachable) {
        let _ = writeln!(
            o,
            "down: {} {} ({}): {}",
            n.role.as_str(),
            n.id,
            n.address,
            n.error.as_deref().unwrap_or("no answer")
        );
    }
    o
}

/// `levee status --fleet`.
pub fn run(data_dir: &Path, json: bool) -> anyhow::Result<()> {
    let view = gather(data_dir)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&view)?);
    } else {
        print!("{}", render(&view));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_worst_alarm_names_its_resources() {
        let r = |name: &str, alarm: &str| serde_json::json!({"name": name, "alarm": alarm});
        assert_eq!(worst_alarm(&[r("fds", "ok")]), "ok");
        assert_eq!(
            worst_alarm(&[
                r("fds", "warn"),
                r("disk_bytes", "critical"),
                r("cpu", "critical")
            ]),
            "critical: disk_bytes,cpu"
        );
        assert_eq!(
            worst_alarm(&[r("fds", "warn"), r("cpu", "ok")]),
            "warn: fds"
        );
    }

    #[test]
    fn a_wildcard_admin_address_is_reached_at_the_node_s_own_ip() {
        let entry = |address: &str, admin: &str| levee_map::NodeEntry {
            address: address.into(),
            cell: "cell-1".into(),
            role: NodeRole::Storage,
            admin: admin.into(),
        };
        assert_eq!(
            admin_target(&entry("10.0.1.1:4592", "0.0.0.0:4590")).as_deref(),
            Some("10.0.1.1:4590")
        );
        assert_eq!(
            admin_target(&entry("10.0.1.1:4592", "127.0.0.1:4590")).as_deref(),
            Some("127.0.0.1:4590")
        );
        assert_eq!(admin_target(&entry("10.0.1.1:4592", "")), None);
    }
}
