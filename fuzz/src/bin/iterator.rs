//! AFL target: shard iterators (mode byte + text or signed body); see `levee_frontend::fuzzing::iterator`.
fn main() {
    afl::fuzz!(|data: &[u8]| {
        levee_frontend::fuzzing::iterator(data);
    });
}
