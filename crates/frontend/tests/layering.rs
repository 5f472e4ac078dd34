//! The front-end knows the control plane and storage only through interfaces: neither
//! `levee-frontend` nor anything it depends on (transitively, normal dependencies) may be the
//! storage or catalog crate. Read from `cargo metadata`, so a new dependency breaks this test.

use std::collections::{HashMap, HashSet};
use std::process::Command;

#[test]
fn frontend_does_not_depend_on_storage_or_catalog() {
    // Resolve for this machine's platform only, so no other platform's packages are needed.
    let rustc = Command::new("rustc")
        .arg("-vV")
        .output()
        .expect("rustc -vV");
    let host = String::from_utf8_lossy(&rustc.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: ").map(str::to_owned))
        .expect("host triple");
    let out = Command::new(env!("CARGO"))
        .args([
            "metadata",
            "--format-version",
            "1",
            "--offline",
            "--filter-platform",
            &host,
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo metadata");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let names: HashMap<&str, &str> = meta["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .map(|p| (p["id"].as_str().unwrap(), p["name"].as_str().unwrap()))
        .collect();
    let nodes: HashMap<&str, Vec<&str>> = meta["resolve"]["nodes"]
        .as_array()
        .expect("resolve")
        .iter()
        .map(|n| {
            let deps = n["deps"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|d| {
                    d["dep_kinds"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|k| k["kind"].is_null())
                })
                .map(|d| d["pkg"].as_str().unwrap())
                .collect();
            (n["id"].as_str().unwrap(), deps)
        })
        .collect();
    let root = names
        .iter()
        .find(|(_, n)| **n == "levee-frontend")
        .map(|(id, _)| *id)
        .expect("levee-frontend in the workspace");
    let mut seen = HashSet::new();
    let mut stack = vec![root];
    while let Some(id) = stack.pop() {
        if seen.insert(id) {
            stack.extend(nodes.get(id).into_iter().flatten().copied());
        }
    }
    let reached: HashSet<&str> = seen.iter().map(|id| names[id]).collect();
    assert!(
        reached.contains("levee-protocol") && reached.contains("levee-map"),
        "{reached:?}"
    );
    for forbidden in ["levee-storage", "levee-catalog"] {
        assert!(
            !reached.contains(forbidden),
            "levee-frontend depends on {forbidden}"
        );
    }
}
