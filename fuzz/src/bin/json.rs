//! AFL target: json request bodies (operation byte + body), see `levee_protocol::fuzzing`.
fn main() {
    afl::fuzz!(|data: &[u8]| {
        levee_protocol::fuzzing::json_request(data);
    });
}
