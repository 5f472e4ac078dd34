"""Enhanced fan-out consumers with boto3: register (CREATING -> ACTIVE), describe by ARN and by
(stream ARN, name), list, count in DescribeStreamSummary, deregister (DELETING -> gone), and
DeleteStream refusing a stream with consumers unless EnforceConsumerDeletion."""
import time
import uuid

import pytest
from botocore.exceptions import ClientError

from conftest import ACCOUNT, REGION, wait_active


def wait_consumer(kinesis, arn, status):
    for _ in range(400):
        try:
            d = kinesis.describe_stream_consumer(ConsumerARN=arn)["ConsumerDescription"]
        except ClientError as e:
            if status is None and e.response["Error"]["Code"] == "ResourceNotFoundException":
                return None
            raise
        if d["ConsumerStatus"] == status:
            return d
        time.sleep(0.02)  # between polls of the condition
    raise AssertionError(f"consumer never reached {status}")


def test_consumer_lifecycle(kinesis):
    name = "efo-" + uuid.uuid4().hex[:8]
    kinesis.create_stream(StreamName=name, ShardCount=1)
    wait_active(kinesis, name)
    stream_arn = f"arn:aws:kinesis:{REGION}:{ACCOUNT}:stream/{name}"
    c = kinesis.register_stream_consumer(StreamARN=stream_arn, ConsumerName="app")["Consumer"]
    assert c["ConsumerName"] == "app"
    assert c["ConsumerStatus"] == "CREATING"
    assert c["ConsumerARN"].startswith(f"{stream_arn}/consumer/app:")
    assert c["ConsumerARN"].endswith(":" + str(int(c["ConsumerCreationTimestamp"].timestamp())))
    with pytest.raises(ClientError) as e:
        kinesis.register_stream_consumer(StreamARN=stream_arn, ConsumerName="app")
    assert e.value.response["Error"]["Code"] == "ResourceInUseException"
    d = wait_consumer(kinesis, c["ConsumerARN"], "ACTIVE")
    assert d["StreamARN"] == stream_arn
    by_name = kinesis.describe_stream_consumer(StreamARN=stream_arn, ConsumerName="app")["ConsumerDescription"]
    assert by_name["ConsumerARN"] == c["ConsumerARN"]
    listed = kinesis.list_stream_consumers(StreamARN=stream_arn)["Consumers"]
    assert [x["ConsumerName"] for x in listed] == ["app"]
    summary = kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]
    assert summary["ConsumerCount"] == 1

    with pytest.raises(ClientError) as e:
        kinesis.delete_stream(StreamName=name)
    assert e.value.response["Error"]["Code"] == "ResourceInUseException"
    assert "EnforceConsumerDeletion" in e.value.response["Error"]["Message"]

    kinesis.deregister_stream_consumer(ConsumerARN=c["ConsumerARN"])
    assert wait_consumer(kinesis, c["ConsumerARN"], None) is None
    assert kinesis.list_stream_consumers(StreamARN=stream_arn)["Consumers"] == []

    kinesis.register_stream_consumer(StreamARN=stream_arn, ConsumerName="second")
    kinesis.delete_stream(StreamName=name, EnforceConsumerDeletion=True)
    kinesis.get_waiter("stream_not_exists").wait(StreamName=name, WaiterConfig={"Delay": 0.1, "MaxAttempts": 200})


def test_consumer_errors(kinesis):
    missing = f"arn:aws:kinesis:{REGION}:{ACCOUNT}:stream/no-such-stream"
    with pytest.raises(ClientError) as e:
        kinesis.register_stream_consumer(StreamARN=missing, ConsumerName="x")
    assert e.value.response["Error"]["Code"] == "ResourceNotFoundException"
    assert e.value.response["Error"]["Message"] == f"Stream no-such-stream under account {ACCOUNT} not found."
    with pytest.raises(ClientError) as e:
        kinesis.describe_stream_consumer(ConsumerARN=missing + "/consumer/x:1700000000")
    assert e.value.response["Error"]["Code"] == "ResourceNotFoundException"
