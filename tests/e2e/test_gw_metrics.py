"""End-to-end: /metrics of `floodgate gateway` on the admin listener.
Well-formed Prometheus text, counters that count exactly what was sent,
latency histograms, error causes."""

import os
import re
import sys

import pytest
import requests

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fgtest import Conn, free_port, scaled  # noqa: E402
from gwtest import (backends, config, gateway, metric, parse_metrics, route,  # noqa: E402
                    servers_hit, service, wait_until)

T = scaled(5)
P = "floodgate_gateway_"


@pytest.fixture(scope="module")
def env():
    with backends("x1", "x2") as (x1, x2):
        dead = free_port()
        cfg = config([service("app", [x1, x2]), service("down", [dead])],
                     routes=[route("/app", "app", strip=True), route("/down", "down")])
        with gateway(cfg) as gw:
            gw.x1, gw.x2 = x1.addr, x2.addr
            yield gw


def test_format_is_prometheus_text(env):
    r = requests.get(env.admin_url("/metrics"), timeout=T)
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    typed = {}
    seen_samples = set()
    for line in r.text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            assert kind in ("counter", "gauge", "histogram", "summary", "untyped")
            assert name not in typed, f"TYPE twice for {name}"
            assert name not in seen_samples, f"TYPE after samples for {name}"
            typed[name] = kind
        elif line.startswith("# HELP "):
            continue
        else:
            assert not line.startswith("#"), line
            m = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$", line)
            assert m, line
            name = m.group(1)
            base = re.sub(r"_(bucket|sum|count)$", "", name)
            assert name in typed or base in typed, f"sample before its TYPE: {line}"
            seen_samples.add(name)
            seen_samples.add(base)
            float(m.group(3))
    assert r.text.endswith("\n")
    for name in ("requests_total", "server_requests_total", "request_duration_seconds",
                 "active_connections", "connections_accepted_total", "server_up",
                 "errors_total", "config_generation"):
        assert P + name in typed, name
    assert typed[P + "request_duration_seconds"] == "histogram"
    assert typed[P + "requests_total"] == "counter"
    assert all(n.startswith(P) for n in typed)


def test_requests_total_counts_exactly(env):
    before = env.steady_metrics()
    hits = servers_hit(env.url("/app/x"), 10)
    with Conn(env.port) as c:
        c.send(b"GET /app/status/404 HTTP/1.1\r\nHost: t\r\n\r\n"
               b"GET /app/status/503 HTTP/1.1\r\nHost: t\r\n\r\n")
        assert c.response().status == 404
        assert c.response().status == 503
    # A request is counted just after its response is written: wait for
    # the last one, then compare exactly.
    wait_until(lambda: metric(env.metrics(), P + "requests_total", service="app", code_class="5xx") >
               metric(before, P + "requests_total", service="app", code_class="5xx"), 2,
               what="the last request counted")
    after = env.metrics()

    def delta(name, **labels):
        return metric(after, P + name, **labels) - metric(before, P + name, **labels)

    assert delta("requests_total", service="app", code_class="2xx") == 10
    assert delta("requests_total", service="app", code_class="4xx") == 1
    assert delta("requests_total", service="app", code_class="5xx") == 1
    per_server = {a: delta("server_requests_total", service="app", server=a, code_class="2xx")
                  for a in (env.x1, env.x2)}
    assert sum(per_server.values()) == 10
    assert per_server[env.x1] == hits.count("x1")


def test_histogram_is_consistent_and_counts(env):
    before = env.steady_metrics()
    name = P + "request_duration_seconds"
    servers_hit(env.url("/app/h"), 7)
    wait_until(lambda: metric(env.metrics(), name + "_count", service="app") -
               metric(before, name + "_count", service="app") >= 7, 2, what="7 requests counted")
    after = env.metrics()
    for ms in (before, after):
        buckets = sorted(((float("inf") if dict(lab)["le"] == "+Inf" else float(dict(lab)["le"])), v)
                         for (n, lab), v in ms.items()
                         if n == name + "_bucket" and dict(lab).get("service") == "app")
        assert len(buckets) >= 10
        counts = [v for _, v in buckets]
        assert counts == sorted(counts), "buckets must be cumulative"
        assert buckets[-1][0] == float("inf")
        assert buckets[-1][1] == metric(ms, name + "_count", service="app")
    assert metric(after, name + "_count", service="app") - metric(before, name + "_count", service="app") == 7
    assert metric(after, name + "_sum", service="app") > metric(before, name + "_sum", service="app")
    # The unlabelled series counts every request.
    assert metric(after, name + "_count") - metric(before, name + "_count") >= 7


def test_errors_by_cause(env):
    before = env.steady_metrics()
    assert requests.get(env.url("/nowhere"), timeout=T).status_code == 404
    assert requests.get(env.url("/down"), timeout=T).status_code == 502
    with Conn(env.port) as c:
        c.send(b"GET / HTTP/1.1\r\n\r\n")
        assert c.response().status == 400
    after = env.metrics()

    def delta(kind):
        return metric(after, P + "errors_total", kind=kind) - metric(before, P + "errors_total", kind=kind)

    assert delta("no_route") == 1
    assert delta("upstream_connect") >= 1
    assert delta("bad_request") == 1
    dead = [lab for (n, lab) in after if n == P + "server_failures_total" and dict(lab)["service"] == "down"]
    assert metric(after, P + "server_failures_total", **dict(dead[0])) >= 1


def test_connection_gauges(env):
    with Conn(env.port) as c:
        c.send(b"GET /app/g HTTP/1.1\r\nHost: t\r\n\r\n")
        assert c.response().status == 200
        ms = env.metrics()
        assert metric(ms, P + "active_connections") >= 1
        assert metric(ms, P + "connections_accepted_total") >= 1
        assert metric(ms, P + "server_up", service="app", server=env.x1) == 1
        assert metric(ms, P + "server_weight", service="app", server=env.x1) == 1


def test_metrics_parse_helper_agrees(env):
    text = requests.get(env.admin_url("/metrics"), timeout=T).text
    ms = parse_metrics(text)
    assert len(ms) == sum(1 for ln in text.splitlines() if ln and not ln.startswith("#"))
