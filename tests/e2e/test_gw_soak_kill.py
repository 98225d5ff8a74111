"""Soak: backends killed with SIGKILL and restarted on the same port, over
and over, under steady keep-alive load through `floodgate gateway` with
active health checks. One backend at most is dead at any moment, so every
request has a live server to go to: no GET may fail (a killed server's
share is retried elsewhere, see docs/protection.md), and a POST may fail
only when it was in flight on the server at the moment it was killed.
Everything asserted is a count; the duration only bounds the test.

Labelled `slow` in ctest (tests/CMakeLists.txt); it still runs in
`make test`."""

import os
import random
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fgtest import free_port  # noqa: E402
from gwtest import Load, config, echo, gateway, metric, service, wait_until  # noqa: E402

HEALTH = {"interval": "200ms", "timeout": "200ms", "rise": 2, "fall": 2}
DURATION = 12.0   # seconds of kills; a bound on the test, not a measurement
MIN_KILLS = 6     # kills the run must reach for its verdict to mean anything


def server_up(gw, addr):
    return metric(gw.metrics(), "floodgate_gateway_server_up", service="app", server=addr)


def test_kill_and_restart_backends_under_load():
    rnd = random.Random(os.getpid())
    ports = [free_port() for _ in range(3)]
    names = [f"k{i}" for i in range(3)]
    procs = {}  # name -> (context manager, Server)

    def up(name, port):
        cm = echo(name, port=port)
        procs[name] = (cm, cm.__enter__())

    def down(name):
        cm, _ = procs.pop(name)
        cm.__exit__(None, None, None)

    try:
        for name, port in zip(names, ports):
            up(name, port)
        addrs = [f"127.0.0.1:{p}" for p in ports]
        cfg = config([service("app", addrs, health=HEALTH)])
        kills = 0
        with gateway(cfg) as gw, \
                Load(gw.url("/soak"), threads=3) as gets, \
                Load(gw.url("/soak"), threads=1, method="POST", body=b"p" * 512) as posts:
            gets.wait_count(50)
            wait_until(lambda: len(gets.servers_between(0)) == 3, 10, what="all three in use")
            end = time.monotonic() + DURATION
            i = 0
            while time.monotonic() < end or kills < MIN_KILLS:
                name, port = names[i % 3], ports[i % 3]
                i += 1
                # Hard: no goodbye on its pooled connections. It is back
                # (listening) before the next one dies: one dead process
                # at a time, whatever the health checks think of it.
                victim = procs[name][1].proc
                victim.kill()
                victim.wait()
                kills += 1
                time.sleep(rnd.uniform(0, 0.4))
                down(name)
                up(name, port)
                # Sometimes the next kill comes while the restarted one is
                # still marked down, sometimes after it is back in the pool.
                if rnd.random() < 0.5:
                    wait_until(lambda: server_up(gw, f"127.0.0.1:{port}") == 1, 10,
                               what=f"{name} up again")
                time.sleep(rnd.uniform(0.05, 0.5))
            for a in addrs:
                wait_until(lambda: server_up(gw, a) == 1, 10, what=f"{a} up at the end")
            base = gets.count()
            gets.wait_count(30)
            gets.stop()
            posts.stop()
            assert base > 0
            assert gets.failed == [], (len(gets.failed), gets.failed[:5])
            # A POST reaches at most one server per kill before it dies.
            assert len(posts.failed) <= kills, (kills, posts.failed[:5])
            assert posts.count() > 0
        assert kills >= MIN_KILLS
    finally:
        for name in list(procs):
            down(name)
