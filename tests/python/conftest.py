"""Fixtures that run a real `levee serve` process and point unchanged AWS clients at it.

The binary comes from $LEVEE_BIN (scripts/test builds it). Each test module gets its own server
on a free loopback port with a fresh data directory.
"""
import os
import shutil
import socket
import subprocess
import tempfile
import time

import boto3
import pytest
from botocore.config import Config

ACCOUNT = "000000000000"
REGION = "us-east-1"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, transition_ms=200, extra_args=()):
        self.extra_args = list(extra_args)
        self.port = free_port()
        self.data_dir = tempfile.mkdtemp(prefix="levee-pytest-")
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.transition_ms = transition_ms
        self.proc = None

    def start(self):
        binary = os.environ.get("LEVEE_BIN", "target/debug/levee")
        self.proc = subprocess.Popen(
            [binary, "serve", "--listen", f"127.0.0.1:{self.port}", "--data-dir", self.data_dir,
             "--stream-transition-ms", str(self.transition_ms), "--admin-listen", "127.0.0.1:0",
             *self.extra_args],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        # Ready when it prints its listening line (awaited, not slept for).
        deadline = time.monotonic() + 60
        self.lines = []
        self.admin = None
        for line in self.proc.stdout:
            self.lines.append(line)
            if line.startswith("admin listening on "):
                self.admin = line.strip()[len("admin listening on "):]
            if line.startswith("levee listening"):
                break
            if time.monotonic() > deadline:
                raise RuntimeError("levee did not start")
        else:
            raise RuntimeError(f"levee exited with {self.proc.wait()}")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=30)

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)


def client(endpoint):
    return boto3.client(
        "kinesis", endpoint_url=endpoint, region_name=REGION,
        aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="secret",
        config=Config(retries={"max_attempts": 1}))


@pytest.fixture(scope="module")
def server():
    s = Server()
    s.start()
    yield s
    s.stop()
    shutil.rmtree(s.data_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def kinesis(server):
    return client(server.endpoint)


def wait_active(kinesis, name):
    """Waits with botocore's own waiter (polls DescribeStream), faster than its default delay."""
    kinesis.get_waiter("stream_exists").wait(
        StreamName=name, WaiterConfig={"Delay": 0.1, "MaxAttempts": 200})
