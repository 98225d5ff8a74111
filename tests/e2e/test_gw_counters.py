"""End-to-end: the gateway's request counters are kept per worker thread
and summed when read. With several workers taking connections, /metrics
and the admin API's /services still count every request exactly once, and
removing a server leaves the counts of the rest where they were."""

import os
import sys

import pytest
import requests

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fgtest import scaled  # noqa: E402
from gwtest import backends, config, gateway, metric, route, service, wait_until  # noqa: E402

T = scaled(5)
P = "floodgate_gateway_"
N = 60


@pytest.fixture
def env():
    with backends("c1", "c2") as (c1, c2):
        cfg = config([service("app", [c1, c2])], routes=[route("/", "app")], threads=4)
        with gateway(cfg) as gw:
            gw.c1, gw.c2 = c1.addr, c2.addr
            yield gw


def app_total(ms):
    return sum(v for (n, lab), v in ms.items()
               if n == P + "requests_total" and dict(lab).get("service") == "app")


def fresh_requests(gw, n):
    """n GETs, each on a connection of its own, so that the kernel spreads
    them over the workers. Returns the X-Server of each."""
    out = []
    for _ in range(n):
        r = requests.get(gw.url("/n"), headers={"Connection": "close"}, timeout=T)
        assert r.status_code == 200, r.text
        out.append(r.headers.get("X-Server"))
    return out


def wait_counted(gw, total):
    # A request is counted just after its response is written.
    wait_until(lambda: app_total(gw.metrics()) >= total, 5, what=f"{total} requests counted")


def test_counts_from_every_worker_add_up(env):
    before = env.steady_metrics()
    hits = fresh_requests(env, N)
    wait_counted(env, app_total(before) + N)
    after = env.steady_metrics()

    def delta(name, **labels):
        return metric(after, P + name, **labels) - metric(before, P + name, **labels)

    assert delta("requests_total", service="app", code_class="2xx") == N
    assert app_total(after) - app_total(before) == N
    per_server = {a: delta("server_requests_total", service="app", server=a, code_class="2xx")
                  for a in (env.c1, env.c2)}
    assert per_server == {env.c1: hits.count("c1"), env.c2: hits.count("c2")}
    assert delta("request_duration_seconds_count", service="app") == N
    assert delta("request_duration_seconds_count") == N
    assert delta("connections_accepted_total") >= N

    # The admin API sums the same entries.
    svcs = env.admin("GET", "/services").json()
    app = next(s for s in svcs if s["name"] == "app")
    assert app["requests"] == app_total(after)
    by_addr = {s["address"]: s["requests"] for s in app["servers"]}
    for a in (env.c1, env.c2):
        assert by_addr[a] == sum(metric(after, P + "server_requests_total", service="app", server=a,
                                        code_class=c)
                                 for c in ("none", "1xx", "2xx", "3xx", "4xx", "5xx"))


def test_removing_a_server_keeps_the_others_counts(env):
    fresh_requests(env, 20)
    wait_counted(env, 20)
    before = env.steady_metrics()
    c1_before = metric(before, P + "server_requests_total", service="app", server=env.c1,
                       code_class="2xx")
    assert c1_before > 0
    r = env.admin("DELETE", f"/services/app/servers/{env.c2}")
    assert r.status_code == 200, r.text
    wait_until(lambda: not any(n == P + "server_requests_total" and dict(lab).get("server") == env.c2
                               for (n, lab) in env.metrics()), 5, what="c2's series gone")
    after = env.metrics()
    assert metric(after, P + "server_requests_total", service="app", server=env.c1,
                  code_class="2xx") == c1_before
    assert app_total(after) == app_total(before)
    # New requests all go to c1 and add to its count.
    assert set(fresh_requests(env, 10)) == {"c1"}
    wait_counted(env, app_total(before) + 10)
    later = env.steady_metrics()
    assert metric(later, P + "server_requests_total", service="app", server=env.c1,
                  code_class="2xx") == c1_before + 10
