"""End-to-end: timeouts and upstream failures of `floodgate gateway`.
Slow clients get 408, slow servers 504, unreachable ones 502, and a
request that cannot have reached a server is retried on another one."""

import contextlib
import os
import socket
import sys
import time

import pytest
import requests

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fgtest import Conn, free_port, scaled  # noqa: E402
from gwtest import config, echo, gateway, route, service  # noqa: E402

HEADER_S = 1.0     # timeouts.client_header
BODY_S = 1.0       # timeouts.client_body
IDLE_S = 1.5       # timeouts.client_idle
CONNECT_S = 0.5    # timeouts.upstream_connect
RESPONSE_S = 1.0   # timeouts.upstream_response
# A deadline never fires early (the lower bounds are exact, less a clock
# tick), but a busy machine can make it late by a lot: the upper bounds
# only catch a timer that never fires. Which timer fired is told by the
# status (408, 504 or 502), not by the clock.
MARGIN = scaled(5.0)


@contextlib.contextmanager
def blackhole():
    """A port whose accept queue is full: SYNs to it go unanswered, so a
    connect there hangs until the connector gives up."""
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(0)
    port = ls.getsockname()[1]
    filler = socket.create_connection(("127.0.0.1", port))
    try:
        yield port
    finally:
        filler.close()
        ls.close()


@pytest.fixture(scope="module")
def env():
    dead = free_port()  # nothing listens here
    with echo("ok") as ok, echo("slow", "--latency", "3000") as slow, blackhole() as hole:
        cfg = config(
            [service("ok", [ok]), service("slow", [slow]), service("dead", [dead]),
             service("mixed", [dead, ok]), service("hole", [hole]), service("holemix", [hole, ok])],
            routes=[route("/", "ok"), route("/slow", "slow"), route("/dead", "dead"),
                    route("/mixed", "mixed"), route("/hole", "hole"), route("/holemix", "holemix")],
            timeouts={"client_header": "1s", "client_body": "1s", "client_idle": "1500ms",
                      "upstream_connect": "500ms", "upstream_response": "1s"})
        with gateway(cfg) as gw:
            yield gw


def timed_response(c):
    t0 = time.monotonic()
    r = c.response()
    return r, time.monotonic() - t0


# ---- slow clients ----------------------------------------------------------

def test_half_head_gets_408(env):
    with Conn(env.port, timeout=HEADER_S + MARGIN + 1) as c:
        t0 = time.monotonic()
        c.send(b"GET / HTTP/1.1\r\nHost: t\r\nX-Half: ")
        r = c.response()
        elapsed = time.monotonic() - t0
        assert r.status == 408
        assert r.header("Connection", "").lower() == "close"
        assert HEADER_S - 0.1 <= elapsed <= HEADER_S + MARGIN, elapsed
        assert c.closed()


def test_drip_fed_head_gets_408_on_the_whole_head_deadline(env):
    # A byte every 100 ms keeps the connection busy but the head never
    # completes: the deadline covers the whole head, not each read.
    with Conn(env.port, timeout=HEADER_S + MARGIN + 1) as c:
        t0 = time.monotonic()
        c.send(b"GET / HTTP/1.1\r\nHost: t\r\n")
        c.sock.setblocking(False)
        got = b""
        for _ in range(int((HEADER_S + MARGIN) / 0.1) + 5):
            try:
                c.sock.send(b"X")
            except OSError:
                break
            time.sleep(0.1)
            try:
                got += c.sock.recv(4096)
            except BlockingIOError:
                continue
            except OSError:
                break
            if got:
                break
        elapsed = time.monotonic() - t0
        c.sock.setblocking(True)
        c.buf = got
        r = c.response()
        assert r.status == 408
        assert elapsed <= HEADER_S + MARGIN + 0.2, elapsed


def test_idle_keepalive_connection_closed_quietly(env):
    with Conn(env.port, timeout=5) as c:
        c.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        assert c.response().status == 200
        t0 = time.monotonic()
        assert c.closed(timeout=IDLE_S + MARGIN + 1), "idle connection not closed"
        elapsed = time.monotonic() - t0
        assert IDLE_S - 0.1 <= elapsed <= IDLE_S + MARGIN, elapsed


def test_connection_without_any_request_gets_408(env):
    with Conn(env.port, timeout=HEADER_S + MARGIN + 1) as c:
        t0 = time.monotonic()
        data = c.read_all()
        elapsed = time.monotonic() - t0
    # A connection that never sent a byte is closed at the header
    # deadline; a 408 there is allowed but not required.
    assert data == b"" or data.startswith(b"HTTP/1.1 408 ")
    assert elapsed <= HEADER_S + MARGIN, elapsed


def test_stalled_body_gets_408(env):
    with Conn(env.port, timeout=BODY_S + MARGIN + 1) as c:
        c.send(b"POST /sink HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n0123456789")
        r, elapsed = timed_response(c)
        assert r.status == 408
        assert BODY_S - 0.1 <= elapsed <= BODY_S + MARGIN, elapsed
        assert c.closed()


# ---- slow and unreachable servers ------------------------------------------

def test_slow_upstream_gets_504(env):
    t0 = time.monotonic()
    r = requests.get(env.url("/slow"), timeout=RESPONSE_S + MARGIN + 1)
    elapsed = time.monotonic() - t0
    assert r.status_code == 504
    assert RESPONSE_S - 0.1 <= elapsed <= RESPONSE_S + MARGIN, elapsed


def test_gateway_serves_after_504(env):
    with Conn(env.port, timeout=5) as c:
        c.send(b"GET /slow HTTP/1.1\r\nHost: t\r\n\r\n")
        assert c.response().status == 504
        # The stream is still in sync: the connection may be reused.
        if not c.closed(timeout=0.05):
            c.send(b"GET /fine HTTP/1.1\r\nHost: t\r\n\r\n")
            r = c.response()
            assert r.status == 200 and r.header("X-Server") == "ok"


def test_client_gone_while_upstream_slow(env):
    with Conn(env.port) as c:
        c.send(b"GET /slow HTTP/1.1\r\nHost: t\r\n\r\n")
        time.sleep(0.1)
    r = requests.get(env.url("/after"), timeout=scaled(5))
    assert r.status_code == 200


def test_nothing_listening_gives_502(env):
    # Refused at once: a 502, where running out of the connect time would
    # be a 504.
    r = requests.get(env.url("/dead"), timeout=scaled(5))
    assert r.status_code == 502


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_refused_connect_is_retried_on_another_server(env, method):
    # A refused connect means the request reached nobody: any method may
    # be retried, and no client sees a failure.
    with requests.Session() as s:
        for i in range(10):
            r = s.request(method, env.url(f"/mixed/{i}"), data=b"body" if method == "POST" else None,
                          timeout=scaled(5))
            assert r.status_code == 200, (i, r.status_code, r.text)
            assert r.headers["X-Server"] == "ok"


def test_connect_timeout_gives_504(env):
    # docs/config.md, upstream_connect: "A refused connection is a 502;
    # running out of time is a 504."
    t0 = time.monotonic()
    r = requests.get(env.url("/hole"), timeout=CONNECT_S + MARGIN + 1)
    elapsed = time.monotonic() - t0
    assert CONNECT_S - 0.1 <= elapsed <= CONNECT_S + MARGIN, elapsed
    assert r.status_code == 504


def test_connect_timeout_is_retried_on_another_server(env):
    for i in range(3):
        r = requests.get(env.url(f"/holemix/{i}"), timeout=scaled(5))
        assert r.status_code == 200
        assert r.headers["X-Server"] == "ok"
