"""The broker's SQS API driven by the aws CLI 2.9 (/usr/bin/aws), once over
the AWS query protocol it speaks out of the box and once over JSON 1.0 (its
model switched by AWS_DATA_PATH, see sqstest.model_dir): queues, messages
with attributes (digests checked), long polling woken by a send, batches,
redrive to a dead-letter queue, FIFO groups, purge, delete and errors."""

import json
import os
import shutil
import subprocess
import time

import pytest
import requests

from fgtest import scaled
from gwtest import metric, parse_metrics, wait_until
from sqstest import ACCOUNT, Broker, md5_of_attributes, md5_of_body, model_dir

AWS = "/usr/bin/aws"


@pytest.fixture(scope="module")
def broker():
    b = Broker()
    yield b
    rc = b.stop()
    assert rc == 0, f"broker exited with {rc}\n{b.log()}"


# Every aws call pays the CLI's start-up (most of this file's time), so the
# sanitizer build drives the protocol the CLI speaks out of the box only;
# JSON 1.0 is covered there by test_broker_sqs_json.py (boto3).
PROTOCOLS = ["query"] if os.environ.get("FG_SANITIZED", "0") not in ("", "0") else ["query", "json"]


@pytest.fixture(scope="module", params=PROTOCOLS)
def cli(request, broker):
    d = model_dir(request.param)
    c = Cli(broker, d, request.param)
    yield c
    shutil.rmtree(d, ignore_errors=True)


class CliError(Exception):
    def __init__(self, rc, stderr):
        super().__init__(f"aws exited {rc}: {stderr}")
        self.rc = rc
        self.stderr = stderr


class Cli:
    def __init__(self, broker, data_path, protocol):
        self.broker = broker
        self.protocol = protocol
        self.env = dict(os.environ, AWS_ACCESS_KEY_ID="AKIDEXAMPLE",
                        AWS_SECRET_ACCESS_KEY="secret", AWS_DEFAULT_REGION="us-east-1",
                        AWS_DATA_PATH=data_path, AWS_PAGER="", AWS_MAX_ATTEMPTS="1",
                        AWS_CONFIG_FILE="/dev/null", AWS_SHARED_CREDENTIALS_FILE="/dev/null")

    def argv(self, *args):
        return [AWS, "--endpoint-url", self.broker.endpoint, "--output", "json", "sqs",
                *map(str, args)]

    def __call__(self, *args, timeout=60):
        r = subprocess.run(self.argv(*args), env=self.env, capture_output=True, text=True,
                           timeout=scaled(timeout))
        if r.returncode != 0:
            raise CliError(r.returncode, r.stderr)
        return json.loads(r.stdout) if r.stdout.strip() else {}

    def name(self, base):
        return f"cli-{self.protocol}-{base}"


def test_queues(cli):
    q = cli.name("q")
    url = cli("create-queue", "--queue-name", q, "--attributes",
              "VisibilityTimeout=9,DelaySeconds=0")["QueueUrl"]
    assert url == cli.broker.queue_url(q)
    fifo = cli("create-queue", "--queue-name", q + ".fifo", "--attributes",
               "FifoQueue=true,ContentBasedDeduplication=true")["QueueUrl"]
    urls = cli("list-queues", "--queue-name-prefix", q)["QueueUrls"]
    assert sorted(urls) == sorted([url, fifo])
    assert cli("get-queue-url", "--queue-name", q)["QueueUrl"] == url
    a = cli("get-queue-attributes", "--queue-url", url, "--attribute-names", "All")["Attributes"]
    assert a["VisibilityTimeout"] == "9"
    assert a["QueueArn"] == f"arn:aws:sqs:us-east-1:{ACCOUNT}:{q}"
    cli("set-queue-attributes", "--queue-url", url, "--attributes", "VisibilityTimeout=11")
    a = cli("get-queue-attributes", "--queue-url", url, "--attribute-names", "VisibilityTimeout")
    assert a["Attributes"] == {"VisibilityTimeout": "11"}
    cli("tag-queue", "--queue-url", url, "--tags", "team=shop")
    assert cli("list-queue-tags", "--queue-url", url)["Tags"] == {"team": "shop"}


def test_send_receive_delete(cli):
    url = cli("create-queue", "--queue-name", cli.name("msg"))["QueueUrl"]
    attrs = {"city": {"DataType": "String", "StringValue": "Any City"},
             "n": {"DataType": "Number", "StringValue": "42"},
             "b": {"DataType": "Binary", "BinaryValue": "AAH/"}}
    body = 'cli body <&> "q" \u00e9'
    r = cli("send-message", "--queue-url", url, "--message-body", body,
            "--message-attributes", json.dumps(attrs))
    assert r["MD5OfMessageBody"] == md5_of_body(body)
    # aws CLI 2 takes binary arguments as base64: AAH/ is the bytes 00 01 ff
    sent = dict(attrs, b={"DataType": "Binary", "BinaryValue": b"\x00\x01\xff"})
    assert r["MD5OfMessageAttributes"] == md5_of_attributes(sent)
    m = cli("receive-message", "--queue-url", url, "--wait-time-seconds", 2,
            "--attribute-names", "All", "--message-attribute-names", "All")["Messages"]
    assert len(m) == 1 and m[0]["Body"] == body
    assert m[0]["MD5OfBody"] == md5_of_body(body)
    assert m[0]["MD5OfMessageAttributes"] == r["MD5OfMessageAttributes"]
    assert m[0]["MessageAttributes"] == attrs
    assert m[0]["Attributes"]["ApproximateReceiveCount"] == "1"
    cli("delete-message", "--queue-url", url, "--receipt-handle", m[0]["ReceiptHandle"])
    assert cli("receive-message", "--queue-url", url).get("Messages", []) == []


def long_polls(broker):
    """Receives parked in the broker, from its /metrics."""
    text = requests.get(broker.endpoint + "/metrics", timeout=scaled(5)).text
    return metric(parse_metrics(text), "floodgate_broker_long_polls")


def test_long_poll_woken_by_send(cli):
    url = cli("create-queue", "--queue-name", cli.name("poll"))["QueueUrl"]
    wait = 20
    rx = subprocess.Popen(cli.argv("receive-message", "--queue-url", url,
                                   "--wait-time-seconds", wait),
                          env=cli.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # The CLI starts (seconds on a busy machine) and parks its poll.
        wait_until(lambda: long_polls(cli.broker) == 1 or rx.poll() is not None, 30,
                   what="the CLI's receive to wait in the broker")
        assert rx.poll() is None, "the long poll returned before anything was sent"
        cli("send-message", "--queue-url", url, "--message-body", "wake")
        sent = time.monotonic()
        out, err = rx.communicate(timeout=scaled(15))
        waited = time.monotonic() - sent
    finally:
        if rx.poll() is None:
            rx.kill()
            rx.wait()
    assert rx.returncode == 0, err
    assert [m["Body"] for m in json.loads(out)["Messages"]] == ["wake"]
    # Woken by the send, not by the end of its wait.
    assert waited < wait / 2, f"woken {waited:.2f}s after the send"


def test_batches(cli):
    url = cli("create-queue", "--queue-name", cli.name("batch"))["QueueUrl"]
    entries = [{"Id": str(i), "MessageBody": f"m{i}"} for i in range(5)]
    r = cli("send-message-batch", "--queue-url", url, "--entries", json.dumps(entries))
    assert sorted(e["Id"] for e in r["Successful"]) == [str(i) for i in range(5)]
    for e in r["Successful"]:
        assert e["MD5OfMessageBody"] == md5_of_body("m" + e["Id"])
    got = []
    deadline = time.monotonic() + scaled(10)
    while len(got) < 5 and time.monotonic() < deadline:
        got += cli("receive-message", "--queue-url", url, "--max-number-of-messages", 10,
                   "--wait-time-seconds", 1).get("Messages", [])
    assert sorted(m["Body"] for m in got) == [f"m{i}" for i in range(5)]
    dels = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(got)]
    r = cli("delete-message-batch", "--queue-url", url, "--entries", json.dumps(dels))
    assert len(r["Successful"]) == 5 and not r.get("Failed")


def test_redrive_to_dlq(cli):
    dlq = cli("create-queue", "--queue-name", cli.name("dlq"))["QueueUrl"]
    arn = cli("get-queue-attributes", "--queue-url", dlq,
              "--attribute-names", "QueueArn")["Attributes"]["QueueArn"]
    policy = json.dumps({"deadLetterTargetArn": arn, "maxReceiveCount": "1"})
    src = cli("create-queue", "--queue-name", cli.name("src"),
              "--attributes", json.dumps({"RedrivePolicy": policy}))["QueueUrl"]
    mid = cli("send-message", "--queue-url", src, "--message-body", "poison")["MessageId"]
    m = cli("receive-message", "--queue-url", src, "--visibility-timeout", 0,
            "--wait-time-seconds", 2)["Messages"]
    assert [x["MessageId"] for x in m] == [mid]
    assert cli("receive-message", "--queue-url", src,
               "--wait-time-seconds", 1).get("Messages", []) == []
    dead = cli("receive-message", "--queue-url", dlq, "--wait-time-seconds", 2,
               "--attribute-names", "All")["Messages"]
    assert [x["MessageId"] for x in dead] == [mid]
    assert cli("list-dead-letter-source-queues", "--queue-url", dlq)["queueUrls"] == [src]


def test_fifo_groups(cli):
    url = cli("create-queue", "--queue-name", cli.name("f") + ".fifo",
              "--attributes", "FifoQueue=true")["QueueUrl"]
    for g in ("a", "b"):
        for i in range(3):
            r = cli("send-message", "--queue-url", url, "--message-body", f"{g}{i}",
                    "--message-group-id", g, "--message-deduplication-id", f"{g}{i}")
            assert r["SequenceNumber"]
    dup = cli("send-message", "--queue-url", url, "--message-body", "a0 again",
              "--message-group-id", "a", "--message-deduplication-id", "a0")
    assert dup["MessageId"]
    got = cli("receive-message", "--queue-url", url, "--max-number-of-messages", 10,
              "--wait-time-seconds", 1)["Messages"]
    bodies = [m["Body"] for m in got]
    assert sorted(bodies) == ["a0", "a1", "a2", "b0", "b1", "b2"]
    for g in ("a", "b"):
        seq = [b for b in bodies if b[0] == g]
        assert seq == sorted(seq)


def test_purge_delete_and_errors(cli):
    q = cli.name("gone")
    url = cli("create-queue", "--queue-name", q)["QueueUrl"]
    cli("send-message", "--queue-url", url, "--message-body", "x")
    cli("purge-queue", "--queue-url", url)
    a = cli("get-queue-attributes", "--queue-url", url, "--attribute-names",
            "ApproximateNumberOfMessages")["Attributes"]
    assert a["ApproximateNumberOfMessages"] == "0"
    cli("delete-queue", "--queue-url", url)
    with pytest.raises(CliError) as e:
        cli("get-queue-url", "--queue-name", q)
    assert "AWS.SimpleQueueService.NonExistentQueue" in e.value.stderr
    with pytest.raises(CliError) as e:
        cli("send-message", "--queue-url", url, "--message-body", "x")
    assert "NonExistentQueue" in e.value.stderr
    other = cli("create-queue", "--queue-name", q + "-2")["QueueUrl"]
    with pytest.raises(CliError) as e:
        cli("receive-message", "--queue-url", other, "--wait-time-seconds", 30)
    assert "InvalidParameterValue" in e.value.stderr
