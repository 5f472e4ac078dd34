//! Node registration, cell caps and shard placement.

use super::*;

fn catalog(storage_cap: u32, frontend_cap: u32) -> Catalog {
    Catalog::new(CatalogConfig {
        storage_nodes_per_cell_max: storage_cap,
        frontends_per_cell_max: frontend_cap,
        ..CatalogConfig::default()
    })
}

fn register(id: u64, role: NodeRole, cell: &str) -> Command {
    Command::RegisterNode {
        id,
        role,
        address: format!("127.0.0.{id}:7000"),
        cell: cell.to_string(),
        now_ms: 1_000 + id,
        admin: format!("127.0.0.{id}:4590"),
    }
}

fn create(name: &str, shards: u32) -> Command {
    Command::CreateStream {
        name: name.to_string(),
        shard_count: Some(shards),
        mode: StreamMode::Provisioned,
        tags: BTreeMap::new(),
        now_ms: 5_000,
    }
}

/// Open shards per node across all streams.
fn load(c: &Catalog) -> BTreeMap<u64, usize> {
    let mut out = BTreeMap::new();
    for sh in c.state().streams().values().flat_map(|s| s.shards.iter()) {
        if sh.open {
            *out.entry(sh.node).or_default() += 1;
        }
    }
    out
}

/// Applies a command that must fail and checks that it changed nothing.
fn refused(c: &mut Catalog, cmd: Command) -> CatalogError {
    let before = c.snapshot().unwrap();
    let e = c.apply(&cmd).unwrap_err();
    assert_eq!(
        c.snapshot().unwrap(),
        before,
        "a refused command changes nothing"
    );
    e
}

#[test]
fn registration_is_capped_per_cell_and_role() {
    let mut c = catalog(2, 1);
    c.apply(&register(1, NodeRole::Storage, CELL_DEFAULT))
        .unwrap();
    c.apply(&register(2, NodeRole::Storage, CELL_DEFAULT))
        .unwrap();
    let e = refused(&mut c, register(3, NodeRole::Storage, CELL_DEFAULT));
    assert_eq!(e.type_name(), "LimitExceededException");
    assert_eq!(
        e.message(),
        "Cell cell-1 already has 2 storage nodes, its cap; node 3 was not registered. Add capacity as a new cell."
    );
    // Another cell, and the other role, have their own caps.
    c.apply(&register(3, NodeRole::Storage, "cell-2")).unwrap();
    c.apply(&register(10, NodeRole::Frontend, CELL_DEFAULT))
        .unwrap();
    let e = refused(&mut c, register(11, NodeRole::Frontend, CELL_DEFAULT));
    assert_eq!(e.type_name(), "LimitExceededException");
    assert_eq!(c.nodes().len(), 4);
}

#[test]
fn registering_again_renews_and_may_move_but_not_change_role_or_cell() {
    let mut c = catalog(4, 4);
    c.apply(&register(1, NodeRole::Storage, CELL_DEFAULT))
        .unwrap();
    let v = c.map_version();
    // The same registration again: a renewal, no routing change.
    c.apply(&Command::RegisterNode {
        id: 1,
        role: NodeRole::Storage,
        address: "127.0.0.1:7000".into(),
        cell: CELL_DEFAULT.into(),
        now_ms: 9_000,
        admin: "127.0.0.1:4590".into(),
    })
    .unwrap();
    assert_eq!(c.nodes()[&1].renewed_ms, 9_000);
    assert_eq!(c.nodes()[&1].registered_ms, 1_001);
    assert_eq!(c.map_version(), v, "a renewal publishes no map");
    // A new address is a routing change (front-ends must call it there).
    c.apply(&Command::RegisterNode {
        id: 1,
        role: NodeRole::Storage,
        address: "127.0.0.9:7000".into(),
        cell: CELL_DEFAULT.into(),
        now_ms: 9_500,
        admin: "127.0.0.1:4590".into(),
    })
    .unwrap();
    assert_eq!(c.nodes()[&1].address, "127.0.0.9:7000");
    assert_eq!(c.map_version(), v + 1);
    let e = refused(&mut c, register(1, NodeRole::Frontend, CELL_DEFAULT));
    assert_eq!(e.type_name(), "ResourceInUseException");
    let e = refused(&mut c, register(1, NodeRole::Storage, "cell-2"));
    assert_eq!(e.type_name(), "ResourceInUseException");
}

#[test]
fn bad_registrations_are_refused_with_clear_errors() {
    let mut c = catalog(4, 4);
    let e = refused(&mut c, register(0, NodeRole::Storage, CELL_DEFAULT));
    assert_eq!(e.message(), "Node id 0 is reserved; node ids start at 1.");
    let e = refused(&mut c, register(1, NodeRole::Storage, "bad cell!"));
    assert_eq!(e.type_name(), "InvalidArgumentException");
    let e = refused(
        &mut c,
        Command::RegisterNode {
            id: 1,
            role: NodeRole::Storage,
            address: String::new(),
            cell: CELL_DEFAULT.into(),
            now_ms: 1,
            admin: String::new(),
        },
    );
    assert_eq!(e.type_name(), "InvalidArgumentException");
}

#[test]
fn without_storage_nodes_shards_go_to_the_configured_node() {
    let mut c = catalog(4, 4);
    c.apply(&create("s", 3)).unwrap();
    assert_eq!(load(&c), BTreeMap::from([(1, 3)]));
}

#[test]
fn new_shards_go_to_the_least_loaded_storage_node_of_the_cell() {
    let mut c = catalog(8, 4);
    for id in [2, 3, 4] {
        c.apply(&register(id, NodeRole::Storage, CELL_DEFAULT))
            .unwrap();
    }
    // A node of another cell and a front-end never get shards.
    c.apply(&register(9, NodeRole::Storage, "cell-2")).unwrap();
    c.apply(&register(20, NodeRole::Frontend, CELL_DEFAULT))
        .unwrap();
    c.apply(&create("a", 6)).unwrap();
    assert_eq!(load(&c), BTreeMap::from([(2, 2), (3, 2), (4, 2)]));
    let route = c.shard_map();
    let a = route.stream("a").unwrap();
    assert!(a
        .shards
        .iter()
        .all(|sh| sh.group == GroupId(sh.node.0) && (2..=4).contains(&sh.node.0)));
    // A new node takes the next shards until it has caught up.
    c.apply(&register(5, NodeRole::Storage, CELL_DEFAULT))
        .unwrap();
    c.apply(&create("b", 2)).unwrap();
    assert_eq!(load(&c), BTreeMap::from([(2, 2), (3, 2), (4, 2), (5, 2)]));
    // A reshard's children are placed the same way.
    c.apply(&Command::ActivateStream {
        name: "b".into(),
        now_ms: 6_000,
    })
    .unwrap();
    c.apply(&Command::UpdateShardCount {
        name: "b".into(),
        target_shard_count: 4,
        now_ms: 7_000,
    })
    .unwrap();
    // Placement counts the parents as open while it places their children (they close in
    // the same command), so each of the four nodes gets one of the four children.
    assert_eq!(load(&c), BTreeMap::from([(2, 3), (3, 3), (4, 3), (5, 1)]));
    c.check_invariants().unwrap();
}

#[test]
fn a_storage_node_leaves_only_once_it_holds_no_shard() {
    let mut c = catalog(4, 4);
    c.apply(&register(2, NodeRole::Storage, CELL_DEFAULT))
        .unwrap();
    c.apply(&create("s", 2)).unwrap();
    let e = refused(&mut c, Command::DeregisterNode { id: 2 });
    assert_eq!(
        e.message(),
        "Storage node 2 still holds 2 shards; move or delete them first."
    );
    let e = refused(&mut c, Command::DeregisterNode { id: 7 });
    assert_eq!(e.type_name(), "ResourceNotFoundException");
    c.apply(&Command::ActivateStream {
        name: "s".into(),
        now_ms: 6_000,
    })
    .unwrap();
    c.apply(&Command::DeleteStream {
        name: "s".into(),
        enforce_consumer_deletion: false,
        now_ms: 7_000,
    })
    .unwrap();
    c.apply(&Command::FinishDeleteStream { name: "s".into() })
        .unwrap();
    c.apply(&Command::DeregisterNode { id: 2 }).unwrap();
    assert!(c.nodes().is_empty());
}

#[test]
fn nodes_survive_a_snapshot_and_restore() {
    let mut c = catalog(4, 4);
    c.apply(&register(2, NodeRole::Storage, CELL_DEFAULT))
        .unwrap();
    c.apply(&register(3, NodeRole::Frontend, "cell-2")).unwrap();
    c.apply(&create("s", 2)).unwrap();
    let restored = Catalog::restore(c.config().clone(), &c.snapshot().unwrap()).unwrap();
    assert_eq!(restored.nodes(), c.nodes());
    assert_eq!(restored.state(), c.state());
}

#[test]
fn the_map_carries_every_registered_node() {
    let mut c = catalog(4, 4);
    assert!(
        c.shard_map().nodes().is_empty(),
        "the embedded map has no node table"
    );
    c.apply(&register(2, NodeRole::Storage, CELL_DEFAULT))
        .unwrap();
    c.apply(&register(7, NodeRole::Frontend, CELL_DEFAULT))
        .unwrap();
    let m = c.shard_map();
    let storage = m.node(NodeId(2)).unwrap();
    assert_eq!(
        (
            storage.address.as_str(),
            storage.role,
            storage.admin.as_str()
        ),
        (
            "127.0.0.2:7000",
            levee_map::NodeRole::Storage,
            "127.0.0.2:4590"
        )
    );
    assert!(!m.node(NodeId(7)).unwrap().is_storage());
    // A renewal changes nothing the map holds: no new version.
    let v = c.map_version();
    let renew = |admin: &str| Command::RegisterNode {
        id: 7,
        role: NodeRole::Frontend,
        address: "127.0.0.7:7000".into(),
        cell: CELL_DEFAULT.into(),
        now_ms: 99_000,
        admin: admin.into(),
    };
    c.apply(&renew("127.0.0.7:4590")).unwrap();
    assert_eq!(c.map_version(), v);
    // A new admin address is a map change (the fleet view reads it from the map).
    c.apply(&renew("127.0.0.7:4599")).unwrap();
    assert_eq!(c.map_version(), v + 1);
    assert_eq!(
        c.shard_map().node(NodeId(7)).unwrap().admin,
        "127.0.0.7:4599"
    );
    let v = c.map_version();
    // A control node lists itself; it never gets shards.
    c.apply(&register(9, NodeRole::Control, CELL_DEFAULT))
        .unwrap();
    assert_eq!(
        c.shard_map().node(NodeId(9)).unwrap().role,
        levee_map::NodeRole::Control
    );
    c.apply(&Command::DeregisterNode { id: 9 }).unwrap();
    assert_eq!(c.map_version(), v + 2);
    let v = c.map_version();
    c.apply(&Command::DeregisterNode { id: 7 }).unwrap();
    let m = c.shard_map();
    assert!(m.node(NodeId(7)).is_none());
    assert_eq!(m.nodes().len(), 1);
    // The delta a follower gets carries the new table.
    let d = c.map_delta_since(v).unwrap();
    assert_eq!(d.nodes.as_ref().map(|n| n.len()), Some(1));
}
