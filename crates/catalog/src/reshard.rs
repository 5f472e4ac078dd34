//! Resharding: SplitShard, MergeShards, UpdateShardCount, and the two housekeeping commands the
//! server issues, FinishUpdate (UPDATING → ACTIVE) and ExpireShards.
//!
//! A reshard closes shards and creates new ones in one command. Closed shards keep their place
//! in the stream and in the shard map (reads still route to them, writes do not); their
//! `closed_ms` gives the `EndingSequenceNumber`. Children get the next indexes, the next uids,
//! `created_ms = now_ms` and accurate `ParentShardId` / `AdjacentParentShardId`, which the KCL
//! follows at shard end. The open shards cover `[0, 2^128)` exactly before and after.
//!
//! # UpdateShardCount lineage
//!
//! `UNIFORM_SCALING` replaces the open shards `P` by `levee_map::even_split(target)` `C`. Closing
//! every `P` and creating every `C` directly can give a child three or more overlapping parents
//! (5 → 3 even shards: the middle child overlaps three parents), which ListShards cannot
//! express. So, as AWS does ("performs splits or merges on individual shards ... short-lived
//! shards"), it is done as splits, then merges, all within the one command:
//!
//! 1. **Split.** Every open shard that a target boundary cuts is closed and split at each such
//!    boundary into pieces, each piece with that shard as its only parent. Shards no boundary
//!    cuts are left alone. Now every piece (or untouched shard) lies inside exactly one target.
//! 2. **Merge.** For every target, the pieces inside it, left to right, are merged in a chain:
//!    `m1 = merge(q1, q2)`, `m2 = merge(m1, q3)`, ..., the last merge being the target itself.
//!    A merge child has exactly two parents, both inside it: the wider is `ParentShardId`, the
//!    other `AdjacentParentShardId` (ties: the left one). A target made of one piece is that
//!    piece; an untouched shard equal to its target simply stays open.
//!
//! So every new shard has one parent (a split child) or two (a merge child), every parent
//! overlaps its child, every child lies inside its parents' union, and each closed shard's
//! children cover it exactly. Doubling is one split per shard and halving one merge per pair,
//! exactly as AWS; other ratios create short-lived shards (created and closed at the same
//! `now_ms`, holding no records), listed in the outcome's `created` and `closed` both. Only the
//! `target` final shards stay open, so only they count against the shard limit.

use crate::nodes::Placer;
use crate::{
    stream_mut, Catalog, CatalogError, NewShard, Outcome, Shard, ShardId, Stream, StreamStatus,
    SHARD_EPOCH_INITIAL,
};

/// UpdateShardCount scalings a stream may have per rolling 24 hours (AWS's default limit).
pub const SCALINGS_PER_DAY_MAX: usize = 10;
/// The rolling window of [`SCALINGS_PER_DAY_MAX`].
pub const SCALING_WINDOW_MS: u64 = 24 * 3_600_000;
/// The wire model's maximum `TargetShardCount`.
const TARGET_SHARD_COUNT_MAX: u32 = 100_000;

/// `0|([1-9]\d{0,38})`, the wire model's pattern for hash keys.
fn hash_key_pattern_ok(s: &str) -> bool {
    let b = s.as_bytes();
    match b.first() {
        Some(b'0') => b.len() == 1,
        Some(b'1'..=b'9') => b.len() <= 39 && b.iter().all(u8::is_ascii_digit),
        _ => false,
    }
}

fn internal(reason: String) -> CatalogError {
    CatalogError::InternalFailure { reason }
}

/// A shard of `s` that clients can still name (not expired).
fn live_shard(s: &Stream, id: ShardId) -> Option<&Shard> {
    s.shard(id).filter(|sh| !sh.is_expired())
}

/// One reshard in progress: closes and creates shards of one stream, recording what storage
/// must do. Errors are bugs (the caller rolls the stream back). Every shard it closes gets
/// `closed_ms` and every shard it creates `created_ms` equal to the command's `now_ms`, raised
/// if need be to the newest open shard's `created_ms`.
struct Reshard<'a> {
    stream: &'a mut Stream,
    next_uid: &'a mut u64,
    now_ms: u64,
    /// Where the new shards go.
    placer: Placer,
    open_before: u32,
    closed: Vec<u64>,
    created: Vec<NewShard>,
}

impl<'a> Reshard<'a> {
    fn new(
        stream: &'a mut Stream,
        next_uid: &'a mut u64,
        now_ms: u64,
        placer: Placer,
    ) -> Reshard<'a> {
        let open_before = stream.open_shard_count();
        // A command's time comes from the leader's clock, which may step back; lineage time may
        // not (a child's first sequence number must follow its parents' last). So a reshard
        // happens no earlier than the creation of any shard it may close.
        let now_ms = stream
            .shards
            .iter()
            .filter(|sh| sh.open)
            .map(|sh| sh.created_ms)
            .fold(now_ms, u64::max);
        Reshard {
            stream,
            next_uid,
            now_ms,
            placer,
            open_before,
            closed: Vec::new(),
            created: Vec::new(),
        }
    }

    fn close(&mut self, index: u32) -> Result<(), CatalogError> {
        let sh = usize::try_from(index)
            .ok()
            .and_then(|i| self.stream.shards.get_mut(i))
            .filter(|sh| sh.open)
            .ok_or_else(|| internal(format!("reshard closes shard {index}, not open")))?;
        sh.open = false;
        sh.epoch = sh
            .epoch
            .checked_add(1)
            .ok_or_else(|| internal(format!("shard {index} epoch overflow")))?;
        sh.closed_ms = Some(self.now_ms);
        self.closed.push(sh.uid);
        Ok(())
    }

    fn create(
        &mut self,
        start: u128,
        end: u128,
        parent: u32,
        adjacent_parent: Option<u32>,
    ) -> Result<u32, CatalogError> {
        let index = u32::try_from(self.stream.shards.len())
            .map_err(|_| internal("shard index overflow".to_string()))?;
        let uid = *self.next_uid;
        let (group, node) = self.placer.next();
        *self.next_uid = uid
            .checked_add(1)
            .ok_or_else(|| internal("shard uid counter overflow".to_string()))?;
        self.stream.shards.push(Shard {
            index,
            uid,
            hash_start: start,
            hash_end: end,
            parent: Some(parent),
            adjacent_parent,
            created_ms: self.now_ms,
            open: true,
            epoch: SHARD_EPOCH_INITIAL,
            group,
            node,
            closed_ms: None,
            expired_ms: None,
        });
        self.created.push(NewShard {
            uid,
            index,
            created_ms: self.now_ms,
        });
        Ok(index)
    }

    /// The stream goes UPDATING; routing changed.
    fn finish(self) -> (Outcome, bool) {
        self.stream.status = StreamStatus::Updating;
        self.stream.status_changed_ms = self.now_ms;
        let outcome = Outcome::Resharded {
            stream_uid: self.stream.uid,
            open_before: self.open_before,
            open_after: self.stream.open_shard_count(),
            closed: self.closed,
            created: self.created,
        };
        (outcome, true)
    }
}

impl Catalog {
    /// The ACTIVE stream `name`, with the uid counter, for a reshard.
    fn reshardable(&mut self, name: &str) -> Result<(&mut Stream, &mut u64), CatalogError> {
        let account = &self.config.account_id;
        let state = &mut self.state;
        let s = stream_mut(&mut state.streams, name, account)?;
        if s.status != StreamStatus::Active {
            return Err(CatalogError::not_active(name, account, s.status.as_str()));
        }
        Ok((s, &mut state.next_shard_uid))
    }

    pub(crate) fn split_shard(
        &mut self,
        name: &str,
        shard_to_split: &str,
        new_starting_hash_key: &str,
        now_ms: u64,
    ) -> Result<(Outcome, bool), CatalogError> {
        let account = self.config.account_id.clone();
        let region = self.config.region.clone();
        let limit = self.config.shard_limit;
        let placer = self.placer(&self.config.cell);
        if !hash_key_pattern_ok(new_starting_hash_key) {
            return Err(CatalogError::Validation(format!(
                "1 validation error detected: Value '{new_starting_hash_key}' at \
                 'newStartingHashKey' failed to satisfy constraint: Member must satisfy regular \
                 expression pattern: 0|([1-9]\\d{{0,38}})"
            )));
        }
        let id = ShardId::resolve(shard_to_split)
            .ok_or_else(|| CatalogError::shard_not_found(shard_to_split, name, &account))?;
        let account_open = self.account_open_shard_count();
        let (s, next_uid) = self.reshardable(name)?;
        let sh = live_shard(s, id)
            .ok_or_else(|| CatalogError::shard_not_found(&id.to_string(), name, &account))?;
        if !sh.open {
            return Err(CatalogError::shard_closed(&id.to_string(), name, &account));
        }
        if account_open.saturating_add(1) > u64::from(limit) {
            return Err(CatalogError::shard_limit(
                &account,
                &region,
                account_open,
                limit,
                1,
            ));
        }
        let (start, end) = (sh.hash_start, sh.hash_end);
        // AWS wants StartingHashKey + 1 < key < EndingHashKey (recorded in kinesalite's
        // test/splitShard.js), so each child has at least two hash keys. A key above 2^128 - 1
        // does not parse and is too big.
        let key = new_starting_hash_key
            .parse::<u128>()
            .ok()
            .filter(|k| *k > start.saturating_add(1) && *k < end);
        let Some(key) = key else {
            return Err(CatalogError::InvalidArgument(format!(
                "NewStartingHashKey {new_starting_hash_key} used in SplitShard() on shard {id} in \
                 stream {name} under account {account} is not both greater than one plus the \
                 shard's StartingHashKey {start} and less than the shard's EndingHashKey {end}."
            )));
        };
        let mut r = Reshard::new(s, next_uid, now_ms, placer);
        r.close(id.0)?;
        r.create(start, key - 1, id.0, None)?;
        r.create(key, end, id.0, None)?;
        Ok(r.finish())
    }

    pub(crate) fn merge_shards(
        &mut self,
        name: &str,
        shard_to_merge: &str,
        adjacent_shard_to_merge: &str,
        now_ms: u64,
    ) -> Result<(Outcome, bool), CatalogError> {
        let account = self.config.account_id.clone();
        let placer = self.placer(&self.config.cell);
        let resolve = |raw: &str| {
            ShardId::resolve(raw).ok_or_else(|| CatalogError::shard_not_found(raw, name, &account))
        };
        let a_id = resolve(shard_to_merge)?;
        let b_id = resolve(adjacent_shard_to_merge)?;
        let (s, next_uid) = self.reshardable(name)?;
        let find = |id: ShardId| {
            live_shard(s, id)
                .ok_or_else(|| CatalogError::shard_not_found(&id.to_string(), name, &account))
        };
        let (a, b) = (find(a_id)?, find(b_id)?);
        for sh in [a, b] {
            if !sh.open {
                return Err(CatalogError::shard_closed(
                    &sh.shard_id().to_string(),
                    name,
                    &account,
                ));
            }
        }
        // Recorded in kinesalite's test/mergeShards.js: the adjacent shard must follow the
        // shard to merge ("adjacency is inverted" is refused too).
        if a.hash_end.checked_add(1) != Some(b.hash_start) {
            return Err(CatalogError::InvalidArgument(format!(
                "Shards {a_id} and {b_id} in stream {name} under account {account} are not an \
                 adjacent pair of shards eligible for merging"
            )));
        }
        let (start, end) = (a.hash_start, b.hash_end);
        let mut r = Reshard::new(s, next_uid, now_ms, placer);
        r.close(a_id.0)?;
        r.close(b_id.0)?;
        r.create(start, end, a_id.0, Some(b_id.0))?;
        Ok(r.finish())
    }

    pub(crate) fn update_shard_count(
        &mut self,
        name: &str,
        target: u32,
        now_ms: u64,
    ) -> Result<(Outcome, bool), CatalogError> {
        let account = self.config.account_id.clone();
        let region = self.config.region.clone();
        let limit = self.config.shard_limit;
        let placer = self.placer(&self.config.cell);
        if target < 1 {
            return Err(CatalogError::Validation(format!(
                "1 validation error detected: Value '{target}' at 'targetShardCount' failed to \
                 satisfy constraint: Member must have value greater than or equal to 1"
            )));
        }
        if target > TARGET_SHARD_COUNT_MAX {
            return Err(CatalogError::Validation(format!(
                "1 validation error detected: Value '{target}' at 'targetShardCount' failed to \
                 satisfy constraint: Member must have value less than or equal to \
                 {TARGET_SHARD_COUNT_MAX}"
            )));
        }
        let account_open = self.account_open_shard_count();
        let (s, next_uid) = self.reshardable(name)?;
        let open = s.open_shard_count();
        // Texts from kinesalite PR #103 (test/updateShardCount.js); the "double" one is also
        // quoted from the service in the AWS CDK's docs for `shardCount`.
        if target > limit {
            return Err(CatalogError::LimitExceeded(format!(
                "Target shard count or number of open shards cannot be greater than {limit}. \
                 Current open shard count: {open}, Target shard count: {target}"
            )));
        }
        let account_after = account_open
            .saturating_sub(u64::from(open))
            .saturating_add(u64::from(target));
        if account_after > u64::from(limit) {
            return Err(CatalogError::shard_limit(
                &account,
                &region,
                account_open,
                limit,
                u64::from(target.saturating_sub(open)),
            ));
        }
        if u64::from(target) > 2 * u64::from(open) {
            return Err(CatalogError::LimitExceeded(format!(
                "UpdateShardCount cannot scale up over double your current open shard count. \
                 Current open shard count: {open}, Target shard count: {target}"
            )));
        }
        if 2 * u64::from(target) < u64::from(open) {
            return Err(CatalogError::LimitExceeded(format!(
                "UpdateShardCount cannot scale down below half your current open shard count. \
                 Current open shard count: {open}, Target shard count: {target}"
            )));
        }
        s.scaling_ms
            .retain(|t| now_ms < t.saturating_add(SCALING_WINDOW_MS));
        if s.scaling_ms.len() >= SCALINGS_PER_DAY_MAX {
            // Levee's own text: AWS documents the limit, but no recorded message was found.
            return Err(CatalogError::LimitExceeded(format!(
                "UpdateShardCount cannot scale stream {name} under account {account} more than \
                 {SCALINGS_PER_DAY_MAX} times in a rolling 24-hour period. Scalings in the \
                 current period: {}.",
                s.scaling_ms.len()
            )));
        }
        s.scaling_ms.push(now_ms);

        let mut parents: Vec<(u32, u128, u128)> = s
            .shards
            .iter()
            .filter(|sh| sh.open)
            .map(|sh| (sh.index, sh.hash_start, sh.hash_end))
            .collect();
        parents.sort_by_key(|p| p.1);
        let targets = levee_map::even_split(target);
        let mut r = Reshard::new(s, next_uid, now_ms, placer);

        // 1. Split every open shard at the target boundaries inside it.
        let mut pieces: Vec<(u32, u128, u128)> = Vec::with_capacity(parents.len());
        let mut cuts = targets.iter().skip(1).map(|t| t.start).peekable();
        for &(index, start, end) in &parents {
            let mut inner = Vec::new();
            while let Some(&c) = cuts.peek() {
                if c > end {
                    break;
                }
                if c > start {
                    inner.push(c);
                }
                cuts.next();
            }
            if inner.is_empty() {
                pieces.push((index, start, end));
                continue;
            }
            r.close(index)?;
            let mut from = start;
            for c in inner {
                let child = r.create(from, c - 1, index, None)?;
                pieces.push((child, from, c - 1));
                from = c;
            }
            let child = r.create(from, end, index, None)?;
            pieces.push((child, from, end));
        }

        // 2. Merge the pieces inside each target, left to right.
        let mut pieces = pieces.into_iter();
        for t in &targets {
            let bad = || internal(format!("UpdateShardCount pieces do not tile target {t:?}"));
            let mut acc = pieces.next().ok_or_else(bad)?;
            if acc.1 != t.start {
                return Err(bad());
            }
            while acc.2 < t.end {
                let q = pieces.next().ok_or_else(bad)?;
                if acc.2.checked_add(1) != Some(q.1) || q.2 > t.end {
                    return Err(bad());
                }
                r.close(acc.0)?;
                r.close(q.0)?;
                let (parent, adjacent) = if q.2 - q.1 > acc.2 - acc.1 {
                    (q.0, acc.0)
                } else {
                    (acc.0, q.0)
                };
                let merged = r.create(acc.1, q.2, parent, Some(adjacent))?;
                acc = (merged, acc.1, q.2);
            }
            if acc.2 != t.end {
                return Err(bad());
            }
        }
        if pieces.next().is_some() {
            return Err(internal("UpdateShardCount left pieces over".to_string()));
        }
        Ok(r.finish())
    }

    pub(crate) fn finish_update(
        &mut self,
        name: &str,
        now_ms: u64,
    ) -> Result<(Outcome, bool), CatalogError> {
        let account = &self.config.account_id;
        let s = stream_mut(&mut self.state.streams, name, account)?;
        match s.status {
            StreamStatus::Updating => {
                s.status = StreamStatus::Active;
                s.status_changed_ms = now_ms;
                Ok((Outcome::UpdateFinished, true))
            }
            StreamStatus::Active => Ok((Outcome::Unchanged, false)),
            other => Err(CatalogError::ResourceInUse(format!(
                "Stream {name} under account {account} not UPDATING, instead in state {}",
                other.as_str()
            ))),
        }
    }

    pub(crate) fn expire_shards(
        &mut self,
        name: &str,
        now_ms: u64,
    ) -> Result<(Outcome, bool), CatalogError> {
        let account = &self.config.account_id;
        let s = stream_mut(&mut self.state.streams, name, account)?;
        let retention = s.retention_ms();
        let mut shard_uids = Vec::new();
        for sh in &mut s.shards {
            let due = sh
                .closed_ms
                .is_some_and(|c| c.saturating_add(retention) < now_ms);
            if due && !sh.is_expired() {
                sh.expired_ms = Some(now_ms);
                sh.epoch = sh
                    .epoch
                    .checked_add(1)
                    .ok_or_else(|| internal(format!("shard {} epoch overflow", sh.index)))?;
                shard_uids.push(sh.uid);
            }
        }
        if shard_uids.is_empty() {
            return Ok((Outcome::Unchanged, false));
        }
        Ok((
            Outcome::ShardsExpired {
                stream_uid: s.uid,
                shard_uids,
            },
            true,
        ))
    }
}

fn overlaps(a: &Shard, b: &Shard) -> bool {
    a.hash_start <= b.hash_end && b.hash_start <= a.hash_end
}

/// Whether the union of `ranges` covers `[start, end]`.
fn covers(mut ranges: Vec<(u128, u128)>, start: u128, end: u128) -> bool {
    ranges.sort_unstable();
    let mut next = start;
    for (s, e) in ranges {
        if s > next {
            return false;
        }
        if e >= end {
            return true;
        }
        next = next.max(e + 1);
    }
    false
}

/// The shard-state and lineage invariants of one stream (indexes, uids and coverage of the open
/// shards are checked by the caller).
pub(crate) fn check_shards(s: &Stream) -> Result<(), String> {
    let n = &s.name;
    let mut seen_child = false;
    for sh in &s.shards {
        let i = sh.index;
        if sh.open == sh.closed_ms.is_some() {
            return Err(format!(
                "stream {n}: shard {i} open={} but closed_ms={:?}",
                sh.open, sh.closed_ms
            ));
        }
        if sh.open && sh.is_expired() {
            return Err(format!("stream {n}: shard {i} is open and expired"));
        }
        if sh.closed_ms.is_some_and(|c| c < sh.created_ms) {
            return Err(format!(
                "stream {n}: shard {i} closed before it was created"
            ));
        }
        let Some(p) = sh.parent else {
            if sh.adjacent_parent.is_some() {
                return Err(format!("stream {n}: shard {i} has only an adjacent parent"));
            }
            if seen_child {
                return Err(format!(
                    "stream {n}: shard {i} has no parent but follows a child"
                ));
            }
            continue;
        };
        seen_child = true;
        if sh.adjacent_parent == Some(p) {
            return Err(format!("stream {n}: shard {i} has the same parent twice"));
        }
        let mut ranges = Vec::with_capacity(2);
        for q in std::iter::once(p).chain(sh.adjacent_parent) {
            let parent = s
                .shard(ShardId(q))
                .ok_or_else(|| format!("stream {n}: shard {i} has a missing parent {q}"))?;
            if parent.open {
                return Err(format!("stream {n}: shard {i} has an open parent {q}"));
            }
            if !overlaps(parent, sh) {
                return Err(format!("stream {n}: parent {q} does not overlap shard {i}"));
            }
            if parent.closed_ms.is_some_and(|c| c > sh.created_ms) {
                return Err(format!(
                    "stream {n}: shard {i} predates its parent {q} closing"
                ));
            }
            ranges.push((parent.hash_start, parent.hash_end));
        }
        if !covers(ranges, sh.hash_start, sh.hash_end) {
            return Err(format!("stream {n}: shard {i} is not inside its parents"));
        }
    }
    if s.scaling_ms.len() > SCALINGS_PER_DAY_MAX {
        return Err(format!("stream {n} has {} scalings", s.scaling_ms.len()));
    }
    Ok(())
}
