//! The shard map's publication and persistence against a real `levee serve`: the admin
//! listener's `/map/snapshot` and `/map/deltas` endpoints, the generations under
//! `<data-dir>/map`, boot falling back from a damaged generation, and `levee admin approve-map`.

mod common;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use aws_sdk_kinesis::primitives::Blob;
use common::{http_get, wait_active, Server};
use levee_map::codec::{decode_frames, decode_map, Frame};

/// GET returning the status, the `x-levee-map-version` header and the raw body.
fn get_bytes(admin: &str, path: &str) -> (u16, Option<u64>, Vec<u8>) {
    let host = admin.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(host).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).unwrap();
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&buf[..end]).to_lowercase();
    let code = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    let version = head
        .lines()
        .find_map(|l| l.strip_prefix("x-levee-map-version: "))
        .and_then(|v| v.trim().parse().ok());
    let mut body = buf[end + 4..].to_vec();
    if head.contains("transfer-encoding: chunked") {
        body = dechunk(&body);
    }
    (code, version, body)
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let i = b.windows(2).position(|w| w == b"\r\n").unwrap();
        let size = usize::from_str_radix(std::str::from_utf8(&b[..i]).unwrap().trim(), 16).unwrap();
        b = &b[i + 2..];
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&b[..size]);
        b = &b[size + 2..];
    }
}

fn generations(dir: &std::path::Path) -> Vec<String> {
    let mut g: Vec<String> = std::fs::read_dir(dir.join("map"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("gen-") && !n.ends_with(".tmp"))
        .collect();
    g.sort();
    g
}

fn status(admin: &str) -> serde_json::Value {
    let (code, body) = http_get(admin, "/status.json");
    assert_eq!(code, 200);
    serde_json::from_str(&body).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maps_are_served_persisted_and_reloaded_after_damage() {
    let server = Server::start();
    let client = server.client();
    client
        .create_stream()
        .stream_name("m")
        .shard_count(3)
        .send()
        .await
        .unwrap();
    wait_active(&client, "m").await;

    // The snapshot endpoint: the whole map, checksummed, with its version.
    let (code, version, body) = get_bytes(&server.admin, "/map/snapshot");
    assert_eq!(code, 200);
    let map = decode_map(&body).unwrap();
    let v = version.unwrap();
    assert_eq!(map.version(), v);
    let m = map.stream("m").unwrap();
    assert_eq!(m.shards.iter().filter(|s| s.open).count(), 3);

    // Deltas after the previous version: one frame, to v. After v: nothing, after the wait.
    let (code, _, body) = get_bytes(&server.admin, &format!("/map/deltas?after={}", v - 1));
    assert_eq!(code, 200);
    let frames = decode_frames(&body).unwrap();
    assert!(matches!(&frames[..], [Frame::Delta(d)] if d.to_version == v));
    let started = Instant::now();
    let (code, _, body) = get_bytes(&server.admin, &format!("/map/deltas?after={v}&wait_ms=150"));
    assert_eq!(code, 200);
    assert!(body.is_empty());
    assert!(started.elapsed() >= Duration::from_millis(150));
    let (code, _, _) = get_bytes(&server.admin, "/map/deltas");
    assert_eq!(code, 400);

    // The front-end persisted it: at most two generations, the newest being v.
    let dir = server.dir.as_ref().unwrap().path().to_owned();
    let gens = generations(&dir);
    assert!(!gens.is_empty() && gens.len() <= 2, "{gens:?}");
    assert_eq!(gens.last().unwrap(), &format!("gen-{v:020}"));
    let st = status(&server.admin);
    assert_eq!(st["shard_map"]["keeper"]["live_version"], v);
    assert_eq!(st["shard_map"]["keeper"]["alarms"], serde_json::json!([]));

    client
        .put_record()
        .stream_name("m")
        .partition_key("k")
        .data(Blob::new("before"))
        .send()
        .await
        .unwrap();

    // kill -9, flip a byte in the newest generation: boot falls back to the previous one,
    // reports the damage, and the catalog brings it up to date.
    let dir_handle = server.kill();
    let newest = dir.join("map").join(gens.last().unwrap());
    let mut bytes = std::fs::read(&newest).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x10;
    std::fs::write(&newest, &bytes).unwrap();
    let server = Server::start_in(dir_handle);
    let st = status(&server.admin);
    let boot = &st["shard_map"]["keeper"]["boot"];
    assert_eq!(boot["corrupt"].as_array().unwrap().len(), 1, "{boot}");
    assert!(boot["loaded"].as_u64().unwrap() < v, "{boot}");
    assert_eq!(st["shard_map"]["keeper"]["live_version"], v);
    assert!(st["ready"].as_bool().unwrap());
    let (code, _) = http_get(&server.admin, "/health/ready");
    assert_eq!(code, 200);
    let client = server.client();
    client
        .put_record()
        .stream_name("m")
        .partition_key("k")
        .data(Blob::new("after"))
        .send()
        .await
        .unwrap();

    // Both generations damaged: nothing to load; the embedded catalog supplies a fresh map.
    let dir_handle = server.kill();
    for g in generations(&dir) {
        std::fs::write(dir.join("map").join(g), b"damaged").unwrap();
    }
    let server = Server::start_in(dir_handle);
    let st = status(&server.admin);
    let keeper = &st["shard_map"]["keeper"];
    assert_eq!(keeper["boot"]["loaded"], serde_json::Value::Null);
    assert_eq!(keeper["boot"]["corrupt"].as_array().unwrap().len(), 2);
    assert_eq!(keeper["live_version"], v);
    assert!(st["ready"].as_bool().unwrap(), "{st}");
    server
        .client()
        .put_record()
        .stream_name("m")
        .partition_key("k")
        .data(Blob::new("again"))
        .send()
        .await
        .unwrap();
}

#[test]
fn approve_map_reports_when_nothing_is_held() {
    let server = Server::start();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_levee"))
        .args(["admin", "approve-map", "3", "--admin", &server.admin])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no shard map is held"), "{err}");
}
