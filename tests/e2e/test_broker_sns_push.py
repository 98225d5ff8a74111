"""End-to-end tests of SNS HTTP push, with boto3 and small HTTP endpoints.

Subscription confirmation as SNS does it (a SubscriptionConfirmation POST,
then a GET of its SubscribeURL), the headers of a delivery, raw delivery,
an endpoint that fails for a while and then receives everything at the
rate its throttle policy allows, one that never recovers and fills its
dead-letter queue, and pushes that survive a broker restart."""

import json
import shutil
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3
import pytest
import requests
from botocore.config import Config
from botocore.exceptions import ClientError

from fgtest import free_port, scaled, start

QUEUE_PREFIX = "arn:aws:sqs:us-east-1:000000000000:"


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
def datadir():
    d = tempfile.mkdtemp(prefix="fg-sns-")
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def broker(datadir):
    srv = start_broker(datadir)
    try:
        client(srv, "sns").list_topics()
    except ClientError:
        srv.stop()
        raise
    yield srv
    srv.stop()


class Endpoint:
    """An HTTP endpoint on 127.0.0.1 that records every POST. status(kind)
    decides the answer: 200 unless the test says otherwise."""

    def __init__(self, port=0, status=None):
        self.requests = []
        self.lock = threading.Lock()
        self.status = status or (lambda req: 200)
        ep = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                n = int(self.headers.get("Content-Length", 0))
                body = self.rfile.read(n).decode()
                req = {"t": time.monotonic(), "headers": {k.lower(): v for k, v in self.headers.items()},
                       "body": body, "path": self.path}
                code = ep.status(req)
                req["status"] = code
                with ep.lock:
                    ep.requests.append(req)
                self.send_response(code)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *a):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}/sns"

    def of_type(self, kind):
        with self.lock:
            return [r for r in self.requests if r["headers"].get("x-amz-sns-message-type") == kind]

    def wait(self, pred, timeout):
        deadline = time.monotonic() + scaled(timeout)
        while time.monotonic() < deadline:
            if pred():
                return True
            time.sleep(0.05)
        return pred()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def confirm(ep):
    """Follows the SubscribeURL of the endpoint's confirmation message."""
    assert ep.wait(lambda: ep.of_type("SubscriptionConfirmation"), 10), "no SubscriptionConfirmation"
    req = ep.of_type("SubscriptionConfirmation")[0]
    env = json.loads(req["body"])
    assert env["Type"] == "SubscriptionConfirmation" and env["Token"]
    assert req["headers"]["x-amz-sns-topic-arn"] == env["TopicArn"]
    r = requests.get(env["SubscribeURL"])
    assert r.status_code == 200 and "<ConfirmSubscriptionResult>" in r.text, r.text
    return env


def subscribe(sns, topic, ep, policy=None, attrs=None):
    a = dict(attrs or {})
    if policy:
        a["DeliveryPolicy"] = json.dumps(policy)
    sub = sns.subscribe(TopicArn=topic, Protocol="http", Endpoint=ep.url, Attributes=a)["SubscriptionArn"]
    assert sub == "pending confirmation"
    confirm(ep)
    subs = sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]
    (s,) = [s for s in subs if s["Endpoint"] == ep.url]
    assert s["SubscriptionArn"].startswith(topic + ":")
    return s["SubscriptionArn"]


def test_confirmation_and_delivery(broker):
    sns = client(broker, "sns")
    topic = sns.create_topic(Name="hooks")["TopicArn"]
    ep = Endpoint()
    try:
        sub = subscribe(sns, topic, ep)
        assert sns.get_subscription_attributes(SubscriptionArn=sub)["Attributes"]["PendingConfirmation"] == "false"
        mid = sns.publish(TopicArn=topic, Message="hello http", Subject="Hi",
                          MessageAttributes={"k": {"DataType": "String", "StringValue": "v"}})["MessageId"]
        assert ep.wait(lambda: ep.of_type("Notification"), 10)
        (req,) = ep.of_type("Notification")
        h = req["headers"]
        assert req["path"] == "/sns"
        assert h["x-amz-sns-message-id"] == mid and h["x-amz-sns-topic-arn"] == topic
        assert h["x-amz-sns-subscription-arn"] == sub
        assert h["content-type"] == "text/plain; charset=UTF-8"
        assert h["user-agent"] == "Amazon Simple Notification Service Agent"
        env = json.loads(req["body"])
        assert env["Message"] == "hello http" and env["Subject"] == "Hi" and env["MessageId"] == mid
        assert env["MessageAttributes"]["k"] == {"Type": "String", "Value": "v"}
        sns.set_subscription_attributes(SubscriptionArn=sub, AttributeName="RawMessageDelivery", AttributeValue="true")
        sns.publish(TopicArn=topic, Message="raw body")
        assert ep.wait(lambda: len(ep.of_type("Notification")) == 2, 10)
        raw = ep.of_type("Notification")[1]
        assert raw["body"] == "raw body" and raw["headers"]["x-amz-sns-rawdelivery"] == "true"
        # Messages published while a subscription is pending are not delivered.
        ep2 = Endpoint()
        sns.subscribe(TopicArn=topic, Protocol="http", Endpoint=ep2.url)
        assert ep2.wait(lambda: ep2.of_type("SubscriptionConfirmation"), 10)
        sns.publish(TopicArn=topic, Message="only confirmed")
        assert ep.wait(lambda: len(ep.of_type("Notification")) == 3, 10)
        time.sleep(scaled(0.5))
        assert ep2.of_type("Notification") == []
        ep2.close()
    finally:
        ep.close()


def test_failing_endpoint_recovers_and_gets_everything_at_its_rate(broker):
    sns = client(broker, "sns")
    topic = sns.create_topic(Name="email")["TopicArn"]
    recover_at = [None]

    def status(req):
        if req["headers"].get("x-amz-sns-message-type") != "Notification":
            return 200
        return 503 if recover_at[0] is None or time.monotonic() < recover_at[0] else 200

    ep = Endpoint(status=status)
    rate = 10
    try:
        subscribe(sns, topic, ep, policy={
            "healthyRetryPolicy": {"numRetries": 40, "numNoDelayRetries": 0, "minDelayTarget": 1,
                                   "maxDelayTarget": 2, "backoffFunction": "linear"},
            "throttlePolicy": {"maxReceivesPerSecond": rate}})
        total = 30
        recover_at[0] = time.monotonic() + scaled(3)
        for i in range(total):
            sns.publish(TopicArn=topic, Message=f"mail #{i}")
        ok = lambda: {r["body"] for r in ep.of_type("Notification") if r["status"] == 200}
        assert ep.wait(lambda: len(ok()) == total, 60), f"{len(ok())} of {total} delivered"
        assert {json.loads(b)["Message"] for b in ok()} == {f"mail #{i}" for i in range(total)}
        reqs = ep.of_type("Notification")
        failed = [r for r in reqs if r["status"] != 200]
        assert failed, "the endpoint refused some deliveries while down"
        # Every attempt, failed or not, respects the throttle. The broker
        # starts at most rate + 1 POSTs in any second; seen from the
        # endpoint, a busy machine can bunch arrivals that were sent
        # apart, so the bounds are generous ratios: twice the rate in any
        # second, half again over the whole run. An unthrottled broker
        # sends all of them at once.
        times = sorted(r["t"] for r in reqs)
        for i, t0 in enumerate(times):
            in_window = sum(1 for t in times[i:] if t - t0 < 1.0)
            assert in_window <= 2 * rate, f"{in_window} requests within one second"
        assert (len(times) - 1) / (times[-1] - times[0]) <= rate * 1.5, "average rate over the run"
        oks = sorted(r["t"] for r in reqs if r["status"] == 200)
        assert oks[-1] - oks[0] >= (total - 1) / rate * 0.8, "deliveries were paced"
    finally:
        ep.close()


def test_endpoint_that_never_recovers_fills_its_dead_letter_queue(broker):
    sns, sqs = client(broker, "sns"), client(broker, "sqs")
    topic = sns.create_topic(Name="sms")["TopicArn"]
    dlq_url = sqs.create_queue(QueueName="sms-dlq")["QueueUrl"]
    ep = Endpoint(status=lambda req: 200 if req["headers"].get("x-amz-sns-message-type") != "Notification" else 500)
    try:
        sub = subscribe(sns, topic, ep, policy={
            "healthyRetryPolicy": {"numRetries": 2, "minDelayTarget": 1, "maxDelayTarget": 1}},
            attrs={"RedrivePolicy": json.dumps({"deadLetterTargetArn": QUEUE_PREFIX + "sms-dlq"})})
        assert "sms-dlq" in sns.get_subscription_attributes(SubscriptionArn=sub)["Attributes"]["RedrivePolicy"]
        n = 5
        for i in range(n):
            sns.publish(TopicArn=topic, Message=f"text #{i}")
        dead = []
        deadline = time.monotonic() + scaled(30)
        while len(dead) < n and time.monotonic() < deadline:
            r = sqs.receive_message(QueueUrl=dlq_url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
            for m in r.get("Messages", []):
                dead.append(json.loads(m["Body"])["Message"])
                sqs.delete_message(QueueUrl=dlq_url, ReceiptHandle=m["ReceiptHandle"])
        assert sorted(dead) == [f"text #{i}" for i in range(n)]
        attempts = {}
        for r in ep.of_type("Notification"):
            msg = json.loads(r["body"])["Message"]
            attempts[msg] = attempts.get(msg, 0) + 1
        assert attempts == {f"text #{i}": 3 for i in range(n)}, "first attempt and two retries each"
        text = requests.get(broker.url("/metrics")).text
        assert f"floodgate_broker_sns_dead_lettered_total {n}" in text
    finally:
        ep.close()


def test_push_survives_restart(datadir):
    srv = start_broker(datadir)
    port = srv.port
    up = [True]
    ep = Endpoint(status=lambda req: 200 if up[0] else 503)
    try:
        sns = client(srv, "sns")
        try:
            sns.list_topics()
        except ClientError:
            raise
        topic = sns.create_topic(Name="restart")["TopicArn"]
        subscribe(sns, topic, ep, policy={"healthyRetryPolicy": {
            "numRetries": 60, "minDelayTarget": 1, "maxDelayTarget": 1}})
        up[0] = False  # the endpoint fails: deliveries wait for their retries
        n = 8
        for i in range(n):
            sns.publish(TopicArn=topic, Message=f"keep #{i}")
        assert ep.wait(lambda: len(ep.of_type("Notification")) >= n, 10)
        srv.stop()
        up[0] = True
        srv = start_broker(datadir, port=port)
        got = lambda: {json.loads(r["body"])["Message"] for r in ep.of_type("Notification") if r["status"] == 200}
        assert ep.wait(lambda: len(got()) == n, 30), got()
        assert got() == {f"keep #{i}" for i in range(n)}
    finally:
        ep.close()
        srv.stop()
