"""Calls refused before dispatch (no signature, empty body) count in the per-operation error
series at /metrics and appear among the recent errors of /status.json."""
import http.client
import json
import urllib.request


def errors(server, op, error):
    text = urllib.request.urlopen(server.admin + "/metrics", timeout=10).read().decode()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("levee_api_errors_total{") and f'operation="{op}"' in line
               and f'error="{error}"' in line)


def post(server, headers, body):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    conn.request("POST", "/", body=body, headers=headers)
    r = conn.getresponse()
    r.read()
    return r.status


def test_refused_before_dispatch_is_counted(server):
    missing = errors(server, "ListStreams", "MissingAuthenticationTokenException")
    empty = errors(server, "ListStreams", "SerializationException")
    base = {"Content-Type": "application/x-amz-json-1.1",
            "X-Amz-Target": "Kinesis_20131202.ListStreams"}
    assert post(server, base, b"{}") == 400
    assert post(server, base, b"{}") == 400
    assert post(server, base, b"") == 400
    assert errors(server, "ListStreams", "MissingAuthenticationTokenException") == missing + 2
    assert errors(server, "ListStreams", "SerializationException") == empty + 1
    status = json.loads(urllib.request.urlopen(server.admin + "/status.json", timeout=10).read())
    recent = json.dumps(status)
    assert "MissingAuthenticationTokenException" in recent
