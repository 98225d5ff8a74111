"""The admin API refuses what the config file refuses, in the same words:
each value below is first written into a config file and checked with
`floodgate gateway --check` (which must refuse it), then sent through the
admin API, which must answer 400 with the same message (the JSON member's
name where the file's error has the key path) and leave the state as it
was. Malformed percent-encoding in a path or query is a 400 too."""

import copy
import os
import subprocess
import tempfile

import pytest

from fgtest import Conn, binary, scaled
from gwtest import backends, config, gateway, route, service, to_yaml


def config_error(cfg):
    """The message `gateway --check` prints for cfg (it must refuse it)."""
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "gw.yaml")
        cfg = dict(cfg, listen="127.0.0.1:1", admin="off")
        with open(path, "w") as f:
            f.write(to_yaml(cfg) + "\n")
        p = subprocess.run([binary(), "gateway", "--check", "-c", path], capture_output=True, text=True,
                           timeout=scaled(30))
    assert p.returncode != 0, p.stdout
    return p.stderr.strip()


def same_words(admin_error, file_error):
    """admin_error is "FIELD: MSG"; the file's error ends with MSG."""
    field, msg = admin_error.split(": ", 1)
    assert file_error.endswith(msg), (admin_error, file_error)


@pytest.fixture(scope="module")
def env():
    with backends("a") as (a,):
        base = config([service("app", [a])], routes=[route("/", "app"), {"name": "web", "prefix": "/web",
                                                                          "service": "app"}])
        with gateway(base) as gw:
            yield gw, a, base


def state(gw):
    return (gw.admin("GET", "/services").json(), gw.admin("GET", "/routes").json(),
            gw.admin("GET", "/guard").json())


def refused(gw, method, path, body, file_error):
    before = state(gw)
    r = gw.admin(method, path, body)
    assert r.status_code == 400, (path, body, r.status_code, r.text)
    same_words(r.json()["error"], file_error)
    assert state(gw) == before


def with_server(base, item):
    cfg = copy.deepcopy(base)
    cfg["services"][0]["servers"].append(item)
    return cfg


@pytest.mark.parametrize("addr", ["127.0.0.1:0", "9001", ":9001", "127.0.0.1:99999", "127.0.0.1:http"])
def test_server_address(env, addr):
    gw, a, base = env
    refused(gw, "POST", "/services/app/servers", {"address": addr}, config_error(with_server(base, addr)))


@pytest.mark.parametrize("weight", [0, 1001, -3, 1.5])
def test_server_weight(env, weight):
    gw, a, base = env
    err = config_error(with_server(base, {"address": "127.0.0.1:7", "weight": weight}))
    refused(gw, "POST", "/services/app/servers", {"address": "127.0.0.1:7", "weight": weight}, err)


def test_unknown_server_key(env):
    gw, a, base = env
    err = config_error(with_server(base, {"address": "127.0.0.1:7", "wieght": 3}))
    before = state(gw)
    r = gw.admin("POST", "/services/app/servers", {"address": "127.0.0.1:7", "wieght": 3})
    assert r.status_code == 400, r.text
    # The API's body has one more member than a config entry (ttl), so the
    # lists of valid keys differ; the words are the same.
    words = "unknown key; did you mean 'weight'? (valid keys: address, weight"
    assert r.json()["error"].startswith("wieght: " + words), r.text
    assert words in err, err
    assert state(gw) == before


@pytest.mark.parametrize("name", ["Bad Name", "x" * 65, "caf\u00e9"])
def test_service_name(env, name):
    gw, a, base = env
    cfg = copy.deepcopy(base)
    cfg["services"].append(service(name, ["127.0.0.1:7"]))
    refused(gw, "POST", "/services", {"name": name}, config_error(cfg))


@pytest.mark.parametrize("balance", ["round_robn", "fastest"])
def test_service_balance(env, balance):
    gw, a, base = env
    cfg = copy.deepcopy(base)
    cfg["services"].append(service("other", ["127.0.0.1:7"], balance=balance))
    refused(gw, "POST", "/services", {"name": "other", "balance": balance}, config_error(cfg))


@pytest.mark.parametrize("prefix", ["nope", "/a b", "/q?x"])
def test_service_route_prefix(env, prefix):
    gw, a, base = env
    cfg = copy.deepcopy(base)
    cfg["routes"].append(route(prefix, "app"))
    refused(gw, "POST", "/services", {"name": "other", "prefix": prefix}, config_error(cfg))


def test_service_route_prefix_taken(env):
    gw, a, base = env
    before = state(gw)
    r = gw.admin("POST", "/services", {"name": "other", "prefix": "/web"})
    assert r.status_code == 409 and "duplicate route" in r.json()["error"], r.text
    assert state(gw) == before


@pytest.mark.parametrize("cidr", ["10.0.0.0/33", "10.0.0.300", "nonsense"])
def test_cidrs(env, cidr):
    gw, a, base = env
    cfg = copy.deepcopy(base)
    cfg["guard"] = {"deny": [cidr]}
    err = config_error(cfg)
    refused(gw, "POST", "/guard/deny", {"cidr": cidr}, err)
    cfg = copy.deepcopy(base)
    cfg["routes"][1]["allow"] = [cidr]
    refused(gw, "POST", "/routes/web/allow", {"cidr": cidr}, config_error(cfg))


def test_route_host_query(env):
    gw, a, base = env
    cfg = copy.deepcopy(base)
    cfg["routes"].append(route("/h", "app", host="api.example.com:80"))
    before = state(gw)
    r = gw.admin("GET", "/routes/%2F?host=api.example.com:80")
    assert r.status_code == 400, r.text
    same_words(r.json()["error"], config_error(cfg))
    refused(gw, "POST", "/routes/%2F/deny?host=api.example.com:80", {"cidr": "10.0.0.0/8"}, config_error(cfg))
    assert state(gw) == before


@pytest.mark.parametrize("path", ["/routes/%2F?host=%", "/routes/%2F?host=%zz", "/routes/%2F/deny?cidr=10.0.0.0%2", "/routes/%zz",
                                  "/guard/deny?cidr=%"])
def test_malformed_percent_encoding(env, path):
    gw, a, base = env
    before = state(gw)
    for method in ("GET", "DELETE"):
        if path.startswith("/guard") and method == "GET":
            continue
        # Raw bytes: requests would re-encode a lone '%' as %25.
        with Conn(gw.admin_port) as c:
            c.send(f"{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".encode())
            r = c.response()
            assert r.status == 400, (method, path, r.status, r.body)
    assert state(gw) == before


def test_valid_changes_still_pass(env):
    gw, a, base = env
    r = gw.admin("POST", "/services/app/servers", {"address": "127.0.0.1:7", "weight": 1000})
    assert r.status_code == 201, r.text
    assert gw.admin("DELETE", "/services/app/servers/127.0.0.1:7").status_code == 200
    r = gw.admin("POST", "/services", {"name": "ok-1", "balance": "Least_Conn", "prefix": "/ok"})
    assert r.status_code == 201, r.text
    assert r.json()["balance"] == "least_conn"
    assert gw.admin("DELETE", "/services/ok-1").status_code == 200
    assert gw.admin("GET", "/routes/%2F?host=").status_code == 200
