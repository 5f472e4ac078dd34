//! AFL target: event-stream frames (mode byte + bytes); see `levee_frontend::fuzzing::eventstream`.
fn main() {
    afl::fuzz!(|data: &[u8]| {
        levee_frontend::fuzzing::eventstream(data);
    });
}
