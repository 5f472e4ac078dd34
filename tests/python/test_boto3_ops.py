"""boto3, unchanged, against a real `levee serve`: every operation of issue 3, by StreamName and by
StreamARN, asserting the fields of each response and, per operation, at least one error with
AWS's exact `__type` and message (texts from AWS's recorded answers in kinesalite's tests, the
botocore model and /work/shared/kinesis-api.md).

One server per module (the `server`/`kinesis` fixtures); a second one with a long transition
delay (`slow`) makes CREATING and DELETING observable without racing the server.
"""
import datetime
import re
import shutil
import time
import uuid

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from conftest import ACCOUNT, REGION, Server, wait_active

MAX_HASH = 2**128 - 1


def new_name():
    return "ops-" + uuid.uuid4().hex[:12]


def arn(name):
    return f"arn:aws:kinesis:{REGION}:{ACCOUNT}:stream/{name}"


def error_of(excinfo):
    r = excinfo.value.response
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 400, r
    e = r["Error"]
    return e["Code"], e["Message"]


def not_found(name):
    return ("ResourceNotFoundException", f"Stream {name} under account {ACCOUNT} not found.")


def validation(*msgs):
    n = len(msgs)
    return ("ValidationException",
            f"{n} validation error{'s' if n > 1 else ''} detected: " + "; ".join(msgs))


def make_client(endpoint, **cfg):
    return boto3.client(
        "kinesis", endpoint_url=endpoint, region_name=REGION,
        aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="secret",
        config=Config(retries={"max_attempts": 1}, **cfg))


@pytest.fixture(scope="module")
def raw(server):
    """A client that skips botocore's own parameter validation, so the server's is exercised."""
    return make_client(server.endpoint, parameter_validation=False)


@pytest.fixture(scope="module")
def slow():
    """A second server whose streams stay CREATING / DELETING for 3 s."""
    s = Server(transition_ms=3000)
    s.start()
    yield make_client(s.endpoint)
    s.stop()
    shutil.rmtree(s.data_dir, ignore_errors=True)


def active_stream(kinesis, shards=1, **kw):
    name = new_name()
    kinesis.create_stream(StreamName=name, ShardCount=shards, **kw)
    wait_active(kinesis, name)
    return name


def wait_gone(kinesis, name):
    kinesis.get_waiter("stream_not_exists").wait(
        StreamName=name, WaiterConfig={"Delay": 0.1, "MaxAttempts": 200})


def wait_retention(kinesis, name, hours):
    """Polls DescribeStreamSummary until the stream is ACTIVE with the given retention."""
    for _ in range(400):
        s = kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]
        if s["StreamStatus"] == "ACTIVE" and s["RetentionPeriodHours"] == hours:
            return s
        time.sleep(0.02)
    raise AssertionError(f"retention of {name} never became {hours}")


def tags_of(kinesis, name):
    return kinesis.list_tags_for_stream(StreamName=name)["Tags"]


def expected_ranges(n):
    h = 2**128 // n
    return [(str(i * h), str(MAX_HASH if i == n - 1 else (i + 1) * h - 1)) for i in range(n)]


def shard_ids(n, start=0):
    return [f"shardId-{i:012d}" for i in range(start, n)]


def assert_shard(shard, index, n):
    assert shard["ShardId"] == f"shardId-{index:012d}"
    lo, hi = expected_ranges(n)[index]
    assert shard["HashKeyRange"] == {"StartingHashKey": lo, "EndingHashKey": hi}
    start = shard["SequenceNumberRange"]["StartingSequenceNumber"]
    assert re.fullmatch(r"\d{56}", start), start
    assert "EndingSequenceNumber" not in shard["SequenceNumberRange"]
    assert "ParentShardId" not in shard
    assert "AdjacentParentShardId" not in shard


# ---------------------------------------------------------------- CreateStream


def test_create_stream_without_shard_count_has_4_shards(kinesis):
    name = new_name()
    r = kinesis.create_stream(StreamName=name)
    assert set(r) == {"ResponseMetadata"}
    wait_active(kinesis, name)
    s = kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]
    assert s["OpenShardCount"] == 4
    d = kinesis.describe_stream(StreamName=name)["StreamDescription"]
    for i, shard in enumerate(d["Shards"]):
        assert_shard(shard, i, 4)


def test_create_stream_provisioned(kinesis):
    name = new_name()
    kinesis.create_stream(StreamName=name, ShardCount=3,
                          StreamModeDetails={"StreamMode": "PROVISIONED"})
    wait_active(kinesis, name)
    s = kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]
    assert s["StreamModeDetails"] == {"StreamMode": "PROVISIONED"}
    assert s["OpenShardCount"] == 3


def test_create_stream_on_demand(kinesis):
    name = new_name()
    kinesis.create_stream(StreamName=name, StreamModeDetails={"StreamMode": "ON_DEMAND"})
    wait_active(kinesis, name)
    s = kinesis.describe_stream_summary(StreamARN=arn(name))["StreamDescriptionSummary"]
    assert s["StreamModeDetails"] == {"StreamMode": "ON_DEMAND"}
    assert s["OpenShardCount"] == 4
    d = kinesis.describe_stream(StreamName=name)["StreamDescription"]
    assert d["StreamModeDetails"] == {"StreamMode": "ON_DEMAND"}


def test_create_stream_with_tags(kinesis):
    name = new_name()
    kinesis.create_stream(StreamName=name, ShardCount=1, Tags={"team": "data", "env": "test"})
    wait_active(kinesis, name)
    assert tags_of(kinesis, name) == [{"Key": "env", "Value": "test"},
                                      {"Key": "team", "Value": "data"}]


@pytest.fixture(scope="module")
def creating(slow):
    """A stream on the slow server that stays CREATING for 3 s (the tests using it are quick)."""
    name = new_name()
    slow.create_stream(StreamName=name, ShardCount=2)
    return name


def assert_still_creating(slow, name):
    d = slow.describe_stream(StreamName=name)["StreamDescription"]
    assert d["StreamStatus"] == "CREATING", "the transition delay is too short for this test"
    return d


def test_creating_stream_is_described_without_shards(slow, creating):
    d = assert_still_creating(slow, creating)
    assert d["StreamName"] == creating
    assert d["StreamARN"] == arn(creating)
    # AWS (recorded in kinesalite's createStream test) lists no shards while CREATING.
    assert d["Shards"] == [] and d["HasMoreShards"] is False
    assert d["RetentionPeriodHours"] == 24
    assert d["EnhancedMonitoring"] == [{"ShardLevelMetrics": []}]
    s = slow.describe_stream_summary(StreamARN=arn(creating))["StreamDescriptionSummary"]
    assert s["StreamStatus"] == "CREATING"
    summaries = {x["StreamName"]: x for x in slow.list_streams()["StreamSummaries"]}
    assert summaries[creating]["StreamStatus"] == "CREATING"


def test_creating_stream_refuses_control_operations(slow, creating):
    assert_still_creating(slow, creating)
    with pytest.raises(ClientError) as e:
        slow.increase_stream_retention_period(StreamName=creating, RetentionPeriodHours=48)
    assert error_of(e) == ("ResourceInUseException",
                           f"Stream {creating} under account {ACCOUNT} not ACTIVE, instead in state CREATING")


def test_creating_stream_is_not_found_by_put(slow, creating):
    # Recorded AWS behaviour (kinesalite createStream test).
    assert_still_creating(slow, creating)
    with pytest.raises(ClientError) as e:
        slow.put_record(StreamName=creating, Data=b"x", PartitionKey="k")
    assert error_of(e) == not_found(creating)
    with pytest.raises(ClientError) as e:
        slow.put_records(StreamName=creating, Records=[{"Data": b"x", "PartitionKey": "k"}])
    assert error_of(e) == not_found(creating)


def test_creating_stream_has_no_shard_for_iterators(slow, creating):
    # Recorded AWS behaviour (kinesalite createStream test).
    assert_still_creating(slow, creating)
    with pytest.raises(ClientError) as e:
        slow.get_shard_iterator(StreamName=creating, ShardId="shardId-000000000000",
                                ShardIteratorType="LATEST")
    assert error_of(e) == ("ResourceNotFoundException",
                           f"Shard shardId-000000000000 in stream {creating} under account {ACCOUNT} "
                           "does not exist")


def test_creating_stream_becomes_active(slow, creating):
    wait_active(slow, creating)
    d = slow.describe_stream(StreamName=creating)["StreamDescription"]
    assert d["StreamStatus"] == "ACTIVE"
    assert [x["ShardId"] for x in d["Shards"]] == shard_ids(2)


def test_create_stream_twice_is_resource_in_use(kinesis):
    name = active_stream(kinesis)
    with pytest.raises(ClientError) as e:
        kinesis.create_stream(StreamName=name, ShardCount=1)
    assert error_of(e) == ("ResourceInUseException",
                           f"Stream {name} under account {ACCOUNT} already exists.")


def test_create_stream_shard_count_zero_is_validation(raw):
    name = new_name()
    with pytest.raises(ClientError) as e:
        raw.create_stream(StreamName=name, ShardCount=0)
    assert error_of(e) == validation(
        "Value '0' at 'shardCount' failed to satisfy constraint: "
        "Member must have value greater than or equal to 1")


def test_create_stream_bad_name_is_validation(raw):
    with pytest.raises(ClientError) as e:
        raw.create_stream(StreamName="bad name", ShardCount=1)
    assert error_of(e) == validation(
        "Value 'bad name' at 'streamName' failed to satisfy constraint: "
        "Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+")


# ---------------------------------------------------------------- DeleteStream


def test_delete_stream_by_name(kinesis):
    name = active_stream(kinesis)
    r = kinesis.delete_stream(StreamName=name)
    assert set(r) == {"ResponseMetadata"}
    wait_gone(kinesis, name)
    assert name not in kinesis.list_streams(ExclusiveStartStreamName=name[:-1])["StreamNames"]


def test_delete_stream_by_arn_passes_through_deleting(slow):
    name = new_name()
    slow.create_stream(StreamName=name, ShardCount=1)
    wait_active(slow, name)
    slow.delete_stream(StreamARN=arn(name))
    d = slow.describe_stream(StreamName=name)["StreamDescription"]
    assert d["StreamStatus"] == "DELETING"
    wait_gone(slow, name)
    with pytest.raises(ClientError) as e:
        slow.describe_stream_summary(StreamName=name)
    assert error_of(e) == not_found(name)


def test_delete_stream_while_creating(slow):
    # AWS allows it (recorded in kinesalite's deleteStream test): DELETING, with no shards.
    name = new_name()
    slow.create_stream(StreamName=name, ShardCount=1)
    assert slow.describe_stream(StreamName=name)["StreamDescription"]["StreamStatus"] == "CREATING"
    slow.delete_stream(StreamName=name)
    d = slow.describe_stream(StreamName=name)["StreamDescription"]
    assert d["StreamStatus"] == "DELETING"
    assert d["Shards"] == [] and d["HasMoreShards"] is False
    wait_gone(slow, name)


def test_delete_missing_stream_is_not_found(kinesis):
    name = new_name()
    with pytest.raises(ClientError) as e:
        kinesis.delete_stream(StreamName=name)
    assert error_of(e) == not_found(name)
    with pytest.raises(ClientError) as e:
        kinesis.delete_stream(StreamARN=arn(name))
    assert error_of(e) == not_found(name)


# ---------------------------------------------------------------- DescribeStream


def test_describe_stream_fields(kinesis):
    name = active_stream(kinesis, 3)
    for kw in ({"StreamName": name}, {"StreamARN": arn(name)}):
        d = kinesis.describe_stream(**kw)["StreamDescription"]
        assert d["StreamName"] == name
        assert d["StreamARN"] == arn(name)
        assert d["StreamStatus"] == "ACTIVE"
        assert d["StreamModeDetails"] == {"StreamMode": "PROVISIONED"}
        assert d["HasMoreShards"] is False
        assert d["RetentionPeriodHours"] == 24
        assert isinstance(d["StreamCreationTimestamp"], datetime.datetime)
        age = datetime.datetime.now(datetime.timezone.utc) - d["StreamCreationTimestamp"]
        assert datetime.timedelta(seconds=-5) < age < datetime.timedelta(minutes=5)
        assert d["EnhancedMonitoring"] == [{"ShardLevelMetrics": []}]
        assert d["EncryptionType"] == "NONE"
        assert "KeyId" not in d
        assert len(d["Shards"]) == 3
        for i, shard in enumerate(d["Shards"]):
            assert_shard(shard, i, 3)
        # AWS's shards created together start 22300745198530623141535718272648361505980432
        # apart (kinesalite's createStream test, recorded against AWS).
        starts = [int(x["SequenceNumberRange"]["StartingSequenceNumber"]) for x in d["Shards"]]
        assert [b - a for a, b in zip(starts, starts[1:])] == [
            22300745198530623141535718272648361505980432] * 2


def test_describe_stream_pagination(kinesis):
    name = active_stream(kinesis, 5)
    d = kinesis.describe_stream(StreamName=name, Limit=2)["StreamDescription"]
    assert [s["ShardId"] for s in d["Shards"]] == shard_ids(2)
    assert d["HasMoreShards"] is True
    d = kinesis.describe_stream(StreamARN=arn(name), Limit=2,
                                ExclusiveStartShardId="shardId-000000000001")["StreamDescription"]
    assert [s["ShardId"] for s in d["Shards"]] == shard_ids(4, 2)
    assert d["HasMoreShards"] is True
    d = kinesis.describe_stream(StreamName=name, Limit=2,
                                ExclusiveStartShardId="shardId-000000000003")["StreamDescription"]
    assert [s["ShardId"] for s in d["Shards"]] == shard_ids(5, 4)
    assert d["HasMoreShards"] is False
    for i, shard in enumerate(d["Shards"], start=4):
        assert_shard(shard, i, 5)
    d = kinesis.describe_stream(StreamName=name, ExclusiveStartShardId="shardId-000000000004")
    assert d["StreamDescription"]["Shards"] == []
    assert d["StreamDescription"]["HasMoreShards"] is False
    # botocore's own paginator walks it with ExclusiveStartShardId.
    pages = kinesis.get_paginator("describe_stream").paginate(
        StreamName=name, PaginationConfig={"PageSize": 2})
    got = [s["ShardId"] for p in pages for s in p["StreamDescription"]["Shards"]]
    assert got == shard_ids(5)


def test_describe_missing_stream_is_not_found(kinesis):
    name = new_name()
    with pytest.raises(ClientError) as e:
        kinesis.describe_stream(StreamName=name)
    assert error_of(e) == not_found(name)
    with pytest.raises(ClientError) as e:
        kinesis.describe_stream(StreamARN=arn(name))
    assert error_of(e) == not_found(name)


def test_describe_stream_limit_validation(raw):
    name = new_name()
    with pytest.raises(ClientError) as e:
        raw.describe_stream(StreamName=name, Limit=0)
    assert error_of(e) == validation(
        "Value '0' at 'limit' failed to satisfy constraint: "
        "Member must have value greater than or equal to 1")
    with pytest.raises(ClientError) as e:
        raw.describe_stream(StreamName=name, Limit=10001)
    assert error_of(e) == validation(
        "Value '10001' at 'limit' failed to satisfy constraint: "
        "Member must have value less than or equal to 10000")


# ---------------------------------------------------------------- DescribeStreamSummary


def test_describe_stream_summary_fields(kinesis):
    name = active_stream(kinesis, 2)
    for kw in ({"StreamName": name}, {"StreamARN": arn(name)}):
        s = kinesis.describe_stream_summary(**kw)["StreamDescriptionSummary"]
        assert s["StreamName"] == name
        assert s["StreamARN"] == arn(name)
        assert s["StreamStatus"] == "ACTIVE"
        assert s["StreamModeDetails"] == {"StreamMode": "PROVISIONED"}
        assert s["RetentionPeriodHours"] == 24
        assert isinstance(s["StreamCreationTimestamp"], datetime.datetime)
        assert s["EnhancedMonitoring"] == [{"ShardLevelMetrics": []}]
        assert s["EncryptionType"] == "NONE"
        assert s["OpenShardCount"] == 2
        assert s["ConsumerCount"] == 0


def test_describe_stream_summary_missing_is_not_found(kinesis):
    name = new_name()
    with pytest.raises(ClientError) as e:
        kinesis.describe_stream_summary(StreamName=name)
    assert error_of(e) == not_found(name)
    with pytest.raises(ClientError) as e:
        kinesis.describe_stream_summary(StreamARN=arn(name))
    assert error_of(e) == not_found(name)


def test_neither_stream_name_nor_arn_is_validation(kinesis):
    # boto3 sends these (StreamName is optional in the model); AWS's recorded answer.
    null_name = "Value null at 'streamName' failed to satisfy constraint: Member must not be null"
    with pytest.raises(ClientError) as e:
        kinesis.describe_stream_summary()
    assert error_of(e) == validation(null_name)
    with pytest.raises(ClientError) as e:
        kinesis.put_record(Data=b"x", PartitionKey="k")
    assert error_of(e) == validation(null_name)


def test_describe_stream_summary_bad_arn_is_validation(raw):
    bad = "arn:aws:kinesis:us-east-1:123:stream/x"
    with pytest.raises(ClientError) as e:
        raw.describe_stream_summary(StreamARN=bad)
    assert error_of(e) == validation(
        f"Value '{bad}' at 'streamARN' failed to satisfy constraint: "
        "Member must satisfy regular expression pattern: arn:aws.*:kinesis:.*:\\d{12}:stream/\\S+")


# ---------------------------------------------------------------- ListStreams


def test_list_streams_pagination_and_summaries(kinesis):
    prefix = "ls-" + uuid.uuid4().hex[:8]
    names = [f"{prefix}-{i}" for i in range(3)]
    for n in names:
        kinesis.create_stream(StreamName=n, ShardCount=1)
    for n in names:
        wait_active(kinesis, n)
    r = kinesis.list_streams(ExclusiveStartStreamName=prefix, Limit=2)
    assert r["StreamNames"] == names[:2]
    assert r["HasMoreStreams"] is True
    assert isinstance(r["NextToken"], str) and r["NextToken"]
    assert [s["StreamName"] for s in r["StreamSummaries"]] == names[:2]
    for s in r["StreamSummaries"]:
        assert s["StreamARN"] == arn(s["StreamName"])
        assert s["StreamStatus"] == "ACTIVE"
        assert s["StreamModeDetails"] == {"StreamMode": "PROVISIONED"}
        assert isinstance(s["StreamCreationTimestamp"], datetime.datetime)
    r2 = kinesis.list_streams(NextToken=r["NextToken"], Limit=1)
    assert r2["StreamNames"] == names[2:3]
    # Walking everything with NextToken returns each stream once, in order.
    seen, token = [], None
    while True:
        page = kinesis.list_streams(Limit=2, **({"NextToken": token} if token else {}))
        assert len(page["StreamNames"]) <= 2
        assert [s["StreamName"] for s in page["StreamSummaries"]] == page["StreamNames"]
        seen += page["StreamNames"]
        if not page["HasMoreStreams"]:
            assert "NextToken" not in page
            break
        token = page["NextToken"]
    assert seen == sorted(set(seen))
    assert set(names) <= set(seen)
    # botocore's paginator agrees.
    paged = [n for p in kinesis.get_paginator("list_streams").paginate(
        PaginationConfig={"PageSize": 2}) for n in p["StreamNames"]]
    assert set(names) <= set(paged)


def test_list_streams_limit_validation(raw):
    with pytest.raises(ClientError) as e:
        raw.list_streams(Limit=100000)
    assert error_of(e) == validation(
        "Value '100000' at 'limit' failed to satisfy constraint: "
        "Member must have value less than or equal to 10000")
    with pytest.raises(ClientError) as e:
        raw.list_streams(Limit=0)
    assert error_of(e) == validation(
        "Value '0' at 'limit' failed to satisfy constraint: "
        "Member must have value greater than or equal to 1")


# ---------------------------------------------------------------- ListShards


@pytest.fixture(scope="module")
def five(kinesis):
    return active_stream(kinesis, 5)


def test_list_shards_fields(kinesis, five):
    for kw in ({"StreamName": five}, {"StreamARN": arn(five)}):
        r = kinesis.list_shards(**kw)
        assert "NextToken" not in r
        assert len(r["Shards"]) == 5
        for i, shard in enumerate(r["Shards"]):
            assert_shard(shard, i, 5)


def test_list_shards_pagination(kinesis, five):
    r = kinesis.list_shards(StreamName=five, MaxResults=2)
    assert [s["ShardId"] for s in r["Shards"]] == shard_ids(2)
    token = r["NextToken"]
    assert isinstance(token, str) and token
    r = kinesis.list_shards(NextToken=token, MaxResults=2)
    assert [s["ShardId"] for s in r["Shards"]] == shard_ids(4, 2)
    r = kinesis.list_shards(NextToken=r["NextToken"], MaxResults=2)
    assert [s["ShardId"] for s in r["Shards"]] == shard_ids(5, 4)
    assert "NextToken" not in r
    # (botocore's list_shards paginator resends StreamName with NextToken, which AWS refuses.)


def test_list_shards_exclusive_start(kinesis, five):
    r = kinesis.list_shards(StreamName=five, ExclusiveStartShardId="shardId-000000000002")
    assert [s["ShardId"] for s in r["Shards"]] == shard_ids(5, 3)
    r = kinesis.list_shards(StreamARN=arn(five), ExclusiveStartShardId="shardId-000000000002",
                            MaxResults=1)
    assert [s["ShardId"] for s in r["Shards"]] == shard_ids(4, 3)
    assert r["NextToken"]


def test_list_shards_filters(kinesis, five):
    def ids(**f):
        return [s["ShardId"] for s in kinesis.list_shards(StreamName=five, ShardFilter=f)["Shards"]]
    assert ids(Type="AFTER_SHARD_ID", ShardId="shardId-000000000003") == shard_ids(5, 4)
    assert ids(Type="AT_TRIM_HORIZON") == shard_ids(5)
    assert ids(Type="FROM_TRIM_HORIZON") == shard_ids(5)
    assert ids(Type="AT_LATEST") == shard_ids(5)
    now = datetime.datetime.now(datetime.timezone.utc)
    assert ids(Type="AT_TIMESTAMP", Timestamp=now) == shard_ids(5)
    assert ids(Type="FROM_TIMESTAMP", Timestamp=now) == shard_ids(5)


def test_list_shards_next_token_with_stream_name_is_invalid(kinesis, five):
    token = kinesis.list_shards(StreamName=five, MaxResults=1)["NextToken"]
    with pytest.raises(ClientError) as e:
        kinesis.list_shards(StreamName=five, NextToken=token)
    assert error_of(e) == ("InvalidArgumentException",
                           "NextToken and StreamName cannot be provided together.")


def test_list_shards_missing_stream_is_not_found(kinesis):
    name = new_name()
    with pytest.raises(ClientError) as e:
        kinesis.list_shards(StreamName=name)
    assert error_of(e) == not_found(name)
    with pytest.raises(ClientError) as e:
        kinesis.list_shards(StreamARN=arn(name))
    assert error_of(e) == not_found(name)


def test_list_shards_needs_stream_or_token(raw):
    with pytest.raises(ClientError) as e:
        raw.list_shards()
    code, msg = error_of(e)
    # AWS recorded "Either NextToken or StreamName should be provided." before StreamARN existed;
    # today's exact text is not on record, so only its shape is asserted.
    assert code == "InvalidArgumentException"
    assert msg.startswith("Either ") and msg.endswith(" should be provided."), msg


# ---------------------------------------------------------------- PutRecord


def read_all(kinesis, name, shard="shardId-000000000000"):
    it = kinesis.get_shard_iterator(StreamName=name, ShardId=shard,
                                    ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    return kinesis.get_records(ShardIterator=it)["Records"]


def test_put_record_fields_and_both_addressings(kinesis):
    name = active_stream(kinesis)
    a = kinesis.put_record(StreamName=name, Data=b"one", PartitionKey="pk")
    b = kinesis.put_record(StreamARN=arn(name), Data=b"two", PartitionKey="pk")
    for r in (a, b):
        assert r["ShardId"] == "shardId-000000000000"
        assert re.fullmatch(r"\d{56}", r["SequenceNumber"]), r["SequenceNumber"]
    assert int(b["SequenceNumber"]) > int(a["SequenceNumber"])
    recs = read_all(kinesis, name)
    assert [(r["SequenceNumber"], r["Data"], r["PartitionKey"]) for r in recs] == [
        (a["SequenceNumber"], b"one", "pk"), (b["SequenceNumber"], b"two", "pk")]


def test_put_record_explicit_hash_key_routes(kinesis):
    name = active_stream(kinesis, 2)
    half = 2**128 // 2
    for ehk, shard in [("0", 0), (str(half - 1), 0), (str(half), 1), (str(MAX_HASH), 1)]:
        r = kinesis.put_record(StreamName=name, Data=b"x", PartitionKey="same", ExplicitHashKey=ehk)
        assert r["ShardId"] == f"shardId-{shard:012d}", ehk


def test_put_record_sequence_number_for_ordering(kinesis):
    name = active_stream(kinesis)
    first = kinesis.put_record(StreamName=name, Data=b"a", PartitionKey="k")["SequenceNumber"]
    prev = first
    for i in range(3):
        r = kinesis.put_record(StreamName=name, Data=b"b%d" % i, PartitionKey="k",
                               SequenceNumberForOrdering=prev)
        assert int(r["SequenceNumber"]) > int(prev)
        prev = r["SequenceNumber"]
    assert [r["Data"] for r in read_all(kinesis, name)] == [b"a", b"b0", b"b1", b"b2"]


def test_put_record_errors(kinesis):
    name = active_stream(kinesis)
    with pytest.raises(ClientError) as e:
        kinesis.put_record(StreamName=name, Data=b"x", PartitionKey="k", ExplicitHashKey=str(2**128))
    assert error_of(e) == (
        "InvalidArgumentException",
        "Invalid ExplicitHashKey. ExplicitHashKey must be in the range: [0, 2^128-1]. "
        f"Specified value was {2**128}")
    missing = new_name()
    with pytest.raises(ClientError) as e:
        kinesis.put_record(StreamName=missing, Data=b"x", PartitionKey="k")
    assert error_of(e) == not_found(missing)
    with pytest.raises(ClientError) as e:
        kinesis.put_record(StreamARN=arn(missing), Data=b"x", PartitionKey="k")
    assert error_of(e) == not_found(missing)
    seq = str(int("20000000000000000000000000000000000000000000000", 16))
    with pytest.raises(ClientError) as e:
        kinesis.put_record(StreamName=name, Data=b"x", PartitionKey="k", SequenceNumberForOrdering=seq)
    assert error_of(e) == (
        "InvalidArgumentException",
        f"ExclusiveMinimumSequenceNumber {seq} used in PutRecord on stream {name} "
        f"under account {ACCOUNT} is invalid.")


def test_put_record_validation(raw):
    with pytest.raises(ClientError) as e:
        raw.put_record(StreamName=new_name(), Data=b"x", PartitionKey="")
    assert error_of(e) == validation(
        "Value '' at 'partitionKey' failed to satisfy constraint: "
        "Member must have length greater than or equal to 1")


# ---------------------------------------------------------------- PutRecords


def test_put_records_per_record_results(kinesis):
    name = active_stream(kinesis, 3)
    third = 2**128 // 3
    entries = [
        {"Data": b"r0", "PartitionKey": "p", "ExplicitHashKey": "0"},
        {"Data": b"r1", "PartitionKey": "p", "ExplicitHashKey": str(third)},
        {"Data": b"r2", "PartitionKey": "p", "ExplicitHashKey": str(MAX_HASH)},
        {"Data": b"r3", "PartitionKey": "p", "ExplicitHashKey": str(third - 1)},
    ]
    for kw in ({"StreamName": name}, {"StreamARN": arn(name)}):
        r = kinesis.put_records(Records=entries, **kw)
        assert r["FailedRecordCount"] == 0
        assert [x["ShardId"] for x in r["Records"]] == [
            "shardId-000000000000", "shardId-000000000001", "shardId-000000000002",
            "shardId-000000000000"]
        for x in r["Records"]:
            assert re.fullmatch(r"\d{56}", x["SequenceNumber"])
            assert "ErrorCode" not in x and "ErrorMessage" not in x
        assert int(r["Records"][3]["SequenceNumber"]) > int(r["Records"][0]["SequenceNumber"])
    assert [x["Data"] for x in read_all(kinesis, name)] == [b"r0", b"r3", b"r0", b"r3"]


def test_put_records_errors(kinesis):
    name = active_stream(kinesis)
    with pytest.raises(ClientError) as e:
        kinesis.put_records(StreamName=name, Records=[
            {"Data": b"", "PartitionKey": "a", "ExplicitHashKey": str(2**128)},
            {"Data": b"", "PartitionKey": "a"}])
    assert error_of(e) == (
        "InvalidArgumentException",
        "Invalid ExplicitHashKey. ExplicitHashKey must be in the range: [0, 2^128-1]. "
        f"Specified value was {2**128}")
    assert read_all(kinesis, name) == []  # nothing of the refused request was written
    missing = new_name()
    with pytest.raises(ClientError) as e:
        kinesis.put_records(StreamName=missing, Records=[{"Data": b"x", "PartitionKey": "a"}])
    assert error_of(e) == not_found(missing)


def test_put_records_too_many_is_validation(raw):
    with pytest.raises(ClientError) as e:
        raw.put_records(StreamName=new_name(),
                        Records=[{"Data": b"x", "PartitionKey": "a"}] * 501)
    code, msg = error_of(e)
    assert code == "ValidationException"
    assert msg.startswith("1 validation error detected: Value '")
    assert msg.endswith("at 'records' failed to satisfy constraint: "
                        "Member must have length less than or equal to 500")


# ---------------------------------------------------------------- GetShardIterator


def test_get_shard_iterator_every_type(kinesis):
    name = active_stream(kinesis)
    seqs, arrivals = [], []
    for i in range(5):
        seqs.append(kinesis.put_record(StreamName=name, Data=b"x%d" % i, PartitionKey="k")["SequenceNumber"])
    recs = read_all(kinesis, name)
    arrivals = [r["ApproximateArrivalTimestamp"] for r in recs]

    def read(**kw):
        r = kinesis.get_shard_iterator(ShardId="shardId-000000000000", **kw)
        assert set(r) == {"ShardIterator", "ResponseMetadata"}
        assert isinstance(r["ShardIterator"], str) and 0 < len(r["ShardIterator"]) <= 512
        return [x["Data"] for x in kinesis.get_records(ShardIterator=r["ShardIterator"])["Records"]]

    for addr in ({"StreamName": name}, {"StreamARN": arn(name)}):
        assert read(ShardIteratorType="TRIM_HORIZON", **addr) == [b"x0", b"x1", b"x2", b"x3", b"x4"]
        assert read(ShardIteratorType="LATEST", **addr) == []
        assert read(ShardIteratorType="AT_SEQUENCE_NUMBER", StartingSequenceNumber=seqs[1], **addr) == [
            b"x1", b"x2", b"x3", b"x4"]
        assert read(ShardIteratorType="AFTER_SEQUENCE_NUMBER", StartingSequenceNumber=seqs[3], **addr) == [b"x4"]
        assert read(ShardIteratorType="AT_TIMESTAMP",
                    Timestamp=datetime.datetime(2001, 1, 1, tzinfo=datetime.timezone.utc), **addr) == [
            b"x0", b"x1", b"x2", b"x3", b"x4"]
        # At the last record's arrival time: that record (and any with the same ms) onwards.
        got = read(ShardIteratorType="AT_TIMESTAMP", Timestamp=arrivals[-1], **addr)
        assert got and got[-1] == b"x4"
    # A LATEST iterator sees what is written after it was issued.
    it = kinesis.get_shard_iterator(StreamName=name, ShardId="shardId-000000000000",
                                    ShardIteratorType="LATEST")["ShardIterator"]
    kinesis.put_record(StreamName=name, Data=b"later", PartitionKey="k")
    assert [x["Data"] for x in kinesis.get_records(ShardIterator=it)["Records"]] == [b"later"]


def test_get_shard_iterator_errors(kinesis):
    name = active_stream(kinesis, 2)
    base = dict(StreamName=name, ShardId="shardId-000000000000")
    prefix = ("Must either specify (1) AT_SEQUENCE_NUMBER or AFTER_SEQUENCE_NUMBER and "
              "StartingSequenceNumber or (2) TRIM_HORIZON or LATEST and no StartingSequenceNumber. ")
    with pytest.raises(ClientError) as e:
        kinesis.get_shard_iterator(ShardIteratorType="AT_SEQUENCE_NUMBER", **base)
    assert error_of(e) == ("InvalidArgumentException",
                           prefix + "Request specified AT_SEQUENCE_NUMBER and no StartingSequenceNumber.")
    with pytest.raises(ClientError) as e:
        kinesis.get_shard_iterator(ShardIteratorType="AFTER_SEQUENCE_NUMBER", **base)
    assert error_of(e) == ("InvalidArgumentException",
                           prefix + "Request specified AFTER_SEQUENCE_NUMBER and no StartingSequenceNumber.")
    seq = kinesis.put_record(StreamName=name, Data=b"x", PartitionKey="k", ExplicitHashKey="0")["SequenceNumber"]
    with pytest.raises(ClientError) as e:
        kinesis.get_shard_iterator(ShardIteratorType="LATEST", StartingSequenceNumber=seq, **base)
    assert error_of(e) == ("InvalidArgumentException",
                           prefix + "Request specified LATEST and also a StartingSequenceNumber.")
    with pytest.raises(ClientError) as e:
        kinesis.get_shard_iterator(StreamName=name, ShardId="shardId-000000000001",
                                   ShardIteratorType="AT_SEQUENCE_NUMBER", StartingSequenceNumber=seq)
    assert error_of(e) == ("InvalidArgumentException",
                           "Invalid StartingSequenceNumber. It encodes shardId-000000000000, "
                           "while it was used in a call to a shard with shardId-000000000001")
    with pytest.raises(ClientError) as e:
        kinesis.get_shard_iterator(ShardIteratorType="AT_TIMESTAMP", **base)
    assert error_of(e) == ("InvalidArgumentException",
                           "Must specify timestampInMillis parameter for iterator of type AT_TIMESTAMP. "
                           "Current request has no timestamp parameter.")
    future = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=1)
    with pytest.raises(ClientError) as e:
        kinesis.get_shard_iterator(ShardIteratorType="AT_TIMESTAMP", Timestamp=future, **base)
    code, msg = error_of(e)
    assert code == "InvalidArgumentException"
    assert re.fullmatch(r"The timestampInMillis parameter cannot be greater than the "
                        r"currentTimestampInMillis\. timestampInMillis: \d+, currentTimestampInMillis: \d+",
                        msg), msg
    with pytest.raises(ClientError) as e:
        kinesis.get_shard_iterator(StreamName=name, ShardId="shardId-000000000005",
                                   ShardIteratorType="LATEST")
    assert error_of(e) == ("ResourceNotFoundException",
                           f"Shard shardId-000000000005 in stream {name} under account {ACCOUNT} does not exist")
    missing = new_name()
    with pytest.raises(ClientError) as e:
        kinesis.get_shard_iterator(StreamName=missing, ShardId="shardId-000000000000",
                                   ShardIteratorType="LATEST")
    assert error_of(e) == ("ResourceNotFoundException",
                           f"Shard shardId-000000000000 in stream {missing} under account {ACCOUNT} does not exist")


# ---------------------------------------------------------------- GetRecords


def test_get_records_limit_and_next_iterator(kinesis):
    name = active_stream(kinesis)
    sent = [kinesis.put_record(StreamName=name, Data=b"d%d" % i, PartitionKey=f"pk{i}")["SequenceNumber"]
            for i in range(5)]
    it = kinesis.get_shard_iterator(StreamARN=arn(name), ShardId="shardId-000000000000",
                                    ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    got = []
    for expect in (2, 2, 1):
        r = kinesis.get_records(ShardIterator=it, Limit=2)
        assert len(r["Records"]) == expect
        assert isinstance(r["MillisBehindLatest"], int) and r["MillisBehindLatest"] >= 0
        assert isinstance(r["NextShardIterator"], str) and r["NextShardIterator"]
        assert "ChildShards" not in r or r["ChildShards"] == []
        for rec in r["Records"]:
            assert set(rec) >= {"SequenceNumber", "ApproximateArrivalTimestamp", "Data", "PartitionKey"}
            assert isinstance(rec["ApproximateArrivalTimestamp"], datetime.datetime)
        got += r["Records"]
        it = r["NextShardIterator"]
    assert r["MillisBehindLatest"] == 0
    assert [x["SequenceNumber"] for x in got] == sent
    assert [x["Data"] for x in got] == [b"d%d" % i for i in range(5)]
    assert [x["PartitionKey"] for x in got] == [f"pk{i}" for i in range(5)]
    r = kinesis.get_records(ShardIterator=it)
    assert r["Records"] == [] and r["MillisBehindLatest"] == 0 and r["NextShardIterator"]
    kinesis.put_record(StreamName=name, Data=b"tail", PartitionKey="k")
    r = kinesis.get_records(ShardIterator=r["NextShardIterator"], StreamARN=arn(name))
    assert [x["Data"] for x in r["Records"]] == [b"tail"]


def test_get_records_malformed_iterator(kinesis):
    for bad in ("not-an-iterator", "AAAAAAAAAAAAAAEBAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"):
        with pytest.raises(ClientError) as e:
            kinesis.get_records(ShardIterator=bad)
        assert error_of(e) == ("InvalidArgumentException", "Invalid ShardIterator.")


def test_get_records_altered_iterator(kinesis):
    name = active_stream(kinesis)
    it = kinesis.get_shard_iterator(StreamName=name, ShardId="shardId-000000000000",
                                    ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    flipped = it[:10] + ("A" if it[10] != "A" else "B") + it[11:]
    with pytest.raises(ClientError) as e:
        kinesis.get_records(ShardIterator=flipped)
    assert error_of(e) == ("InvalidArgumentException", "Invalid ShardIterator.")


def test_get_records_limit_validation(raw):
    with pytest.raises(ClientError) as e:
        raw.get_records(ShardIterator="x", Limit=0)
    assert error_of(e) == validation(
        "Value '0' at 'limit' failed to satisfy constraint: "
        "Member must have value greater than or equal to 1")


def test_get_records_after_stream_deleted(kinesis):
    name = active_stream(kinesis, 2)
    its = [kinesis.get_shard_iterator(StreamName=name, ShardId=s, ShardIteratorType="LATEST")["ShardIterator"]
           for s in shard_ids(2)]
    kinesis.delete_stream(StreamName=name)
    wait_gone(kinesis, name)
    for i, it in enumerate(its):
        with pytest.raises(ClientError) as e:
            kinesis.get_records(ShardIterator=it)
        assert error_of(e) == ("ResourceNotFoundException",
                               f"Shard shardId-{i:012d} in stream {name} under account {ACCOUNT} does not exist")


# ---------------------------------------------------------------- Retention


def test_retention_increase_and_decrease(kinesis):
    name = active_stream(kinesis)
    r = kinesis.increase_stream_retention_period(StreamName=name, RetentionPeriodHours=48)
    assert set(r) == {"ResponseMetadata"}
    wait_retention(kinesis, name, 48)
    assert kinesis.describe_stream(StreamName=name)["StreamDescription"]["RetentionPeriodHours"] == 48
    kinesis.increase_stream_retention_period(StreamARN=arn(name), RetentionPeriodHours=8760)
    wait_retention(kinesis, name, 8760)
    kinesis.decrease_stream_retention_period(StreamARN=arn(name), RetentionPeriodHours=100)
    wait_retention(kinesis, name, 100)
    r = kinesis.decrease_stream_retention_period(StreamName=name, RetentionPeriodHours=24)
    assert set(r) == {"ResponseMetadata"}
    wait_retention(kinesis, name, 24)


def test_retention_errors(kinesis):
    name = active_stream(kinesis)
    with pytest.raises(ClientError) as e:
        kinesis.increase_stream_retention_period(StreamName=name, RetentionPeriodHours=23)
    assert error_of(e) == ("InvalidArgumentException",
                           "Minimum allowed retention period is 24 hours. "
                           "Requested retention period (23 hours) is too short.")
    with pytest.raises(ClientError) as e:
        kinesis.decrease_stream_retention_period(StreamName=name, RetentionPeriodHours=23)
    assert error_of(e) == ("InvalidArgumentException",
                           "Minimum allowed retention period is 24 hours. "
                           "Requested retention period (23 hours) is too short.")
    with pytest.raises(ClientError) as e:
        kinesis.decrease_stream_retention_period(StreamName=name, RetentionPeriodHours=25)
    assert error_of(e) == ("InvalidArgumentException",
                           f"Requested retention period (25 hours) for stream {name} can not be longer "
                           "than existing retention period (24 hours). Use IncreaseRetentionPeriod API.")
    kinesis.increase_stream_retention_period(StreamName=name, RetentionPeriodHours=30)
    wait_retention(kinesis, name, 30)
    with pytest.raises(ClientError) as e:
        kinesis.increase_stream_retention_period(StreamARN=arn(name), RetentionPeriodHours=25)
    assert error_of(e) == ("InvalidArgumentException",
                           f"Requested retention period (25 hours) for stream {name} can not be shorter "
                           "than existing retention period (30 hours). Use DecreaseRetentionPeriod API.")
    with pytest.raises(ClientError) as e:
        kinesis.increase_stream_retention_period(StreamName=name, RetentionPeriodHours=8761)
    code, msg = error_of(e)  # AWS's text for the maximum is not on record: type and value only
    assert code == "InvalidArgumentException" and "8761" in msg
    missing = new_name()
    with pytest.raises(ClientError) as e:
        kinesis.increase_stream_retention_period(StreamName=missing, RetentionPeriodHours=48)
    assert error_of(e) == not_found(missing)
    with pytest.raises(ClientError) as e:
        kinesis.decrease_stream_retention_period(StreamARN=arn(missing), RetentionPeriodHours=24)
    assert error_of(e) == not_found(missing)


# ---------------------------------------------------------------- Tags by stream


def test_stream_tags_add_list_remove(kinesis):
    name = active_stream(kinesis)
    r = kinesis.add_tags_to_stream(StreamName=name, Tags={"b": "2", "a": "1", "c": ""})
    assert set(r) == {"ResponseMetadata"}
    kinesis.add_tags_to_stream(StreamARN=arn(name), Tags={"d": "4", "a": "one"})
    r = kinesis.list_tags_for_stream(StreamName=name)
    assert r["Tags"] == [{"Key": "a", "Value": "one"}, {"Key": "b", "Value": "2"},
                         {"Key": "c", "Value": ""}, {"Key": "d", "Value": "4"}]
    assert r["HasMoreTags"] is False
    r = kinesis.list_tags_for_stream(StreamARN=arn(name), Limit=2)
    assert r["Tags"] == [{"Key": "a", "Value": "one"}, {"Key": "b", "Value": "2"}]
    assert r["HasMoreTags"] is True
    r = kinesis.list_tags_for_stream(StreamName=name, ExclusiveStartTagKey="b", Limit=1)
    assert r["Tags"] == [{"Key": "c", "Value": ""}]
    assert r["HasMoreTags"] is True
    r = kinesis.list_tags_for_stream(StreamName=name, ExclusiveStartTagKey="c")
    assert r == {**r, "Tags": [{"Key": "d", "Value": "4"}], "HasMoreTags": False}
    r = kinesis.remove_tags_from_stream(StreamName=name, TagKeys=["a", "zz-absent"])
    assert set(r) == {"ResponseMetadata"}
    kinesis.remove_tags_from_stream(StreamARN=arn(name), TagKeys=["c"])
    assert tags_of(kinesis, name) == [{"Key": "b", "Value": "2"}, {"Key": "d", "Value": "4"}]


def test_stream_tags_errors(kinesis):
    name = active_stream(kinesis)
    bad_chars = ("Some tags contain invalid characters. Valid characters: "
                 "Unicode letters, digits, white space, _ . / = + - % @.")
    with pytest.raises(ClientError) as e:
        kinesis.add_tags_to_stream(StreamName=name, Tags={"abc;def": "1"})
    assert error_of(e) == ("InvalidArgumentException", bad_chars)
    with pytest.raises(ClientError) as e:
        kinesis.add_tags_to_stream(StreamName=name, Tags={"a": "abc,def"})
    assert error_of(e) == ("InvalidArgumentException", bad_chars)
    with pytest.raises(ClientError) as e:
        kinesis.add_tags_to_stream(StreamName=name, Tags={"abc%def": "1"})
    assert error_of(e) == (
        "InvalidArgumentException",
        f"Failed to add tags to stream {name} under account {ACCOUNT} because some tags contained "
        "illegal characters. The allowed characters are Unicode letters, white-spaces, "
        "'_',',','/','=','+','-','@'.")
    with pytest.raises(ClientError) as e:
        kinesis.remove_tags_from_stream(StreamName=name, TagKeys=["abc;def"])
    assert error_of(e) == ("InvalidArgumentException", bad_chars)
    kinesis.add_tags_to_stream(StreamName=name, Tags={f"k{i:02d}": "v" for i in range(50)})
    with pytest.raises(ClientError) as e:
        kinesis.add_tags_to_stream(StreamName=name, Tags={"one-more": "v"})
    # AWS's recorded text says 10 while the limit is 50.
    assert error_of(e) == (
        "InvalidArgumentException",
        f"Failed to add tags to stream {name} under account {ACCOUNT} because a given stream "
        "cannot have more than 10 tags associated with it.")
    assert len(kinesis.list_tags_for_stream(StreamName=name, Limit=50)["Tags"]) == 50
    missing = new_name()
    for call in (lambda: kinesis.add_tags_to_stream(StreamName=missing, Tags={"a": "b"}),
                 lambda: kinesis.remove_tags_from_stream(StreamName=missing, TagKeys=["a"]),
                 lambda: kinesis.list_tags_for_stream(StreamName=missing),
                 lambda: kinesis.list_tags_for_stream(StreamARN=arn(missing))):
        with pytest.raises(ClientError) as e:
            call()
        assert error_of(e) == not_found(missing)


def test_list_tags_for_stream_limit_validation(raw):
    with pytest.raises(ClientError) as e:
        raw.list_tags_for_stream(StreamName=new_name(), Limit=51)
    assert error_of(e) == validation(
        "Value '51' at 'limit' failed to satisfy constraint: "
        "Member must have value less than or equal to 50")


# ---------------------------------------------------------------- Tags by resource ARN


def test_resource_tags(kinesis):
    name = active_stream(kinesis)
    r = kinesis.tag_resource(ResourceARN=arn(name), Tags={"owner": "me", "cost": "1"})
    assert set(r) == {"ResponseMetadata"}
    r = kinesis.list_tags_for_resource(ResourceARN=arn(name))
    assert sorted(r["Tags"], key=lambda t: t["Key"]) == [
        {"Key": "cost", "Value": "1"}, {"Key": "owner", "Value": "me"}]
    assert tags_of(kinesis, name) == [{"Key": "cost", "Value": "1"}, {"Key": "owner", "Value": "me"}]
    kinesis.add_tags_to_stream(StreamName=name, Tags={"extra": "x"})
    r = kinesis.untag_resource(ResourceARN=arn(name), TagKeys=["owner"])
    assert set(r) == {"ResponseMetadata"}
    r = kinesis.list_tags_for_resource(ResourceARN=arn(name))
    assert sorted(r["Tags"], key=lambda t: t["Key"]) == [
        {"Key": "cost", "Value": "1"}, {"Key": "extra", "Value": "x"}]


def test_resource_tags_errors(kinesis, raw):
    missing = new_name()
    for call in (lambda: kinesis.tag_resource(ResourceARN=arn(missing), Tags={"a": "b"}),
                 lambda: kinesis.untag_resource(ResourceARN=arn(missing), TagKeys=["a"]),
                 lambda: kinesis.list_tags_for_resource(ResourceARN=arn(missing))):
        with pytest.raises(ClientError) as e:
            call()
        assert error_of(e) == not_found(missing)
    bad = "arn:aws:kinesis:us-east-1:123:stream/x"
    with pytest.raises(ClientError) as e:
        raw.list_tags_for_resource(ResourceARN=bad)
    # The model's ResourceARN pattern has changed across model versions: assert its stem.
    code, msg = error_of(e)
    assert code == "ValidationException"
    assert msg.startswith(
        f"1 validation error detected: Value '{bad}' at 'resourceARN' failed to satisfy constraint: "
        "Member must satisfy regular expression pattern: arn:aws.*:kinesis:.*:\\d{12}:"), msg
    name = active_stream(kinesis)
    with pytest.raises(ClientError) as e:
        kinesis.tag_resource(ResourceARN=arn(name), Tags={"abc;def": "1"})
    code, msg = error_of(e)  # TagResource's own text is not on record: type and gist only
    assert code == "InvalidArgumentException" and "invalid characters" in msg, msg
