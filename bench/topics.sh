#!/usr/bin/env bash
# bench/topics.sh FLOODGATE_BIN
#
# Publish-to-deliver through a topic fanned out to 1, 3 and 10 durable
# queues, side by side: floodgate broker (an SNS topic with sqs
# subscriptions, RawMessageDelivery, --fsync always: a Publish is answered
# once every queue copy is durable) and RabbitMQ (a durable fanout exchange
# bound to durable queues, persistent messages, publisher confirms, manual
# acks), both from Debian, data on the same file system (under
# bench/out/topics/data). The load client is bench/topicbench.c (its own
# small SNS/SQS HTTP client and AMQP code, kept apart from brokerbench.c's),
# compiled here against librabbitmq and cJSON: one thread and connection
# per producer and per consumer, CONSUMERS consumers on every queue.
#
# Scenarios, for each fan-out F in FANOUTS (each run: a fresh topic and
# queues, WARMUP s, then DURATION s measured):
#   throughput  PRODUCERS producers publish single messages as fast as each
#               is confirmed; consumers receive (10 at a time) and
#               acknowledge; publishes/s and deliveries/s (F copies each)
#   latency     LAT_RATE publishes/s in total; p50/p99/max from publish to
#               receive of every copy (the send time is in the body)
# Runs are interleaved: round 1 (every scenario x system), round 2, ... The
# tables show medians over the rounds and floodgate / RabbitMQ ratios.
#
# CPUs: the servers run on the first half of the cores, the client on the
# other half (taskset).
#
# Environment:
#   BENCH_DURATION=5 BENCH_WARMUP=1 BENCH_ROUNDS=3 BENCH_FANOUTS="1 3 10"
#   BENCH_PRODUCERS=4 BENCH_CONSUMERS=2 (per queue) BENCH_BODY=128 (bytes)
#   BENCH_LAT_RATE=200 BENCH_MODES="throughput latency"
#   BENCH_SYSTEMS="floodgate rabbitmq" BENCH_FSYNC=always (floodgate)
#
# Raw results go to bench/out/topics/, the summary to bench/out/topics.json.
# Speed never fails the bench; it exits non-zero only if something cannot
# be started. Every process it starts is stopped by PID on the way out.
set -euo pipefail

if [ $# -ne 1 ] || [ ! -x "$1" ]; then
    echo "usage: $0 FLOODGATE_BIN" >&2
    exit 2
fi
FG=$(realpath "$1")
HERE=$(cd "$(dirname "$0")" && pwd)
OUT=$HERE/out/topics
DURATION=${BENCH_DURATION:-5}
WARMUP=${BENCH_WARMUP:-1}
ROUNDS=${BENCH_ROUNDS:-3}
FANOUTS=${BENCH_FANOUTS:-1 3 10}
PRODUCERS=${BENCH_PRODUCERS:-4}
CONSUMERS=${BENCH_CONSUMERS:-2}
BODY=${BENCH_BODY:-128}
LAT_RATE=${BENCH_LAT_RATE:-200}
MODES=${BENCH_MODES:-throughput latency}
SYSTEMS=${BENCH_SYSTEMS:-floodgate rabbitmq}
FSYNC=${BENCH_FSYNC:-always}
NCPU=$(nproc)
RABBIT_SERVER=/usr/lib/rabbitmq/bin/rabbitmq-server

say() { printf '%s\n' "$*" >&2; }
die() { say "topics bench: $*"; exit 1; }
. "$(dirname "$0")/lib.sh"

for tool in cc python3 taskset epmd curl; do
    command -v "$tool" >/dev/null || die "'$tool' is missing (make bench-deps installs it)"
done
case " $SYSTEMS " in *" rabbitmq "*)
    [ -x "$RABBIT_SERVER" ] || die "RabbitMQ is missing ($RABBIT_SERVER; make bench-deps installs it)" ;;
esac
[ "$NCPU" -ge 2 ] || die "needs at least 2 CPU cores (servers and client on different cores)"
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

half=$((NCPU / 2))
SERVER_PIN="taskset -c 0-$((half - 1))"
CLIENT_PIN="taskset -c $half-$((NCPU - 1))"

rm -rf "$OUT"
mkdir -p "$OUT/runs" "$OUT/data"

cc -O2 -Wall -o "$OUT/topicbench" "$HERE/topicbench.c" -lrabbitmq -lcjson -lpthread >"$OUT/cc.log" 2>&1 ||
    { cat "$OUT/cc.log" >&2; die "topicbench did not compile (librabbitmq-dev, libcjson-dev)"; }

declare -A PID PORT VERSION
FAILED=()

start_floodgate() {
    local dir=$OUT/floodgate
    mkdir -p "$dir"
    PORT[floodgate]=$(free_ports 1)
    start_bg $SERVER_PIN "$FG" broker --listen "127.0.0.1:${PORT[floodgate]}" \
        --data "$OUT/data/floodgate" --fsync "$FSYNC" >"$dir/log" 2>&1
    PID[floodgate]=$BG_PID
    wait_http "http://127.0.0.1:${PORT[floodgate]}/healthz" "$BG_PID" "$dir/log" || return 1
    # A build without the topic routes answers SNS calls with an error.
    curl -s -d 'Action=ListTopics' "http://127.0.0.1:${PORT[floodgate]}/" | grep -q ListTopicsResponse ||
        { say "this floodgate build does not serve SNS"; return 1; }
    VERSION[floodgate]="floodgate broker (SNS topic -> sqs subscriptions, raw delivery, --fsync $FSYNC)"
}

start_rabbitmq() {
    start_rabbitmq_node fgtopics "$half" "durable fanout exchange, durable queues, confirms, manual acks"
}

say "topics bench: ${ROUNDS} rounds x fan-out {$FANOUTS} x {$MODES} x {$SYSTEMS}, ${WARMUP}+${DURATION} s" \
    "each; $PRODUCERS producers, $CONSUMERS consumers per queue, $BODY-byte bodies"
FS=$(df -T "$OUT/data" | awk 'NR == 2 {print $2}')

UP=()
for s in $SYSTEMS; do
    case $s in floodgate | rabbitmq) ;; *) die "unknown system '$s' in BENCH_SYSTEMS" ;; esac
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

printf 'round\tfanout\tmode\tsystem\tresult\tserver_cpu_s\twall_s\n' >"$OUT/runs.tsv"
total=$((ROUNDS * $(wc -w <<<"$FANOUTS") * $(wc -w <<<"$MODES") * ${#UP[@]}))
n=0
for round in $(seq "$ROUNDS"); do
    for f in $FANOUTS; do
        for mode in $MODES; do
            for s in "${UP[@]}"; do
                n=$((n + 1))
                tag="r$round-f$f-$mode-$s"
                sys=$s
                [ "$s" = floodgate ] && sys=sns
                c0=$(cpu_ticks "${PID[$s]}")
                w0=$(date +%s.%N)
                $CLIENT_PIN "$OUT/topicbench" --system "$sys" --port "${PORT[$s]}" --name "bench-$round-$f-$mode-$$" \
                    --fanout "$f" --mode "$mode" --rate "$LAT_RATE" --producers "$PRODUCERS" \
                    --consumers "$CONSUMERS" --duration "$DURATION" --warmup "$WARMUP" --body "$BODY" \
                    >"$OUT/runs/$tag.json" 2>"$OUT/runs/$tag.err" ||
                    say "  $tag: client reported errors (see $OUT/runs/$tag.err)"
                w1=$(date +%s.%N)
                c1=$(cpu_ticks "${PID[$s]}")
                alive "${PID[$s]}" || { say "$s died during $tag"; FAILED+=("$s(died)"); }
                cpu=$(python3 -c "print(round(($c1 - $c0) / $(getconf CLK_TCK), 2))")
                wall=$(python3 -c "print(round($w1 - $w0, 2))")
                printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$f" "$mode" "$s" "runs/$tag.json" "$cpu" "$wall" \
                    >>"$OUT/runs.tsv"
                line=$(python3 -c '
import json, sys
try:
    j = json.load(open(sys.argv[1]))
except Exception:
    print("no result"); sys.exit()
l = j["latency_us"]
if j["mode"] == "latency":
    print("%d deliveries, p50 %.1f ms, p99 %.1f ms" % (l["count"], l["p50"] / 1e3, l["p99"] / 1e3))
else:
    print("%.0f publishes/s, %.0f deliveries/s" % (j["published_per_s"], j["delivered_per_s"]))
' "$OUT/runs/$tag.json")
                say "$(printf '[%2d/%d] round %s fan-out %-2s %-10s %-9s %s; server CPU %ss' "$n" "$total" \
                    "$round" "$f" "$mode" "$s" "$line" "$cpu")"
            done
        done
    done
done

for s in "${UP[@]}"; do stop_pid "${PID[$s]}"; done
[ -n "${PID[epmd]:-}" ] && stop_pid "${PID[epmd]}"

VFG="${VERSION[floodgate]:-}" VRMQ="${VERSION[rabbitmq]:-}" \
    python3 - "$OUT" "$HERE/out/topics.json" "$DURATION" "$WARMUP" "$ROUNDS" "$PRODUCERS" "$CONSUMERS" \
    "$BODY" "$LAT_RATE" "$NCPU" "$FS" "${FAILED[*]:-}" <<'PY'
import json, os, statistics, sys
out, summary, dur, warm, rounds, prod, cons, body, rate, ncpu, fs, failed = sys.argv[1:13]
runs = {}
for line in open(out + "/runs.tsv").read().splitlines()[1:]:
    rnd, f, mode, s, res, cpu, wall = line.split("\t")
    try:
        j = json.load(open(out + "/" + res))
        j["server_cpu_s"], j["wall_s"] = float(cpu), float(wall)
    except (OSError, ValueError):
        j = None
    runs.setdefault((int(f), mode, s), []).append(j)

def med(v):
    v = [x for x in v if x is not None]
    return statistics.median(v) if v else None

res = {}
for k, lst in runs.items():
    ok = [j for j in lst if j]
    r = {"runs": len(lst), "ok": len(ok), "errors": sum(j["errors"] for j in ok)}
    r["published_per_s"] = med([j["published_per_s"] for j in ok])
    r["delivered_per_s"] = med([j["delivered_per_s"] for j in ok])
    r["p50_ms"] = med([j["latency_us"]["p50"] / 1e3 for j in ok if j["latency_us"]["count"]])
    r["p99_ms"] = med([j["latency_us"]["p99"] / 1e3 for j in ok if j["latency_us"]["count"]])
    r["max_ms"] = max([j["latency_us"]["max"] / 1e3 for j in ok if j["latency_us"]["count"]], default=None)
    r["server_cpu_per_s"] = med([j["server_cpu_s"] / j["wall_s"] for j in ok if j["wall_s"]])
    res[k] = r

fanouts = sorted({k[0] for k in runs})
systems = [s for s in ("floodgate", "rabbitmq") if any(k[2] == s for k in runs)]
labels = {"floodgate": os.environ.get("VFG"), "rabbitmq": os.environ.get("VRMQ")}

def fmt(v, f):
    return "-" if v is None else f % v

def ratio(a, b, lower_better=False):
    if not a or not b:
        return "-"
    return "%.2fx" % ((b / a) if lower_better else (a / b))

print()
print("Topic fan-out, publish to deliver: %s producers, %s consumers per queue, %s-byte bodies, %s s measured"
      " after %s s warm-up, median of %s rounds; %s CPUs (servers on half, client on the other); data on %s"
      % (prod, cons, body, dur, warm, rounds, ncpu, fs))
for s in systems:
    print("  %-9s %s" % (s, labels.get(s) or "-"))
print("publishes/s: confirmed durable publishes; deliveries/s: copies received and acknowledged"
      " (fan-out x publishes)")
print()
if any(k[1] == "throughput" for k in runs):
    hdr = "| fan-out |" + "".join(" %s publishes/s | %s deliveries/s | %s CPU |" % (s, s, s) for s in systems)
    if len(systems) == 2:
        hdr += " floodgate / rabbitmq |"
    print(hdr)
    print("|---:|" + "---:|---:|---:|" * len(systems) + ("---:|" if len(systems) == 2 else ""))
    for f in fanouts:
        row = "| %d |" % f
        for s in systems:
            r = res.get((f, "throughput", s), {})
            row += " %s | %s | %s |" % (fmt(r.get("published_per_s"), "%.0f"), fmt(r.get("delivered_per_s"), "%.0f"),
                                        fmt(r.get("server_cpu_per_s"), "%.2f"))
        if len(systems) == 2:
            row += " %s |" % ratio(res.get((f, "throughput", "floodgate"), {}).get("delivered_per_s"),
                                   res.get((f, "throughput", "rabbitmq"), {}).get("delivered_per_s"))
        print(row)
    print()
if any(k[1] == "latency" for k in runs):
    print("Publish-to-receive latency at %s publishes/s, ms (every copy):" % rate)
    print()
    print("| fan-out | system | p50 | p99 | max | deliveries |")
    print("|---:|---|---:|---:|---:|---:|")
    for f in fanouts:
        for s in systems:
            r = res.get((f, "latency", s), {})
            print("| %d | %s | %s | %s | %s | %s |" % (f, s, fmt(r.get("p50_ms"), "%.2f"), fmt(r.get("p99_ms"), "%.2f"),
                                                   fmt(r.get("max_ms"), "%.2f"),
                                                   fmt(r.get("delivered_per_s") and r["delivered_per_s"] * float(dur), "%.0f")))
        if len(systems) == 2:
            a = res.get((f, "latency", "floodgate"), {}).get("p99_ms")
            b = res.get((f, "latency", "rabbitmq"), {}).get("p99_ms")
            print("| %d | p99 rabbitmq / floodgate | %s | | | |" % (f, ratio(a, b, True)))
    print()
errs = {"%s/%s/%s" % k: v["errors"] for k, v in res.items() if v["errors"]}
if errs:
    print("client-side errors (see runs/*.err): %s" % errs)
if failed:
    print("could not start or died: %s" % failed)
json.dump({"config": {"duration_s": float(dur), "warmup_s": float(warm), "rounds": int(rounds),
                      "producers": int(prod), "consumers_per_queue": int(cons), "body": int(body),
                      "latency_rate": float(rate), "cpus": int(ncpu), "fs": fs},
           "systems": {s: labels.get(s) for s in systems}, "failed": failed.split() if failed else [],
           "results": {"%s/%s/%s" % k: v for k, v in res.items()}}, open(summary, "w"), indent=2)
PY

if [ ${#FAILED[@]} -gt 0 ]; then
    say "topics bench: could not start or lost: ${FAILED[*]}"
    exit 1
fi
