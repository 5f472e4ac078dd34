//! Writes the generated seed inputs (those made by Levee's own writers) under `fuzz/seeds/`:
//! `cargo afl build --release && $CARGO_TARGET_DIR/release/seeds` (or `cargo run --bin seeds`).
//! The protocol and SigV4 seeds come from `make_seeds.py` and `make_sigv4_seeds.py`.
use std::path::Path;

use levee_frontend::eventstream;
use levee_frontend::iterator::{IteratorCodec, Position, ShardIterator};
use levee_protocol::types::{Record, SubscribeToShardEvent};
use levee_protocol::{ApiError, Blob, ErrorKind, Timestamp, WireFormat};

fn write(dir: &Path, name: &str, bytes: &[u8]) {
    std::fs::create_dir_all(dir).expect("mkdir");
    std::fs::write(dir.join(name), bytes).expect("write seed");
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds");
    for (i, seed) in levee_storage::fuzzing::wal_seeds().into_iter().enumerate() {
        write(&root.join("wal"), &format!("log{i}"), &seed);
    }

    // Event streams as a SubscribeToShard response carries them, in both formats.
    let dir = root.join("eventstream");
    for (n, format) in [(0u8, WireFormat::Json), (1, WireFormat::Cbor)] {
        let event = SubscribeToShardEvent {
            records: vec![Record {
                sequence_number: "49590338271490256608559692538361571095921575989136588898".into(),
                approximate_arrival_timestamp: Some(Timestamp(1_700_000_000_123)),
                data: Blob::new(&b"hello"[..]),
                partition_key: "pk".into(),
                encryption_type: None,
            }],
            continuation_sequence_number: Some("1".into()),
            millis_behind_latest: 0,
            child_shards: None,
        };
        let mut stream = eventstream::initial_response(format).to_vec();
        stream.extend_from_slice(&eventstream::event(format, "SubscribeToShardEvent", &event));
        let err = ApiError::new(ErrorKind::ResourceInUse, "taken over");
        stream.extend_from_slice(&eventstream::exception(format, &err));
        // Mode byte: read frames, 7-byte chunks; with recomputed CRCs.
        write(&dir, &format!("stream{n}"), &[&[6u8][..], &stream].concat());
        write(
            &dir,
            &format!("stream{n}_fix"),
            &[&[0x40 | 6u8][..], &stream].concat(),
        );
        // Mode byte: Levee's own frames from the bytes.
        write(
            &dir,
            &format!("levee{n}"),
            &[0x80 | n | 4, b'a', b'b', 0xff, b'c'][..],
        );
    }

    // Shard iterators: one valid text, its body for the signed mode, and the structured mode.
    let dir = root.join("iterator");
    let codec = IteratorCodec::new([7; 32]);
    let it = ShardIterator {
        issued_ms: 1_700_000_000_000 - 1000,
        stream_name: "s1".into(),
        shard_uid: 42,
        shard_index: 3,
        position: Position::SeqIx(17),
    };
    let text = codec.encode(&it);
    write(&dir, "text", &[&[0u8][..], text.as_bytes()].concat());
    use base64::Engine as _;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(&text)
        .expect("base64");
    write(
        &dir,
        "signed",
        &[&[1u8][..], &raw[..raw.len() - 16]].concat(),
    );
    let expired = ShardIterator {
        issued_ms: 1_000,
        position: Position::Timestamp(5),
        ..it
    };
    let raw = base64::engine::general_purpose::STANDARD
        .decode(codec.encode(&expired))
        .expect("base64");
    write(
        &dir,
        "signed_expired",
        &[&[1u8 | 16][..], &raw[..raw.len() - 16]].concat(),
    );
    write(
        &dir,
        "structured",
        &[&[2u8][..], &[9u8; 24][..], "stream-é".as_bytes()].concat(),
    );
}
