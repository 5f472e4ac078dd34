//! AFL target: group-log segment recovery (mode byte + segment bodies); see `levee_storage::fuzzing::wal_recovery`.
fn main() {
    afl::fuzz!(|data: &[u8]| {
        levee_storage::fuzzing::wal_recovery(data);
    });
}
