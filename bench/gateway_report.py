#!/usr/bin/env python3
"""Turn bench/gateway.sh's raw results into tables and gateway.json.

usage: gateway_report.py OUT_DIR

Reads OUT_DIR/meta.json, OUT_DIR/runs.tsv (one line per wrk run, naming
its wrk output file and the proxy's CPU clock ticks during it) and
OUT_DIR/idle.tsv, prints the tables on stdout and writes
OUT_DIR/../gateway.json. Medians are taken over the rounds. CPU per
request is the proxy's user + system time over the requests wrk
completed; "cores" is that time over wrk's run time (1.00 = one core busy
all the time).
"""
import json
import os
import re
import statistics
import sys

PROXIES = ["floodgate", "haproxy", "nginx"]  # meta.json's list replaces it
UNIT = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}

# Targets, as ratios floodgate / peer (see check()).
TARGET_RPS = {"haproxy": 1.1, "nginx": 1.2}
# CPU per request, floodgate / HAProxy: at least 1.3x less.
TARGET_CPU_VS_HAPROXY = 1 / 1.3
# Thread scaling: throughput at N threads >= 0.85 * N * throughput at 1.
TARGET_SCALING = 0.85
TARGET_IDLE_BYTES = 2048


def ms(text):
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text)
    return float(m.group(1)) * UNIT[m.group(2)] if m else None


def parse_wrk(path):
    """requests/s, p50 ms, p99 ms, requests, errors from `wrk --latency`."""
    r = {"rps": None, "p50_ms": None, "p99_ms": None, "requests": None, "seconds": None, "errors": 0}
    try:
        text = open(path).read()
    except OSError:
        return r
    m = re.search(r"^Requests/sec:\s+([\d.]+)", text, re.M)
    if m:
        r["rps"] = float(m.group(1))
    for pct, key in (("50", "p50_ms"), ("99", "p99_ms")):
        m = re.search(r"^\s+%s(?:\.000)?%%\s+(\S+)" % pct, text, re.M)
        if m:
            r[key] = ms(m.group(1))
    m = re.search(r"^\s+(\d+) requests in ([\d.]+(?:us|ms|s|m|h))", text, re.M)
    if m:
        r["requests"] = int(m.group(1))
        r["seconds"] = ms(m.group(2)) / 1000
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    if m:
        r["errors"] += sum(int(x) for x in m.groups())
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    if m:
        r["errors"] += int(m.group(1))
    return r


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def read_tsv(path):
    rows = []
    if not os.path.exists(path):
        return rows
    with open(path) as f:
        header = f.readline().rstrip("\n").split("\t")
        for line in f:
            if line.strip():
                rows.append(dict(zip(header, line.rstrip("\n").split("\t"))))
    return rows


def num(v):
    if v in (None, "", "-", "na"):
        return None
    try:
        return int(v)
    except ValueError:
        return float(v)


def fmt_rps(v):
    return "-" if v is None else f"{v:,.0f}"


def fmt_ms(v):
    if v is None:
        return "-"
    if v < 1:
        return f"{v * 1000:.0f}us"
    if v < 100:
        return f"{v:.2f}ms"
    return f"{v:.0f}ms"


def fmt_kib(v):
    if v is None:
        return "-"
    return f"{v / 1024:.1f}MiB" if v >= 1024 else f"{v:.0f}KiB"


def fmt_ratio(v):
    return "-" if v is None else f"{v:.2f}x"


def fmt_us(v):
    return "-" if v is None else (f"{v:.1f}us" if v < 100 else f"{v:.0f}us")


def mode_label(meta, mode):
    if mode in meta["mode_labels"]:
        return meta["mode_labels"][mode]
    n = int(mode[1:])
    if n < meta["cpus"]:
        return f"{n} threads, cores 0-{n - 1}" if n > 1 else "1 thread, core 0"
    return f"{n} threads, unpinned"


def ratio(a, b):
    return a / b if a is not None and b else None


def table(rows, aligns):
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    out = []
    for n, r in enumerate(rows):
        cells = []
        for i, c in enumerate(r):
            c = str(c)
            cells.append(c.ljust(widths[i]) if aligns[i] == "l" else c.rjust(widths[i]))
        out.append("  ".join(cells).rstrip())
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def mark(ok):
    return "" if ok is None else (" ok" if ok else " MISS")


def main():
    global PROXIES
    out = sys.argv[1]
    meta = json.load(open(os.path.join(out, "meta.json")))
    PROXIES = meta.get("proxies", PROXIES)
    hz = meta.get("clk_tck", 100)
    base = "floodgate-base" in PROXIES
    runs = read_tsv(os.path.join(out, "runs.tsv"))
    idle = read_tsv(os.path.join(out, "idle.tsv"))

    # Group the runs by setting and proxy, parse wrk outputs.
    settings = []
    data = {}
    for r in runs:
        key = (r["mode"], int(r["conns"]))
        if key not in data:
            settings.append(key)
            data[key] = {p: [] for p in PROXIES}
        w = parse_wrk(os.path.join(out, r["wrk"]))
        w.update(round=int(r["round"]), rss_kib=num(r["rss_kib"]), hwm_kib=num(r["hwm_kib"]),
                 upstream_conns=num(r["up_conns"]), upstream_conns_warmup=num(r.get("up_conns_warmup")),
                 floodgate_opened_metric=num(r.get("fg_opened")))
        ticks = num(r.get("cpu_ticks"))
        cpu_s = ticks / hz if ticks is not None else None
        w["cpu_s"] = cpu_s
        w["cpu_us_per_req"] = cpu_s / w["requests"] * 1e6 if cpu_s is not None and w["requests"] else None
        w["cores"] = cpu_s / w["seconds"] if cpu_s is not None and w["seconds"] else None
        data[key][r["proxy"]].append(w)

    approx = meta.get("upstream_count_method", "") != "kernel"
    results = []
    for key in settings:
        mode, conns = key
        entry = {"mode": mode, "label": mode_label(meta, mode), "connections": conns, "proxies": {}}
        for p in PROXIES:
            rs = data[key][p]
            entry["proxies"][p] = {
                "rounds": rs,
                "median": {k: median([x[k] for x in rs]) for k in
                           ("rps", "p50_ms", "p99_ms", "rss_kib", "hwm_kib", "upstream_conns",
                            "upstream_conns_warmup", "errors", "cpu_us_per_req", "cores")},
            }
        med = {p: entry["proxies"][p]["median"] for p in PROXIES}
        f = med["floodgate"]
        entry["ratios"] = {
            "rps_vs_haproxy": ratio(f["rps"], med["haproxy"]["rps"]),
            "rps_vs_nginx": ratio(f["rps"], med["nginx"]["rps"]),
            "p99_vs_haproxy": ratio(f["p99_ms"], med["haproxy"]["p99_ms"]),
            "p99_vs_nginx": ratio(f["p99_ms"], med["nginx"]["p99_ms"]),
            "rss_vs_haproxy": ratio(f["rss_kib"], med["haproxy"]["rss_kib"]),
            "cpu_vs_haproxy": ratio(f["cpu_us_per_req"], med["haproxy"]["cpu_us_per_req"]),
            "cpu_vs_nginx": ratio(f["cpu_us_per_req"], med["nginx"]["cpu_us_per_req"]),
        }
        if base:
            b = med["floodgate-base"]
            entry["ratios_base"] = {
                "rps_vs_base": ratio(f["rps"], b["rps"]),
                "cpu_vs_base": ratio(f["cpu_us_per_req"], b["cpu_us_per_req"]),
                "base_rps_vs_haproxy": ratio(b["rps"], med["haproxy"]["rps"]),
                "base_rps_vs_nginx": ratio(b["rps"], med["nginx"]["rps"]),
                "base_cpu_vs_haproxy": ratio(b["cpu_us_per_req"], med["haproxy"]["cpu_us_per_req"]),
                "base_cpu_vs_nginx": ratio(b["cpu_us_per_req"], med["nginx"]["cpu_us_per_req"]),
            }
        results.append(entry)

    idle_res = {}
    for r in idle:
        n_ok, rss0, rss1 = num(r["ok"]), num(r["rss0_kib"]), num(r["rss1_kib"])
        per = (rss1 - rss0) * 1024 / n_ok if n_ok and rss0 is not None and rss1 is not None else None
        idle_res[r["proxy"]] = {"requested": num(r["n"]), "held": n_ok, "failed": num(r["failed"]),
                                "established_at_proxy": num(r["established"]),
                                "rss_before_kib": rss0, "rss_idle_kib": rss1,
                                "bytes_per_idle_conn": per}

    # ---- main table ----
    print(f"gateway: {meta['backend_label']}")
    print(f"wrk -d{meta['duration_s']}s --latency, {meta['rounds']} rounds interleaved "
          f"({', '.join(PROXIES)}, each round starting one later), medians shown; "
          f"host: {meta['cpus']} cores, {meta['kernel']}")
    if base:
        print(f"floodgate-base: {meta['base_bin']} (an earlier build, same config)")
    print(f"peers: {meta['haproxy_version']}, {meta['nginx_version']}; "
          f"upstream conns: {meta['upstream_count_label']}")
    print()
    hdr = ["setting", "proxy", "req/s", "CPU/req", "cores", "p50", "p99", "RSS", "upstream conns", "(warm-up)",
           "errors"]
    rows = [hdr]
    for e in results:
        for i, p in enumerate(PROXIES):
            m = e["proxies"][p]["median"]
            up = m["upstream_conns"]
            ups = "-" if up is None else (("~" if approx else "") + f"{up:,.0f}")
            upw = m["upstream_conns_warmup"]
            upws = "-" if upw is None else (("~" if approx else "") + f"{upw:,.0f}")
            rows.append([f"{e['label']}, {e['connections']} conns" if i == 0 else "", p,
                         fmt_rps(m["rps"]), fmt_us(m["cpu_us_per_req"]),
                         "-" if m["cores"] is None else f"{m['cores']:.2f}",
                         fmt_ms(m["p50_ms"]), fmt_ms(m["p99_ms"]),
                         fmt_kib(m["rss_kib"]), ups, f"({upws})",
                         f"{m['errors']:.0f}" if m["errors"] is not None else "-"])
    print(table(rows, "llrrrrrrrrr"))
    print()
    print("CPU/req: the proxy's user + system CPU time during the run (all its threads and processes)")
    print("over the requests completed; cores: that CPU time over the run's length. Lower CPU/req is")
    print("better; it shows the proxy's own cost where wrk or the backends limit req/s (cores < 1 per")
    print("proxy thread).")
    print("RSS: the proxy's processes summed (nginx: master + workers), read 1 s before the end of")
    print("the run, connections open. upstream conns: new connections to the backends during the")
    print("measured run; (warm-up): during the 1 s warm-up before it, which fills the pools.")
    print("errors: wrk socket errors + non-2xx responses.")

    # ---- ratios and targets ----
    print()
    print("floodgate / peer (targets: rps >= 1.1x HAProxy and >= 1.2x nginx; CPU/req <= 0.77x")
    print("HAProxy's, i.e. 1.3x less, lower is better; p99 <= HAProxy's; fewer upstream conns than")
    print("both; RSS at 1000 conns <= HAProxy's)")
    print()
    hdr = ["setting", "rps/haproxy", "rps/nginx", "cpu/haproxy", "cpu/nginx", "p99/haproxy", "p99/nginx",
           "upstream conns", "RSS/haproxy"]
    rows = [hdr]
    checks = []
    for e in results:
        r = e["ratios"]
        med = {p: e["proxies"][p]["median"] for p in PROXIES}
        ok_h = r["rps_vs_haproxy"] >= TARGET_RPS["haproxy"] if r["rps_vs_haproxy"] else None
        ok_n = r["rps_vs_nginx"] >= TARGET_RPS["nginx"] if r["rps_vs_nginx"] else None
        ok_p = r["p99_vs_haproxy"] <= 1.0 if r["p99_vs_haproxy"] else None
        ok_c = r["cpu_vs_haproxy"] <= TARGET_CPU_VS_HAPROXY if r["cpu_vs_haproxy"] else None
        fu, hu, nu = (med[p]["upstream_conns"] for p in ("floodgate", "haproxy", "nginx"))
        ok_u = (fu < hu and fu < nu) if None not in (fu, hu, nu) else None
        up_txt = "-" if ok_u is None else f"{fu:.0f} vs {hu:.0f}/{nu:.0f}"
        ok_r = None
        rss_txt = "-"
        if e["connections"] >= 1000:
            ok_r = r["rss_vs_haproxy"] <= 1.0 if r["rss_vs_haproxy"] else None
            rss_txt = fmt_ratio(r["rss_vs_haproxy"]) + mark(ok_r)
        rows.append([f"{e['label']}, {e['connections']} conns",
                     fmt_ratio(r["rps_vs_haproxy"]) + mark(ok_h), fmt_ratio(r["rps_vs_nginx"]) + mark(ok_n),
                     fmt_ratio(r["cpu_vs_haproxy"]) + mark(ok_c), fmt_ratio(r["cpu_vs_nginx"]),
                     fmt_ratio(r["p99_vs_haproxy"]) + mark(ok_p), fmt_ratio(r["p99_vs_nginx"]),
                     up_txt + mark(ok_u), rss_txt])
        e["targets"] = {"rps_vs_haproxy": ok_h, "rps_vs_nginx": ok_n, "cpu_vs_haproxy": ok_c,
                        "p99_vs_haproxy": ok_p,
                        "fewer_upstream_conns": ok_u, "rss_vs_haproxy": ok_r}
        checks += [v for v in e["targets"].values() if v is not None]
    print(table(rows, "lrrrrrrrr"))

    # ---- the earlier build, in the same rounds ----
    if base:
        print()
        print("floodgate against floodgate-base (the earlier build), same rounds: each build's ratios")
        print("to the peers (new / base), and new / base directly (rps higher is better, CPU lower)")
        print()
        rows = [["setting", "rps/haproxy", "rps/nginx", "cpu/haproxy", "cpu/nginx", "rps new/base",
                 "cpu new/base"]]
        for e in results:
            r, b = e["ratios"], e["ratios_base"]

            def pair(new, old):
                return f"{fmt_ratio(new)} / {fmt_ratio(old)}"
            rows.append([f"{e['label']}, {e['connections']} conns",
                         pair(r["rps_vs_haproxy"], b["base_rps_vs_haproxy"]),
                         pair(r["rps_vs_nginx"], b["base_rps_vs_nginx"]),
                         pair(r["cpu_vs_haproxy"], b["base_cpu_vs_haproxy"]),
                         pair(r["cpu_vs_nginx"], b["base_cpu_vs_nginx"]),
                         fmt_ratio(b["rps_vs_base"]), fmt_ratio(b["cpu_vs_base"])])
        print(table(rows, "lrrrrrr"))

    # ---- thread scaling ----
    scaling = [e for e in results if e["mode"].startswith("t")]
    if scaling:
        print()
        print(f"thread scaling: req/s at N threads / (N x req/s at 1 thread), target >= {TARGET_SCALING}")
        print("up to 8 threads, judged where the machine has 2N cores or more; proxy on cores 0..N-1,")
        print("wrk and the backends on the others (unpinned where N >= cores). Meaningful only where the")
        print("load has cores to spare: on 2 cores, only 1 and 2 threads are, and wrk and the backends")
        print("limit both settings.")
        print()
        one = {}
        for e in scaling:
            if int(e["mode"][1:]) == 1:
                one = {p: e["proxies"][p]["median"]["rps"] for p in PROXIES}
        rows = [["threads"] + [f"{p} req/s (scaling, CPU/req)" for p in PROXIES]]
        for e in scaling:
            n = int(e["mode"][1:])
            e["scaling"] = {}
            cells = [f"{n} ({e['connections']} conns)"]
            for p in PROXIES:
                m = e["proxies"][p]["median"]
                sc = ratio(m["rps"], one.get(p) * n) if one.get(p) else None
                e["scaling"][p] = sc
                txt = f"{fmt_rps(m['rps'])} ({'-' if sc is None else f'{sc:.2f}'}, {fmt_us(m['cpu_us_per_req'])})"
                # Judged only where the load has as many cores as the proxy.
                if p == "floodgate" and sc is not None and 1 < n <= 8 and meta["cpus"] >= 2 * n:
                    e["targets"]["scaling"] = sc >= TARGET_SCALING
                    checks.append(e["targets"]["scaling"])
                    txt += mark(e["targets"]["scaling"])
                cells.append(txt)
            rows.append(cells)
        print(table(rows, "l" + "r" * len(PROXIES)))

    # ---- idle connections ----
    if idle_res:
        print()
        print(f"idle keep-alive connections ({meta['idle_label']}; target: < 2 KiB each for floodgate)")
        print()
        rows = [["proxy", "held", "RSS before", "RSS with idle", "per idle conn", "whole RSS / conns"]]
        for p in PROXIES:
            if p not in idle_res:
                continue
            x = idle_res[p]
            per = x["bytes_per_idle_conn"]
            per_txt = "-" if per is None else f"{per:,.0f} B"
            if p == "floodgate" and per is not None:
                x["target_ok"] = per < TARGET_IDLE_BYTES
                per_txt += mark(x["target_ok"])
                checks.append(x["target_ok"])
            held = "-" if x["held"] is None else f"{x['held']:,}/{x['requested']:,}"
            whole = x["rss_idle_kib"] * 1024 / x["held"] if x["held"] and x["rss_idle_kib"] else None
            rows.append([p, held, fmt_kib(x["rss_before_kib"]), fmt_kib(x["rss_idle_kib"]), per_txt,
                         "-" if whole is None else f"{whole:,.0f} B"])
        print(table(rows, "lrrrrr"))
        print()
        print(f"nginx allocates all its worker_connections ({meta.get('maxconn', '?')}) at start, so part of its")
        print("per-connection cost is already in 'RSS before'; the last column, whole RSS divided by")
        print("the connections held, is an upper bound that counts everything.")

    print()
    print(f"targets met: {sum(1 for c in checks if c)}/{len(checks)} "
          "(reported only; the bench never fails on speed)")

    doc = {"meta": meta, "settings": results, "idle": idle_res,
           "targets": {"rps_vs_haproxy": TARGET_RPS["haproxy"], "rps_vs_nginx": TARGET_RPS["nginx"],
                       "cpu_vs_haproxy_max": TARGET_CPU_VS_HAPROXY, "thread_scaling_min": TARGET_SCALING,
                       "p99_vs_haproxy_max": 1.0, "rss_vs_haproxy_max_at_1000": 1.0,
                       "idle_bytes_per_conn_max": TARGET_IDLE_BYTES}}
    with open(os.path.join(os.path.dirname(os.path.abspath(out)), "gateway.json"), "w") as fh:
        json.dump(doc, fh, indent=2)
        fh.write("\n")


if __name__ == "__main__":
    main()
