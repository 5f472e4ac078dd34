"""A small, varying workload for the status page test: a stream, puts at changing rates,
reads, and one error, through boto3 against a running Levee."""
import sys
import time

import boto3
from botocore.config import Config

endpoint, seconds = sys.argv[1], float(sys.argv[2])
k = boto3.client("kinesis", endpoint_url=endpoint, region_name="us-east-1",
                 aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="secret",
                 config=Config(retries={"max_attempts": 1}))
k.create_stream(StreamName="orders", ShardCount=2)
k.create_stream(StreamName="clicks", ShardCount=1)
deadline = time.monotonic() + 10
while k.describe_stream_summary(StreamName="clicks")["StreamDescriptionSummary"]["StreamStatus"] != "ACTIVE":
    assert time.monotonic() < deadline
    time.sleep(0.05)
try:
    k.describe_stream(StreamName="no-such-stream")
except k.exceptions.ResourceNotFoundException:
    pass
start = time.monotonic()
i = 0
while time.monotonic() - start < seconds:
    # A rate that rises and falls, so the sparklines have a shape.
    n = 1 + int(20 * abs(((time.monotonic() - start) % 2.0) - 1.0))
    k.put_records(StreamName="orders", Records=[
        {"PartitionKey": f"k{i}-{j}", "Data": b"x" * 200} for j in range(n)])
    i += 1
    time.sleep(0.02)
it = k.get_shard_iterator(StreamName="orders", ShardId="shardId-000000000000",
                          ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
k.get_records(ShardIterator=it, Limit=100)
print("workload done", i)
