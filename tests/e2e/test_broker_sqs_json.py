"""The broker's SQS API driven by boto3 over the AWS JSON 1.0 protocol
(X-Amz-Target: AmazonSQS.<Action>, JSON bodies), as current SDKs and aws
CLI versions send it: Debian's boto3 on a JSON copy of its model (see
sqstest.model_dir). The scenarios are in sqs_scenarios.py, shared with the
query protocol run; the wire checks here look at JSON error bodies and the
x-amzn-query-error header SDKs map error codes with."""

import json

import pytest
import requests

from sqs_scenarios import *  # noqa: F401,F403 (the shared tests and fixtures)
from sqs_scenarios import broker  # noqa: F401


@pytest.fixture(scope="module")
def protocol():
    return "json"


def post_json(broker, action, body):
    return requests.post(broker.endpoint, data=body if isinstance(body, str) else json.dumps(body),
                         timeout=10, headers={"Content-Type": "application/x-amz-json-1.0",
                                              "X-Amz-Target": "AmazonSQS." + action})


def test_json_wire(broker):
    r = post_json(broker, "CreateQueue", {"QueueName": "json-wire"})
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("application/x-amz-json-1.0")
    assert r.json() == {"QueueUrl": broker.queue_url("json-wire")}
    r = post_json(broker, "GetQueueUrl", {"QueueName": "nope"})
    assert r.status_code == 400
    assert r.json()["__type"] == "com.amazonaws.sqs#QueueDoesNotExist"
    assert r.json()["message"]
    assert r.headers["x-amzn-query-error"] == "AWS.SimpleQueueService.NonExistentQueue;Sender"
    r = post_json(broker, "NoSuchAction", {})
    assert r.status_code == 400
    assert r.headers["x-amzn-query-error"] == "InvalidAction;Sender"
    r = post_json(broker, "ListQueues", '{"QueueNamePrefix": ')
    assert r.status_code == 400
    assert r.json()["__type"].endswith("#SerializationException")
    r = post_json(broker, "SendMessage", {"QueueUrl": broker.queue_url("json-wire")})
    assert r.status_code == 400
    assert r.headers["x-amzn-query-error"] == "MissingParameter;Sender"
