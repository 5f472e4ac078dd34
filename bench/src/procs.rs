//! What the fleet benchmarks (`fleet_grow`, `snapshot_apply`) share: `levee serve` processes
//! they start and stop, and a node's `/status.json`. Included by each with `#[path]` (they are
//! separate binaries of this crate, which has no library).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use anyhow::{bail, Context, Result};

/// A `levee serve` child and the stdout lines it printed until it was ready; killed on drop.
pub struct Proc(Child, Vec<String>);

impl Proc {
    /// Starts `levee serve ARGS` and waits for a stdout line starting with `wait_for`.
    pub fn start(levee: &Path, args: &[&str], wait_for: &str) -> Result<Proc> {
        let mut child = Command::new(levee)
            .arg("serve")
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .env("LEVEE_LOG", "error")
            .spawn()
            .context("spawning levee")?;
        let mut lines = BufReader::new(child.stdout.take().context("stdout")?).lines();
        let mut seen = Vec::new();
        loop {
            match lines.next() {
                Some(Ok(l)) => {
                    let done = l.starts_with(wait_for);
                    seen.push(l);
                    if done {
                        break;
                    }
                }
                _ => bail!("levee exited before `{wait_for}`: {seen:?}"),
            }
        }
        std::thread::spawn(move || for _ in lines.by_ref() {});
        Ok(Proc(child, seen))
    }

    pub fn pid(&self) -> u32 {
        self.0.id()
    }

    /// The address at the end of the first line starting with `prefix`.
    pub fn addr(&self, prefix: &str) -> String {
        self.1
            .iter()
            .find(|l| l.starts_with(prefix))
            .and_then(|l| l.rsplit(' ').next())
            .unwrap_or_default()
            .trim_start_matches("http://")
            .to_owned()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A node's `/status.json` from its admin address.
pub fn status_json(admin: &str) -> Result<serde_json::Value> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(admin)?;
    write!(
        s,
        "GET /status.json HTTP/1.1\r\nHost: {admin}\r\nConnection: close\r\n\r\n"
    )?;
    let mut text = String::new();
    s.read_to_string(&mut text)?;
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("");
    serde_json::from_str(body).context("status.json")
}

/// The shard-map version a node routes by.
pub fn live_version(admin: &str) -> Result<u64> {
    status_json(admin)?["shard_map"]["version"]
        .as_u64()
        .context("shard_map.version")
}

/// Microseconds as milliseconds.
pub fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

/// 100 bytes of `x`, base64: the benchmarks' record.
pub fn base64_100() -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode([b'x'; 100])
}
