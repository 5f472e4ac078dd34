#!/usr/bin/env python3
"""Checks that levee-bench's SigV4 signatures are real: a loopback HTTP server recomputes every
request's signature with botocore (an independent implementation) and counts matches.

Usage: python3 bench/sigv4_check.py [path/to/levee-bench]   (needs `pip install botocore`)
Exits non-zero on any mismatch. Sends nothing beyond 127.0.0.1.
"""

import http.server
import json
import subprocess
import sys
import threading

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

ACCESS_KEY, SECRET_KEY, REGION = "AKIDLEVEEBENCH", "levee-bench-secret-key", "us-east-1"
PORT = 4799
counts = {"match": 0, "mismatch": 0}
# One answer that satisfies every call levee-bench makes during `put` (stream set-up included).
ANSWER = json.dumps(
    {
        "StreamDescription": {"StreamStatus": "ACTIVE"},
        "Shards": [{"ShardId": "shardId-000000000000"}],
        "FailedRecordCount": 0,
        "Records": [],
    }
).encode()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        signed = {k: self.headers[k] for k in ("Host", "Content-Type", "X-Amz-Target", "X-Amz-Date")}
        req = AWSRequest(method="POST", url="http://%s/" % signed["Host"], data=body, headers=signed)
        req.context["timestamp"] = signed["X-Amz-Date"]
        auth = SigV4Auth(Credentials(ACCESS_KEY, SECRET_KEY), "kinesis", REGION)
        expected = auth.signature(auth.string_to_sign(req, auth.canonical_request(req)), req)
        got = self.headers.get("Authorization", "")
        if got.endswith("Signature=" + expected):
            counts["match"] += 1
        else:
            counts["mismatch"] += 1
            if counts["mismatch"] <= 3:
                print("mismatch:", got, "expected signature", expected, file=sys.stderr)
        self.send_response(200)
        self.send_header("Content-Type", "application/x-amz-json-1.1")
        self.send_header("Content-Length", str(len(ANSWER)))
        self.end_headers()
        self.wfile.write(ANSWER)


def main():
    bench = sys.argv[1] if len(sys.argv) > 1 else "target/release/levee-bench"
    server = http.server.ThreadingHTTPServer(("127.0.0.1", PORT), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    common = ["--endpoint", f"http://127.0.0.1:{PORT}", "--target", "sigv4-check", "--duration", "1",
              "--warmup", "0", "--shards", "1", "--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY,
              "--region", REGION]
    # Prebuilt bodies (precomputed payload hash) and bodies hashed per request (stream set-up).
    for args in (["put", "--op", "put-records", "--batch-size", "10"], ["put", "--op", "put-record"]):
        subprocess.run([bench, *args, *common], stdout=subprocess.DEVNULL, check=True, timeout=120)
    server.shutdown()
    print(f"{counts['match']} signatures match botocore, {counts['mismatch']} do not")
    sys.exit(1 if counts["mismatch"] or not counts["match"] else 0)


if __name__ == "__main__":
    main()
