//! `levee admin capacity-check`: before nodes are added, whether any node's worst-case threads,
//! fds or connections would cross its alarm threshold (F2: in the 2020 outage a small capacity
//! addition pushed every front-end past the OS thread limit at once).
//!
//! Inputs: the node table of the local persisted map (no control plane needed) and each node's
//! own `/status.json` — its measured threads and fds against its fd limit, and its [`Budget`]
//! (the caps of its inter-node connections, from its settings). The model, per role:
//!
//! - **front-end**: connections to storage nodes = min(storage nodes, its pool cap), plus its
//!   control connections (fixed). The pool is an LRU, full by design: capped, never flagged.
//! - **storage node**: inbound connections = the front-ends (each holds at most one), against
//!   its storage listener's cap.
//! - **control node**: inbound connections = [`CONTROL_CONNECTIONS_PER_NODE`] per front-end and
//!   storage node, against its control listener's cap, and one map long poll each, against its
//!   map-poll admission cap.
//! - **threads** are fixed by each node's budget (R1): shown, never changed by an addition.
//! - **fds** = the fds open now + the connections the addition adds.
//!
//! A node's fds are flagged when their projection reaches [`CAPACITY_ALARM_PERCENT`] of its fd
//! limit (the resource alarms' warn level; connections are fds, so this covers them too). A
//! connection count is flagged when it would pass the listener's cap (the excess would be
//! refused), and a cell's node count when it would pass the control plane's cell cap (the
//! registration would be refused). Every node is assumed reachable from every front-end
//! (the worst case; cells do not shrink it). This module's model is pure; [`run`] does the I/O.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use super::fleet_view::{self, NodeReport};
use crate::config::ServeConfig;

/// A projection at or past this share of its limit is flagged: the resource alarms' warn level
/// (a lowered fd limit is flagged before the addition, not by the alarm after it).
pub const CAPACITY_ALARM_PERCENT: f64 = super::resources::WARN_PERCENT;
/// Connections a storage node or front-end holds to one control node at most: its control
/// client's pool and its map follower's own pool (`fleet::remote_control`, `follow`).
pub const CONTROL_CONNECTIONS_PER_NODE: u64 = 2;

/// A node's own caps on inter-node connections and its worst case, as its `/status.json`
/// reports them (`budget`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Budget {
    /// `<data-dir>/node.id`, for a fleet node.
    pub node_id: Option<u64>,
    pub cell: String,
    /// "control", "storage", "frontend".
    pub roles: Vec<String>,
    /// The start-up check's worst case from the settings.
    pub threads: u64,
    pub fds: u64,
    pub connections: u64,
    /// A front-end's pool of connections to storage nodes (LRU past it).
    pub storage_pool_connections_max: u64,
    /// Control addresses this node knows, and the connections it keeps to each at most.
    pub control_addresses: u64,
    pub control_connections_per_address: u64,
    /// A storage node's inbound cap (front-ends past it are refused).
    pub storage_server_connections_max: u64,
    /// A control node's inbound cap and its map long-poll admission cap.
    pub control_server_connections_max: u64,
    pub control_map_polls_max: u64,
    /// A control node's cell caps (registrations past them are refused).
    pub storage_nodes_per_cell_max: u64,
    pub frontends_per_cell_max: u64,
}

/// This process's budget, from its settings and the caps the fleet code uses.
pub fn budget(cfg: &ServeConfig) -> Budget {
    let needs = super::needs(cfg);
    let roles = cfg.roles;
    let mut names = Vec::new();
    for (on, name) in [
        (roles.control, "control"),
        (roles.storage, "storage"),
        (roles.frontend, "frontend"),
    ] {
        if on {
            names.push(name.to_string());
        }
    }
    let control = levee_rpc::control::ControlServerConfig::default();
    Budget {
        node_id: read_node_id(&cfg.data_dir),
        cell: cfg.cell.clone(),
        roles: names,
        threads: needs.threads,
        fds: needs.fds,
        connections: needs.connections,
        storage_pool_connections_max: if roles.frontend && !roles.embedded() {
            levee_rpc::PoolConfig::default().connections_max as u64
        } else {
            0
        },
        control_addresses: cfg.control.len().max(1) as u64,
        control_connections_per_address: CONTROL_CONNECTIONS_PER_NODE,
        storage_server_connections_max: if roles.storage && !roles.embedded() {
            levee_rpc::ServerConfig::default().connections_max as u64
        } else {
            0
        },
        control_server_connections_max: if roles.control && !roles.embedded() {
            control.connections_max as u64
        } else {
            0
        },
        control_map_polls_max: if roles.control && !roles.embedded() {
            control.map_polls_in_flight_max as u64
        } else {
            0
        },
        storage_nodes_per_cell_max: u64::from(cfg.storage_nodes_per_cell_max),
        frontends_per_cell_max: u64::from(cfg.frontends_per_cell_max),
    }
}

/// The node id in `<data-dir>/node.id`, if there is one (never creates it).
fn read_node_id(data_dir: &std::path::Path) -> Option<u64> {
    std::fs::read_to_string(data_dir.join("node.id"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// The planned addition.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    pub add_storage: u64,
    pub add_frontends: u64,
    /// The cell the new nodes join (its caps are checked); `None` when the fleet has one cell.
    pub cell: Option<String>,
}

/// What a row concluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Ok,
    /// Fixed by the budget (threads, R1).
    Unchanged,
    /// Bounded by an LRU pool: full by design.
    Capped,
    /// At or past the threshold after the addition.
    Flagged,
    /// The node did not answer; nothing is known.
    Unknown,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Ok => "ok",
            Verdict::Unchanged => "unchanged",
            Verdict::Capped => "capped",
            Verdict::Flagged => "FLAGGED",
            Verdict::Unknown => "unknown",
        }
    }
}

/// One line of the report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    /// The node id, or `cell <id>` for a cell cap.
    pub node: String,
    pub role: String,
    pub address: String,
    pub metric: &'static str,
    pub now: Option<f64>,
    pub projected: Option<f64>,
    pub limit: Option<f64>,
    pub threshold: Option<f64>,
    pub verdict: Verdict,
}

/// What a node measured and reported (None fields: not reported).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Measured {
    pub threads: Option<f64>,
    pub fds: Option<f64>,
    pub fd_limit: Option<f64>,
    pub budget: Budget,
}

/// A node of the map and, if it answered, what it reported.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub id: u64,
    pub role: levee_map::NodeRole,
    pub cell: String,
    pub address: String,
    pub measured: Option<Measured>,
}

fn threshold_of(limit: f64) -> f64 {
    limit * CAPACITY_ALARM_PERCENT / 100.0
}

/// Past a cap: what the listener or the catalog would refuse.
fn over_cap(projected: u64, cap: u64) -> (Option<f64>, Verdict) {
    (
        Some(cap as f64),
        if projected > cap {
            Verdict::Flagged
        } else {
            Verdict::Ok
        },
    )
}

fn judged(projected: f64, limit: Option<f64>) -> (Option<f64>, Verdict) {
    match limit.filter(|l| *l > 0.0) {
        Some(l) => {
            let t = threshold_of(l);
            (
                Some(t),
                if projected >= t {
                    Verdict::Flagged
                } else {
                    Verdict::Ok
                },
            )
        }
        None => (None, Verdict::Ok),
    }
}

/// The report for `plan` over `nodes` (pure).
pub fn check(nodes: &[Node], plan: &Plan) -> Vec<Row> {
    use levee_map::NodeRole;
    let count = |role: NodeRole| nodes.iter().filter(|n| n.role == role).count() as u64;
    let (storage_now, frontends_now) = (count(NodeRole::Storage), count(NodeRole::Frontend));
    let (storage_after, frontends_after) = (
        storage_now + plan.add_storage,
        frontends_now + plan.add_frontends,
    );
    let mut rows = Vec::new();
    for n in nodes {
        let row = |metric, now, projected, limit, threshold, verdict| Row {
            node: n.id.to_string(),
            role: n.role.as_str().to_string(),
            address: n.address.clone(),
            metric,
            now,
            projected,
            limit,
            threshold,
            verdict,
        };
        let Some(m) = &n.measured else {
            rows.push(row("status", None, None, None, None, Verdict::Unknown));
            continue;
        };
        let b = &m.budget;
        rows.push(row(
            "threads",
            m.threads,
            m.threads,
            Some(b.threads as f64).filter(|t| *t > 0.0),
            None,
            Verdict::Unchanged,
        ));
        // Connections before and after, and the fds the change adds (only connections a
        // listener accepts hold an fd).
        let added_fds = match n.role {
            NodeRole::Frontend => {
                let cap = b.storage_pool_connections_max;
                let control = b.control_addresses * b.control_connections_per_address;
                let now = storage_now.min(cap) + control;
                let after = storage_after.min(cap) + control;
                rows.push(row(
                    "connections",
                    Some(now as f64),
                    Some(after as f64),
                    Some((cap + control) as f64),
                    None,
                    Verdict::Capped,
                ));
                after - now
            }
            NodeRole::Storage => {
                let cap = b.storage_server_connections_max;
                let (threshold, verdict) = over_cap(frontends_after, cap);
                rows.push(row(
                    "connections",
                    Some(frontends_now as f64),
                    Some(frontends_after as f64),
                    Some(cap as f64),
                    threshold,
                    verdict,
                ));
                frontends_after.min(cap) - frontends_now.min(cap)
            }
            NodeRole::Control => {
                let cap = b.control_server_connections_max;
                let per = b.control_connections_per_address.max(1);
                let (now, after) = (
                    (storage_now + frontends_now) * per,
                    (storage_after + frontends_after) * per,
                );
                let (threshold, verdict) = over_cap(after, cap);
                rows.push(row(
                    "connections",
                    Some(now as f64),
                    Some(after as f64),
                    Some(cap as f64),
                    threshold,
                    verdict,
                ));
                let polls = b.control_map_polls_max;
                let (t, v) = over_cap(storage_after + frontends_after, polls);
                rows.push(row(
                    "map_polls",
                    Some((storage_now + frontends_now) as f64),
                    Some((storage_after + frontends_after) as f64),
                    Some(polls as f64),
                    t,
                    v,
                ));
                after.min(cap) - now.min(cap)
            }
        };
        match m.fds {
            Some(fds) => {
                let projected = fds + added_fds as f64;
                let (threshold, verdict) = judged(projected, m.fd_limit);
                rows.push(row(
                    "fds",
                    Some(fds),
                    Some(projected),
                    m.fd_limit,
                    threshold,
                    verdict,
                ));
            }
            None => rows.push(row("fds", None, None, None, None, Verdict::Unknown)),
        }
    }
    // The cell caps, as a control node reports them: past them registration is refused.
    let cells: std::collections::BTreeSet<&str> = nodes.iter().map(|n| n.cell.as_str()).collect();
    let cell = plan
        .cell
        .clone()
        .or_else(|| (cells.len() == 1).then(|| cells.iter().next().map(|c| c.to_string()))?);
    let caps = nodes
        .iter()
        .filter(|n| n.role == NodeRole::Control)
        .filter_map(|n| n.measured.as_ref())
        .map(|m| {
            (
                m.budget.storage_nodes_per_cell_max,
                m.budget.frontends_per_cell_max,
            )
        })
        .find(|caps| caps.0 > 0 && caps.1 > 0);
    if let (Some(cell), Some((storage_cap, frontend_cap))) = (cell, caps) {
        for (metric, role, add, cap) in [
            (
                "storage_nodes",
                NodeRole::Storage,
                plan.add_storage,
                storage_cap,
            ),
            (
                "frontends",
                NodeRole::Frontend,
                plan.add_frontends,
                frontend_cap,
            ),
        ] {
            let now = nodes
                .iter()
                .filter(|n| n.role == role && n.cell == cell)
                .count() as u64;
            let after = now + add;
            rows.push(Row {
                node: format!("cell {cell}"),
                role: "cell".into(),
                address: "-".into(),
                metric,
                now: Some(now as f64),
                projected: Some(after as f64),
                limit: Some(cap as f64),
                threshold: Some(cap as f64),
                verdict: if after > cap {
                    Verdict::Flagged
                } else {
                    Verdict::Ok
                },
            });
        }
    }
    rows
}

fn num(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{v:.0}"))
}

/// The report as a table, then one line per flagged row.
pub fn render(rows: &[Row], plan: &Plan) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "Capacity check: adding {} storage node(s) and {} front-end(s){}; flagged at {:.0} % of a limit",
        plan.add_storage,
        plan.add_frontends,
        plan.cell
            .as_ref()
            .map_or(String::new(), |c| format!(" to cell {c}")),
        CAPACITY_ALARM_PERCENT
    );
    let _ = writeln!(
        o,
        "{:<20} {:<8} {:<21} {:<13} {:>8} {:>10} {:>8} {:>10}  VERDICT",
        "NODE", "ROLE", "ADDRESS", "METRIC", "NOW", "PROJECTED", "LIMIT", "THRESHOLD"
    );
    for r in rows {
        let _ = writeln!(
            o,
            "{:<20} {:<8} {:<21} {:<13} {:>8} {:>10} {:>8} {:>10}  {}",
            r.node,
            r.role,
            r.address,
            r.metric,
            num(r.now),
            num(r.projected),
            num(r.limit),
            num(r.threshold),
            r.verdict.as_str()
        );
    }
    let flagged: Vec<&Row> = rows
        .iter()
        .filter(|r| r.verdict == Verdict::Flagged)
        .collect();
    let unknown = rows
        .iter()
        .filter(|r| r.verdict == Verdict::Unknown)
        .count();
    if unknown > 0 {
        let _ = writeln!(
            o,
            "\n{unknown} row(s) unknown: those nodes did not answer on their admin listener."
        );
    }
    if flagged.is_empty() {
        let _ = writeln!(o, "\nOK: no node would reach an alarm threshold.");
    } else {
        let _ = writeln!(o);
        for r in &flagged {
            let _ = writeln!(
                o,
                "FLAGGED: {} {} ({}): {} would be {} of limit {} (threshold {})",
                r.role,
                r.node,
                r.address,
                r.metric,
                num(r.projected),
                num(r.limit),
                num(r.threshold)
            );
        }
    }
    o
}

/// `levee admin capacity-check`: prints the report; an error (exit status 1) when a row is
/// flagged.
pub fn run(data_dir: &std::path::Path, plan: Plan, json: bool) -> anyhow::Result<()> {
    let view = fleet_view::gather(data_dir)?;
    let nodes: Vec<Node> = view.nodes.iter().map(node_of).collect();
    let rows = check(&nodes, &plan);
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "map_version": view.map_version,
                "add_storage": plan.add_storage,
                "add_frontends": plan.add_frontends,
                "cell": plan.cell,
                "threshold_percent": CAPACITY_ALARM_PERCENT,
                "rows": rows,
            }))?
        );
    } else {
        print!("{}", render(&rows, &plan));
    }
    let flagged = rows
        .iter()
        .filter(|r| r.verdict == Verdict::Flagged)
        .count();
    anyhow::ensure!(
        flagged == 0,
        "capacity check: {flagged} row(s) flagged; do not add these nodes as planned"
    );
    Ok(())
}

/// A node of the fleet view as the model reads it.
fn node_of(r: &NodeReport) -> Node {
    let measured = r.status.as_ref().map(|s| {
        let resource = |name: &str| {
            s["resources"]
                .as_array()
                .and_then(|a| a.iter().find(|x| x["name"] == name))
                .cloned()
        };
        let fds = resource("fds");
        Measured {
            threads: resource("threads").and_then(|t| t["used"].as_f64()),
            fds: fds.as_ref().and_then(|f| f["used"].as_f64()),
            fd_limit: fds.as_ref().and_then(|f| f["limit"].as_f64()),
            budget: serde_json::from_value(s["budget"].clone()).unwrap_or_default(),
        }
    });
    Node {
        id: r.id,
        role: r.role,
        cell: r.cell.clone(),
        address: r.address.clone(),
        measured,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use levee_map::NodeRole;

    fn node(id: u64, role: NodeRole, fds: f64, fd_limit: f64) -> Node {
        Node {
            id,
            role,
            cell: "cell-1".into(),
            address: format!("127.0.0.{id}:7000"),
            measured: Some(Measured {
                threads: Some(20.0),
                fds: Some(fds),
                fd_limit: Some(fd_limit),
                budget: Budget {
                    threads: 30,
                    storage_pool_connections_max: 64,
                    control_addresses: 1,
                    control_connections_per_address: 2,
                    storage_server_connections_max: 256,
                    control_server_connections_max: 1024,
                    control_map_polls_max: 1024,
                    storage_nodes_per_cell_max: 1024,
                    frontends_per_cell_max: 256,
                    ..Budget::default()
                },
            }),
        }
    }

    fn fleet() -> Vec<Node> {
        vec![
            node(1, NodeRole::Control, 40.0, 20_000.0),
            node(2, NodeRole::Storage, 50.0, 512.0),
            node(3, NodeRole::Storage, 50.0, 20_000.0),
            node(4, NodeRole::Frontend, 60.0, 20_000.0),
            node(5, NodeRole::Frontend, 60.0, 20_000.0),
        ]
    }

    fn find<'a>(rows: &'a [Row], node: &str, metric: &str) -> &'a Row {
        rows.iter()
            .find(|r| r.node == node && r.metric == metric)
            .unwrap_or_else(|| panic!("{node} {metric} in {rows:#?}"))
    }

    fn plan(add_storage: u64, add_frontends: u64) -> Plan {
        Plan {
            add_storage,
            add_frontends,
            cell: None,
        }
    }

    #[test]
    fn a_small_addition_flags_nothing_and_threads_never_change() {
        let rows = check(&fleet(), &plan(1, 1));
        assert!(
            rows.iter().all(|r| r.verdict != Verdict::Flagged),
            "{rows:#?}"
        );
        for id in ["1", "2", "4"] {
            let t = find(&rows, id, "threads");
            assert_eq!(
                (t.now, t.projected, t.verdict),
                (Some(20.0), Some(20.0), Verdict::Unchanged)
            );
        }
        // A front-end gains one storage connection (3 storage nodes, under its pool cap of 64).
        let f = find(&rows, "4", "fds");
        assert_eq!((f.now, f.projected), (Some(60.0), Some(61.0)));
        // A storage node gains one front-end; the control plane two connections per node.
        assert_eq!(find(&rows, "2", "fds").projected, Some(51.0));
        let c = find(&rows, "1", "connections");
        assert_eq!((c.now, c.projected), (Some(8.0), Some(12.0)));
        assert_eq!(find(&rows, "1", "fds").projected, Some(44.0));
        assert_eq!(find(&rows, "cell cell-1", "frontends").projected, Some(3.0));
    }

    #[test]
    fn crossing_half_a_lowered_fd_limit_is_flagged_on_that_node_only() {
        // 210 front-ends more: the storage node under 512 fds reaches 50 + 210 = 260 ≥ 256.
        let rows = check(&fleet(), &plan(0, 210));
        let f = find(&rows, "2", "fds");
        assert_eq!(f.projected, Some(260.0));
        assert_eq!(f.threshold, Some(256.0));
        assert_eq!(f.verdict, Verdict::Flagged);
        assert_eq!(find(&rows, "3", "fds").verdict, Verdict::Ok);
        // Front-ends gain nothing from front-ends (no peer connections, R3).
        assert_eq!(find(&rows, "4", "fds").projected, Some(60.0));
        // 212 front-ends are within a storage node's inbound cap of 256.
        let c = find(&rows, "3", "connections");
        assert_eq!(
            (c.projected, c.threshold, c.verdict),
            (Some(212.0), Some(256.0), Verdict::Ok)
        );
        assert_eq!(
            rows.iter()
                .filter(|r| r.verdict == Verdict::Flagged)
                .count(),
            1,
            "{rows:#?}"
        );
        let text = render(&rows, &plan(0, 210));
        assert!(
            text.contains("FLAGGED: storage 2 (127.0.0.2:7000): fds would be 260 of limit 512"),
            "{text}"
        );
    }

    #[test]
    fn a_front_end_pool_caps_its_storage_connections() {
        // 100 storage nodes more: a front-end's pool holds 64 at most.
        let rows = check(&fleet(), &plan(100, 0));
        let c = find(&rows, "4", "connections");
        assert_eq!(
            (c.now, c.projected, c.verdict),
            (Some(4.0), Some(66.0), Verdict::Capped)
        );
        assert_eq!(find(&rows, "4", "fds").projected, Some(60.0 + 62.0));
        // Storage nodes do not talk to storage nodes.
        assert_eq!(find(&rows, "3", "fds").projected, Some(50.0));
    }

    #[test]
    fn cell_caps_and_down_nodes() {
        let mut nodes = fleet();
        nodes[4].measured = None;
        let rows = check(
            &nodes,
            &Plan {
                add_storage: 0,
                add_frontends: 255,
                cell: Some("cell-1".into()),
            },
        );
        assert_eq!(find(&rows, "5", "status").verdict, Verdict::Unknown);
        let cap = find(&rows, "cell cell-1", "frontends");
        assert_eq!(
            (cap.projected, cap.limit, cap.verdict),
            (Some(257.0), Some(256.0), Verdict::Flagged)
        );
        // Another cell's caps are its own.
        let rows = check(
            &nodes,
            &Plan {
                add_storage: 0,
                add_frontends: 255,
                cell: Some("cell-2".into()),
            },
        );
        assert_eq!(find(&rows, "cell cell-2", "frontends").verdict, Verdict::Ok);
        // More front-ends than a storage node's listener takes: refused, so flagged.
        let rows = check(&fleet(), &plan(0, 300));
        let c = find(&rows, "3", "connections");
        assert_eq!((c.projected, c.verdict), (Some(302.0), Verdict::Flagged));
        // Its fds count only the connections it accepts.
        assert_eq!(find(&rows, "3", "fds").projected, Some(50.0 + 254.0));
    }
}
