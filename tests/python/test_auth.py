"""SigV4 verification with unchanged boto3 and the AWS CLI: a server whose data directory holds a
credential (made with `levee credentials create`) verifies every signature."""
import os
import shutil
import subprocess
import tempfile
import time

import boto3
import botocore.exceptions
import pytest
from botocore.config import Config

from conftest import REGION, Server, wait_active

MISMATCH = ("The request signature we calculated does not match the signature you provided. "
            "Check your AWS Secret Access Key and signing method. Consult the service "
            "documentation for details.")
UNRECOGNIZED = "The security token included in the request is invalid."


def levee_bin():
    return os.environ.get("LEVEE_BIN", "target/debug/levee")


class SignedServer(Server):
    """A server started after one credential was created in its data directory."""

    def __init__(self):
        super().__init__()
        self.key_dir = tempfile.mkdtemp(prefix="levee-pytest-key-")
        self.master_key = os.path.join(self.key_dir, "master.key")
        # The server's own account: a credential of another account is cross-account and needs a
        # resource policy that allows it (test_policy.py).
        out = self.credentials("create", "--name", "pytest", "--account", "000000000000")
        fields = dict(line.split(": ", 1) for line in out.splitlines() if ": " in line)
        self.key_id = fields["AccessKeyId"]
        self.secret = fields["SecretAccessKey"]

    def credentials(self, *args):
        p = subprocess.run([levee_bin(), "credentials", *args, "--data-dir", self.data_dir,
                            "--master-key-file", self.master_key],
                           capture_output=True, text=True, check=True)
        return p.stdout

    def start(self):
        binary = levee_bin()
        self.proc = subprocess.Popen(
            [binary, "serve", "--listen", f"127.0.0.1:{self.port}", "--data-dir", self.data_dir,
             "--stream-transition-ms", str(self.transition_ms),
             "--master-key-file", self.master_key],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for line in self.proc.stdout:
            if "listening" in line:
                return
        raise RuntimeError(f"levee exited with {self.proc.wait()}")


@pytest.fixture(scope="module")
def signed_server():
    s = SignedServer()
    s.start()
    yield s
    s.stop()
    shutil.rmtree(s.data_dir, ignore_errors=True)
    shutil.rmtree(s.key_dir, ignore_errors=True)


def client(server, key_id, secret, region=REGION):
    return boto3.client("kinesis", endpoint_url=server.endpoint, region_name=region,
                        aws_access_key_id=key_id, aws_secret_access_key=secret,
                        config=Config(retries={"max_attempts": 1}))


def error_of(call):
    with pytest.raises(botocore.exceptions.ClientError) as e:
        call()
    err = e.value.response["Error"]
    return err["Code"], err["Message"]


def test_boto3_signed_requests(signed_server):
    k = client(signed_server, signed_server.key_id, signed_server.secret)
    k.create_stream(StreamName="auth-py", ShardCount=1)
    wait_active(k, "auth-py")
    k.put_records(StreamName="auth-py",
                  Records=[{"Data": b"x" * 100, "PartitionKey": str(i)} for i in range(10)])
    assert "auth-py" in k.list_streams()["StreamNames"]


def test_boto3_bad_credentials(signed_server):
    s = signed_server
    assert error_of(lambda: client(s, s.key_id, "wrong").list_streams()) == (
        "InvalidSignatureException", MISMATCH)
    assert error_of(lambda: client(s, "AKIAUNKNOWNUNKNOWN00", s.secret).list_streams()) == (
        "UnrecognizedClientException", UNRECOGNIZED)
    assert error_of(lambda: client(s, s.key_id, s.secret, "ap-south-1").list_streams()) == (
        "InvalidSignatureException",
        "Credential should be scoped to a valid region, not 'ap-south-1'. ")


def test_boto3_unsigned_request_is_refused(signed_server):
    from botocore import UNSIGNED
    k = boto3.client("kinesis", endpoint_url=signed_server.endpoint, region_name=REGION,
                     config=Config(signature_version=UNSIGNED, retries={"max_attempts": 1}))
    assert error_of(k.list_streams) == (
        "MissingAuthenticationTokenException", "Missing Authentication Token")


def aws(server, secret, *args):
    env = dict(os.environ, AWS_ACCESS_KEY_ID=server.key_id, AWS_SECRET_ACCESS_KEY=secret,
               AWS_DEFAULT_REGION=REGION, AWS_PAGER="", AWS_MAX_ATTEMPTS="1")
    return subprocess.run(["aws", "--endpoint-url", server.endpoint, "--output", "json",
                           "kinesis", *args], capture_output=True, text=True, env=env)


def test_aws_cli_signed_and_wrong_secret(signed_server):
    ok = aws(signed_server, signed_server.secret, "list-streams")
    assert ok.returncode == 0, ok.stderr
    bad = aws(signed_server, "wrong", "list-streams")
    assert bad.returncode != 0
    assert "InvalidSignatureException" in bad.stderr


def test_revoked_key_is_refused(signed_server):
    s = signed_server
    out = s.credentials("create", "--name", "to-revoke")
    fields = dict(line.split(": ", 1) for line in out.splitlines() if ": " in line)
    k = client(s, fields["AccessKeyId"], fields["SecretAccessKey"])
    deadline = time.monotonic() + 10
    while True:  # a new key is picked up within a second
        try:
            k.list_streams()
            break
        except botocore.exceptions.ClientError:
            assert time.monotonic() < deadline
            time.sleep(0.05)
    s.credentials("revoke", fields["AccessKeyId"])
    deadline = time.monotonic() + 10
    while True:
        try:
            k.list_streams()
            assert time.monotonic() < deadline, "revoked key still accepted"
            time.sleep(0.05)
        except botocore.exceptions.ClientError as e:
            assert e.response["Error"]["Code"] == "UnrecognizedClientException"
            break
    assert fields["AccessKeyId"] not in s.credentials("list")


def test_checks_before_the_signature_run_nothing(signed_server):
    """With verification, what AWS checks before the signature (body, content type, target) is
    answered first, and an unsigned or badly signed known operation is still refused: nothing
    runs without a valid signature."""
    import http.client
    import json
    s = signed_server

    def unsigned(target, body, content_type="application/x-amz-json-1.1"):
        conn = http.client.HTTPConnection("127.0.0.1", s.port, timeout=30)
        conn.request("POST", "/", body=body,
                     headers={"Content-Type": content_type, "X-Amz-Target": target})
        r = conn.getresponse()
        return r.status, r.read()

    create = b'{"StreamName":"unsigned-never","ShardCount":1}'
    assert unsigned("Kinesis_20131202.Whatever", create) == (
        400, b'{"__type":"UnknownOperationException"}')
    assert unsigned("Kinesis_20131202.CreateStream", b"hello") == (
        400, b'{"__type":"SerializationException"}')
    status, body = unsigned("Kinesis_20131202.CreateStream", create, "application/json")
    assert status == 404 and b"UnknownOperationException" in body
    status, body = unsigned("Kinesis_20131202.CreateStream", create)
    assert (status, json.loads(body)["__type"]) == (400, "MissingAuthenticationTokenException")
    bad = client(s, s.key_id, "wrong")
    assert error_of(lambda: bad.create_stream(StreamName="unsigned-never", ShardCount=1)) == (
        "InvalidSignatureException", MISMATCH)
    good = client(s, s.key_id, s.secret)
    assert "unsigned-never" not in good.list_streams()["StreamNames"]
