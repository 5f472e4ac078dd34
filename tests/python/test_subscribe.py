"""SubscribeToShard with boto3 over HTTP/1.1: the event stream starts with initial-response and
pushes records as they are committed, from every starting position; idle subscriptions get
heartbeats with an advancing continuation; a second subscription is refused and then takes
over; the subscription ends after its lifetime; after a split the parent's stream ends with
ChildShards. Time is scaled for tests: heartbeat 300 ms, lifetime 3 s, takeover guard 1 s."""
import threading
import time
import urllib.request
import uuid

import pytest
from botocore.exceptions import ClientError, EventStreamError

from conftest import ACCOUNT, REGION, Server, client, wait_active

HEARTBEAT_S = 0.3
DURATION_S = 3.0
TAKEOVER_S = 1.0
SHARD0 = "shardId-000000000000"


@pytest.fixture(scope="module")
def server():
    s = Server(extra_args=[
        "--subscription-heartbeat-ms", str(int(HEARTBEAT_S * 1000)),
        "--subscription-duration-ms", str(int(DURATION_S * 1000)),
        "--subscription-takeover-ms", str(int(TAKEOVER_S * 1000)),
    ])
    s.start()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def kinesis(server):
    return client(server.endpoint)


def stream_with_consumer(kinesis, shards=1):
    name = "sub-" + uuid.uuid4().hex[:8]
    kinesis.create_stream(StreamName=name, ShardCount=shards)
    wait_active(kinesis, name)
    arn = f"arn:aws:kinesis:{REGION}:{ACCOUNT}:stream/{name}"
    c = kinesis.register_stream_consumer(StreamARN=arn, ConsumerName="app")["Consumer"]
    deadline = time.monotonic() + 20
    while kinesis.describe_stream_consumer(ConsumerARN=c["ConsumerARN"])[
            "ConsumerDescription"]["ConsumerStatus"] != "ACTIVE":
        assert time.monotonic() < deadline, "consumer never became ACTIVE"
        time.sleep(0.02)  # between polls of the condition
    return name, c["ConsumerARN"]


def subscribe(kinesis, consumer, position, shard=SHARD0):
    return kinesis.subscribe_to_shard(
        ConsumerARN=consumer, ShardId=shard, StartingPosition=position)["EventStream"]


def collect(events, n):
    """Reads events until n records have arrived; returns (records, events)."""
    records, seen = [], []
    for ev in events:
        e = ev["SubscribeToShardEvent"]
        seen.append(e)
        records.extend(e["Records"])
        if len(records) >= n:
            return records, seen
    raise AssertionError(f"stream ended after {len(records)} of {n} records")


def test_records_written_after_subscribing_are_pushed(kinesis):
    name, consumer = stream_with_consumer(kinesis)
    events = subscribe(kinesis, consumer, {"Type": "LATEST"})
    sent = []
    for i in range(20):
        r = kinesis.put_record(StreamName=name, Data=f"r{i}".encode(), PartitionKey="k")
        sent.append(r["SequenceNumber"])
    records, seen = collect(events, 20)
    assert [r["Data"] for r in records] == [f"r{i}".encode() for i in range(20)]
    assert [r["SequenceNumber"] for r in records] == sent
    assert all(r["PartitionKey"] == "k" for r in records)
    last = [e for e in seen if e["Records"]][-1]
    # With records, the continuation is the last record's sequence number.
    assert last["ContinuationSequenceNumber"] == last["Records"][-1]["SequenceNumber"]
    assert last["MillisBehindLatest"] == 0
    events.close()


def test_starting_positions(kinesis):
    name, consumer = stream_with_consumer(kinesis)
    seqs = [kinesis.put_record(StreamName=name, Data=f"d{i}".encode(), PartitionKey="k")["SequenceNumber"]
            for i in range(5)]
    desc = kinesis.describe_stream(StreamName=name)["StreamDescription"]["Shards"][0]
    start_seq = desc["SequenceNumberRange"]["StartingSequenceNumber"]
    cases = [
        ({"Type": "TRIM_HORIZON"}, 0),
        ({"Type": "AT_SEQUENCE_NUMBER", "SequenceNumber": seqs[2]}, 2),
        ({"Type": "AFTER_SEQUENCE_NUMBER", "SequenceNumber": seqs[2]}, 3),
        # The shard's StartingSequenceNumber is before its first record.
        ({"Type": "AFTER_SEQUENCE_NUMBER", "SequenceNumber": start_seq}, 0),
        ({"Type": "AT_TIMESTAMP", "Timestamp": time.time() - 3600}, 0),
    ]
    for position, first in cases:
        events = subscribe(kinesis, consumer, position)
        records, _ = collect(events, 5 - first)
        assert [r["SequenceNumber"] for r in records] == seqs[first:], position
        events.close()
        # The next subscription of this consumer to the shard must wait out the guard.
        time.sleep(TAKEOVER_S)  # the takeover guard is a time rule, not a condition


def test_idle_heartbeats_advance_and_the_subscription_ends(kinesis):
    name, consumer = stream_with_consumer(kinesis)
    started = time.monotonic()
    events = subscribe(kinesis, consumer, {"Type": "LATEST"})
    arrivals, continuations = [], []
    for ev in events:
        e = ev["SubscribeToShardEvent"]
        assert e["Records"] == []
        assert e["MillisBehindLatest"] == 0
        arrivals.append(time.monotonic())
        continuations.append(int(e["ContinuationSequenceNumber"]))
    lasted = time.monotonic() - started
    # The stream ends by itself after its lifetime, with heartbeats all along.
    assert DURATION_S - 0.2 <= lasted <= DURATION_S + 2, lasted
    gaps = [b - a for a, b in zip([started] + arrivals, arrivals)]
    assert len(arrivals) >= int(DURATION_S / HEARTBEAT_S) - 2, arrivals
    assert max(gaps) <= HEARTBEAT_S + 0.5, gaps
    # The continuation never goes back, and advances with time though nothing is written.
    assert continuations == sorted(continuations)
    assert continuations[-1] > continuations[0]
    # Resuming AFTER the idle continuation reads exactly what was written since.
    seq = kinesis.put_record(StreamName=name, Data=b"later", PartitionKey="k")["SequenceNumber"]
    resumed = subscribe(kinesis, consumer, {"Type": "AFTER_SEQUENCE_NUMBER",
                                            "SequenceNumber": str(continuations[-1])})
    records, _ = collect(resumed, 1)
    assert [(r["SequenceNumber"], r["Data"]) for r in records] == [(seq, b"later")]
    resumed.close()


def test_second_subscription_is_refused_then_takes_over(kinesis):
    name, consumer = stream_with_consumer(kinesis)
    first = subscribe(kinesis, consumer, {"Type": "LATEST"})
    with pytest.raises(ClientError) as e:
        subscribe(kinesis, consumer, {"Type": "LATEST"})
    assert e.value.response["Error"]["Code"] == "ResourceInUseException"
    assert "Another active subscription exists for this consumer" in e.value.response["Error"]["Message"]
    time.sleep(TAKEOVER_S)  # the takeover guard is a time rule, not a condition
    second = subscribe(kinesis, consumer, {"Type": "LATEST"})
    with pytest.raises(EventStreamError) as e:
        for _ in first:
            pass
    assert e.value.response["Error"]["Code"] == "ResourceInUseException"
    kinesis.put_record(StreamName=name, Data=b"to-the-new-one", PartitionKey="k")
    records, _ = collect(second, 1)
    assert records[0]["Data"] == b"to-the-new-one"
    second.close()


def test_shard_end_after_a_split_names_the_children(kinesis):
    name, consumer = stream_with_consumer(kinesis)
    events = subscribe(kinesis, consumer, {"Type": "TRIM_HORIZON"})
    kinesis.put_record(StreamName=name, Data=b"before", PartitionKey="k")
    kinesis.split_shard(StreamName=name, ShardToSplit=SHARD0,
                        NewStartingHashKey=str(2 ** 127))
    last, records = None, []
    for ev in events:
        last = ev["SubscribeToShardEvent"]
        records.extend(last["Records"])
    assert [r["Data"] for r in records] == [b"before"]
    assert last is not None
    # The KCL's shard-end contract: no continuation, and children naming their parent.
    assert "ContinuationSequenceNumber" not in last
    children = last["ChildShards"]
    assert sorted(c["ShardId"] for c in children) == ["shardId-000000000001", "shardId-000000000002"]
    assert all(c["ParentShards"] == [SHARD0] for c in children)
    ranges = sorted((int(c["HashKeyRange"]["StartingHashKey"]), int(c["HashKeyRange"]["EndingHashKey"]))
                    for c in children)
    assert ranges == [(0, 2 ** 127 - 1), (2 ** 127, 2 ** 128 - 1)]
    # A child can be subscribed to and receives what is written to it.
    wait_active(kinesis, name)
    child = subscribe(kinesis, consumer, {"Type": "TRIM_HORIZON"}, shard="shardId-000000000001")
    kinesis.put_record(StreamName=name, Data=b"after", PartitionKey="k",
                       ExplicitHashKey="1")
    got, _ = collect(child, 1)
    assert got[0]["Data"] == b"after"
    child.close()


def test_errors_before_the_stream(kinesis):
    name, consumer = stream_with_consumer(kinesis)
    with pytest.raises(ClientError) as e:
        subscribe(kinesis, consumer, {"Type": "LATEST"}, shard="shardId-000000000009")
    assert e.value.response["Error"]["Code"] == "ResourceNotFoundException"
    missing = consumer.replace("/consumer/app:", "/consumer/nobody:")
    with pytest.raises(ClientError) as e:
        subscribe(kinesis, missing, {"Type": "LATEST"})
    assert e.value.response["Error"]["Code"] == "ResourceNotFoundException"
    with pytest.raises(ClientError) as e:
        subscribe(kinesis, consumer, {"Type": "AT_SEQUENCE_NUMBER"})
    assert e.value.response["Error"]["Code"] == "InvalidArgumentException"
    # A consumer that is still CREATING cannot subscribe.
    arn = f"arn:aws:kinesis:{REGION}:{ACCOUNT}:stream/{name}"
    fresh = kinesis.register_stream_consumer(StreamARN=arn, ConsumerName="fresh")["Consumer"]
    with pytest.raises(ClientError) as e:
        subscribe(kinesis, fresh["ConsumerARN"], {"Type": "LATEST"})
    assert e.value.response["Error"]["Code"] == "ResourceInUseException"
    assert "is not in ACTIVE status" in e.value.response["Error"]["Message"]


def test_many_records_in_order_under_concurrent_writers(kinesis):
    name, consumer = stream_with_consumer(kinesis)
    events = subscribe(kinesis, consumer, {"Type": "LATEST"})
    n_threads, per = 4, 100

    def writer(t):
        w = client(kinesis.meta.endpoint_url)
        for i in range(0, per, 50):
            w.put_records(StreamName=name, Records=[
                {"Data": f"{t}:{j}".encode(), "PartitionKey": f"k{t}"} for j in range(i, i + 50)])

    threads = [threading.Thread(target=writer, args=(t,)) for t in range(n_threads)]
    for th in threads:
        th.start()
    records, _ = collect(events, n_threads * per)
    for th in threads:
        th.join()
    by_key = {}
    for r in records:
        t, j = r["Data"].decode().split(":")
        by_key.setdefault(t, []).append(int(j))
    assert {t: v for t, v in by_key.items()} == {str(t): list(range(per)) for t in range(n_threads)}
    seqs = [int(r["SequenceNumber"]) for r in records]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    events.close()


def http_requests(server, version, tls):
    """The server's count of API requests by HTTP version, from the admin /metrics."""
    text = urllib.request.urlopen(server.admin + "/metrics", timeout=10).read().decode()
    total = 0.0
    for line in text.splitlines():
        if (line.startswith("levee_http_requests_total{") and f'version="{version}"' in line
                and f'tls="{tls}"' in line):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_boto3_subscribes_over_http1(server, kinesis):
    before = http_requests(server, "HTTP/1.1", "false")
    name, consumer = stream_with_consumer(kinesis)
    events = subscribe(kinesis, consumer, {"Type": "LATEST"})
    kinesis.put_record(StreamName=name, Data=b"x", PartitionKey="k")
    records, _ = collect(events, 1)
    assert records[0]["Data"] == b"x"
    events.close()
    # boto3 has no HTTP/2: every call of this module, the subscription included, was HTTP/1.1.
    assert http_requests(server, "HTTP/1.1", "false") - before >= 6
    assert http_requests(server, "HTTP/2", "false") == 0
    assert http_requests(server, "HTTP/2", "true") == 0


def test_deregistering_the_consumer_ends_its_subscriptions(kinesis):
    name, consumer = stream_with_consumer(kinesis)
    events = subscribe(kinesis, consumer, {"Type": "LATEST"})
    kinesis.deregister_stream_consumer(ConsumerARN=consumer)
    started = time.monotonic()
    with pytest.raises(EventStreamError) as e:
        for _ in events:
            pass
    # Noticed at the next heartbeat.
    assert time.monotonic() - started <= HEARTBEAT_S + 1.0
    assert e.value.response["Error"]["Code"] in ("ResourceInUseException", "ResourceNotFoundException")
