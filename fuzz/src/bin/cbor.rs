//! AFL target: cbor request bodies (operation byte + body), see `levee_protocol::fuzzing`.
fn main() {
    afl::fuzz!(|data: &[u8]| {
        levee_protocol::fuzzing::cbor_request(data);
    });
}
