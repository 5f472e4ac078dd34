"""The answers Levee gives before an operation runs, byte for byte over raw HTTP: what AWS answers
(as recorded by kinesalite's newest `test/connection.js`) for a request without a body, with an
unknown content type or target, with `application/json`, with a body that is not a JSON object,
with CORS headers, or without a signature. Which check wins, when several apply, is AWS's order:
method, empty body, content type, body, `application/json`, target, signature."""
import base64
import http.client
import json
import re

import cbor2

JSON = "application/x-amz-json-1.1"
CBOR = "application/x-amz-cbor-1.1"
LIST_STREAMS = "Kinesis_20131202.ListStreams"
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
ACCESS_DENIED = (b"<AccessDeniedException>\n"
                 b"  <Message>Unable to determine service/operation name to be authorized</Message>\n"
                 b"</AccessDeniedException>\n")
EXPOSE = "x-amzn-RequestId,x-amzn-ErrorType,x-amz-request-id,x-amz-id-2,x-amzn-ErrorMessage,Date"


def raw(server, method="POST", headers=None, body=b"", path="/"):
    """One request (no signature unless the headers carry one); returns status, headers, body."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    conn.request(method, path, body=body, headers=headers or {})
    r = conn.getresponse()
    data = r.read()
    conn.close()
    heads = {k.lower(): v for k, v in r.getheaders()}
    assert UUID.match(heads["x-amzn-requestid"]), heads
    assert heads["content-length"] == str(len(data)), heads
    return r.status, heads, data


def cbor_error(status, heads, data):
    assert heads["content-type"] == CBOR, heads
    return status, cbor2.loads(data)


def json_error(status, heads, data, content_type=JSON):
    assert heads["content-type"] == content_type, heads
    return status, json.loads(data)


def test_a_method_other_than_post_is_access_denied_in_xml(server):
    for method in ["GET", "PUT", "DELETE", "OPTIONS"]:
        status, heads, data = raw(server, method)
        assert (status, data) == (403, ACCESS_DENIED), method
        assert "content-type" not in heads
        assert 64 <= len(base64.b64decode(heads["x-amz-id-2"])) <= 80


def test_an_empty_body_is_answered_in_cbor_unless_the_request_says_json(server):
    unknown = (400, {"__type": "UnknownOperationException"})
    serialization = (400, {"__type": "SerializationException"})
    assert cbor_error(*raw(server)) == unknown
    assert cbor_error(*raw(server, headers={"X-Amz-Target": "Kinesis_20131202.ListStream"})) == unknown
    assert cbor_error(*raw(server, headers={"X-Amz-Target": LIST_STREAMS})) == serialization
    assert cbor_error(*raw(server, headers={"Content-Type": "application/x-amz-json-1.0"})) == unknown
    assert cbor_error(*raw(server, headers={
        "Content-Type": "application/json", "X-Amz-Target": LIST_STREAMS})) == serialization
    assert json_error(*raw(server, headers={"Content-Type": JSON})) == unknown
    assert json_error(*raw(server, headers={
        "Content-Type": JSON, "X-Amz-Target": LIST_STREAMS})) == serialization


def test_an_unknown_content_type_with_a_body(server):
    form = "application/x-www-form-urlencoded; charset=utf-8"
    status, heads, data = raw(server, headers={"Content-Type": form}, body=b"{}")
    assert (status, data) == (403, ACCESS_DENIED)
    assert "content-type" not in heads
    status, heads, data = raw(server, headers={"Content-Type": form, "X-Amz-Target": "a.b"},
                              body=b"{}")
    assert (status, data) == (404, b"<UnknownOperationException/>\n")
    assert "content-type" not in heads


def test_application_json_gets_corals_old_envelope_and_never_runs(server, kinesis):
    for ctype in ["application/json", "     application/json     ;"]:
        assert json_error(*raw(server, headers={"Content-Type": ctype, "X-Amz-Target": LIST_STREAMS},
                               body=b"hello"), content_type="application/json") == (
            400, {"Output": {"__type": "com.amazon.coral.service#SerializationException"},
                  "Version": "1.0"})
    assert json_error(*raw(server, headers={
        "Content-Type": "application/json", "X-Amz-Target": "Kinesis_20131202.CreateStream"},
        body=b'{"StreamName":"never-created","ShardCount":1}'), content_type="application/json") == (
        404, {"Output": {"__type": "com.amazon.coral.service#UnknownOperationException"},
              "Version": "1.0"})
    assert "never-created" not in kinesis.list_streams()["StreamNames"]


def test_the_body_is_parsed_before_the_target_and_the_signature(server):
    serialization = (400, {"__type": "SerializationException"})
    for target in [LIST_STREAMS, "Kinesis_20131202.Whatever", "Whatever"]:
        for body in [b"hello", b"true", b"null"]:
            assert json_error(*raw(server, headers={"Content-Type": JSON, "X-Amz-Target": target},
                                   body=body)) == serialization, (target, body)
    assert cbor_error(*raw(server, headers={"Content-Type": CBOR, "X-Amz-Target": "Whatever"},
                           body=b"\xff")) == serialization
    # A well-formed body: the target, then the signature.
    assert json_error(*raw(server, headers={"Content-Type": JSON, "X-Amz-Target": "Whatever"},
                           body=b"{}")) == (400, {"__type": "UnknownOperationException"})
    assert cbor_error(*raw(server, headers={"Content-Type": CBOR, "X-Amz-Target": "Whatever"},
                           body=cbor2.dumps({}))) == (400, {"__type": "UnknownOperationException"})
    assert json_error(*raw(server, headers={"Content-Type": JSON, "X-Amz-Target": LIST_STREAMS},
                           body=b"{}")) == (
        400, {"__type": "MissingAuthenticationTokenException",
              "message": "Missing Authentication Token"})


def test_query_string_signature_errors(server):
    headers = {"Content-Type": JSON, "X-Amz-Target": LIST_STREAMS}
    assert json_error(*raw(server, headers=headers, body=b"{}", path="/?X-Amz-Algorithm")) == (
        400, {"__type": "IncompleteSignatureException",
              "message": "AWS query-string parameters must include 'X-Amz-Algorithm'. "
                         "AWS query-string parameters must include 'X-Amz-Credential'. "
                         "AWS query-string parameters must include 'X-Amz-Signature'. "
                         "AWS query-string parameters must include 'X-Amz-SignedHeaders'. "
                         "AWS query-string parameters must include 'X-Amz-Date'. "
                         "Re-examine the query-string parameters."})
    assert json_error(*raw(server, headers=dict(headers, Authorization="X"), body=b"{}",
                           path="/?X-Amz-Algorithm")) == (
        400, {"__type": "InvalidSignatureException",
              "message": "Found both 'X-Amz-Algorithm' as a query-string param and "
                         "'Authorization' as HTTP header."})


def test_cors(server):
    status, heads, data = raw(server, "OPTIONS", headers={
        "Origin": "whatever", "Access-Control-Request-Headers": "a, b, c",
        "Access-Control-Request-Method": "d"})
    assert (status, data) == (200, b"")
    assert heads["access-control-allow-origin"] == "*"
    assert heads["access-control-allow-headers"] == "a, b, c"
    assert heads["access-control-allow-methods"] == "d"
    assert heads["access-control-max-age"] == "172800"
    assert "x-amz-id-2" not in heads and "content-type" not in heads
    # Any other request with an Origin: its answer, with the CORS headers.
    status, heads, data = raw(server, headers={"Origin": "whatever"})
    assert cbor_error(status, heads, data) == (400, {"__type": "UnknownOperationException"})
    assert heads["access-control-allow-origin"] == "*"
    assert heads["access-control-expose-headers"] == EXPOSE
    # Without an Origin, none.
    _, heads, _ = raw(server)
    assert "access-control-allow-origin" not in heads
