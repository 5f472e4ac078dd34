//! Replays the committed fuzz corpora (`fuzz/corpus/<target>/`) through the same harness
//! functions the AFL targets run, so CI checks every input the fuzzer kept without AFL.

#[path = "../../../fuzz/corpus_replay.rs"]
mod corpus_replay;
use corpus_replay::replay;

#[test]
fn sigv4_corpus() {
    replay("sigv4", levee_frontend::fuzzing::sigv4);
}

#[test]
fn eventstream_corpus() {
    replay("eventstream", levee_frontend::fuzzing::eventstream);
}

#[test]
fn iterator_corpus() {
    replay("iterator", levee_frontend::fuzzing::iterator);
}

/// The corpus reaches the end of verification: requests signed by botocore with the harness's
/// key are accepted (so the fuzzer explored past every check, not only the early refusals).
#[test]
fn sigv4_corpus_holds_accepted_requests() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/sigv4");
    let accepted = std::fs::read_dir(&dir)
        .expect("corpus")
        .map(|e| std::fs::read(e.expect("entry").path()).expect("file"))
        .filter(|data| levee_frontend::fuzzing::sigv4_accepts(data))
        .count();
    assert!(accepted > 0, "no corpus input passes verification");
}
