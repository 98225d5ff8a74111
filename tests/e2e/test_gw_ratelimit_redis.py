"""Centralized rate limiting: gateways sharing rule state in a real
redis-server (started here on a free port, no persistence)."""

import contextlib
import http.client
import shutil
import subprocess
import tempfile

import pytest
import requests

from fgtest import free_port, scaled, wait_port
from gwtest import backends, config, gateway, metric, parse_metrics, route, service, wait_until

REDIS = shutil.which("redis-server") or "/usr/bin/redis-server"


@contextlib.contextmanager
def redis_server(port=None):
    port = port or free_port()
    d = tempfile.mkdtemp(prefix="fg-redis-")
    p = subprocess.Popen([REDIS, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                          "--appendonly", "no", "--dir", d],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    try:
        wait_port(port, timeout=scaled(10), proc=p)
        p.port = port
        yield p
    finally:
        if p.poll() is None:
            p.terminate()
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        shutil.rmtree(d, ignore_errors=True)


def get(port, src="127.0.0.1", path="/"):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=scaled(5), source_address=(src, 0))
    try:
        c.request("GET", path)
        r = c.getresponse()
        r.read()
        return r.status, {k.lower(): v for k, v in r.getheaders()}
    finally:
        c.close()


def rl_cfg(backend, redis_port, rule, **store):
    st = {"redis": f"127.0.0.1:{redis_port}", "timeout": "500ms" if not store.get("timeout") else store["timeout"]}
    st.update({k: v for k, v in store.items() if k != "timeout"})
    rule = dict(rule)
    rule.setdefault("name", "shared")
    rule.setdefault("store", "redis")
    rule.setdefault("key", "client_ip")
    return config([service("app", [backend])],
                  routes=[dict(route("/", "app"), rate_limits=[rule["name"]])],
                  rate_limits=[rule], rate_limit_store=st)


def metrics(gw):
    return parse_metrics(requests.get(f"http://127.0.0.1:{gw.admin_port}/metrics", timeout=scaled(5)).text)


def wait_connected(gw):
    wait_until(lambda: metric(metrics(gw), "floodgate_gateway_ratelimit_redis_connected") >= 1,
               scaled(10), what="gateway connected to redis")


RULES = [
    {"algorithm": "token_bucket", "limit": 12, "window": "1h"},
    {"algorithm": "leaky_bucket", "limit": 1, "window": "1h", "burst": 11},
    {"algorithm": "fixed_window", "limit": 12, "window": "1h"},
    {"algorithm": "sliding_log", "limit": 12, "window": "1h"},
    {"algorithm": "sliding_window", "limit": 12, "window": "1h"},
]


@pytest.mark.parametrize("rule", RULES, ids=[r["algorithm"] for r in RULES])
def test_two_gateways_enforce_one_limit(rule):
    """Two gateways, one Redis, one client alternating between them: 12
    requests pass in all, not 12 per gateway; the refusals carry the
    RateLimit fields and Retry-After."""
    with backends("a") as (a,), redis_server() as rs:
        cfg = rl_cfg(a, rs.port, rule)
        with gateway(cfg) as g1, gateway(cfg) as g2:
            wait_connected(g1)
            wait_connected(g2)
            codes = []
            refusal = None
            for i in range(30):
                st, h = get((g1 if i % 2 == 0 else g2).port, "127.0.5.1")
                codes.append(st)
                if st == 429 and refusal is None:
                    refusal = h
            assert codes.count(200) == 12, codes
            assert codes.count(429) == 18, codes
            assert codes[:12] == [200] * 12, codes
            assert int(refusal["retry-after"]) >= 1
            assert refusal["ratelimit-policy"].startswith('"shared";q=')
            assert refusal["ratelimit"].startswith('"shared";r=0;t=')
            # Another client has its own quota, on either gateway.
            assert get(g2.port, "127.0.5.2")[0] == 200
            assert get(g1.port, "127.0.5.2")[0] == 200
            # Redis holds the state under the configured prefix.
            keys = subprocess.run(["redis-cli", "-p", str(rs.port), "--scan", "--pattern", "floodgate:rl:*"],
                                  capture_output=True, text=True, timeout=10).stdout.split()
            assert any(k.startswith("floodgate:rl:shared:") for k in keys), keys


def test_rejections_are_cached_locally():
    """Once Redis refuses a key, the gateway refuses it locally until
    Retry-After has passed: a flood costs Redis almost nothing."""
    with backends("a") as (a,), redis_server() as rs:
        cfg = rl_cfg(a, rs.port, {"algorithm": "token_bucket", "limit": 5, "window": "1h"})
        cfg["threads"] = 1
        with gateway(cfg) as gw:
            wait_connected(gw)
            codes = [get(gw.port, "127.0.6.1")[0] for _ in range(60)]
            assert codes.count(200) == 5
            m = metrics(gw)
            calls = metric(m, "floodgate_gateway_ratelimit_redis_calls_total")
            local = metric(m, "floodgate_gateway_ratelimit_redis_local_total", kind="denied")
            assert calls == 6, calls    # 5 admissions and the first refusal
            assert local == 54, local


def test_lease_cuts_round_trips_and_never_exceeds_the_limit():
    with backends("a") as (a,), redis_server() as rs:
        cfg = rl_cfg(a, rs.port, {"algorithm": "token_bucket", "limit": 100, "window": "1h"},
                     lease=10, lease_ttl="10s")
        cfg["threads"] = 1
        with gateway(cfg) as gw:
            wait_connected(gw)
            s = requests.Session()
            codes = [s.get(gw.url("/"), timeout=scaled(5)).status_code for _ in range(150)]
            assert codes.count(200) <= 100
            assert codes.count(200) >= 90  # leases are taken at most half of what is left
            m = metrics(gw)
            calls = metric(m, "floodgate_gateway_ratelimit_redis_calls_total")
            assert calls < 60, calls


@pytest.mark.parametrize("on_error,expect", [("allow", 200), ("deny", 503), ("local", "local")])
def test_redis_down(on_error, expect):
    """Nothing listens where Redis should be: on_error decides, at once."""
    with backends("a") as (a,):
        dead = free_port()
        cfg = rl_cfg(a, dead, {"algorithm": "token_bucket", "limit": 3, "window": "1h"}, on_error=on_error)
        with gateway(cfg) as gw:
            codes = [get(gw.port, "127.0.7.1")[0] for _ in range(6)]
            if expect == "local":
                assert codes == [200] * 3 + [429] * 3, codes
            else:
                assert codes == [expect] * 6, codes
            m = metrics(gw)
            assert metric(m, "floodgate_gateway_ratelimit_redis_failures_total", reason="unavailable") >= 6


def test_redis_restart_is_survived():
    """Redis goes away and comes back (empty, without the script): the
    gateway fails open meanwhile, then reconnects and limits again."""
    port = free_port()
    with backends("a") as (a,), contextlib.ExitStack() as st:
        rs = st.enter_context(redis_server(port))
        gw = st.enter_context(gateway(rl_cfg(a, port, {"algorithm": "sliding_log", "limit": 4, "window": "1h"})))
        wait_connected(gw)
        assert [get(gw.port, "127.0.8.1")[0] for _ in range(5)] == [200] * 4 + [429]
        rs.terminate()
        rs.wait(10)
        wait_until(lambda: metric(metrics(gw), "floodgate_gateway_ratelimit_redis_connected") == 0,
                   scaled(10), what="gateway noticed redis is gone")
        assert get(gw.port, "127.0.8.2")[0] == 200  # fail open
        with redis_server(port):
            wait_connected(gw)
            codes = [get(gw.port, "127.0.8.3")[0] for _ in range(6)]
            assert codes == [200] * 4 + [429] * 2, codes


def test_slow_redis_times_out():
    """Redis stops answering (CLIENT PAUSE): each check waits at most the
    configured timeout, then on_error (allow) lets the request through."""
    with backends("a") as (a,), redis_server() as rs:
        cfg = rl_cfg(a, rs.port, {"algorithm": "token_bucket", "limit": 100, "window": "1h"}, timeout="100ms")
        with gateway(cfg) as gw:
            wait_connected(gw)
            assert get(gw.port)[0] == 200
            pause = 10.0
            subprocess.run(["redis-cli", "-p", str(rs.port), "CLIENT", "PAUSE", str(int(pause * 1000)), "ALL"],
                           check=True, capture_output=True, timeout=10)
            assert get(gw.port, "127.0.9.1")[0] == 200
            # Answered through the timeout while Redis was paused (the
            # failure counted as a timeout), not after it woke.
            m = metrics(gw)
            assert metric(m, "floodgate_gateway_ratelimit_redis_failures_total", reason="timeout") >= 1
