#!/usr/bin/env bash
# bench/ratelimit.sh FLOODGATE_BIN
#
# The cost of a per-client-IP rate limit, floodgate against HAProxy and
# nginx, each in front of the same three floodgate echo backends:
#   floodgate        one token_bucket rule keyed by client_ip
#                    (bench/ratelimit-floodgate.yaml.in)
#   floodgate-redis  the same rule kept in Redis (store: redis, one round
#                    trip per request: the cost of centralized limiting)
#   floodgate-lease  the same in Redis with lease: 100 (units taken 100 at a
#                    time and spent locally)
#   floodgate-nolim  the same gateway without the rule (floodgate.yaml.in)
#   haproxy          stick-table per src, track-sc0, deny 429 over the rate
#                    (bench/ratelimit-haproxy.cfg.in)
#   nginx            limit_req_zone per $binary_remote_addr, limit_req nodelay
#                    (bench/ratelimit-nginx.conf.in)
# The limits (10,000,000 requests/s) are far above what wrk sends from its
# one address, so nothing is rejected and the runs measure what the check
# costs. Every proxy runs one thread pinned to core 0; wrk (-t2 -c64), the
# backends and redis-server (no persistence) share core 1. ROUNDS rounds, interleaved; each run starts
# the proxy fresh, warms it up for 1 s and measures for DURATION s. The
# table shows medians over the rounds and the ratios of floodgate with
# the rule to the others (target: the rule costs under 5%).
#
# Environment: BENCH_DURATION=5, BENCH_ROUNDS=3, BENCH_CONNS=64.
# Raw results go to bench/out/ratelimit/. Speed never fails the bench; it
# exits non-zero only if something cannot be started. Every process it
# starts is stopped by PID on the way out.
set -euo pipefail

if [ $# -ne 1 ] || [ ! -x "$1" ]; then
    echo "usage: $0 FLOODGATE_BIN" >&2
    exit 2
fi
FG=$(realpath "$1")
HERE=$(cd "$(dirname "$0")" && pwd)
OUT=$HERE/out/ratelimit
DURATION=${BENCH_DURATION:-5}
ROUNDS=${BENCH_ROUNDS:-3}
CONNS=${BENCH_CONNS:-64}
PROXIES="floodgate floodgate-redis floodgate-lease floodgate-nolim haproxy nginx"

say() { printf '%s\n' "$*" >&2; }
die() { say "ratelimit bench: $*"; exit 1; }
. "$(dirname "$0")/lib.sh"

for tool in haproxy nginx wrk curl python3 taskset redis-server redis-cli; do
    command -v "$tool" >/dev/null || die "'$tool' is missing (make bench-deps installs it)"
done
[ "$(nproc)" -ge 2 ] || die "needs at least 2 CPU cores (the proxy and the load run on different cores)"

ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
NOFILE=$(ulimit -n)
MAXCONN=$((NOFILE - 1000))
[ "$MAXCONN" -gt 50000 ] && MAXCONN=50000
NGINX_USER=""
[ "$(id -u)" = 0 ] && NGINX_USER="user root;"
PROXY_PIN="taskset -c 0"
CLIENT_PIN="taskset -c 1"

# ---- backends ----

rm -rf "$OUT"
mkdir -p "$OUT"
ports=$(free_ports 3)
B1=$(sed -n 1p <<<"$ports")
B2=$(sed -n 2p <<<"$ports")
B3=$(sed -n 3p <<<"$ports")
i=0
for p in $B1 $B2 $B3; do
    i=$((i + 1))
    start_bg $CLIENT_PIN "$FG" echo -l "127.0.0.1:$p" --name "b$i" >"$OUT/backend-$i.log" 2>&1
    wait_http "http://127.0.0.1:$p/health" "$BG_PID" "$OUT/backend-$i.log" ||
        die "backend floodgate echo on port $p did not start"
done

RP=$(free_ports 1)
start_bg $CLIENT_PIN redis-server --port "$RP" --bind 127.0.0.1 --save '' --appendonly no \
    --dir "$OUT" >"$OUT/redis.log" 2>&1
for _ in $(seq 100); do redis-cli -p "$RP" ping >/dev/null 2>&1 && break; sleep 0.05; done
redis-cli -p "$RP" ping >/dev/null 2>&1 || die "redis-server did not start"

# ---- proxies ----

# start_proxy NAME TAG: sets PX_PID, PX_PORT, PX_DIR.
start_proxy() {
    local name=$1 tag=$2 log ports admin
    PX_DIR=$OUT/$tag
    mkdir -p "$PX_DIR"
    ports=$(free_ports 2)
    PX_PORT=$(sed -n 1p <<<"$ports")
    admin=$(sed -n 2p <<<"$ports")
    log=$PX_DIR/log
    case $name in
    floodgate | floodgate-redis | floodgate-lease | floodgate-nolim)
        local tpl=$HERE/ratelimit-floodgate.yaml.in store=local lease=1
        [ "$name" = floodgate-nolim ] && tpl=$HERE/floodgate.yaml.in
        [ "$name" = floodgate-redis ] && store=redis
        [ "$name" = floodgate-lease ] && store=redis lease=100
        render "$tpl" "$PX_DIR/floodgate.yaml" PORT="$PX_PORT" THREADS=1 \
            ADMIN_PORT="$admin" MAXCONN="$MAXCONN" B1="$B1" B2="$B2" B3="$B3" \
            STORE="$store" REDIS_PORT="$RP" LEASE="$lease"
        start_bg $PROXY_PIN "$FG" gateway -c "$PX_DIR/floodgate.yaml" >"$log" 2>&1
        ;;
    haproxy)
        render "$HERE/ratelimit-haproxy.cfg.in" "$PX_DIR/haproxy.cfg" PORT="$PX_PORT" THREADS=1 \
            MAXCONN="$MAXCONN" B1="$B1" B2="$B2" B3="$B3"
        start_bg $PROXY_PIN haproxy -db -f "$PX_DIR/haproxy.cfg" >"$log" 2>&1
        ;;
    nginx)
        mkdir -p "$PX_DIR/tmp"
        render "$HERE/ratelimit-nginx.conf.in" "$PX_DIR/nginx.conf" USER="$NGINX_USER" WORKERS=1 \
            NOFILE="$NOFILE" DIR="$PX_DIR" MAXCONN="$MAXCONN" PORT="$PX_PORT" B1="$B1" B2="$B2" B3="$B3"
        start_bg $PROXY_PIN nginx -p "$PX_DIR/" -c "$PX_DIR/nginx.conf" -e "$PX_DIR/nginx-error.log" \
            -g 'daemon off;' >"$log" 2>&1
        log=$PX_DIR/nginx-error.log
        ;;
    esac
    PX_PID=$BG_PID
    wait_http "http://127.0.0.1:$PX_PORT/" "$PX_PID" "$log" || die "$name did not start (see $PX_DIR)"
}

# ---- run ----

total=$((ROUNDS * 6))
say "ratelimit bench: $total runs of ${DURATION}s (+1 s warm-up each), wrk -t2 -c$CONNS; raw results in $OUT"
printf 'round\tproxy\trps\tnon2xx\n' >"$OUT/runs.tsv"
n=0
for round in $(seq "$ROUNDS"); do
    for proxy in $PROXIES; do
        n=$((n + 1))
        start_proxy "$proxy" "r$round-$proxy"
        url="http://127.0.0.1:$PX_PORT/"
        $CLIENT_PIN wrk -t2 -c"$CONNS" -d1s "$url" >"$PX_DIR/warmup.txt" 2>&1 || true
        $CLIENT_PIN wrk -t2 -c"$CONNS" -d"${DURATION}s" --latency "$url" >"$PX_DIR/wrk.txt" 2>&1 || true
        stop_pid "$PX_PID"
        rps=$(awk '/^Requests\/sec:/ {print $2}' "$PX_DIR/wrk.txt")
        non2xx=$(awk '/Non-2xx or 3xx responses:/ {print $NF}' "$PX_DIR/wrk.txt")
        printf '%s\t%s\t%s\t%s\n' "$round" "$proxy" "${rps:-0}" "${non2xx:-0}" >>"$OUT/runs.tsv"
        say "$(printf '[%2d/%d] round %s  %-16s %10s req/s  non-2xx %s' "$n" "$total" "$round" "$proxy" \
            "${rps:-?}" "${non2xx:-0}")"
    done
done

HAPROXY_VERSION=$(haproxy -v 2>&1 | head -n1 | awk '{print "HAProxy " $3}') \
NGINX_VERSION=$(nginx -v 2>&1 | sed 's|.*nginx/|nginx |') \
python3 - "$OUT/runs.tsv" "$OUT/../ratelimit.json" "$CONNS" "$DURATION" "$ROUNDS" <<'EOF'
import csv, json, os, statistics, sys
runs = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
conns, dur, rounds = sys.argv[3], sys.argv[4], sys.argv[5]
order = ["floodgate", "floodgate-redis", "floodgate-lease", "floodgate-nolim", "haproxy", "nginx"]
label = {
    "floodgate": "floodgate + rate limit (token_bucket per client_ip)",
    "floodgate-redis": "floodgate + the same rule in Redis (a round trip per request)",
    "floodgate-lease": "floodgate + the same rule in Redis, lease: 100",
    "floodgate-nolim": "floodgate, no rate limit",
    "haproxy": "%s + stick-table per src" % os.environ["HAPROXY_VERSION"],
    "nginx": "%s + limit_req per address" % os.environ["NGINX_VERSION"],
}
med, allr, bad = {}, {}, {}
for p in order:
    r = [float(x["rps"]) for x in runs if x["proxy"] == p]
    allr[p] = r
    med[p] = statistics.median(r) if r else 0.0
    bad[p] = sum(int(x["non2xx"]) for x in runs if x["proxy"] == p)
print()
print("Rate-limit cost: 1 proxy thread pinned to core 0; wrk -t2 -c%s -d%ss and 3 floodgate echo"
      " backends on core 1; median of %s interleaved rounds" % (conns, dur, rounds))
print()
print("| proxy | req/s (median) | rounds | non-2xx |")
print("|---|---:|---|---:|")
for p in order:
    print("| %s | %s | %s | %d |" % (label[p], format(round(med[p]), ","),
          " / ".join(format(round(v), ",") for v in allr[p]), bad[p]))
print()
def ratio(a, b):
    return med[a] / med[b] if med[b] else float("nan")
rows = [
    ("floodgate with limit / floodgate without", ratio("floodgate", "floodgate-nolim")),
    ("floodgate with limit / haproxy with stick-table", ratio("floodgate", "haproxy")),
    ("floodgate with limit / nginx with limit_req", ratio("floodgate", "nginx")),
    ("floodgate, limit in Redis / floodgate without", ratio("floodgate-redis", "floodgate-nolim")),
    ("floodgate, limit in Redis with lease / floodgate without", ratio("floodgate-lease", "floodgate-nolim")),
]
print("| ratio | value |")
print("|---|---:|")
for name, v in rows:
    print("| %s | %.3f |" % (name, v))
cost = (1 - rows[0][1]) * 100
print()
print("cost of the rate-limit check in floodgate: %.1f%% of throughput (target: under 5%%): %s"
      % (cost, "met" if cost < 5 else "NOT met"))
if any(bad.values()):
    print("warning: some responses were not 2xx (a limit was hit, or errors); see runs.tsv")
json.dump({"conns": int(conns), "duration_s": int(dur), "rounds": int(rounds),
           "median_rps": med, "rps": allr, "non2xx": bad,
           "ratios": {n: v for n, v in rows}}, open(sys.argv[2], "w"), indent=2)
EOF
