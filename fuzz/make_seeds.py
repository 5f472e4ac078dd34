"""Writes the hand-made seed inputs of the protocol targets (json, cbor): operation byte + body.
Run once with the repo's venv python (cbor2); AFL grows the corpus from these."""
import datetime, json, os, cbor2

ARN = "arn:aws:kinesis:us-east-1:111111111111:stream/s1"
CARN = ARN + "/consumer/c1:1700000000"
SEEDS = {
    1: {"StreamName": "s1", "ShardCount": 2, "StreamModeDetails": {"StreamMode": "PROVISIONED"}, "Tags": {"k": "v"}},
    4: {"StreamName": "s1", "EnforceConsumerDeletion": True},
    8: {"StreamName": "s1", "Limit": 10, "ExclusiveStartShardId": "shardId-000000000001"},
    12: {"StreamARN": ARN, "ShardLevelMetrics": ["IncomingBytes", "ALL"]},
    13: {"ShardIterator": "AAAAAAAAAAE=", "Limit": 100, "StreamARN": ARN},
    15: {"StreamName": "s1", "ShardId": "shardId-000000000000", "ShardIteratorType": "AT_TIMESTAMP", "Timestamp": 1700000000.5},
    17: {"StreamName": "s1", "MaxResults": 5, "ShardFilter": {"Type": "AT_TIMESTAMP", "Timestamp": 1700000000}, "StreamCreationTimestamp": 1.5},
    19: {"Limit": 3, "ExclusiveStartStreamName": "a", "NextToken": "x"},
    22: {"StreamName": "s1", "ShardToMerge": "shardId-000000000000", "AdjacentShardToMerge": "shardId-000000000001"},
    23: {"StreamName": "s1", "Data": "aGVsbG8=", "PartitionKey": "pk", "ExplicitHashKey": "340282366920938463463374607431768211455", "SequenceNumberForOrdering": "1"},
    24: {"StreamName": "s1", "Records": [{"Data": "AA==", "PartitionKey": "a"}, {"Data": "", "PartitionKey": "b", "ExplicitHashKey": "0"}]},
    25: {"ResourceARN": ARN, "Policy": "{\"Version\":\"2012-10-17\",\"Statement\":[]}"},
    26: {"StreamARN": ARN, "ConsumerName": "c1"},
    28: {"StreamName": "s1", "ShardToSplit": "shardId-000000000000", "NewStartingHashKey": "170141183460469231731687303715884105728"},
    31: {"ConsumerARN": CARN, "ShardId": "shardId-000000000000", "StartingPosition": {"Type": "AT_SEQUENCE_NUMBER", "SequenceNumber": "49590338271490256608559692538361571095921575989136588898"}},
    32: {"ResourceARN": ARN, "Tags": {"a": "b", "c": ""}},
    34: {"MinimumThroughputBillingCommitment": {"Status": "ENABLED"}},
    36: {"StreamName": "s1", "TargetShardCount": 4, "ScalingType": "UNIFORM_SCALING"},
    38: {"StreamARN": ARN, "WarmThroughputMiBps": 10},
}

def cbor_value(op, v):
    # CBOR timestamps are tag 1 + integer milliseconds; blobs are byte strings.
    if isinstance(v, dict):
        out = {}
        for k, x in v.items():
            if k in ("Timestamp", "StreamCreationTimestamp"):
                out[k] = cbor2.CBORTag(1, int(x * 1000))
            elif k == "Data":
                import base64
                out[k] = base64.b64decode(x)
            else:
                out[k] = cbor_value(op, x)
        return out
    if isinstance(v, list):
        return [cbor_value(op, x) for x in v]
    return v

here = os.path.dirname(os.path.abspath(__file__))
for op, body in SEEDS.items():
    with open(os.path.join(here, "seeds", "json", f"op{op:02}"), "wb") as f:
        f.write(bytes([op]) + json.dumps(body).encode())
    with open(os.path.join(here, "seeds", "cbor", f"op{op:02}"), "wb") as f:
        f.write(bytes([op]) + cbor2.dumps(cbor_value(op, body)))
