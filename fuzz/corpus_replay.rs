//! The corpus replay shared by the crates' `tests/fuzz_corpus.rs` (each includes this file with
//! `#[path]`): every committed input of `fuzz/corpus/<target>/` goes through the same harness
//! function the AFL target runs, so CI checks what the fuzzer kept without installing AFL.

use std::path::Path;

/// Runs `harness` on every file of `fuzz/corpus/<target>/` (sorted); fails on an empty corpus
/// and names the input whose harness panics.
pub fn replay(target: &str, harness: fn(&[u8])) {
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
