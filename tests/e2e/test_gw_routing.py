"""End-to-end: routing in `floodgate gateway`. Host and path-prefix rules
to named services, the longest prefix wins, host rules beat host-less ones
at equal length, prefix stripping, and 404 when nothing matches."""

import os
import subprocess
import sys

import pytest
import requests

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fgtest import Conn, scaled  # noqa: E402
from gwtest import backends, config, gateway, route, service  # noqa: E402

T = scaled(5)


@pytest.fixture(scope="module")
def env():
    with backends("api", "v2", "apihost", "wild", "static") as (api, v2, apihost, wild, static):
        cfg = config(
            [service("api", [api]), service("v2", [v2]), service("apihost", [apihost]),
             service("wild", [wild]), service("static", [static])],
            routes=[route("/api", "api"),
                    route("/api/v2", "v2", strip=True),
                    route("/api", "apihost", host="api.example.com"),
                    route("/w", "wild", host="*.example.org"),
                    route("/static/", "static", strip=True)])
        with gateway(cfg) as gw:
            yield gw


def get(gw, path, host="gw.test"):
    """(status, X-Server, body) of GET path with Host host."""
    with Conn(gw.port) as c:
        c.send(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        r = c.response()
    return r.status, r.header("X-Server"), r.body.decode("latin-1")


@pytest.mark.parametrize("path,server,seen", [
    ("/api", "api", "/api"),
    ("/api/users", "api", "/api/users"),
    ("/api/users?id=7", "api", "/api/users?id=7"),
    ("/api/v2x", "api", "/api/v2x"),         # segment match: not under /api/v2
    ("/api/v2", "v2", "/"),                  # stripped to the root
    ("/api/v2/", "v2", "/"),
    ("/api/v2/users", "v2", "/users"),       # longest prefix wins, stripped
    ("/api/v2/users?x=1", "v2", "/users?x=1"),
    ("/api/v2?x=1", "v2", "/?x=1"),
    ("/static/css/a.css", "static", "/css/a.css"),
])
def test_prefix_routes(env, path, server, seen):
    status, srv, body = get(env, path)
    assert (status, srv) == (200, server), body
    assert body == f"{server} GET {seen}\n"


@pytest.mark.parametrize("path", ["/", "/apix", "/ap", "/other/api", "/API", "/static", "/w/x"])
def test_no_match_is_404(env, path):
    status, srv, body = get(env, path)
    assert status == 404
    assert srv is None  # answered by the gateway itself
    assert body == "404 Not Found\n"


@pytest.mark.parametrize("host", ["api.example.com", "API.Example.COM", "api.example.com:8080"])
def test_host_rule_beats_hostless_rule(env, host):
    status, srv, body = get(env, "/api/x", host=host)
    assert (status, srv) == (200, "apihost")
    assert body == "apihost GET /api/x\n"


def test_longer_hostless_prefix_beats_host_rule(env):
    status, srv, _ = get(env, "/api/v2/y", host="api.example.com")
    assert (status, srv) == (200, "v2")


@pytest.mark.parametrize("host,server", [("a.example.org", "wild"), ("a.b.example.org", "wild"),
                                         ("example.org", None), ("aexample.org", None),
                                         ("a.example.org.evil", None)])
def test_wildcard_host(env, host, server):
    status, srv, _ = get(env, "/w/page", host=host)
    if server:
        assert (status, srv) == (200, server)
    else:
        assert status == 404


def test_absolute_form_uses_its_host(env):
    with Conn(env.port) as c:
        c.send(b"GET http://api.example.com/api/abs HTTP/1.1\r\nHost: api.example.com\r\n\r\n")
        r = c.response()
    assert r.status == 200 and r.header("X-Server") == "apihost"
    assert r.body == b"apihost GET /api/abs\n"


def test_404_keeps_the_connection_usable(env):
    with Conn(env.port) as c:
        c.send(b"GET /nope HTTP/1.1\r\nHost: t\r\n\r\nGET /api/yes HTTP/1.1\r\nHost: t\r\n\r\n")
        assert c.response().status == 404
        r = c.response()
        assert r.status == 200 and r.header("X-Server") == "api"


def test_routes_with_requests_and_curl(env):
    with requests.Session() as s:
        assert s.get(env.url("/api/v2/r"), timeout=T).text == "v2 GET /r\n"
        assert s.get(env.url("/nothing"), timeout=T).status_code == 404
        r = s.get(env.url("/api/h"), headers={"Host": "api.example.com"}, timeout=T)
        assert r.headers["X-Server"] == "apihost"
    p = subprocess.run(["curl", "-sS", "--max-time", str(int(T)), "-H", "Host: x.example.org",
                        env.url("/w/c")], capture_output=True, timeout=T + 5)
    assert p.returncode == 0, p.stderr
    assert p.stdout == b"wild GET /w/c\n"


def test_strip_keeps_host_and_forwarding_headers(env):
    status, srv, body = get(env, "/api/v2/headers", host="orig.test")
    assert (status, srv) == (200, "v2")
    lines = body.split("\r\n")
    assert lines[0] == "GET /headers HTTP/1.1"
    assert "Host: orig.test" in lines
