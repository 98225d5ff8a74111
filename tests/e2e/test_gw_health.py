"""End-to-end: active health checks and passive ejection in `floodgate
gateway`. A backend killed under load stops getting traffic within the
check interval and no request fails; restarted, it comes back after `rise`
good checks. /metrics and the admin API show the state."""

import os
import sys
import time

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fgtest import free_port  # noqa: E402
from gwtest import (Load, backends, config, echo, gateway, metric, route, servers_hit,  # noqa: E402
                    service, wait_until)

INTERVAL = 0.2
RISE = 2
FALL = 2
EJECT_S = 3  # long enough for 10 requests while ejected, however slow the machine
HEALTH = {"interval": "200ms", "timeout": "200ms", "rise": RISE, "fall": FALL}


def server_up(gw, svc, addr):
    return metric(gw.metrics(), "floodgate_gateway_server_up", service=svc, server=addr)


def server_state(gw, svc, addr):
    r = gw.admin("GET", f"/services/{svc}/servers/{addr}")
    assert r.status_code == 200, r.text
    return r.json()


def test_killed_backend_gets_no_traffic_and_comes_back(request):
    with backends("h1", "h2", "h3") as (h1, h2, h3):
        cfg = config([service("app", [h1, h2, h3], health=HEALTH)])
        with gateway(cfg) as gw, Load(gw.url("/load"), threads=2, pause=0.002) as load:
            load.wait_count(100)
            wait_until(lambda: len(load.servers_between(0)) == 3, 5, what="all three in use")

            # Kill h2 hard: no FIN for pooled connections, no goodbye.
            # Until the checks take it out, its share of the requests is
            # refused at connect and retried on the others (outside the
            # retry budget: see docs/protection.md), so no client sees it.
            h2.proc.kill()
            h2.proc.wait()
            wait_until(lambda: server_up(gw, "app", h2.addr) == 0, INTERVAL * FALL + 5.0,
                       what="server_up 0 for the killed backend")
            t_down = time.monotonic()
            assert server_state(gw, "app", h2.addr)["state"] == "down"

            # While down it is not tried at all: its counters stand still.
            before = server_state(gw, "app", h2.addr)
            load.wait_count(200)
            time.sleep(0.3)
            after = server_state(gw, "app", h2.addr)
            assert (after["requests"], after["failures"]) == (before["requests"], before["failures"])
            assert set(load.servers_between(t_down)) == {"h1", "h3"}
            assert load.failed == [], load.failed[:5]

            # Restart it on the same port: up again after RISE good checks.
            with echo("h2", port=h2.port):
                t_restart = time.monotonic()
                wait_until(lambda: server_up(gw, "app", h2.addr) == 1, INTERVAL * (RISE + 1) + 5.0,
                           what="server_up 1 after the restart")
                t_up = time.monotonic()
                assert t_up - t_restart >= INTERVAL * (RISE - 1) - 0.05, t_up - t_restart
                wait_until(lambda: load.servers_between(t_up).get("h2", 0) >= 20, 5,
                           what="traffic to the restarted backend")
                load.stop()
                assert server_state(gw, "app", h2.addr)["state"] == "up"
        assert load.failed == [], load.failed[:5]
        assert "is DOWN" in gw.log() and "is UP" in gw.log()


@pytest.fixture(scope="module")
def env():
    with backends("ok1", "ok2") as (ok1, ok2), echo("sick", "--health-status", "503") as sick, \
            echo("teapot") as teapot:
        dead = free_port()
        cfg = config(
            [service("sickpool", [ok1, sick], health=HEALTH),
             service("picky", [teapot], health=dict(HEALTH, path="/status/418",
                                                    expect_status=418)),
             service("ejector", [dead, ok2], passive={"max_failures": 2, "eject_for": f"{EJECT_S}s"})],
            routes=[route("/sick", "sickpool"), route("/picky", "picky"), route("/ej", "ejector")])
        with gateway(cfg) as gw:
            gw.sick, gw.teapot, gw.dead = sick.addr, teapot.addr, f"127.0.0.1:{dead}"
            yield gw


def test_failing_health_check_takes_server_out(env):
    wait_until(lambda: server_up(env, "sickpool", env.sick) == 0, INTERVAL * FALL + 5.0,
               what="the sick backend marked down")
    assert server_state(env, "sickpool", env.sick)["state"] == "down"
    assert set(servers_hit(env.url("/sick"), 20)) == {"ok1"}


def test_expected_status_and_path_are_honoured(env):
    # /status/418 answers 418, which this pool expects: it stays up.
    time.sleep(INTERVAL * (FALL + 1))
    assert server_state(env, "picky", env.teapot)["state"] == "up"
    assert servers_hit(env.url("/picky"), 3) == ["teapot"] * 3


def test_passive_ejection_and_return(env):
    # No active checks here: two failed connects eject the dead server for
    # EJECT_S, and no client sees an error meanwhile.
    assert set(servers_hit(env.url("/ej"), 10)) == {"ok2"}
    st = server_state(env, "ejector", env.dead)
    assert st["state"] == "ejected", st
    assert st["failures"] >= 2
    assert server_up(env, "ejector", env.dead) == 0
    failures = st["failures"]
    assert set(servers_hit(env.url("/ej"), 10)) == {"ok2"}
    assert server_state(env, "ejector", env.dead)["failures"] == failures, "tried while ejected"
    wait_until(lambda: server_state(env, "ejector", env.dead)["state"] == "up", EJECT_S + 5.0,
               what="the ejection to expire")
    assert server_up(env, "ejector", env.dead) == 1
