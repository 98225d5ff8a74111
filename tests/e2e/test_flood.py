"""End-to-end tests of `floodgate flood`: the real binary sending load at
`floodgate echo` (with injected latency, and stalled with SIGSTOP) and at
a small recording server written here, which notes every request's peer
address, request line and headers.

What they show: open loop reports the injected latency, and the queueing
behind a stalled server that a closed loop hides; source addresses are
spread as asked, as the server sees them; the attacker share is reported
apart; mixes, priorities, profiles, errors and timeouts; the HTML report
renders in headless Chromium.
"""

import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from collections import Counter

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fgtest import binary, free_port, scaled, start  # noqa: E402


def flood(*args, timeout=30):
    """Runs flood with args and --json; returns (parsed JSON, stderr)."""
    p = subprocess.run([binary(), "flood", "--json", *map(str, args)], capture_output=True,
                       timeout=scaled(timeout), stdin=subprocess.DEVNULL)
    assert p.returncode == 0, f"flood exited {p.returncode}:\n{p.stderr.decode()}\n{p.stdout.decode()}"
    return json.loads(p.stdout), p.stderr.decode()


def flood_bg(*args):
    """Starts flood with --json; returns the Popen."""
    return subprocess.Popen([binary(), "flood", "--json", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)


def finish(proc, timeout=30):
    out, err = proc.communicate(timeout=scaled(timeout))
    assert proc.returncode == 0, f"flood exited {proc.returncode}:\n{err.decode()}"
    return json.loads(out)


@pytest.fixture
def echo():
    port = free_port()
    with start(["echo", "-l", str(port)], port=port) as s:
        yield s


@pytest.fixture
def slow_echo():
    port = free_port()
    with start(["echo", "-l", str(port), "--latency", "20"], port=port) as s:
        yield s


class Recorder:
    """A threaded HTTP/1.1 server on 127.0.0.1 (all of 127/8 reaches it)
    that records each request's peer address, method, path and headers,
    and answers 429 to peers in 127.6.6.0/24 (the attackers' default
    range), 200 otherwise, with keep-alive."""

    def __init__(self, framing="length"):
        self.framing = framing  # length, chunked, or close (body until the server closes)
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(512)
        self.port = self.sock.getsockname()[1]
        self.lock = threading.Lock()
        self.peers = Counter()
        self.requests = []  # (peer, method, path, headers dict)
        self.stop = False
        self.t = threading.Thread(target=self.serve, daemon=True)
        self.t.start()

    def url(self, path="/"):
        return f"http://127.0.0.1:{self.port}{path}"

    def serve(self):
        self.sock.settimeout(0.2)
        while not self.stop:
            try:
                c, addr = self.sock.accept()
            except OSError:
                continue
            threading.Thread(target=self.handle, args=(c, addr[0]), daemon=True).start()

    def handle(self, c, peer):
        buf = b""
        c.settimeout(10)
        try:
            while not self.stop:
                while b"\r\n\r\n" not in buf:
                    chunk = c.recv(65536)
                    if not chunk:
                        return
                    buf += chunk
                head, buf = buf.split(b"\r\n\r\n", 1)
                lines = head.decode("latin-1").split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                hdrs = {}
                for ln in lines[1:]:
                    k, _, v = ln.partition(":")
                    hdrs[k.strip().lower()] = v.strip()
                n = int(hdrs.get("content-length", "0"))
                while len(buf) < n:
                    chunk = c.recv(65536)
                    if not chunk:
                        return
                    buf += chunk
                buf = buf[n:]
                with self.lock:
                    self.peers[peer] += 1
                    self.requests.append((peer, method, path, hdrs))
                status = b"429 Too Many Requests" if peer.startswith("127.6.6.") else b"200 OK"
                close = hdrs.get("connection", "").lower() == "close" or self.framing == "close"
                if self.framing == "chunked":
                    c.sendall(b"HTTP/1.1 " + status + b"\r\nTransfer-Encoding: chunked\r\n\r\n"
                              b"2\r\nok\r\n1;ext=1\r\n\n\r\n0\r\nTrailer-X: 1\r\n\r\n")
                elif self.framing == "close":
                    c.sendall(b"HTTP/1.1 " + status + b"\r\n\r\nok, until close\n")
                else:
                    c.sendall(b"HTTP/1.1 " + status + b"\r\nContent-Length: 3\r\n" +
                              (b"Connection: close\r\n" if close else b"") + b"\r\nok\n")
                if close:
                    return
        except OSError:
            return
        finally:
            c.close()

    def close(self):
        self.stop = True
        self.sock.close()
        self.t.join(2)


@pytest.fixture
def recorder():
    r = Recorder()
    yield r
    r.close()


# ---- basics ----------------------------------------------------------------

def test_help_lists_the_flags():
    p = subprocess.run([binary(), "flood", "--help"], capture_output=True, timeout=scaled(5))
    assert p.returncode == 0
    out = p.stdout.decode()
    for flag in ("-c, --connections", "-t, --threads", "-d, --duration", "--rate", "--profile", "--config",
                 "--sources", "--attacker-share", "--attacker-sources", "--attacker-rate", "--priority-header",
                 "--timeout", "--conn-per-request", "--json", "--html", "--quiet", "--mix"):
        assert flag in out, flag


def test_bad_usage_exits_2():
    for args in ([], ["http://127.0.0.1:1/", "--rate", "x"], ["ftp://x/"], ["-d", "2h", "http://127.0.0.1:1/"],
                 ["--profile", "spike:1x10s", "http://127.0.0.1:1/"]):
        p = subprocess.run([binary(), "flood", *args], capture_output=True, timeout=scaled(5))
        assert p.returncode == 2, (args, p.stderr)
        assert p.stderr


def test_closed_loop_summary_and_json(echo):
    p = subprocess.run([binary(), "flood", "-c", "8", "-t", "2", "-d", "1", echo.url("/x")], capture_output=True,
                       timeout=scaled(20))
    assert p.returncode == 0, p.stderr
    out = p.stdout.decode()
    assert " requests in " in out and "Requests/sec:" in out and "p99.99" in out, out
    r, _ = flood("-c", "8", "-t", "2", "-d", "1", echo.url("/x"))
    assert r["version"] == 1 and r["config"]["mode"] == "closed"
    u = r["users"]
    assert u["done"] > 8  # a count, not a speed: each connection did some
    assert u["status"] == {"200": u["done"]}
    assert u["errors"] == 0 and r["attackers"] is None
    assert u["admitted"] == u["done"] and u["rejected"] == 0
    lat = u["latency_us"]
    assert 0 < lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["p99_9"] <= lat["max"]
    assert lat["count"] == u["admitted"]
    # At least the duration; the upper bound only catches a run that does
    # not end (ten times the duration: a loaded machine is slow, not that).
    assert 0.9 <= r["elapsed_s"] < 10
    assert len(r["series"]) == 1
    assert sum(s["done"] for s in r["series"]) <= u["done"]


def test_runs_are_bounded_and_sigint_stops_early(echo):
    t0 = time.monotonic()
    p = flood_bg("-c", "4", "-d", "30", echo.url())
    time.sleep(scaled(1))
    p.send_signal(signal.SIGINT)
    r = finish(p, timeout=10)
    # Well before the 30 s it was asked for.
    assert time.monotonic() - t0 < 15
    assert r["interrupted"] is True
    assert r["users"]["done"] > 0


# ---- open loop and coordinated omission ------------------------------------

def test_open_loop_reports_the_injected_latency(slow_echo):
    r, _ = flood("-c", "4", "-t", "2", "-d", "2", "-R", "100", slow_echo.url())
    u = r["users"]
    assert r["config"]["mode"] == "open"
    # 200 due in 2 s: never more; at least half of them, however busy the
    # machine (the rest are unfinished or unsent, and counted).
    assert 100 <= u["done"] <= 205, u
    assert u["done"] + u["unfinished"] + u["unsent"] <= 205, u
    lat = u["latency_us"]
    # echo waits 20 ms before answering (on a millisecond timer, so
    # 19 ms and a fraction at the least). Only the injected delay bounds
    # the latency: how far above it lands depends on the machine's load.
    assert lat["min"] >= 19000
    assert 19000 <= lat["p50"] <= lat["p99"], lat
    # Per-second targets follow the rate.
    assert all(abs(s["target"] - 100) < 1e-6 for s in r["series"])


def run_with_stall(echo_srv, args, stall_at=1.0, stall_for=0.6):
    """Runs flood in the background and stops echo with SIGSTOP from
    stall_at to stall_at + stall_for seconds into the run."""
    p = flood_bg(*args)
    time.sleep(stall_at)
    os.kill(echo_srv.pid, signal.SIGSTOP)
    try:
        time.sleep(stall_for)
    finally:
        os.kill(echo_srv.pid, signal.SIGCONT)
    return finish(p)


def test_stalled_server_open_loop_shows_queueing_closed_loop_hides_it(echo):
    opened = run_with_stall(echo, ["-c", "4", "-t", "2", "-d", "3", "-R", "200", echo.url()])
    closed = run_with_stall(echo, ["-c", "4", "-t", "2", "-d", "3", echo.url()])
    o, c = opened["users"], closed["users"]
    # Open loop: about 120 of 600 requests came due during the 600 ms
    # stall and waited for it: the p90 and p99 show the queueing.
    assert o["latency_us"]["p99"] >= 350000, o["latency_us"]
    assert o["latency_us"]["p90"] >= 100000, o["latency_us"]
    assert o["latency_us"]["max"] >= 500000
    # ... while the service time (from the actual write) looks much better.
    assert o["service_time_us"]["p90"] < o["latency_us"]["p90"]
    # Closed loop: only the 4 requests in flight saw the stall; the
    # generator simply stopped sending, so its percentiles stay below the
    # open loop's (an ordering: the absolute values follow the machine).
    assert c["latency_us"]["max"] >= 500000, c["latency_us"]
    assert c["latency_us"]["p90"] < o["latency_us"]["p90"], (c["latency_us"], o["latency_us"])
    assert o["errors"] == 0 and c["errors"] == 0


# ---- clients: sources and attackers ----------------------------------------

def test_source_addresses_spread_at_the_server(recorder):
    r, _ = flood("-c", "8", "-t", "2", "-d", "1500ms", "--conn-per-request", "--sources", "127.0.1.1-127.0.1.200",
                 recorder.url())
    peers = set(recorder.peers)
    assert all(p.startswith("127.0.1.") for p in peers), peers
    u = r["users"]
    # As many distinct peers as connections, up to the 200 addresses (or
    # 100: a busy machine makes fewer connections, a count, not a speed).
    assert len(peers) >= min(100, u["connects"]), f"{len(peers)} distinct peers"
    assert u["errors"] == 0
    assert u["sources_used"] == min(200, u["connects"])
    assert u["connects"] >= u["done"]


def test_keepalive_connections_each_from_their_own_address(recorder):
    flood("-c", "20", "-t", "2", "-d", "1", "--sources", "127.0.3.0/24", recorder.url())
    assert len(recorder.peers) == 20, recorder.peers


def test_attacker_share_is_separated(recorder):
    r, _ = flood("-c", "10", "-t", "2", "-d", "2", "-R", "100", "--sources", "127.0.2.1-127.0.2.50",
                 "--attacker-share", "0.2", "--attacker-sources", "127.6.6.1-127.6.6.2", "--attacker-rate", "400",
                 recorder.url())
    u, a = r["users"], r["attackers"]
    assert r["config"]["attacker"]["connections"] == 2
    assert a["mode"] == "open" and u["mode"] == "open"
    # The recorder rejects 127.6.6.x: every attacker response is a 429,
    # and none of the users' is.
    # 800 attacker and 200 user requests come due: at least a quarter of
    # each is done however busy the machine.
    assert a["done"] > 200 and a["rejected"] == a["done"] and a["status"] == {"429": a["done"]}
    assert u["done"] > 50 and u["rejected"] == 0 and u["admitted"] == u["done"]
    assert a["rejected_latency_us"]["count"] == a["rejected"]
    # Attackers sent from their two addresses, users from theirs.
    atk = {p for p in recorder.peers if p.startswith("127.6.6.")}
    assert atk == {"127.6.6.1", "127.6.6.2"}
    assert sum(recorder.peers[p] for p in atk) >= a["done"]
    assert len([p for p in recorder.peers if p.startswith("127.0.2.")]) == 8
    series = r["series"]
    assert sum(s["attacker_classes"]["429"] for s in series) > 0
    assert sum(s["classes"]["429"] for s in series) == 0


# ---- mixes, priorities, profiles -------------------------------------------

def test_mix_weights_and_priority_header_from_a_yaml_file(recorder, tmp_path):
    cfg = tmp_path / "shop.yaml"
    cfg.write_text(f"""
url: {recorder.url()}
connections: 6
threads: 2
duration: 1500ms
priority_header: X-Priority
templates:
  - {{name: browse, weight: 80, path: /products, priority: low}}
  - name: cart
    weight: 15
    method: POST
    path: /cart
    body: '{{"sku": 42}}'
    headers: {{Content-Type: application/json}}
    priority: high
  - {{name: checkout, weight: 5, method: POST, path: /checkout, priority: critical}}
""")
    r, _ = flood("--config", cfg)
    reqs = recorder.requests
    n = len(reqs)
    assert n >= 50
    paths = Counter(p for _, _, p, _ in reqs)

    # Each request draws its template: the shares are within 4.5 standard
    # deviations of the weights for however many requests were made.
    def near(share, p):
        return abs(share - p) < 4.5 * (p * (1 - p) / n) ** 0.5

    assert near(paths["/products"] / n, 0.80), paths
    assert near(paths["/cart"] / n, 0.15), paths
    assert near(paths["/checkout"] / n, 0.05), paths
    for _, method, path, h in reqs:
        want = {"/products": ("GET", "low"), "/cart": ("POST", "high"), "/checkout": ("POST", "critical")}[path]
        assert (method, h.get("x-priority")) == want
        if path == "/cart":
            assert h["content-type"] == "application/json" and h["content-length"] == "11"
    names = {t["name"]: t for t in r["templates"]}
    assert set(names) == {"browse", "cart", "checkout"}
    assert sum(t["done"] for t in r["templates"]) == r["users"]["done"]


def test_spike_profile_shapes_the_rate(echo):
    r, _ = flood("-c", "8", "-t", "2", "-R", "50", "--profile", "spike:1x1s,4x1s,1x1s", echo.url())
    s = r["series"]
    assert r["config"]["duration_s"] == 3
    assert len(s) == 3
    done = [x["done"] for x in s]
    # The spike second does the most; how close each second comes to its
    # target depends on the machine, the targets themselves do not.
    assert done[1] > done[0] and done[1] > done[2], done
    assert sum(done) <= 300 + 10, done
    assert [x["target"] for x in s] == [50, 200, 50]


@pytest.mark.parametrize("framing", ["chunked", "close"])
def test_response_framings(framing):
    srv = Recorder(framing)
    try:
        r, _ = flood("-c", "4", "-t", "2", "-d", "1", srv.url())
    finally:
        srv.close()
    u = r["users"]
    assert u["done"] > 50 and u["errors"] == 0, u
    assert u["status"] == {"200": u["done"]}
    if framing == "chunked":
        assert u["connects"] == 4  # kept alive
    else:
        assert u["connects"] >= u["done"]


# ---- errors ----------------------------------------------------------------

def test_refused_connections_are_errors_and_the_run_still_ends():
    port = free_port()
    t0 = time.monotonic()
    r, _ = flood("-c", "4", "-d", "1", f"http://127.0.0.1:{port}/")
    assert time.monotonic() - t0 < 10  # ends: ten times its duration at most
    u = r["users"]
    assert u["done"] == 0 and u["errors_by_kind"]["connect"] > 0


def test_timeouts_against_a_silent_server():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(64)
    port = s.getsockname()[1]
    try:
        r, _ = flood("-c", "2", "-t", "1", "-d", "1200ms", "--timeout", "300ms", f"http://127.0.0.1:{port}/")
    finally:
        s.close()
    u = r["users"]
    assert u["done"] == 0
    assert u["errors_by_kind"]["timeout"] >= 4, u["errors_by_kind"]


def test_error_statuses_are_counted_by_code(echo):
    r, _ = flood("--mix", "1:GET:/status/503,1:GET:/status/404,2:GET:/", "-c", "4", "-d", "1", echo.url())
    u = r["users"]
    st = u["status"]
    assert set(st) == {"200", "404", "503"}
    assert u["rejected"] == st["503"] and u["admitted"] == st["200"] + st["404"]


# ---- the HTML report in a browser ------------------------------------------

def png_pixels(path):
    """Decodes an 8-bit RGB or RGBA, non-interlaced PNG: (width, height,
    rows of bytes, bytes per pixel)."""
    data = open(path, "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, w = 8, b"", None
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        pos += 12 + n
        if kind == b"IHDR":
            w, h, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert depth == 8 and color in (2, 6) and interlace == 0, (depth, color, interlace)
            bpp = 3 if color == 2 else 4
        elif kind == b"IDAT":
            idat += body
        elif kind == b"IEND":
            break
    raw = zlib.decompress(idat)
    stride = w * bpp
    rows, prev, i = [], bytearray(stride), 0
    for _ in range(h):
        f, line = raw[i], bytearray(raw[i + 1:i + 1 + stride])
        i += 1 + stride
        for x in range(stride):
            a = line[x - bpp] if x >= bpp else 0
            b = prev[x]
            c = prev[x - bpp] if x >= bpp else 0
            if f == 1:
                line[x] = (line[x] + a) & 255
            elif f == 2:
                line[x] = (line[x] + b) & 255
            elif f == 3:
                line[x] = (line[x] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line))
        prev = line
    return w, h, rows, bpp


def test_html_report_renders_in_headless_chromium(echo, tmp_path):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        pytest.skip("chromium is not installed (Debian package 'chromium'; make deps installs it)")
    report = tmp_path / "report.html"
    subprocess.run([binary(), "flood", "-q", "-c", "4", "-t", "2", "-R", "100", "--profile", "spike:1x1s,3x1s,1x1s",
                    "--mix", "3:GET:/,1:GET:/status/429", "--html", report, echo.url()], check=True,
                   timeout=scaled(30), stdin=subprocess.DEVNULL)
    html = report.read_text()
    assert "<script" not in html and "http://" not in html.replace("http://www.w3.org/2000/svg", "").replace(
        echo.url(), "")
    assert html.count("<svg") == 3 and "<polyline" in html
    png = tmp_path / "out.png"
    profile = tempfile.mkdtemp(prefix="fl-chromium-")
    try:
        p = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                            "--no-first-run", "--disable-background-networking", "--disable-component-update",
                            "--disable-sync", f"--user-data-dir={profile}", f"--screenshot={png}",
                            "--window-size=1200,1600", f"file://{report}"],
                           capture_output=True, timeout=scaled(60), stdin=subprocess.DEVNULL)
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    assert png.exists(), p.stderr.decode()[-2000:]
    assert png.stat().st_size > 20000
    w, h, rows, bpp = png_pixels(png)
    assert (w, h) == (1200, 1600)
    nonwhite = blue = green = orange = 0
    for row in rows:
        for r, g, b in zip(row[0::bpp], row[1::bpp], row[2::bpp]):
            if r >= 240 and g >= 240 and b >= 240:
                continue
            nonwhite += 1
            if abs(r - 0x25) <= 40 and abs(g - 0x63) <= 40 and abs(b - 0xEB) <= 40:
                blue += 1     # throughput line and the p90 line
            elif abs(r - 0x16) <= 40 and abs(g - 0xA3) <= 40 and abs(b - 0x4A) <= 40:
                green += 1    # 2xx bars and the p50 line
            elif abs(r - 0xF9) <= 40 and abs(g - 0x73) <= 40 and abs(b - 0x16) <= 40:
                orange += 1   # 429 bars and the rejected line
    assert nonwhite > 60000, nonwhite
    assert blue > 500, blue
    assert green > 2000, green
    assert orange > 200, orange
