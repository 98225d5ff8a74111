"""concurrency.per_server: at most N requests in flight to each server;
when every server is full the request is refused (503, Retry-After) at
once, or waits in the service's admission queue when one is configured."""

import threading

import requests

from fgtest import scaled
from gwtest import backends, config, gateway, service


def burst(gw, n):
    out = []
    lock = threading.Lock()

    def one():
        try:
            r = requests.get(gw.url("/slow"), timeout=scaled(10))
            res = (r.status_code, r.headers.get("Retry-After"), r.headers.get("X-Server"))
        except requests.RequestException as e:
            res = ("error", repr(e), None)
        with lock:
            out.append(res)

    ts = [threading.Thread(target=one) for _ in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return out


def test_each_server_holds_at_most_its_cap():
    with backends("a", "b", args=("--latency", "700")) as (a, b):
        svc = service("app", [a, b], concurrency={"per_server": 2})
        with gateway(config([svc], threads=2)) as gw:
            res = burst(gw, 7)
            ok = [r for r in res if r[0] == 200]
            refused = [r for r in res if r[0] == 503]
            assert len(ok) == 4 and len(refused) == 3, res
            assert all(r[1] == "1" for r in refused), res
            assert sorted(r[2] for r in ok) == ["a", "a", "b", "b"], res


def test_excess_waits_in_the_service_queue():
    with backends("a", "b", args=("--latency", "300")) as (a, b):
        svc = service("app", [a, b], concurrency={"per_server": 1, "max_inflight": 2, "queue": 10,
                                                   "queue_timeout": "5s", "codel_target": "2s",
                                                   "codel_interval": "5s"})
        with gateway(config([svc], threads=1)) as gw:
            res = burst(gw, 6)
            assert [r[0] for r in res] == [200] * 6, res
