"""The AWS CLI, unchanged, against a real `levee serve`: a smoke test of the tour in the README."""
import json
import os
import subprocess
import uuid

from conftest import ACCOUNT


def aws(server, *args, check=True):
    env = dict(os.environ, AWS_ACCESS_KEY_ID="AKIDEXAMPLE", AWS_SECRET_ACCESS_KEY="secret",
               AWS_DEFAULT_REGION="us-east-1", AWS_PAGER="")
    p = subprocess.run(["aws", "--endpoint-url", server.endpoint, "--output", "json", "kinesis", *args],
                       capture_output=True, text=True, env=env)
    if check:
        assert p.returncode == 0, p.stderr
    return p


def test_cli_tour(server):
    name = "cli-" + uuid.uuid4().hex[:8]
    aws(server, "create-stream", "--stream-name", name, "--shard-count", "1")
    aws(server, "wait", "stream-exists", "--stream-name", name)
    # AWS CLI v1 sends the argument's bytes as the blob; output shows blobs base64-encoded.
    put = json.loads(aws(server, "put-record", "--stream-name", name, "--partition-key", "k",
                         "--data", "hello").stdout)
    assert put["ShardId"] == "shardId-000000000000"
    it = json.loads(aws(server, "get-shard-iterator", "--stream-name", name, "--shard-id",
                        "shardId-000000000000", "--shard-iterator-type", "TRIM_HORIZON").stdout)["ShardIterator"]
    recs = json.loads(aws(server, "get-records", "--shard-iterator", it).stdout)
    assert [r["Data"] for r in recs["Records"]] == ["aGVsbG8="]
    assert recs["Records"][0]["SequenceNumber"] == put["SequenceNumber"]
    listed = json.loads(aws(server, "list-streams").stdout)
    assert name in listed["StreamNames"]
    missing = aws(server, "describe-stream", "--stream-name", "no-such-stream", check=False)
    assert missing.returncode != 0
    assert "ResourceNotFoundException" in missing.stderr
    assert f"Stream no-such-stream under account {ACCOUNT} not found." in missing.stderr
