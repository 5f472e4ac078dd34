//! Replays the committed fuzz corpora (`fuzz/corpus/<target>/`) through the same harness
//! functions the AFL targets run, so CI checks every input the fuzzer kept without AFL.

use std::path::Path;

fn replay(target: &str, harness: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("corpus {}: {e}", dir.display()))
        .map(|e| e.expect("corpus entry").path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "corpus {} is empty", dir.display());
    for path in files {
        let data = std::fs::read(&path).expect("corpus file");
        if std::panic::catch_unwind(|| harness(&data)).is_err() {
            panic!("fuzz input {} fails its harness", path.display());
        }
    }
}

#[test]
fn json_corpus() {
    replay("json", levee_protocol::fuzzing::json_request);
}

#[test]
fn cbor_corpus() {
    replay("cbor", levee_protocol::fuzzing::cbor_request);
}
