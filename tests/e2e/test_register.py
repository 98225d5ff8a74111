"""A backend that registers itself with the gateway when it boots and
deregisters when it stops (`floodgate echo --register URL`)."""

from collections import Counter

import requests

from fgtest import free_port, scaled, start
from gwtest import addr_of, backends, config, gateway, service, servers_hit, wait_until


def listed(url):
    return [s["address"] for s in requests.get(url, timeout=5).json()["servers"]]


def listed_soon(url):
    """listed(url), or [] while the admin listener is not up yet."""
    try:
        return listed(url)
    except requests.ConnectionError:
        return []


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


def test_register_retries_while_gateway_is_down():
    """Registration is a lease the echo keeps renewing: a gateway that is
    not there yet is retried (logged once), never a reason to exit."""
    port = free_port()
    admin = free_port()
    url = f"http://127.0.0.1:{admin}/services/pool"
    with start(["echo", "-l", str(port), "--name", "b", "--register", url, "--register-ttl", "3"], port=port) as b:
        wait_until(lambda: "register with" in b.log(), scaled(10), what="a logged failure")
        assert b.alive()
        with backends("a") as (a,):
            cfg = config([service("pool", [addr_of(a)])], threads=1)
            with gateway(cfg, args=["-a", f"127.0.0.1:{admin}"], admin=False) as gw:
                wait_until(lambda: f"127.0.0.1:{port}" in listed_soon(url), scaled(10), what="registration")
                assert Counter(servers_hit(gw.url("/"), 20)) == {"a": 10, "b": 10}
                # Failures are logged when they start, not at each retry.
                assert b.log().count("register with") == 1, b.log()
                assert b.stop() == 0
