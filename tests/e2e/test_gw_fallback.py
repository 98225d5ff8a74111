"""Fallbacks after an upstream failure: when the last server tried fails
before any byte of an answer reached the client (refused, reset, timed
out), the service's fallback answers instead of a bare 502/504, and the
primary's breaker still counts the failure."""

import requests

from fgtest import free_port, scaled, start
from gwtest import config, gateway, metric, service


def test_static_fallback_after_connect_failures():
    dead = free_port()
    svc = service("app", [f"127.0.0.1:{dead}"], passive={"max_failures": 0},
                  breaker={"consecutive_failures": 3, "open_for": "30s"},
                  fallback={"status": 200, "body": "degraded\n", "content_type": "text/plain"})
    with gateway(config([svc], threads=1)) as gw:
        s = requests.Session()
        for _ in range(5):
            r = s.get(gw.url("/x"), timeout=scaled(5))
            assert r.status_code == 200 and r.text == "degraded\n"
            assert r.headers["X-Floodgate-Fallback"] == "static"
        m = gw.metrics()
        # A 200 fallback is still a failure of the primary: the breaker opened.
        assert metric(m, "floodgate_gateway_breaker_state", service="app") == 1
        assert metric(m, "floodgate_gateway_fallbacks_total") == 5


def test_fallback_service_after_upstream_timeout():
    slow_port, spare_port = free_port(), free_port()
    with start(["echo", "-l", str(slow_port), "--name", "slow", "--latency", "2000"], port=slow_port), \
            start(["echo", "-l", str(spare_port), "--name", "spare"], port=spare_port):
        svc = service("app", [f"127.0.0.1:{slow_port}"], passive={"max_failures": 0},
                      fallback={"service": "spare"})
        cfg = config([svc, service("spare", [f"127.0.0.1:{spare_port}"])], threads=1,
                     timeouts={"upstream_response": "200ms"})
        with gateway(cfg) as gw:
            r = requests.get(gw.url("/y"), timeout=scaled(5))
            assert r.status_code == 200 and r.headers["X-Server"] == "spare"


def test_no_fallback_keeps_502():
    dead = free_port()
    with gateway(config([service("app", [f"127.0.0.1:{dead}"])], threads=1)) as gw:
        assert requests.get(gw.url("/z"), timeout=scaled(5)).status_code == 502
