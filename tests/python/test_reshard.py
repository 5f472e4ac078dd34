"""Resharding that consumers survive (boto3): splits, merges and UpdateShardCount up and down,
twice, under continuous writes from many partition keys, while a reader that starts at the root shards
and follows ChildShards reads every acknowledged record exactly once, parents before children,
and each partition key's records in the order they were written."""
import collections
import threading
import uuid

from conftest import wait_active

KEYS = [f"key-{i}" for i in range(40)]


def open_shards(kinesis, name):
    shards = kinesis.list_shards(StreamName=name, ShardFilter={"Type": "AT_LATEST"})["Shards"]
    return sorted(shards, key=lambda s: int(s["HashKeyRange"]["StartingHashKey"]))


def read_by_lineage(kinesis, name):
    """Reads every shard from TRIM_HORIZON, a child only after all its parents ended."""
    shards = {s["ShardId"]: s for s in kinesis.list_shards(StreamName=name)["Shards"]}
    parents = {sid: [p for p in (s.get("ParentShardId"), s.get("AdjacentParentShardId")) if p]
               for sid, s in shards.items()}
    done, order, records = set(), [], []
    ready = collections.deque(sid for sid, ps in parents.items() if not ps)
    while ready:
        sid = ready.popleft()
        if sid in done:
            continue
        it = kinesis.get_shard_iterator(StreamName=name, ShardId=sid,
                                        ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        children = []
        while it:
            r = kinesis.get_records(ShardIterator=it, Limit=1000)
            records += [(sid, x["PartitionKey"], x["Data"].decode(), x["SequenceNumber"]) for x in r["Records"]]
            if r.get("NextShardIterator") is None:
                # The KCL's shard-end contract: no iterator, and the children named.
                children = r.get("ChildShards") or []
                assert children, f"{sid} ended without ChildShards"
                for c in children:
                    assert sid in c["ParentShards"]
                break
            if not r["Records"] and r["MillisBehindLatest"] == 0:
                break  # an open shard, caught up
            it = r["NextShardIterator"]
        done.add(sid)
        order.append(sid)
        for c in children:
            if all(p in done for p in parents[c["ShardId"]]):
                ready.append(c["ShardId"])
    assert done == set(shards), f"unreached shards: {set(shards) - done}"
    return order, records


def test_reshard_under_continuous_writes(kinesis):
    name = "reshard-" + uuid.uuid4().hex[:8]
    kinesis.create_stream(StreamName=name, ShardCount=2)
    wait_active(kinesis, name)
    acked, stop, errors = [], threading.Event(), []
    counters = collections.Counter()

    def writer():
        i = 0
        while not stop.is_set():
            batch = []
            for _ in range(20):
                key = KEYS[i % len(KEYS)]
                i += 7
                batch.append((key, f"{key}:{counters[key]}"))
                counters[key] += 1
            try:
                out = kinesis.put_records(StreamName=name, Records=[
                    {"PartitionKey": k, "Data": d.encode()} for k, d in batch])
            except Exception as e:  # noqa: BLE001 — recorded and asserted below
                errors.append(e)
                return
            for (k, d), r in zip(batch, out["Records"]):
                if "SequenceNumber" in r:
                    acked.append((k, d, r["SequenceNumber"]))
                else:
                    errors.append(r)

    t = threading.Thread(target=writer)
    t.start()
    try:
        for _round in range(2):
            reshard_round(kinesis, name)
    finally:
        stop.set()
        t.join()
    assert not errors, errors[:3]
    assert len(acked) > 100
    check_everything_read(kinesis, name, acked)


def reshard_round(kinesis, name):
    """Split, merge, then UpdateShardCount up to 4 and down to 2, each waited until ACTIVE."""
    shards = open_shards(kinesis, name)
    lo, hi = int(shards[0]["HashKeyRange"]["StartingHashKey"]), int(shards[0]["HashKeyRange"]["EndingHashKey"])
    kinesis.split_shard(StreamName=name, ShardToSplit=shards[0]["ShardId"],
                        NewStartingHashKey=str((lo + hi) // 2))
    wait_active(kinesis, name)
    shards = open_shards(kinesis, name)
    kinesis.merge_shards(StreamName=name, ShardToMerge=shards[1]["ShardId"],
                         AdjacentShardToMerge=shards[2]["ShardId"])
    wait_active(kinesis, name)
    out = kinesis.update_shard_count(StreamName=name, TargetShardCount=4, ScalingType="UNIFORM_SCALING")
    assert out["CurrentShardCount"] == 2 and out["TargetShardCount"] == 4
    wait_active(kinesis, name)
    kinesis.update_shard_count(StreamName=name, TargetShardCount=2, ScalingType="UNIFORM_SCALING")
    wait_active(kinesis, name)
    assert len(open_shards(kinesis, name)) == 2


def check_everything_read(kinesis, name, acked):
    order, records = read_by_lineage(kinesis, name)
    print(f"read {len(records)} records ({len(acked)} acknowledged) from shards in order {order}")
    assert len(order) >= 18, "two rounds of resharding must have produced a lineage of at least 18 shards"
    seen = collections.Counter(d for _, _, d, _ in records)
    assert not [d for d, n in seen.items() if n > 1], "records read twice"
    got = {d: seq for _, _, d, seq in records}
    for k, d, seq in acked:
        assert got.get(d) == seq, f"acknowledged {d} missing or moved"
    last = {}
    for _, k, d, _ in records:
        n = int(d.split(":")[1])
        assert n > last.get(k, -1), f"{k} out of order: {n} after {last.get(k)}"
        last[k] = n
    # Closed shards report their end; open shards cover the key space.
    described = kinesis.describe_stream(StreamName=name)["StreamDescription"]["Shards"]
    closed = [s for s in described if "EndingSequenceNumber" in s["SequenceNumberRange"]]
    assert closed and all(int(s["SequenceNumberRange"]["EndingSequenceNumber"]) >
                          int(s["SequenceNumberRange"]["StartingSequenceNumber"]) for s in closed)
