//! Optional push of metrics to an external sink as OTLP/HTTP JSON (`--metrics-push-url`, e.g.
//! an OpenTelemetry collector's `http://host:4318/v1/metrics`). Non-critical work must never
//! hurt the data path (F7): it runs on the admin runtime, each snapshot goes through a queue of
//! [`PUSH_QUEUE_MAX`] entries, and when the sink is slow or hangs new snapshots are dropped and
//! counted (`levee_metrics_push_dropped_total`), never waited for.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use super::Shared;

/// Snapshots waiting to be sent; more are dropped.
pub const PUSH_QUEUE_MAX: usize = 4;
/// How long one push may take.
pub const PUSH_TIMEOUT_MS: u64 = 5_000;

/// Turns Prometheus text into an OTLP `ExportMetricsServiceRequest` (every sample a gauge
/// point; histogram buckets keep their `le` label).
pub fn to_otlp(prom: &str, now_ns: u128) -> Value {
    let mut metrics: Vec<(String, Vec<Value>)> = Vec::new();
    for line in prom.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let (series, value) = match line.rsplit_once(' ') {
            Some(x) => x,
            None => continue,
        };
        let Ok(v) = value.parse::<f64>() else {
            continue;
        };
        let (name, labels) = match series.split_once('{') {
            Some((n, rest)) => (n, rest.trim_end_matches('}')),
            None => (series, ""),
        };
        let attrs: Vec<Value> = split_labels(labels)
            .into_iter()
            .map(|(k, v)| json!({"key": k, "value": {"stringValue": v}}))
            .collect();
        let point = json!({
            "timeUnixNano": now_ns.to_string(),
            "asDouble": v,
            "attributes": attrs,
        });
        match metrics.last_mut() {
            Some((n, pts)) if n == name => pts.push(point),
            _ => metrics.push((name.to_owned(), vec![point])),
        }
    }
    let metrics: Vec<Value> = metrics
        .into_iter()
        .map(|(name, pts)| json!({"name": name, "gauge": {"dataPoints": pts}}))
        .collect();
    json!({"resourceMetrics": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "levee"}}]},
        "scopeMetrics": [{"scope": {"name": "levee"}, "metrics": metrics}]
    }]})
}

fn split_labels(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = s;
    while let Some(eq) = rest.find("=\"") {
        let key = rest[..eq].trim_start_matches(',').trim().to_owned();
        let mut val = String::new();
        let mut chars = rest[eq + 2..].char_indices();
        let mut end = rest.len() - eq - 2;
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => {
                    if let Some((_, n)) = chars.next() {
                        val.push(if n == 'n' { '\n' } else { n });
                    }
                }
                '"' => {
                    end = i + 1;
                    break;
                }
                c => val.push(c),
            }
        }
        out.push((key, val));
        rest = &rest[eq + 2 + end..];
    }
    out
}

/// Produces a snapshot every `metrics_push_interval_ms` and sends them one at a time.
pub async fn run(shared: Arc<Shared>, url: String) {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<u8>>(PUSH_QUEUE_MAX);
    let sender_url = url.clone();
    tokio::spawn(async move {
        while let Some(body) = rx.recv().await {
            let r = super::client::request(
                "POST",
                &sender_url,
                "application/json",
                &body,
                Duration::from_millis(PUSH_TIMEOUT_MS),
            )
            .await;
            match r {
                Ok((code, _)) if (200..300).contains(&code) => {
                    metrics::counter!("levee_metrics_push_sent_total").increment(1)
                }
                Ok((code, _)) => {
                    tracing::debug!(code, "metrics push refused");
                    metrics::counter!("levee_metrics_push_failed_total").increment(1)
                }
                Err(e) => {
                    tracing::debug!(error = %e, "metrics push failed");
                    metrics::counter!("levee_metrics_push_failed_total").increment(1)
                }
            }
        }
    });
    let every = Duration::from_millis(shared.cfg.metrics_push_interval_ms.max(10));
    loop {
        tokio::time::sleep(every).await;
        let now_ns = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let body = serde_json::to_vec(&to_otlp(&shared.prom.render(), now_ns)).unwrap_or_default();
        match tx.try_send(body) {
            Ok(()) => {}
            Err(tokio::sync::mpsc::error::TrySendError::Full(_)) => {
                metrics::counter!("levee_metrics_push_dropped_total").increment(1)
            }
            Err(tokio::sync::mpsc::error::TrySendError::Closed(_)) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_text_becomes_otlp_points() {
        let v = to_otlp(
            "# TYPE a counter\na{op=\"Put\",e=\"x\\\"y\"} 3\na{op=\"Get\"} 4\nb 1.5\n",
            7,
        );
        let m = &v["resourceMetrics"][0]["scopeMetrics"][0]["metrics"];
        assert_eq!(m[0]["name"], "a");
        let pts = &m[0]["gauge"]["dataPoints"];
        assert_eq!(pts[0]["asDouble"], 3.0);
        assert_eq!(pts[0]["attributes"][1]["value"]["stringValue"], "x\"y");
        assert_eq!(pts[1]["attributes"][0]["key"], "op");
        assert_eq!(m[1]["name"], "b");
        assert_eq!(m[1]["gauge"]["dataPoints"][0]["timeUnixNano"], "7");
    }
}
