#!/usr/bin/env bash
# bench/flood.sh FLOODGATE_BIN
#
# floodgate flood against wrk: the maximum request rate each load
# generator drives through the same static nginx backend, with the same
# threads and connections, closed loop (as fast as it goes).
#
# nginx runs one worker per half of the cores, pinned to those cores; the
# load generator runs pinned to the other half, with one thread per core
# there. Runs are interleaved (wrk, flood, wrk, flood, ...) for ROUNDS
# rounds of DURATION seconds, after one warm-up run each; the row prints
# the medians and the ratio flood/wrk (goal: at least 0.90).
#
# Environment:
#   BENCH_DURATION=5     seconds per run
#   BENCH_ROUNDS=3       rounds
#   BENCH_FLOOD_CONNS=64 connections
#
# Raw outputs go to bench/out/flood/, the row to bench/out/flood.json.
# Speed never fails the bench; it exits non-zero only if something cannot
# be started. nginx is stopped by PID on the way out.
set -euo pipefail

if [ $# -ne 1 ] || [ ! -x "$1" ]; then
    echo "usage: $0 FLOODGATE_BIN" >&2
    exit 2
fi
FG=$(realpath "$1")
HERE=$(cd "$(dirname "$0")" && pwd)
OUT=$HERE/out/flood
DURATION=${BENCH_DURATION:-5}
ROUNDS=${BENCH_ROUNDS:-3}
CONNS=${BENCH_FLOOD_CONNS:-64}
NCPU=$(nproc)

say() { printf '%s\n' "$*" >&2; }
die() { say "flood bench: $*"; exit 1; }

for tool in nginx wrk python3 taskset; do
    command -v "$tool" >/dev/null || die "'$tool' is missing (make bench-deps installs it)"
done
[ "$NCPU" -ge 2 ] || die "needs at least 2 CPU cores (nginx and the load generator on different cores)"

HALF=$((NCPU / 2))
GEN_THREADS=$((NCPU - HALF))
SRV_CPUS="0-$((HALF - 1))"
GEN_CPUS="$HALF-$((NCPU - 1))"
[ "$GEN_THREADS" -le "$CONNS" ] || GEN_THREADS=$CONNS
ulimit -n 65536 2>/dev/null || true

rm -rf "$OUT"
mkdir -p "$OUT/nginx/tmp"

NGINX_PID=""
cleanup() {
    if [ -n "$NGINX_PID" ]; then
        kill -TERM "$NGINX_PID" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$NGINX_PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$NGINX_PID" 2>/dev/null || true
    fi
}
trap cleanup EXIT

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
USER_LINE=""
[ "$(id -u)" = 0 ] && USER_LINE="user root;"
cat >"$OUT/nginx/nginx.conf" <<EOF
$USER_LINE
daemon off;
master_process on;
worker_processes $HALF;
worker_cpu_affinity auto;
worker_rlimit_nofile 65536;
pid $OUT/nginx/nginx.pid;
error_log $OUT/nginx/error.log warn;
events { worker_connections 16384; }
http {
    access_log off;
    server_tokens off;
    keepalive_timeout 60s;
    keepalive_requests 100000000;
    client_body_temp_path $OUT/nginx/tmp/body;
    proxy_temp_path $OUT/nginx/tmp/proxy;
    fastcgi_temp_path $OUT/nginx/tmp/fastcgi;
    uwsgi_temp_path $OUT/nginx/tmp/uwsgi;
    scgi_temp_path $OUT/nginx/tmp/scgi;
    server {
        listen 127.0.0.1:$PORT backlog=4096;
        location / {
            default_type text/plain;
            return 200 "flood bench static body\n";
        }
    }
}
EOF
taskset -c "$SRV_CPUS" nginx -c "$OUT/nginx/nginx.conf" -p "$OUT/nginx" >"$OUT/nginx/stdout" 2>&1 &
NGINX_PID=$!
URL=http://127.0.0.1:$PORT/
for _ in $(seq 100); do
    python3 -c 'import socket,sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1)' "$PORT" 2>/dev/null && break
    kill -0 "$NGINX_PID" 2>/dev/null || die "nginx exited: $(cat "$OUT/nginx/error.log" "$OUT/nginx/stdout" 2>/dev/null)"
    sleep 0.1
done

# run_wrk SECONDS OUTFILE / run_flood SECONDS OUTFILE: print requests/s.
run_wrk() {
    taskset -c "$GEN_CPUS" wrk -t"$GEN_THREADS" -c"$CONNS" -d"${1}s" "$URL" >"$2" 2>&1 || true
    awk '/^Requests\/sec:/ {print $2}' "$2"
}
run_flood() {
    taskset -c "$GEN_CPUS" "$FG" flood -t"$GEN_THREADS" -c"$CONNS" -d"${1}s" "$URL" >"$2" 2>&1 || true
    awk '/^Requests\/sec:/ {print $2}' "$2"
}

say "nginx: $HALF worker(s) on cpus $SRV_CPUS; load: $GEN_THREADS thread(s) on cpus $GEN_CPUS, $CONNS connections"
run_wrk 1 "$OUT/warmup-wrk.txt" >/dev/null
run_flood 1 "$OUT/warmup-flood.txt" >/dev/null
WRK=()
FLOOD=()
for r in $(seq "$ROUNDS"); do
    w=$(run_wrk "$DURATION" "$OUT/wrk-$r.txt")
    f=$(run_flood "$DURATION" "$OUT/flood-$r.txt")
    [ -n "$w" ] || die "wrk printed no rate (see $OUT/wrk-$r.txt)"
    [ -n "$f" ] || die "flood printed no rate (see $OUT/flood-$r.txt)"
    say "  round $r: wrk $w req/s, flood $f req/s"
    WRK+=("$w")
    FLOOD+=("$f")
done

python3 - "$OUT/../flood.json" "$GEN_THREADS" "$CONNS" "$DURATION" "${WRK[*]}" "${FLOOD[*]}" <<'EOF'
import json, statistics, sys
out, t, c, d, wrk, flood = sys.argv[1:]
wrk = [float(x) for x in wrk.split()]
flood = [float(x) for x in flood.split()]
mw, mf = statistics.median(wrk), statistics.median(flood)
ratio = mf / mw if mw else 0.0
print()
print(f"{'load generator vs nginx':<28} {'threads':>7} {'conns':>6} {'wrk req/s':>12} {'flood req/s':>12} {'flood/wrk':>10}")
print(f"{'max rate, closed loop':<28} {t:>7} {c:>6} {mw:>12.0f} {mf:>12.0f} {ratio:>9.2f}x"
      f"   {'ok' if ratio >= 0.9 else 'BELOW 0.90'}")
with open(out, "w") as f:
    json.dump({"threads": int(t), "connections": int(c), "duration_s": int(d), "wrk_rps": wrk,
               "flood_rps": flood, "wrk_median": mw, "flood_median": mf, "ratio": ratio}, f, indent=2)
EOF
