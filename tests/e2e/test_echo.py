"""End-to-end tests of `floodgate echo`: the real binary on loopback,
driven by requests and by raw sockets for byte-exact cases."""

import contextlib
import os
import socket
import sys
import threading
import time

import pytest
import requests

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fgtest import Conn, exchange, free_port, rss_kib, scaled, start  # noqa: E402


@contextlib.contextmanager
def echo(*args):
    """Runs an echo server on a free port with extra args; on the way out
    it must exit 0 on SIGTERM (sanitizer reports make the exit code fail)."""
    port = free_port()
    with start(["echo", "-l", str(port), *args], port=port) as s:
        yield s
        code = s.stop(timeout=10)
        assert code == 0, f"echo exited with {code}:\n{s.log()}"


@pytest.fixture(scope="module")
def srv():
    with echo("--name", "e1") as s:
        yield s


def wait_log(s, text, timeout=5):
    """Waits until the server's log holds text. The port accepts connections
    a moment before the start line is printed, so a test that only waited
    for the port may not see it yet."""
    deadline = time.monotonic() + scaled(timeout)
    while text not in s.log():
        assert time.monotonic() < deadline, f"{text!r} not in the log:\n{s.log()}"
        time.sleep(0.01)


def get_req(target="/", extra=""):
    return f"GET {target} HTTP/1.1\r\nHost: t\r\n{extra}\r\n".encode()


# ---- basics ----------------------------------------------------------------

def test_start_line_and_default_name():
    with echo() as s:
        port = s.port
        wait_log(s, f"echo listening on 127.0.0.1:{port} (1 threads)")
        r = requests.get(s.url("/hello?x=1"), timeout=scaled(5))
        assert r.status_code == 200
        assert r.headers["X-Server"] == f"127.0.0.1:{port}"
        assert r.text == f"127.0.0.1:{port} GET /hello?x=1\n"


def test_default_body_and_name(srv):
    r = requests.get(srv.url("/a/b"), timeout=scaled(5))
    assert r.status_code == 200
    assert r.headers["X-Server"] == "e1"
    assert r.text == "e1 GET /a/b\n"
    assert "Date" in r.headers


def test_help_exits_zero():
    import subprocess
    from fgtest import binary
    p = subprocess.run([binary(), "echo", "--help"], capture_output=True, timeout=scaled(10))
    assert p.returncode == 0
    assert b"--error-rate" in p.stdout
    p = subprocess.run([binary(), "echo", "--threads", "0"], capture_output=True, timeout=scaled(10))
    assert p.returncode == 2


@pytest.mark.parametrize("size", [0, 1000, 200_000, 3 * 1024 * 1024 + 7])
def test_body_size(size):
    with echo("-s", str(size)) as s:
        r = requests.get(s.url("/"), timeout=scaled(10))
        assert r.status_code == 200
        assert int(r.headers["Content-Length"]) == size
        assert len(r.content) == size
        if size >= 128 * 1024:  # large bodies repeat one 64 KiB block
            assert r.content[:64 * 1024] == r.content[64 * 1024:128 * 1024]
        h = requests.head(s.url("/"), timeout=scaled(5))
        assert int(h.headers["Content-Length"]) == size


def test_size_suffix():
    with echo("-s", "2k") as s:
        assert len(requests.get(s.url("/"), timeout=scaled(5)).content) == 2048


def test_health(srv):
    r = requests.get(srv.url("/health"), timeout=scaled(5))
    assert r.status_code == 200 and r.text == "ok\n"
    with echo("--health-status", "503") as s:
        r = requests.get(s.url("/health"), timeout=scaled(5))
        assert r.status_code == 503 and r.text == "fail\n"
        assert requests.get(s.url("/"), timeout=scaled(5)).status_code == 200


def test_status(srv):
    r = requests.get(srv.url("/status/503"), timeout=scaled(5))
    assert r.status_code == 503
    assert r.text == "503 Service Unavailable\n"
    assert r.headers["X-Server"] == "e1"
    r = requests.get(srv.url("/status/204"), timeout=scaled(5))
    assert r.status_code == 204 and r.content == b"" and "Content-Length" not in r.headers
    assert requests.get(srv.url("/status/418"), timeout=scaled(5)).status_code == 418


def test_headers_exact(srv):
    raw = (b"GET /headers?q=1 HTTP/1.1\r\nHost: example.test\r\nX-Forwarded-For: 10.0.0.1\r\n"
           b"Via: 1.1 gw\r\nx-MiXeD:  spaced value \r\n\r\n")
    with Conn(srv.port) as c:
        c.send(raw)
        r = c.response()
    assert r.status == 200
    assert r.body == raw


# ---- latency and errors -----------------------------------------------------

def test_latency():
    # Lower bounds only, from the injected delay; /health is never delayed,
    # which shows against a delay far above what a busy machine adds.
    with echo("--latency", "1500") as s:
        with requests.Session() as ses:
            ses.get(s.url("/health"), timeout=scaled(5))
            t0 = time.monotonic()
            r = ses.get(s.url("/"), timeout=scaled(10))
            dt = time.monotonic() - t0
            assert r.status_code == 200
            assert dt >= 1.49
            t0 = time.monotonic()
            ses.get(s.url("/health"), timeout=scaled(5))
            assert time.monotonic() - t0 < 1.49  # not held for the 1.5 s latency


def test_jitter():
    with echo("--latency", "50", "--jitter", "100") as s:
        with requests.Session() as ses:
            ses.get(s.url("/health"), timeout=scaled(5))
            times = []
            for _ in range(12):
                t0 = time.monotonic()
                ses.get(s.url("/"), timeout=scaled(5))
                times.append(time.monotonic() - t0)
    assert min(times) >= 0.049
    assert max(times) < 10  # a unit error (ms taken as s) would give 50 s or more
    assert max(times) - min(times) > 0.01  # not a constant delay


def test_concurrent_latency_is_not_serialised():
    """Timers, not sleeps: 20 connections each waiting 1 s finish together."""
    with echo("--latency", "1000") as s:
        errors = []

        def one():
            try:
                assert requests.get(s.url("/"), timeout=scaled(5)).status_code == 200
            except Exception as e:  # collected for the main thread
                errors.append(e)

        t0 = time.monotonic()
        ts = [threading.Thread(target=one) for _ in range(20)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        assert not errors
        # One after the other they would take 20 s.
        assert time.monotonic() - t0 < 10


def test_error_rate():
    n = 400
    with echo("--error-rate", "0.25") as s:
        with requests.Session() as ses:
            codes = [ses.get(s.url(f"/{i}"), timeout=scaled(5)).status_code for i in range(n)]
            for _ in range(20):
                assert ses.get(s.url("/health"), timeout=scaled(5)).status_code == 200
    errs = codes.count(500)
    assert codes.count(200) + errs == n
    # Binomial(400, 0.25): sd ~8.7, so +-40 is more than 4.5 sd.
    assert abs(errs - 100) <= 40, errs
    with echo("--error-rate", "1") as s:
        assert requests.get(s.url("/"), timeout=scaled(5)).status_code == 500


# ---- connection handling ---------------------------------------------------

def test_keep_alive_reuse(srv):
    with Conn(srv.port) as c:
        for i in range(5):
            c.send(get_req(f"/k{i}"))
            r = c.response()
            assert r.status == 200 and r.body == f"e1 GET /k{i}\n".encode()
            assert r.header("connection") is None
        assert not c.closed(0.2)
    with requests.Session() as ses:
        r1 = ses.get(srv.url("/"), timeout=scaled(5), stream=True)
        port1 = r1.raw._connection.sock.getsockname()[1]
        r1.content
        r2 = ses.get(srv.url("/"), timeout=scaled(5), stream=True)
        port2 = r2.raw._connection.sock.getsockname()[1]
        r2.content
        assert port1 == port2


def test_http10(srv):
    with Conn(srv.port) as c:
        c.send(b"GET /old HTTP/1.0\r\n\r\n")
        r = c.response()
        assert r.status == 200 and r.body == b"e1 GET /old\n"
        assert r.header("connection") == "close"
        assert c.closed()
    with Conn(srv.port) as c:
        for _ in range(2):
            c.send(b"GET /ka HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            r = c.response()
            assert r.status == 200 and r.header("connection").lower() == "keep-alive"
        assert not c.closed(0.2)


def test_connection_close(srv):
    with Conn(srv.port) as c:
        c.send(get_req("/bye", "Connection: close\r\n"))
        r = c.response()
        assert r.status == 200 and r.header("connection") == "close"
        assert c.closed()


def test_pipelining(srv):
    with Conn(srv.port) as c:
        c.send(get_req("/p1") + b"HEAD /p2 HTTP/1.1\r\nHost: t\r\n\r\n" + get_req("/p3"))
        r1 = c.response()
        r2 = c.response(head_only=True)
        r3 = c.response()
        assert r1.body == b"e1 GET /p1\n"
        assert r2.status == 200 and r2.header("content-length") == str(len("e1 HEAD /p2\n"))
        assert r3.body == b"e1 GET /p3\n"
        assert not c.closed(0.2)


def test_pipelining_with_latency_in_order():
    with echo("--latency", "100", "--name", "lat") as s, Conn(s.port) as c:
        t0 = time.monotonic()
        c.send(get_req("/a") + get_req("/status/503") + get_req("/c", "Connection: close\r\n"))
        bodies = [c.response().body for _ in range(3)]
        dt = time.monotonic() - t0
        assert bodies == [b"lat GET /a\n", b"503 Service Unavailable\n", b"lat GET /c\n"]
        assert dt >= 0.29  # one outstanding response at a time
        assert c.closed()


def test_pipelining_many_with_large_bodies():
    with echo("-s", "100000") as s, Conn(s.port) as c:
        c.send(get_req("/") * 50)
        for _ in range(50):
            assert len(c.response().body) == 100000


def test_head(srv):
    with Conn(srv.port) as c:
        c.send(b"HEAD /h HTTP/1.1\r\nHost: t\r\n\r\n")
        r = c.response(head_only=True)
        assert r.status == 200 and int(r.header("content-length")) == len(b"e1 HEAD /h\n")
        c.send(get_req("/after"))
        assert c.response().body == b"e1 GET /after\n"  # no stray body bytes before it


# ---- request bodies --------------------------------------------------------

def test_content_length_upload(srv):
    data = os.urandom(300_000)
    r = requests.post(srv.url("/upload"), data=data, timeout=scaled(10))
    assert r.status_code == 200
    assert r.headers["X-Received-Bytes"] == str(len(data))
    assert r.text == "e1 POST /upload\n"
    r = requests.put(srv.url("/sink"), data=data, timeout=scaled(10))
    assert r.text.strip() == str(len(data))


def test_chunked_upload(srv):
    pieces = [b"a" * 10, b"b" * 70000, b"c"]

    def gen():
        yield from pieces

    r = requests.post(srv.url("/sink"), data=gen(), timeout=scaled(10))
    assert r.status_code == 200
    assert int(r.text) == sum(map(len, pieces))
    assert r.headers["X-Received-Bytes"] == r.text.strip()


def test_chunked_raw_with_trailer_then_pipelined(srv):
    with Conn(srv.port) as c:
        c.send(b"POST /sink HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n" + get_req("/next"))
        r = c.response()
        assert r.status == 200 and r.body == b"11\n" and r.header("x-received-bytes") == "11"
        assert c.response().body == b"e1 GET /next\n"


def test_expect_continue(srv):
    with Conn(srv.port) as c:
        c.send(b"POST /sink HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
        r = c.response()
        assert r.status == 100
        c.send(b"12345")
        r = c.response()
        assert r.status == 200 and r.body == b"5\n"


def test_large_upload_bounded_memory():
    """1 GiB through Content-Length and 256 MiB chunked: memory stays flat."""
    with echo() as s:
        requests.get(s.url("/"), timeout=scaled(5))
        base = rss_kib(s.pid)
        chunk = b"z" * (1 << 20)
        with Conn(s.port, timeout=30) as c:
            total = 1 << 30
            c.send(f"POST /sink HTTP/1.1\r\nHost: t\r\nContent-Length: {total}\r\n\r\n".encode())
            for _ in range(total // len(chunk)):
                c.sock.sendall(chunk)
            r = c.response()
            assert r.status == 200 and r.body == f"{total}\n".encode()
            peak = rss_kib(s.pid)
            frame = b"%x\r\n" % len(chunk) + chunk + b"\r\n"
            c.send(b"POST /up HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n")
            for _ in range(256):
                c.sock.sendall(frame)
            c.send(b"0\r\n\r\n")
            r = c.response()
            assert r.status == 200 and r.header("x-received-bytes") == str(256 << 20)
            peak = max(peak, rss_kib(s.pid))
        assert peak - base < 32 * 1024, (base, peak)


# ---- errors ----------------------------------------------------------------

@pytest.mark.parametrize("raw", [
    b"GARBAGE\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: t\r\nBad Header: x\r\n\r\n",
    b"GET / HTTP/1.1\r\n\r\n",  # no Host
    b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
])
def test_malformed_400(srv, raw):
    data = exchange(srv.port, raw)
    assert data.startswith(b"HTTP/1.1 400 "), data
    assert b"Connection: close\r\n" in data


def test_bad_chunked_400(srv):
    data = exchange(srv.port, b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n")
    assert data.startswith(b"HTTP/1.1 400 "), data


def test_oversized_head_431(srv):
    with Conn(srv.port) as c:
        c.send(b"GET / HTTP/1.1\r\nHost: t\r\nX-Big: " + b"a" * 100_000 + b"\r\n\r\n")
        data = c.read_all()
    assert data.startswith(b"HTTP/1.1 431 "), data[:100]
    with Conn(srv.port) as c:
        c.send(b"GET / HTTP/1.1\r\nHost: t\r\n" + b"X-H: v\r\n" * 300 + b"\r\n")
        assert c.response().status == 431
        assert c.closed()


def test_server_survives_errors(srv):
    exchange(srv.port, b"\x00\x01\x02 nonsense\r\n\r\n")
    c = Conn(srv.port)
    c.send(b"GET / HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\npartial")
    c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    c.close()  # reset mid-body
    assert requests.get(srv.url("/ok"), timeout=scaled(5)).status_code == 200


# ---- threads and shutdown --------------------------------------------------

def test_threads():
    with echo("-t", "4", "--name", "mt") as s:
        wait_log(s, "(4 threads)")
        errors = []

        def one():
            try:
                with requests.Session() as ses:
                    for _ in range(20):
                        assert ses.get(s.url("/"), timeout=scaled(5)).text == "mt GET /\n"
            except Exception as e:  # collected for the main thread
                errors.append(e)

        ts = [threading.Thread(target=one) for _ in range(8)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        assert not errors


def test_sigterm_exits_promptly():
    with echo("-t", "2") as s, Conn(s.port) as idle:
        idle.send(get_req("/"))
        idle.response()
        code = s.stop(timeout=10)
        assert code == 0, s.log()  # exited on its own: stop() would have used SIGKILL (-9)
        assert idle.closed()
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", s.port), timeout=1).close()


def test_sigterm_finishes_inflight_response():
    with echo("--latency", "300") as s, Conn(s.port) as c:
        c.send(get_req("/slow"))
        time.sleep(0.05)
        s.proc.terminate()
        r = c.response()
        assert r.status == 200 and r.header("connection") == "close"
        assert s.proc.wait(scaled(10)) == 0, s.log()


# ---- capacity model (--max-concurrency) --------------------------------------

def wait_health(s, pred, timeout=5):
    """Polls /health until pred(response) holds; returns the response."""
    deadline = time.monotonic() + scaled(timeout)
    while True:
        h = requests.get(s.url("/health"), timeout=scaled(5))
        if pred(h):
            return h
        assert time.monotonic() < deadline, dict(h.headers)
        time.sleep(0.01)


def test_max_concurrency_serves_in_fifo_waves():
    """2 slots, 500 ms each: 6 requests at once finish in three waves."""
    with echo("--latency", "500", "--max-concurrency", "2") as s:
        conns = [Conn(s.port) for _ in range(6)]
        try:
            t0 = time.monotonic()
            for c in conns:
                c.send(get_req("/"))
                time.sleep(0.01)  # a known arrival order
            done = []
            for c in conns:
                assert c.response().status == 200
                done.append(time.monotonic() - t0)
            # FIFO: in arrival order, two per 500 ms: no wave ends early,
            # and all end before one slot alone could have served them (3 s).
            for i, t in enumerate(done):
                wave = i // 2 + 1
                assert t >= 0.5 * wave - 0.02, (i, done)
            assert done[-1] < 3.0 - 0.1, done
        finally:
            for c in conns:
                c.close()


def test_max_concurrency_health_reports_load_and_is_not_queued():
    with echo("--latency", "1000", "--max-concurrency", "1") as s:
        conns = [Conn(s.port) for _ in range(3)]
        try:
            for c in conns:
                c.send(get_req("/"))
            # Answered while the three wait: not queued behind them.
            h = wait_health(s, lambda h: h.headers["X-Echo-Queued"] == "2")
            assert h.status_code == 200
            assert h.headers["X-Echo-Busy"] == "1" and h.headers["X-Echo-Queued"] == "2"
            for c in conns:
                assert c.response().status == 200
            h = requests.get(s.url("/health"), timeout=scaled(5))
            assert h.headers["X-Echo-Busy"] == "0" and h.headers["X-Echo-Queued"] == "0"
        finally:
            for c in conns:
                c.close()
    with echo("--latency", "10") as s:  # no model: no load fields
        assert "X-Echo-Busy" not in requests.get(s.url("/health"), timeout=scaled(5)).headers


def test_max_concurrency_abandoned_requests_still_take_their_slot():
    """A client that gives up does not free the server: the work it handed
    over is still done (a ghost), so the next request waits for it."""
    with echo("--latency", "300", "--max-concurrency", "1") as s:
        gone = [Conn(s.port) for _ in range(2)]
        for c in gone:
            c.send(get_req("/"))
        wait_health(s, lambda h: h.headers["X-Echo-Queued"] == "1")
        # One in service, one queued: both abandoned, with a reset, which
        # the server notices (an orderly FIN it would only see later).
        import struct
        for c in gone:
            c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            c.close()
        with Conn(s.port) as c:
            t0 = time.monotonic()
            c.send(get_req("/"))
            assert c.response().status == 200
            dt = time.monotonic() - t0
        assert dt >= 0.55, dt  # behind the ghosts (less what the first had served)
        h = requests.get(s.url("/health"), timeout=scaled(5))
        assert h.headers["X-Echo-Busy"] == "0" and h.headers["X-Echo-Queued"] == "0"


def test_max_concurrency_stop_with_a_backlog():
    """SIGTERM with requests in service, queued and abandoned: a clean exit
    (the sanitizer build checks nothing leaks)."""
    with echo("--latency", "1000", "--max-concurrency", "2", "-t", "2") as s:
        conns = [Conn(s.port) for _ in range(10)]
        for c in conns:
            c.send(get_req("/"))
        time.sleep(0.1)
        for c in conns[:4]:
            c.close()
        # The echo() context requires exit code 0 on SIGTERM.
    for c in conns[4:]:
        c.close()


def test_max_concurrency_flag_validation():
    import subprocess
    from fgtest import binary
    p = subprocess.run([binary(), "echo", "--max-concurrency", "x"], capture_output=True, timeout=scaled(10))
    assert p.returncode == 2 and b"--max-concurrency" in p.stderr
    p = subprocess.run([binary(), "echo", "--help"], capture_output=True, timeout=scaled(10))
    assert b"--max-concurrency N" in p.stdout
