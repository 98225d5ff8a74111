"""SQS scenarios run by boto3 against the broker, once per AWS protocol.

test_broker_sqs_boto3.py (query protocol) and test_broker_sqs_json.py
(JSON 1.0) import everything from here and define the module-scoped
`protocol` fixture; pytest collects the test_* functions in each. Every
test uses its own queues on one broker per module.
"""

import json
import re
import threading
import time

import pytest
from botocore.exceptions import ClientError

from fgtest import scaled
from sqstest import (ACCOUNT, REGION, Broker, boto3_client, error_code, md5_of_attributes,
                     md5_of_body, model_dir)

__all__ = [
    "broker", "model", "sqs", "qname", "make_queue",
    "test_create_list_get_url", "test_queue_attributes_and_tags",
    "test_send_receive_with_attributes", "test_send_batch_and_delete_batch",
    "test_batch_errors", "test_long_poll_woken_by_send", "test_long_poll_times_out_empty",
    "test_visibility_timeout_and_receive_count", "test_change_visibility",
    "test_delay_queue_and_message", "test_redrive_to_dlq_and_move_back",
    "test_fifo_group_order_and_dedup", "test_purge_and_delete_queue", "test_errors",
    "test_approximate_counts", "test_many_long_polls_each_woken",
    "test_long_poll_gets_message_becoming_visible", "test_request_id",
]


@pytest.fixture(scope="module")
def broker():
    b = Broker()
    yield b
    rc = b.stop()
    assert rc == 0, f"broker exited with {rc}\n{b.log()}"


@pytest.fixture(scope="module")
def model(protocol):
    import shutil

    d = model_dir(protocol)
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def sqs(broker, model):
    return boto3_client(broker.endpoint, model)


_seq = [0]


@pytest.fixture
def qname(request):
    """A fresh queue name prefix for this test."""
    _seq[0] += 1
    base = re.sub(r"[^A-Za-z0-9_-]", "-", request.node.name)[:50]
    return f"{base}-{_seq[0]}"


def make_queue(sqs, name, **attrs):
    kw = {"QueueName": name}
    if attrs:
        kw["Attributes"] = {k: str(v) for k, v in attrs.items()}
    return sqs.create_queue(**kw)["QueueUrl"]


def receive_all(sqs, url, want, timeout=5.0, **kw):
    """Receives until `want` messages came or timeout (scaled) passed."""
    got = []
    deadline = time.monotonic() + scaled(timeout)
    while len(got) < want and time.monotonic() < deadline:
        r = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=min(10, want - len(got)),
                                WaitTimeSeconds=1, **kw)
        got += r.get("Messages", [])
    return got


def attrs_of(sqs, url, *names):
    r = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=list(names) or ["All"])
    return r["Attributes"]


def check_message_md5s(m):
    assert m["MD5OfBody"] == md5_of_body(m["Body"])
    want = md5_of_attributes(m.get("MessageAttributes"))
    assert m.get("MD5OfMessageAttributes") == want


# ---- queues ----

def test_create_list_get_url(sqs, broker, qname):
    url = make_queue(sqs, qname, VisibilityTimeout=7)
    assert url == broker.queue_url(qname)
    # same name, same attributes: the existing queue
    assert make_queue(sqs, qname, VisibilityTimeout=7) == url
    # same name, other attributes: refused
    with pytest.raises(ClientError) as e:
        make_queue(sqs, qname, VisibilityTimeout=8)
    assert error_code(e.value) == "QueueAlreadyExists"
    fifo = make_queue(sqs, qname + ".fifo", FifoQueue="true")
    other = make_queue(sqs, "zz" + qname)
    urls = sqs.list_queues().get("QueueUrls", [])
    assert url in urls and fifo in urls and other in urls
    pref = sqs.list_queues(QueueNamePrefix=qname).get("QueueUrls", [])
    assert sorted(pref) == sorted([url, fifo])
    assert sqs.get_queue_url(QueueName=qname)["QueueUrl"] == url
    assert sqs.get_queue_url(QueueName=qname + ".fifo",
                             QueueOwnerAWSAccountId=ACCOUNT)["QueueUrl"] == fifo


def test_queue_attributes_and_tags(sqs, qname):
    url = sqs.create_queue(QueueName=qname, Attributes={"DelaySeconds": "0",
                                                        "MessageRetentionPeriod": "3600"},
                           tags={"team": "shop", "env": "test"})["QueueUrl"]
    a = attrs_of(sqs, url)
    assert a["QueueArn"] == f"arn:aws:sqs:{REGION}:{ACCOUNT}:{qname}"
    assert a["VisibilityTimeout"] == "30"
    assert a["MessageRetentionPeriod"] == "3600"
    assert a["MaximumMessageSize"] == "262144"
    assert a["ApproximateNumberOfMessages"] == "0"
    for k in ("CreatedTimestamp", "LastModifiedTimestamp", "ReceiveMessageWaitTimeSeconds",
              "ApproximateNumberOfMessagesNotVisible", "ApproximateNumberOfMessagesDelayed"):
        assert k in a, k
    assert set(attrs_of(sqs, url, "VisibilityTimeout")) == {"VisibilityTimeout"}
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"VisibilityTimeout": "45",
                                                       "ReceiveMessageWaitTimeSeconds": "2"})
    a = attrs_of(sqs, url, "VisibilityTimeout", "ReceiveMessageWaitTimeSeconds")
    assert a == {"VisibilityTimeout": "45", "ReceiveMessageWaitTimeSeconds": "2"}
    with pytest.raises(ClientError) as e:
        sqs.set_queue_attributes(QueueUrl=url, Attributes={"VisibilityTimeout": "99999"})
    assert error_code(e.value) == "InvalidAttributeValue"
    with pytest.raises(ClientError) as e:
        sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["NoSuchAttribute"])
    assert error_code(e.value) == "InvalidAttributeName"
    assert sqs.list_queue_tags(QueueUrl=url)["Tags"] == {"team": "shop", "env": "test"}
    sqs.tag_queue(QueueUrl=url, Tags={"team": "ops", "tier": "1"})
    sqs.untag_queue(QueueUrl=url, TagKeys=["env"])
    assert sqs.list_queue_tags(QueueUrl=url)["Tags"] == {"team": "ops", "tier": "1"}


# ---- messages ----

ATTRS = {
    "city": {"DataType": "String", "StringValue": "Any City \u2713 <&>"},
    "population": {"DataType": "Number", "StringValue": "1250800"},
    "blob": {"DataType": "Binary", "BinaryValue": b"\x00\x01\xfe\xff"},
    "Custom.Label": {"DataType": "String.custom", "StringValue": "x"},
}


def test_send_receive_with_attributes(sqs, qname):
    url = make_queue(sqs, qname)
    body = 'Information about "the" <largest> city & more \u00e9\u2713 \U0001f600\r\nline2'
    r = sqs.send_message(QueueUrl=url, MessageBody=body, MessageAttributes=ATTRS)
    assert r["MD5OfMessageBody"] == md5_of_body(body)
    assert r["MD5OfMessageAttributes"] == md5_of_attributes(ATTRS)
    assert re.fullmatch(r"[0-9a-f-]{36}", r["MessageId"])
    msgs = receive_all(sqs, url, 1, MessageAttributeNames=["All"], AttributeNames=["All"])
    assert len(msgs) == 1
    m = msgs[0]
    assert m["MessageId"] == r["MessageId"]
    assert m["Body"] == body
    assert m["MessageAttributes"] == ATTRS
    check_message_md5s(m)
    assert m["Attributes"]["ApproximateReceiveCount"] == "1"
    for k in ("SentTimestamp", "ApproximateFirstReceiveTimestamp", "SenderId"):
        assert k in m["Attributes"], k
    # only the named attributes come back, and the digest covers those
    sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"],
                                  VisibilityTimeout=0)
    m2 = receive_all(sqs, url, 1, MessageAttributeNames=["city", "blob"])[0]
    assert set(m2["MessageAttributes"]) == {"city", "blob"}
    check_message_md5s(m2)
    sqs.delete_message(QueueUrl=url, ReceiptHandle=m2["ReceiptHandle"])
    assert sqs.receive_message(QueueUrl=url, WaitTimeSeconds=0).get("Messages", []) == []


def test_send_batch_and_delete_batch(sqs, qname):
    url = make_queue(sqs, qname)
    entries = [{"Id": f"e{i}", "MessageBody": f"body {i}"} for i in range(10)]
    entries[3]["MessageAttributes"] = {"k": {"DataType": "String", "StringValue": "v3"}}
    entries[4]["DelaySeconds"] = 0
    r = sqs.send_message_batch(QueueUrl=url, Entries=entries)
    assert not r.get("Failed")
    ok = {e["Id"]: e for e in r["Successful"]}
    assert set(ok) == {e["Id"] for e in entries}
    for e in entries:
        assert ok[e["Id"]]["MD5OfMessageBody"] == md5_of_body(e["MessageBody"])
        assert ok[e["Id"]].get("MD5OfMessageAttributes") == \
            md5_of_attributes(e.get("MessageAttributes"))
    msgs = receive_all(sqs, url, 10, MessageAttributeNames=["All"])
    assert sorted(m["Body"] for m in msgs) == sorted(e["MessageBody"] for e in entries)
    for m in msgs:
        check_message_md5s(m)
    dels = [{"Id": f"d{i}", "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(msgs)]
    r = sqs.delete_message_batch(QueueUrl=url, Entries=dels[:9] + [
        {"Id": "bogus", "ReceiptHandle": "not-a-receipt-handle"}])
    assert {e["Id"] for e in r["Successful"]} == {f"d{i}" for i in range(9)}
    assert [(f["Id"], f["Code"], f["SenderFault"]) for f in r["Failed"]] == \
        [("bogus", "ReceiptHandleIsInvalid", True)]
    r = sqs.delete_message_batch(QueueUrl=url, Entries=dels[9:])
    assert [e["Id"] for e in r["Successful"]] == ["d9"] and not r.get("Failed")
    assert attrs_of(sqs, url, "ApproximateNumberOfMessages")["ApproximateNumberOfMessages"] == "0"


def test_batch_errors(sqs, qname):
    url = make_queue(sqs, qname)
    too_many = [{"Id": f"e{i}", "MessageBody": "x"} for i in range(11)]
    cases = [
        (too_many, "AWS.SimpleQueueService.TooManyEntriesInBatchRequest"),
        ([{"Id": "a", "MessageBody": "x"}, {"Id": "a", "MessageBody": "y"}],
         "AWS.SimpleQueueService.BatchEntryIdsNotDistinct"),
        ([{"Id": "bad id!", "MessageBody": "x"}], "AWS.SimpleQueueService.InvalidBatchEntryId"),
        ([], "AWS.SimpleQueueService.EmptyBatchRequest"),
    ]
    for entries, code in cases:
        with pytest.raises(ClientError) as e:
            sqs.send_message_batch(QueueUrl=url, Entries=entries)
        assert error_code(e.value) == code, entries
    # one bad entry fails alone
    big = "x" * (200 * 1024)
    r = sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": "ok", "MessageBody": "fine"},
                                                      {"Id": "bad", "MessageBody": "a\x01b"}])
    assert [e["Id"] for e in r["Successful"]] == ["ok"]
    assert [(f["Id"], f["SenderFault"]) for f in r["Failed"]] == [("bad", True)]
    with pytest.raises(ClientError) as e:
        sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": "a", "MessageBody": big},
                                                      {"Id": "b", "MessageBody": big}])
    assert error_code(e.value) == "AWS.SimpleQueueService.BatchRequestTooLong"


def test_long_poll_woken_by_send(sqs, broker, model, qname):
    url = make_queue(sqs, qname)
    out = {}

    def receiver():
        c = boto3_client(broker.endpoint, model)
        t0 = time.monotonic()
        out["r"] = c.receive_message(QueueUrl=url, WaitTimeSeconds=10)
        out["t"] = time.monotonic() - t0

    parked = broker.long_polls()
    th = threading.Thread(target=receiver)
    th.start()
    broker.wait_long_polls(parked + 1)  # the receiver is parked on the empty queue
    assert th.is_alive(), "the long poll returned before anything was sent"
    sent = time.monotonic()
    sqs.send_message(QueueUrl=url, MessageBody="wake up")
    th.join(scaled(12))
    assert not th.is_alive()
    woke = time.monotonic() - sent
    assert [m["Body"] for m in out["r"]["Messages"]] == ["wake up"]
    assert woke < 5, f"woken {woke:.3f}s after the send"  # not at the end of its 10 s


def test_long_poll_times_out_empty(sqs, qname):
    # Waits of 4 s (the queue's), 0 and the 20 s maximum are far enough
    # apart that a busy machine cannot pass one for another.
    url = make_queue(sqs, qname, ReceiveMessageWaitTimeSeconds=4)
    t0 = time.monotonic()
    r = sqs.receive_message(QueueUrl=url)  # the queue's default wait
    dt = time.monotonic() - t0
    assert r.get("Messages", []) == []
    assert 3.9 <= dt < 12, dt
    t0 = time.monotonic()
    sqs.receive_message(QueueUrl=url, WaitTimeSeconds=0)
    assert time.monotonic() - t0 < 3.9  # not the queue's 4 s (its lower bound above)
    with pytest.raises(ClientError) as e:
        sqs.receive_message(QueueUrl=url, WaitTimeSeconds=21)
    assert error_code(e.value) == "InvalidParameterValue"


def test_visibility_timeout_and_receive_count(sqs, qname):
    url = make_queue(sqs, qname, VisibilityTimeout=1)
    mid = sqs.send_message(QueueUrl=url, MessageBody="again")["MessageId"]
    m1 = receive_all(sqs, url, 1, AttributeNames=["ApproximateReceiveCount"])[0]
    assert m1["MessageId"] == mid and m1["Attributes"]["ApproximateReceiveCount"] == "1"
    # invisible while in flight
    assert sqs.receive_message(QueueUrl=url, WaitTimeSeconds=0).get("Messages", []) == []
    a = attrs_of(sqs, url, "ApproximateNumberOfMessagesNotVisible")
    assert a["ApproximateNumberOfMessagesNotVisible"] == "1"
    time.sleep(1.2)
    m2 = receive_all(sqs, url, 1, AttributeNames=["All"])[0]
    assert m2["MessageId"] == mid and m2["Attributes"]["ApproximateReceiveCount"] == "2"
    assert m2["ReceiptHandle"] != m1["ReceiptHandle"]
    sqs.delete_message(QueueUrl=url, ReceiptHandle=m2["ReceiptHandle"])
    # a receive-level VisibilityTimeout overrides the queue's
    sqs.send_message(QueueUrl=url, MessageBody="long")
    receive_all(sqs, url, 1, VisibilityTimeout=30)
    time.sleep(1.2)
    assert sqs.receive_message(QueueUrl=url, WaitTimeSeconds=0).get("Messages", []) == []


def test_change_visibility(sqs, qname):
    url = make_queue(sqs, qname, VisibilityTimeout=30)
    sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": "a", "MessageBody": "a"},
                                                  {"Id": "b", "MessageBody": "b"}])
    msgs = receive_all(sqs, url, 2)
    assert len(msgs) == 2
    sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=msgs[0]["ReceiptHandle"],
                                  VisibilityTimeout=0)
    again = receive_all(sqs, url, 1)
    assert [m["MessageId"] for m in again] == [msgs[0]["MessageId"]]
    r = sqs.change_message_visibility_batch(QueueUrl=url, Entries=[
        {"Id": "x", "ReceiptHandle": msgs[1]["ReceiptHandle"], "VisibilityTimeout": 0},
        {"Id": "y", "ReceiptHandle": again[0]["ReceiptHandle"], "VisibilityTimeout": 0},
        {"Id": "z", "ReceiptHandle": "garbage", "VisibilityTimeout": 0},
    ])
    assert {e["Id"] for e in r["Successful"]} == {"x", "y"}
    assert [(f["Id"], f["Code"]) for f in r["Failed"]] == [("z", "ReceiptHandleIsInvalid")]
    assert len(receive_all(sqs, url, 2)) == 2
    with pytest.raises(ClientError) as e:
        sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=msgs[0]["ReceiptHandle"],
                                      VisibilityTimeout=43201)
    assert error_code(e.value) == "InvalidParameterValue"


def test_delay_queue_and_message(sqs, qname):
    url = make_queue(sqs, qname, DelaySeconds=1)
    sqs.send_message(QueueUrl=url, MessageBody="queue delay")
    sqs.send_message(QueueUrl=url, MessageBody="no delay", DelaySeconds=0)
    first = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=0, MaxNumberOfMessages=10)
    assert [m["Body"] for m in first.get("Messages", [])] == ["no delay"]
    a = attrs_of(sqs, url, "ApproximateNumberOfMessagesDelayed")
    assert a["ApproximateNumberOfMessagesDelayed"] == "1"
    later = receive_all(sqs, url, 1)
    assert [m["Body"] for m in later] == ["queue delay"]
    with pytest.raises(ClientError) as e:
        sqs.send_message(QueueUrl=url, MessageBody="x", DelaySeconds=901)
    assert error_code(e.value) == "InvalidParameterValue"


def test_redrive_to_dlq_and_move_back(sqs, broker, qname):
    dlq = make_queue(sqs, qname + "-dlq")
    dlq_arn = attrs_of(sqs, dlq, "QueueArn")["QueueArn"]
    policy = '{"deadLetterTargetArn":"%s","maxReceiveCount":"2"}' % dlq_arn
    src = make_queue(sqs, qname, RedrivePolicy=policy)
    src_arn = attrs_of(sqs, src, "QueueArn")["QueueArn"]
    rp = json.loads(attrs_of(sqs, src, "RedrivePolicy")["RedrivePolicy"])
    assert rp["deadLetterTargetArn"] == dlq_arn and int(rp["maxReceiveCount"]) == 2
    mid = sqs.send_message(QueueUrl=src, MessageBody="poison")["MessageId"]
    for n in (1, 2):
        m = receive_all(sqs, src, 1, VisibilityTimeout=0, AttributeNames=["All"])
        assert [x["MessageId"] for x in m] == [mid]
        assert m[0]["Attributes"]["ApproximateReceiveCount"] == str(n)
    # the third receive moves it to the dead-letter queue instead
    assert sqs.receive_message(QueueUrl=src, WaitTimeSeconds=1).get("Messages", []) == []
    dead = receive_all(sqs, dlq, 1, VisibilityTimeout=0)
    assert [x["MessageId"] for x in dead] == [mid]
    assert dead[0]["Body"] == "poison"
    assert sqs.list_dead_letter_source_queues(QueueUrl=dlq)["queueUrls"] == [src]
    # and back to its source
    task = sqs.start_message_move_task(SourceArn=dlq_arn)["TaskHandle"]
    assert task
    back = receive_all(sqs, src, 1, timeout=10)
    assert [x["MessageId"] for x in back] == [mid]
    tasks = sqs.list_message_move_tasks(SourceArn=dlq_arn)["Results"]
    assert tasks and tasks[0]["SourceArn"] == dlq_arn
    assert tasks[0]["Status"] in ("RUNNING", "COMPLETED")
    assert tasks[0].get("DestinationArn", src_arn) == src_arn


def test_fifo_group_order_and_dedup(sqs, qname):
    url = make_queue(sqs, qname + ".fifo", FifoQueue="true", VisibilityTimeout=30)
    for g, n in (("g1", 4), ("g2", 3)):
        for i in range(n):
            r = sqs.send_message(QueueUrl=url, MessageBody=f"{g}-{i}", MessageGroupId=g,
                                 MessageDeduplicationId=f"{g}-{i}")
            assert r["SequenceNumber"]
    # a duplicate within five minutes is accepted and dropped
    dup = sqs.send_message(QueueUrl=url, MessageBody="g1-0 again", MessageGroupId="g1",
                           MessageDeduplicationId="g1-0")
    assert dup["MessageId"]
    got = receive_all(sqs, url, 7, AttributeNames=["All"])
    bodies = [m["Body"] for m in got]
    assert sorted(bodies) == sorted([f"g1-{i}" for i in range(4)] + [f"g2-{i}" for i in range(3)])
    for g in ("g1", "g2"):
        seq = [b for b in bodies if b.startswith(g)]
        assert seq == sorted(seq), f"group {g} out of order: {seq}"
    for m in got:
        assert m["Attributes"]["MessageGroupId"] in ("g1", "g2")
        assert "SequenceNumber" in m["Attributes"]
    # while a group has messages in flight, the rest of it waits
    sqs.send_message(QueueUrl=url, MessageBody="g3-0", MessageGroupId="g3",
                     MessageDeduplicationId="g3-0")
    sqs.send_message(QueueUrl=url, MessageBody="g3-1", MessageGroupId="g3",
                     MessageDeduplicationId="g3-1")
    one = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1, WaitTimeSeconds=1)["Messages"]
    assert [m["Body"] for m in one] == ["g3-0"]
    assert sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10,
                               WaitTimeSeconds=0).get("Messages", []) == []
    sqs.delete_message(QueueUrl=url, ReceiptHandle=one[0]["ReceiptHandle"])
    nxt = receive_all(sqs, url, 1)
    assert [m["Body"] for m in nxt] == ["g3-1"]
    with pytest.raises(ClientError) as e:
        sqs.send_message(QueueUrl=url, MessageBody="no group")
    assert error_code(e.value) in ("MissingParameter", "InvalidParameterValue")
    # content-based deduplication
    cb = make_queue(sqs, qname + "-cb.fifo", FifoQueue="true", ContentBasedDeduplication="true")
    for _ in range(2):
        assert sqs.send_message(QueueUrl=cb, MessageBody="same", MessageGroupId="g")["MessageId"]
    assert [m["Body"] for m in receive_all(sqs, cb, 2, timeout=2)] == ["same"]
    # FIFO batch sends
    r = sqs.send_message_batch(QueueUrl=cb, Entries=[
        {"Id": "1", "MessageBody": "b1", "MessageGroupId": "h"},
        {"Id": "2", "MessageBody": "b2", "MessageGroupId": "h"}])
    assert len(r["Successful"]) == 2 and all(e["SequenceNumber"] for e in r["Successful"])


def test_purge_and_delete_queue(sqs, qname):
    url = make_queue(sqs, qname)
    for i in range(3):
        sqs.send_message(QueueUrl=url, MessageBody=str(i))
    sqs.purge_queue(QueueUrl=url)
    assert sqs.receive_message(QueueUrl=url, WaitTimeSeconds=0).get("Messages", []) == []
    assert attrs_of(sqs, url, "ApproximateNumberOfMessages")["ApproximateNumberOfMessages"] == "0"
    sqs.delete_queue(QueueUrl=url)
    with pytest.raises(sqs.exceptions.QueueDoesNotExist):
        sqs.get_queue_url(QueueName=qname)
    with pytest.raises(sqs.exceptions.QueueDoesNotExist):
        sqs.send_message(QueueUrl=url, MessageBody="gone")
    assert url not in sqs.list_queues().get("QueueUrls", [])


def test_errors(sqs, broker, qname):
    missing = broker.queue_url("no-such-queue-" + qname)
    with pytest.raises(sqs.exceptions.QueueDoesNotExist):
        sqs.get_queue_url(QueueName="no-such-queue-" + qname)
    with pytest.raises(sqs.exceptions.QueueDoesNotExist):
        sqs.receive_message(QueueUrl=missing)
    with pytest.raises(sqs.exceptions.QueueDoesNotExist):
        sqs.purge_queue(QueueUrl=missing)
    url = make_queue(sqs, qname)
    with pytest.raises(ClientError) as e:
        sqs.delete_message(QueueUrl=url, ReceiptHandle="not-a-handle")
    assert error_code(e.value) == "ReceiptHandleIsInvalid"
    with pytest.raises(ClientError) as e:
        sqs.send_message(QueueUrl=url, MessageBody="x" * (256 * 1024 + 1))
    assert error_code(e.value) == "InvalidParameterValue"
    with pytest.raises(ClientError) as e:
        sqs.send_message(QueueUrl=url, MessageBody="bad \x01 char")
    assert error_code(e.value) == "InvalidMessageContents"
    with pytest.raises(ClientError) as e:
        sqs.send_message(QueueUrl=url, MessageBody="x", MessageAttributes={
            "AWS.reserved": {"DataType": "String", "StringValue": "v"}})
    assert error_code(e.value) == "InvalidParameterValue"
    with pytest.raises(ClientError) as e:
        sqs.create_queue(QueueName="bad name!")
    assert error_code(e.value) == "InvalidParameterValue"
    with pytest.raises(ClientError) as e:
        sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=11)
    assert error_code(e.value) == "InvalidParameterValue"
    # permissions mean nothing to a single-account broker: accepted and ignored
    sqs.add_permission(QueueUrl=url, Label="l", AWSAccountIds=["111122223333"],
                       Actions=["SendMessage"])
    sqs.remove_permission(QueueUrl=url, Label="l")
    # the largest message fits
    body = "y" * (256 * 1024)
    assert sqs.send_message(QueueUrl=url, MessageBody=body)["MD5OfMessageBody"] == \
        md5_of_body(body)


def test_approximate_counts(sqs, qname):
    url = make_queue(sqs, qname, VisibilityTimeout=30)
    for i in range(3):
        sqs.send_message(QueueUrl=url, MessageBody=str(i))
    sqs.send_message(QueueUrl=url, MessageBody="later", DelaySeconds=60)
    assert len(sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1,
                                   WaitTimeSeconds=1)["Messages"]) == 1
    a = attrs_of(sqs, url, "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
                 "ApproximateNumberOfMessagesDelayed")
    assert a == {"ApproximateNumberOfMessages": "2", "ApproximateNumberOfMessagesNotVisible": "1",
                 "ApproximateNumberOfMessagesDelayed": "1"}


def test_many_long_polls_each_woken(sqs, broker, model, qname):
    url = make_queue(sqs, qname)
    got, errors = [], []
    lock = threading.Lock()

    def receiver():
        try:
            c = boto3_client(broker.endpoint, model)
            r = c.receive_message(QueueUrl=url, WaitTimeSeconds=20, MaxNumberOfMessages=1)
            with lock:
                got.extend(m["Body"] for m in r.get("Messages", []))
        except Exception as e:  # reported below
            errors.append(e)

    parked = broker.long_polls()
    ths = [threading.Thread(target=receiver) for _ in range(5)]
    for t in ths:
        t.start()
    broker.wait_long_polls(parked + 5)
    sent = time.monotonic()
    sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": f"m{i}"}
                                                  for i in range(5)])
    for t in ths:
        t.join(scaled(25))
    assert not errors, errors
    assert sorted(got) == [f"m{i}" for i in range(5)], got
    assert time.monotonic() - sent < 15  # woken, not at the end of their 20 s


def test_long_poll_gets_message_becoming_visible(sqs, qname):
    url = make_queue(sqs, qname, VisibilityTimeout=1)
    sqs.send_message(QueueUrl=url, MessageBody="comes back")
    assert len(receive_all(sqs, url, 1)) == 1
    # Received at all means woken when it became visible: an empty wait
    # would return nothing.
    r = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=10)
    assert [m["Body"] for m in r.get("Messages", [])] == ["comes back"]
    sqs.delete_message(QueueUrl=url, ReceiptHandle=r["Messages"][0]["ReceiptHandle"])
    # and a delayed message too
    sqs.send_message(QueueUrl=url, MessageBody="delayed", DelaySeconds=1)
    r = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=10, VisibilityTimeout=30)
    assert [m["Body"] for m in r.get("Messages", [])] == ["delayed"]


def test_request_id(sqs, broker, model):
    r = sqs.list_queues()
    assert r["ResponseMetadata"]["RequestId"]
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 200
    # queue URLs name the host the client used
    c = boto3_client(broker.endpoint.replace("127.0.0.1", "localhost"), model)
    url = c.create_queue(QueueName="host-named")["QueueUrl"]
    assert url == f"http://localhost:{broker.port}/{ACCOUNT}/host-named"
