//! Replays the committed fuzz corpora (`fuzz/corpus/<target>/`) through the same harness
//! functions the AFL targets run, so CI checks every input the fuzzer kept without AFL.

#[path = "../../../fuzz/corpus_replay.rs"]
mod corpus_replay;
use corpus_replay::replay;

#[test]
fn wal_corpus() {
    replay("wal", levee_storage::fuzzing::wal_recovery);
}
