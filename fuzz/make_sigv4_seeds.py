"""Writes seed inputs of the sigv4 target: requests signed by botocore with the harness's key
(AKIDEXAMPLE, us-east-1, kinesis) at the harness's clock (2015-08-30T12:36:00Z), in the
target's text layout: `METHOD URI`, header lines, a blank line, the body."""
import datetime, os
from unittest import mock
import botocore.auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

NOW = datetime.datetime(2015, 8, 30, 12, 36, 0)
creds = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "seeds", "sigv4")

def dump(name, req, uri):
    head = f"{req.method} {uri}\n"
    for k, v in req.headers.items():
        if isinstance(v, bytes):
            v = v.decode()
        head += f"{k}: {v}\n"
    body = req.body or b""
    if isinstance(body, str):
        body = body.encode()
    with open(os.path.join(here, name), "wb") as f:
        f.write(head.encode() + b"\n" + body)

with mock.patch.object(botocore.auth, "get_current_datetime", return_value=NOW):
    body = b'{"StreamName":"s1"}'
    req = AWSRequest(method="POST", url="https://kinesis.us-east-1.amazonaws.com/", data=body,
                     headers={"Content-Type": "application/x-amz-json-1.1",
                              "X-Amz-Target": "Kinesis_20131202.DescribeStream",
                              "Host": "kinesis.us-east-1.amazonaws.com"})
    botocore.auth.SigV4Auth(creds, "kinesis", "us-east-1").add_auth(req)
    dump("header", req, "/")
    req = AWSRequest(method="GET", url="https://kinesis.us-east-1.amazonaws.com/a%20b/./c?x=1&y=%2F",
                     headers={"Host": "kinesis.us-east-1.amazonaws.com", "X-Custom": "  a   b  "})
    botocore.auth.SigV4Auth(creds, "kinesis", "us-east-1").add_auth(req)
    dump("path_query", req, "/a%20b/./c?x=1&y=%2F")
    req = AWSRequest(method="POST", url="https://kinesis.us-east-1.amazonaws.com/?Action=ListStreams",
                     headers={"Host": "kinesis.us-east-1.amazonaws.com"})
    botocore.auth.SigV4QueryAuth(creds, "kinesis", "us-east-1", expires=300).add_auth(req)
    uri = req.url.split("amazonaws.com", 1)[1]
    dump("presigned", req, uri)

# Shapes the verifier refuses early, as starting points.
with open(os.path.join(here, "http_date"), "wb") as f:
    f.write(b"POST /\nHost: localhost\nDate: Sun, 30 Aug 2015 12:36:00 GMT\n"
            b"Authorization: AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/kinesis/aws4_request, SignedHeaders=date;host, Signature=00\n\n{}")
with open(os.path.join(here, "incomplete"), "wb") as f:
    f.write(b"POST /?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Expires=99999999\nHost: localhost\n\n")
