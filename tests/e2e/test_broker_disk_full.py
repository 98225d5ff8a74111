"""The broker on a full disk: a small tmpfs is mounted for its data
directory (root is needed; the tests skip, saying why, where mounting is
impossible) and filled, by the broker's own messages and by a filler file.

test_watermark (disk_free_limit set):
  1. sends are acknowledged until free space falls under disk_free_limit,
     then refused up front: SQS RequestThrottled (HTTP 400, Retry-After),
     native 507 with a JSON reason; /metrics and the log say why;
  2. with the rest of the disk filled (not a byte left), receives,
     visibility changes and deletes still work: the log writes them into
     space it allocated earlier;
  3. once space is freed, sends are accepted again by the same process,
     no restart (the product target is within a second; the test only
     waits for it, with a generous deadline);
  4. after a restart every acknowledged message not deleted is there
     exactly once, and nothing else.

test_write_failure_recovers (no watermark): the disk fills under the log
itself, writes fail with ENOSPC, the answers waiting on them are errors
(never acknowledgements), and once space returns the broker takes writes
again by itself; after a restart every acknowledged message is there
exactly once.
"""

import collections
import os
import shutil
import subprocess
import tempfile
import time

import pytest
import requests
from botocore.exceptions import ClientError

import fgtest
from sqstest import boto3_client, error_code, model_dir

SIZE = 16 << 20
LIMIT = 4 << 20
BODY_PAD = 2000


@pytest.fixture
def tmpfs():
    d = tempfile.mkdtemp(prefix="fg-diskfull-")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={SIZE}", "tmpfs", d],
                       capture_output=True, text=True)
    if r.returncode != 0:
        os.rmdir(d)
        pytest.skip(f"cannot mount a tmpfs for the full-disk test (needs root): "
                    f"{r.stderr.strip() or r.returncode}")
    try:
        yield d
    finally:
        subprocess.run(["umount", "-l", d], capture_output=True)
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def models():
    d = model_dir("query")
    yield d
    shutil.rmtree(d, ignore_errors=True)


class Node:
    """A broker on the tmpfs; restartable on the same data directory."""

    def __init__(self, root, config):
        self.data = os.path.join(root, "data")
        self.config = os.path.join(tempfile.gettempdir(), f"fg-diskfull-{os.getpid()}-{id(self)}.yaml")
        with open(self.config, "w") as f:
            f.write(config)
        self.port = fgtest.free_port()
        self.srv = None
        self.start()

    def start(self):
        self.srv = fgtest.start(["broker", "--listen", f"127.0.0.1:{self.port}", "--data", self.data,
                                 "--config", self.config], port=self.port, timeout=20)

    @property
    def endpoint(self):
        return f"http://127.0.0.1:{self.port}"

    def metrics(self):
        out = {}
        for line in requests.get(self.endpoint + "/metrics", timeout=fgtest.scaled(10)).text.splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                out[name] = float(value)
        return out

    def stop(self):
        if self.srv:
            self.srv.stop(timeout=20)

    def close(self):
        self.stop()
        try:
            os.unlink(self.config)
        except OSError:
            pass


def sns_client(endpoint):
    import boto3
    import botocore.config

    return boto3.client("sns", region_name="us-east-1", endpoint_url=endpoint, aws_access_key_id="x",
                        aws_secret_access_key="y",
                        config=botocore.config.Config(retries={"total_max_attempts": 1}))


def body(i):
    return f"m{i:06d}-" + "b" * BODY_PAD


def fill(path):
    """Writes path until the file system has no byte left."""
    chunk = b"\xa5" * 65536
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        while True:
            try:
                os.write(fd, chunk)
            except OSError:
                break
        while True:  # the last partial page
            try:
                if os.write(fd, b"\xa5" * 512) == 0:
                    break
            except OSError:
                break
    finally:
        os.close(fd)


def drain(sqs, url):
    """Every message now in the queue, received once (long visibility)."""
    got = collections.Counter()
    empty = 0
    while empty < 2:
        r = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=600,
                                WaitTimeSeconds=1)
        msgs = r.get("Messages", [])
        empty = 0 if msgs else empty + 1
        for m in msgs:
            got[m["Body"]] += 1
    return got


def wait_for(pred, timeout, what):
    deadline = time.monotonic() + fgtest.scaled(timeout)
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_watermark(tmpfs, models):
    # Ballast: space the test can give back later, as an operator would.
    with open(os.path.join(tmpfs, "ballast"), "wb") as f:
        f.write(b"\0" * (6 << 20))
    node = Node(tmpfs, f"broker:\n  segment_bytes: 256k\n  disk_free_limit: {LIMIT}\n")
    try:
        sqs = boto3_client(node.endpoint, models)
        url = sqs.create_queue(QueueName="full")["QueueUrl"]
        sns = sns_client(node.endpoint)
        topic = sns.create_topic(Name="news")["TopicArn"]
        pid = node.srv.pid

        # 1. Acknowledged sends until the watermark refuses them.
        acked, throttled = [], None
        for i in range(20000):
            try:
                sqs.send_message(QueueUrl=url, MessageBody=body(i))
                acked.append(body(i))
            except ClientError as e:
                assert error_code(e) == "RequestThrottled", e.response
                throttled = e
                break
        assert throttled is not None, "sends were never refused"
        assert len(acked) > 100
        meta = throttled.response["ResponseMetadata"]
        assert meta["HTTPStatusCode"] == 400
        assert "retry-after" in meta["HTTPHeaders"]
        assert "disk_free_limit" in throttled.response["Error"]["Message"]
        with pytest.raises(ClientError) as ei:
            sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": "a", "MessageBody": "x"}])
        assert error_code(ei.value) == "RequestThrottled"
        r = requests.post(node.endpoint + "/v1/queues/full/messages", json={"body": "x"},
                          timeout=fgtest.scaled(10))
        assert r.status_code == 507, r.text
        assert "disk_free_limit" in r.json()["error"] and r.headers.get("Retry-After")
        with pytest.raises(ClientError) as ei:
            sns.publish(TopicArn=topic, Message="x")
        assert error_code(ei.value) == "Throttled"
        assert ei.value.response["ResponseMetadata"]["HTTPStatusCode"] == 429
        r = requests.post(node.endpoint + "/v1/topics/news/publish", json={"message": "x"},
                          timeout=fgtest.scaled(10))
        assert r.status_code == 507, r.text
        m = node.metrics()
        assert m["floodgate_broker_disk_alarm"] == 1
        assert m["floodgate_broker_disk_free_limit_bytes"] == LIMIT
        assert m["floodgate_broker_disk_free_bytes"] < LIMIT
        assert m['floodgate_broker_writes_refused_total{reason="disk_low"}'] >= 5
        assert "under disk_free_limit" in node.srv.log()

        # 2. Not a byte left: receives, visibility changes, deletes go on.
        fill(os.path.join(tmpfs, "filler"))
        st = os.statvfs(tmpfs)
        assert st.f_bavail * st.f_frsize < 65536
        deleted = set()
        for _ in range(3):
            r = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=60)
            msgs = r["Messages"]
            assert msgs
            sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=msgs[0]["ReceiptHandle"],
                                          VisibilityTimeout=120)
            for msg in msgs:
                assert msg["Body"] in acked
                sqs.delete_message(QueueUrl=url, ReceiptHandle=msg["ReceiptHandle"])
                deleted.add(msg["Body"])
        assert m["floodgate_broker_store_write_errors_total"] == 0
        assert node.metrics()["floodgate_broker_store_write_errors_total"] == 0

        # 3. Space comes back: sends resume in the same process.
        os.unlink(os.path.join(tmpfs, "filler"))
        os.unlink(os.path.join(tmpfs, "ballast"))
        t0 = time.monotonic()

        def send_ok():
            try:
                sqs.send_message(QueueUrl=url, MessageBody=body(100000))
                return True
            except ClientError as e:
                assert error_code(e) == "RequestThrottled", e.response
                return False

        wait_for(send_ok, 20, "sends to resume once space was freed")
        print(f"sends resumed {time.monotonic() - t0:.2f} s after space was freed")
        acked.append(body(100000))
        assert node.srv.pid == pid and node.srv.alive(), "no restart"
        for i in range(100001, 100021):
            sqs.send_message(QueueUrl=url, MessageBody=body(i))
            acked.append(body(i))
        assert node.metrics()["floodgate_broker_disk_alarm"] == 0
        sns.publish(TopicArn=topic, Message="x")
        assert "new messages accepted" in node.srv.log()

        # 4. After a restart: every acknowledged message, exactly once.
        node.stop()
        node.start()
        sqs = boto3_client(node.endpoint, models)
        got = drain(sqs, url)
        want = collections.Counter(b for b in acked if b not in deleted)
        assert got == want, (f"{len(got)} bodies received, {len(want)} expected; missing "
                             f"{len(want - got)}, unexpected {len(got - want)}")
    finally:
        node.close()


def test_write_failure_recovers(tmpfs, models):
    node = Node(tmpfs, "broker:\n  segment_bytes: 256k\n  disk_free_limit: 0\n")
    try:
        sqs = boto3_client(node.endpoint, models)
        url = sqs.create_queue(QueueName="nowatermark")["QueueUrl"]
        pid = node.srv.pid
        acked, attempted = [], set()
        for i in range(20):
            sqs.send_message(QueueUrl=url, MessageBody=body(i))
            acked.append(body(i))
        fill(os.path.join(tmpfs, "filler"))
        failed = None
        for i in range(20, 20000):
            attempted.add(body(i))
            try:
                sqs.send_message(QueueUrl=url, MessageBody=body(i))
                acked.append(body(i))
            except ClientError as e:
                failed = e
                break
        assert failed is not None, "the log never ran out of space"
        assert error_code(failed) in ("ServiceUnavailable", "InternalError"), failed.response
        assert failed.response["ResponseMetadata"]["HTTPStatusCode"] >= 500
        m = node.metrics()
        assert m["floodgate_broker_store_write_errors_total"] >= 1
        assert "write failed" in node.srv.log()

        os.unlink(os.path.join(tmpfs, "filler"))
        n = [100000]

        def send_ok():
            b = body(n[0])
            n[0] += 1
            attempted.add(b)
            try:
                sqs.send_message(QueueUrl=url, MessageBody=b)
                acked.append(b)
                return True
            except ClientError as e:
                assert e.response["ResponseMetadata"]["HTTPStatusCode"] >= 500, e.response
                return False

        wait_for(send_ok, 20, "writes to recover once space was freed")
        assert node.srv.pid == pid and node.srv.alive(), "no restart"
        m = node.metrics()
        assert m["floodgate_broker_store_write_failing"] == 0
        assert m["floodgate_broker_store_write_recoveries_total"] >= 1
        r = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1, VisibilityTimeout=0)
        assert r["Messages"]

        node.stop()
        node.start()
        sqs = boto3_client(node.endpoint, models)
        got = drain(sqs, url)
        for b in acked:
            assert got[b] == 1, f"acknowledged {b[:8]} received {got[b]} times"
        # A send that got an error may still have been written (its record
        # was retried): at most once, and nothing invented.
        for b, k in got.items():
            assert k == 1 and (b in attempted or b in acked), f"{b[:8]} x{k}"
    finally:
        node.close()
