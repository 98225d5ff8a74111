"""End-to-end tests of the broker's SNS API with boto3 and the aws CLI.

The real binary on 127.0.0.1 with a temporary data directory: topics,
attributes, tags, subscriptions, publish validation, SNS error codes and
messages, the envelope's signature checked against the certificate the
broker serves, the native JSON API, restarts and /metrics."""

import base64
import json
import os
import shutil
import subprocess
import tempfile
import time

import boto3
import pytest
import requests
from botocore.config import Config
from botocore.exceptions import ClientError
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from fgtest import binary, free_port, scaled, start

ACCOUNT = "000000000000"
TOPIC_PREFIX = f"arn:aws:sns:us-east-1:{ACCOUNT}:"
QUEUE_PREFIX = f"arn:aws:sqs:us-east-1:{ACCOUNT}:"


@pytest.fixture
def datadir():
    d = tempfile.mkdtemp(prefix="fg-sns-")
    yield d
    shutil.rmtree(d, ignore_errors=True)


def start_broker(datadir, port=None):
    port = port or free_port()
    srv = start(["broker", "--listen", f"127.0.0.1:{port}", "--data", datadir], port=port)
    deadline = time.monotonic() + scaled(15)
    while "listening on" not in srv.log():
        assert time.monotonic() < deadline, srv.log()
        time.sleep(0.02)
    return srv


def client(srv, service):
    return boto3.client(service, region_name="us-east-1", endpoint_url=srv.url(""),
                        aws_access_key_id="x", aws_secret_access_key="y",
                        config=Config(retries={"total_max_attempts": 1}))


@pytest.fixture
def broker(datadir):
    srv = start_broker(datadir)
    sns = client(srv, "sns")
    try:
        sns.list_topics()
    except ClientError:
        srv.stop()
        raise
    yield srv
    srv.stop()


def err(call, *a, **kw):
    with pytest.raises(ClientError) as e:
        call(*a, **kw)
    return e.value.response["Error"], e.value.response["ResponseMetadata"]["HTTPStatusCode"]


def make_queue(sqs, name, attrs=None):
    url = sqs.create_queue(QueueName=name, Attributes=attrs or {})["QueueUrl"]
    return url, QUEUE_PREFIX + name


def receive_all(sqs, url, want, timeout=10):
    got = []
    deadline = time.monotonic() + scaled(timeout)
    while len(got) < want and time.monotonic() < deadline:
        r = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1,
                                MessageAttributeNames=["All"])
        for m in r.get("Messages", []):
            got.append(m)
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    return got


def test_help_names_topics_sns_and_the_log_tools():
    out = subprocess.run([binary(), "broker", "--help"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0
    for word in ("SNS", "topics", "/v1/topics", "--check", "--repair"):
        assert word in out.stdout, word


def test_topic_lifecycle(broker):
    sns = client(broker, "sns")
    arn = sns.create_topic(Name="orders")["TopicArn"]
    assert arn == TOPIC_PREFIX + "orders"
    assert sns.create_topic(Name="orders")["TopicArn"] == arn, "CreateTopic is idempotent"
    attrs = sns.get_topic_attributes(TopicArn=arn)["Attributes"]
    assert attrs["TopicArn"] == arn and attrs["Owner"] == ACCOUNT
    assert attrs["SubscriptionsConfirmed"] == "0" and attrs["SubscriptionsPending"] == "0"
    assert json.loads(attrs["Policy"])["Statement"][0]["Resource"] == arn
    assert json.loads(attrs["EffectiveDeliveryPolicy"])["http"]["defaultHealthyRetryPolicy"]["numRetries"] == 3
    sns.set_topic_attributes(TopicArn=arn, AttributeName="DisplayName", AttributeValue="Orders")
    assert sns.get_topic_attributes(TopicArn=arn)["Attributes"]["DisplayName"] == "Orders"
    e, status = err(sns.create_topic, Name="orders", Attributes={"DisplayName": "other"})
    assert e["Code"] == "InvalidParameter" and "different attributes" in e["Message"]
    e, status = err(sns.set_topic_attributes, TopicArn=arn, AttributeName="Bogus", AttributeValue="x")
    assert (e["Code"], e["Message"], status) == ("InvalidParameter", "Invalid parameter: AttributeName", 400)
    e, _ = err(sns.set_topic_attributes, TopicArn=arn, AttributeName="DeliveryPolicy",
               AttributeValue='{"http": {"defaultHealthyRetryPolicy": {"numRetries": 500}}}')
    assert e["Code"] == "InvalidParameter" and "numRetries" in e["Message"]
    e, status = err(sns.create_topic, Name="bad name!")
    assert (e["Code"], e["Message"], status) == ("InvalidParameter", "Invalid parameter: Topic Name", 400)
    e, status = err(sns.get_topic_attributes, TopicArn=TOPIC_PREFIX + "nope")
    assert (e["Code"], e["Message"], status) == ("NotFound", "Topic does not exist", 404)
    e, _ = err(sns.get_topic_attributes, TopicArn="not-an-arn")
    assert e["Code"] == "InvalidParameter"
    sns.delete_topic(TopicArn=arn)
    sns.delete_topic(TopicArn=arn)  # deleting a missing topic is not an error (SNS)
    assert sns.list_topics()["Topics"] == []


def test_list_topics_pages(broker):
    sns = client(broker, "sns")
    names = [f"t{i:03d}" for i in range(130)]
    for n in names:
        sns.create_topic(Name=n)
    first = sns.list_topics()
    assert len(first["Topics"]) == 100 and "NextToken" in first
    second = sns.list_topics(NextToken=first["NextToken"])
    assert "NextToken" not in second
    got = [t["TopicArn"] for t in first["Topics"] + second["Topics"]]
    assert got == [TOPIC_PREFIX + n for n in names]
    e, _ = err(sns.list_topics, NextToken="garbage")
    assert e["Code"] == "InvalidParameter"


def test_fifo_topic_and_tags(broker):
    sns = client(broker, "sns")
    e, _ = err(sns.create_topic, Name="plain", Attributes={"FifoTopic": "true"})
    assert e["Message"] == "Invalid parameter: Topic Name"
    arn = sns.create_topic(Name="jobs.fifo", Attributes={"FifoTopic": "true",
                                                         "ContentBasedDeduplication": "true"},
                           Tags=[{"Key": "team", "Value": "pay"}])["TopicArn"]
    attrs = sns.get_topic_attributes(TopicArn=arn)["Attributes"]
    assert attrs["FifoTopic"] == "true" and attrs["ContentBasedDeduplication"] == "true"
    sns.tag_resource(ResourceArn=arn, Tags=[{"Key": "env", "Value": "prod"}, {"Key": "team", "Value": "ops"}])
    tags = {t["Key"]: t["Value"] for t in sns.list_tags_for_resource(ResourceArn=arn)["Tags"]}
    assert tags == {"team": "ops", "env": "prod"}
    sns.untag_resource(ResourceArn=arn, TagKeys=["team"])
    assert sns.list_tags_for_resource(ResourceArn=arn)["Tags"] == [{"Key": "env", "Value": "prod"}]
    e, status = err(sns.list_tags_for_resource, ResourceArn=TOPIC_PREFIX + "none")
    assert (e["Code"], status) == ("ResourceNotFound", 404)
    e, _ = err(sns.tag_resource, ResourceArn=arn, Tags=[{"Key": f"k{i}", "Value": "v"} for i in range(60)])
    assert e["Code"] == "TagLimitExceeded"


def test_subscriptions(broker):
    sns, sqs = client(broker, "sns"), client(broker, "sqs")
    topic = sns.create_topic(Name="events")["TopicArn"]
    _, qarn = make_queue(sqs, "inbox")
    sub = sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=qarn)["SubscriptionArn"]
    assert sub.startswith(topic + ":")
    assert sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=qarn)["SubscriptionArn"] == sub
    a = sns.get_subscription_attributes(SubscriptionArn=sub)["Attributes"]
    assert a["Protocol"] == "sqs" and a["Endpoint"] == qarn and a["PendingConfirmation"] == "false"
    assert a["RawMessageDelivery"] == "false" and a["TopicArn"] == topic
    sns.set_subscription_attributes(SubscriptionArn=sub, AttributeName="RawMessageDelivery",
                                    AttributeValue="true")
    policy = json.dumps({"store": ["example_corp"]})
    sns.set_subscription_attributes(SubscriptionArn=sub, AttributeName="FilterPolicy", AttributeValue=policy)
    a = sns.get_subscription_attributes(SubscriptionArn=sub)["Attributes"]
    assert a["RawMessageDelivery"] == "true" and a["FilterPolicy"] == policy
    assert a["FilterPolicyScope"] == "MessageAttributes"
    e, status = err(sns.set_subscription_attributes, SubscriptionArn=sub, AttributeName="FilterPolicy",
                    AttributeValue=json.dumps({k: ["x"] for k in "abcdef"}))
    assert (e["Code"], status) == ("InvalidParameter", 400)
    assert e["Message"] == "Invalid parameter: FilterPolicy: Filter policy can not have more than 5 keys"
    e, _ = err(sns.subscribe, TopicArn=topic, Protocol="sqs", Endpoint=QUEUE_PREFIX + "other",
               Attributes={"FilterPolicy": '{"a": [{"numeric": [">", 5, "<", 1]}]}'})
    assert e["Message"] == ("Invalid parameter: Attributes Reason: FilterPolicy: Bottom must be "
                            "less than top")
    e, _ = err(sns.subscribe, TopicArn=topic, Protocol="sqs", Endpoint="arn:aws:sqs:eu-west-1:1:q")
    assert e["Message"] == "Invalid parameter: SQS endpoint ARN"
    e, _ = err(sns.subscribe, TopicArn=topic, Protocol="sqs", Endpoint=QUEUE_PREFIX + "q.fifo")
    assert "FIFO SQS Queues can not be subscribed to standard SNS topics" in e["Message"]
    e, _ = err(sns.subscribe, TopicArn=topic, Protocol="https", Endpoint="https://example.com/")
    assert e["Code"] == "InvalidParameter"
    e, _ = err(sns.subscribe, TopicArn=topic, Protocol="email", Endpoint="a@b.c")
    assert e["Code"] == "InvalidParameter"
    subs = sns.list_subscriptions()["Subscriptions"]
    assert [s["SubscriptionArn"] for s in subs] == [sub]
    assert sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"] == subs
    assert sns.get_topic_attributes(TopicArn=topic)["Attributes"]["SubscriptionsConfirmed"] == "1"
    sns.unsubscribe(SubscriptionArn=sub)
    e, status = err(sns.get_subscription_attributes, SubscriptionArn=sub)
    assert (e["Code"], e["Message"], status) == ("NotFound", "Subscription does not exist", 404)
    assert sns.list_subscriptions()["Subscriptions"] == []
    assert sns.get_topic_attributes(TopicArn=topic)["Attributes"]["SubscriptionsDeleted"] == "1"


def test_publish_validation(broker):
    sns = client(broker, "sns")
    topic = sns.create_topic(Name="v")["TopicArn"]
    cases = [
        (dict(Message=""), "InvalidParameter", "Invalid parameter: Empty message"),
        (dict(Message="x" * 262145), "InvalidParameter", "Invalid parameter: Message too long"),
        (dict(Message="x", Subject="two\nlines"), "InvalidParameter", "Invalid parameter: Subject"),
        (dict(Message="x", MessageAttributes={"n": {"DataType": "Number", "StringValue": "abc"}}),
         "ParameterValueInvalid", "Could not cast message attribute 'n' value to number."),
        (dict(Message="x", MessageAttributes={"n": {"DataType": "Bogus", "StringValue": "1"}}),
         "ParameterValueInvalid", None),
        (dict(Message="x", MessageAttributes={f"a{i}": {"DataType": "String", "StringValue": "v"}
                                              for i in range(11)}),
         "ParameterValueInvalid", "Number of message attributes [11] exceeds the allowed maximum [10]."),
        (dict(Message="not json", MessageStructure="json"), "InvalidParameter",
         "Invalid parameter: Message Structure - JSON message body failed to parse"),
        (dict(Message='{"sqs": "x"}', MessageStructure="json"), "InvalidParameter",
         "Invalid parameter: Message Structure - No default entry in JSON message body"),
        (dict(Message="x", MessageGroupId="g"), "InvalidParameter", None),
    ]
    for kw, code, msg in cases:
        e, status = err(sns.publish, TopicArn=topic, **kw)
        assert e["Code"] == code and status == 400, (kw.keys(), e)
        if msg:
            assert e["Message"] == msg
    e, status = err(sns.publish, TopicArn=TOPIC_PREFIX + "missing", Message="x")
    assert (e["Code"], status) == ("NotFound", 404)
    fifo = sns.create_topic(Name="f.fifo", Attributes={"FifoTopic": "true"})["TopicArn"]
    e, _ = err(sns.publish, TopicArn=fifo, Message="x")
    assert "MessageGroupId parameter is required" in e["Message"]
    e, _ = err(sns.publish, TopicArn=fifo, Message="x", MessageGroupId="g")
    assert "ContentBasedDeduplication" in e["Message"]
    e, _ = err(sns.publish_batch, TopicArn=topic, PublishBatchRequestEntries=[
        {"Id": "a", "Message": "1"}, {"Id": "a", "Message": "2"}])
    assert e["Code"] == "BatchEntryIdsNotDistinct"
    e, _ = err(sns.publish_batch, TopicArn=topic, PublishBatchRequestEntries=[
        {"Id": str(i), "Message": "m"} for i in range(11)])
    assert e["Code"] == "TooManyEntriesInBatchRequest"
    e, _ = err(sns.publish_batch, TopicArn=topic, PublishBatchRequestEntries=[{"Id": "bad id", "Message": "m"}])
    assert e["Code"] == "InvalidBatchEntryId"


def test_unknown_action_and_malformed(broker):
    r = requests.post(broker.url("/"), data="Action=Publish&Message=%zz",
                      headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 400 and "<Code>MalformedQueryString</Code>" in r.text
    assert 'xmlns="http://sns.amazonaws.com/doc/2010-03-31/"' in r.text
    r = requests.post(broker.url("/"), data="Action=CreateTopic&Version=2010-03-31",
                      headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 400 and "<Code>ValidationError</Code>" in r.text
    assert "Value null at &apos;name&apos;" in r.text
    r = requests.post(broker.url("/sns"), data="Action=Frobnicate",
                      headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 400 and "<Code>InvalidAction</Code>" in r.text


def verify(envelope, cert_pem):
    """Checks an SNS envelope's signature the way SNS's own clients do."""
    fields = ["Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"]
    if envelope["Type"] != "Notification":
        fields = ["Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"]
    text = "".join(f"{k}\n{envelope[k]}\n" for k in fields if k in envelope)
    cert = x509.load_pem_x509_certificate(cert_pem)
    algo = hashes.SHA1() if envelope["SignatureVersion"] == "1" else hashes.SHA256()
    cert.public_key().verify(base64.b64decode(envelope["Signature"]), text.encode(),
                             padding.PKCS1v15(), algo)


def test_envelope_and_signature(broker):
    sns, sqs = client(broker, "sns"), client(broker, "sqs")
    topic = sns.create_topic(Name="signed")["TopicArn"]
    url, qarn = make_queue(sqs, "signed-q")
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=qarn)
    mid = sns.publish(TopicArn=topic, Message='caf\u00e9 "quoted"\nline', Subject="Hello",
                      MessageAttributes={"kind": {"DataType": "String", "StringValue": "a"},
                                         "bin": {"DataType": "Binary", "BinaryValue": b"\x00\x01"}})["MessageId"]
    (m,) = receive_all(sqs, url, 1)
    env = json.loads(m["Body"])
    assert env["Type"] == "Notification" and env["MessageId"] == mid and env["TopicArn"] == topic
    assert env["Message"] == 'caf\u00e9 "quoted"\nline' and env["Subject"] == "Hello"
    assert env["MessageAttributes"] == {"kind": {"Type": "String", "Value": "a"},
                                        "bin": {"Type": "Binary", "Value": "AAE="}}
    assert env["Timestamp"].endswith("Z") and len(env["Timestamp"]) == 24
    assert env["UnsubscribeURL"].startswith(broker.url("/?Action=Unsubscribe&SubscriptionArn="))
    cert = requests.get(env["SigningCertURL"])
    assert cert.status_code == 200 and cert.content.startswith(b"-----BEGIN CERTIFICATE-----")
    verify(env, cert.content)
    sns.set_topic_attributes(TopicArn=topic, AttributeName="SignatureVersion", AttributeValue="2")
    sns.publish(TopicArn=topic, Message="v2")
    (m,) = receive_all(sqs, url, 1)
    env2 = json.loads(m["Body"])
    assert env2["SignatureVersion"] == "2" and "Subject" not in env2
    verify(env2, requests.get(env2["SigningCertURL"]).content)
    with pytest.raises(Exception):
        env2["Message"] = "tampered"
        verify(env2, cert.content)
    # Following the UnsubscribeURL ends the subscription.
    r = requests.get(env["UnsubscribeURL"])
    assert r.status_code == 200 and "<UnsubscribeResponse" in r.text
    assert sns.list_subscriptions()["Subscriptions"] == []


def test_aws_cli(broker):
    env = dict(os.environ, AWS_ACCESS_KEY_ID="x", AWS_SECRET_ACCESS_KEY="y", AWS_DEFAULT_REGION="us-east-1",
               AWS_PAGER="")

    def aws(*args):
        r = subprocess.run(["/usr/bin/aws", "--endpoint-url", broker.url(""), "--output", "json", *args],
                           env=env, capture_output=True, text=True, timeout=scaled(60))
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout) if r.stdout.strip() else None

    topic = aws("sns", "create-topic", "--name", "cli-topic")["TopicArn"]
    q = aws("sqs", "create-queue", "--queue-name", "cli-q")["QueueUrl"]
    sub = aws("sns", "subscribe", "--topic-arn", topic, "--protocol", "sqs",
              "--notification-endpoint", QUEUE_PREFIX + "cli-q",
              "--attributes", "RawMessageDelivery=true")["SubscriptionArn"]
    assert sub.startswith(topic)
    mid = aws("sns", "publish", "--topic-arn", topic, "--message", "from the cli",
              "--message-attributes", '{"k": {"DataType": "String", "StringValue": "v"}}')["MessageId"]
    got = aws("sqs", "receive-message", "--queue-url", q, "--wait-time-seconds", "2",
              "--message-attribute-names", "All")["Messages"]
    assert got[0]["Body"] == "from the cli" and got[0]["MessageAttributes"]["k"]["StringValue"] == "v"
    assert mid
    subs = aws("sns", "list-subscriptions-by-topic", "--topic-arn", topic)["Subscriptions"]
    assert subs[0]["Endpoint"] == QUEUE_PREFIX + "cli-q"
    attrs = aws("sns", "get-subscription-attributes", "--subscription-arn", sub)["Attributes"]
    assert attrs["RawMessageDelivery"] == "true"
    aws("sns", "delete-topic", "--topic-arn", topic)
    assert aws("sns", "list-topics")["Topics"] == []


def test_native_api(broker):
    base = broker.url("/v1")
    sqs = client(broker, "sqs")
    url, _ = make_queue(sqs, "native-q")
    r = requests.put(f"{base}/topics/alerts", json={"attributes": {"DisplayName": "Alerts"}, "tags": {"a": "b"}})
    assert r.status_code == 200 and r.json()["arn"] == TOPIC_PREFIX + "alerts"
    r = requests.post(f"{base}/topics/alerts/subscriptions",
                      json={"protocol": "sqs", "endpoint": "native-q",
                            "attributes": {"RawMessageDelivery": True, "FilterPolicy": {"level": ["high"]}}})
    assert r.status_code == 200, r.text
    sub = r.json()["arn"]
    r = requests.post(f"{base}/topics/alerts/publish", json={"message": "disk full", "attributes": {"level": "high", "n": 5}})
    assert r.status_code == 200 and r.json()["message_id"]
    r = requests.post(f"{base}/topics/alerts/publish", json={"message": "fyi", "attributes": {"level": "low"}})
    assert r.status_code == 200
    r = requests.post(f"{base}/topics/alerts/publish", data=b"raw text body",
                      params={"subject": "s"}, headers={"Content-Type": "text/plain"})
    assert r.status_code == 200
    r = requests.post(f"{base}/topics/alerts/publish",
                      json={"messages": [{"message": "b1", "attributes": {"level": "high"}}, {"message": ""}]})
    assert r.status_code == 200 and len(r.json()["published"]) == 1 and r.json()["failed"][0]["code"] == "InvalidParameter"
    bodies = sorted(m["Body"] for m in receive_all(sqs, url, 2))
    assert bodies == ["b1", "disk full"], "the filter let only level=high through"
    r = requests.get(f"{base}/topics/alerts")
    assert r.json()["attributes"]["DisplayName"] == "Alerts" and r.json()["tags"] == {"a": "b"}
    r = requests.get(f"{base}/topics")
    assert [t["name"] for t in r.json()["topics"]] == ["alerts"]
    r = requests.get(f"{base}/topics/alerts/subscriptions")
    assert r.json()["subscriptions"][0]["arn"] == sub
    r = requests.patch(f"{base}/subscriptions/{sub.rsplit(':', 1)[1]}", json={"attributes": {"RawMessageDelivery": "false"}})
    assert r.status_code == 200
    r = requests.get(f"{base}/subscriptions/{sub}")
    assert r.json()["attributes"]["RawMessageDelivery"] == "false"
    r = requests.get(f"{base}/topics/nope")
    assert r.status_code == 404 and r.json()["code"] == "NotFound"
    r = requests.delete(f"{base}/subscriptions/{sub}")
    assert r.status_code == 200
    r = requests.delete(f"{base}/topics/alerts")
    assert r.status_code == 200 and requests.get(f"{base}/topics").json()["topics"] == []


def test_restart_keeps_topics_and_subscriptions(datadir):
    srv = start_broker(datadir)
    port = srv.port
    try:
        sns, sqs = client(srv, "sns"), client(srv, "sqs")
        try:
            sns.list_topics()
        except ClientError:
            raise
        topic = sns.create_topic(Name="durable", Attributes={"DisplayName": "D"})["TopicArn"]
        url, qarn = make_queue(sqs, "durable-q")
        sub = sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=qarn,
                            Attributes={"RawMessageDelivery": "true",
                                        "FilterPolicy": json.dumps({"ok": [{"exists": True}]})})["SubscriptionArn"]
    finally:
        srv.stop()
    srv = start_broker(datadir, port=port)
    try:
        sns, sqs = client(srv, "sns"), client(srv, "sqs")
        assert sns.get_topic_attributes(TopicArn=topic)["Attributes"]["DisplayName"] == "D"
        a = sns.get_subscription_attributes(SubscriptionArn=sub)["Attributes"]
        assert a["RawMessageDelivery"] == "true" and "exists" in a["FilterPolicy"]
        sns.publish(TopicArn=topic, Message="kept", MessageAttributes={"ok": {"DataType": "String", "StringValue": "1"}})
        sns.publish(TopicArn=topic, Message="filtered")
        assert [m["Body"] for m in receive_all(sqs, url, 1)] == ["kept"]
        assert receive_all(sqs, url, 1, timeout=1.5) == []
    finally:
        srv.stop()


def test_metrics(broker):
    sns, sqs = client(broker, "sns"), client(broker, "sqs")
    topic = sns.create_topic(Name="m")["TopicArn"]
    _, qarn = make_queue(sqs, "mq")
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=qarn,
                  Attributes={"FilterPolicy": json.dumps({"x": ["1"]})})
    sns.publish(TopicArn=topic, Message="a", MessageAttributes={"x": {"DataType": "String", "StringValue": "1"}})
    sns.publish(TopicArn=topic, Message="b")
    text = requests.get(broker.url("/metrics")).text
    assert "floodgate_broker_sns_publishes_total 2" in text
    assert 'floodgate_broker_sns_deliveries_total{protocol="sqs"} 1' in text
    assert "floodgate_broker_sns_filtered_total 1" in text
    assert "floodgate_broker_sns_topics 1" in text
