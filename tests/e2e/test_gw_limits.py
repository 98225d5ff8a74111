"""End-to-end: memory and connection limits of `floodgate gateway`. A 1 GiB
upload (chunked and Content-Length) and a large download stream through
with the gateway's resident memory bounded; limits.max_connections refuses
connections above it."""

import os
import socket
import sys
import threading
import time

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fgtest import Conn, rss_kib, scaled  # noqa: E402
from gwtest import SANITIZED, config, echo, gateway, metric, route, service, wait_until  # noqa: E402

GIB = 1 << 30
RSS_LIMIT_KIB = 64 * 1024
BLOCK = (bytes(range(256)) * 4096)  # 1 MiB


class RssWatch:
    """Samples a process's VmRSS every 10 ms in a thread; .max in KiB."""

    def __init__(self, pid):
        self.pid = pid
        self.max = rss_kib(pid)
        self.samples = 0
        self.stop_ev = threading.Event()
        self.t = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self.stop_ev.is_set():
            try:
                self.max = max(self.max, rss_kib(self.pid))
                self.samples += 1
            except (OSError, RuntimeError):
                return
            time.sleep(0.01)

    def __enter__(self):
        self.t.start()
        return self

    def __exit__(self, *exc):
        self.stop_ev.set()
        self.t.join(timeout=5)


@pytest.fixture(scope="module")
def env():
    with echo("sink") as sink, echo("big", "--size", "256m") as big:
        cfg = config([service("sink", [sink]), service("big", [big])],
                     routes=[route("/", "sink"), route("/big", "big")],
                     limits={"max_body_bytes": "2g"},
                     timeouts={"client_body": "10s", "upstream_response": "30s"})
        with gateway(cfg) as gw:
            yield gw


def upload(gw, chunked, size=GIB):
    """Streams size bytes to /sink; returns the parsed response."""
    with Conn(gw.port, timeout=60) as c:
        if chunked:
            c.send(b"POST /sink HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n")
            frame = b"%x\r\n" % len(BLOCK)
            for _ in range(size // len(BLOCK)):
                c.sock.sendall(frame)
                c.sock.sendall(BLOCK)
                c.sock.sendall(b"\r\n")
            c.send(b"0\r\n\r\n")
        else:
            c.send(b"POST /sink HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n" % size)
            for _ in range(size // len(BLOCK)):
                c.sock.sendall(BLOCK)
        return c.response()


@pytest.mark.skipif(SANITIZED, reason="1 GiB through a sanitizer build is too slow for make test")
@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_1gib_upload_streams_with_bounded_memory(env, chunked):
    with RssWatch(env.pid) as w:
        r = upload(env, chunked)
    assert r.status == 200
    assert r.body == b"%d\n" % GIB
    assert r.header("X-Received-Bytes") == str(GIB)
    assert w.samples > 10
    print(f"gateway RSS peak {w.max} KiB")
    assert w.max < RSS_LIMIT_KIB, f"gateway RSS peaked at {w.max} KiB"


def test_upload_streams_with_bounded_memory_small(env):
    # The same path in every build, at a size a sanitizer build handles.
    size = 64 << 20
    with RssWatch(env.pid) as w:
        r = upload(env, True, size)
    assert r.status == 200 and r.body == b"%d\n" % size
    if not SANITIZED:
        print(f"gateway RSS peak {w.max} KiB")
    assert w.max < RSS_LIMIT_KIB, f"gateway RSS peaked at {w.max} KiB"


def test_large_download_streams_with_bounded_memory(env):
    size = 256 << 20
    if SANITIZED:
        pytest.skip("256 MiB through a sanitizer build is too slow for make test")
    buf = bytearray(1 << 20)
    got = 0
    with RssWatch(env.pid) as w, Conn(env.port, timeout=30) as c:
        c.send(b"GET /big HTTP/1.1\r\nHost: t\r\n\r\n")
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = c.sock.recv(65536)
            assert chunk
            head += chunk
        head, rest = head.split(b"\r\n\r\n", 1)
        assert head.startswith(b"HTTP/1.1 200")
        assert b"Content-Length: %d" % size in head
        got = len(rest)
        view = memoryview(buf)
        while got < size:
            n = c.sock.recv_into(view)
            assert n > 0, f"closed after {got} bytes"
            got += n
    assert got == size
    print(f"gateway RSS peak {w.max} KiB")
    assert w.max < RSS_LIMIT_KIB, f"gateway RSS peaked at {w.max} KiB"


def test_slow_reader_download_does_not_buffer(env):
    # A client that reads nothing: the gateway stops reading the server
    # once its buffers are full, instead of holding the whole body.
    if SANITIZED:
        pytest.skip("RSS is not meaningful under a sanitizer")
    before = rss_kib(env.pid)
    with Conn(env.port, timeout=10) as c:
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        c.send(b"GET /big HTTP/1.1\r\nHost: t\r\n\r\n")
        time.sleep(0.5)
        assert rss_kib(env.pid) - before < 16 * 1024


def test_max_connections():
    with echo("mc") as mc:
        cfg = config([service("app", [mc])], limits={"max_connections": 4})
        with gateway(cfg) as gw:
            # The start-up probe's connection counts until the gateway sees
            # it close, and a busy gateway may not even have taken it from
            # the accept queue yet: wait until it was accepted and closed.
            def probe_gone():
                m = gw.metrics()
                return (metric(m, "floodgate_gateway_connections_accepted_total") >= 1 and
                        metric(m, "floodgate_gateway_active_connections") == 0)
            wait_until(probe_gone, 10, what="the start-up probe's connection accepted and closed")
            conns = [Conn(gw.port) for _ in range(4)]
            try:
                for i, c in enumerate(conns):
                    c.send(b"GET /%d HTTP/1.1\r\nHost: t\r\n\r\n" % i)
                    assert c.response().status == 200
                # The fifth is accepted by the kernel and closed at once.
                with Conn(gw.port) as extra:
                    try:
                        extra.send(b"GET /x HTTP/1.1\r\nHost: t\r\n\r\n")
                    except OSError:
                        pass
                    assert extra.closed(timeout=scaled(10))
                # Held connections still work.
                conns[0].send(b"GET /again HTTP/1.1\r\nHost: t\r\n\r\n")
                assert conns[0].response().status == 200
                # One closes: room for a new one.
                conns.pop().close()

                def fits():
                    with Conn(gw.port) as c:
                        try:
                            c.send(b"GET /y HTTP/1.1\r\nHost: t\r\n\r\n")
                            return c.response().status == 200
                        except (OSError, ConnectionError):
                            return False
                wait_until(fits, 10, interval=0.05, what="a free connection slot")
            finally:
                for c in conns:
                    c.close()
