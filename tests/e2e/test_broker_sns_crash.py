"""kill -9 of the broker while publishers are publishing: after a restart,
every publish that was acknowledged is found in every matching
subscription at least once (three queues, one of them behind a filter
policy, and an HTTP endpoint)."""

import json
import os
import shutil
import signal
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3
import requests
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from fgtest import free_port, scaled, start

QUEUE_PREFIX = "arn:aws:sqs:us-east-1:000000000000:"


def start_broker(datadir, port):
    srv = start(["broker", "--listen", f"127.0.0.1:{port}", "--data", datadir], port=port)
    deadline = time.monotonic() + scaled(15)
    while "listening on" not in srv.log():
        assert time.monotonic() < deadline, srv.log()
        time.sleep(0.02)
    return srv


def client(port, service):
    return boto3.client(service, region_name="us-east-1", endpoint_url=f"http://127.0.0.1:{port}",
                        aws_access_key_id="x", aws_secret_access_key="y",
                        config=Config(retries={"total_max_attempts": 1}, connect_timeout=2, read_timeout=10))


class Recorder:
    """HTTP endpoint: confirms its subscription, records each message."""

    def __init__(self):
        self.seen = set()
        self.confirm_url = None
        rec = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                env = json.loads(body)
                if env["Type"] == "SubscriptionConfirmation":
                    rec.confirm_url = env["SubscribeURL"]
                else:
                    rec.seen.add(int(env["Message"]))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def drain(sqs, url, raw):
    seen = set()
    idle = time.monotonic()
    while time.monotonic() - idle < scaled(2):
        r = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        msgs = r.get("Messages", [])
        if msgs:
            idle = time.monotonic()
        for m in msgs:
            seen.add(int(m["Body"] if raw else json.loads(m["Body"])["Message"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    return seen


def test_kill9_during_publishing():
    datadir = tempfile.mkdtemp(prefix="fg-sns-crash-")
    port = free_port()
    srv = start_broker(datadir, port)
    rec = Recorder()
    try:
        sns, sqs = client(port, "sns"), client(port, "sqs")
        try:
            sns.list_topics()
        except ClientError:
            raise
        topic = sns.create_topic(Name="crash")["TopicArn"]
        queues = {"all": (None, False), "even": ({"parity": ["even"]}, False), "raw": (None, True)}
        urls = {}
        for name, (policy, raw) in queues.items():
            urls[name] = sqs.create_queue(QueueName=f"crash-{name}")["QueueUrl"]
            attrs = {"RawMessageDelivery": "true" if raw else "false"}
            if policy:
                attrs["FilterPolicy"] = json.dumps(policy)
            sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=QUEUE_PREFIX + f"crash-{name}",
                          Attributes=attrs)
        sns.subscribe(TopicArn=topic, Protocol="http", Endpoint=rec.url, Attributes={
            "DeliveryPolicy": json.dumps({"healthyRetryPolicy": {
                "numRetries": 50, "minDelayTarget": 1, "maxDelayTarget": 1}})})
        deadline = time.monotonic() + scaled(10)
        while not rec.confirm_url and time.monotonic() < deadline:
            time.sleep(0.05)
        assert rec.confirm_url and requests.get(rec.confirm_url).status_code == 200

        acked = set()
        lock = threading.Lock()
        stop = threading.Event()

        def publisher(k):
            c = client(port, "sns")
            n = k
            while not stop.is_set():
                try:
                    c.publish(TopicArn=topic, Message=str(n), MessageAttributes={
                        "parity": {"DataType": "String", "StringValue": "even" if n % 2 == 0 else "odd"}})
                except (ClientError, BotoCoreError, OSError):
                    return  # the broker died: this publish was not acknowledged
                with lock:
                    acked.add(n)
                n += 4

        threads = [threading.Thread(target=publisher, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        time.sleep(scaled(2))
        os.kill(srv.pid, signal.SIGKILL)
        srv.proc.wait()
        stop.set()
        for t in threads:
            t.join(timeout=scaled(20))
        assert len(acked) > 20, "publishers made progress before the kill"

        srv = start_broker(datadir, port)
        sqs = client(port, "sqs")
        got = {name: drain(sqs, url, queues[name][1]) for name, url in urls.items()}
        assert acked <= got["all"], f"lost: {sorted(acked - got['all'])[:10]}"
        assert acked <= got["raw"], f"lost: {sorted(acked - got['raw'])[:10]}"
        even = {n for n in acked if n % 2 == 0}
        assert even <= got["even"], f"lost: {sorted(even - got['even'])[:10]}"
        assert all(n % 2 == 0 for n in got["even"]), "the filter held across the restart"
        deadline = time.monotonic() + scaled(40)
        while not acked <= rec.seen and time.monotonic() < deadline:
            time.sleep(0.1)
        assert acked <= rec.seen, f"http lost: {sorted(acked - rec.seen)[:10]}"
    finally:
        rec.close()
        srv.stop()
        shutil.rmtree(datadir, ignore_errors=True)
