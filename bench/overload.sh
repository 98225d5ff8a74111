#!/usr/bin/env bash
# bench/overload.sh FLOODGATE_BIN
#
# Goodput under overload. One backend that degrades like a real service:
# floodgate echo --latency LATENCY_MS --max-concurrency INFLIGHT (1 thread)
# serves at most INFLIGHT requests at once for LATENCY_MS each and queues
# the rest in an unbounded FIFO, like a thread pool. Its capacity is
# C = INFLIGHT / LATENCY (1000 requests/s by default); past it, its latency
# grows without bound, and a request whose client gave up is still served,
# wasting its slot. It sits behind the gateway (1 thread, pinned to core 0;
# the backend and the load on core 1).
#
# With protection on, the service has
#   concurrency: {max_inflight: GW_INFLIGHT, queue: QUEUE, queue_timeout: QTIMEOUT}
# with protection off there is no concurrency block. GW_INFLIGHT is
# INFLIGHT plus 10%: a request counts against the gateway's limit from the
# moment it is sent until its response is through, a little longer than it
# holds one of the backend's slots, so a limit of exactly INFLIGHT leaves
# the backend idle part of the time (about 88% of C here; the adaptive
# limit settles near 1.05 C for the same reason).
#
# Offered load: floodgate flood in open loop (-R) at 0.5x, 1x, 2x, 3x and
# 5x of C, -c CONNS, client timeout TIMEOUT, for DURATION s each,
# protection on and off, after a 1 s warm-up at 0.5x C. After each run the
# bench waits (up to 60 s) for the backend's queue to empty (X-Echo-Busy
# and X-Echo-Queued on its /health), so that no run starts with the backlog
# of the previous one. The unloaded p99 is the p99 at 0.5x with protection
# on. The number of connections matters: with protection off, the
# backend's queue can only grow as far as the clients have requests out;
# with CONNS above C x TIMEOUT it outgrows the timeout, and the goodput of
# requests answered in time collapses.
#
# Table: offered rate, goodput (2xx/s: responses within the client
# timeout), p99 of the admitted responses (flood's "admitted": every
# response but 429 and 503, counted from the intended send time), the 503s,
# other failures (timeouts included) and requests due but never sent, for
# on and off. Then the checks: with protection on, goodput at 5x >= 90% of
# C, and p99 of admitted at 5x <= 3x the unloaded p99.
#
# Environment: BENCH_DURATION=5, BENCH_LATENCY_MS=20, BENCH_INFLIGHT=20,
# BENCH_GW_INFLIGHT=INFLIGHT+10%, BENCH_QUEUE=64, BENCH_QTIMEOUT=200ms,
# BENCH_LOADS="0.5 1 2 3 5", BENCH_CONNS=2000, BENCH_TIMEOUT=1s.
# Raw results go to bench/out/overload/, the summary to bench/out/overload.json.
# The checks never fail the bench; it exits non-zero only if something
# cannot be started. Every process it starts is stopped by PID.
set -euo pipefail

if [ $# -ne 1 ] || [ ! -x "$1" ]; then
    echo "usage: $0 FLOODGATE_BIN" >&2
    exit 2
fi
FG=$(realpath "$1")
HERE=$(cd "$(dirname "$0")" && pwd)
OUT=$HERE/out/overload
DURATION=${BENCH_DURATION:-5}
LATENCY_MS=${BENCH_LATENCY_MS:-20}
INFLIGHT=${BENCH_INFLIGHT:-20}
GW_INFLIGHT=${BENCH_GW_INFLIGHT:-$((INFLIGHT + (INFLIGHT + 9) / 10))}
QUEUE=${BENCH_QUEUE:-64}
QTIMEOUT=${BENCH_QTIMEOUT:-200ms}
LOADS=${BENCH_LOADS:-0.5 1 2 3 5}
CONNS=${BENCH_CONNS:-2000}
TIMEOUT=${BENCH_TIMEOUT:-1s}
CAP=$((INFLIGHT * 1000 / LATENCY_MS))

say() { printf '%s\n' "$*" >&2; }
die() { say "overload bench: $*"; exit 1; }
. "$(dirname "$0")/lib.sh"

for tool in curl python3 taskset; do
    command -v "$tool" >/dev/null || die "'$tool' is missing"
done
[ "$(nproc)" -ge 2 ] || die "needs at least 2 CPU cores"
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
PROXY_PIN="taskset -c 0"
CLIENT_PIN="taskset -c 1"
# The backend shares the gateway's core: both are light next to the load
# generator, whose CPU use at 5x would otherwise slow the backend down and
# shrink the very capacity the bench measures against.
BACKEND_PIN="taskset -c 0"

# ---- run ----

rm -rf "$OUT"
mkdir -p "$OUT"
ports=$(free_ports 3)
B1=$(sed -n 1p <<<"$ports")
PORT=$(sed -n 2p <<<"$ports")
ADMIN=$(sed -n 3p <<<"$ports")
start_bg $BACKEND_PIN "$FG" echo -l "127.0.0.1:$B1" --latency "$LATENCY_MS" --max-concurrency "$INFLIGHT" \
    --name slow >"$OUT/backend.log" 2>&1
BACKEND_PID=$BG_PID
wait_http "http://127.0.0.1:$B1/health" "$BACKEND_PID" "$OUT/backend.log" || die "backend did not start"

# start_gateway on|off: sets GW_PID.
start_gateway() {
    local conc="" cfg=$OUT/gateway-$1.yaml
    if [ "$1" = on ]; then
        conc="    concurrency: {max_inflight: $GW_INFLIGHT, queue: $QUEUE, queue_timeout: $QTIMEOUT}"
    fi
    CONC=$conc python3 - "$HERE/overload-floodgate.yaml.in" "$cfg" "$PORT" "$ADMIN" "$B1" <<'EOF'
import os, sys
t = open(sys.argv[1]).read()
for k, v in (("PORT", sys.argv[3]), ("ADMIN_PORT", sys.argv[4]), ("B1", sys.argv[5]),
             ("CONCURRENCY", os.environ["CONC"])):
    t = t.replace("@%s@" % k, v)
open(sys.argv[2], "w").write(t)
EOF
    start_bg $PROXY_PIN "$FG" gateway -c "$cfg" >>"$OUT/gateway-$1.log" 2>&1
    GW_PID=$BG_PID
    wait_http "http://127.0.0.1:$PORT/health" "$GW_PID" "$OUT/gateway-$1.log" ||
        die "gateway (protection $1) did not start"
}

# backend_idle: waits until the backend has nothing in service or queued
# (up to 60 s); prints the seconds it took.
backend_idle() {
    local t0=$SECONDS h
    while [ $((SECONDS - t0)) -lt 60 ]; do
        h=$(curl -s -D - -o /dev/null --max-time 2 "http://127.0.0.1:$B1/health" | tr -d '\r')
        if grep -qx 'X-Echo-Busy: 0' <<<"$h" && grep -qx 'X-Echo-Queued: 0' <<<"$h"; then
            echo $((SECONDS - t0))
            return 0
        fi
        sleep 0.2
    done
    echo "60+"
}

nloads=$(wc -w <<<"$LOADS")
say "overload bench: backend capacity C = $INFLIGHT / ${LATENCY_MS} ms = $CAP req/s; loads ($LOADS) x C," \
    "protection on and off, ${DURATION}s each, flood -c $CONNS --timeout $TIMEOUT open loop; raw results in $OUT"
n=0
for prot in on off; do
    start_gateway $prot
    $CLIENT_PIN "$FG" flood -q -t 1 -c "$CONNS" -d 1s -R $((CAP / 2)) --timeout "$TIMEOUT" \
        --json="$OUT/warmup-$prot.json" "http://127.0.0.1:$PORT/" >/dev/null 2>&1 || true
    for load in $LOADS; do
        n=$((n + 1))
        rate=$(python3 -c "print(round($load * $CAP))")
        $CLIENT_PIN "$FG" flood -q -t 1 -c "$CONNS" -d "${DURATION}s" -R "$rate" --timeout "$TIMEOUT" \
            --json="$OUT/$prot-$load.json" "http://127.0.0.1:$PORT/" >"$OUT/$prot-$load.out" 2>&1 ||
            say "flood failed at ${load}x (protection $prot): see $OUT/$prot-$load.out"
        alive "$GW_PID" || die "gateway (protection $prot) died at ${load}x; see $OUT/gateway-$prot.log"
        drain=$(backend_idle)
        echo "$drain" >"$OUT/$prot-$load.drain"
        say "$(printf '[%2d/%d] protection %-3s %4sx C = %5s req/s offered; backend backlog drained in %ss' \
            "$n" $((2 * nloads)) "$prot" "$load" "$rate" "$drain")"
        sleep 1
    done
    stop_pid "$GW_PID"
done

python3 - "$OUT" "$HERE/out/overload.json" "$CAP" "$LATENCY_MS" "$INFLIGHT" "$GW_INFLIGHT" "$QUEUE" \
    "$QTIMEOUT" "$CONNS" "$DURATION" "$TIMEOUT" $LOADS <<'EOF'
import json, sys
out, summary, cap, lat, inflight, gw_inflight, queue, qto, conns, dur, tmo = sys.argv[1:12]
loads = sys.argv[12:]
cap = int(cap)
res = {}
for prot in ("on", "off"):
    for load in loads:
        try:
            j = json.load(open("%s/%s-%s.json" % (out, prot, load)))
        except (OSError, ValueError):
            res[(prot, load)] = None
            continue
        u = j["users"]
        el = j["elapsed_s"] or float(dur)
        st = {int(k): v for k, v in u["status"].items()}
        ok = sum(v for k, v in st.items() if 200 <= k < 300)
        other = sum(v for k, v in st.items() if not (200 <= k < 300) and k != 503)
        res[(prot, load)] = {
            "offered": j["config"]["rate"], "sent": u["sent"], "goodput": ok / el, "ok": ok,
            "p99_ms": u["latency_us"]["p99"] / 1000 if u["latency_us"]["count"] else None,
            "p50_ms": u["latency_us"]["p50"] / 1000 if u["latency_us"]["count"] else None,
            "n503": st.get(503, 0), "other": other, "errors": u["errors"],
            "unsent": u["unsent"], "unfinished": u["unfinished"],
            "timeouts": u["errors_by_kind"].get("timeout", 0),
            "status": u["status"],
        }
        try:
            res[(prot, load)]["backlog_drain_s"] = open("%s/%s-%s.drain" % (out, prot, load)).read().strip()
        except OSError:
            pass
def f(v, fmt):
    return "-" if v is None else fmt % v
print()
print("Goodput under overload: floodgate echo --latency %s --max-concurrency %s (1 thread, FIFO backlog)"
      " behind the gateway (1 thread); protection on = concurrency {max_inflight: %s, queue: %s,"
      " queue_timeout: %s}, off = none; C = %d req/s; flood open loop -c %s --timeout %s, %ss per load"
      % (lat, inflight, gw_inflight, queue, qto, cap, conns, tmo, dur))
print("goodput: 2xx/s (answered within the client timeout); p99: admitted responses (all but 429/503),"
      " from the intended send time; other: non-2xx, non-503 responses + errors (timeouts included);"
      " unsent: due but never sent")
print()
print("| load | offered/s | on: goodput/s | on: p99 ms | on: 503 | on: other | on: unsent"
      " | off: goodput/s | off: p99 ms | off: 503 | off: other | off: unsent |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for load in loads:
    row = ["%sx" % load, "%d" % round(float(load) * cap)]
    for prot in ("on", "off"):
        r = res[(prot, load)]
        if r is None:
            row += ["failed"] * 5
            continue
        row += ["%.0f" % r["goodput"], f(r["p99_ms"], "%.1f"), "%d" % r["n503"],
                "%d" % (r["other"] + r["errors"]), "%d" % r["unsent"]]
    print("| " + " | ".join(row) + " |")
print()
base = res.get(("on", loads[0]))
top = res.get(("on", loads[-1]))
checks = {}
if base and top and base["p99_ms"]:
    g_ok = top["goodput"] >= 0.9 * cap
    p_ok = top["p99_ms"] is not None and top["p99_ms"] <= 3 * base["p99_ms"]
    print("unloaded p99 (%sx, protection on): %.1f ms" % (loads[0], base["p99_ms"]))
    print("protection on, %sx: goodput %.0f/s vs 90%% of C = %.0f/s: %s" %
          (loads[-1], top["goodput"], 0.9 * cap, "PASS" if g_ok else "FAIL"))
    print("protection on, %sx: p99 of admitted %s ms vs 3 x unloaded p99 = %.1f ms: %s" %
          (loads[-1], f(top["p99_ms"], "%.1f"), 3 * base["p99_ms"], "PASS" if p_ok else "FAIL"))
    checks = {"goodput_ok": g_ok, "p99_ok": p_ok, "unloaded_p99_ms": base["p99_ms"]}
    off = res.get(("off", loads[-1]))
    if off:
        print("protection off, %sx: goodput %.0f/s (%.0f%% of C), p99 of admitted %s ms, %d timeouts" %
              (loads[-1], off["goodput"], 100 * off["goodput"] / cap, f(off["p99_ms"], "%.0f"),
               off["timeouts"]))
else:
    print("checks: no result (a run failed)")
json.dump({"capacity": cap, "loads": loads, "checks": checks,
           "runs": {"%s-%s" % k: v for k, v in res.items()}}, open(summary, "w"), indent=2)
EOF
