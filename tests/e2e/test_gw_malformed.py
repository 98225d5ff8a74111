"""End-to-end: malformed and ambiguous requests to `floodgate gateway` over
raw sockets. Every framing ambiguity that could smuggle a request past the
gateway must be refused with the right status, the connection closed, and
nothing forwarded to the backend."""

import os
import sys
import time

import pytest
import requests

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fgtest import Conn, scaled  # noqa: E402
from gwtest import backends, config, gateway, service  # noqa: E402

MAX_BODY = 64 * 1024


@pytest.fixture(scope="module")
def env():
    with backends("m1") as (m1,):
        cfg = config([service("app", [m1])],
                     limits={"max_header_bytes": "8k", "max_headers": 50,
                             "max_body_bytes": MAX_BODY})
        with gateway(cfg) as gw:
            yield gw


def backend_requests(gw):
    """Requests the gateway sent to the backend, once none is in flight. A
    request is counted just after its response is written, so the count
    may trail what the client has seen; its in-flight place is given back
    only after it was counted, so no request in flight means an exact
    count."""
    deadline = time.monotonic() + scaled(10)
    while True:
        r = gw.admin("GET", "/services/app")
        assert r.status_code == 200
        servers = r.json()["servers"]
        if sum(s["inflight"] for s in servers) == 0:
            return sum(s["requests"] for s in servers)
        assert time.monotonic() < deadline, servers
        time.sleep(0.01)


def refused(gw, data, status, forwarded=False, close=True):
    """Sends data, expects one error response with status, then the
    connection closed (close=False: a request whose framing was fine may
    keep it, and then it must still serve); and (unless forwarded) no
    request at the backend."""
    before = backend_requests(gw)
    with Conn(gw.port) as c:
        c.send(data)
        r = c.response()
        assert r.status == status, (r.status, r.body)
        assert r.body.startswith(str(status).encode())
        if close or r.header("Connection", "").lower() == "close":
            assert r.header("Connection", "").lower() == "close"
            assert c.closed(), "the connection must close after a framing error"
        else:
            c.send(b"GET /next HTTP/1.1\r\nHost: t\r\n\r\n")
            assert c.response().status == 200
            before += 1
    if not forwarded:
        assert backend_requests(gw) == before, "a refused request reached the backend"
    return r


H = b"Host: t\r\n"


# ---- request smuggling -----------------------------------------------------

def test_content_length_and_transfer_encoding(env):
    refused(env, b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
                 b"0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: t\r\n\r\n", 400)


def test_transfer_encoding_then_content_length(env):
    refused(env, b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\nContent-Length: 40\r\n\r\n"
                 b"0\r\n\r\n", 400)


@pytest.mark.parametrize("cl", [b"Content-Length: 5\r\nContent-Length: 6\r\n",
                                b"Content-Length: 5\r\nContent-Length: 5\r\n",
                                b"Content-Length: 5, 5\r\n",
                                b"Content-Length: +5\r\n",
                                b"Content-Length: -1\r\n",
                                b"Content-Length: 0x5\r\n",
                                b"Content-Length: 99999999999999999999999\r\n"],
                         ids=["different", "same", "list", "plus", "negative", "hex", "overflow"])
def test_bad_or_duplicate_content_length(env, cl):
    refused(env, b"POST / HTTP/1.1\r\n" + H + cl + b"\r\nhello", 400)


@pytest.mark.parametrize("chunk", [b"zz\r\nhello\r\n0\r\n\r\n",
                                   b"5\r\nhelloXX0\r\n\r\n",
                                   b"-5\r\nhello\r\n0\r\n\r\n",
                                   b"FFFFFFFFFFFFFFFFF\r\nx\r\n",
                                   b"5\nhello\n0\n\n",
                                   b" 5\r\nhello\r\n0\r\n\r\n"],
                         ids=["nonhex", "no-crlf-after-data", "negative", "too-big", "bare-lf",
                              "leading-space"])
def test_bad_chunked_body(env, chunk):
    # The head is valid, so the request may already be on its way to the
    # backend when the bad chunk is seen; the client still gets a 400.
    refused(env, b"POST /sink HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n" + chunk, 400,
            forwarded=True)


def test_content_length_body_is_not_a_second_request(env):
    inner = b"GET /smuggled HTTP/1.1\r\nHost: t\r\n\r\n"
    with Conn(env.port) as c:
        c.send(b"POST /sink HTTP/1.1\r\n" + H + b"Content-Length: %d\r\n\r\n" % len(inner) + inner)
        r = c.response()
        assert r.status == 200
        assert r.body == b"%d\n" % len(inner)
        assert not c.closed(timeout=0.3), "exactly one response expected"


@pytest.mark.parametrize("te", [b"Transfer-Encoding: chunked, chunked\r\n",
                                b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
                                b"Transfer-Encoding: chunked,\r\n"],
                         ids=["twice-list", "twice-fields", "empty-element"])
def test_chunked_twice_or_malformed_list(env, te):
    refused(env, b"POST / HTTP/1.1\r\n" + H + te + b"\r\n0\r\n\r\n", 400)


def test_transfer_encoding_in_http10(env):
    refused(env, b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400)


@pytest.mark.parametrize("te", [b"gzip", b"gzip, chunked", b"xchunked", b"identity"])
def test_unsupported_transfer_coding(env, te):
    refused(env, b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: " + te + b"\r\n\r\n0\r\n\r\n", 501)


# ---- malformed heads -------------------------------------------------------

@pytest.mark.parametrize("head", [
    b"GET / HTTP/1.1\nHost: t\n\n",
    b"GET / HTTP/1.1\r\nHost: t\nX-A: b\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: t\rX-A: b\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: t\r\nX-A: a\r\n b\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: t\r\nX-A: a\r\n\tb\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost : t\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: t\r\nX-A : b\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: t\r\nX A: b\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: t\r\nX-A: a\x00b\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: t\r\nNoColon\r\n\r\n",
    b"GET / HTTP/1.1\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n",
    b"GET /a b HTTP/1.1\r\nHost: t\r\n\r\n",
    b"GET  / HTTP/1.1\r\nHost: t\r\n\r\n",
    b"GET / HTTP/1.1 \r\nHost: t\r\n\r\n",
    b"GET /\x7f HTTP/1.1\r\nHost: t\r\n\r\n",
    b"GET / HTTX/1.1\r\nHost: t\r\n\r\n",
    b"G(T / HTTP/1.1\r\nHost: t\r\n\r\n",
], ids=["bare-lf", "bare-lf-header", "bare-cr", "obs-fold-sp", "obs-fold-tab", "space-before-colon-host",
        "space-before-colon", "space-in-name", "nul-in-value", "no-colon", "missing-host",
        "two-hosts", "bad-host", "space-in-target", "double-space", "trailing-space",
        "ctl-in-target", "bad-version", "bad-method"])
def test_malformed_head_is_400(env, head):
    refused(env, head, 400)


@pytest.mark.parametrize("version", [b"HTTP/2.0", b"HTTP/1.2", b"HTTP/0.9", b"HTTP/3.0"])
def test_unsupported_version_is_505(env, version):
    refused(env, b"GET / " + version + b"\r\nHost: t\r\n\r\n", 505)


def test_too_many_headers_is_431(env):
    hs = b"".join(b"X-H%d: v\r\n" % i for i in range(60))
    refused(env, b"GET / HTTP/1.1\r\n" + H + hs + b"\r\n", 431)


def test_oversized_head_is_431(env):
    refused(env, b"GET / HTTP/1.1\r\n" + H + b"X-Big: " + b"a" * 9000 + b"\r\n\r\n", 431)


def test_oversized_request_line_is_431(env):
    refused(env, b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\n" + H + b"\r\n", 431)


def test_oversized_head_refused_before_it_ends(env):
    # No final CRLF: the limit applies while the head is still arriving.
    with Conn(env.port) as c:
        c.send(b"GET / HTTP/1.1\r\n" + H + b"X-Big: " + b"a" * 20000)
        r = c.response()
        assert r.status == 431


def test_head_just_under_limits_passes(env):
    hs = b"".join(b"X-H%d: v\r\n" % i for i in range(48))
    with Conn(env.port) as c:
        c.send(b"GET /ok HTTP/1.1\r\n" + H + hs + b"\r\n")
        assert c.response().status == 200


def test_relative_target_is_400(env):
    # Well framed, so the connection may stay open.
    refused(env, b"GET nopath HTTP/1.1\r\nHost: t\r\n\r\n", 400, close=False)


def test_connect_method_refused(env):
    refused(env, b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", 405,
            close=False)


# ---- body limits -----------------------------------------------------------

def test_content_length_over_limit_is_413_at_once(env):
    # Refused from the head alone: the client need not send the body.
    refused(env, b"POST /sink HTTP/1.1\r\n" + H + b"Content-Length: %d\r\n\r\n" % (MAX_BODY + 1), 413)


def test_content_length_at_limit_passes(env):
    r = requests.post(env.url("/sink"), data=b"x" * MAX_BODY, timeout=scaled(5))
    assert r.status_code == 200 and r.text == f"{MAX_BODY}\n"


def test_chunked_far_over_limit_is_413(env):
    chunk = b"x" * 16384
    body = b"".join(b"4000\r\n" + chunk + b"\r\n" for _ in range(MAX_BODY * 4 // 16384))
    with Conn(env.port) as c:
        c.send(b"POST /sink HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n")
        try:
            c.send(body + b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass
        r = c.response()
        assert r.status == 413
        assert c.closed()


def test_chunked_just_over_limit_is_413(env):
    # docs/config.md: "Largest request body. Larger gets 413." The payload
    # here is MAX_BODY + 1 bytes in one chunk.
    n = MAX_BODY + 1
    with Conn(env.port) as c:
        c.send(b"POST /sink HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n")
        try:
            c.send(b"%x\r\n" % n + b"y" * n + b"\r\n0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass
        r = c.response()
        assert r.status == 413, (r.status, r.body)


def test_gateway_still_serves_after_garbage(env):
    with Conn(env.port) as c:
        c.send(os.urandom(4096).replace(b"\r\n", b"..") + b"\r\n\r\n")
        data = c.read_all()
        assert data == b"" or data.startswith(b"HTTP/1.1 4")
    r = requests.get(env.url("/alive"), timeout=scaled(5))
    assert r.status_code == 200
