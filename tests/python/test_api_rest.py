"""boto3 against a real `levee serve`: the operations of issue 6 (limits, account settings, stream
mode, warm throughput, max record size, enhanced monitoring, resource policies, encryption).

The pinned botocore (1.40) predates DescribeAccountSettings, UpdateAccountSettings,
UpdateMaxRecordSize and UpdateStreamWarmThroughput; those four are sent as botocore-signed raw
awsJson1.1 requests (`call`), everything else through the boto3 client."""
import json
import os
import shutil
import subprocess
import tempfile
import urllib.error
import urllib.request

import botocore.auth
import botocore.awsrequest
import botocore.credentials
import pytest
from botocore.exceptions import ClientError

from conftest import ACCOUNT, REGION, Server, client, wait_active


class KeyedServer(Server):
    """A server whose master key lives in a temp dir (never under $HOME)."""

    def start(self):
        self.key_dir = tempfile.mkdtemp(prefix="levee-key-")
        binary = os.environ.get("LEVEE_BIN", "target/debug/levee")
        self.proc = subprocess.Popen(
            [binary, "serve", "--listen", f"127.0.0.1:{self.port}", "--data-dir", self.data_dir,
             "--stream-transition-ms", str(self.transition_ms),
             "--master-key-file", os.path.join(self.key_dir, "master.key")],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for line in self.proc.stdout:
            if "listening" in line:
                break


@pytest.fixture(scope="module")
def server():
    s = KeyedServer()
    s.start()
    yield s
    s.stop()
    shutil.rmtree(s.data_dir, ignore_errors=True)
    shutil.rmtree(s.key_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def kinesis(server):
    return client(server.endpoint)


def call(server, op, body):
    """A SigV4-signed Kinesis call made with botocore's signer; returns (status, json)."""
    req = botocore.awsrequest.AWSRequest(
        method="POST", url=server.endpoint + "/", data=json.dumps(body).encode(),
        headers={"Content-Type": "application/x-amz-json-1.1",
                 "X-Amz-Target": f"Kinesis_20131202.{op}"})
    creds = botocore.credentials.Credentials("AKIDEXAMPLE", "secret")
    botocore.auth.SigV4Auth(creds, "kinesis", REGION).add_auth(req)
    prepared = req.prepare()
    r = urllib.request.Request(prepared.url, data=prepared.body, headers=dict(prepared.headers),
                               method="POST")
    try:
        with urllib.request.urlopen(r) as resp:
            text = resp.read()
            return resp.status, (json.loads(text) if text else {})
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def arn(name):
    return f"arn:aws:kinesis:{REGION}:{ACCOUNT}:stream/{name}"


def err(excinfo):
    return excinfo.value.response["Error"]["Code"], excinfo.value.response["Error"]["Message"]


def make(kinesis, name, shards=1):
    kinesis.create_stream(StreamName=name, ShardCount=shards)
    wait_active(kinesis, name)


def test_describe_limits(kinesis):
    make(kinesis, "py-limits", 2)
    l = kinesis.describe_limits()
    assert l["ShardLimit"] == 20000
    assert l["OpenShardCount"] >= 2
    assert l["OnDemandStreamCountLimit"] == 50
    assert "OnDemandStreamCount" in l


def test_account_settings(server):
    status, body = call(server, "DescribeAccountSettings", {})
    assert status == 200
    assert body["MinimumThroughputBillingCommitment"]["Status"] == "DISABLED"
    status, body = call(server, "UpdateAccountSettings",
                        {"MinimumThroughputBillingCommitment": {"Status": "ENABLED"}})
    assert status == 200
    c = body["MinimumThroughputBillingCommitment"]
    assert c["Status"] == "ENABLED"
    assert c["EarliestAllowedEndAt"] - c["StartedAt"] == 24 * 3600
    status, body = call(server, "UpdateAccountSettings",
                        {"MinimumThroughputBillingCommitment": {"Status": "MAYBE"}})
    assert status == 400
    assert body["__type"] == "ValidationException"


def test_stream_mode_and_warm_throughput(server, kinesis):
    make(kinesis, "py-mode")
    status, body = call(server, "UpdateStreamWarmThroughput",
                        {"StreamName": "py-mode", "WarmThroughputMiBps": 50})
    assert status == 400 and body["__type"] == "InvalidArgumentException"
    kinesis.update_stream_mode(StreamARN=arn("py-mode"),
                               StreamModeDetails={"StreamMode": "ON_DEMAND"})
    s = kinesis.describe_stream_summary(StreamName="py-mode")["StreamDescriptionSummary"]
    assert s["StreamStatus"] == "UPDATING"
    wait_active(kinesis, "py-mode")
    s = kinesis.describe_stream(StreamName="py-mode")["StreamDescription"]
    assert s["StreamModeDetails"] == {"StreamMode": "ON_DEMAND"}
    summaries = kinesis.list_streams()["StreamSummaries"]
    assert {"StreamMode": "ON_DEMAND"} in [x["StreamModeDetails"] for x in summaries
                                           if x["StreamName"] == "py-mode"]
    status, body = call(server, "UpdateStreamWarmThroughput",
                        {"StreamARN": arn("py-mode"), "WarmThroughputMiBps": 50})
    assert status == 200
    assert body["StreamName"] == "py-mode"
    assert body["WarmThroughput"]["TargetMiBps"] == 50
    wait_active(kinesis, "py-mode")
    # The pinned botocore drops members newer than its model: read the summary raw.
    _, s = call(server, "DescribeStreamSummary", {"StreamName": "py-mode"})
    assert s["StreamDescriptionSummary"]["WarmThroughput"] == {"TargetMiBps": 50,
                                                               "CurrentMiBps": 50}
    with pytest.raises(ClientError) as e:
        kinesis.update_stream_mode(StreamARN=arn("py-nope"),
                                   StreamModeDetails={"StreamMode": "PROVISIONED"})
    assert err(e)[0] == "ResourceNotFoundException"


def test_max_record_size(server, kinesis):
    make(kinesis, "py-big")
    big = b"x" * (2 << 20)
    with pytest.raises(ClientError) as e:
        kinesis.put_record(StreamName="py-big", PartitionKey="k", Data=big)
    assert err(e)[0] == "ValidationException"
    status, body = call(server, "UpdateMaxRecordSize",
                        {"StreamARN": arn("py-big"), "MaxRecordSizeInKiB": 99999})
    assert status == 400 and body["__type"] == "ValidationException"
    status, _ = call(server, "UpdateMaxRecordSize",
                     {"StreamARN": arn("py-big"), "MaxRecordSizeInKiB": 4096})
    assert status == 200
    kinesis.put_record(StreamName="py-big", PartitionKey="k", Data=big)
    it = kinesis.get_shard_iterator(StreamName="py-big", ShardId="shardId-000000000000",
                                    ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    assert kinesis.get_records(ShardIterator=it)["Records"][0]["Data"] == big


def test_enhanced_monitoring(kinesis):
    make(kinesis, "py-mon")
    r = kinesis.enable_enhanced_monitoring(StreamName="py-mon",
                                           ShardLevelMetrics=["IncomingRecords"])
    assert r["CurrentShardLevelMetrics"] == []
    assert r["DesiredShardLevelMetrics"] == ["IncomingRecords"]
    assert r["StreamARN"] == arn("py-mon")
    r = kinesis.enable_enhanced_monitoring(StreamName="py-mon", ShardLevelMetrics=["ALL"])
    assert len(r["DesiredShardLevelMetrics"]) == 7
    r = kinesis.disable_enhanced_monitoring(StreamName="py-mon", ShardLevelMetrics=["ALL"])
    assert r["DesiredShardLevelMetrics"] == []
    d = kinesis.describe_stream(StreamName="py-mon")["StreamDescription"]
    assert d["EnhancedMonitoring"] == [{"ShardLevelMetrics": []}]
    with pytest.raises(ClientError) as e:
        kinesis.enable_enhanced_monitoring(StreamName="py-mon", ShardLevelMetrics=["Bogus"])
    assert err(e)[0] == "ValidationException"


POLICY = json.dumps({
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"AWS": ["111122223333"]},
                   "Action": "kinesis:Get*", "Resource": arn("py-pol")}]})


def test_resource_policies(kinesis):
    make(kinesis, "py-pol")
    kinesis.put_resource_policy(ResourceARN=arn("py-pol"), Policy=POLICY)
    assert kinesis.get_resource_policy(ResourceARN=arn("py-pol"))["Policy"] == POLICY
    bad = json.loads(POLICY)
    bad["Statement"][0]["NotPrincipal"] = {"AWS": "*"}
    with pytest.raises(ClientError) as e:
        kinesis.put_resource_policy(ResourceARN=arn("py-pol"), Policy=json.dumps(bad))
    code, msg = err(e)
    assert code == "InvalidArgumentException" and "NotPrincipal" in msg
    with pytest.raises(ClientError) as e:
        kinesis.put_resource_policy(ResourceARN=arn("py-pol"),
                                    Policy='{"Version":"2012-10-17"}')
    assert err(e)[0] == "InvalidArgumentException"
    consumer = kinesis.register_stream_consumer(StreamARN=arn("py-pol"), ConsumerName="c")
    carn = consumer["Consumer"]["ConsumerARN"]
    kinesis.put_resource_policy(ResourceARN=carn, Policy=POLICY)
    assert kinesis.get_resource_policy(ResourceARN=carn)["Policy"] == POLICY
    kinesis.delete_resource_policy(ResourceARN=carn)
    kinesis.delete_resource_policy(ResourceARN=arn("py-pol"))
    assert kinesis.get_resource_policy(ResourceARN=arn("py-pol"))["Policy"] == "{}"
    with pytest.raises(ClientError) as e:
        kinesis.get_resource_policy(ResourceARN=arn("py-nope"))
    assert err(e)[0] == "ResourceNotFoundException"


def test_encryption(server, kinesis):
    make(kinesis, "py-enc")
    kinesis.put_record(StreamName="py-enc", PartitionKey="k", Data=b"plain-before")
    with pytest.raises(ClientError) as e:
        kinesis.start_stream_encryption(StreamName="py-nope", EncryptionType="KMS",
                                        KeyId="alias/aws/kinesis")
    assert err(e)[0] == "ResourceNotFoundException"
    kinesis.start_stream_encryption(StreamName="py-enc", EncryptionType="KMS",
                                    KeyId="alias/aws/kinesis")
    wait_active(kinesis, "py-enc")
    d = kinesis.describe_stream(StreamName="py-enc")["StreamDescription"]
    assert d["EncryptionType"] == "KMS" and d["KeyId"] == "alias/aws/kinesis"
    r = kinesis.put_record(StreamName="py-enc", PartitionKey="k", Data=b"sealed")
    assert r["EncryptionType"] == "KMS"
    kinesis.stop_stream_encryption(StreamName="py-enc", EncryptionType="KMS",
                                   KeyId="alias/aws/kinesis")
    wait_active(kinesis, "py-enc")
    s = kinesis.describe_stream_summary(StreamName="py-enc")["StreamDescriptionSummary"]
    assert s["EncryptionType"] == "NONE" and "KeyId" not in s
    kinesis.put_record(StreamName="py-enc", PartitionKey="k", Data=b"plain-after")
    it = kinesis.get_shard_iterator(StreamName="py-enc", ShardId="shardId-000000000000",
                                    ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    recs = kinesis.get_records(ShardIterator=it)["Records"]
    assert [(r["Data"], r.get("EncryptionType")) for r in recs] == [
        (b"plain-before", None), (b"sealed", "KMS"), (b"plain-after", None)]
