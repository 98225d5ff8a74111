#!/usr/bin/env bash
# bench/broker.sh FLOODGATE_BIN
# BASE_BIN=OLD_FLOODGATE_BIN bench/broker.sh FLOODGATE_BIN
#
# Durable queues side by side: floodgate broker (SQS AWS JSON 1.0 API,
# --fsync always), RabbitMQ (durable classic queue, persistent messages,
# publisher confirms, manual acks) and Redis (lists: LPUSH, BLMOVE/LMOVE
# into a processing list, LREM as the ack; appendonly yes, appendfsync
# always), all from Debian, each with its data on the same file system
# (under bench/out/broker/data). The load client is bench/brokerbench.c,
# compiled here against hiredis, librabbitmq and cJSON; it drives every
# system the same way, one thread and connection per producer and consumer.
#
# Scenarios (each run: a fresh queue, WARMUP s, then DURATION s measured):
#   single    P producers send one message at a time, C consumers receive
#             one and delete it; messages/s received and deleted
#   batch10   the same with batches of 10 (SendMessageBatch /
#             ReceiveMessage MaxNumberOfMessages=10 / DeleteMessageBatch;
#             RabbitMQ: 10 publishes then wait for their confirms, prefetch
#             10 and one multiple ack; Redis: LPUSH of 10, 10 LMOVE
#             pipelined, 10 LREM pipelined)
#   latency   LAT_RATE messages/s in total, single sends, consumers long-poll
#             (WaitTimeSeconds=1, basic.consume, BLMOVE 1 s); p50/p99/max of
#             receive time - send time (the send time is in the body)
# With BASE_BIN, an earlier floodgate build runs as a fourth system,
# "floodgate-base", in the same rounds (its own data directory), and the
# tables add floodgate / floodgate-base.
# Runs are interleaved: round 1 (every scenario x every system), round 2, ...
# The tables show medians over the rounds and floodgate's ratios.
#
# CPUs: the servers run on the first half of the cores, the client on the
# other half (taskset); RabbitMQ gets as many Erlang schedulers as it has
# cores.
#
# Environment:
#   BENCH_DURATION=5 BENCH_WARMUP=1 BENCH_ROUNDS=3
#   BENCH_PRODUCERS=4 BENCH_CONSUMERS=8 BENCH_BODY=128 (bytes)
#   BENCH_LAT_RATE=200 (messages/s) BENCH_SCENARIOS="single batch10 latency"
#   BENCH_SYSTEMS="floodgate rabbitmq redis" BENCH_FSYNC=always (floodgate)
#   BASE_BIN= an earlier floodgate binary to compare with (optional)
#
# Raw results go to bench/out/broker/ (one JSON per run under runs/, the
# servers' logs, floodgate's /metrics at the end, disk use of each data
# directory), the summary to bench/out/broker.json.
# Speed never fails the bench; it exits non-zero only if something cannot
# be started (a system that does not start is left out of the tables and
# reported). Every process it starts is stopped by PID on the way out.
set -euo pipefail

if [ $# -ne 1 ] || [ ! -x "$1" ]; then
    echo "usage: $0 FLOODGATE_BIN" >&2
    exit 2
fi
FG=$(realpath "$1")
BASE=${BASE_BIN:-}
if [ -n "$BASE" ]; then
    [ -x "$BASE" ] || { echo "$0: BASE_BIN '$BASE' is not an executable" >&2; exit 2; }
    BASE=$(realpath "$BASE")
fi
HERE=$(cd "$(dirname "$0")" && pwd)
OUT=$HERE/out/broker
DURATION=${BENCH_DURATION:-5}
WARMUP=${BENCH_WARMUP:-1}
ROUNDS=${BENCH_ROUNDS:-3}
PRODUCERS=${BENCH_PRODUCERS:-4}
CONSUMERS=${BENCH_CONSUMERS:-8}
BODY=${BENCH_BODY:-128}
LAT_RATE=${BENCH_LAT_RATE:-200}
SCENARIOS=${BENCH_SCENARIOS:-single batch10 latency}
SYSTEMS=${BENCH_SYSTEMS:-floodgate rabbitmq redis}
[ -n "$BASE" ] && SYSTEMS="$SYSTEMS floodgate-base"
FSYNC=${BENCH_FSYNC:-always}
NCPU=$(nproc)
RABBIT_SERVER=/usr/lib/rabbitmq/bin/rabbitmq-server

say() { printf '%s\n' "$*" >&2; }
die() { say "broker bench: $*"; exit 1; }
. "$(dirname "$0")/lib.sh"

for tool in cc python3 taskset redis-server epmd curl; do
    command -v "$tool" >/dev/null || die "'$tool' is missing (make bench-deps installs it)"
done
[ -x "$RABBIT_SERVER" ] || die "RabbitMQ is missing ($RABBIT_SERVER; make bench-deps installs it)"
[ "$NCPU" -ge 2 ] || die "needs at least 2 CPU cores (servers and client on different cores)"
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

half=$((NCPU / 2))
SERVER_CPUS="0-$((half - 1))"
CLIENT_CPUS="$half-$((NCPU - 1))"
SERVER_PIN="taskset -c $SERVER_CPUS"
CLIENT_PIN="taskset -c $CLIENT_CPUS"

rm -rf "$OUT"
mkdir -p "$OUT/runs" "$OUT/data"

# ---- the client ----

cc -O2 -Wall -o "$OUT/brokerbench" "$HERE/brokerbench.c" -lhiredis -lrabbitmq -lcjson -lpthread \
    >"$OUT/cc.log" 2>&1 || { cat "$OUT/cc.log" >&2; die "brokerbench did not compile (libhiredis-dev, librabbitmq-dev, libcjson-dev)"; }

# ---- helpers ----

declare -A PID PORT VERSION
FAILED=()

# start_fg NAME BIN: a floodgate broker as system NAME
start_fg() {
    local name=$1 bin=$2 dir=$OUT/$1
    mkdir -p "$dir"
    PORT[$name]=$(free_ports 1)
    start_bg $SERVER_PIN "$bin" broker --listen "127.0.0.1:${PORT[$name]}" \
        --data "$OUT/data/$name" --fsync "$FSYNC" >"$dir/log" 2>&1
    PID[$name]=$BG_PID
    wait_http "http://127.0.0.1:${PORT[$name]}/healthz" "$BG_PID" "$dir/log" || return 1
    VERSION[$name]="floodgate broker (--fsync $FSYNC)"
}

start_floodgate() { start_fg floodgate "$FG"; }
start_floodgate-base() {
    start_fg floodgate-base "$BASE" || return 1
    VERSION[floodgate-base]="floodgate broker, earlier build $BASE (--fsync $FSYNC)"
}

start_redis() {
    local dir=$OUT/redis
    mkdir -p "$dir" "$OUT/data/redis"
    PORT[redis]=$(free_ports 1)
    start_bg $SERVER_PIN redis-server --port "${PORT[redis]}" --bind 127.0.0.1 \
        --dir "$OUT/data/redis" --appendonly yes --appendfsync always --save '' \
        --daemonize no --protected-mode no --logfile "$dir/log"
    PID[redis]=$BG_PID
    wait_tcp "${PORT[redis]}" "$BG_PID" "$dir/log" 10 || return 1
    VERSION[redis]="Redis $(redis-server --version | sed 's/.*v=\([^ ]*\).*/\1/') (appendfsync always)"
}

start_rabbitmq() {
    start_rabbitmq_node fgbench "$half" "durable classic queue, confirms, manual acks"
}

say "broker bench: ${ROUNDS} rounds x {$SCENARIOS} x {$SYSTEMS}, ${WARMUP}+${DURATION} s each;" \
    "$PRODUCERS producers, $CONSUMERS consumers, $BODY-byte bodies; servers on CPUs $SERVER_CPUS," \
    "client on $CLIENT_CPUS"
FS=$(df -T "$OUT/data" | awk 'NR == 2 {print $2}')
say "data on $FS ($OUT/data)"

UP=()
for s in $SYSTEMS; do
    case $s in floodgate | floodgate-base | rabbitmq | redis) ;; *) die "unknown system '$s' in BENCH_SYSTEMS" ;; esac
    say "starting $s"
    if "start_$s"; then
        UP+=("$s")
    else
        say "$s did not start (see $OUT/$s); it is left out"
        FAILED+=("$s")
        if [ -n "${PID[$s]:-}" ]; then stop_pid "${PID[$s]}"; fi
    fi
done
[ ${#UP[@]} -gt 0 ] || die "nothing started"

printf 'round\tscenario\tsystem\tresult\tserver_cpu_s\twall_s\n' >"$OUT/runs.tsv"
nsc=$(wc -w <<<"$SCENARIOS")
total=$((ROUNDS * nsc * ${#UP[@]}))
n=0
for round in $(seq "$ROUNDS"); do
    for sc in $SCENARIOS; do
        for s in "${UP[@]}"; do
            n=$((n + 1))
            tag="r$round-$sc-$s"
            case $sc in
            single) args=(--mode throughput --batch 1) ;;
            batch10) args=(--mode throughput --batch 10) ;;
            latency) args=(--mode latency --rate "$LAT_RATE") ;;
            *) die "unknown scenario '$sc' in BENCH_SCENARIOS" ;;
            esac
            sys=$s
            case $s in floodgate | floodgate-base) sys=sqs ;; esac
            c0=$(cpu_ticks "${PID[$s]}")
            w0=$(date +%s.%N)
            $CLIENT_PIN "$OUT/brokerbench" --system "$sys" --port "${PORT[$s]}" \
                --queue "bench-$round-$sc-$$" "${args[@]}" --producers "$PRODUCERS" \
                --consumers "$CONSUMERS" --duration "$DURATION" --warmup "$WARMUP" --body "$BODY" \
                >"$OUT/runs/$tag.json" 2>"$OUT/runs/$tag.err" ||
                say "  $tag: client reported errors (see $OUT/runs/$tag.err)"
            w1=$(date +%s.%N)
            c1=$(cpu_ticks "${PID[$s]}")
            alive "${PID[$s]}" || { say "$s died during $tag"; FAILED+=("$s(died)"); }
            cpu=$(python3 -c "print(round(($c1 - $c0) / $(getconf CLK_TCK), 2))")
            wall=$(python3 -c "print(round($w1 - $w0, 2))")
            printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$sc" "$s" "runs/$tag.json" "$cpu" "$wall" \
                >>"$OUT/runs.tsv"
            line=$(python3 -c '
import json, sys
try:
    j = json.load(open(sys.argv[1]))
except Exception:
    print("no result"); sys.exit()
l = j["latency_us"]
if j["mode"] == "latency":
    print("%d msgs, p50 %.1f ms, p99 %.1f ms" % (l["count"], l["p50"] / 1e3, l["p99"] / 1e3))
else:
    print("%.0f msgs/s end to end (sent %.0f/s)" % (j["deleted_per_s"], j["sent_per_s"]))
' "$OUT/runs/$tag.json")
            say "$(printf '[%2d/%d] round %s %-8s %-9s %s; server CPU %ss' "$n" "$total" "$round" "$sc" "$s" "$line" "$cpu")"
        done
    done
done

if [ -n "${PID[floodgate]:-}" ] && alive "${PID[floodgate]}"; then
    curl -s -m 2 "http://127.0.0.1:${PORT[floodgate]}/metrics" >"$OUT/floodgate/metrics.txt" || true
fi
for s in "${UP[@]}"; do stop_pid "${PID[$s]}"; done
[ -n "${PID[epmd]:-}" ] && stop_pid "${PID[epmd]}"
du -sk "$OUT/data"/* >"$OUT/data-usage.txt" 2>/dev/null || true

VFG="${VERSION[floodgate]:-}" VBASE="${VERSION[floodgate-base]:-}" VRMQ="${VERSION[rabbitmq]:-}" VREDIS="${VERSION[redis]:-}" \
    python3 - "$OUT" "$HERE/out/broker.json" "$DURATION" "$WARMUP" "$ROUNDS" "$PRODUCERS" \
    "$CONSUMERS" "$BODY" "$LAT_RATE" "$NCPU" "$FS" "$SERVER_CPUS" "$CLIENT_CPUS" \
    "${FAILED[*]:-}" <<'EOF'
import json, os, statistics, sys
(out, summary, dur, warm, rounds, prod, cons, body, rate, ncpu, fs, scpu, ccpu,
 failed) = sys.argv[1:15]
runs = {}
for line in open(out + "/runs.tsv").read().splitlines()[1:]:
    rnd, sc, sysname, res, cpu, wall = line.split("\t")
    try:
        j = json.load(open(out + "/" + res))
    except (OSError, ValueError):
        j = None
    if j is not None:
        j["server_cpu_s"] = float(cpu)
        j["wall_s"] = float(wall)
    runs.setdefault((sc, sysname), []).append(j)

def med(vals):
    vals = [v for v in vals if v is not None]
    return statistics.median(vals) if vals else None

systems = [s for s in ("floodgate", "floodgate-base", "rabbitmq", "redis")
           if any(k[1] == s for k in runs)]
labels = {"floodgate": os.environ.get("VFG"), "floodgate-base": os.environ.get("VBASE"),
          "rabbitmq": os.environ.get("VRMQ"),
          "redis": os.environ.get("VREDIS")}
scen = []
for sc in ("single", "batch10", "latency"):
    if any(k[0] == sc for k in runs):
        scen.append(sc)

res = {}
for (sc, s), lst in runs.items():
    ok = [j for j in lst if j]
    r = {"runs": len(lst), "ok": len(ok), "errors": sum(j["errors"] for j in ok)}
    if sc == "latency":
        r["p50_ms"] = med([j["latency_us"]["p50"] / 1e3 for j in ok])
        r["p99_ms"] = med([j["latency_us"]["p99"] / 1e3 for j in ok])
        r["max_ms"] = max([j["latency_us"]["max"] / 1e3 for j in ok], default=None)
        r["received"] = med([j["latency_us"]["count"] for j in ok])
    else:
        r["msgs_per_s"] = med([j["deleted_per_s"] for j in ok])
        r["sent_per_s"] = med([j["sent_per_s"] for j in ok])
    r["server_cpu_per_s"] = med([j["server_cpu_s"] / j["wall_s"] for j in ok if j["wall_s"]])
    res[(sc, s)] = r

def fmt(v, f):
    return "-" if v is None else f % v

def ratio(a, b, lower_better=False):
    if a is None or b is None or a == 0 or b == 0:
        return "-"
    return "%.2fx" % ((b / a) if lower_better else (a / b))

print()
print("Durable queues, end to end: %s producers + %s consumers (a thread and connection each),"
      " %s-byte bodies, %s s measured after %s s warm-up, median of %s rounds;"
      " servers on CPUs %s, client on %s (%s CPUs); data on %s" %
      (prod, cons, body, dur, warm, rounds, scpu, ccpu, ncpu, fs))
for s in systems:
    print("  %-14s %s" % (s, labels.get(s) or "-"))
print("msgs/s: messages received and deleted (acknowledged) per second, each one sent durably"
      " (confirmed) first; server CPU: cores busy on average during the run")
print()
thr = [sc for sc in scen if sc != "latency"]
if thr:
    hdr = "| scenario |" + "".join(" %s msgs/s | %s CPU |" % (s, s) for s in systems)
    cmp = [s for s in systems if s != "floodgate"] if "floodgate" in systems else []
    hdr += "".join(" floodgate / %s |" % s for s in cmp)
    print(hdr)
    print("|---|" + "---:|---:|" * len(systems) + "---:|" * len(cmp))
    for sc in thr:
        row = "| %s |" % ("single messages" if sc == "single" else "batches of 10")
        for s in systems:
            r = res.get((sc, s), {})
            row += " %s | %s |" % (fmt(r.get("msgs_per_s"), "%.0f"), fmt(r.get("server_cpu_per_s"), "%.2f"))
        for s in cmp:
            row += " %s |" % ratio(res.get((sc, "floodgate"), {}).get("msgs_per_s"),
                                   res.get((sc, s), {}).get("msgs_per_s"))
        print(row)
    print()
if "latency" in scen:
    print("Send-to-receive latency at %s msgs/s (single sends, long polling), ms:" % rate)
    print()
    print("| system | p50 | p99 | max | received |")
    print("|---|---:|---:|---:|---:|")
    for s in systems:
        r = res.get(("latency", s), {})
        print("| %s | %s | %s | %s | %s |" % (s, fmt(r.get("p50_ms"), "%.2f"), fmt(r.get("p99_ms"), "%.2f"),
                                            fmt(r.get("max_ms"), "%.2f"), fmt(r.get("received"), "%.0f")))
    if "floodgate" in systems:
        fl = res.get(("latency", "floodgate"), {}).get("p99_ms")
        for s in systems:
            if s != "floodgate":
                print("p99 %s / floodgate: %s" % (s, ratio(fl, res.get(("latency", s), {}).get("p99_ms"), True)))
    print()
checks = {}
if "floodgate" in systems:
    for sc in thr:
        f = res.get((sc, "floodgate"), {}).get("msgs_per_s")
        rq = res.get((sc, "rabbitmq"), {}).get("msgs_per_s")
        rd = res.get((sc, "redis"), {}).get("msgs_per_s")
        if f and rq:
            checks["%s_vs_rabbitmq_2x" % sc] = f >= 2 * rq
            print("target %s: floodgate >= 2 x RabbitMQ: %.0f vs %.0f: %s" %
                  (sc, f, 2 * rq, "PASS" if f >= 2 * rq else "FAIL"))
        if f and rd:
            checks["%s_vs_redis_1x" % sc] = f >= rd
            print("target %s: floodgate >= Redis: %.0f vs %.0f: %s" %
                  (sc, f, rd, "PASS" if f >= rd else "FAIL"))
errs = {"%s/%s" % k: v["errors"] for k, v in res.items() if v["errors"]}
if errs:
    print("client-side errors (see runs/*.err): %s" % errs)
if failed:
    print("could not start or died: %s" % failed)
json.dump({"config": {"duration_s": float(dur), "warmup_s": float(warm), "rounds": int(rounds),
                      "producers": int(prod), "consumers": int(cons), "body": int(body),
                      "latency_rate": float(rate), "cpus": int(ncpu), "fs": fs,
                      "server_cpus": scpu, "client_cpus": ccpu},
           "systems": {s: labels.get(s) for s in systems}, "checks": checks,
           "failed": failed.split() if failed else [],
           "results": {"%s/%s" % k: v for k, v in res.items()}}, open(summary, "w"), indent=2)
EOF

if [ ${#FAILED[@]} -gt 0 ]; then
    say "broker bench: could not start or lost: ${FAILED[*]}"
    exit 1
fi
