"""The gateway's run-time state across restarts: admin-API changes kept in
`state_file:` and restored at start; self-registration as a lease that
the server renews (`echo --register`) and the gateway expires, so a
gateway restart and a killed backend both heal without anyone acting.
Each gateway here is started on fixed ports so that a restart is the same
gateway to its clients and registrants."""

import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile

import pytest
import requests

from fgtest import binary, free_port, scaled, start, wait_log
from gwtest import (Gateway, _wait_admin_ready, backends, config, metric, route, service,
                    servers_hit, to_yaml, wait_until)


@contextlib.contextmanager
def workdir():
    d = tempfile.mkdtemp(prefix="fg-state-")
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


@contextlib.contextmanager
def gw_at(d, cfg, port, admin_port):
    """A gateway with cfg on port/admin_port, config file in d."""
    gw = Gateway(None, port, admin_port, os.path.join(d, "gateway.yaml"), None)
    gw.write_config(cfg)
    gw.srv = start(["gateway", "-c", gw.cfg_path], port=port)
    try:
        _wait_admin_ready(gw)
        yield gw
    finally:
        code = gw.srv.stop(timeout=15)
        gw.final_log = gw.srv.log()
        gw.srv.__exit__(None, None, None)
    assert code == 0, gw.final_log[-4000:]


def start_fails(d, cfg, port, admin_port):
    """Starts a gateway that must refuse to start; returns its output."""
    gw = Gateway(None, port, admin_port, os.path.join(d, "gateway.yaml"), None)
    gw.write_config(cfg)
    p = start(["gateway", "-c", gw.cfg_path])
    code = p.proc.wait(timeout=scaled(20))
    log = p.log()
    p.__exit__(None, None, None)
    assert code == 1, log
    return log


def addrs(gw, svc):
    return [s["address"] for s in gw.admin("GET", f"/services/{svc}/servers").json()]


def listed(url):
    return [s["address"] for s in requests.get(url, timeout=scaled(5)).json()["servers"]]


def test_admin_changes_survive_restart():
    with workdir() as d, backends("a", "b", "c") as (a, b, c):
        state = os.path.join(d, "state.json")
        cfg = config([service("app", [a])], threads=1, state_file=state,
                     routes=[route("/", "app"), {"name": "web", "prefix": "/web", "service": "app"}])
        port, admin = free_port(), free_port()
        with gw_at(d, cfg, port, admin) as gw:
            assert "did not exist" in gw.log()
            with open(state) as f:
                assert json.load(f) == {"version": 1, "changes": []}
            assert gw.admin("POST", "/services/app/servers", {"address": b.addr, "weight": 3}).status_code == 201
            assert gw.admin("POST", f"/services/app/servers/{a.addr}/drain").status_code == 200
            r = gw.admin("POST", "/services", {"name": "more", "prefix": "/more", "strip_prefix": True})
            assert r.status_code == 201, r.text
            assert gw.admin("POST", "/services/more/servers", {"address": c.addr}).status_code == 201
            assert gw.admin("POST", "/guard/deny", {"cidr": "203.0.113.0/24"}).status_code == 201
            assert gw.admin("POST", "/routes/web/allow", {"cidr": "127.0.0.0/8"}).status_code == 201
            before = (gw.admin("GET", "/services").json(), gw.admin("GET", "/guard").json()["deny"],
                      gw.admin("GET", "/routes/web").json()["allow"])
            # Atomically replaced: the file is whole JSON, no temporary left.
            with open(state) as f:
                assert len(json.load(f)["changes"]) == 6
            assert not os.path.exists(state + ".tmp")
        with gw_at(d, cfg, port, admin) as gw:
            assert "restored 6 admin changes" in gw.log() and state in gw.log()
            assert addrs(gw, "app") == [a.addr, b.addr]
            srv = {s["address"]: s for s in gw.admin("GET", "/services/app/servers").json()}
            assert srv[a.addr]["state"] == "draining" and srv[b.addr]["weight"] == 3
            assert addrs(gw, "more") == [c.addr]
            assert gw.admin("GET", "/guard").json()["deny"] == before[1]
            assert gw.admin("GET", "/routes/web").json()["allow"] == before[2]
            assert set(servers_hit(gw.url("/"), 6)) == {"b"}
            assert set(servers_hit(gw.url("/more/x"), 3)) == {"c"}
            # A reload keeps the overlay, and a removal is kept too.
            assert gw.admin("DELETE", f"/services/app/servers/{b.addr}").status_code == 200
            assert gw.admin("POST", "/reload").status_code == 200
            assert addrs(gw, "app") == [a.addr]
        with gw_at(d, cfg, port, admin) as gw:
            assert addrs(gw, "app") == [a.addr]
            assert addrs(gw, "more") == [c.addr]


@pytest.mark.parametrize("content,words", [
    ("{not json", "is corrupt"),
    ('{"version": 1, "changes": [{"op": "add_server", "service": "app", "address": "127.0.0.1:0", "weight": 1}]}',
     "port 0 cannot be connected to"),
    ('{"version": 1, "changes": [{"op": "explode"}]}', "is corrupt"),
    ("", "is corrupt"),
])
def test_corrupt_state_file_refuses_to_start(content, words):
    with workdir() as d, backends("a") as (a,):
        state = os.path.join(d, "state.json")
        with open(state, "w") as f:
            f.write(content)
        cfg = config([service("app", [a])], threads=1, state_file=state)
        log = start_fails(d, cfg, free_port(), free_port())
        assert state in log and words in log, log
        p = subprocess.run([binary(), "gateway", "--check", "-c", os.path.join(d, "gateway.yaml")],
                           capture_output=True, text=True, timeout=scaled(30))
        assert p.returncode == 1 and words in p.stderr, (p.stdout, p.stderr)
        with open(state) as f:
            assert f.read() == content  # left for the operator to look at


def test_registered_echo_heals_after_gateway_restart_without_state_file():
    with workdir() as d, backends("a") as (a,):
        cfg = config([service("pool", [a])], threads=1)
        port, admin = free_port(), free_port()
        url = f"http://127.0.0.1:{admin}/services/pool"
        eport = free_port()
        me = f"127.0.0.1:{eport}"
        with start(["echo", "-l", str(eport), "--name", "b", "--register", url, "--register-ttl", "3"],
                   port=eport) as b:
            with gw_at(d, cfg, port, admin) as gw:
                wait_until(lambda: me in listed(url), scaled(10), what="registration")
                assert set(servers_hit(gw.url("/"), 10)) == {"a", "b"}
            # The gateway is gone: the echo keeps trying (its next renewal
            # fails; waited for, so the test does not depend on a renewal
            # falling into the gap), and a new one (no state file: it starts
            # from the config alone) learns it again at the next renewal.
            wait_log(b, "retrying", timeout=15)
            with gw_at(d, cfg, port, admin) as gw:
                wait_until(lambda: me in listed(url), scaled(15), what="registration after the restart")
                assert set(servers_hit(gw.url("/"), 10)) == {"a", "b"}
                assert b.alive()
            assert b.stop() == 0
            log = b.log()
            assert "registered with" in log and "retrying" in log, log


def test_killed_echo_expires_operator_server_stays():
    with workdir() as d, backends("a", "op") as (a, op):
        cfg = config([service("pool", [a])], threads=1)
        port, admin = free_port(), free_port()
        url = f"http://127.0.0.1:{admin}/services/pool"
        with gw_at(d, cfg, port, admin) as gw:
            assert gw.admin("POST", "/services/pool/servers", {"address": op.addr}).status_code == 201
            eport = free_port()
            me = f"127.0.0.1:{eport}"
            b = start(["echo", "-l", str(eport), "--name", "b", "--register", url, "--register-ttl", "2"],
                      port=eport)
            try:
                wait_until(lambda: me in listed(url), scaled(10), what="registration")
                lease = [s for s in gw.admin("GET", "/services/pool/servers").json() if s["address"] == me]
                assert lease[0]["lease"]["ttl_ms"] == 2000
                os.kill(b.pid, signal.SIGKILL)
                b.proc.wait(timeout=scaled(10))
            finally:
                b.__exit__(None, None, None)
            wait_until(lambda: me not in listed(url), scaled(30), what="lease expiry")
            assert "lease of server " + me in gw.log() and "expired" in gw.log()
            assert metric(gw.metrics(), "floodgate_gateway_leases_expired_total") == 1
            # The operator's server outlived the lease; traffic avoids the dead one.
            assert listed(url) == [a.addr, op.addr]
            assert set(servers_hit(gw.url("/"), 10)) == {"a", "op"}


def test_register_ttl_flag_is_checked():
    for bad in ("0", "5000", "2s", "x"):
        p = start(["echo", "-l", str(free_port()), "--register", "http://127.0.0.1:1/services/pool",
                   "--register-ttl", bad])
        code = p.proc.wait(timeout=scaled(20))
        log = p.log()
        p.__exit__(None, None, None)
        assert code == 2 and "--register-ttl" in log, log


def test_restored_lease_expires_when_nobody_renews():
    """A lease in the state file is restored with a fresh TTL: served at
    once after the restart, and dropped when its owner (dead meanwhile)
    does not renew it."""
    with workdir() as d, backends("a") as (a,):
        state = os.path.join(d, "state.json")
        cfg = config([service("pool", [a])], threads=1, state_file=state)
        port, admin = free_port(), free_port()
        url = f"http://127.0.0.1:{admin}/services/pool"
        eport = free_port()
        me = f"127.0.0.1:{eport}"
        b = start(["echo", "-l", str(eport), "--name", "b", "--register", url, "--register-ttl", "2"], port=eport)
        try:
            with gw_at(d, cfg, port, admin):
                wait_until(lambda: me in listed(url), scaled(10), what="registration")
            # The gateway stopped with the lease live; its owner dies
            # while no gateway runs.
            os.kill(b.pid, signal.SIGKILL)
            b.proc.wait(timeout=scaled(10))
        finally:
            b.__exit__(None, None, None)
        with gw_at(d, cfg, port, admin) as gw:
            assert "restored 1 admin changes (1 registration leases)" in gw.log(), gw.log()
            wait_until(lambda: me not in listed(url), scaled(30), what="lease expiry")
            assert listed(url) == [a.addr]
        with open(state) as f:
            assert json.load(f)["changes"] == []


def test_unwritable_state_file_refuses_to_start():
    with workdir() as d, backends("a") as (a,):
        state = os.path.join(d, "no-such-dir", "state.json")
        cfg = config([service("app", [a])], threads=1, state_file=state)
        log = start_fails(d, cfg, free_port(), free_port())
        assert "no-such-dir" in log and "No such file or directory" in log, log
