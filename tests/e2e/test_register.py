"""A backend that registers itself with the gateway when it boots and
deregisters when it stops (`floodgate echo --register URL`)."""

from collections import Counter

import requests

from fgtest import free_port, start
from gwtest import addr_of, backends, config, gateway, service, servers_hit, wait_until


def listed(url):
    return [s["address"] for s in requests.get(url, timeout=5).json()["servers"]]


def test_echo_registers_at_boot_and_leaves_at_stop():
    with backends("a") as (a,):
        cfg = config([service("pool", [addr_of(a)])], threads=1)
        with gateway(cfg) as gw:
            url = gw.admin_url("/services/pool")
            port = free_port()
            assert set(servers_hit(gw.url("/"), 20)) == {"a"}
            with start(["echo", "-l", str(port), "--name", "b", "--register", url], port=port) as b:
                me = f"127.0.0.1:{port}"
                wait_until(lambda: me in listed(url), 5, what="registration")
                # Round robin over a and b from the moment it is listed.
                hits = Counter(servers_hit(gw.url("/"), 40))
                assert hits == {"a": 20, "b": 20}, hits
                assert b.stop() == 0
            assert listed(url) == [addr_of(a)]
            # It left the pool before closing: nothing is routed to it after.
            assert Counter(servers_hit(gw.url("/"), 20)) == {"a": 20}
            assert "registered server" in gw.log() and "deregistered server" in gw.log()


def test_register_fails_clearly_without_gateway():
    port = free_port()
    dead = free_port()
    srv = start(["echo", "-l", str(port), "--register", f"http://127.0.0.1:{dead}/services/x"], port=port)
    code = srv.proc.wait(timeout=30)
    assert code == 1
    assert "register with" in srv.log()
