//! ON_DEMAND streams scale by themselves. The storage adapter counts the bytes (partition key
//! plus data) and records appended to each shard ([`WriteCounters`], a few atomics' worth of
//! work per append under one short lock); a task of the node — off the request path, one
//! reshard at a time — reads the counts every tick, and a pure [`Planner`] decides:
//!
//! - a shard whose write rate, averaged over a window (`--autoscale-window-ms`), reaches
//!   [`SPLIT_AT_PERCENT`] of its capacity (`--autoscale-shard-bytes-per-sec` / `-records-per-sec`,
//!   AWS's 1 MiB/s and 1,000 records/s by default, whichever is closer to full) is split at the
//!   middle of its hash range;
//! - two adjacent open shards that both stayed under [`QUIET_BELOW_PERCENT`] for the quiet
//!   period (`--autoscale-quiet-ms`) are merged;
//! - within AWS's on-demand bounds: merges stop at `--autoscale-min-shards` open shards (4: the
//!   4 MiB/s an on-demand stream starts with), splits at `--autoscale-max-shards` (200: the
//!   200 MiB/s on-demand write limit outside AWS's three largest regions), and the account
//!   shard limit applies as to any split. A shard splits at most once per window (its children
//!   start a new one), so a stream at most doubles per window, like AWS's "double the previous
//!   peak".
//!
//! The changes go through the catalog's SplitShard and MergeShards commands, exactly as the API
//! calls do (storage reconciled, UPDATING → ACTIVE after the transition delay), so
//! DescribeStream and ListShards show them. Only ACTIVE ON_DEMAND streams are touched, one
//! change per stream per tick; PROVISIONED streams never change.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use levee_catalog::{Command, StreamMode, StreamStatus};
use levee_map::ShardId;

use crate::config::ServeConfig;
use crate::node::{now_ms, Node};

/// A shard whose windowed write rate reaches this share of its capacity is split.
pub const SPLIT_AT_PERCENT: u64 = 80;
/// A shard under this share of its capacity for the quiet period may be merged with a quiet
/// neighbour (the merged shard then runs under twice that, well below the split threshold).
pub const QUIET_BELOW_PERCENT: u64 = 25;
/// Shards counted between two ticks at most; appends to further shards are not counted (and
/// `levee_autoscale_uncounted_appends_total` says so).
pub const COUNTED_SHARDS_MAX: usize = 100_000;
/// The measuring tick: a quarter of the window, within these bounds.
pub const TICK_MS_MIN: u64 = 10;
pub const TICK_MS_MAX: u64 = 1_000;

/// Bytes and records appended per shard since the last tick.
#[derive(Debug, Default)]
pub struct WriteCounters {
    shards: Mutex<HashMap<u64, (u64, u64)>>,
}

impl WriteCounters {
    /// Counts an append of `records` records of `bytes` bytes to shard `uid`.
    pub fn record(&self, uid: u64, bytes: u64, records: u64) {
        let mut shards = self.shards.lock().unwrap_or_else(|p| p.into_inner());
        let len = shards.len();
        match shards.get_mut(&uid) {
            Some(c) => {
                c.0 = c.0.saturating_add(bytes);
                c.1 = c.1.saturating_add(records);
            }
            None if len < COUNTED_SHARDS_MAX => {
                shards.insert(uid, (bytes, records));
            }
            None => metrics::counter!("levee_autoscale_uncounted_appends_total").increment(1),
        }
    }

    /// The counts since the last call; the counters start again from zero.
    fn take(&self) -> HashMap<u64, (u64, u64)> {
        let mut shards = self.shards.lock().unwrap_or_else(|p| p.into_inner());
        std::mem::take(&mut *shards)
    }
}

/// The autoscaler's settings (see `config.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    pub window_ms: u64,
    pub quiet_ms: u64,
    pub shard_bytes_per_sec: u64,
    pub shard_records_per_sec: u64,
    pub min_shards: u32,
    pub max_shards: u32,
}

impl Settings {
    pub fn from_config(cfg: &ServeConfig) -> Settings {
        Settings {
            window_ms: cfg.autoscale_window_ms,
            quiet_ms: cfg.autoscale_quiet_ms,
            shard_bytes_per_sec: cfg.autoscale_shard_bytes_per_sec,
            shard_records_per_sec: cfg.autoscale_shard_records_per_sec,
            min_shards: cfg.autoscale_min_shards,
            max_shards: cfg.autoscale_max_shards,
        }
    }

    pub fn tick_ms(&self) -> u64 {
        (self.window_ms / 4).clamp(TICK_MS_MIN, TICK_MS_MAX)
    }
}

/// One open shard of a stream, as the planner sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenShard {
    pub uid: u64,
    pub id: ShardId,
    pub start: u128,
    pub end: u128,
}

/// A change the planner asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Split {
        shard: ShardId,
        new_starting_hash_key: u128,
    },
    Merge {
        shard: ShardId,
        adjacent: ShardId,
    },
}

/// What is known of one open shard's recent writes.
#[derive(Debug, Clone, Copy)]
struct ShardState {
    window_start_ms: u64,
    bytes: u64,
    records: u64,
    /// The last closed window's load, in percent of capacity.
    load_percent: u64,
    /// Since when every closed window was quiet.
    quiet_since_ms: Option<u64>,
}

/// The pure decision logic: counts in, at most one action per stream out.
#[derive(Debug)]
pub struct Planner {
    settings: Settings,
    shards: HashMap<u64, ShardState>,
}

impl Planner {
    pub fn new(settings: Settings) -> Planner {
        Planner {
            settings,
            shards: HashMap::new(),
        }
    }

    /// Adds the writes counted since the last tick to the shards being watched.
    pub fn observe(&mut self, counts: &HashMap<u64, (u64, u64)>) {
        for (uid, (bytes, records)) in counts {
            if let Some(s) = self.shards.get_mut(uid) {
                s.bytes = s.bytes.saturating_add(*bytes);
                s.records = s.records.saturating_add(*records);
            }
        }
    }

    /// Forgets shards that are no longer open in an ON_DEMAND stream (bounds the state).
    pub fn retain(&mut self, open: &HashSet<u64>) {
        self.shards.retain(|uid, _| open.contains(uid));
    }

    /// Load in percent of capacity of `bytes` and `records` written over `elapsed_ms`.
    fn load_percent(&self, bytes: u64, records: u64, elapsed_ms: u64) -> u64 {
        let per = |n: u64, cap: u64| {
            u128::from(n) * 1000 * 100 / (u128::from(elapsed_ms.max(1)) * u128::from(cap.max(1)))
        };
        let p = per(bytes, self.settings.shard_bytes_per_sec)
            .max(per(records, self.settings.shard_records_per_sec));
        u64::try_from(p).unwrap_or(u64::MAX)
    }

    /// Closes the windows that are due and returns what an ACTIVE stream with these open
    /// shards should do now, if anything.
    pub fn plan(&mut self, now_ms: u64, open: &[OpenShard]) -> Option<Action> {
        let window = self.settings.window_ms;
        for sh in open {
            let state = self.shards.entry(sh.uid).or_insert(ShardState {
                window_start_ms: now_ms,
                bytes: 0,
                records: 0,
                load_percent: 0,
                quiet_since_ms: None,
            });
            let elapsed = now_ms.saturating_sub(state.window_start_ms);
            if elapsed >= window {
                let (bytes, records, start) = (state.bytes, state.records, state.window_start_ms);
                let load = self.load_percent(bytes, records, elapsed);
                let Some(state) = self.shards.get_mut(&sh.uid) else {
                    continue;
                };
                state.load_percent = load;
                state.quiet_since_ms = if load < QUIET_BELOW_PERCENT {
                    state.quiet_since_ms.or(Some(start))
                } else {
                    None
                };
                state.window_start_ms = now_ms;
                state.bytes = 0;
                state.records = 0;
            }
        }
        let count = u32::try_from(open.len()).unwrap_or(u32::MAX);
        let load = |uid: u64| self.shards.get(&uid).map_or(0, |s| s.load_percent);
        // Split the hottest shard over the threshold.
        if count < self.settings.max_shards {
            let hottest = open
                .iter()
                .filter(|s| load(s.uid) >= SPLIT_AT_PERCENT && s.end > s.start)
                .max_by_key(|s| load(s.uid));
            if let Some(sh) = hottest {
                if let Some(s) = self.shards.get_mut(&sh.uid) {
                    // Acted on: the next decision about it needs a new window.
                    s.load_percent = 0;
                }
                return Some(Action::Split {
                    shard: sh.id,
                    new_starting_hash_key: sh.start + (sh.end - sh.start) / 2 + 1,
                });
            }
        }
        // Merge the first pair of adjacent shards quiet for the whole quiet period.
        if count > self.settings.min_shards {
            let quiet = |uid: u64| {
                self.shards
                    .get(&uid)
                    .and_then(|s| s.quiet_since_ms)
                    .is_some_and(|since| now_ms.saturating_sub(since) >= self.settings.quiet_ms)
            };
            let mut by_range: Vec<&OpenShard> = open.iter().collect();
            by_range.sort_by_key(|s| s.start);
            let pair = by_range.windows(2).find(|w| {
                w[0].end.checked_add(1) == Some(w[1].start) && quiet(w[0].uid) && quiet(w[1].uid)
            });
            if let Some(w) = pair {
                return Some(Action::Merge {
                    shard: w[0].id,
                    adjacent: w[1].id,
                });
            }
        }
        None
    }

    /// Shards being watched (a gauge).
    pub fn watched(&self) -> usize {
        self.shards.len()
    }
}

/// Runs the autoscaler on the node's runtime until the process ends.
pub fn spawn(node: Arc<Node>, counters: Arc<WriteCounters>) {
    let settings = Settings::from_config(&node.cfg);
    tokio::spawn(async move {
        let mut planner = Planner::new(settings);
        let mut tick = tokio::time::interval(Duration::from_millis(settings.tick_ms()));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            run_once(&node, &counters, &mut planner).await;
        }
    });
}

/// One tick: count, decide, and carry out at most one change per stream.
async fn run_once(node: &Arc<Node>, counters: &WriteCounters, planner: &mut Planner) {
    let counts = counters.take();
    type Streams = Vec<(String, StreamStatus, Vec<OpenShard>)>;
    let streams: Streams = node.catalog.read(|c| {
        c.state()
            .streams()
            .values()
            .filter(|s| s.mode == StreamMode::OnDemand)
            .map(|s| {
                let open = s
                    .shards
                    .iter()
                    .filter(|sh| sh.open)
                    .map(|sh| OpenShard {
                        uid: sh.uid,
                        id: ShardId(sh.index),
                        start: sh.hash_start,
                        end: sh.hash_end,
                    })
                    .collect();
                (s.name.clone(), s.status, open)
            })
            .collect()
    });
    planner.observe(&counts);
    let now = now_ms();
    let mut live = HashSet::new();
    for (name, status, open) in streams {
        live.extend(open.iter().map(|s| s.uid));
        if status != StreamStatus::Active {
            continue;
        }
        let Some(action) = planner.plan(now, &open) else {
            continue;
        };
        let (cmd, kind) = match action {
            Action::Split {
                shard,
                new_starting_hash_key,
            } => (
                Command::SplitShard {
                    name: name.clone(),
                    shard_to_split: shard.to_string(),
                    new_starting_hash_key: new_starting_hash_key.to_string(),
                    now_ms: now,
                },
                "split",
            ),
            Action::Merge { shard, adjacent } => (
                Command::MergeShards {
                    name: name.clone(),
                    shard_to_merge: shard.to_string(),
                    adjacent_shard_to_merge: adjacent.to_string(),
                    now_ms: now,
                },
                "merge",
            ),
        };
        match node.catalog.execute(cmd).await {
            Ok(Ok(_)) => {
                metrics::counter!("levee_autoscale_reshards_total", "kind" => kind).increment(1);
                tracing::info!(stream = %name, ?action, "on-demand autoscaling");
                if let Err(e) = node.reconcile().await {
                    tracing::error!(stream = %name, error = %format!("{e:#}"), "reconciling after autoscaling failed");
                }
                node.clone().finish_update_later(name);
            }
            // E.g. the account shard limit: counted and retried after the next window.
            Ok(Err(e)) => {
                metrics::counter!("levee_autoscale_refused_total", "kind" => kind).increment(1);
                tracing::warn!(stream = %name, ?action, error = %e, "autoscaling refused");
            }
            Err(e) => tracing::error!(stream = %name, error = %e, "autoscaling failed"),
        }
    }
    planner.retain(&live);
    metrics::gauge!("levee_autoscale_watched_shards").set(planner.watched() as f64);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> Settings {
        Settings {
            window_ms: 1000,
            quiet_ms: 3000,
            shard_bytes_per_sec: 1000,
            shard_records_per_sec: 10,
            min_shards: 1,
            max_shards: 4,
        }
    }

    fn shards(n: u32) -> Vec<OpenShard> {
        levee_map::even_split(n)
            .into_iter()
            .enumerate()
            .map(|(i, r)| OpenShard {
                uid: 100 + i as u64,
                id: ShardId(i as u32),
                start: r.start,
                end: r.end,
            })
            .collect()
    }

    #[test]
    fn a_hot_shard_is_split_after_a_full_window_at_its_middle() {
        let mut p = Planner::new(settings());
        let open = shards(1);
        assert_eq!(p.plan(0, &open), None);
        // 900 bytes in the first half window: not judged before the window ends.
        p.observe(&HashMap::from([(100, (900, 1))]));
        assert_eq!(p.plan(500, &open), None);
        assert_eq!(
            p.plan(1000, &open),
            Some(Action::Split {
                shard: ShardId(0),
                new_starting_hash_key: 1u128 << 127,
            })
        );
        // Records count too: 9 records/s is 90 % of 10/s.
        let mut p = Planner::new(settings());
        p.plan(0, &open);
        p.observe(&HashMap::from([(100, (0, 9))]));
        assert!(matches!(p.plan(1000, &open), Some(Action::Split { .. })));
        // 70 %: no split.
        let mut p = Planner::new(settings());
        p.plan(0, &open);
        p.observe(&HashMap::from([(100, (700, 0))]));
        assert_eq!(p.plan(1000, &open), None);
    }

    #[test]
    fn quiet_neighbours_merge_after_the_quiet_period_and_bounds_hold() {
        let mut p = Planner::new(settings());
        let open = shards(2);
        for t in [0, 1000, 2000] {
            assert_eq!(p.plan(t, &open), None, "at {t}");
        }
        // Quiet since 0: at 3000 the quiet period is over for both.
        assert_eq!(
            p.plan(3000, &open),
            Some(Action::Merge {
                shard: ShardId(0),
                adjacent: ShardId(1),
            })
        );
        // One busy window restarts the quiet period.
        let mut p = Planner::new(settings());
        p.plan(0, &open);
        p.observe(&HashMap::from([(101, (300, 0))]));
        for t in [1000, 2000, 3000] {
            assert_eq!(p.plan(t, &open), None, "at {t}");
        }
        assert!(matches!(p.plan(4000, &open), Some(Action::Merge { .. })));
        // At the minimum: no merge; at the maximum: no split.
        let mut p = Planner::new(Settings {
            min_shards: 2,
            max_shards: 2,
            ..settings()
        });
        p.plan(0, &open);
        p.observe(&HashMap::from([(100, (5000, 0))]));
        for t in [1000, 2000, 3000, 4000] {
            assert_eq!(p.plan(t, &open), None, "at {t}");
        }
    }

    #[test]
    fn counters_are_bounded_and_taken_whole() {
        let c = WriteCounters::default();
        c.record(1, 10, 1);
        c.record(1, 5, 2);
        assert_eq!(c.take(), HashMap::from([(1, (15, 3))]));
        assert!(c.take().is_empty());
    }
}
