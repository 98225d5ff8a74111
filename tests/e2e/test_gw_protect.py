"""Gatekeeping and rate limiting end to end: client addresses spread over
127.0.0.0/8 (each connection binds its own source address)."""

import http.client
import threading
import time

from fgtest import scaled
from gwtest import backends, config, gateway, metric, route, service


def get(port, src, path="/", headers=None):
    """One GET from source address src; returns (status, headers dict)."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=scaled(5), source_address=(src, 0))
    try:
        c.request("GET", path, headers=headers or {})
        r = c.getresponse()
        r.read()
        return r.status, {k.lower(): v for k, v in r.getheaders()}
    finally:
        c.close()


def rl_config(backend, **guard):
    cfg = config(
        [service("app", [backend])],
        routes=[dict(route("/", "app"), rate_limits=["per-ip"])],
        rate_limits=[{"name": "per-ip", "algorithm": "token_bucket", "limit": 10, "window": "1s",
                      "burst": 5, "key": "client_ip"}],
    )
    if guard:
        cfg["guard"] = guard
    return cfg


def test_abusive_ip_is_limited_normal_clients_untouched():
    with backends("a") as (a,):
        with gateway(rl_config(a)) as gw:
            normal = [f"127.0.1.{i}" for i in range(1, 21)]
            results = {ip: [] for ip in normal}
            attacker = []

            def user(ip):
                for _ in range(5):  # 5 requests/s, well under 10/s
                    results[ip].append(get(gw.port, ip)[0])
                    time.sleep(0.2)

            span = []

            def flood():
                t0 = time.monotonic()
                for _ in range(60):
                    attacker.append(get(gw.port, "127.0.0.66"))
                span.append(time.monotonic() - t0)

            ts = [threading.Thread(target=user, args=(ip,)) for ip in normal]
            ts.append(threading.Thread(target=flood))
            for t in ts:
                t.start()
            for t in ts:
                t.join()
            for ip, codes in results.items():
                assert codes == [200] * 5, (ip, codes)
            codes = [s for s, _ in attacker]
            ok = codes.count(200)
            # 15 at once (limit 10 + burst 5), then 10/s over however long
            # the 60 requests took on this machine (plus one for the
            # rounding at each end).
            assert 15 <= ok <= 15 + 10 * span[0] + 2, (ok, span)
            assert codes.count(429) > 0, codes
            assert codes.count(429) == len(codes) - ok
            st, h = next((s, h) for s, h in attacker if s == 429)
            assert h["retry-after"].isdigit() and int(h["retry-after"]) >= 1
            assert h["ratelimit-policy"] == '"per-ip";q=10;w=1'
            assert h["ratelimit"].startswith('"per-ip";r=0;t=')
            m = gw.metrics()
            assert metric(m, "floodgate_gateway_rate_limited_total") == codes.count(429)


def test_allowed_responses_carry_ratelimit_headers():
    with backends("a") as (a,):
        with gateway(rl_config(a)) as gw:
            st, h = get(gw.port, "127.0.2.1")
            assert st == 200
            assert h["ratelimit-policy"] == '"per-ip";q=10;w=1'
            assert h["ratelimit"] == '"per-ip";r=14;t=1'


def test_deny_list_at_run_time_and_per_ip_connection_cap():
    with backends("a") as (a,):
        with gateway(rl_config(a, deny=["127.0.3.0/24"], max_conns_per_ip=2)) as gw:
            assert get(gw.port, "127.0.4.1")[0] == 200
            try:
                get(gw.port, "127.0.3.9")
                raise AssertionError("a denied client was served")
            except (ConnectionError, http.client.HTTPException, OSError):
                pass
            r = gw.admin("POST", "/guard/deny", {"cidr": "127.0.4.0/24"})
            assert r.status_code == 201, r.text
            assert "127.0.4.0/24" in r.json()["deny"]
            try:
                get(gw.port, "127.0.4.1")
                raise AssertionError("a client denied at run time was served")
            except (ConnectionError, http.client.HTTPException, OSError):
                pass
            r = gw.admin("DELETE", "/guard/deny?cidr=127.0.4.0%2F24")
            assert r.status_code == 200, r.text
            assert get(gw.port, "127.0.4.1")[0] == 200
            # Two connections from one address are fine; the third is refused.
            import socket
            held = [socket.create_connection(("127.0.0.1", gw.port), source_address=("127.0.5.5", 0))
                    for _ in range(2)]
            # Served once each: both are accepted (and counted) before the third arrives.
            for h in held:
                h.settimeout(scaled(5))
                h.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
                assert h.recv(65536).startswith(b"HTTP/1.1 200")
            try:
                try:
                    get(gw.port, "127.0.5.5")
                    raise AssertionError("third connection from one address was served")
                except (ConnectionError, http.client.HTTPException, OSError):
                    pass
                assert get(gw.port, "127.0.5.6")[0] == 200
            finally:
                for s in held:
                    s.close()
            m = gw.metrics()
            assert metric(m, "floodgate_gateway_connections_refused_total", reason="deny_list") >= 2
            assert metric(m, "floodgate_gateway_connections_refused_total", reason="max_conns_per_ip") >= 1


def test_route_allow_list_answers_403():
    with backends("a") as (a,):
        cfg = config([service("app", [a])],
                     routes=[dict(route("/admin", "app"), allow=["127.0.9.0/24"]), route("/", "app")])
        with gateway(cfg) as gw:
            assert get(gw.port, "127.0.9.1", "/admin/x")[0] == 200
            assert get(gw.port, "127.0.8.1", "/admin/x")[0] == 403
            assert get(gw.port, "127.0.8.1", "/other")[0] == 200
