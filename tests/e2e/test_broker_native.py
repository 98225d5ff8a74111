"""End-to-end tests of `floodgate broker` through its native HTTP/JSON API.

The real binary on 127.0.0.1 with a temporary data directory, driven with
requests and raw sockets: queues, send/receive/delete, visibility and
delays, long polling, FIFO, durability across restarts and kill -9,
hostile HTTP input, /metrics, /healthz and configuration errors."""

import hashlib
import json
import os
import re
import shutil
import signal
import socket
import tempfile
import threading
import time

import pytest
import requests

from fgtest import Conn, free_port, scaled, start, wait_log


@pytest.fixture
def datadir():
    d = tempfile.mkdtemp(prefix="fg-broker-")
    yield d
    shutil.rmtree(d, ignore_errors=True)
    if os.path.exists(d + ".yaml"):
        os.unlink(d + ".yaml")


def start_broker(datadir, port=None, config=None, extra=()):
    port = port or free_port()
    args = ["broker", "--listen", f"127.0.0.1:{port}", "--data", datadir, *extra]
    if config:
        path = datadir + ".yaml"
        with open(path, "w") as f:
            f.write(config)
        args += ["--config", path]
    srv = start(args, port=port)
    wait_log(srv, "listening on")
    return srv


@pytest.fixture
def broker(datadir):
    srv = start_broker(datadir)
    yield srv
    srv.stop()


def api(srv, path):
    return srv.url("/v1" + path)


def parked(srv):
    """Receives waiting in the broker now (the long_polls gauge)."""
    text = requests.get(srv.url("/metrics"), timeout=scaled(5)).text
    m = re.search(r"^floodgate_broker_long_polls (\d+)", text, re.M)
    return int(m.group(1)) if m else 0


def wait_parked(srv, n, timeout=10):
    """Waits until n receives are parked: a send or a signal then finds
    them waiting, however slow the machine made their start."""
    deadline = time.monotonic() + scaled(timeout)
    while parked(srv) < n:
        assert time.monotonic() < deadline, f"fewer than {n} receives parked"
        time.sleep(0.02)


def create(srv, name, attrs=None):
    r = requests.put(api(srv, f"/queues/{name}"), json={"attributes": attrs or {}})
    assert r.status_code == 200, r.text
    return r.json()["url"]


def send(srv, name, body, **kw):
    r = requests.post(api(srv, f"/queues/{name}/messages"), json={"body": body, **kw})
    assert r.status_code == 200, r.text
    return r.json()


def receive(srv, name, **params):
    r = requests.post(api(srv, f"/queues/{name}/receive"), params=params, timeout=scaled(30))
    assert r.status_code == 200, r.text
    return r.json()["messages"]


def delete(srv, name, receipt):
    return requests.delete(api(srv, f"/queues/{name}/messages/{receipt}"))


def test_queue_lifecycle_and_messages(broker):
    url = create(broker, "jobs")
    assert url == broker.url("/000000000000/jobs")
    # Raw bodies: what curl -d sends.
    r = requests.post(api(broker, "/queues/jobs/messages"), data=b"send the receipt")
    assert r.status_code == 200
    assert r.json()["md5"] == hashlib.md5(b"send the receipt").hexdigest()
    sent = send(broker, "jobs", "second", attributes={"kind": "email", "n": 3})
    lst = requests.get(api(broker, "/queues")).json()["queues"]
    assert [q["name"] for q in lst] == ["jobs"] and lst[0]["messages"] == 2
    msgs = receive(broker, "jobs", max=10, visibility=30)
    assert [m["body"] for m in msgs] == ["send the receipt", "second"]
    m2 = msgs[1]
    assert m2["id"] == sent["id"] and m2["receive_count"] == 1
    assert m2["attributes"]["kind"] == "email"
    assert m2["attributes"]["n"] == {"DataType": "Number", "StringValue": "3"}
    attrs = requests.get(api(broker, "/queues/jobs")).json()["attributes"]
    assert attrs["ApproximateNumberOfMessagesNotVisible"] == "2"
    for m in msgs:
        assert delete(broker, "jobs", m["receipt"]).status_code == 200
    attrs = requests.get(api(broker, "/queues/jobs")).json()["attributes"]
    assert attrs["ApproximateNumberOfMessagesNotVisible"] == "0"
    r = requests.patch(api(broker, "/queues/jobs"), json={"attributes": {"DelaySeconds": "1"}})
    assert r.status_code == 200
    assert requests.get(api(broker, "/queues/jobs")).json()["attributes"]["DelaySeconds"] == "1"
    assert requests.delete(api(broker, "/queues/jobs")).status_code == 200
    r = requests.get(api(broker, "/queues/jobs"))
    assert r.status_code == 404 and r.json()["code"]


def test_visibility_timeout_and_stale_receipt(broker):
    create(broker, "v")
    send(broker, "v", "x")
    first = receive(broker, "v", visibility=1)
    assert len(first) == 1
    assert receive(broker, "v") == []
    time.sleep(1.2)
    second = receive(broker, "v", visibility=30)
    assert len(second) == 1 and second[0]["receive_count"] == 2
    # The first receipt is stale: the delete succeeds but removes nothing.
    assert delete(broker, "v", first[0]["receipt"]).status_code == 200
    assert requests.get(api(broker, "/queues")).json()["queues"][0]["in_flight"] == 1
    r = requests.post(api(broker, f"/queues/v/messages/{second[0]['receipt']}/visibility"),
                      params={"timeout": 0})
    assert r.status_code == 200, r.text
    assert len(receive(broker, "v")) == 1
    assert delete(broker, "v", "not-a-receipt").status_code == 404


def test_delay(broker):
    create(broker, "d")
    send(broker, "d", "later", delay=1)
    assert receive(broker, "d") == []
    assert requests.get(api(broker, "/queues")).json()["queues"][0]["delayed"] == 1
    time.sleep(1.1)
    assert [m["body"] for m in receive(broker, "d")] == ["later"]


def test_long_poll_wakes_at_once(broker):
    create(broker, "lp")
    got = {}

    def waiter():
        t0 = time.monotonic()
        got["msgs"] = receive(broker, "lp", wait=20)
        got["t"] = time.monotonic() - t0

    base = parked(broker)
    th = threading.Thread(target=waiter)
    th.start()
    wait_parked(broker, base + 1)
    send(broker, "lp", "ping")
    th.join(scaled(30))
    assert [m["body"] for m in got["msgs"]] == ["ping"]
    # Woken by the send, not at the end of its 20 s (the margin is wide
    # enough for any busy machine).
    assert got["t"] < 15
    t0 = time.monotonic()
    assert receive(broker, "lp", wait=1) == []
    assert 0.9 <= time.monotonic() - t0 < 10


def test_long_poll_on_a_deleted_queue_is_answered_404(broker):
    """A parked receive finds its queue again by id on each run: deleting
    the queue answers it with 404, and a new queue of the same name does
    not take it over."""
    create(broker, "gone")
    got = {}

    def waiter():
        got["r"] = requests.post(api(broker, "/queues/gone/receive"), json={"wait": 20, "max": 2},
                                 timeout=scaled(60))

    base = parked(broker)
    th = threading.Thread(target=waiter)
    th.start()
    wait_parked(broker, base + 1)
    assert requests.delete(api(broker, "/queues/gone")).status_code == 200
    create(broker, "gone")
    th.join(scaled(60))
    assert got["r"].status_code == 404, got["r"].text
    assert got["r"].json()["code"] == "QueueDoesNotExist"
    assert parked(broker) == base


def test_long_poll_many_waiters_each_get_one(broker):
    create(broker, "many")
    results = []
    lock = threading.Lock()

    def waiter():
        m = receive(broker, "many", wait=5)
        with lock:
            results.extend(x["body"] for x in m)

    base = parked(broker)
    ths = [threading.Thread(target=waiter) for _ in range(4)]
    for t in ths:
        t.start()
    wait_parked(broker, base + 4)
    r = requests.post(api(broker, "/queues/many/messages"),
                      json={"messages": [{"body": f"m{i}"} for i in range(4)]})
    assert len(r.json()["sent"]) == 4
    for t in ths:
        t.join(scaled(10))
    assert sorted(results) == ["m0", "m1", "m2", "m3"]


def test_fifo_over_native(broker):
    create(broker, "orders.fifo", {"ContentBasedDeduplication": "true"})
    for i in range(3):
        send(broker, "orders.fifo", f"o{i}", group="customer-1")
    dup = send(broker, "orders.fifo", "o0", group="customer-1")
    msgs = receive(broker, "orders.fifo", max=10)
    assert [m["body"] for m in msgs] == ["o0", "o1", "o2"]
    assert msgs[0]["id"] == dup["id"]
    assert all(m["group"] == "customer-1" for m in msgs)
    r = requests.post(api(broker, "/queues/orders.fifo/messages"), json={"body": "no group"})
    assert r.status_code == 400


def test_batch_and_purge(broker):
    create(broker, "b")
    r = requests.post(api(broker, "/queues/b/messages"),
                      json={"messages": [{"body": "1"}, {"body": ""}, {"body": "3"}]})
    j = r.json()
    assert len(j["sent"]) == 2 and len(j["failed"]) == 1
    msgs = receive(broker, "b", max=10)
    r = requests.post(api(broker, "/queues/b/delete"), json={"receipts": [m["receipt"] for m in msgs]})
    assert r.json()["deleted"] == 2
    send(broker, "b", "x")
    assert requests.post(api(broker, "/queues/b/purge")).status_code == 200
    assert requests.get(api(broker, "/queues")).json()["queues"][0]["messages"] == 0


def test_redrive_and_move_back(broker):
    create(broker, "dead")
    create(broker, "work", {"RedrivePolicy": json.dumps({
        "deadLetterTargetArn": "arn:aws:sqs:us-east-1:000000000000:dead", "maxReceiveCount": 1})})
    send(broker, "work", "poison")
    assert len(receive(broker, "work", visibility=0)) == 1
    assert receive(broker, "work") == []
    dead = receive(broker, "dead", visibility=0)
    assert [m["body"] for m in dead] == ["poison"]
    assert dead[0]["dead_letter_source"].endswith(":work")
    r = requests.post(api(broker, "/queues/dead/redrive"), json={})
    assert r.status_code == 200 and r.json()["task"]
    tasks = requests.get(api(broker, "/queues/dead/redrive")).json()["tasks"]
    assert tasks[0]["Status"] == "COMPLETED"
    assert [m["body"] for m in receive(broker, "work")] == ["poison"]


def test_restart_keeps_everything(datadir):
    srv = start_broker(datadir)
    create(srv, "keep", {"VisibilityTimeout": "60"})
    for i in range(20):
        send(srv, "keep", f"m{i}")
    inflight = receive(srv, "keep", max=5)
    for m in inflight[:2]:
        assert delete(srv, "keep", m["receipt"]).status_code == 200
    srv.stop()
    srv = start_broker(datadir, port=srv.port)
    try:
        q = requests.get(api(srv, "/queues")).json()["queues"][0]
        assert (q["messages"], q["in_flight"]) == (15, 3)
        # Receipts from before the restart still work.
        assert delete(srv, "keep", inflight[2]["receipt"]).status_code == 200
        assert requests.get(api(srv, "/queues")).json()["queues"][0]["in_flight"] == 2
        assert requests.get(api(srv, "/queues/keep")).json()["attributes"]["VisibilityTimeout"] == "60"
    finally:
        srv.stop()


def test_kill9_loses_no_acknowledged_send(datadir):
    srv = start_broker(datadir)
    create(srv, "k")
    ids = {send(srv, "k", f"m{i}")["id"] for i in range(50)}
    os.kill(srv.pid, signal.SIGKILL)
    srv.proc.wait()
    srv2 = start_broker(datadir, port=srv.port)
    try:
        got = set()
        for _ in range(10):
            got |= {m["id"] for m in receive(srv2, "k", max=10)}
        assert got == ids
    finally:
        srv2.stop()


def test_metrics_and_health(broker):
    create(broker, "m")
    send(broker, "m", "x")
    receive(broker, "m")
    text = requests.get(broker.url("/metrics")).text
    assert 'floodgate_broker_queue_messages{queue="m",state="in_flight"} 1' in text
    assert 'floodgate_broker_messages_sent_total{queue="m"} 1' in text
    assert "floodgate_broker_store_fsyncs_total" in text
    assert re.search(r"floodgate_broker_commit_seconds_count \d+", text)
    h = requests.get(broker.url("/healthz"))
    assert h.status_code == 200 and h.json()["status"] == "ok"


def test_hostile_http(datadir):
    cfg = "broker:\n  limits:\n    max_request_bytes: 64k\n    header_timeout: 500ms\n"
    srv = start_broker(datadir, config=cfg)
    try:
        port = srv.port
        with Conn(port) as c:
            c.send(b"GET /v1/queues HTTP/1.1\r\nHost: localhost\r\nBad Header: y\r\n\r\n")
            assert c.response().status == 400
        with Conn(port) as c:
            c.send(b"GET /v1/queues HTTP/1.1\r\nHost: localhost\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n")
            assert c.response().status == 431
        with Conn(port) as c:
            c.send(b"POST /v1/queues/x/messages HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100000\r\n\r\n")
            assert c.response().status == 413
        with Conn(port) as c:
            c.send(b"GET /v1/queues HTTP/1.1\r\nHost: localhost\r\n")  # never finished
            assert c.response().status == 408
        with Conn(port) as c:
            c.send(b"DELETE /v1/queues HTTP/1.1\r\nHost: localhost\r\n\r\n")
            assert c.response().status == 405
            c.send(b"GET /nowhere HTTP/1.1\r\nHost: localhost\r\n\r\n")
            assert c.response().status == 404
            # Pipelined requests answered in order on one connection.
            c.send(b"PUT /v1/queues/p HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\n\r\n"
                   b"POST /v1/queues/p/messages HTTP/1.1\r\nHost: localhost\r\nContent-Length: 3\r\n\r\nabc"
                   b"POST /v1/queues/p/receive HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\n\r\n")
            assert c.response().status == 200
            assert c.response().status == 200
            r = c.response()
            assert json.loads(r.body)["messages"][0]["body"] == "abc"
        with Conn(port) as c:
            c.send(b"POST /v1/queues/p/messages HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n"
                   b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n")
            assert c.response().status == 200
        # Garbage bytes get a 400 and the broker keeps serving.
        with socket.create_connection(("127.0.0.1", port)) as s:
            s.sendall(os.urandom(512).replace(b"\r", b"").replace(b"\n", b"") + b"\r\n\r\n")
        assert requests.get(srv.url("/healthz")).status_code == 200
        assert srv.alive()
    finally:
        srv.stop()


def test_bad_config_is_reported(datadir):
    path = os.path.join(datadir, "bad.yaml")
    with open(path, "w") as f:
        f.write("broker:\n  fsync: sometimes\n")
    srv = start(["broker", "--config", path, "--data", datadir])
    code = srv.proc.wait(scaled(10))
    assert code != 0
    assert re.search(r"bad\.yaml:2: broker\.fsync", srv.log()), srv.log()
    srv.stop()


def test_large_messages_and_body_cache_bound(datadir):
    cfg = "broker:\n  max_message_bytes: 1m\n  body_cache_bytes: 0\n"
    srv = start_broker(datadir, config=cfg)
    try:
        r = requests.put(api(srv, "/queues/big"), json={})
        assert r.status_code == 200
        attrs = requests.get(api(srv, "/queues/big")).json()["attributes"]
        assert attrs["MaximumMessageSize"] == "1048576"
        body = ("0123456789abcdef" * 65536)[:1048576 - 100]
        r = requests.post(api(srv, "/queues/big/messages"), data=body.encode(),
                          headers={"Content-Type": "text/plain"})
        assert r.status_code == 200, r.text
        r = requests.post(api(srv, "/queues/big/messages"), data=(body + "x" * 200).encode(),
                          headers={"Content-Type": "text/plain"})
        assert r.status_code == 400
        # Nothing cached: the body comes back from the log.
        assert "floodgate_broker_body_cache_bytes 0" in requests.get(srv.url("/metrics")).text
        msgs = receive(srv, "big")
        assert len(msgs) == 1 and msgs[0]["body"] == body
    finally:
        srv.stop()


def test_signatures_required_when_configured(datadir):
    cfg = "broker:\n  auth:\n    access_key: AKIDTEST\n    secret_key: s3cret\n"
    srv = start_broker(datadir, config=cfg)
    try:
        r = requests.get(api(srv, "/queues"))
        assert r.status_code == 403, r.text
        r = requests.post(srv.url("/"), data={"Action": "ListQueues", "Version": "2012-11-05"})
        assert r.status_code == 403
        # Health and metrics stay open.
        assert requests.get(srv.url("/healthz")).status_code == 200
        import boto3
        import botocore.exceptions

        def client(secret):
            return boto3.client("sqs", endpoint_url=srv.url(""), region_name="us-east-1",
                                aws_access_key_id="AKIDTEST", aws_secret_access_key=secret)
        good = client("s3cret")
        url = good.create_queue(QueueName="signed")["QueueUrl"]
        good.send_message(QueueUrl=url, MessageBody="ok")
        with pytest.raises(botocore.exceptions.ClientError):
            client("wrong").send_message(QueueUrl=url, MessageBody="no")
        assert good.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])[
            "Attributes"]["ApproximateNumberOfMessages"] == "1"
    finally:
        srv.stop()


def test_sigterm_answers_long_polls_and_exits(datadir):
    srv = start_broker(datadir)
    create(srv, "stop")
    idle = requests.Session()
    idle.get(api(srv, "/queues"))  # a keep-alive connection left open
    got = {}

    def waiter():
        t0 = time.monotonic()
        got["r"] = requests.post(api(srv, "/queues/stop/receive"), params={"wait": 20}, timeout=30)
        got["t"] = time.monotonic() - t0

    th = threading.Thread(target=waiter)
    th.start()
    wait_parked(srv, 1)
    t0 = time.monotonic()
    srv.proc.send_signal(signal.SIGTERM)
    code = srv.proc.wait(scaled(5))
    th.join(scaled(5))
    assert code == 0, srv.log()
    assert time.monotonic() - t0 < 10  # answered at once, not after its 20 s
    assert got["r"].status_code == 200 and got["r"].json()["messages"] == []
    assert "stopped" in srv.log()
    srv.stop()


def test_admin_listener(datadir):
    admin = free_port()
    srv = start_broker(datadir, extra=["--admin", f"127.0.0.1:{admin}"])
    try:
        create(srv, "adm")
        send(srv, "adm", "x")
        base = f"http://127.0.0.1:{admin}"
        q = requests.get(base + "/queues").json()["queues"]
        assert q == [{"name": "adm", "fifo": False, "messages": 1, "in_flight": 0, "delayed": 0}]
        assert 'floodgate_broker_queue_messages{queue="adm",state="visible"} 1' in requests.get(base + "/metrics").text
        assert requests.get(base + "/healthz").json()["status"] == "ok"
    finally:
        srv.stop()
