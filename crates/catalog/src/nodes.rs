//! The fleet's members as the catalog knows them, and where new shards go.
//!
//! Storage nodes, front-ends and control nodes register with their address, admin address
//! and cell. Each cell has hard caps
//! on its storage nodes and front-ends (R8, the tested range): a registration past a cap is
//! refused with a clear `LimitExceededException`, so capacity can only be added within the
//! size the fleet was tested at. A registration renews the node's lease; leases only inform
//! placement, a lapsed lease never stops a node serving what it has.
//!
//! Placement: a new shard goes to the storage node of the stream's cell that holds the fewest
//! open shards (ties to the lowest id), in a replica group of that one node (groups of one
//! until replication arrives; the map's shape does not change then). With no storage node
//! registered (the embedded mode) shards go to the catalog's configured node.
//!
//! Every registered node is in the shard map's node table (address, cell, role), so a
//! front-end finds storage nodes — and `levee status --fleet` finds every node — from its own
//! persisted map, without asking the control plane.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{Catalog, CatalogError, Outcome};

/// Storage nodes one cell may have (the default of `CatalogConfig::storage_nodes_per_cell_max`).
pub const STORAGE_NODES_PER_CELL_MAX_DEFAULT: u32 = 1024;
/// Front-ends one cell may have.
pub const FRONTENDS_PER_CELL_MAX_DEFAULT: u32 = 256;
/// Control nodes one cell may list (a control plane has 1, 3 or 5 voters).
pub const CONTROL_NODES_PER_CELL_MAX: u32 = 7;
/// The cell of everything when none is configured.
pub const CELL_DEFAULT: &str = "cell-1";
/// A node's address: `host:port`, at most this long.
pub const NODE_ADDRESS_BYTES_MAX: usize = 255;
/// A cell id: letters, digits, `-` and `_`, at most this long.
pub const CELL_ID_BYTES_MAX: usize = 64;

/// What a node does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum NodeRole {
    Storage,
    Frontend,
    /// A control-plane node listing itself, so every map names the whole fleet.
    Control,
}

impl NodeRole {
    pub fn as_str(self) -> &'static str {
        self.map_role().as_str()
    }

    /// The role as the shard map carries it.
    pub fn map_role(self) -> levee_map::NodeRole {
        match self {
            NodeRole::Storage => levee_map::NodeRole::Storage,
            NodeRole::Frontend => levee_map::NodeRole::Frontend,
            NodeRole::Control => levee_map::NodeRole::Control,
        }
    }
}

/// A registered node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeRecord {
    pub id: u64,
    pub role: NodeRole,
    /// Where its inter-node listener is (`host:port`).
    pub address: String,
    pub cell: String,
    /// Where its admin listener (`/status.json`) is (`host:port`); empty if it did not say.
    #[serde(default)]
    pub admin: String,
    pub registered_ms: u64,
    /// Its last registration or renewal.
    pub renewed_ms: u64,
}

fn cell_ok(cell: &str) -> bool {
    !cell.is_empty()
        && cell.len() <= CELL_ID_BYTES_MAX
        && cell
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl Catalog {
    /// The registered nodes, by id.
    pub fn nodes(&self) -> &BTreeMap<u64, NodeRecord> {
        &self.state.nodes
    }

    pub(crate) fn register_node(
        &mut self,
        id: u64,
        role: NodeRole,
        address: &str,
        admin: &str,
        cell: &str,
        now_ms: u64,
    ) -> Result<(Outcome, bool), CatalogError> {
        if id == 0 {
            return Err(CatalogError::InvalidArgument(
                "Node id 0 is reserved; node ids start at 1.".to_string(),
            ));
        }
        if address.is_empty() || address.len() > NODE_ADDRESS_BYTES_MAX {
            return Err(CatalogError::InvalidArgument(format!(
                "Node {id} address must be 1 to {NODE_ADDRESS_BYTES_MAX} bytes."
            )));
        }
        if admin.len() > NODE_ADDRESS_BYTES_MAX {
            return Err(CatalogError::InvalidArgument(format!(
                "Node {id} admin address must be at most {NODE_ADDRESS_BYTES_MAX} bytes."
            )));
        }
        if !cell_ok(cell) {
            return Err(CatalogError::InvalidArgument(format!(
                "Cell id '{cell}' of node {id} must be 1 to {CELL_ID_BYTES_MAX} letters, digits, '-' or '_'."
            )));
        }
        if let Some(existing) = self.state.nodes.get_mut(&id) {
            if existing.role != role || existing.cell != cell {
                return Err(CatalogError::ResourceInUse(format!(
                    "Node {id} is registered as a {} node of cell {}; it cannot register as a {} node of cell {cell}.",
                    existing.role.as_str(),
                    existing.cell,
                    role.as_str()
                )));
            }
            let moved = existing.address != address || existing.admin != admin;
            existing.address = address.to_string();
            existing.admin = admin.to_string();
            existing.renewed_ms = now_ms;
            // A new address is a map change: front-ends send a storage node's shards' calls
            // there, and the fleet view reads every node's status there.
            return Ok((Outcome::NodeRegistered, moved));
        }
        let cap = match role {
            NodeRole::Storage => self.config.storage_nodes_per_cell_max,
            NodeRole::Frontend => self.config.frontends_per_cell_max,
            NodeRole::Control => CONTROL_NODES_PER_CELL_MAX,
        };
        let in_cell = self
            .state
            .nodes
            .values()
            .filter(|n| n.role == role && n.cell == cell)
            .count();
        if in_cell >= cap as usize {
            return Err(CatalogError::LimitExceeded(format!(
                "Cell {cell} already has {in_cell} {} nodes, its cap; node {id} was not registered. Add capacity as a new cell.",
                role.as_str()
            )));
        }
        self.state.nodes.insert(
            id,
            NodeRecord {
                id,
                role,
                address: address.to_string(),
                cell: cell.to_string(),
                admin: admin.to_string(),
                registered_ms: now_ms,
                renewed_ms: now_ms,
            },
        );
        Ok((Outcome::NodeRegistered, true))
    }

    pub(crate) fn deregister_node(&mut self, id: u64) -> Result<(Outcome, bool), CatalogError> {
        let Some(node) = self.state.nodes.get(&id) else {
            return Err(CatalogError::ResourceNotFound(format!(
                "Node {id} is not registered."
            )));
        };
        if node.role == NodeRole::Storage {
            let owned = self
                .state
                .streams
                .values()
                .flat_map(|s| s.shards.iter())
                .filter(|sh| sh.node == id && !sh.is_expired())
                .count();
            if owned > 0 {
                return Err(CatalogError::ResourceInUse(format!(
                    "Storage node {id} still holds {owned} shards; move or delete them first."
                )));
            }
        }
        self.state.nodes.remove(&id);
        Ok((Outcome::NodeDeregistered, true))
    }

    /// The node table the map carries: every registered node's address, cell, role and admin
    /// address.
    pub(crate) fn node_table(&self) -> levee_map::NodeTable {
        self.state
            .nodes
            .values()
            .map(|n| {
                (
                    levee_map::NodeId(n.id),
                    levee_map::NodeEntry {
                        address: n.address.clone(),
                        cell: n.cell.clone(),
                        role: n.role.map_role(),
                        admin: n.admin.clone(),
                    },
                )
            })
            .collect()
    }

    /// Where the next shards of a stream of `cell` go.
    pub(crate) fn placer(&self, cell: &str) -> Placer {
        let mut load: BTreeMap<u64, usize> = self
            .state
            .nodes
            .values()
            .filter(|n| n.role == NodeRole::Storage && n.cell == cell)
            .map(|n| (n.id, 0))
            .collect();
        for sh in self.state.streams.values().flat_map(|s| s.shards.iter()) {
            if sh.open {
                if let Some(n) = load.get_mut(&sh.node) {
                    *n += 1;
                }
            }
        }
        Placer {
            load,
            fallback: (self.config.group.0, self.config.node.0),
        }
    }
}

/// Picks nodes for new shards, least loaded first, counting what it has placed.
pub(crate) struct Placer {
    load: BTreeMap<u64, usize>,
    fallback: (u64, u64),
}

impl Placer {
    /// `(group, node)` for the next shard.
    pub(crate) fn next(&mut self) -> (u64, u64) {
        let Some((&id, _)) = self.load.iter().min_by_key(|(id, n)| (**n, **id)) else {
            return self.fallback;
        };
        if let Some(n) = self.load.get_mut(&id) {
            *n += 1;
        }
        // Groups of one node: the group id is the node id.
        (id, id)
    }
}
