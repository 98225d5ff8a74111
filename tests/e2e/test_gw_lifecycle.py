"""End-to-end: the life of a `floodgate gateway` process. Config checking
with --check (errors name FILE:LINE), reloads under load with no failed
request, SIGTERM draining in-flight requests, startup failures."""

import os
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest
import requests

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fgtest import binary, free_port, scaled  # noqa: E402
from gwtest import (Load, backends, config, echo, gateway, metric, route,  # noqa: E402
                    servers_hit, service, settle, wait_until)

T = scaled(5)

GOOD = """\
listen: 127.0.0.1:{port}
admin: off
services:
  - name: app
    servers: [127.0.0.1:9001]
routes:
  - prefix: /
    service: app
"""


def check(path):
    return subprocess.run([binary(), "gateway", "--check", "-c", str(path)],
                          capture_output=True, text=True, timeout=T)


# ---- --check ---------------------------------------------------------------

def test_check_accepts_a_good_config(tmp_path):
    f = tmp_path / "good.yaml"
    port = free_port()
    f.write_text(GOOD.format(port=port))
    p = check(f)
    assert p.returncode == 0, p.stderr
    assert "configuration OK" in p.stdout
    # --check only checks: nothing listens.
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()


@pytest.mark.parametrize("text,line,words", [
    (GOOD.replace("services:", "servcies: 1\nservices:"), 3, ["servcies", "unknown key"]),
    (GOOD + "timeouts:\n  client_header: 5\n", 10, ["timeouts.client_header", "unit"]),
    (GOOD.replace("    service: app", "    service: ap"), 8, ["routes[0].service", "ap"]),
    (GOOD.replace("[127.0.0.1:9001]", "[127.0.0.1:99999]"), 5, ["services[0].servers"]),
    (GOOD.replace("  - name: app", "  - name: App!"), 4, ["services[0].name"]),
    (GOOD + "limits:\n  max_headers: 0\n", 10, ["limits.max_headers"]),
    (GOOD.replace("    service: app", "    service: app\n    service: app"), 9, ["duplicate"]),
    (GOOD.replace("routes:", "routes: [\n"), None, []),
], ids=["unknown-key", "duration-unit", "unknown-service", "bad-port", "bad-name", "range",
        "duplicate-key", "yaml-syntax"])
def test_check_refuses_a_bad_config_with_file_and_line(tmp_path, text, line, words):
    f = tmp_path / "bad.yaml"
    f.write_text(text.format(port=free_port()))
    p = check(f)
    assert p.returncode == 1, (p.stdout, p.stderr)
    if line is not None:
        assert f"{f}:{line}:" in p.stderr, p.stderr
    else:
        assert f"{f}:" in p.stderr, p.stderr
    for w in words:
        assert w in p.stderr, p.stderr


def test_check_missing_file(tmp_path):
    p = check(tmp_path / "missing.yaml")
    assert p.returncode == 1
    assert "missing.yaml" in p.stderr


def test_print_default_passes_check(tmp_path):
    p = subprocess.run([binary(), "gateway", "--print-default"], capture_output=True, text=True,
                       timeout=T)
    assert p.returncode == 0
    f = tmp_path / "default.yaml"
    f.write_text(p.stdout)
    c = check(f)
    assert c.returncode == 0, c.stderr


def test_help_and_bad_flag():
    p = subprocess.run([binary(), "gateway", "--help"], capture_output=True, text=True, timeout=T)
    assert p.returncode == 0 and "--check" in p.stdout
    p = subprocess.run([binary(), "gateway", "--no-such-flag"], capture_output=True, text=True,
                       timeout=T)
    assert p.returncode == 2


def test_busy_listen_port_fails_startup(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        f = tmp_path / "busy.yaml"
        f.write_text(GOOD.format(port=port))
        p = subprocess.run([binary(), "gateway", "-c", str(f)], capture_output=True, text=True,
                           timeout=T)
    assert p.returncode == 1
    assert "listen" in p.stderr


# ---- reload ----------------------------------------------------------------

def test_reload_under_load_fails_no_request():
    with backends("r1", "r2", "r3") as (r1, r2, r3):
        def cfg(w1, w2, w3, extra_routes=()):
            return config([service("app", [(r1, w1), (r2, w2), (r3, w3)], balance="weighted")],
                          routes=[route("/", "app"), *extra_routes])

        with gateway(cfg(1, 1, 1)) as gw:
            weights = [(5, 1, 1), (1, 5, 1), (1, 1, 5), (2, 2, 1), (1, 1, 1)]
            with Load(gw.url("/r"), threads=2) as keep, \
                    Load(gw.url("/r"), threads=1, fresh=True) as fresh:
                keep.wait_count(50)
                for i, w in enumerate(weights):
                    gen = gw.generation()
                    gw.write_config(cfg(*w))
                    gw.sighup()
                    wait_until(lambda: gw.generation() > gen, 3, what=f"reload {i + 1}")
                    keep.wait_count(30)
                # The last config moves everything to r1.
                gen = gw.generation()
                gw.write_config(config([service("app", [r1])]))
                gw.sighup()
                wait_until(lambda: gw.generation() > gen, 3, what="the last reload")
                # Each worker adopts the new config at its next poll (see
                # gwtest.settle): allow a moment for that.
                time.sleep(0.2)
                t = time.monotonic()
                keep.wait_count(100)
                fresh.wait_count(5)
            assert keep.failed == [] and fresh.failed == [], (keep.failed[:5], fresh.failed[:5])
            assert keep.count() > 200
            assert set(keep.servers_between(t)) == {"r1"}
            assert gw.log().count("configuration reloaded") >= 6


def test_reload_applies_new_weights():
    with backends("w1", "w2") as (w1, w2):
        def cfg(weight1):
            return config([service("app", [(w1, weight1), (w2, 1)], balance="weighted")], threads=1)

        with gateway(cfg(1)) as gw:
            assert sorted(servers_hit(gw.url("/"), 4)) == ["w1", "w1", "w2", "w2"]
            gw.write_config(cfg(3))
            gen = gw.generation()
            gw.sighup()
            wait_until(lambda: gw.generation() > gen, 3, what="the reload")
            settle(gw)
            hits = servers_hit(gw.url("/"), 40)
            assert hits.count("w1") == 30, hits


def test_failed_reload_keeps_serving():
    with backends("f1") as (f1,):
        with gateway(config([service("app", [f1])])) as gw:
            with open(gw.cfg_path, "a") as f:
                f.write("  - broken: [\n")
            gen = gw.generation()
            gw.sighup()
            wait_until(lambda: "reload failed" in gw.log(), 3, what="the failed reload in the log")
            assert gw.generation() == gen
            assert servers_hit(gw.url("/"), 3) == ["f1"] * 3


# ---- SIGTERM ---------------------------------------------------------------

def test_sigterm_drains_in_flight_requests():
    # The requests take long enough (4 s) that the listener closes while
    # they run however slow the machine, and the drain deadline (20 s) is
    # far enough that an exit at the deadline cannot pass for one at the
    # end of the requests.
    with echo("slow", "--latency", "4000") as slow:
        cfg = config([service("app", [slow])], timeouts={"drain": "20s"})
        with gateway(cfg, check_exit=False) as gw:
            results = []
            lock = threading.Lock()

            def one():
                try:
                    r = requests.get(gw.url("/slow"), timeout=scaled(10))
                    out = (r.status_code, r.headers.get("Connection"), r.text)
                except requests.RequestException as e:
                    out = ("error", repr(e), "")
                with lock:
                    results.append(out)

            # An idle keep-alive connection too: it is closed at once.
            idle = socket.create_connection(("127.0.0.1", gw.port))
            idle.sendall(b"GET /warm HTTP/1.1\r\nHost: t\r\n\r\n")
            idle.settimeout(scaled(5))
            assert idle.recv(65536).startswith(b"HTTP/1.1 200")

            ts = [threading.Thread(target=one) for _ in range(5)]
            for t in ts:
                t.start()
            wait_until(lambda: metric(gw.metrics(), "floodgate_gateway_server_inflight",
                                      service="app", server=slow.addr) == 5, 10,
                       what="5 requests in flight")
            t_term = time.monotonic()
            gw.proc.send_signal(signal.SIGTERM)

            # New connections are refused soon after, while the slow
            # requests are still running.
            def refused():
                try:
                    socket.create_connection(("127.0.0.1", gw.port), timeout=0.2).close()
                    return False
                except ConnectionRefusedError:
                    return True
                except OSError:
                    return False  # reset: accepted just as the listener closed
            wait_until(refused, 3.0, what="the listener to close")
            with lock:
                assert results == [], "listener closed only after the slow requests"
            assert idle.recv(1) == b"", "the idle keep-alive connection stays open"
            idle.close()

            for t in ts:
                t.join(timeout=scaled(10))
            assert [r[0] for r in results] == [200] * 5, results
            assert all(r[1] == "close" for r in results), results
            code = gw.proc.wait(timeout=scaled(5))
            exited = time.monotonic() - t_term
            assert code == 0, gw.log()
            assert exited < 10.0, f"exit took {exited:.1f}s, drain is 20s"


def test_sigterm_drain_deadline_cuts_long_requests():
    with echo("stuck", "--latency", "30000") as stuck:
        cfg = config([service("app", [stuck])], timeouts={"drain": "500ms"})
        with gateway(cfg, check_exit=False) as gw:
            s = socket.create_connection(("127.0.0.1", gw.port))
            s.sendall(b"GET /stuck HTTP/1.1\r\nHost: t\r\n\r\n")
            wait_until(lambda: metric(gw.metrics(), "floodgate_gateway_server_inflight",
                                      service="app", server=stuck.addr) == 1, 5,
                       what="the request in flight")
            t = time.monotonic()
            gw.proc.send_signal(signal.SIGTERM)
            code = gw.proc.wait(timeout=scaled(5))
            elapsed = time.monotonic() - t
            assert code == 0, gw.log()
            # After the deadline, and long before the request would have
            # ended by itself.
            assert 0.4 <= elapsed < 15, elapsed
            assert "drain deadline passed" in gw.log()
            s.settimeout(scaled(2))
            try:
                data = s.recv(65536)
            except ConnectionResetError:
                data = b""
            assert not data.startswith(b"HTTP/1.1 200"), data
            s.close()


def test_sigterm_idle_gateway_exits_at_once():
    with backends("i1") as (i1,):
        with gateway(config([service("app", [i1])]), check_exit=False) as gw:
            assert servers_hit(gw.url("/"), 2) == ["i1", "i1"]
            t = time.monotonic()
            gw.proc.send_signal(signal.SIGTERM)
            assert gw.proc.wait(timeout=scaled(20)) == 0
            # Nothing to drain: well before the 30 s drain deadline.
            assert time.monotonic() - t < 15
            assert "gateway stopped" in gw.log()


def test_sigint_stops_too():
    with backends("s1") as (s1,):
        with gateway(config([service("app", [s1])]), check_exit=False) as gw:
            gw.proc.send_signal(signal.SIGINT)
            assert gw.proc.wait(timeout=scaled(5)) == 0


def test_runs_with_admin_off():
    with backends("o1") as (o1,):
        with gateway(config([service("app", [o1])]), admin=False) as gw:
            assert servers_hit(gw.url("/"), 2) == ["o1", "o1"]
            assert "admin on off" in gw.log()


def test_reload_removing_a_service_lets_its_requests_finish():
    with echo("old", "--latency", "3000") as old, backends("new") as (new,):
        cfg = config([service("old", [old]), service("new", [new])],
                     routes=[route("/old", "old"), route("/", "new")], threads=1)
        with gateway(cfg) as gw:
            result = {}

            def slow():
                r = requests.get(gw.url("/old/x"), timeout=T)
                result["r"] = (r.status_code, r.headers.get("X-Server"))

            t = threading.Thread(target=slow)
            t.start()
            wait_until(lambda: metric(gw.metrics(), "floodgate_gateway_server_inflight",
                                      service="old", server=old.addr) == 1, 5,
                       what="the request in flight")
            gen = gw.generation()
            gw.write_config(config([service("new", [new])], threads=1))
            gw.sighup()
            wait_until(lambda: gw.generation() > gen, 3, what="the reload")
            settle(gw)
            # New requests no longer see the old route...
            assert servers_hit(gw.url("/old/y"), 2) == ["new", "new"]
            # ...and the one in flight finishes on the service it started with.
            t.join(timeout=scaled(10))
            assert result["r"] == (200, "old")


def test_reload_cannot_move_listeners():
    with backends("l1") as (l1,):
        with gateway(config([service("app", [l1])])) as gw:
            cfg = config([service("app", [l1])])
            other = free_port()
            gw.write_config(cfg)
            text = open(gw.cfg_path).read().replace(f"127.0.0.1:{gw.port}", f"127.0.0.1:{other}")
            with open(gw.cfg_path, "w") as f:
                f.write(text)
            gen = gw.generation()
            gw.sighup()
            wait_until(lambda: gw.generation() > gen, 3, what="the reload")
            assert "listen addresses changed" in gw.log()
            assert servers_hit(gw.url("/"), 2) == ["l1", "l1"]
            with pytest.raises(OSError):
                socket.create_connection(("127.0.0.1", other), timeout=0.2).close()
