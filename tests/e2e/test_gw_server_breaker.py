"""Per-server circuit breakers (a service's server_breaker:) end to end:
one of three echo servers fails, its breaker opens and the traffic goes
to the other two; it recovers and, after the open time, its probes close
the breaker and it gets traffic again. Also: tripping on the slow-call
rate over a window with a minimum volume, the admin API and /metrics
views, and the state kept across a reload."""

import time

import requests

from fgtest import free_port, scaled, start
from gwtest import config, gateway, metric, service, wait_until


def hits(gw, n, session):
    """n GETs; returns ({server: count of 2xx}, [non-2xx statuses])."""
    ok, bad = {}, []
    for _ in range(n):
        r = session.get(gw.url("/x"), timeout=scaled(5))
        if 200 <= r.status_code < 300:
            ok[r.headers["X-Server"]] = ok.get(r.headers["X-Server"], 0) + 1
        else:
            bad.append(r.status_code)
    return ok, bad


def server_view(gw, addr):
    r = gw.admin("GET", f"/services/app/servers/{addr}")
    assert r.status_code == 200, r.text
    return r.json()


def test_failing_server_is_cut_out_and_back_in():
    ports = [free_port() for _ in range(3)]
    addrs = [f"127.0.0.1:{p}" for p in ports]
    good = [start(["echo", "-l", str(p), "--name", f"e{i}"], port=p) for i, p in enumerate(ports[:2])]
    bad = start(["echo", "-l", str(ports[2]), "--name", "e2", "--error-rate", "1"], port=ports[2])
    try:
        # open_for: long enough for the checks below on a busy machine.
        svc = service("app", addrs, server_breaker={"consecutive_failures": 3, "open_for": "6s",
                                                     "half_open_probes": 2})
        with gateway(config([svc], threads=1)) as gw:
            s = requests.Session()
            # Round robin: e2 answers 500 to its first three requests, then
            # its breaker opens and it gets nothing more.
            ok, errs = hits(gw, 30, s)
            assert errs == [500, 500, 500], errs
            assert set(ok) == {"e0", "e1"} and sum(ok.values()) == 27, ok
            v = server_view(gw, addrs[2])
            assert v["state"] == "breaker_open", v
            assert v["breaker"]["state"] == "open" and v["breaker"]["opened"] == 1
            assert 0 < v["breaker"]["retry_in_ms"] <= 6000
            assert server_view(gw, addrs[0])["breaker"]["state"] == "closed"
            m = gw.metrics()
            assert metric(m, "floodgate_gateway_server_breaker_state", service="app", server=addrs[2]) == 1
            assert metric(m, "floodgate_gateway_server_breaker_state", service="app", server=addrs[0]) == 0
            assert metric(m, "floodgate_gateway_server_breaker_transitions_total", service="app",
                          server=addrs[2], to="open") == 1
            assert metric(m, "floodgate_gateway_server_up", service="app", server=addrs[2]) == 0
            # The service as a whole is fine: every request still succeeds.
            ok, errs = hits(gw, 20, s)
            assert errs == [] and "e2" not in ok, (ok, errs)

            # A reload with the same settings keeps the breaker's state.
            gen = gw.generation()
            gw.sighup()
            wait_until(lambda: gw.generation() > gen, 5, what="the reload")
            assert server_view(gw, addrs[2])["breaker"]["state"] == "open"

            # The server recovers; after open_for, two probes close it.
            bad.stop()
            bad = start(["echo", "-l", str(ports[2]), "--name", "e2"], port=ports[2])

            # Traffic goes on meanwhile: the probes are ordinary requests.
            def closed():
                ok, errs = hits(gw, 3, s)
                assert errs == [], errs
                return server_view(gw, addrs[2])["breaker"]["state"] == "closed"
            wait_until(closed, 15, interval=0.05, what="the breaker to close")
            ok, errs = hits(gw, 30, s)
            assert errs == [] and ok == {"e0": 10, "e1": 10, "e2": 10}, (ok, errs)
            m = gw.metrics()
            for to, n in (("open", 1), ("half_open", 1), ("closed", 1)):
                assert metric(m, "floodgate_gateway_server_breaker_transitions_total", service="app",
                              server=addrs[2], to=to) == n, to
            assert "circuit breaker closed -> open (consecutive_failures)" in gw.log()
            assert "circuit breaker half_open -> closed (probes_succeeded)" in gw.log()
    finally:
        for p in good + [bad]:
            p.stop()


def test_failed_probe_reopens():
    ports = [free_port() for _ in range(2)]
    addrs = [f"127.0.0.1:{p}" for p in ports]
    with start(["echo", "-l", str(ports[0]), "--name", "ok"], port=ports[0]), \
            start(["echo", "-l", str(ports[1]), "--name", "bad", "--error-rate", "1"], port=ports[1]):
        svc = service("app", addrs, server_breaker={"consecutive_failures": 2, "open_for": "1s",
                                                     "half_open_probes": 1})
        with gateway(config([svc], threads=1)) as gw:
            s = requests.Session()
            ok, errs = hits(gw, 10, s)
            assert errs == [500, 500], errs
            time.sleep(1.2)  # past open_for
            # One probe goes to the still failing server and reopens it.
            codes = []
            for _ in range(10):
                codes.append(s.get(gw.url("/x"), timeout=scaled(5)).status_code)
                if codes[-1] != 200:
                    break
            assert codes[-1] == 500 and codes.count(500) == 1, codes
            v = server_view(gw, addrs[1])["breaker"]
            assert v["state"] == "open" and v["opened"] == 2
            assert "half_open -> open (probe_failed)" in gw.log()


def test_slow_server_trips_on_slow_call_rate():
    ports = [free_port() for _ in range(3)]
    addrs = [f"127.0.0.1:{p}" for p in ports]
    procs = [start(["echo", "-l", str(ports[0]), "--name", "fast0"], port=ports[0]),
             start(["echo", "-l", str(ports[1]), "--name", "fast1"], port=ports[1]),
             start(["echo", "-l", str(ports[2]), "--name", "slow", "--latency", "600"], port=ports[2])]
    try:
        # No consecutive-failure rule, no failure rate: only slow calls
        # (>= 300 ms, half the slow server's 600 ms and far above what a
        # busy machine adds to the fast ones) can trip it, once the window
        # holds 4 calls.
        svc = service("app", addrs, server_breaker={
            "consecutive_failures": 0, "failure_rate": 0, "slow_call": "300ms", "slow_rate": 50,
            "min_calls": 4, "window": 10, "open_for": "1m"})
        with gateway(config([svc], threads=1)) as gw:
            s = requests.Session()
            ok, errs = hits(gw, 12, s)  # 4 to the slow one: the 4th trips it
            assert errs == [] and ok.get("slow") == 4, ok
            v = server_view(gw, addrs[2])
            assert v["state"] == "breaker_open" and v["breaker"]["state"] == "open", v
            ok, errs = hits(gw, 20, s)
            assert errs == [] and "slow" not in ok, ok  # none waited on the slow server
            assert "circuit breaker closed -> open (slow_call_rate)" in gw.log()
    finally:
        for p in procs:
            p.stop()


def test_all_servers_open_gives_the_fallback():
    ports = [free_port() for _ in range(2)]
    addrs = [f"127.0.0.1:{p}" for p in ports]
    with start(["echo", "-l", str(ports[0]), "--error-rate", "1"], port=ports[0]), \
            start(["echo", "-l", str(ports[1]), "--error-rate", "1"], port=ports[1]):
        svc = service("app", addrs, server_breaker={"consecutive_failures": 1, "open_for": "1m"},
                      fallback={"status": 503, "body": "later\n"})
        with gateway(config([svc], threads=1)) as gw:
            s = requests.Session()
            codes = [s.get(gw.url("/x"), timeout=scaled(5)).status_code for _ in range(2)]
            assert codes == [500, 500]
            r = s.get(gw.url("/x"), timeout=scaled(5))
            assert r.status_code == 503 and r.text == "later\n"
            assert r.headers["X-Floodgate-Fallback"] == "static"
            assert metric(gw.metrics(), "floodgate_gateway_fallbacks_total") == 1


def test_bad_server_breaker_config_is_refused():
    import subprocess
    import tempfile
    import os
    from fgtest import binary
    with tempfile.TemporaryDirectory() as d:
        p = os.path.join(d, "gw.yaml")
        with open(p, "w") as f:
            f.write("services:\n  - name: app\n    servers: [127.0.0.1:1]\n"
                    "    server_breaker:\n      half_open_probes: 0\n"
                    "routes:\n  - prefix: /\n    service: app\n")
        r = subprocess.run([binary(), "gateway", "--check", "-c", p], capture_output=True,
                           timeout=scaled(10))
        assert r.returncode == 1
        assert b"services[0].server_breaker.half_open_probes" in r.stderr, r.stderr
