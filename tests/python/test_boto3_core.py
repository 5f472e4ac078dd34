"""boto3 against a real `levee serve`: the stream lifecycle and the data path, asserting the
fields of every response and AWS's error types and messages."""
import datetime
import uuid

import pytest
from botocore.exceptions import ClientError

from conftest import ACCOUNT, REGION, wait_active


def new_name():
    return "s-" + uuid.uuid4().hex[:12]


def error_of(excinfo):
    e = excinfo.value.response["Error"]
    return e["Code"], e["Message"]


def test_create_describe_list_delete(kinesis):
    name = new_name()
    kinesis.create_stream(StreamName=name, ShardCount=3)
    d = kinesis.describe_stream(StreamName=name)["StreamDescription"]
    assert d["StreamName"] == name
    assert d["StreamARN"] == f"arn:aws:kinesis:{REGION}:{ACCOUNT}:stream/{name}"
    assert d["StreamStatus"] in ("CREATING", "ACTIVE")
    wait_active(kinesis, name)
    d = kinesis.describe_stream(StreamName=name)["StreamDescription"]
    assert d["StreamStatus"] == "ACTIVE"
    assert [s["ShardId"] for s in d["Shards"]] == [f"shardId-{i:012d}" for i in range(3)]
    assert d["Shards"][0]["HashKeyRange"]["StartingHashKey"] == "0"
    assert d["Shards"][2]["HashKeyRange"]["EndingHashKey"] == str(2**128 - 1)
    assert d["HasMoreShards"] is False
    assert d["RetentionPeriodHours"] == 24
    assert isinstance(d["StreamCreationTimestamp"], datetime.datetime)
    summary = kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]
    assert summary["OpenShardCount"] == 3
    assert name in kinesis.list_streams()["StreamNames"]
    kinesis.delete_stream(StreamName=name)
    kinesis.get_waiter("stream_not_exists").wait(
        StreamName=name, WaiterConfig={"Delay": 0.1, "MaxAttempts": 200})
    with pytest.raises(ClientError) as e:
        kinesis.describe_stream(StreamName=name)
    assert error_of(e) == ("ResourceNotFoundException", f"Stream {name} under account {ACCOUNT} not found.")


def test_create_twice_is_resource_in_use(kinesis):
    name = new_name()
    kinesis.create_stream(StreamName=name, ShardCount=1)
    with pytest.raises(ClientError) as e:
        kinesis.create_stream(StreamName=name, ShardCount=1)
    assert error_of(e) == ("ResourceInUseException", f"Stream {name} under account {ACCOUNT} already exists.")


def test_put_and_get_records_in_order(kinesis):
    name = new_name()
    kinesis.create_stream(StreamName=name, ShardCount=2)
    wait_active(kinesis, name)
    sent = []
    for i in range(20):
        r = kinesis.put_record(StreamName=name, Data=f"record-{i}".encode(), PartitionKey=f"pk-{i % 5}")
        assert r["ShardId"].startswith("shardId-")
        assert len(r["SequenceNumber"]) >= 50
        sent.append((r["ShardId"], r["SequenceNumber"], f"record-{i}".encode()))
    batch = kinesis.put_records(StreamName=name, Records=[
        {"Data": f"batch-{i}".encode(), "PartitionKey": f"pk-{i}"} for i in range(50)])
    assert batch["FailedRecordCount"] == 0
    assert len(batch["Records"]) == 50
    for i, r in enumerate(batch["Records"]):
        sent.append((r["ShardId"], r["SequenceNumber"], f"batch-{i}".encode()))
    got = []
    for shard in kinesis.list_shards(StreamName=name)["Shards"]:
        it = kinesis.get_shard_iterator(StreamName=name, ShardId=shard["ShardId"],
                                        ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        recs = kinesis.get_records(ShardIterator=it, Limit=1000)
        assert recs["MillisBehindLatest"] == 0
        assert recs["NextShardIterator"]
        seqs = [r["SequenceNumber"] for r in recs["Records"]]
        assert [int(s) for s in seqs] == sorted(int(s) for s in seqs)
        got += [(shard["ShardId"], r["SequenceNumber"], r["Data"]) for r in recs["Records"]]
        for r in recs["Records"]:
            assert isinstance(r["ApproximateArrivalTimestamp"], datetime.datetime)
    assert sorted(got) == sorted(sent)


def test_iterator_types(kinesis):
    name = new_name()
    kinesis.create_stream(StreamName=name, ShardCount=1)
    wait_active(kinesis, name)
    seqs = [kinesis.put_record(StreamName=name, Data=b"x%d" % i, PartitionKey="k")["SequenceNumber"]
            for i in range(5)]
    def read(**kw):
        it = kinesis.get_shard_iterator(StreamName=name, ShardId="shardId-000000000000", **kw)["ShardIterator"]
        return [r["Data"] for r in kinesis.get_records(ShardIterator=it)["Records"]]
    assert read(ShardIteratorType="AT_SEQUENCE_NUMBER", StartingSequenceNumber=seqs[2]) == [b"x2", b"x3", b"x4"]
    assert read(ShardIteratorType="AFTER_SEQUENCE_NUMBER", StartingSequenceNumber=seqs[2]) == [b"x3", b"x4"]
    assert read(ShardIteratorType="LATEST") == []
    assert read(ShardIteratorType="AT_TIMESTAMP", Timestamp=datetime.datetime(2000, 1, 1)) == [b"x0", b"x1", b"x2", b"x3", b"x4"]
    with pytest.raises(ClientError) as e:
        read(ShardIteratorType="TRIM_HORIZON", StartingSequenceNumber=seqs[0])
    code, msg = error_of(e)
    assert code == "InvalidArgumentException"
    assert msg.startswith("Must either specify (1) AT_SEQUENCE_NUMBER or AFTER_SEQUENCE_NUMBER")


def test_bad_iterator_is_invalid_argument(kinesis):
    with pytest.raises(ClientError) as e:
        kinesis.get_records(ShardIterator="AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
    assert error_of(e) == ("InvalidArgumentException", "Invalid ShardIterator.")


def test_put_to_missing_stream(kinesis):
    with pytest.raises(ClientError) as e:
        kinesis.put_record(StreamName="nope-nope", Data=b"x", PartitionKey="k")
    assert error_of(e) == ("ResourceNotFoundException", f"Stream nope-nope under account {ACCOUNT} not found.")


def test_record_over_the_default_max_size_is_a_validation_error(kinesis):
    name = new_name()
    kinesis.create_stream(StreamName=name, ShardCount=1)
    wait_active(kinesis, name)
    with pytest.raises(ClientError) as e:
        kinesis.put_record(StreamName=name, Data=b"x" * (1048576 + 1), PartitionKey="k")
    assert error_of(e) == ("ValidationException",
                           "1 validation error detected: Value 'java.nio.HeapByteBuffer[pos=0 lim=1048577 cap=1048577]' "
                           "at 'data' failed to satisfy constraint: Member must have length less than or equal to 1048576")
    # Exactly 1 MiB is accepted.
    r = kinesis.put_record(StreamName=name, Data=b"x" * 1048576, PartitionKey="k")
    assert r["ShardId"] == "shardId-000000000000"


def test_shard_filter_requires_its_parameter(kinesis):
    name = new_name()
    kinesis.create_stream(StreamName=name, ShardCount=2)
    wait_active(kinesis, name)
    for ftype, needs in (("AFTER_SHARD_ID", "ShardId"), ("AT_TIMESTAMP", "Timestamp"), ("FROM_TIMESTAMP", "Timestamp")):
        with pytest.raises(ClientError) as e:
            kinesis.list_shards(StreamName=name, ShardFilter={"Type": ftype})
        assert error_of(e) == ("InvalidArgumentException", f"ShardFilter of type {ftype} requires {needs}.")
    after = kinesis.list_shards(StreamName=name, ShardFilter={"Type": "AFTER_SHARD_ID", "ShardId": "shardId-000000000000"})
    assert [s["ShardId"] for s in after["Shards"]] == ["shardId-000000000001"]
