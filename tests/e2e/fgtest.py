"""Helpers for floodgate's end-to-end tests.

The tests run the real binary on 127.0.0.1 and talk to it over sockets.
Everything here is plain standard library, so any test module can use it:

    from fgtest import start, free_port, Conn, scaled

    port = free_port()
    with start(["echo", "-l", str(port)], port=port) as srv:
        with Conn(port) as c:
            c.send(b"GET / HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n")
            r = c.response()
            assert r.status == 200

Environment:
    FLOODGATE_BIN   path of the floodgate binary (ctest sets it)
    FG_SANITIZED    "1" for sanitizer builds: every timeout here is tripled
                    (use scaled() for a test's own timeouts and bounds)
"""

import os
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field

TIMEOUT_MULT = 3.0 if os.environ.get("FG_SANITIZED", "0") not in ("", "0") else 1.0


def scaled(seconds):
    """seconds, multiplied for slow (sanitizer) builds."""
    return seconds * TIMEOUT_MULT


def binary():
    """Path of the floodgate binary from FLOODGATE_BIN; fails clearly when unset."""
    path = os.environ.get("FLOODGATE_BIN")
    if not path:
        raise RuntimeError("FLOODGATE_BIN is not set (path to the floodgate binary)")
    if not os.access(path, os.X_OK):
        raise RuntimeError(f"FLOODGATE_BIN={path} is not an executable file")
    return path


def free_port(host="127.0.0.1"):
    """A TCP port that was free a moment ago (bind to port 0, read it, close).

    Another process could take it before the caller binds; in practice the
    kernel does not hand the same ephemeral port out again right away."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def wait_port(port, host="127.0.0.1", timeout=10.0, proc=None):
    """Waits until something accepts TCP connections on host:port.

    timeout is scaled for sanitizer builds. When proc (a subprocess.Popen)
    exits first, raises RuntimeError at once instead of waiting it out."""
    deadline = time.monotonic() + scaled(timeout)
    while True:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening on {port}")
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"nothing listening on {host}:{port} after {scaled(timeout):.1f}s")
        time.sleep(0.02)


def stop_pid(pid, timeout=5.0):
    """Sends SIGTERM to pid, then SIGKILL if it is still alive after timeout
    (scaled). Returns True when it exited on SIGTERM. Only for processes the
    caller started; a Server's stop() also reaps the child."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return True
    deadline = time.monotonic() + scaled(timeout)
    while time.monotonic() < deadline:
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
            if done:
                return True
        except ChildProcessError:
            # Not our child: poll for existence instead.
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return True
        time.sleep(0.02)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return True
    return False


class Server:
    """A floodgate process started by start(). Use as a context manager or
    call stop(). Its stderr and stdout go to a temporary file: log()."""

    def __init__(self, proc, port, host, log_path):
        self.proc = proc
        self.port = port
        self.host = host
        self.log_path = log_path

    @property
    def pid(self):
        return self.proc.pid

    @property
    def addr(self):
        return f"{self.host}:{self.port}"

    def url(self, path="/"):
        return f"http://{self.host}:{self.port}{path}"

    def alive(self):
        return self.proc.poll() is None

    def log(self):
        """Everything the process wrote to stdout and stderr so far."""
        with open(self.log_path, "r", errors="replace") as f:
            return f.read()

    def stop(self, timeout=5.0):
        """SIGTERM, then SIGKILL after timeout (scaled). Returns the exit
        code (negative: killed by that signal). Safe to call twice."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(scaled(timeout))
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
        try:
            os.unlink(self.log_path)
        except OSError:
            pass


def start(args, port=None, host="127.0.0.1", timeout=10.0, env=None):
    """Starts FLOODGATE_BIN with args (e.g. ["echo", "-l", "8080"]) and,
    when port is given, waits until it accepts connections there.

    env entries are added to the current environment. Raises (with the
    process's output) when it exits or does not listen in time."""
    fd, log_path = tempfile.mkstemp(prefix="fg-", suffix=".log")
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    with os.fdopen(fd, "wb") as logf:
        proc = subprocess.Popen([binary(), *map(str, args)], stdin=subprocess.DEVNULL,
                                stdout=logf, stderr=subprocess.STDOUT, env=full_env)
    srv = Server(proc, port, host, log_path)
    if port is not None:
        try:
            wait_port(port, host, timeout, proc)
        except Exception as e:
            srv.stop()
            raise RuntimeError(f"{e}\n--- output of {args} ---\n{srv.log()}") from None
    return srv


@dataclass
class Response:
    """One parsed HTTP/1.x response. headers keeps order and duplicates."""

    status: int
    reason: str
    version: str
    headers: list = field(default_factory=list)
    body: bytes = b""

    def header(self, name, default=None):
        """First value of header name (case-insensitive), or default."""
        name = name.lower()
        for k, v in self.headers:
            if k.lower() == name:
                return v
        return default


class Conn:
    """A raw TCP connection for byte-exact HTTP tests: send exactly what a
    test wants (pipelined, malformed, split) and read responses one by one.

    timeout (scaled) applies to each blocking read."""

    def __init__(self, port, host="127.0.0.1", timeout=5.0):
        self.sock = socket.create_connection((host, port), timeout=scaled(timeout))
        self.sock.settimeout(scaled(timeout))
        self.buf = b""

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("connection closed by peer")
        self.buf += chunk

    def _take(self, n):
        while len(self.buf) < n:
            self._fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def _line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def response(self, head_only=False):
        """Reads one response. head_only: the request was HEAD (no body
        whatever the headers say). 1xx responses are returned like any
        other; call again for the final one. Bodies are read by
        Content-Length, chunked encoding, or until the connection closes."""
        while b"\r\n\r\n" not in self.buf:
            self._fill()
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        version, status, *reason = lines[0].split(" ", 2)
        headers = []
        for ln in lines[1:]:
            k, _, v = ln.partition(":")
            headers.append((k, v.strip()))
        r = Response(int(status), reason[0] if reason else "", version, headers)
        if head_only or r.status < 200 or r.status in (204, 304):
            return r
        te = r.header("transfer-encoding")
        cl = r.header("content-length")
        if te and "chunked" in te.lower():
            body = b""
            while True:
                size = int(self._line().split(b";")[0], 16)
                if size == 0:
                    while self._line():
                        pass
                    break
                body += self._take(size)
                self._take(2)
            r.body = body
        elif cl is not None:
            r.body = self._take(int(cl))
        else:
            r.body = self.read_all()
        return r

    def read_all(self):
        """Everything until the peer closes (or the timeout fires)."""
        while True:
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                break
            if not chunk:
                break
            self.buf += chunk
        out, self.buf = self.buf, b""
        return out

    def closed(self, timeout=2.0):
        """True when the peer closes the connection within timeout (scaled)
        with no further data; False when it stays open. Unread data counts
        as not closed."""
        if self.buf:
            return False
        before = self.sock.gettimeout()
        self.sock.settimeout(scaled(timeout))
        try:
            data = self.sock.recv(1)
            self.buf += data  # a byte that arrived is kept for the next read
            return data == b""
        except socket.timeout:
            return False
        except ConnectionResetError:
            return True
        finally:
            # The short wait is for this check only: later reads keep the
            # connection's own timeout (a busy machine answers slowly).
            self.sock.settimeout(before)

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def wait_log(srv, text, timeout=10.0):
    """Waits until srv's log (a started process) contains text; timeout is
    scaled for sanitizer builds. Fails with the log when it never does."""
    deadline = time.monotonic() + scaled(timeout)
    while text not in srv.log():
        assert time.monotonic() < deadline, srv.log()
        time.sleep(0.02)


def exchange(port, data, host="127.0.0.1", timeout=5.0):
    """Sends data on a new connection, half-closes, and returns every byte
    received until the server closes or timeout (scaled) passes."""
    with Conn(port, host, timeout) as c:
        c.send(data)
        c.sock.shutdown(socket.SHUT_WR)
        return c.read_all()


def rss_kib(pid):
    """Resident set size of pid in KiB (Linux /proc)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")
