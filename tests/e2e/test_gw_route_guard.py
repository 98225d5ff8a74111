"""Per-route allow and deny lists changed at run time through the admin API
(/routes/{route}/allow, /deny): clients from different 127.x addresses,
IPv4 and IPv6 CIDRs, validation, the route's JSON view, /metrics, and the
changes surviving a reload."""

import http.client
import os
import socket
import time

import pytest

from fgtest import scaled
from gwtest import backends, config, gateway, metric, route, service, wait_until


def get(port, src, path="/", host="127.0.0.1"):
    """One GET from source address src; returns the status."""
    c = http.client.HTTPConnection(host, port, timeout=scaled(5), source_address=(src, 0))
    try:
        c.request("GET", path)
        r = c.getresponse()
        r.read()
        return r.status
    finally:
        c.close()


def cfg_for(a, **top):
    return config([service("app", [a])],
                  routes=[dict(route("/admin", "app"), name="admin", allow=["127.0.9.0/24"]),
                          dict(route("/api", "app"), deny=["127.0.7.7"]),
                          route("/", "app")],
                  threads=1, **top)


def test_route_lists_change_at_run_time():
    with backends("a") as (a,), gateway(cfg_for(a)) as gw:
        # The config's lists.
        assert get(gw.port, "127.0.9.1", "/admin/x") == 200
        assert get(gw.port, "127.0.8.1", "/admin/x") == 403
        assert get(gw.port, "127.0.7.7", "/api/x") == 403
        assert get(gw.port, "127.0.7.8", "/api/x") == 200

        r = gw.admin("GET", "/routes/admin")
        assert r.status_code == 200, r.text
        j = r.json()
        assert j["name"] == "admin" and j["prefix"] == "/admin" and j["service"] == "app"
        assert j["allow"] == ["127.0.9.0/24"] and j["deny"] == []
        assert j["refused"] == {"allow": 1, "deny": 0}

        # Allow another /24 on /admin, by name.
        r = gw.admin("POST", "/routes/admin/allow", {"cidr": "127.0.8.0/24"})
        assert r.status_code == 201, r.text
        assert r.json()["allow"] == ["127.0.9.0/24", "127.0.8.0/24"]
        assert get(gw.port, "127.0.8.1", "/admin/x") == 200
        assert get(gw.port, "127.0.10.1", "/admin/x") == 403

        # Deny one address of it, on the same route.
        r = gw.admin("POST", "/routes/admin/deny", {"cidr": "127.0.8.66"})
        assert r.status_code == 201, r.text
        assert get(gw.port, "127.0.8.66", "/admin/x") == 403
        assert get(gw.port, "127.0.8.67", "/admin/x") == 200

        # By prefix (percent-encoded): deny a /16 on /api, then lift the
        # config's own entry.
        r = gw.admin("POST", "/routes/%2Fapi/deny", {"cidr": "127.0.0.0/16"})
        assert r.status_code == 201, r.text
        assert get(gw.port, "127.0.3.3", "/api/x") == 403
        assert get(gw.port, "127.1.3.3", "/api/x") == 200
        assert get(gw.port, "127.0.3.3", "/other") == 200  # other routes untouched
        r = gw.admin("DELETE", "/routes/%2Fapi/deny?cidr=127.0.0.0%2F16")
        assert r.status_code == 200, r.text
        r = gw.admin("DELETE", "/routes/%2Fapi/deny?cidr=127.0.7.7")
        assert r.status_code == 200, r.text
        assert r.json()["deny"] == []
        assert get(gw.port, "127.0.7.7", "/api/x") == 200

        r = gw.admin("GET", "/routes/admin/deny")
        assert r.status_code == 200 and r.json() == {"route": "admin", "deny": ["127.0.8.66"]}
        listed = {x["id"]: x for x in gw.admin("GET", "/routes").json()}
        assert set(listed) == {"admin", "/api", "/"}
        assert listed["/api"]["deny"] == []

        m = gw.metrics()
        assert metric(m, "floodgate_gateway_route_refused_total", route="admin", list="allow") == 2
        assert metric(m, "floodgate_gateway_route_refused_total", route="admin", list="deny") == 1
        assert metric(m, "floodgate_gateway_route_refused_total", route="/api", list="deny") == 2
        assert metric(m, "floodgate_gateway_route_cidrs", route="admin", list="allow") == 2
        assert metric(m, "floodgate_gateway_route_cidrs", route="/api", list="deny") == 0
        assert metric(m, "floodgate_gateway_connections_refused_total", reason="route_list") == 5


def test_route_list_changes_survive_reload():
    with backends("a") as (a,), gateway(cfg_for(a)) as gw:
        r = gw.admin("POST", "/routes/admin/allow", {"cidr": "127.0.8.0/24"})
        assert r.status_code == 201, r.text
        r = gw.admin("POST", "/routes/%2F/deny", {"cidr": "127.0.5.0/24"})
        assert r.status_code == 201, r.text
        gen = gw.generation()
        gw.sighup()
        wait_until(lambda: gw.generation() > gen, 5, what="the reload")
        assert get(gw.port, "127.0.8.1", "/admin/x") == 200
        assert get(gw.port, "127.0.5.1", "/x") == 403
        assert get(gw.port, "127.0.6.1", "/x") == 200
        j = gw.admin("GET", "/routes/%2F").json()
        assert j["deny"] == ["127.0.5.0/24"]
        # Counters are kept across the reload too.
        assert j["refused"]["deny"] == 1


def test_route_list_validation():
    with backends("a") as (a,), gateway(cfg_for(a)) as gw:
        for body in ({"cidr": "127.0.0.1/8"}, {"cidr": "not-an-address"}, {"cidr": 7}, {}, None):
            r = gw.admin("POST", "/routes/admin/allow", body)
            assert r.status_code == 400, (body, r.text)
            assert "error" in r.json()
        r = gw.admin("POST", "/routes/nope/allow", {"cidr": "10.0.0.0/8"})
        assert r.status_code == 404 and "no route 'nope'" in r.json()["error"]
        r = gw.admin("POST", "/routes/%2Fnope/deny", {"cidr": "10.0.0.0/8"})
        assert r.status_code == 404
        r = gw.admin("POST", "/routes/%2Fapi/deny?host=a.example.com", {"cidr": "10.0.0.0/8"})
        assert r.status_code == 404 and "for host 'a.example.com'" in r.json()["error"]
        assert gw.admin("GET", "/routes/nope").status_code == 404
        assert gw.admin("GET", "/routes/admin/other").status_code == 404
        assert gw.admin("POST", "/routes/admin", {"cidr": "10.0.0.0/8"}).status_code == 404
        assert gw.admin("DELETE", "/routes/admin/deny").status_code == 400  # no ?cidr=
        assert gw.admin("GET", "/routes/%zz").status_code == 404
        # Nothing changed.
        j = gw.admin("GET", "/routes/admin").json()
        assert j["allow"] == ["127.0.9.0/24"] and j["deny"] == []


def test_route_host_specific_and_ipv6():
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    with backends("a") as (a,):
        cfg = config([service("app", [a])],
                     routes=[dict(route("/v", "app"), host="api.example.com"), route("/v", "app"),
                             route("/", "app")], threads=1)
        with gateway(cfg, host="::1") as gw:
            def get6(path, host_header=None):
                c = http.client.HTTPConnection("::1", gw.port, timeout=scaled(5))
                try:
                    c.request("GET", path, headers={"Host": host_header} if host_header else {})
                    r = c.getresponse()
                    r.read()
                    return r.status
                finally:
                    c.close()
            r = gw.admin("POST", "/routes/%2Fv/deny?host=api.example.com", {"cidr": "::1/128"})
            assert r.status_code == 201, r.text
            assert r.json()["host"] == "api.example.com" and r.json()["deny"] == ["::1/128"]
            assert get6("/v/x", "api.example.com") == 403
            assert get6("/v/x", "other.example.com") == 200  # the any-host route
            r = gw.admin("POST", "/routes/%2Fv/allow", {"cidr": "2001:db8::/32"})
            assert r.status_code == 201, r.text
            assert get6("/v/x", "other.example.com") == 403
            assert get6("/x") == 200
            r = gw.admin("DELETE", "/routes/%2Fv/allow?cidr=2001:db8::%2F32")
            assert r.status_code == 200, r.text
            assert get6("/v/x", "other.example.com") == 200
