"""EnableEnhancedMonitoring selects per-shard metric series (label `shard`) at /metrics."""
import urllib.request
import uuid

from conftest import wait_active


def series(server, name, stream):
    text = urllib.request.urlopen(server.admin + "/metrics", timeout=10).read().decode()
    return [line for line in text.splitlines()
            if line.startswith(name + "{") and f'stream="{stream}"' in line]


def test_shard_level_series_follow_enhanced_monitoring(server, kinesis):
    name = "mon-" + uuid.uuid4().hex[:8]
    kinesis.create_stream(StreamName=name, ShardCount=2)
    wait_active(kinesis, name)
    kinesis.put_record(StreamName=name, Data=b"a", PartitionKey="k")
    before = series(server, "levee_stream_incoming_records_total", name)
    assert before and all("shard=" not in line for line in before), before
    out = kinesis.enable_enhanced_monitoring(StreamName=name, ShardLevelMetrics=["IncomingRecords"])
    assert out["DesiredShardLevelMetrics"] == ["IncomingRecords"]
    wait_active(kinesis, name)
    for i in range(20):
        kinesis.put_record(StreamName=name, Data=b"b", PartitionKey=f"k{i}")
    per_shard = [line for line in series(server, "levee_stream_incoming_records_total", name)
                 if "shard=" in line]
    shards = {line.split('shard="')[1].split('"')[0] for line in per_shard}
    assert shards == {"shardId-000000000000", "shardId-000000000001"}, per_shard
    assert sum(float(line.rsplit(" ", 1)[1]) for line in per_shard) == 20
