//! A tiny HTTP/1.1 client over plain TCP, with one deadline for the whole exchange: enough for
//! `levee status` (GET a node's `/status.json`) and for pushing metrics to a sink. It speaks
//! `http://` only, sends `Connection: close`, and reads the answer to the end.

use std::time::Duration;

use anyhow::{bail, Context};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Largest response body read.
pub const RESPONSE_BYTES_MAX: usize = 8 << 20;

/// `(host:port, path)` of an `http://` URL.
pub fn split_url(url: &str) -> anyhow::Result<(String, String)> {
    let rest = url
        .strip_prefix("http://")
        .with_context(|| format!("{url}: only http:// URLs are supported"))?;
    let (host, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    anyhow::ensure!(!host.is_empty(), "{url}: no host");
    let host = if host.contains(':') {
        host.to_owned()
    } else {
        format!("{host}:80")
    };
    Ok((host, path.to_owned()))
}

/// Sends one request and returns the status code and body.
pub async fn request(
    method: &str,
    url: &str,
    content_type: &str,
    body: &[u8],
    timeout: Duration,
) -> anyhow::Result<(u16, Vec<u8>)> {
    request_limited(method, url, content_type, body, timeout, RESPONSE_BYTES_MAX).await
}

/// [`request`] reading at most `response_bytes_max` bytes of the answer.
pub async fn request_limited(
    method: &str,
    url: &str,
    content_type: &str,
    body: &[u8],
    timeout: Duration,
    response_bytes_max: usize,
) -> anyhow::Result<(u16, Vec<u8>)> {
    let (host, path) = split_url(url)?;
    tokio::time::timeout(timeout, async {
        let mut s = tokio::net::TcpStream::connect(&host)
            .await
            .with_context(|| format!("connecting to {host}"))?;
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: {content_type}\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        s.write_all(head.as_bytes()).await?;
        s.write_all(body).await?;
        let mut buf = Vec::new();
        (&mut s)
            .take(response_bytes_max as u64)
            .read_to_end(&mut buf)
            .await?;
        let end = buf
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .context("no HTTP header in the answer")?;
        let head = String::from_utf8_lossy(&buf[..end]).to_string();
        let status: u16 = head
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .context("no status code in the answer")?;
        let mut body = buf[end + 4..].to_vec();
        if head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked")
        {
            body = dechunk(&body)?;
        }
        Ok((status, body))
    })
    .await
    .map_err(|_| anyhow::anyhow!("{url}: no answer within {} ms", timeout.as_millis()))?
}

fn dechunk(mut b: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let Some(i) = b.windows(2).position(|w| w == b"\r\n") else {
            bail!("bad chunked body");
        };
        let size_text = String::from_utf8_lossy(&b[..i]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)?;
        b = &b[i + 2..];
        if size == 0 {
            return Ok(out);
        }
        let chunk = b.get(..size).context("truncated chunk")?;
        out.extend_from_slice(chunk);
        b = b.get(size + 2..).context("truncated chunk")?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_chunks() {
        assert_eq!(
            split_url("http://127.0.0.1:4590/status.json").unwrap(),
            ("127.0.0.1:4590".into(), "/status.json".into())
        );
        assert_eq!(
            split_url("http://example").unwrap(),
            ("example:80".into(), "/".into())
        );
        assert!(split_url("https://x").is_err());
        assert_eq!(
            dechunk(b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n").unwrap(),
            b"abcde"
        );
    }
}
