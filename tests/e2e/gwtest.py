"""Helpers for the end-to-end tests of `floodgate gateway` (test_gw_*.py),
on top of fgtest.py.

    with backends("e1", "e2") as (e1, e2), gateway(config([service("app", [e1, e2])])) as gw:
        r = requests.get(gw.url("/x"), timeout=scaled(5))
        assert r.headers["X-Server"] in ("e1", "e2")

gateway() writes the YAML config to a temporary directory (listen and admin
ports filled in), starts the gateway, waits for both ports, and on the way
out requires a clean exit (code 0) on SIGTERM, which also catches sanitizer
reports. Every wait here is bounded and scaled for sanitizer builds.
"""

import contextlib
import json
import os
import re
import shutil
import signal
import sys
import tempfile
import threading
import time

import requests

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fgtest import free_port, scaled, start, wait_port  # noqa: E402,F401

SANITIZED = os.environ.get("FG_SANITIZED", "0") not in ("", "0")


# ---- YAML ------------------------------------------------------------------

def _scalar(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return str(v)
    return json.dumps(str(v))  # a double-quoted JSON string is a YAML string


def to_yaml(obj, indent=0):
    """Block-style YAML for nested dicts, lists and scalars (strings are
    always quoted, so nothing is read as another type)."""
    pad = " " * indent
    out = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            if isinstance(v, (dict, list)) and v:
                out.append(f"{pad}{k}:")
                out.append(to_yaml(v, indent + 2))
            elif isinstance(v, list):
                out.append(f"{pad}{k}: []")
            else:
                out.append(f"{pad}{k}: {_scalar(v)}")
    elif isinstance(obj, list):
        for v in obj:
            if isinstance(v, dict) and v:
                first, *rest = to_yaml(v, indent + 2).split("\n")
                out.append(f"{pad}- {first.lstrip()}")
                out.extend(rest)
            else:
                out.append(f"{pad}- {_scalar(v)}")
    else:
        out.append(pad + _scalar(obj))
    return "\n".join(out)


def addr_of(s):
    """"127.0.0.1:PORT" of a Server (fgtest) or an int port or a string."""
    if isinstance(s, int):
        return f"127.0.0.1:{s}"
    if isinstance(s, str):
        return s
    return s.addr


def service(name, servers, balance=None, health=None, passive=None, **extra):
    """A services[] item. servers: Servers, ports, addresses, or
    (server, weight) pairs. passive defaults to off, so that only what a
    test turns on reacts to failures."""
    items = []
    for s in servers:
        if isinstance(s, tuple):
            items.append({"address": addr_of(s[0]), "weight": s[1]})
        else:
            items.append(addr_of(s))
    d = {"name": name}
    if balance:
        d["balance"] = balance
    d.update(extra)
    d["servers"] = items
    if health:
        d["health"] = health
    d["passive"] = passive if passive is not None else {"max_failures": 0}
    return d


def route(prefix, svc, host=None, strip=False):
    d = {"prefix": prefix, "service": svc}
    if host:
        d["host"] = host
    if strip:
        d["strip_prefix"] = True
    return d


def config(services, routes=None, threads=2, **top):
    """A whole config dict; routes default to "/" -> the first service.
    Top-level keys (timeouts, limits, upstream, access_log...) go in top.
    listen and admin are filled in by gateway()."""
    if routes is None:
        routes = [route("/", services[0]["name"])]
    d = {"threads": threads, "log_level": "info"}
    d.update(top)
    d["services"] = services
    d["routes"] = routes
    return d


# ---- processes -------------------------------------------------------------

def free_port_on(host):
    """free_port() for an IPv4 or IPv6 host address."""
    if ":" not in host:
        return free_port(host)
    import socket as _s
    with _s.socket(_s.AF_INET6, _s.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def echo(name, *args, port=None):
    """One `floodgate echo` backend named name (X-Server) on a free port."""
    port = port or free_port()
    with start(["echo", "-l", str(port), "--name", name, *args], port=port) as s:
        s.name = name
        yield s


@contextlib.contextmanager
def backends(*names, args=()):
    """Several echo backends, one per name, with the same extra args."""
    with contextlib.ExitStack() as st:
        yield [st.enter_context(echo(n, *args)) for n in names]


class Gateway:
    """A running gateway: ports, URLs, its config file and log."""

    def __init__(self, srv, port, admin_port, cfg_path, cfg, host="127.0.0.1"):
        self.host = host        # listen address ("::1" for IPv6)
        self.srv = srv
        self.port = port
        self.admin_port = admin_port
        self.cfg_path = cfg_path
        self.cfg = cfg
        self.final_log = None   # the whole log, once the process is gone
        self.exit_code = None

    @property
    def pid(self):
        return self.srv.pid

    @property
    def proc(self):
        return self.srv.proc

    def url(self, path="/"):
        h = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{h}:{self.port}{path}"

    def admin_url(self, path="/"):
        return f"http://127.0.0.1:{self.admin_port}{path}"

    def log(self):
        """Everything the gateway wrote so far (also after it exited)."""
        return self.final_log if self.final_log is not None else self.srv.log()

    def write_config(self, cfg):
        """Rewrites the config file (listen and admin kept) for a reload."""
        cfg = dict(cfg)
        h = f"[{self.host}]" if ":" in self.host else self.host
        cfg["listen"] = f"{h}:{self.port}"
        if isinstance(cfg.get("admin"), dict):
            # The mapping form (token_file, allowed_hosts): the address is
            # still the test's.
            cfg["admin"] = dict(cfg["admin"], listen=f"127.0.0.1:{self.admin_port}")
        else:
            cfg["admin"] = f"127.0.0.1:{self.admin_port}" if self.admin_port else "off"
        self.cfg = cfg
        tmp = self.cfg_path + ".tmp"
        with open(tmp, "w") as f:
            f.write(to_yaml(cfg) + "\n")
        os.replace(tmp, self.cfg_path)

    def sighup(self):
        os.kill(self.pid, signal.SIGHUP)

    def admin(self, method, path, body=None, timeout=5):
        """An admin API call; returns the requests.Response."""
        return requests.request(method, self.admin_url(path), json=body, timeout=scaled(timeout))

    def metrics(self):
        r = requests.get(self.admin_url("/metrics"), timeout=scaled(5))
        assert r.status_code == 200, r.text
        return parse_metrics(r.text)

    def steady_metrics(self):
        """metrics() once the request counters stopped moving: a request is
        counted just after its response is written, so right after a
        response the counters may still trail by one."""
        def total(ms):
            return sum(v for (n, _), v in ms.items()
                       if n in ("floodgate_gateway_requests_total",
                                "floodgate_gateway_request_duration_seconds_count"))
        ms = self.metrics()
        for _ in range(20):
            time.sleep(0.02)
            again = self.metrics()
            if total(again) == total(ms):
                return again
            ms = again
        return ms

    def generation(self):
        return self.metrics().get(("floodgate_gateway_config_generation", ()), 0)

    def stop(self, timeout=10):
        return self.srv.stop(timeout)


@contextlib.contextmanager
def gateway(cfg, admin=True, check_exit=True, args=(), host="127.0.0.1"):
    """Starts `floodgate gateway -c FILE` with cfg (a dict from config()),
    listening on host (an ephemeral port), waits for the listener (and the
    admin listener on 127.0.0.1), yields a Gateway, and on the way out
    requires exit code 0 on SIGTERM when check_exit."""
    d = tempfile.mkdtemp(prefix="fg-gw-")
    try:
        port = free_port_on(host)
        admin_port = free_port() if admin else None
        gw = Gateway(None, port, admin_port, os.path.join(d, "gateway.yaml"), None, host)
        gw.write_config(cfg)
        srv = start(["gateway", "-c", gw.cfg_path, *args], port=port, host=host)
        gw.srv = srv
        try:
            if admin_port:
                wait_port(admin_port, proc=srv.proc)
                _wait_admin_ready(gw)
            yield gw
        finally:
            code = srv.stop(timeout=15)
            log = gw.final_log = srv.log()
            gw.exit_code = code
            srv.__exit__(None, None, None)
        if check_exit:
            assert code == 0, f"gateway exited with {code}:\n{log[-6000:]}"
    finally:
        shutil.rmtree(d, ignore_errors=True)


def _wait_admin_ready(gw):
    """Waits until the admin API answers GET /health with 200. The port
    accepts connections a moment before the gateway's endpoints are
    registered (admin_start() serves before gw_admin_start() adds its
    routes), and a request in that window gets 404."""
    deadline = time.monotonic() + scaled(5)
    while True:
        if gw.srv.proc.poll() is not None:
            raise RuntimeError(f"gateway exited with {gw.srv.proc.returncode}:\n{gw.srv.log()}")
        try:
            if requests.get(gw.admin_url("/health"), timeout=scaled(2)).status_code == 200:
                return
        except requests.RequestException:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"admin API not ready:\n{gw.srv.log()}")
        time.sleep(0.01)


def settle(gw):
    """Makes the gateway's worker route with the newest configuration
    before the caller's next request, for tests about something else than
    how soon a change applies (test_gw_admin.py has the test for that).

    A worker adopts a new snapshot before it polls; a request it reads in
    the same wakeup as the change's notification is routed with the old
    one. This sends a request that fails to parse (no Host), which the
    worker answers without routing or balancing, so the next request is
    read after the worker polled again. Meant for configs with threads: 1
    (with more workers, the kernel picks which one gets the connection)."""
    from fgtest import Conn
    with Conn(gw.port, host=gw.host) as c:
        c.send(b"GET /settle HTTP/1.1\r\n\r\n")
        assert c.response().status == 400


# ---- /metrics --------------------------------------------------------------

_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_metrics(text):
    """Prometheus text -> {(name, ((label, value), ...)): float}; raises
    AssertionError on a line that is neither a comment nor a sample."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = _SAMPLE.match(line)
        assert m, f"not a Prometheus sample line: {line!r}"
        name, labels, value = m.groups()
        lab = tuple(_LABEL.findall(labels or ""))
        out[(name, lab)] = float(value)
    return out


def metric(ms, name, **labels):
    """Value of one series (labels matched exactly, in any order), or 0."""
    want = sorted(labels.items())
    for (n, lab), v in ms.items():
        if n == name and sorted(lab) == want:
            return v
    return 0.0


# ---- waiting and load ------------------------------------------------------

def wait_until(pred, timeout, interval=0.02, what="condition"):
    """Polls pred() until it returns a true value (returned) or timeout
    (scaled) passes (AssertionError)."""
    deadline = time.monotonic() + scaled(timeout)
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {scaled(timeout):.1f}s waiting for {what}")
        time.sleep(interval)


def servers_hit(url, n, session=None, headers=None, timeout=5):
    """Sends n GETs (keep-alive) and returns the X-Server of each, in
    order; every response must be 200."""
    s = session or requests.Session()
    out = []
    try:
        for _ in range(n):
            r = s.get(url, headers=headers, timeout=scaled(timeout))
            assert r.status_code == 200, (r.status_code, r.text)
            out.append(r.headers.get("X-Server"))
    finally:
        if session is None:
            s.close()
    return out


class Load:
    """Steady load from background threads: each sends GETs to url in a
    loop on its own keep-alive session (or a new connection each time
    when fresh=True) until stop(), recording (time, X-Server) for each
    2xx and (time, what) for every failure. Bounded by max_seconds."""

    def __init__(self, url, threads=2, fresh=False, max_seconds=60, pause=0.0, method="GET",
                 body=None):
        self.url = url
        self.fresh = fresh
        self.pause = pause
        self.method = method
        self.body = body
        self.max_seconds = scaled(max_seconds)
        self.ok = []       # (t, server)
        self.failed = []   # (t, description)
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def _run(self):
        end = time.monotonic() + self.max_seconds
        s = requests.Session()
        try:
            while not self.stopping.is_set() and time.monotonic() < end:
                try:
                    if self.fresh:
                        r = requests.request(self.method, self.url, data=self.body,
                                             timeout=scaled(5), headers={"Connection": "close"})
                    else:
                        r = s.request(self.method, self.url, data=self.body, timeout=scaled(5))
                    now = time.monotonic()
                    with self.lock:
                        if 200 <= r.status_code < 300:
                            self.ok.append((now, r.headers.get("X-Server")))
                        else:
                            self.failed.append((now, f"status {r.status_code}: {r.text[:200]}"))
                except requests.RequestException as e:
                    with self.lock:
                        self.failed.append((time.monotonic(), f"{type(e).__name__}: {e}"))
                if self.pause:
                    time.sleep(self.pause)
        finally:
            s.close()

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def stop(self):
        self.stopping.set()
        for t in self.threads:
            t.join(timeout=scaled(10))

    def __exit__(self, *exc):
        self.stop()

    def count(self):
        with self.lock:
            return len(self.ok)

    def servers_between(self, t0, t1=None):
        """{server: count} of successes in [t0, t1)."""
        out = {}
        with self.lock:
            for t, s in self.ok:
                if t >= t0 and (t1 is None or t < t1):
                    out[s] = out.get(s, 0) + 1
        return out

    def wait_count(self, n, timeout=10):
        """Waits until n more successes than now have been recorded."""
        base = self.count()
        wait_until(lambda: self.count() >= base + n, timeout, what=f"{n} more requests")


def status_line(data):
    """(status, head text) of the first response in raw bytes."""
    head = data.split(b"\r\n\r\n", 1)[0].decode("latin-1")
    first = head.split("\r\n", 1)[0]
    parts = first.split(" ")
    assert len(parts) >= 2 and parts[0].startswith("HTTP/1."), f"not a response: {data[:200]!r}"
    return int(parts[1]), head


# ---- a scriptable backend --------------------------------------------------

class RawBackend:
    """A small threaded HTTP/1.x server on raw sockets, for upstream
    behaviour echo does not produce (chunked or close-delimited responses,
    hop-by-hop fields, interim responses, resets, garbage).

    handler(method, target, head, body) returns the bytes to send, or None
    to reset the connection (RST) without answering. The connection is
    closed after each answer, so the gateway never pools it. Connections
    served are counted in .requests."""

    def __init__(self, handler, name="raw"):
        import socket as _s
        self.handler = handler
        self.name = name
        self.ls = _s.socket()
        self.ls.setsockopt(_s.SOL_SOCKET, _s.SO_REUSEADDR, 1)
        self.ls.bind(("127.0.0.1", 0))
        self.ls.listen(64)
        self.ls.settimeout(0.1)
        self.port = self.ls.getsockname()[1]
        self.addr = f"127.0.0.1:{self.port}"
        self.requests = 0
        self.stopping = threading.Event()
        self.t = threading.Thread(target=self._accept, daemon=True)
        self.workers = []

    def _accept(self):
        import socket as _s
        while not self.stopping.is_set():
            try:
                c, _ = self.ls.accept()
            except _s.timeout:
                continue
            except OSError:
                return
            t = threading.Thread(target=self._serve, args=(c,), daemon=True)
            t.start()
            self.workers.append(t)

    def _serve(self, c):
        import socket as _s
        import struct
        c.settimeout(scaled(5))
        try:
            buf = b""
            while b"\r\n\r\n" not in buf:
                d = c.recv(65536)
                if not d:
                    return
                buf += d
            head, body = buf.split(b"\r\n\r\n", 1)
            lines = head.decode("latin-1").split("\r\n")
            method, target, _ = lines[0].split(" ", 2)
            cl = 0
            for ln in lines[1:]:
                k, _, v = ln.partition(":")
                if k.strip().lower() == "content-length":
                    cl = int(v.strip())
            while len(body) < cl:
                d = c.recv(65536)
                if not d:
                    break
                body += d
            self.requests += 1
            out = self.handler(method, target, head, body)
            if out is None:
                c.setsockopt(_s.SOL_SOCKET, _s.SO_LINGER, struct.pack("ii", 1, 0))
            else:
                c.sendall(out)
        except OSError:
            pass
        finally:
            c.close()

    def __enter__(self):
        self.t.start()
        return self

    def __exit__(self, *exc):
        self.stopping.set()
        self.t.join(timeout=5)
        self.ls.close()
        for t in self.workers:
            t.join(timeout=5)
