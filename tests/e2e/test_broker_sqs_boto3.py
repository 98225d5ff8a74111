"""The broker's SQS API driven by Debian's boto3 1.26 over the AWS query
protocol (form-encoded Action=..., XML responses), plus the wire details
boto3 does not show: XML error bodies, posting to a queue URL, GET with a
query string, signature checking when a key pair is configured.

The scenarios themselves are in sqs_scenarios.py, shared with the JSON 1.0
run (test_broker_sqs_json.py)."""

import os
import re
import time
import urllib.parse

import pytest
import requests
from botocore.exceptions import ClientError

import fgtest
from sqs_scenarios import *  # noqa: F401,F403 (the shared tests and fixtures)
from sqs_scenarios import broker  # noqa: F401
from sqstest import Broker, boto3_client, error_code, md5_of_body, model_dir

NS = "http://queue.amazonaws.com/doc/2012-11-05/"


@pytest.fixture(scope="module")
def protocol():
    return "query"


def post_form(url, params):
    return requests.post(url, data=urllib.parse.urlencode(params), timeout=10,
                         headers={"Content-Type": "application/x-www-form-urlencoded"})


def test_xml_result_and_error_shape(broker):
    r = post_form(broker.endpoint, {"Action": "CreateQueue", "QueueName": "wire-q",
                                    "Version": "2012-11-05"})
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("text/xml")
    assert re.fullmatch(
        r'<\?xml version="1.0"\?><CreateQueueResponse xmlns="%s"><CreateQueueResult>'
        r"<QueueUrl>%s</QueueUrl></CreateQueueResult><ResponseMetadata><RequestId>[^<]+"
        r"</RequestId></ResponseMetadata></CreateQueueResponse>"
        % (re.escape(NS), re.escape(broker.queue_url("wire-q"))), r.text), r.text
    r = post_form(broker.endpoint, {"Action": "GetQueueUrl", "QueueName": "nope"})
    assert r.status_code == 400
    assert re.fullmatch(
        r'<\?xml version="1.0"\?><ErrorResponse xmlns="%s"><Error><Type>Sender</Type>'
        r"<Code>AWS.SimpleQueueService.NonExistentQueue</Code><Message>[^<]+</Message>"
        r"<Detail/></Error><RequestId>[^<]+</RequestId></ErrorResponse>" % re.escape(NS),
        r.text), r.text
    r = post_form(broker.endpoint, {"Action": "NoSuchAction"})
    assert r.status_code == 400 and "<Code>InvalidAction</Code>" in r.text
    r = post_form(broker.endpoint, {"Action": "SendMessage", "QueueUrl": broker.queue_url("wire-q")})
    assert r.status_code == 400 and "<Code>MissingParameter</Code>" in r.text
    r = requests.post(broker.endpoint, data="Action=ListQueues&Bad=%zz", timeout=10,
                      headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 400 and "<Code>MalformedQueryString</Code>" in r.text


def test_post_to_queue_url_and_get(broker):
    url = broker.queue_url("wire-url-q")
    assert post_form(broker.endpoint, {"Action": "CreateQueue",
                                       "QueueName": "wire-url-q"}).status_code == 200
    # the queue URL itself takes the request, QueueUrl comes from the path
    r = post_form(url, {"Action": "SendMessage", "MessageBody": "via url <&>"})
    assert r.status_code == 200, r.text
    assert "<MD5OfMessageBody>%s</MD5OfMessageBody>" % md5_of_body("via url <&>") in r.text
    r = requests.get(url + "?Action=ReceiveMessage&WaitTimeSeconds=1", timeout=10)
    assert r.status_code == 200, r.text
    assert "<Body>via url &lt;&amp;&gt;</Body>" in r.text


SIGNED_CONFIG = """\
broker:
  auth:
    access_key: AKIDTEST
    secret_key: s3cret/key+with=chars
"""


def test_signature_required_when_configured():
    import shutil

    b = Broker(config=SIGNED_CONFIG)
    dirs = {p: model_dir(p) for p in ("query", "json")}
    try:
        for proto, d in dirs.items():
            good = boto3_client(b.endpoint, d, key="AKIDTEST", secret="s3cret/key+with=chars")
            url = good.create_queue(QueueName="signed-" + proto)["QueueUrl"]
            good.send_message(QueueUrl=url, MessageBody="ok")
            r = good.receive_message(QueueUrl=url, WaitTimeSeconds=1)
            assert r["Messages"][0]["Body"] == "ok"
            with pytest.raises(ClientError) as e:
                boto3_client(b.endpoint, d, key="AKIDTEST", secret="wrong").list_queues()
            assert error_code(e.value) == "SignatureDoesNotMatch", proto
            with pytest.raises(ClientError) as e:
                boto3_client(b.endpoint, d, key="AKIDOTHER", secret="x").list_queues()
            assert error_code(e.value) == "InvalidClientTokenId", proto
        r = post_form(b.endpoint, {"Action": "ListQueues"})
        assert r.status_code == 403 and "<Code>AccessDenied</Code>" in r.text
        r = requests.post(b.endpoint, data="{}", timeout=10,
                          headers={"Content-Type": "application/x-amz-json-1.0",
                                   "X-Amz-Target": "AmazonSQS.ListQueues"})
        assert r.status_code == 403 and r.headers["x-amzn-query-error"] == "AccessDenied;Sender"
    finally:
        for d in dirs.values():
            shutil.rmtree(d, ignore_errors=True)
        assert b.stop() == 0, b.log()


def test_one_mib_messages_when_configured():
    """max_message_bytes: 1m lets queues take 1 MiB messages, in both
    protocols, digests intact; a byte more is refused."""
    import shutil

    b = Broker(config="broker:\n  max_message_bytes: 1m\n")
    dirs = [model_dir("query"), model_dir("json")]
    try:
        for d in dirs:
            c = boto3_client(b.endpoint, d)
            url = c.create_queue(QueueName="big-" + os.path.basename(d)[-6:])["QueueUrl"]
            assert c.get_queue_attributes(QueueUrl=url, AttributeNames=["MaximumMessageSize"])[
                "Attributes"]["MaximumMessageSize"] == "1048576"
            body = "0123456789abcdef" * (65536 - 1) + "0123456789abcd\u00e9"  # 1 MiB in UTF-8
            assert len(body.encode()) == 1024 * 1024
            r = c.send_message(QueueUrl=url, MessageBody=body)
            assert r["MD5OfMessageBody"] == md5_of_body(body)
            m = c.receive_message(QueueUrl=url, WaitTimeSeconds=1)["Messages"][0]
            assert m["Body"] == body and m["MD5OfBody"] == md5_of_body(body)
            with pytest.raises(ClientError) as e:
                c.send_message(QueueUrl=url, MessageBody="z" * (1024 * 1024 + 1))
            assert error_code(e.value) == "InvalidParameterValue"
    finally:
        for d in dirs:
            shutil.rmtree(d, ignore_errors=True)
        assert b.stop() == 0, b.log()


def test_messages_survive_restart():
    """What the SQS API acknowledged is there after a clean restart on the
    same data directory: queues, attributes, messages, receive counts."""
    import shutil

    b = Broker()
    d = model_dir("query")
    try:
        c = boto3_client(b.endpoint, d)
        url = c.create_queue(QueueName="durable", Attributes={"VisibilityTimeout": "1"})[
            "QueueUrl"]
        c.send_message(QueueUrl=url, MessageBody="kept", MessageAttributes={
            "k": {"DataType": "String", "StringValue": "v"}})
        c.send_message(QueueUrl=url, MessageBody="deleted")
        for m in c.receive_message(QueueUrl=url, MaxNumberOfMessages=10,
                                   WaitTimeSeconds=1)["Messages"]:
            if m["Body"] == "deleted":
                c.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
        assert b.srv.stop() == 0, b.log()
        b.srv = fgtest.start(["broker", "--listen", f"127.0.0.1:{b.port}", "--data", b.data],
                             port=b.port)
        c = boto3_client(b.endpoint, d)
        assert c.get_queue_url(QueueName="durable")["QueueUrl"] == url
        assert c.get_queue_attributes(QueueUrl=url, AttributeNames=["VisibilityTimeout"])[
            "Attributes"] == {"VisibilityTimeout": "1"}
        time.sleep(1.1)
        r = c.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=2,
                              AttributeNames=["ApproximateReceiveCount"],
                              MessageAttributeNames=["All"])["Messages"]
        assert [m["Body"] for m in r] == ["kept"]
        assert r[0]["MessageAttributes"] == {"k": {"DataType": "String", "StringValue": "v"}}
        assert r[0]["Attributes"]["ApproximateReceiveCount"] == "2"
    finally:
        shutil.rmtree(d, ignore_errors=True)
        assert b.stop() == 0, b.log()
