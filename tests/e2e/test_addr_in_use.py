"""An address another process holds is refused at start: a second echo or
gateway on a port in use exits non-zero with "address already in use"
naming the address, and the first keeps all the traffic. Only a process's
own worker threads share a port (SO_REUSEPORT)."""

import os
import tempfile

import requests

from fgtest import free_port, scaled, start
from gwtest import backends, config, gateway, service, servers_hit, to_yaml, wait_until


def exits_in_use(args, addr):
    """Starts floodgate with args, expects it to exit non-zero on its own,
    with the address-in-use message naming addr."""
    p = start(args)
    code = p.proc.wait(timeout=scaled(20))
    log = p.log()
    p.__exit__(None, None, None)
    assert code != 0, log
    assert "address already in use" in log.lower(), log
    assert addr in log, log


def test_second_echo_on_same_port_fails_first_keeps_traffic():
    port = free_port()
    addr = f"127.0.0.1:{port}"
    with start(["echo", "-l", str(port), "-t", "2", "--name", "first"], port=port):
        exits_in_use(["echo", "-l", str(port), "-t", "2", "--name", "second"], addr)
        hits = {requests.get(f"http://{addr}/", timeout=scaled(5)).headers["X-Server"]
                for _ in range(30)}
        assert hits == {"first"}


def test_gateway_on_echo_port_fails():
    port = free_port()
    addr = f"127.0.0.1:{port}"
    with start(["echo", "-l", str(port), "--name", "first"], port=port), \
            tempfile.TemporaryDirectory() as d:
        cfg = config([service("app", [addr])])
        cfg["listen"] = addr
        cfg["admin"] = f"127.0.0.1:{free_port()}"
        path = os.path.join(d, "gw.yaml")
        with open(path, "w") as f:
            f.write(to_yaml(cfg) + "\n")
        exits_in_use(["gateway", "-c", path], addr)
        assert {requests.get(f"http://{addr}/", timeout=scaled(5)).headers["X-Server"]
                for _ in range(10)} == {"first"}


def test_second_gateway_on_same_listen_port_fails():
    with backends("a") as (a,), gateway(config([service("app", [a])], threads=2)) as gw:
        addr = f"127.0.0.1:{gw.port}"
        exits_in_use(["gateway", "-l", addr, "-a", f"127.0.0.1:{free_port()}"], addr)
        assert set(servers_hit(gw.url("/"), 20)) == {"a"}


def test_gateway_whose_admin_port_is_taken_fails():
    port = free_port()
    addr = f"127.0.0.1:{port}"
    with start(["echo", "-l", str(port), "--name", "holder"], port=port):
        exits_in_use(["gateway", "-l", f"127.0.0.1:{free_port()}", "-a", addr], addr)


def test_reload_keeps_listeners_and_exclusivity():
    """A reload reopens nothing: the workers keep their listeners, traffic
    goes on, and the address is still refused to another process."""
    with backends("a") as (a,), gateway(config([service("app", [a])], threads=2)) as gw:
        g0 = gw.generation()
        gw.sighup()
        wait_until(lambda: gw.generation() > g0, scaled(10), what="reload")
        assert set(servers_hit(gw.url("/"), 10)) == {"a"}
        addr = f"127.0.0.1:{gw.port}"
        exits_in_use(["echo", "-l", addr, "--name", "intruder"], addr)
        assert set(servers_hit(gw.url("/"), 10)) == {"a"}
