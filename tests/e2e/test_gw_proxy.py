"""End-to-end: `floodgate gateway` proxying real clients to echo backends.
Bodies both ways, keep-alive, pipelining, HEAD, 100-continue, forwarding
headers, hop-by-hop removal, HTTP/1.0 clients, curl, large responses."""

import os
import socket
import subprocess
import sys
import threading
import time

import pytest
import requests

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fgtest import Conn, exchange, scaled  # noqa: E402
from gwtest import (backends, config, echo, gateway, metric, route,  # noqa: E402
                    service)

T = scaled(5)


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    logdir = tmp_path_factory.mktemp("gwlog")
    access = str(logdir / "access.log")
    with backends("e1", "e2") as (e1, e2), echo("big", "--size", "8m") as big:
        cfg = config([service("app", [e1, e2]), service("big", [big])],
                     routes=[route("/", "app"), route("/big", "big")],
                     access_log=access)
        with gateway(cfg) as gw:
            gw.access_log = access
            yield gw


def raw(gw, timeout=5):
    return Conn(gw.port, timeout=timeout)


# ---- bodies ----------------------------------------------------------------

def test_get_reaches_a_backend(env):
    r = requests.get(env.url("/hello?x=1"), timeout=T)
    assert r.status_code == 200
    assert r.headers["X-Server"] in ("e1", "e2")
    assert r.text == f"{r.headers['X-Server']} GET /hello?x=1\n"
    assert r.headers["Via"] == "1.1 floodgate"


@pytest.mark.parametrize("method", ["POST", "PUT"])
@pytest.mark.parametrize("size", [0, 1, 65535, 65536, 1000003])
def test_content_length_body_arrives_intact(env, method, size):
    body = os.urandom(size)
    r = requests.request(method, env.url("/sink"), data=body, timeout=T)
    assert r.status_code == 200
    assert r.text == f"{size}\n"
    if size:
        assert r.headers["X-Received-Bytes"] == str(size)


def test_chunked_body_from_requests_generator(env):
    parts = [os.urandom(n) for n in (1, 100, 16384, 70000, 3)]

    def gen():
        yield from parts

    r = requests.post(env.url("/sink"), data=gen(), timeout=T)
    total = sum(map(len, parts))
    assert r.status_code == 200
    assert r.headers["X-Received-Bytes"] == str(total)
    assert r.text == f"{total}\n"


def test_chunked_body_raw_with_extensions_and_trailer(env):
    with raw(env) as c:
        c.send(b"POST /sink HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"5;ext=1\r\nhello\r\n"
               b"a\r\n0123456789\r\n"
               b"0\r\nX-Trailer: yes\r\n\r\n")
        r = c.response()
        assert r.status == 200
        assert r.header("X-Received-Bytes") == "15"
        assert r.body == b"15\n"
        # The connection stays usable: framing ended exactly.
        c.send(b"GET /after HTTP/1.1\r\nHost: t\r\n\r\n")
        r = c.response()
        assert r.status == 200 and r.body.endswith(b" GET /after\n")


def test_chunked_request_is_forwarded_chunked(env):
    with raw(env) as c:
        c.send(b"POST /headers HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"3\r\nabc\r\n0\r\n\r\n")
        r = c.response()
    assert r.status == 200
    head = r.body.decode()
    assert "Transfer-Encoding: chunked\r\n" in head
    assert "Content-Length" not in head


def test_body_split_over_many_sends(env):
    body = b"x" * 50000
    with raw(env) as c:
        c.send(b"POST /sink HTTP/1.1\r\nHost: t\r\nContent-Length: 50000\r\n\r\n")
        for i in range(0, len(body), 7000):
            c.send(body[i:i + 7000])
        r = c.response()
    assert r.status == 200 and r.body == b"50000\n"


def test_large_response_streams_through(env):
    with requests.get(env.url("/big"), stream=True, timeout=T) as r:
        assert r.status_code == 200
        assert r.headers["Content-Length"] == str(8 << 20)
        n = sum(len(b) for b in r.iter_content(1 << 16))
    assert n == 8 << 20


# ---- connections -----------------------------------------------------------

def test_client_keepalive_reuses_one_connection(env):
    before = env.metrics()
    with requests.Session() as s:
        for i in range(20):
            r = s.get(env.url(f"/k{i}"), timeout=T)
            assert r.status_code == 200
            assert r.text.endswith(f"GET /k{i}\n")
    after = env.metrics()
    accepted = (metric(after, "floodgate_gateway_connections_accepted_total") -
                metric(before, "floodgate_gateway_connections_accepted_total"))
    assert accepted == 1
    # Upstream connections were pooled and reused too.
    reused = sum(metric(after, "floodgate_gateway_upstream_connections_reused_total",
                        service="app", server=s) -
                 metric(before, "floodgate_gateway_upstream_connections_reused_total",
                        service="app", server=s)
                 for s in {lab[1][1] for (n, lab) in after
                           if n == "floodgate_gateway_upstream_connections_reused_total"
                           and lab[0][1] == "app"})
    assert reused >= 15


def test_pipelined_requests_answered_in_order(env):
    with raw(env) as c:
        c.send(b"GET /p1 HTTP/1.1\r\nHost: t\r\n\r\n"
               b"POST /sink HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\n\r\nabcd"
               b"GET /p3 HTTP/1.1\r\nHost: t\r\n\r\n")
        r1, r2, r3 = c.response(), c.response(), c.response()
        assert (r1.status, r2.status, r3.status) == (200, 200, 200)
        assert r1.body.endswith(b" GET /p1\n")
        assert r2.body == b"4\n"
        assert r3.body.endswith(b" GET /p3\n")
        # Nothing more: exactly three responses.
        c.sock.settimeout(0.3)
        with pytest.raises(socket.timeout):
            c.sock.recv(1)


def test_pipelined_many_small_requests(env):
    n = 50
    with raw(env) as c:
        c.send(b"".join(f"GET /q{i} HTTP/1.1\r\nHost: t\r\n\r\n".encode() for i in range(n)))
        for i in range(n):
            r = c.response()
            assert r.status == 200
            assert r.body.endswith(f" GET /q{i}\n".encode())


def test_head_has_no_body_and_keeps_framing(env):
    with raw(env) as c:
        c.send(b"HEAD /h HTTP/1.1\r\nHost: t\r\n\r\nGET /g HTTP/1.1\r\nHost: t\r\n\r\n")
        r = c.response(head_only=True)
        assert r.status == 200
        assert int(r.header("Content-Length")) == len("e1 HEAD /h\n")
        r2 = c.response()
        assert r2.status == 200 and r2.body.endswith(b" GET /g\n")


def test_head_with_requests(env):
    r = requests.head(env.url("/big"), timeout=T)
    assert r.status_code == 200
    assert r.headers["Content-Length"] == str(8 << 20)
    assert r.content == b""


def test_expect_100_continue(env):
    with raw(env, timeout=1) as c:
        c.send(b"POST /sink HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n"
               b"Expect: 100-continue\r\n\r\n")
        interim = c.response()  # must come before we send the body
        assert interim.status == 100
        c.send(b"0123456789")
        r = c.response()
        assert r.status == 200
        assert r.body == b"10\n"
        assert r.header("X-Received-Bytes") == "10"


def test_expect_100_continue_with_curl(env, tmp_path):
    f = tmp_path / "body"
    f.write_bytes(os.urandom(300000))
    # curl waits up to --expect100-timeout for the 100 before sending the
    # body: a gateway that holds the interim response back stalls it.
    p = subprocess.run(["curl", "-sS", "--max-time", str(int(scaled(2))), "--expect100-timeout", "30",
                        "-H", "Expect: 100-continue", "--data-binary", f"@{f}",
                        "-o", "-", "-w", "\n%{http_code}", env.url("/sink")],
                       capture_output=True, timeout=T + 5)
    assert p.returncode == 0, p.stderr
    body, code = p.stdout.rsplit(b"\n", 1)
    assert code == b"200"
    assert body == b"300000\n"


# ---- header rewriting ------------------------------------------------------

def headers_seen(gw, extra=b"", version=b"1.1", host=b"Host: gw.test\r\n"):
    """The request head as the backend received it, as a list of lines."""
    with raw(gw) as c:
        c.send(b"GET /headers HTTP/" + version + b"\r\n" + host + extra + b"\r\n")
        r = c.response()
    assert r.status == 200
    return r.body.decode("latin-1").split("\r\n")


def field(lines, name):
    name = name.lower() + ":"
    return [ln.split(":", 1)[1].strip() for ln in lines if ln.lower().startswith(name)]


def test_forwarding_headers_added(env):
    lines = headers_seen(env)
    assert lines[0] == "GET /headers HTTP/1.1"
    assert field(lines, "X-Forwarded-For") == ["127.0.0.1"]
    assert field(lines, "X-Forwarded-Proto") == ["http"]
    assert field(lines, "Forwarded") == ['for=127.0.0.1;host="gw.test";proto=http']
    assert field(lines, "Via") == ["1.1 floodgate"]
    assert field(lines, "Host") == ["gw.test"]


def test_forwarding_headers_merged_with_client_values(env):
    lines = headers_seen(env, b"X-Forwarded-For: 10.0.0.1\r\nForwarded: for=10.0.0.1\r\n"
                              b"Via: 1.0 edge\r\nX-Forwarded-Proto: https\r\n")
    assert field(lines, "X-Forwarded-For") == ["10.0.0.1, 127.0.0.1"]
    assert field(lines, "Forwarded") == ['for=10.0.0.1, for=127.0.0.1;host="gw.test";proto=http']
    assert field(lines, "Via") == ["1.0 edge, 1.1 floodgate"]
    # The gateway speaks plain HTTP: it states the proto it saw.
    assert field(lines, "X-Forwarded-Proto") == ["http"]


def test_hop_by_hop_headers_removed(env):
    lines = headers_seen(env, b"Connection: keep-alive, X-Secret, Upgrade\r\n"
                              b"X-Secret: s3cr3t\r\nKeep-Alive: timeout=5\r\nTE: trailers\r\n"
                              b"Upgrade: websocket\r\nProxy-Connection: keep-alive\r\n"
                              b"Trailer: X-T\r\nX-Kept: yes\r\n")
    for name in ("Connection", "X-Secret", "Keep-Alive", "TE", "Upgrade", "Proxy-Connection",
                 "Trailer"):
        assert field(lines, name) == [], f"{name} was forwarded: {lines}"
    assert field(lines, "X-Kept") == ["yes"]


def test_response_gets_via_and_no_hop_by_hop(env):
    r = requests.get(env.url("/x"), timeout=T)
    assert r.headers["Via"] == "1.1 floodgate"
    assert "Keep-Alive" not in r.headers


# ---- HTTP/1.0 and curl -----------------------------------------------------

def test_http10_client_without_keepalive(env):
    with raw(env) as c:
        c.send(b"GET /old HTTP/1.0\r\n\r\n")
        r = c.response()
        assert r.status == 200
        assert r.body.endswith(b" GET /old\n")
        assert c.closed(), "HTTP/1.0 without keep-alive must close"


def test_http10_client_gets_host_and_via_upstream(env):
    lines = headers_seen(env, version=b"1.0", host=b"")
    assert lines[0] == "GET /headers HTTP/1.1"
    assert len(field(lines, "Host")) == 1
    assert field(lines, "Via") == ["1.0 floodgate"]


def test_http10_client_with_keepalive(env):
    with raw(env) as c:
        for i in range(3):
            c.send(f"GET /ka{i} HTTP/1.0\r\nConnection: keep-alive\r\n\r\n".encode())
            r = c.response()
            assert r.status == 200
            assert r.header("Connection", "").lower() == "keep-alive"
            assert r.header("Content-Length") is not None
            assert r.body.endswith(f" GET /ka{i}\n".encode())
        c.send(b"GET /last HTTP/1.0\r\n\r\n")
        r = c.response()
        assert r.status == 200
        assert c.closed()


def test_curl_http10_and_http11(env):
    for flag in ("--http1.0", "--http1.1"):
        p = subprocess.run(["curl", "-sS", flag, "--max-time", str(int(T)), env.url("/curl")],
                           capture_output=True, timeout=T + 5)
        assert p.returncode == 0, p.stderr
        assert p.stdout.endswith(b" GET /curl\n")


def test_curl_chunked_upload(env, tmp_path):
    f = tmp_path / "up"
    f.write_bytes(os.urandom(200000))
    p = subprocess.run(["curl", "-sS", "--max-time", str(int(T)), "-H", "Transfer-Encoding: chunked",
                        "--data-binary", f"@{f}", env.url("/sink")],
                       capture_output=True, timeout=T + 5)
    assert p.returncode == 0, p.stderr
    assert p.stdout == b"200000\n"


def test_absolute_form_target(env):
    with raw(env) as c:
        c.send(b"GET http://any.test/abs?q=1 HTTP/1.1\r\nHost: any.test\r\n\r\n")
        r = c.response()
    assert r.status == 200
    assert r.body.endswith(b" GET /abs?q=1\n")


def test_access_log_lines(env):
    requests.get(env.url("/logged-path"), timeout=T)
    end = time.monotonic() + scaled(2)
    while time.monotonic() < end:
        with open(env.access_log) as f:
            text = f.read()
        if "/logged-path" in text:
            break
        time.sleep(0.02)
    line = [ln for ln in text.splitlines() if "/logged-path" in ln][-1]
    assert line.startswith("127.0.0.1 ")
    assert '"GET /logged-path HTTP/1.1" 200 ' in line
    assert '"app"' in line


# ---- connection handling ---------------------------------------------------

def test_half_closed_client_still_gets_its_response(env):
    data = exchange(env.port, b"POST /sink HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc")
    assert data.startswith(b"HTTP/1.1 200 ")
    assert data.endswith(b"\r\n\r\n3\n")
    data = exchange(env.port, b"GET /hc HTTP/1.1\r\nHost: t\r\n\r\n")
    assert data.startswith(b"HTTP/1.1 200 ") and data.endswith(b" GET /hc\n")


def test_connection_close_ends_the_pipeline(env):
    with raw(env) as c:
        c.send(b"GET /first HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
               b"GET /second HTTP/1.1\r\nHost: t\r\n\r\n")
        r = c.response()
        assert r.status == 200 and r.body.endswith(b" GET /first\n")
        assert r.header("Connection") == "close"
        rest = c.read_all()
        assert rest == b"", rest


def test_long_header_values_forwarded_intact(env):
    cookie = "c=" + "v" * 7000
    r = requests.get(env.url("/headers"), headers={"Cookie": cookie, "X-Empty": ""}, timeout=T)
    lines = r.content.decode().split("\r\n")
    assert f"Cookie: {cookie}" in lines
    assert any(ln.rstrip() == "X-Empty:" for ln in lines), lines


def test_target_forwarded_byte_for_byte(env):
    target = "/a%2Fb/../c;p=1?q=%20x&y=%E2%82%AC#"[:-1]
    with raw(env) as c:
        c.send(f"GET {target} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
        r = c.response()
    assert r.status == 200
    assert r.body.endswith(f" GET {target}\n".encode())


def test_many_concurrent_clients(env):
    errors = []

    def client(i):
        try:
            with requests.Session() as s:
                for j in range(10):
                    r = s.post(env.url("/sink"), data=b"z" * (i * 100 + j), timeout=scaled(10))
                    if r.status_code != 200 or r.text != f"{i * 100 + j}\n":
                        errors.append((i, j, r.status_code, r.text))
        except requests.RequestException as e:
            errors.append((i, repr(e)))

    ts = [threading.Thread(target=client, args=(i,)) for i in range(40)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(timeout=scaled(30))
    assert errors == []


def test_ipv6_client_forwarding_headers():
    with backends("v6") as (b,), gateway(config([service("app", [b])]), host="::1") as gw:
        with Conn(gw.port, host="::1") as c:
            c.send(b"GET /headers HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n")
            r = c.response()
        assert r.status == 200
        lines = r.body.decode().split("\r\n")
        assert "X-Forwarded-For: ::1" in lines
        assert 'Forwarded: for="[::1]";host="[::1]:8080";proto=http' in lines
        r = requests.get(gw.url("/v6"), timeout=T)
        assert r.status_code == 200 and r.text == "v6 GET /v6\n"
