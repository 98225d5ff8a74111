"""End-to-end: the admin API of `floodgate gateway` on its own listener.
Register, deregister, drain and undrain servers; create and remove
services with routes; every change takes effect for the next request and
survives reloads (SIGHUP and POST /reload)."""

import collections
import os
import subprocess
import sys
import threading
import time

import pytest
import requests

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fgtest import Conn, scaled  # noqa: E402
from gwtest import (backends, config, echo, gateway, route, servers_hit, service,  # noqa: E402
                    settle, wait_until)

T = scaled(5)


@pytest.fixture(scope="module")
def bes():
    with backends("a1", "a2", "a3") as bs:
        yield bs


@pytest.fixture
def gw(bes):
    # One worker thread, so that settle() reaches it (see gwtest.settle).
    a1 = bes[0]
    with gateway(config([service("app", [a1])], threads=1)) as g:
        yield g


def post_server(gw, svc, addr, status=201, **extra):
    r = gw.admin("POST", f"/services/{svc}/servers", dict(address=addr, **extra))
    assert r.status_code == status, r.text
    settle(gw)
    return r


def change(gw, method, path, body=None, status=200):
    r = gw.admin(method, path, body)
    assert r.status_code == status, r.text
    settle(gw)
    return r


def addrs(gw, svc):
    r = gw.admin("GET", f"/services/{svc}/servers")
    assert r.status_code == 200, r.text
    return [s["address"] for s in r.json()]


def test_health_and_listing(gw, bes):
    r = gw.admin("GET", "/health")
    assert r.status_code == 200 and r.json() == {"status": "ok"}
    r = gw.admin("GET", "/services")
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("application/json")
    svcs = r.json()
    assert [s["name"] for s in svcs] == ["app"]
    app = svcs[0]
    assert app["balance"] == "round_robin"
    assert [s["address"] for s in app["servers"]] == [bes[0].addr]
    assert app["servers"][0]["state"] == "up"
    assert app["routes"] == [{"prefix": "/", "strip_prefix": False}]
    r = gw.admin("GET", "/services/app")
    assert r.status_code == 200 and r.json()["name"] == "app"
    assert gw.admin("GET", "/services/nope").status_code == 404
    assert gw.admin("GET", "/nope").status_code == 404


def test_admin_is_not_on_the_data_listener(gw):
    # The data port proxies; /services there is just a path for the backend.
    r = requests.get(gw.url("/services"), timeout=T)
    assert r.headers["X-Server"] == "a1"


def test_register_gets_traffic(gw, bes):
    a1, a2, _ = bes
    with requests.Session() as s:
        assert servers_hit(gw.url("/"), 4, session=s) == ["a1"] * 4
        r = post_server(gw, "app", a2.addr, weight=1)
        assert r.json()["address"] == a2.addr and r.json()["dynamic"] is True
        # The next requests, on the same client connection, use it.
        hits = servers_hit(gw.url("/"), 10, session=s)
    assert collections.Counter(hits) == {"a1": 5, "a2": 5}, hits
    assert addrs(gw, "app") == [a1.addr, a2.addr]


def test_register_errors(gw, bes):
    a1, a2, _ = bes
    assert gw.admin("POST", "/services/app/servers", {"address": a1.addr}).status_code == 409
    assert gw.admin("POST", "/services/nope/servers", {"address": a2.addr}).status_code == 404
    assert gw.admin("POST", "/services/app/servers", {"address": "not an address"}).status_code == 400
    assert gw.admin("POST", "/services/app/servers", {}).status_code == 400
    assert gw.admin("POST", "/services/app/servers", {"address": a2.addr, "weight": 0}).status_code == 400
    assert gw.admin("POST", "/services/app/servers", {"address": a2.addr, "weight": 1.5}).status_code == 400
    r = requests.post(gw.admin_url("/services/app/servers"), data=b"{not json",
                      headers={"Content-Type": "application/json"}, timeout=T)
    assert r.status_code == 400
    assert "error" in r.json()
    assert addrs(gw, "app") == [a1.addr]


def test_deregister_stops_traffic(gw, bes):
    a1, a2, _ = bes
    post_server(gw, "app", a2.addr)
    with requests.Session() as s:
        assert set(servers_hit(gw.url("/"), 10, session=s)) == {"a1", "a2"}
        # Leave the round robin cursor pointing at a2, then remove it.
        for _ in range(4):
            if servers_hit(gw.url("/"), 1, session=s) == ["a1"]:
                break
        r = change(gw, "DELETE", f"/services/app/servers/{a2.addr}")
        assert r.json()["removed"] is True
        hits = servers_hit(gw.url("/"), 10, session=s)
    assert hits == ["a1"] * 10, hits
    assert addrs(gw, "app") == [a1.addr]
    assert gw.admin("DELETE", f"/services/app/servers/{a2.addr}").status_code == 404


def test_deregister_by_percent_encoded_address(gw, bes):
    a2 = bes[1]
    assert gw.admin("POST", "/services/app/servers", {"address": a2.addr}).status_code == 201
    enc = a2.addr.replace(":", "%3A")
    r = gw.admin("GET", f"/services/app/servers/{enc}")
    assert r.status_code == 200 and r.json()["address"] == a2.addr
    assert gw.admin("DELETE", f"/services/app/servers/{enc}").status_code == 200
    assert addrs(gw, "app") == [bes[0].addr]


def test_drain_and_undrain(gw, bes):
    a1, a2, _ = bes
    post_server(gw, "app", a2.addr)
    r = change(gw, "POST", f"/services/app/servers/{a2.addr}/drain")
    assert r.json()["state"] == "draining"
    assert servers_hit(gw.url("/"), 10) == ["a1"] * 10
    assert gw.admin("GET", f"/services/app/servers/{a2.addr}").json()["state"] == "draining"
    r = change(gw, "POST", f"/services/app/servers/{a2.addr}/undrain")
    assert r.json()["state"] == "up"
    assert set(servers_hit(gw.url("/"), 10)) == {"a1", "a2"}
    assert gw.admin("POST", "/services/app/servers/127.0.0.1:1/drain").status_code == 404


def test_drain_lets_in_flight_requests_finish():
    with echo("slowd", "--latency", "800") as slow:
        with gateway(config([service("app", [slow])], threads=1)) as g:
            result = {}

            def slow_request():
                r = requests.get(g.url("/in-flight"), timeout=T)
                result["status"], result["server"] = r.status_code, r.headers.get("X-Server")

            t = threading.Thread(target=slow_request)
            t.start()
            wait_until(lambda: g.admin("GET", f"/services/app/servers/{slow.addr}").json()["inflight"] == 1,
                       2, what="the slow request in flight")
            change(g, "POST", f"/services/app/servers/{slow.addr}/drain")
            # No other server: new requests have nowhere to go.
            r = requests.get(g.url("/new"), timeout=T)
            assert r.status_code == 503
            assert "Retry-After" in r.headers
            t.join(timeout=scaled(5))
            assert result == {"status": 200, "server": "slowd"}
            change(g, "POST", f"/services/app/servers/{slow.addr}/undrain")
            assert requests.get(g.url("/back"), timeout=T).status_code == 200


def test_create_service_with_route_and_remove_it(gw, bes):
    _, _, a3 = bes
    assert requests.get(gw.url("/dyn/x"), timeout=T).headers["X-Server"] == "a1"
    r = change(gw, "POST", "/services", {"name": "dyn", "prefix": "/dyn", "strip_prefix": True}, 201)
    assert r.json()["dynamic"] is True
    assert gw.admin("POST", "/services", {"name": "dyn"}).status_code == 409
    assert gw.admin("POST", "/services", {"name": "Bad Name"}).status_code == 400
    assert gw.admin("POST", "/services", {"name": "x", "balance": "nope"}).status_code == 400
    assert gw.admin("POST", "/services", {"name": "y", "prefix": "nope"}).status_code == 400
    # The route exists at once; the pool is empty: 503.
    assert requests.get(gw.url("/dyn/x"), timeout=T).status_code == 503
    post_server(gw, "dyn", a3.addr)
    r = requests.get(gw.url("/dyn/x"), timeout=T)
    assert r.status_code == 200 and r.text == "a3 GET /x\n"
    names = [s["name"] for s in gw.admin("GET", "/services").json()]
    assert names == ["app", "dyn"]
    change(gw, "DELETE", "/services/dyn")
    assert requests.get(gw.url("/dyn/x"), timeout=T).headers["X-Server"] == "a1"
    assert [s["name"] for s in gw.admin("GET", "/services").json()] == ["app"]
    assert gw.admin("DELETE", "/services/dyn").status_code == 404


def registrations_hold(gw, bes):
    a1, a2, a3 = bes
    assert addrs(gw, "app") == [a1.addr, a2.addr]
    assert addrs(gw, "dyn") == [a3.addr]
    assert set(servers_hit(gw.url("/"), 6)) == {"a1", "a2"}
    assert servers_hit(gw.url("/dyn/z"), 2) == ["a3", "a3"]


def test_registrations_survive_reloads(gw, bes):
    a1, a2, a3 = bes
    post_server(gw, "app", a2.addr)
    change(gw, "POST", "/services", {"name": "dyn", "prefix": "/dyn", "strip_prefix": True}, 201)
    post_server(gw, "dyn", a3.addr)
    registrations_hold(gw, bes)

    # SIGHUP with the file unchanged.
    gen = gw.generation()
    gw.sighup()
    wait_until(lambda: gw.generation() > gen, 3, what="the SIGHUP reload")
    settle(gw)
    registrations_hold(gw, bes)

    # POST /reload after a change to the file: both apply.
    cfg = config([service("app", [a1]), service("extra", [a3])],
                 routes=[route("/", "app"), route("/extra", "extra")])
    gw.write_config(cfg)
    gen = gw.generation()
    r = change(gw, "POST", "/reload")
    assert r.json()["status"] == "ok" and r.json()["generation"] > gen
    registrations_hold(gw, bes)
    assert servers_hit(gw.url("/extra"), 2) == ["a3", "a3"]

    # A removal survives reloads too.
    change(gw, "DELETE", f"/services/app/servers/{a2.addr}")
    gw.sighup()
    change(gw, "POST", "/reload")
    assert addrs(gw, "app") == [a1.addr]
    assert servers_hit(gw.url("/"), 4) == ["a1"] * 4


def test_bad_reload_keeps_running_config(gw, bes):
    with open(gw.cfg_path, "a") as f:
        f.write("bogus_key: 1\n")
    r = gw.admin("POST", "/reload")
    assert r.status_code == 400
    assert "bogus_key" in r.json()["error"]
    assert servers_hit(gw.url("/"), 3) == ["a1"] * 3


def test_generation_grows_with_each_change(gw, bes):
    g0 = gw.generation()
    assert gw.admin("POST", "/services/app/servers", {"address": bes[1].addr}).status_code == 201
    g1 = gw.generation()
    assert gw.admin("POST", f"/services/app/servers/{bes[1].addr}/drain").status_code == 200
    g2 = gw.generation()
    assert g0 < g1 < g2


def test_admin_keepalive_and_malformed(gw):
    with Conn(gw.admin_port) as c:
        for _ in range(3):
            c.send(b"GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n")
            assert c.response().status == 200
        c.send(b"GET /health HTTP/1.1\r\nHost a\r\n\r\n")
        assert c.response().status == 400
    assert gw.admin("PUT", "/services").status_code == 405


def test_concurrent_registration_under_load(gw, bes):
    # Changes while requests flow: no request fails.
    _, a2, a3 = bes
    stop = threading.Event()
    failures = []

    def load():
        with requests.Session() as s:
            end = time.monotonic() + scaled(20)
            while not stop.is_set() and time.monotonic() < end:
                try:
                    r = s.get(gw.url("/"), timeout=T)
                    if r.status_code != 200:
                        failures.append(r.status_code)
                except requests.RequestException as e:
                    failures.append(repr(e))

    t = threading.Thread(target=load)
    t.start()
    try:
        for _ in range(10):
            for b in (a2, a3):
                assert gw.admin("POST", "/services/app/servers", {"address": b.addr}).status_code == 201
            for b in (a2, a3):
                assert gw.admin("DELETE", f"/services/app/servers/{b.addr}").status_code == 200
    finally:
        stop.set()
        t.join(timeout=scaled(10))
    assert failures == []


def test_membership_change_applies_to_the_very_next_request(bes):
    # One CPU for the gateway, shared with a busy loop: its worker is slow
    # to wake, as on a loaded machine. Children inherit the affinity.
    a1, a2, _ = bes
    old = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(old)})
    burner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        with gateway(config([service("app", [a1])], threads=1)) as g, requests.Session() as s:
            stale = []
            for i in range(30):
                r = g.admin("POST", "/services/app/servers", {"address": a2.addr})
                assert r.status_code == 201
                # A new pool starts its round robin at its first server:
                # two requests reach both.
                if "a2" not in servers_hit(g.url("/"), 2, session=s):
                    stale.append(f"{i}: registered server not used")
                assert g.admin("DELETE", f"/services/app/servers/{a2.addr}").status_code == 200
                if servers_hit(g.url("/"), 1, session=s) == ["a2"]:
                    stale.append(f"{i}: deregistered server used")
            assert stale == [], stale
    finally:
        burner.kill()
        burner.wait()
        os.sched_setaffinity(0, old)
