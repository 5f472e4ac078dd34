//! Turns result lines (JSON, one per workload and target) into the Markdown tables of
//! `bench/results/`: every workload's figures for every target side by side with Levee's
//! advantage as a ratio, the machine's fdatasync limits with Levee's figures as a fraction of
//! them, and the targets marked met or not. Ratios, not absolute times, are what a
//! shared, noisy machine can compare.

use std::fmt::Write as _;
use std::fs;
use std::path::PathBuf;

use anyhow::{Context, Result};

use crate::stats::{BenchResult, SliceSummary};

/// Reads every result line of `inputs` (lines that are not JSON results are skipped).
pub fn load(inputs: &[PathBuf]) -> Result<Vec<BenchResult>> {
    let mut out = Vec::new();
    for path in inputs {
        let text = fs::read_to_string(path).with_context(|| format!("read {}", path.display()))?;
        out.extend(
            text.lines()
                .filter_map(|l| serde_json::from_str::<BenchResult>(l).ok()),
        );
    }
    Ok(out)
}

#[derive(Clone, Copy)]
enum Better {
    Higher,
    Lower,
}

struct Metric {
    name: &'static str,
    better: Better,
    get: fn(&BenchResult) -> Option<f64>,
    fmt: fn(f64) -> String,
    /// Whether a ratio against the baseline means anything for this metric.
    ratio: bool,
}

fn thousands(v: f64) -> String {
    let n = v.round() as i64;
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    if n < 0 {
        format!("-{out}")
    } else {
        out
    }
}

fn two(v: f64) -> String {
    format!("{v:.2}")
}

fn ms(v: f64) -> String {
    format!("{v:.3}")
}

fn pct(v: f64) -> String {
    format!("{v:.0} %")
}

fn metrics(kind: &str) -> Vec<Metric> {
    let put_lat = |r: &BenchResult| {
        r.put_latency
            .as_ref()
            .filter(|p| p.count > 0)
            .map(|p| p.p50_ms)
    };
    let mut m = vec![
        Metric {
            name: "records/s",
            better: Better::Higher,
            get: |r| Some(r.records_per_s),
            fmt: thousands,
            ratio: true,
        },
        Metric {
            name: "MB/s (payload)",
            better: Better::Higher,
            get: |r| Some(r.mb_per_s),
            fmt: two,
            ratio: true,
        },
    ];
    let (p50, p99, p999) = match kind {
        "e2e" | "mixed" => (
            "put → visible p50 ms",
            "put → visible p99 ms",
            "put → visible p999 ms",
        ),
        "get" => (
            "GetRecords p50 ms",
            "GetRecords p99 ms",
            "GetRecords p999 ms",
        ),
        _ => ("request p50 ms", "request p99 ms", "request p999 ms"),
    };
    m.push(Metric {
        name: p50,
        better: Better::Lower,
        // No samples (nothing delivered): no figure, not a zero that reads as fast.
        get: |r| (r.latency.count > 0).then_some(r.latency.p50_ms),
        fmt: ms,
        ratio: true,
    });
    m.push(Metric {
        name: p99,
        better: Better::Lower,
        // No samples (nothing delivered): no figure, not a zero that reads as fast.
        get: |r| (r.latency.count > 0).then_some(r.latency.p99_ms),
        fmt: ms,
        ratio: true,
    });
    m.push(Metric {
        name: p999,
        better: Better::Lower,
        // No samples (nothing delivered): no figure, not a zero that reads as fast.
        get: |r| (r.latency.count > 0).then_some(r.latency.p999_ms),
        fmt: ms,
        ratio: true,
    });
    if kind == "growth" {
        m.push(Metric {
            name: "last ÷ first slice records/s",
            better: Better::Higher,
            get: |r| slice_ratio(r, |s| s.records_per_s),
            fmt: two,
            ratio: false,
        });
        m.push(Metric {
            name: "last ÷ first slice p50",
            better: Better::Lower,
            get: |r| slice_ratio(r, |s| s.p50_ms),
            fmt: two,
            ratio: false,
        });
    }
    if kind == "e2e" || kind == "mixed" {
        m.push(Metric {
            name: "put ack p50 ms",
            better: Better::Lower,
            get: put_lat,
            fmt: ms,
            ratio: true,
        });
    }
    m.push(Metric {
        name: "server CPU (% of a core)",
        better: Better::Lower,
        get: |r| r.server_cpu_pct,
        fmt: pct,
        ratio: false,
    });
    m.push(Metric {
        name: "server CPU µs per record",
        better: Better::Lower,
        get: |r| {
            r.server_cpu_pct
                .filter(|_| r.records_per_s > 0.0)
                .map(|c| c / 100.0 / r.records_per_s * 1e6)
        },
        fmt: two,
        ratio: true,
    });
    m.push(Metric {
        name: "generator CPU (% of a core)",
        better: Better::Lower,
        get: |r| Some(r.gen_cpu_pct),
        fmt: pct,
        ratio: false,
    });
    m.push(Metric {
        name: "server RSS MiB",
        better: Better::Lower,
        get: |r| r.server_rss_mib,
        fmt: thousands,
        ratio: true,
    });
    m.push(Metric {
        name: "server threads",
        better: Better::Lower,
        get: |r| r.server_threads.map(|t| t as f64),
        fmt: thousands,
        ratio: false,
    });
    m.push(Metric {
        name: "errors",
        better: Better::Lower,
        get: |r| Some(r.errors as f64),
        fmt: thousands,
        ratio: false,
    });
    m
}

/// A growth run's last slice's figure ÷ its first's.
fn slice_ratio(r: &BenchResult, f: fn(&SliceSummary) -> f64) -> Option<f64> {
    let (first, last) = (r.slices.first()?, r.slices.last()?);
    (f(first) > 0.0).then(|| f(last) / f(first))
}

/// Levee's advantage: >1 means Levee is better on this metric.
fn advantage(better: Better, levee: f64, peer: f64) -> String {
    let ratio = match better {
        Better::Higher if peer > 0.0 => levee / peer,
        Better::Lower if levee > 0.0 => peer / levee,
        _ => return "—".to_string(),
    };
    format!("{ratio:.2}×")
}

fn find<'a>(results: &'a [BenchResult], target: &str, workload: &str) -> Option<&'a BenchResult> {
    results
        .iter()
        .rev()
        .find(|r| r.target == target && r.workload == workload)
}

/// The targets (baseline first) and the server workloads, each in order of first appearance.
fn layout<'a>(
    results: &'a [BenchResult],
    baseline: &'a str,
) -> (Vec<&'a str>, Vec<(&'a str, &'a str)>) {
    let mut targets: Vec<&str> = vec![baseline];
    let mut workloads: Vec<(&str, &str)> = Vec::new();
    for r in results
        .iter()
        .filter(|r| r.kind != "fsync" && r.kind != "server")
    {
        if !targets.contains(&r.target.as_str()) {
            targets.push(&r.target);
        }
        if !workloads.iter().any(|(w, _)| *w == r.workload) {
            workloads.push((&r.workload, &r.kind));
        }
    }
    (targets, workloads)
}

/// Records/s of every throughput workload (put, get) per target, tab-separated with a header
/// row, for a chart (gnuplot); a missing figure is `NaN`.
pub fn chart_tsv(results: &[BenchResult], baseline: &str) -> String {
    let (targets, workloads) = layout(results, baseline);
    let mut out = format!("workload\t{}\n", targets.join("\t"));
    for (workload, _) in workloads
        .iter()
        .filter(|(_, k)| matches!(*k, "put" | "get" | "growth"))
    {
        let mut line = workload.replace('\t', " ");
        for t in &targets {
            match find(results, t, workload)
                .map(|r| r.records_per_s)
                .filter(|v| *v > 0.0)
            {
                Some(v) => {
                    let _ = write!(line, "\t{v:.0}");
                }
                None => line.push_str("\tNaN"),
            }
        }
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// The Markdown report; `baseline` is the target ratios are taken against.
pub fn render(results: &[BenchResult], baseline: &str) -> String {
    let mut md = String::new();
    let (targets, workloads) = layout(results, baseline);
    let peers = &targets[1..];

    let _ = writeln!(md, "## Servers side by side\n");
    let _ = writeln!(
        md,
        "“×” is {baseline}'s advantage over the peer on that line: its throughput ÷ the peer's, or the peer's latency (CPU, memory) ÷ {baseline}'s; above 1 means {baseline} is better.\n"
    );
    let mut header = format!("| workload | metric | {baseline} |");
    let mut rule = "|---|---|---:|".to_string();
    for p in peers {
        let _ = write!(header, " {p} | × |");
        rule.push_str("---:|---:|");
    }
    let _ = writeln!(md, "{header}\n{rule}");
    for (workload, kind) in &workloads {
        for m in metrics(kind) {
            let base = find(results, baseline, workload).and_then(m.get);
            let any_value = targets.iter().any(|t| {
                find(results, t, workload)
                    .and_then(m.get)
                    .is_some_and(|v| v != 0.0)
            });
            if m.name == "errors" && !any_value {
                continue;
            }
            let mut line = format!(
                "| {workload} | {} | {} |",
                m.name,
                base.map(m.fmt).unwrap_or_else(|| "—".into())
            );
            for p in peers {
                let v = find(results, p, workload).and_then(m.get);
                let adv = match (base, v) {
                    (Some(b), Some(v)) if m.ratio => advantage(m.better, b, v),
                    _ => "".to_string(),
                };
                let _ = write!(
                    line,
                    " {} | {adv} |",
                    v.map(m.fmt).unwrap_or_else(|| "—".into())
                );
            }
            let _ = writeln!(md, "{line}");
        }
    }
    let errors: Vec<_> = results
        .iter()
        .filter_map(|r| r.error_sample.as_ref().map(|e| (r, e)))
        .collect();
    if !errors.is_empty() {
        let _ = writeln!(md, "\nFirst error per run:\n");
        for (r, e) in errors {
            let _ = writeln!(
                md,
                "- {} / {}: `{}`",
                r.target,
                r.workload,
                e.replace('`', "'")
            );
        }
    }
    let notes: Vec<_> = results
        .iter()
        .flat_map(|r| r.notes.iter().map(move |n| (r, n)))
        .collect();
    if !notes.is_empty() {
        let _ = writeln!(md, "\nNotes:\n");
        for (r, n) in notes {
            let _ = writeln!(md, "- {} / {}: {n}", r.target, r.workload);
        }
    }

    render_machine(&mut md, results, baseline);
    render_servers(&mut md, results, &targets);
    render_targets(&mut md, results, baseline);
    md
}

fn param_f64(r: &BenchResult, key: &str) -> Option<f64> {
    r.params.get(key).and_then(|v| v.as_f64())
}

/// The `server` lines compare.sh writes: start-up time and peak memory of each server process.
fn render_servers(md: &mut String, results: &[BenchResult], targets: &[&str]) {
    let lines: Vec<&BenchResult> = targets
        .iter()
        .filter_map(|t| {
            results
                .iter()
                .rev()
                .find(|r| r.kind == "server" && r.target == *t)
        })
        .collect();
    if lines.is_empty() {
        return;
    }
    let _ = writeln!(
        md,
        "\n## The server processes (same run)\n\nStart-up: from launch to the port accepting a connection, with an empty data directory (polled every 10 ms). Peak RSS: the started process's VmHWM after all its workloads (for the Node peers that is node).\n\n| target | start-up ms | peak RSS (VmHWM) MiB | RSS at the end MiB | threads at the end |\n|---|---:|---:|---:|---:|"
    );
    let f = |v: Option<f64>, digits: usize| {
        v.map(|v| format!("{v:.digits$}"))
            .unwrap_or_else(|| "—".into())
    };
    for r in lines {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} |",
            r.target,
            f(param_f64(r, "startup_ms"), 0),
            f(param_f64(r, "vmhwm_mib"), 1),
            f(param_f64(r, "vmrss_mib"), 1),
            f(param_f64(r, "threads"), 0),
        );
    }
}

fn render_machine(md: &mut String, results: &[BenchResult], baseline: &str) {
    let fs: Vec<&BenchResult> = results.iter().filter(|r| r.kind == "fsync").collect();
    if fs.is_empty() {
        return;
    }
    let _ = writeln!(md, "\n## The machine's limits (same run)\n");
    let _ = writeln!(md, "| measurement | syncs/s | MB/s | p50 ms | p99 ms | p999 ms |\n|---|---:|---:|---:|---:|---:|");
    for r in &fs {
        let l = &r.latency;
        let _ = writeln!(
            md,
            "| {} | {} | {:.1} | {:.3} | {:.3} | {:.3} |",
            r.workload,
            thousands(r.records_per_s),
            r.mb_per_s,
            l.p50_ms,
            l.p99_ms,
            l.p999_ms
        );
    }
    let test = |name: &str| {
        fs.iter()
            .rev()
            .find(|r| r.params.get("test").and_then(|t| t.as_str()) == Some(name))
            .copied()
    };
    let (lat, bw) = (test("latency"), test("bandwidth"));
    let mut lines = String::new();
    for r in results
        .iter()
        .filter(|r| r.target == baseline && r.kind == "put")
    {
        if let Some(bw) = bw.filter(|b| b.mb_per_s > 0.0) {
            let _ = writeln!(
                lines,
                "- {}: {:.2} MB/s of payload = {:.1} % of the batched-fdatasync bandwidth ({:.1} MB/s)",
                r.workload,
                r.mb_per_s,
                r.mb_per_s / bw.mb_per_s * 100.0,
                bw.mb_per_s
            );
        }
        if r.params.get("op").and_then(|o| o.as_str()) == Some("PutRecord") {
            if let Some(lat) = lat.filter(|l| l.latency.p50_ms > 0.0) {
                let _ = writeln!(
                    lines,
                    "- {}: p50 {:.3} ms = {:.1}× one small write + fdatasync (p50 {:.3} ms)",
                    r.workload,
                    r.latency.p50_ms,
                    r.latency.p50_ms / lat.latency.p50_ms,
                    lat.latency.p50_ms
                );
            }
        }
    }
    if !lines.is_empty() {
        let _ = write!(md, "\n{baseline} as a fraction of those limits:\n\n{lines}");
    }
}

fn param(r: &BenchResult, key: &str) -> Option<i64> {
    r.params.get(key).and_then(|v| v.as_i64())
}

fn render_targets(md: &mut String, results: &[BenchResult], baseline: &str) {
    let of = |target: &str, pred: &dyn Fn(&BenchResult) -> bool| {
        results.iter().rev().find(|r| r.target == target && pred(r))
    };
    let put_batch = |r: &BenchResult| {
        r.kind == "put"
            && r.params.get("op").and_then(|o| o.as_str()) == Some("PutRecords")
            && param(r, "batch_size") == Some(500)
            && param(r, "record_size") == Some(100)
            && param(r, "concurrency") == Some(8)
    };
    let put_one = |r: &BenchResult| {
        r.kind == "put"
            && r.params.get("op").and_then(|o| o.as_str()) == Some("PutRecord")
            && param(r, "concurrency") == Some(1)
    };
    let get = |r: &BenchResult| r.kind == "get";
    let consumer = |r: &BenchResult| {
        r.params
            .get("consumer")
            .and_then(|c| c.as_str())
            .unwrap_or("poll")
            .to_string()
    };
    let e2e_poll = |r: &BenchResult| r.kind == "e2e" && consumer(r) == "poll";
    let e2e_subscribe = |r: &BenchResult| r.kind == "e2e" && consumer(r) == "subscribe";
    let verdict = |ok: bool| if ok { "met" } else { "**not met**" };
    let _ = writeln!(
        md,
        "\n## The issue's targets\n\n| target | measured | verdict |\n|---|---|---|"
    );
    match (of(baseline, &put_batch), of("ferrokinesis", &put_batch)) {
        (Some(l), Some(f)) if f.records_per_s > 0.0 => {
            let x = l.records_per_s / f.records_per_s;
            let _ = writeln!(
                md,
                "| PutRecords 500 × 100 B, 8 connections: ≥ 5× ferrokinesis in memory | {} vs {} records/s = {x:.2}× | {} |",
                thousands(l.records_per_s),
                thousands(f.records_per_s),
                verdict(x >= 5.0)
            );
        }
        _ => {
            let _ = writeln!(md, "| PutRecords 500 × 100 B, 8 connections: ≥ 5× ferrokinesis in memory | not measured in this run | — |");
        }
    }
    match of(baseline, &put_one) {
        Some(l) => {
            let _ = writeln!(
                md,
                "| PutRecord at concurrency 1: p50 ≤ 0.4 ms, p99 ≤ 2 ms | p50 {:.3} ms, p99 {:.3} ms | {} |",
                l.latency.p50_ms,
                l.latency.p99_ms,
                verdict(l.latency.p50_ms <= 0.4 && l.latency.p99_ms <= 2.0)
            );
        }
        None => {
            let _ = writeln!(md, "| PutRecord at concurrency 1: p50 ≤ 0.4 ms, p99 ≤ 2 ms | not measured in this run | — |");
        }
    }
    let best_peer_get = results
        .iter()
        // A peer is another server, not Levee run another way (`levee-fleet`).
        .filter(|r| r.target != baseline && !r.target.starts_with("levee") && get(r))
        .filter(|r| r.records_per_s > 0.0)
        .max_by(|a, b| a.records_per_s.total_cmp(&b.records_per_s));
    match (of(baseline, &get), best_peer_get) {
        (Some(l), Some(p)) => {
            let x = l.records_per_s / p.records_per_s;
            let _ = writeln!(
                md,
                "| GetRecords read-back: ≥ 3× the best peer | {} vs {} ({}) records/s = {x:.2}× | {} |",
                thousands(l.records_per_s),
                thousands(p.records_per_s),
                p.target,
                verdict(x >= 3.0)
            );
        }
        _ => {
            let _ = writeln!(
                md,
                "| GetRecords read-back: ≥ 3× the best peer | not measured in this run | — |"
            );
        }
    }
    let polled = of(baseline, &e2e_poll)
        .map(|l| {
            format!(
                "; polling consumer in the same run: p50 {:.3} ms, p99 {:.3} ms",
                l.latency.p50_ms, l.latency.p99_ms
            )
        })
        .unwrap_or_default();
    match of(baseline, &e2e_subscribe) {
        Some(l) if l.latency.count > 0 => {
            let _ = writeln!(
                md,
                "| Put → SubscribeToShard delivery: median ≤ 2 ms, p99 ≤ 10 ms | p50 {:.3} ms, p99 {:.3} ms (n={}){polled} | {} |",
                l.latency.p50_ms,
                l.latency.p99_ms,
                l.latency.count,
                verdict(l.latency.p50_ms <= 2.0 && l.latency.p99_ms <= 10.0)
            );
        }
        _ => {
            let _ = writeln!(
                md,
                "| Put → SubscribeToShard delivery: median ≤ 2 ms, p99 ≤ 10 ms | not measured in this run{polled} | — |"
            );
        }
    }
    let growth = |r: &BenchResult| r.kind == "growth";
    match of(baseline, &growth) {
        Some(l) => {
            let tput = slice_ratio(l, |s| s.records_per_s).unwrap_or(0.0);
            let p50 = slice_ratio(l, |s| s.p50_ms).unwrap_or(f64::INFINITY);
            let _ = writeln!(
                md,
                "| Write cost flat as a shard grows (last ÷ first slice: records/s ≥ 0.8, p50 ≤ 1.25) | {}: records/s {tput:.2}, p50 {p50:.2} | {} |",
                l.workload,
                verdict(tput >= 0.8 && p50 <= 1.25)
            );
        }
        None => {
            let _ = writeln!(
                md,
                "| Write cost flat as a shard grows | not measured in this run | — |"
            );
        }
    }
    let mixed = |r: &BenchResult| r.kind == "mixed" && param(r, "shards").unwrap_or(0) > 1;
    // The same load on one shard, read by as many readers: what 1,000 shards must not exceed.
    let mixed_one = |r: &BenchResult| r.kind == "mixed" && param(r, "shards") == Some(1);
    // Threads after the other workloads of the same server (1 to 4 shards, some under heavier
    // load than `mixed`): the most of them is what 1,000 shards must not exceed.
    let few_shard_threads = results
        .iter()
        .filter(|r| r.target == baseline && r.kind != "mixed" && r.kind != "server")
        .filter_map(|r| r.server_threads)
        .max();
    match of(baseline, &mixed) {
        Some(l) if of(baseline, &mixed_one).is_some_and(|one| one.server_threads.is_some()) => {
            let one = of(baseline, &mixed_one).expect("checked above");
            let (many_t, one_t) = (
                l.server_threads.unwrap_or(u64::MAX),
                one.server_threads.unwrap_or(0),
            );
            let ok = many_t <= one_t && l.errors == 0 && one.errors == 0;
            let _ = writeln!(
                md,
                "| 1,000 active shards cost no more threads than 1 (R1) | {}: {} threads at its end, {} records/s seen, {} errors; the same load on 1 shard read by {} readers: {} threads, {} errors | {} |",
                l.workload,
                many_t,
                thousands(l.records_per_s),
                l.errors,
                param(one, "readers_per_shard").unwrap_or(1),
                one_t,
                one.errors,
                if param(l, "shards").unwrap_or(0) >= 1000 { verdict(ok) } else { "— (fewer than 1,000 shards)" }
            );
        }
        Some(l) => {
            let threads = match (l.server_threads, few_shard_threads) {
                (Some(m), Some(one)) => format!(
                    "{m} threads at its end vs at most {one} after the other workloads (1–4 shards)"
                ),
                (Some(m), None) => format!("{m} threads"),
                _ => "threads not measured".to_string(),
            };
            let ok = matches!((l.server_threads, few_shard_threads), (Some(m), Some(one)) if m <= one)
                && l.errors == 0;
            let _ = writeln!(
                md,
                "| 1,000 active shards cost no more threads than 1 (R1) | {}: {threads}; {} records/s seen, put → visible p50 {:.1} ms (the consumers' poll pause dominates), {} errors | {} |",
                l.workload,
                thousands(l.records_per_s),
                l.latency.p50_ms,
                l.errors,
                if param(l, "shards").unwrap_or(0) >= 1000 { verdict(ok) } else { "— (fewer than 1,000 shards)" }
            );
        }
        None => {
            let _ = writeln!(
                md,
                "| 1,000 active shards (`mixed` workload) | not measured in this run | — |"
            );
        }
    }
    match of(baseline, &put_batch).and_then(|l| l.server_syncs.map(|s| (l, s))) {
        Some((l, s)) if s.group_commits > 0 && s.fsyncs > 0 => {
            // The two counters are read a moment apart: a commit in flight on each log may
            // have one but not yet the other.
            let ok = s.fsyncs.abs_diff(s.group_commits) <= 2 && s.entries > s.group_commits;
            let _ = writeln!(
                md,
                "| One fsync covers a whole group commit | {}: {} fsyncs for {} group commits of {:.1} appends each on average ({} records per fsync) | {} |",
                l.workload,
                thousands(s.fsyncs as f64),
                thousands(s.group_commits as f64),
                s.entries as f64 / s.group_commits as f64,
                thousands(l.records as f64 / s.fsyncs as f64),
                verdict(ok)
            );
        }
        _ => {
            let _ = writeln!(
                md,
                "| One fsync covers a whole group commit | not measured in this run (no `--metrics-url`) | — |"
            );
        }
    }
    match results
        .iter()
        .rev()
        .find(|r| r.target == baseline && r.kind == "server")
    {
        Some(s) => {
            let _ = writeln!(
                md,
                "| RSS ≤ 256 MiB with 10 GiB stored; start-up ≤ 1 s | with an empty data directory (not 10 GiB): start-up {} ms, peak RSS {} MiB over this run | — (10 GiB case measured by hand) |",
                param_f64(s, "startup_ms").map(|v| format!("{v:.0}")).unwrap_or_else(|| "—".into()),
                param_f64(s, "vmhwm_mib").map(|v| format!("{v:.1}")).unwrap_or_else(|| "—".into()),
            );
        }
        None => {
            let _ = writeln!(
                md,
                "| RSS ≤ 256 MiB with 10 GiB stored; start-up ≤ 1 s | not measured by this harness yet | — |"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratios_and_numbers() {
        assert_eq!(thousands(1234567.4), "1,234,567");
        assert_eq!(thousands(999.0), "999");
        assert_eq!(advantage(Better::Higher, 10.0, 2.0), "5.00×");
        assert_eq!(advantage(Better::Lower, 0.5, 2.0), "4.00×");
        assert_eq!(advantage(Better::Higher, 1.0, 0.0), "—");
    }

    #[test]
    fn renders_side_by_side() {
        let mk = |target: &str, rps: f64| BenchResult {
            target: target.into(),
            kind: "put".into(),
            workload: "PutRecords 500×100 B, c=8".into(),
            params: serde_json::json!({"op": "PutRecords", "batch_size": 500, "record_size": 100, "concurrency": 8}),
            records_per_s: rps,
            ..BenchResult::default()
        };
        let md = render(
            &[mk("levee", 500_000.0), mk("ferrokinesis", 50_000.0)],
            "levee",
        );
        assert!(
            md.contains("| PutRecords 500×100 B, c=8 | records/s | 500,000 | 50,000 | 10.00× |"),
            "{md}"
        );
        assert!(md.contains("= 10.00× | met |"), "{md}");
        let tsv = chart_tsv(
            &[mk("levee", 500_000.0), mk("ferrokinesis", 50_000.0)],
            "levee",
        );
        assert_eq!(
            tsv,
            "workload\tlevee\tferrokinesis\nPutRecords 500×100 B, c=8\t500000\t50000\n"
        );
    }

    #[test]
    fn thousand_shards_against_one_shard_line() {
        let mixed = |shards: i64, readers: i64, threads: u64| BenchResult {
            target: "levee".into(),
            kind: "mixed".into(),
            workload: format!("mixed over {shards} shards"),
            params: serde_json::json!({"shards": shards, "readers_per_shard": readers}),
            server_threads: Some(threads),
            ..BenchResult::default()
        };
        let md = render(&[mixed(1, 1000, 25), mixed(1000, 1, 25)], "levee");
        assert!(
            md.contains("mixed over 1000 shards: 25 threads at its end, 0 records/s seen, 0 errors; the same load on 1 shard read by 1000 readers: 25 threads, 0 errors | met |"),
            "{md}"
        );
        let md = render(&[mixed(1, 1000, 20), mixed(1000, 1, 25)], "levee");
        assert!(
            md.contains("25 threads at its end, 0 records/s seen, 0 errors; the same load on 1 shard read by 1000 readers: 20 threads, 0 errors | **not met** |"),
            "{md}"
        );
    }

    #[test]
    fn a_peer_that_delivered_nothing_has_no_latency() {
        let e2e = |target: &str, count: u64| BenchResult {
            target: target.into(),
            kind: "e2e".into(),
            workload: "put → visible".into(),
            latency: crate::stats::LatencySummary {
                count,
                p50_ms: if count > 0 { 2.0 } else { 0.0 },
                ..Default::default()
            },
            ..BenchResult::default()
        };
        let md = render(&[e2e("levee", 10), e2e("ferrokinesis", 0)], "levee");
        assert!(
            md.contains("| put → visible | put → visible p50 ms | 2.000 | — |  |"),
            "{md}"
        );
    }

    #[test]
    fn group_commit_line() {
        let put = |syncs: Option<crate::stats::StorageSyncs>| BenchResult {
            target: "levee".into(),
            kind: "put".into(),
            workload: "PutRecords 500×100 B, c=8".into(),
            params: serde_json::json!({"op": "PutRecords", "batch_size": 500, "record_size": 100, "concurrency": 8}),
            records: 1_000_000,
            server_syncs: syncs,
            ..BenchResult::default()
        };
        let syncs = |fsyncs, group_commits, entries| {
            Some(crate::stats::StorageSyncs {
                fsyncs,
                group_commits,
                entries,
            })
        };
        let md = render(&[put(syncs(1_000, 1_001, 7_000))], "levee");
        assert!(
            md.contains("1,000 fsyncs for 1,001 group commits of 7.0 appends each on average (1,000 records per fsync) | met |"),
            "{md}"
        );
        // An fsync per append, or more fsyncs than commits: not one fsync per group commit.
        let md = render(&[put(syncs(1_000, 1_000, 1_000))], "levee");
        assert!(md.contains("records per fsync) | **not met** |"), "{md}");
        let md = render(&[put(syncs(2_000, 1_000, 7_000))], "levee");
        assert!(md.contains("records per fsync) | **not met** |"), "{md}");
        let md = render(&[put(None)], "levee");
        assert!(
            md.contains("| One fsync covers a whole group commit | not measured"),
            "{md}"
        );
    }

    #[test]
    fn subscribe_target_and_server_lines() {
        let e2e = |consumer: &str, p50: f64, p99: f64| BenchResult {
            target: "levee".into(),
            kind: "e2e".into(),
            workload: format!("put → visible ({consumer})"),
            params: serde_json::json!({"consumer": consumer, "shards": 1}),
            latency: crate::stats::LatencySummary {
                count: 100,
                p50_ms: p50,
                p99_ms: p99,
                ..Default::default()
            },
            ..BenchResult::default()
        };
        let server = BenchResult {
            target: "levee".into(),
            kind: "server".into(),
            workload: "server process".into(),
            params: serde_json::json!({"startup_ms": 12, "vmhwm_mib": 40.5, "vmrss_mib": 30.0, "threads": 9}),
            ..BenchResult::default()
        };
        let md = render(
            &[e2e("poll", 3.0, 30.0), e2e("subscribe", 0.7, 7.0), server],
            "levee",
        );
        assert!(
            md.contains("| p50 0.700 ms, p99 7.000 ms (n=100); polling consumer in the same run: p50 3.000 ms, p99 30.000 ms | met |"),
            "{md}"
        );
        assert!(md.contains("| levee | 12 | 40.5 | 30.0 | 9 |"), "{md}");
        // The server line is not a workload row.
        assert!(!md.contains("| server process |"), "{md}");
        let slow = render(&[e2e("subscribe", 2.5, 7.0)], "levee");
        assert!(slow.contains("(n=100) | **not met** |"), "{slow}");
    }

    #[test]
    fn levee_as_a_fleet_is_no_peer_of_levee() {
        let get = |target: &str, rps: f64| BenchResult {
            target: target.into(),
            kind: "get".into(),
            workload: "GetRecords read-back".into(),
            records_per_s: rps,
            ..BenchResult::default()
        };
        let md = render(
            &[
                get("levee", 900_000.0),
                get("levee-fleet", 600_000.0),
                get("ferrokinesis", 200_000.0),
            ],
            "levee",
        );
        // levee-fleet is in the table, but the best peer is ferrokinesis.
        assert!(md.contains("| 600,000 | 1.50× |"), "{md}");
        assert!(
            md.contains("900,000 vs 200,000 (ferrokinesis) records/s = 4.50× | met |"),
            "{md}"
        );
    }
}
