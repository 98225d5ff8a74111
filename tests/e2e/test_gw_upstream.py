"""End-to-end: how `floodgate gateway` handles what servers send back, with
a scriptable raw-socket backend: chunked and close-delimited responses
(dechunked for HTTP/1.0 clients), hop-by-hop response fields, interim
responses, truncated and malformed responses, and resets (retried for
idempotent requests only)."""

import os
import sys

import pytest
import requests

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fgtest import Conn, scaled  # noqa: E402
from gwtest import RawBackend, config, echo, gateway, route, service  # noqa: E402

T = scaled(5)
BODY = b"".join(b"line %04d of a chunked body\n" % i for i in range(500))


def chunked(data, size=1000):
    out = b""
    for i in range(0, len(data), size):
        part = data[i:i + size]
        out += b"%x\r\n" % len(part) + part + b"\r\n"
    return out + b"0\r\n\r\n"


def respond(method, target, head, body):
    path = target.split("?")[0]
    if path == "/chunked":
        return (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n" +
                chunked(BODY))
    if path == "/close-delimited":
        return b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n" + BODY
    if path == "/hop":
        return (b"HTTP/1.1 200 OK\r\nConnection: close, X-Private\r\nX-Private: secret\r\n"
                b"Keep-Alive: timeout=5\r\nProxy-Connection: keep-alive\r\nUpgrade: h2c\r\n"
                b"Trailer: X-T\r\nX-Public: yes\r\nVia: 1.1 origin-cache\r\n"
                b"Content-Length: 2\r\n\r\nok")
    if path == "/early-hints":
        return (b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n"
                b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhints")
    if path == "/truncated":
        return b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + b"x" * 100
    if path == "/truncated-chunked":
        return b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n100\r\n" + b"y" * 50
    if path == "/garbage":
        return b"HTTP/1.1 abc\r\n\r\n"
    if path == "/bad-chunk":
        return b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n"
    if path == "/switch":
        return b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: upgrade\r\n\r\n"
    if path == "/cl-and-te":
        return (b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"
                b"3\r\nabc\r\n0\r\n\r\n")
    if path == "/no-content":
        return b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n"
    if path == "/extra-bytes":
        return b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabcHTTP/1.1 200 OK\r\nX-Injected: 1\r\n\r\n"
    if path.startswith("/reset"):
        return None
    return b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nraw"


@pytest.fixture(scope="module")
def env():
    with RawBackend(respond) as raw, RawBackend(respond) as flaky, echo("steady") as steady:
        cfg = config([service("raw", [raw]), service("retry", [flaky, steady])],
                     routes=[route("/", "raw"), route("/retry", "retry", strip=True)])
        with gateway(cfg) as gw:
            gw.raw, gw.flaky = raw, flaky
            yield gw


def get(gw, path, version="1.1", extra=b"", want_close=False):
    """(response, closed): closed tells whether the gateway closed the
    connection after the response (only looked at when want_close)."""
    with Conn(gw.port) as c:
        c.send(f"GET {path} HTTP/{version}\r\nHost: t\r\n".encode() + extra + b"\r\n")
        r = c.response()
        closed = c.closed(timeout=1) if want_close else None
    return r, closed


def test_chunked_response_to_http11_client(env):
    r, _ = get(env, "/chunked")
    assert r.status == 200
    assert r.header("Transfer-Encoding") == "chunked"
    assert r.body == BODY


def test_chunked_response_dechunked_for_http10_client(env):
    r, closed = get(env, "/chunked", version="1.0", want_close=True)
    assert r.status == 200
    assert r.header("Transfer-Encoding") is None
    assert r.body == BODY
    assert closed


def test_chunked_response_with_requests(env):
    r = requests.get(env.url("/chunked"), timeout=T)
    assert r.status_code == 200 and r.content == BODY


def test_close_delimited_response(env):
    r, closed = get(env, "/close-delimited", want_close=True)
    assert r.status == 200
    assert r.header("Connection") == "close"
    assert r.body == BODY
    assert closed


def test_hop_by_hop_response_fields_removed(env):
    r, _ = get(env, "/hop")
    assert r.status == 200 and r.body == b"ok"
    names = {k.lower() for k, _ in r.headers}
    for gone in ("x-private", "keep-alive", "proxy-connection", "upgrade", "trailer"):
        assert gone not in names, r.headers
    assert r.header("X-Public") == "yes"
    assert r.header("Via") == "1.1 origin-cache, 1.1 floodgate"


def test_interim_response_forwarded_to_http11_only(env):
    with Conn(env.port) as c:
        c.send(b"GET /early-hints HTTP/1.1\r\nHost: t\r\n\r\n")
        first = c.response()
        assert first.status == 103
        assert first.header("Link") == "</a.css>; rel=preload"
        final = c.response()
        assert final.status == 200 and final.body == b"hints"
    r, _ = get(env, "/early-hints", version="1.0")
    assert r.status == 200 and r.body == b"hints"


def test_no_content_then_next_request(env):
    with Conn(env.port) as c:
        c.send(b"GET /no-content HTTP/1.1\r\nHost: t\r\n\r\nGET /plain HTTP/1.1\r\nHost: t\r\n\r\n")
        assert c.response().status == 204
        r = c.response()
        assert r.status == 200 and r.body == b"raw"


def test_bytes_after_response_are_not_forwarded(env):
    with Conn(env.port) as c:
        c.send(b"GET /extra-bytes HTTP/1.1\r\nHost: t\r\n\r\nGET /plain HTTP/1.1\r\nHost: t\r\n\r\n")
        r1 = c.response()
        assert r1.status == 200 and r1.body == b"abc"
        r2 = c.response()
        assert r2.status == 200 and r2.body == b"raw"
        assert r2.header("X-Injected") is None


@pytest.mark.parametrize("path", ["/truncated", "/truncated-chunked"])
def test_truncated_response_is_not_completed(env, path):
    # The response head went out already: the only honest signal left is
    # to close the connection before the body's declared end.
    with Conn(env.port) as c:
        c.send(f"GET {path} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
        data = c.read_all()
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    if path == "/truncated":
        assert len(body) < 1000
    else:
        assert not body.endswith(b"0\r\n\r\n")


@pytest.mark.parametrize("path", ["/garbage", "/switch", "/cl-and-te", "/bad-chunk"])
def test_malformed_response_is_502(env, path):
    r, _ = get(env, path)
    if path == "/bad-chunk" and r.status == 200:
        # The head was fine and went out; the bad chunk can only close.
        assert r.body != b"hello"
        return
    assert r.status == 502, (r.status, r.body)


def test_reset_is_retried_for_get(env):
    # "retry" alternates between a backend that resets every connection
    # and a healthy echo: a GET never fails.
    before = env.flaky.requests
    with requests.Session() as s:
        for i in range(6):
            r = s.get(env.url(f"/retry/reset{i}"), timeout=T)
            assert r.status_code == 200, (i, r.status_code)
            assert r.headers["X-Server"] == "steady"
    assert env.flaky.requests > before, "the resetting backend was never tried"


def test_reset_is_not_retried_for_post(env):
    statuses = []
    before = env.flaky.requests
    for i in range(4):
        r = requests.post(env.url(f"/retry/reset{i}"), data=b"once", timeout=T)
        statuses.append(r.status_code)
    tried = env.flaky.requests - before
    assert tried >= 1
    # Each POST that reached the resetting backend fails; none is replayed.
    assert statuses.count(502) == tried, statuses
    assert statuses.count(200) == 4 - tried, statuses
