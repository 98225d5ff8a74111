"""End-to-end tests of SNS fan-out into broker queues, with boto3.

A topic fanned out to three queues each drained by its own consumer (long
polling), filter policies routing as specified (message attributes and
message body), FIFO topics keeping order per message group into FIFO
queues, raw delivery and per-protocol messages."""

import json
import shutil
import tempfile
import threading
import time

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from fgtest import free_port, scaled, start

QUEUE_PREFIX = "arn:aws:sqs:us-east-1:000000000000:"


@pytest.fixture
def broker():
    d = tempfile.mkdtemp(prefix="fg-sns-")
    port = free_port()
    srv = start(["broker", "--listen", f"127.0.0.1:{port}", "--data", d], port=port)
    deadline = time.monotonic() + scaled(15)
    while "listening on" not in srv.log():
        assert time.monotonic() < deadline, srv.log()
        time.sleep(0.02)
    try:
        client(srv, "sns").list_topics()
    except ClientError:
        srv.stop()
        shutil.rmtree(d, ignore_errors=True)
        raise
    yield srv
    srv.stop()
    shutil.rmtree(d, ignore_errors=True)


def client(srv, service):
    return boto3.client(service, region_name="us-east-1", endpoint_url=srv.url(""),
                        aws_access_key_id="x", aws_secret_access_key="y",
                        config=Config(retries={"total_max_attempts": 1}, max_pool_connections=4))


def queue(sqs, name, attrs=None):
    url = sqs.create_queue(QueueName=name, Attributes=attrs or {})["QueueUrl"]
    return url, QUEUE_PREFIX + name


def attr(kind, value):
    if kind == "Number":
        return {"DataType": "Number", "StringValue": str(value)}
    if kind == "String.Array":
        return {"DataType": "String.Array", "StringValue": json.dumps(value)}
    return {"DataType": "String", "StringValue": value}


def drain(sqs, url, idle=2.0, limit=60):
    """Receives (long polling) and deletes until the queue stays empty for
    idle seconds; returns the messages."""
    got = []
    last = time.monotonic()
    stop = time.monotonic() + scaled(limit)
    while time.monotonic() - last < scaled(idle) and time.monotonic() < stop:
        r = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1,
                                MessageAttributeNames=["All"], AttributeNames=["All"])
        msgs = r.get("Messages", [])
        if msgs:
            last = time.monotonic()
            sqs.delete_message_batch(QueueUrl=url, Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(msgs)])
            got.extend(msgs)
    return got


def test_fanout_three_queues_three_consumers(broker):
    sns, sqs = client(broker, "sns"), client(broker, "sqs")
    topic = sns.create_topic(Name="payments")["TopicArn"]
    names = ["email", "sms", "analytics"]
    urls = {}
    for n in names:
        urls[n], arn = queue(sqs, n)
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn,
                      Attributes={"RawMessageDelivery": "true" if n == "analytics" else "false"})
    total = 300
    received = {n: [] for n in names}
    publishing = threading.Event()
    publishing.set()

    def consume(n):
        c = client(broker, "sqs")
        idle_since = None
        while True:
            r = c.receive_message(QueueUrl=urls[n], MaxNumberOfMessages=10, WaitTimeSeconds=1)
            msgs = r.get("Messages", [])
            for m in msgs:
                body = m["Body"] if n == "analytics" else json.loads(m["Body"])["Message"]
                received[n].append(body)
                c.delete_message(QueueUrl=urls[n], ReceiptHandle=m["ReceiptHandle"])
            if msgs or publishing.is_set():
                idle_since = None
            elif idle_since is None:
                idle_since = time.monotonic()
            elif time.monotonic() - idle_since > scaled(2):
                return

    consumers = [threading.Thread(target=consume, args=(n,)) for n in names]
    for t in consumers:
        t.start()

    def publish(part):
        c = client(broker, "sns")
        for i in range(part, total, 2):
            c.publish(TopicArn=topic, Message=f"payment.succeeded #{i}")

    publishers = [threading.Thread(target=publish, args=(p,)) for p in range(2)]
    for t in publishers:
        t.start()
    for t in publishers:
        t.join()
    publishing.clear()
    for t in consumers:
        t.join(timeout=scaled(60))
    want = sorted(f"payment.succeeded #{i}" for i in range(total))
    for n in names:
        assert sorted(received[n]) == want, f"{n}: {len(received[n])} of {total}"


def test_filter_policies_route(broker):
    sns, sqs = client(broker, "sns"), client(broker, "sqs")
    topic = sns.create_topic(Name="orders")["TopicArn"]
    policies = {
        # big successful payments
        "big": ({"event": ["payment.succeeded"], "amount": [{"numeric": [">=", 100]}]}, None),
        # anything but refunds, from stores whose name starts with "eu-"
        "eu": ({"event": [{"anything-but": ["refund"]}], "store": [{"prefix": "eu-"}]}, None),
        # customers interested in rugby or tennis (String.Array), or VIPs
        "sport": ({"$or": [{"interests": ["rugby", "tennis"]}, {"vip": [{"exists": True}]}]}, None),
        # body filtering on a nested JSON payload
        "body": ({"order": {"country": ["FR", "DE"], "total": [{"numeric": [">", 50]}]}}, "MessageBody"),
        "all": (None, None),
    }
    urls = {}
    for name, (policy, scope) in policies.items():
        urls[name], arn = queue(sqs, f"route-{name}")
        attrs = {"RawMessageDelivery": "true"}
        if policy:
            attrs["FilterPolicy"] = json.dumps(policy)
        if scope:
            attrs["FilterPolicyScope"] = scope
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn, Attributes=attrs)
    messages = [
        ("m1", {"event": attr("String", "payment.succeeded"), "amount": attr("Number", 150),
                "store": attr("String", "eu-paris")}, {"order": {"country": "FR", "total": 150}}),
        ("m2", {"event": attr("String", "payment.succeeded"), "amount": attr("Number", 99.99)},
         {"order": {"country": "US", "total": 99}}),
        ("m3", {"event": attr("String", "refund"), "store": attr("String", "eu-berlin"),
                "interests": attr("String.Array", ["chess", "tennis"])}, {"order": {"country": "DE", "total": 20}}),
        ("m4", {"vip": attr("String", "yes"), "store": attr("String", "us-nyc")},
         {"order": [{"country": "IT"}, {"country": "DE", "total": 70}]}),
        ("m5", {}, "not json at all"),
    ]
    for mid, attrs, body in messages:
        text = body if isinstance(body, str) else json.dumps(dict(body, id=mid))
        kw = {"MessageAttributes": attrs} if attrs else {}
        sns.publish(TopicArn=topic, Message=text, **kw)
    got = {}
    for name, url in urls.items():
        ids = set()
        for m in drain(sqs, url):
            try:
                ids.add(json.loads(m["Body"])["id"])
            except (ValueError, KeyError):
                ids.add("m5")
        got[name] = ids
    assert got["big"] == {"m1"}
    assert got["eu"] == {"m1"}, "m3 is a refund"
    assert got["sport"] == {"m3", "m4"}
    assert got["body"] == {"m1", "m4"}, "m4: arrays in the body are looked through"
    assert got["all"] == {"m1", "m2", "m3", "m4", "m5"}


def test_fifo_topic_keeps_group_order(broker):
    sns, sqs = client(broker, "sns"), client(broker, "sqs")
    topic = sns.create_topic(Name="ledger.fifo", Attributes={"FifoTopic": "true"})["TopicArn"]
    urls = []
    for n in ["ledger-a.fifo", "ledger-b.fifo"]:
        url, arn = queue(sqs, n, {"FifoQueue": "true"})
        urls.append(url)
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn, Attributes={"RawMessageDelivery": "true"})
    seqs = []
    for i in range(40):
        group = "acct-" + "xyz"[i % 3]
        r = sns.publish(TopicArn=topic, Message=f"{group}:{i}", MessageGroupId=group,
                        MessageDeduplicationId=f"d{i}")
        seqs.append(int(r["SequenceNumber"]))
    assert seqs == sorted(seqs) and len(set(seqs)) == 40, "sequence numbers increase"
    dup = sns.publish(TopicArn=topic, Message="acct-x:0", MessageGroupId="acct-x", MessageDeduplicationId="d0")
    assert int(dup["SequenceNumber"]) == seqs[0], "a duplicate answers as the original"
    for url in urls:
        per_group = {}
        for m in drain(sqs, url):
            group, i = m["Body"].split(":")
            assert m["Attributes"]["MessageGroupId"] == group
            per_group.setdefault(group, []).append(int(i))
        assert sum(len(v) for v in per_group.values()) == 40, "the duplicate was not delivered"
        for group, order in per_group.items():
            assert order == sorted(order), f"{group} out of order: {order}"


def test_message_structure_and_raw(broker):
    sns, sqs = client(broker, "sns"), client(broker, "sqs")
    topic = sns.create_topic(Name="multi")["TopicArn"]
    raw_url, raw_arn = queue(sqs, "multi-raw")
    env_url, env_arn = queue(sqs, "multi-env")
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=raw_arn, Attributes={"RawMessageDelivery": "true"})
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=env_arn)
    sns.publish(TopicArn=topic, MessageStructure="json",
                Message=json.dumps({"default": "for everyone", "sqs": "for queues"}),
                MessageAttributes={"k": attr("String", "v")})
    (raw,) = drain(sqs, raw_url)
    assert raw["Body"] == "for queues" and raw["MessageAttributes"]["k"]["StringValue"] == "v"
    (env,) = drain(sqs, env_url)
    e = json.loads(env["Body"])
    assert e["Message"] == "for queues" and e["MessageAttributes"]["k"] == {"Type": "String", "Value": "v"}
    assert "MessageAttributes" not in env, "attributes travel inside the envelope"


def test_deleted_queue_goes_to_dead_letter_queue(broker):
    sns, sqs = client(broker, "sns"), client(broker, "sqs")
    topic = sns.create_topic(Name="dlq-topic")["TopicArn"]
    url, arn = queue(sqs, "gone")
    dlq_url, dlq_arn = queue(sqs, "gone-dlq")
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn,
                  Attributes={"RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn})})
    sqs.delete_queue(QueueUrl=url)
    sns.publish(TopicArn=topic, Message="orphan")
    (m,) = drain(sqs, dlq_url)
    assert json.loads(m["Body"])["Message"] == "orphan"
