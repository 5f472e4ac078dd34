"""Resource policies enforced with unchanged boto3: two credentials of the server's account and
one of another account, made with `levee credentials create`; a stream policy denying PutRecords
to one principal refuses that principal only, and the other account needs an explicit Allow."""
import json
import os
import time
import shutil
import subprocess
import tempfile

import boto3
import botocore.exceptions
import pytest
from botocore.config import Config

from conftest import REGION, Server, wait_active

ACCOUNT = "000000000000"
OTHER = "111122223333"
STREAM = "policy-boto3"
STREAM_ARN = f"arn:aws:kinesis:{REGION}:{ACCOUNT}:stream/{STREAM}"


def levee_bin():
    return os.environ.get("LEVEE_BIN", "target/debug/levee")


class PolicyServer(Server):
    """A server started after three credentials were created in its data directory."""

    def __init__(self):
        self.key_dir = tempfile.mkdtemp(prefix="levee-pytest-key-")
        self.master_key = os.path.join(self.key_dir, "master.key")
        # A short heartbeat: a subscription's first event comes within 200 ms.
        super().__init__(extra_args=["--master-key-file", self.master_key,
                                     "--subscription-heartbeat-ms", "200"])
        self.keys = {name: self.create(name, account)
                     for name, account in [("admin", ACCOUNT), ("bob", ACCOUNT), ("carol", OTHER)]}

    def create(self, name, account):
        out = subprocess.run([levee_bin(), "credentials", "create", "--name", name,
                              "--account", account, "--data-dir", self.data_dir,
                              "--master-key-file", self.master_key],
                             capture_output=True, text=True, check=True).stdout
        fields = dict(line.split(": ", 1) for line in out.splitlines() if ": " in line)
        return fields["AccessKeyId"], fields["SecretAccessKey"]

    def client(self, name):
        key_id, secret = self.keys[name]
        return boto3.client("kinesis", endpoint_url=self.endpoint, region_name=REGION,
                            aws_access_key_id=key_id, aws_secret_access_key=secret,
                            config=Config(retries={"max_attempts": 1}))


@pytest.fixture(scope="module")
def policy_server():
    s = PolicyServer()
    s.start()
    yield s
    s.stop()
    shutil.rmtree(s.data_dir, ignore_errors=True)
    shutil.rmtree(s.key_dir, ignore_errors=True)


def error_of(call):
    with pytest.raises(botocore.exceptions.ClientError) as e:
        call()
    r = e.value.response
    return r["Error"]["Code"], r["Error"]["Message"], r["ResponseMetadata"]["HTTPStatusCode"]


def put_records(c, **target):
    out = c.put_records(Records=[{"Data": b"x", "PartitionKey": "a"}], **target)
    assert out["FailedRecordCount"] == 0


def test_deny_one_principal_and_allow_another_account(policy_server):
    admin, bob, carol = (policy_server.client(n) for n in ("admin", "bob", "carol"))
    admin.create_stream(StreamName=STREAM, ShardCount=1)
    wait_active(admin, STREAM)
    put_records(bob, StreamName=STREAM)

    admin.put_resource_policy(ResourceARN=STREAM_ARN, Policy=json.dumps({
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Deny", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:user/bob"},
             "Action": "kinesis:PutRecords", "Resource": STREAM_ARN},
        ]}))
    code, message, status = error_of(lambda: put_records(bob, StreamName=STREAM))
    assert (code, status) == ("AccessDeniedException", 400)
    assert message == (f"User: arn:aws:iam::{ACCOUNT}:user/bob is not authorized to perform: "
                       f"kinesis:PutRecords on resource: {STREAM_ARN} with an explicit deny in a "
                       "resource-based policy")
    put_records(admin, StreamName=STREAM)

    # The other account: refused without an Allow, admitted with one.
    code, message, _ = error_of(lambda: put_records(carol, StreamARN=STREAM_ARN))
    assert code == "AccessDeniedException"
    assert message == (f"User: arn:aws:iam::{OTHER}:user/carol is not authorized to perform: "
                       f"kinesis:PutRecords on resource: {STREAM_ARN} because no resource-based "
                       "policy allows the kinesis:PutRecords action")
    admin.put_resource_policy(ResourceARN=STREAM_ARN, Policy=json.dumps({
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Deny", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:user/bob"},
             "Action": "kinesis:PutRecords", "Resource": STREAM_ARN},
            {"Effect": "Allow", "Principal": {"AWS": OTHER},
             "Action": ["kinesis:PutRecords", "kinesis:DescribeStreamSummary"],
             "Resource": STREAM_ARN},
        ]}))
    put_records(carol, StreamARN=STREAM_ARN)
    summary = carol.describe_stream_summary(StreamARN=STREAM_ARN)["StreamDescriptionSummary"]
    assert summary["StreamName"] == STREAM
    code, _, _ = error_of(lambda: carol.list_shards(StreamARN=STREAM_ARN))
    assert code == "AccessDeniedException"
    code, _, _ = error_of(lambda: put_records(bob, StreamName=STREAM))
    assert code == "AccessDeniedException"


def test_consumer_policy_on_subscribe_to_shard(policy_server):
    admin, bob, carol = (policy_server.client(n) for n in ("admin", "bob", "carol"))
    admin.create_stream(StreamName="policy-efo", ShardCount=1)
    wait_active(admin, "policy-efo")
    stream_arn = f"arn:aws:kinesis:{REGION}:{ACCOUNT}:stream/policy-efo"
    consumer = admin.register_stream_consumer(
        StreamARN=stream_arn, ConsumerName="app")["Consumer"]["ConsumerARN"]
    deadline = time.monotonic() + 20
    while admin.describe_stream_consumer(ConsumerARN=consumer)[
            "ConsumerDescription"]["ConsumerStatus"] != "ACTIVE":
        assert time.monotonic() < deadline, "consumer never became ACTIVE"
        time.sleep(0.02)
    admin.put_resource_policy(ResourceARN=consumer, Policy=json.dumps({
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Deny", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:user/bob"},
             "Action": "kinesis:SubscribeToShard", "Resource": consumer},
            {"Effect": "Allow", "Principal": {"AWS": OTHER},
             "Action": "kinesis:SubscribeToShard", "Resource": consumer},
        ]}))

    def subscribe(c):
        events = c.subscribe_to_shard(ConsumerARN=consumer, ShardId="shardId-000000000000",
                                      StartingPosition={"Type": "LATEST"})["EventStream"]
        first = next(iter(events))
        events.close()
        return first

    code, message, status = error_of(lambda: subscribe(bob))
    assert (code, status) == ("AccessDeniedException", 400)
    assert message == (f"User: arn:aws:iam::{ACCOUNT}:user/bob is not authorized to perform: "
                       f"kinesis:SubscribeToShard on resource: {consumer} with an explicit deny "
                       "in a resource-based policy")
    # The other account, allowed by the consumer's policy, subscribes.
    assert "SubscribeToShardEvent" in subscribe(carol)
