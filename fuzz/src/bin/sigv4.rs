//! AFL target: SigV4 request heads (METHOD URI, header lines, blank line, body); see `levee_frontend::fuzzing::sigv4`.
fn main() {
    afl::fuzz!(|data: &[u8]| {
        levee_frontend::fuzzing::sigv4(data);
    });
}
