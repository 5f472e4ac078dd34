//! Replays the committed fuzz corpora (`fuzz/corpus/<target>/`) through the same harness
//! functions the AFL targets run, so CI checks every input the fuzzer kept without AFL.

#[path = "../../../fuzz/corpus_replay.rs"]
mod corpus_replay;
use corpus_replay::replay;

#[test]
fn json_corpus() {
    replay("json", levee_protocol::fuzzing::json_request);
}

#[test]
fn cbor_corpus() {
    replay("cbor", levee_protocol::fuzzing::cbor_request);
}
