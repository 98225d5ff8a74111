"""End-to-end: load balancing in `floodgate gateway` across three echo
servers: round robin, smooth weighted, consistent hashing (header, cookie,
path, client IP) and least connections."""

import collections
import os
import sys
import threading
import time

import pytest
import requests

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fgtest import scaled  # noqa: E402
from gwtest import backends, config, echo, gateway, route, servers_hit, service  # noqa: E402

T = scaled(5)
NAMES = ("b1", "b2", "b3")


@pytest.fixture(scope="module")
def env():
    with backends(*NAMES) as bs, echo("slowlc", "--latency", "3000") as slow:
        b1, b2, b3 = bs
        cfg = config(
            [service("rr", bs),
             service("w", [(b1, 3), (b2, 1), (b3, 1)], balance="weighted"),
             service("chh", bs, balance="consistent_hash", hash_key="header:X-User"),
             service("chc", bs, balance="consistent_hash", hash_key="cookie:sess"),
             service("chp", bs, balance="consistent_hash", hash_key="path"),
             service("chi", bs, balance="consistent_hash"),
             service("lc", [slow, b1], balance="least_conn"),
             service("tr", bs, balance="two_random")],
            routes=[route("/rr", "rr"), route("/w", "w"), route("/chh", "chh"),
                    route("/chc", "chc"), route("/chp", "chp"), route("/chi", "chi"),
                    route("/lc", "lc"), route("/tr", "tr")])
        with gateway(cfg) as gw:
            gw.slowlc = slow.addr
            yield gw


def test_round_robin_is_even(env):
    hits = collections.Counter(servers_hit(env.url("/rr"), 300))
    assert set(hits) == set(NAMES)
    assert max(hits.values()) - min(hits.values()) <= 2, hits


def test_round_robin_cycles_in_order(env):
    seq = servers_hit(env.url("/rr"), 30)
    # Each window of three consecutive requests covers all three servers.
    for i in range(0, 28):
        assert len(set(seq[i:i + 3])) == 3, seq


def test_round_robin_over_many_connections(env):
    # New connections spread over the gateway's worker threads share the
    # pool's cursor.
    hits = collections.Counter()
    lock = threading.Lock()

    def worker():
        for _ in range(50):
            r = requests.get(env.url("/rr"), headers={"Connection": "close"}, timeout=T)
            assert r.status_code == 200
            with lock:
                hits[r.headers["X-Server"]] += 1

    ts = [threading.Thread(target=worker) for _ in range(3)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(timeout=scaled(60))
    assert sum(hits.values()) == 150
    assert max(hits.values()) - min(hits.values()) <= 6, hits


def test_weighted_3_1_1(env):
    hits = collections.Counter(servers_hit(env.url("/w"), 500))
    assert 285 <= hits["b1"] <= 315, hits
    assert 85 <= hits["b2"] <= 115, hits
    assert 85 <= hits["b3"] <= 115, hits


def test_weighted_is_smooth(env):
    seq = servers_hit(env.url("/w"), 50)
    # Smooth weighted round robin interleaves: b1 never runs 4 in a row,
    # and every 5-request cycle holds 3 x b1, 1 x b2, 1 x b3.
    run = best = 0
    for s in seq:
        run = run + 1 if s == "b1" else 0
        best = max(best, run)
    assert best <= 3, seq
    c = collections.Counter(seq)
    assert (c["b1"], c["b2"], c["b3"]) == (30, 10, 10), c


def test_consistent_hash_on_header_is_sticky_and_spread(env):
    owner = {}
    with requests.Session() as s:
        for rnd in range(3):
            for k in range(60):
                r = s.get(env.url("/chh/x"), headers={"X-User": f"user-{k}"}, timeout=T)
                assert r.status_code == 200
                owner.setdefault(k, r.headers["X-Server"])
                assert owner[k] == r.headers["X-Server"], f"user-{k} moved in round {rnd}"
    spread = collections.Counter(owner.values())
    assert set(spread) == set(NAMES), spread


def test_consistent_hash_same_key_on_new_connections(env):
    seen = {requests.get(env.url("/chh/y"), headers={"X-User": "alice", "Connection": "close"},
                         timeout=T).headers["X-Server"] for _ in range(20)}
    assert len(seen) == 1


def test_consistent_hash_on_cookie(env):
    owner = {}
    for k in range(40):
        for _ in range(2):
            r = requests.get(env.url("/chc"), headers={"Cookie": f"a=1; sess=s{k}; b=2"}, timeout=T)
            owner.setdefault(k, r.headers["X-Server"])
            assert owner[k] == r.headers["X-Server"]
    assert len(set(owner.values())) >= 2


def test_consistent_hash_on_path(env):
    owner = {}
    for k in range(40):
        for q in ("", "?v=1", "?v=2"):  # the query is not part of the key
            r = requests.get(env.url(f"/chp/item{k}{q}"), timeout=T)
            owner.setdefault(k, r.headers["X-Server"])
            assert owner[k] == r.headers["X-Server"], (k, q)
    assert len(set(owner.values())) >= 2


def test_consistent_hash_on_client_ip(env):
    # Every request here comes from 127.0.0.1, and so does a request
    # without the header of a header-keyed pool.
    assert len(set(servers_hit(env.url("/chi"), 20))) == 1
    assert len(set(servers_hit(env.url("/chh/noheader"), 20))) == 1


def slowlc_inflight(gw):
    for srv in gw.admin("GET", "/services/lc/servers").json():
        if srv["address"] == gw.slowlc:
            return srv["inflight"]
    raise AssertionError("slowlc not in service lc")


def test_least_conn_avoids_the_busy_server(env):
    # slowlc holds each request 3 s (ample for the checks below on a busy
    # machine). Start requests until one sits there; while it does,
    # least_conn sends everything else to b1.
    threads = []
    try:
        for _ in range(4):
            t = threading.Thread(target=lambda: requests.get(env.url("/lc/slow"), timeout=T))
            t.start()
            threads.append(t)
            # Either it sits at slowlc, or it went to b1 and is done.
            deadline = time.monotonic() + T
            while t.is_alive() and not slowlc_inflight(env) and time.monotonic() < deadline:
                time.sleep(0.005)
            if slowlc_inflight(env):
                break
        assert slowlc_inflight(env) == 1
        quick = servers_hit(env.url("/lc/q"), 10)
        assert slowlc_inflight(env) == 1, "the slow request ended too early for this check"
        assert quick == ["b1"] * 10, quick
    finally:
        for t in threads:
            t.join(timeout=scaled(5))


def test_two_random_uses_every_server(env):
    hits = collections.Counter(servers_hit(env.url("/tr"), 150))
    assert set(hits) == set(NAMES)
    assert min(hits.values()) >= 20, hits
