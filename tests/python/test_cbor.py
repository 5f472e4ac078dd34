"""CBOR (`application/x-amz-cbor-1.1`, as the Java SDK sends by default), byte-level: requests in
CBOR, responses in CBOR, timestamps as tag 1 + integer epoch milliseconds (never a float)."""
import http.client
import time
import uuid

import cbor2

from conftest import wait_active

HEADERS = {
    "Authorization": "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260101/us-east-1/kinesis/aws4_request, "
                     "SignedHeaders=host;x-amz-date, Signature=abc",
    "X-Amz-Date": "20260101T000000Z",
}


def call(server, op, body, content_type="application/x-amz-cbor-1.1"):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    payload = cbor2.dumps(body) if content_type.endswith("cbor-1.1") else body
    conn.request("POST", "/", body=payload, headers=dict(HEADERS, **{
        "Content-Type": content_type, "X-Amz-Target": f"Kinesis_20131202.{op}"}))
    r = conn.getresponse()
    raw = r.read()
    return r.status, r.getheader("Content-Type"), raw


def test_cbor_round_trip_and_timestamp_encoding(server, kinesis):
    name = "cbor-" + uuid.uuid4().hex[:8]
    status, ctype, raw = call(server, "CreateStream", {"StreamName": name, "ShardCount": 1})
    assert status == 200, raw
    assert ctype == "application/x-amz-cbor-1.1"
    wait_active(kinesis, name)
    before_ms = int(time.time() * 1000)
    status, _, raw = call(server, "PutRecord", {"StreamName": name, "PartitionKey": "k", "Data": b"\x00\x01binary"})
    assert status == 200, raw
    put = cbor2.loads(raw)
    assert put["ShardId"] == "shardId-000000000000"
    status, _, raw = call(server, "GetShardIterator", {
        "StreamName": name, "ShardId": "shardId-000000000000", "ShardIteratorType": "TRIM_HORIZON"})
    it = cbor2.loads(raw)["ShardIterator"]
    status, _, raw = call(server, "GetRecords", {"ShardIterator": it})
    assert status == 200, raw
    # Tag 1 followed by an integer (0x1b: 8-byte unsigned), never by a float (0xfb).
    assert b"\xc1\x1b" in raw
    assert b"\xc1\xfb" not in raw
    # cbor2 reads tag 1 as epoch *seconds*, which AWS's millisecond value is not; re-tag it as an
    # unassigned tag (same length) so the hook sees the raw integer.
    decoded = cbor2.loads(raw.replace(b"\xc1\x1b", b"\xc6\x1b"), tag_hook=lambda dec, tag: (tag.tag, tag.value))
    rec = decoded["Records"][0]
    assert rec["Data"] == b"\x00\x01binary"
    tag, ms = rec["ApproximateArrivalTimestamp"]
    assert tag == 6 and isinstance(ms, int)
    assert before_ms - 5_000 <= ms <= int(time.time() * 1000) + 5_000


def test_cbor_errors_are_cbor(server):
    status, ctype, raw = call(server, "DescribeStream", {"StreamName": "absent-stream"})
    assert status == 400
    assert ctype == "application/x-amz-cbor-1.1"
    err = cbor2.loads(raw)
    assert err["__type"] == "ResourceNotFoundException"
    assert err["message"] == "Stream absent-stream under account 000000000000 not found."


def test_pre_dispatch_checks(server):
    # Unknown operation with a known content type.
    status, _, raw = call(server, "NoSuchOperation", {})
    assert status == 400 and b"UnknownOperationException" in raw
    # Missing authentication.
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    conn.request("POST", "/", body=b"{}", headers={
        "Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "Kinesis_20131202.ListStreams"})
    r = conn.getresponse()
    assert r.status == 400
    assert b"MissingAuthenticationTokenException" in r.read()
    # A GET is refused before anything else.
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    conn.request("GET", "/")
    r = conn.getresponse()
    assert r.status == 403
    assert b"AccessDeniedException" in r.read()


def test_incomplete_signature_names_the_missing_parts(server):
    import json
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    conn.request("POST", "/", body=b"{}", headers={
        "Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "Kinesis_20131202.ListStreams",
        "Authorization": "AWS4-HMAC-SHA256 Credential=abc"})
    r = conn.getresponse()
    assert r.status == 400
    body = json.loads(r.read())
    assert body["__type"] == "IncompleteSignatureException"
    assert body["message"] == (
        "Authorization header requires 'Signature' parameter. "
        "Authorization header requires 'SignedHeaders' parameter. "
        "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. "
        "Authorization=AWS4-HMAC-SHA256 Credential=abc")


def test_cbor_subscription_events_are_cbor(server, kinesis):
    """The Java SDK subscribes in CBOR: the event stream's payloads are CBOR too."""
    from botocore.eventstream import EventStreamBuffer
    name = "cbor-sub-" + uuid.uuid4().hex[:8]
    kinesis.create_stream(StreamName=name, ShardCount=1)
    wait_active(kinesis, name)
    arn = kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["StreamARN"]
    consumer = kinesis.register_stream_consumer(StreamARN=arn, ConsumerName="java")["Consumer"]["ConsumerARN"]
    deadline = time.monotonic() + 20
    while kinesis.describe_stream_consumer(ConsumerARN=consumer)["ConsumerDescription"]["ConsumerStatus"] != "ACTIVE":
        assert time.monotonic() < deadline
        time.sleep(0.02)  # between polls of the condition
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    conn.request("POST", "/", body=cbor2.dumps({
        "ConsumerARN": consumer, "ShardId": "shardId-000000000000",
        "StartingPosition": {"Type": "TRIM_HORIZON"}}), headers=dict(HEADERS, **{
            "Content-Type": "application/x-amz-cbor-1.1",
            "X-Amz-Target": "Kinesis_20131202.SubscribeToShard"}))
    kinesis.put_record(StreamName=name, Data=b"\x00cbor", PartitionKey="k")
    r = conn.getresponse()
    assert r.status == 200
    assert r.getheader("Content-Type") == "application/vnd.amazon.eventstream"
    buf, messages = EventStreamBuffer(), []
    while len(messages) < 2:
        buf.add_data(r.read1(65536))
        messages.extend(buf)
    assert messages[0].headers[":event-type"] == "initial-response"
    ev = messages[1]
    assert ev.headers[":event-type"] == "SubscribeToShardEvent"
    assert ev.headers[":content-type"] == "application/x-amz-cbor-1.1"
    assert b"\xc1\xfb" not in ev.payload
    decoded = cbor2.loads(ev.payload.replace(b"\xc1\x1b", b"\xc6\x1b"), tag_hook=lambda dec, tag: (tag.tag, tag.value))
    assert decoded["Records"][0]["Data"] == b"\x00cbor"
    assert decoded["Records"][0]["ApproximateArrivalTimestamp"][0] == 6
    assert decoded["MillisBehindLatest"] == 0
    conn.close()
