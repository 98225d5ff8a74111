#!/usr/bin/env bash
# bench/gateway.sh FLOODGATE_BIN
# BASE_BIN=OLD_FLOODGATE_BIN bench/gateway.sh FLOODGATE_BIN
#
# floodgate gateway, HAProxy and nginx side by side, each in front of the
# same three backends, configured equivalently (bench/*.in), on loopback.
# With BASE_BIN, a second floodgate binary (an earlier build) runs as a
# fourth contestant, "floodgate-base", in the same rounds, so that a change
# is judged against its predecessor under the same load on the same machine.
#
# Settings: 64 and 1000 client connections (wrk -t2), in two modes:
#   pinned    proxy with one thread on core 0; wrk and backends on core 1
#   unpinned  proxy with one thread (worker) per core; nothing pinned
# and, for thread scaling, one setting per count in BENCH_THREADS (the
# proxy with N threads: floodgate threads, HAProxy nbthread, nginx
# worker_processes; on cores 0..N-1 with wrk and the backends on the other
# cores while N < cores, unpinned otherwise).
# Each setting runs ROUNDS rounds interleaved (floodgate, haproxy, nginx,
# then the next round starting one proxy later, ...); every run starts the
# proxy fresh, warms it up for 1 s and measures for DURATION s. The proxy's
# CPU time (user + system, all its threads and processes, from /proc) is
# read before and after the measured run and divided by the requests wrk
# completed: CPU per request shows the proxy's own cost even when wrk or
# the backends limit the requests per second. The tables show medians over
# the rounds. Then each proxy (pinned mode) holds IDLE_CONNS idle keep-alive
# client connections, and the memory each one costs is measured.
#
# Environment:
#   BASE_BIN=             an earlier floodgate binary to compare with (optional)
#   BENCH_DURATION=5      seconds per measured run
#   BENCH_ROUNDS=3        rounds per setting
#   BENCH_CONNS="64 1000" client connection counts
#   BENCH_MODES="pinned unpinned"
#   BENCH_THREADS=        thread counts for the scaling table, e.g. "1 2 4 8 16";
#                         default: 1 2 4 8 16 up to the core count on 4 cores or
#                         more, none on 2 cores (pinned and unpinned are the
#                         1- and 2-thread points there)
#   BENCH_THREADS_CONNS=1000 client connections in the thread-scaling settings
#   BENCH_IDLE_CONNS=10000 (0 skips the idle test)
#   BENCH_BACKEND=echo    echo: 3 x floodgate echo; nginx: 3 x static nginx
#
# Raw results go to bench/out/gateway/, the summary to bench/out/gateway.json.
# Speed never fails the bench; it exits non-zero only if something cannot
# be started. Every process it starts is stopped by PID on the way out.
set -euo pipefail

if [ $# -ne 1 ] || [ ! -x "$1" ]; then
    echo "usage: $0 FLOODGATE_BIN" >&2
    exit 2
fi
FG=$(realpath "$1")
HERE=$(cd "$(dirname "$0")" && pwd)
OUT=$HERE/out/gateway
DURATION=${BENCH_DURATION:-5}
ROUNDS=${BENCH_ROUNDS:-3}
CONNS=${BENCH_CONNS:-64 1000}
MODES=${BENCH_MODES:-pinned unpinned}
IDLE_CONNS=${BENCH_IDLE_CONNS:-10000}
BACKEND=${BENCH_BACKEND:-echo}
NCPU=$(nproc)
BASE=${BASE_BIN:-}
PROXIES="floodgate haproxy nginx"
if [ -n "$BASE" ]; then
    [ -x "$BASE" ] || { echo "$0: BASE_BIN '$BASE' is not an executable" >&2; exit 2; }
    BASE=$(realpath "$BASE")
    PROXIES="floodgate floodgate-base haproxy nginx"
fi
if [ -n "${BENCH_THREADS+x}" ]; then
    THREADS=$BENCH_THREADS
else
    THREADS=""
    if [ "$NCPU" -ge 4 ]; then
        for t in 1 2 4 8 16; do [ "$t" -le "$NCPU" ] && THREADS="$THREADS $t"; done
    fi
fi
THREADS_CONNS=${BENCH_THREADS_CONNS:-1000}
for t in $THREADS; do
    case $t in '' | *[!0-9]* | 0) echo "$0: BENCH_THREADS: '$t' is not a thread count" >&2; exit 2 ;; esac
done
CLK_TCK=$(getconf CLK_TCK)

say() { printf '%s\n' "$*" >&2; }
die() { say "gateway bench: $*"; exit 1; }
. "$(dirname "$0")/lib.sh"

for tool in haproxy nginx wrk curl python3 taskset ss; do
    command -v "$tool" >/dev/null || die "'$tool' is missing (make bench-deps installs it)"
done
case $BACKEND in echo | nginx) ;; *) die "BENCH_BACKEND must be echo or nginx" ;; esac
if [ "$NCPU" -lt 2 ]; then
    die "needs at least 2 CPU cores (pinned mode puts the proxy and the load on different cores)"
fi

# Many connections: raise the descriptor limit (to the hard limit, or
# beyond it where that is allowed).
ulimit -n 200000 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
NOFILE=$(ulimit -n)
# Connection cap for the proxies and backends, under the descriptor limit.
MAXCONN=$((NOFILE - 2000))
[ "$MAXCONN" -gt 50000 ] && MAXCONN=50000
if [ "$IDLE_CONNS" -gt $((MAXCONN - 1000)) ]; then
    IDLE_CONNS=$((MAXCONN - 1000))
    [ "$IDLE_CONNS" -lt 0 ] && IDLE_CONNS=0
    say "note: descriptor limit $NOFILE allows only $IDLE_CONNS idle connections"
fi
NGINX_USER=""
[ "$(id -u)" = 0 ] && NGINX_USER="user root;"

# ---- helpers ----

# Sum of a /proc/PID/status field (VmRSS, VmHWM) in KiB over a process
# and its descendants.
mem_sum() {
    local total=0 p v
    for p in $1 $(descendants "$1"); do
        v=$(awk -v k="$2:" '$1 == k {print $2}' "/proc/$p/status" 2>/dev/null || true)
        total=$((total + ${v:-0}))
    done
    echo "$total"
}

# ---- upstream connections opened ----
# Counted in the kernel: each passive TCP open on a backend port is a
# sock:inet_sock_set_state SYN_RECV -> ESTABLISHED event. Neutral to the
# proxy and exact. Without perf (or its rights), established connections
# to the backends are sampled with ss every 100 ms instead, which misses
# connections shorter than that: an approximation, marked "~".
UPCOUNT=ss
if command -v perf >/dev/null &&
    perf stat -a -x, -o /dev/null -e sock:inet_sock_set_state \
        --filter 'sport == 1 && oldstate == 3 && newstate == 1' -- true >/dev/null 2>&1; then
    UPCOUNT=kernel
fi

# counted_wrk SECONDS CONNS URL WRK_OUT COUNT_OUT: one wrk run (client
# pinned per mode); writes the count of upstream connections opened
# during it into COUNT_OUT.
counted_wrk() {
    local secs=$1 conns=$2 url=$3 wout=$4 cout=$5
    local wrk=($CLIENT_PIN wrk -t"$WRK_THREADS" -c"$conns" -d"${secs}s" --latency "$url")
    if [ $UPCOUNT = kernel ]; then
        local filter="(sport == $B1 || sport == $B2 || sport == $B3) && oldstate == 3 && newstate == 1"
        perf stat -a -x, -o "$cout.perf" -e sock:inet_sock_set_state --filter "$filter" \
            -- "${wrk[@]}" >"$wout" 2>&1 || true
        awk -F, '/inet_sock_set_state/ {print ($1 ~ /^[0-9]+$/) ? $1 : "na"}' "$cout.perf" >"$cout"
    else
        start_bg bash -c 'while :; do ss -tanH state established "( sport = :$1 or sport = :$2 or sport = :$3 )"; sleep 0.1; done' \
            _ "$B1" "$B2" "$B3" >"$cout.ss"
        local spid=$BG_PID
        "${wrk[@]}" >"$wout" 2>&1 || true
        stop_pid "$spid"
        awk '{print $3, $4}' "$cout.ss" | sort -u | wc -l >"$cout"
    fi
}

# Sum of floodgate's own upstream_connections_opened_total (a cross-check).
fg_opened() {
    curl -s -m 2 "http://127.0.0.1:$1/metrics" 2>/dev/null |
        awk '/^floodgate_gateway_upstream_connections_opened_total/ {s += $NF} END {print s + 0}'
}

# ---- backends ----

start_backends() {
    local mode=$1 i p dir ports
    ports=$(free_ports 3)
    B1=$(sed -n 1p <<<"$ports")
    B2=$(sed -n 2p <<<"$ports")
    B3=$(sed -n 3p <<<"$ports")
    BACKEND_PIDS=()
    i=0
    for p in $B1 $B2 $B3; do
        i=$((i + 1))
        dir=$OUT/backend-$mode-$i
        mkdir -p "$dir"
        if [ "$BACKEND" = echo ]; then
            start_bg $BACKEND_PIN "$FG" echo -l "127.0.0.1:$p" --name "b$i" -t "$BACKEND_THREADS" \
                >"$dir/log" 2>&1
            wait_http "http://127.0.0.1:$p/health" "$BG_PID" "$dir/log" ||
                die "backend floodgate echo on port $p did not start"
        else
            mkdir -p "$dir/tmp"
            render "$HERE/nginx-backend.conf.in" "$dir/nginx.conf" USER="$NGINX_USER" NOFILE="$NOFILE" \
                WORKERS="$BACKEND_THREADS" DIR="$dir" MAXCONN="$MAXCONN" PORT="$p" NAME="b$i"
            start_bg $BACKEND_PIN nginx -p "$dir/" -c "$dir/nginx.conf" -e "$dir/nginx-error.log" \
                -g 'daemon off;' >"$dir/log" 2>&1
            wait_http "http://127.0.0.1:$p/" "$BG_PID" "$dir/nginx-error.log" ||
                die "backend nginx on port $p did not start"
        fi
        BACKEND_PIDS+=("$BG_PID")
    done
}

stop_backends() {
    local p
    for p in "${BACKEND_PIDS[@]}"; do stop_pid "$p"; done
    BACKEND_PIDS=()
}

# ---- proxies ----

# start_proxy NAME MODE TAG: sets PX_PID, PX_PORT, PX_ADMIN, PX_DIR.
start_proxy() {
    local name=$1 mode=$2 tag=$3 threads log ports
    PX_DIR=$OUT/$tag
    mkdir -p "$PX_DIR"
    ports=$(free_ports 2)
    PX_PORT=$(sed -n 1p <<<"$ports")
    PX_ADMIN=$(sed -n 2p <<<"$ports")
    threads=$PROXY_THREADS
    log=$PX_DIR/log
    case $name in
    floodgate | floodgate-base)
        local bin=$FG
        [ "$name" = floodgate-base ] && bin=$BASE
        render "$HERE/floodgate.yaml.in" "$PX_DIR/floodgate.yaml" PORT="$PX_PORT" THREADS="$threads" \
            ADMIN_PORT="$PX_ADMIN" MAXCONN="$MAXCONN" B1="$B1" B2="$B2" B3="$B3"
        start_bg $PROXY_PIN "$bin" gateway -c "$PX_DIR/floodgate.yaml" >"$log" 2>&1
        ;;
    haproxy)
        render "$HERE/haproxy.cfg.in" "$PX_DIR/haproxy.cfg" PORT="$PX_PORT" THREADS="$threads" \
            MAXCONN="$MAXCONN" B1="$B1" B2="$B2" B3="$B3"
        start_bg $PROXY_PIN haproxy -db -f "$PX_DIR/haproxy.cfg" >"$log" 2>&1
        ;;
    nginx)
        local workers=$threads
        mkdir -p "$PX_DIR/tmp"
        render "$HERE/nginx.conf.in" "$PX_DIR/nginx.conf" USER="$NGINX_USER" WORKERS="$workers" \
            NOFILE="$NOFILE" DIR="$PX_DIR" MAXCONN="$MAXCONN" PORT="$PX_PORT" B1="$B1" B2="$B2" B3="$B3"
        start_bg $PROXY_PIN nginx -p "$PX_DIR/" -c "$PX_DIR/nginx.conf" -e "$PX_DIR/nginx-error.log" \
            -g 'daemon off;' >"$log" 2>&1
        log=$PX_DIR/nginx-error.log
        ;;
    esac
    PX_PID=$BG_PID
    wait_http "http://127.0.0.1:$PX_PORT/" "$PX_PID" "$log" || die "$name did not start (see $PX_DIR)"
}

# set_mode MODE: pinned, unpinned or tN (N proxy threads). Sets the
# proxy's thread count, the CPU pinning of the proxy, wrk and the
# backends, wrk's threads and each echo backend's threads.
set_mode() {
    PROXY_PIN=""
    CLIENT_PIN=""
    BACKEND_PIN=""
    WRK_THREADS=2
    BACKEND_THREADS=1
    case $1 in
    pinned)
        PROXY_THREADS=1
        PROXY_PIN="taskset -c 0"
        CLIENT_PIN="taskset -c 1"
        BACKEND_PIN="taskset -c 1"
        ;;
    unpinned) PROXY_THREADS=$NCPU ;;
    t*)
        # N threads on cores 0..N-1; wrk and the backends share the other
        # cores, and get threads enough to use them. At N >= cores nothing
        # is pinned and everything shares the machine (wrk with a thread
        # per 4 cores, each backend with one per 8).
        local n=${1#t} rest
        PROXY_THREADS=$n
        rest=$((NCPU - n))
        if [ "$rest" -ge 1 ]; then
            PROXY_PIN="taskset -c 0-$((n - 1))"
            CLIENT_PIN="taskset -c $n-$((NCPU - 1))"
            BACKEND_PIN=$CLIENT_PIN
            if [ "$rest" -gt 2 ]; then WRK_THREADS=$((rest / 2)); fi
            if [ "$rest" -ge 6 ]; then BACKEND_THREADS=$((rest / 6)); fi
        else
            if [ "$NCPU" -ge 8 ]; then WRK_THREADS=$((NCPU / 4)); fi
            if [ "$NCPU" -ge 16 ]; then BACKEND_THREADS=$((NCPU / 8)); fi
        fi
        ;;
    esac
}

# The proxies in the order of round R: each round starts one later, so
# that no proxy always follows the same one.
round_order() {
    local -a a
    read -ra a <<<"$PROXIES"
    local n=${#a[@]} i
    for ((i = 0; i < n; i++)); do echo "${a[$(((i + $1 - 1) % n))]}"; done
}

# ---- run ----

rm -rf "$OUT"
mkdir -p "$OUT"
HAPROXY_VERSION=$(haproxy -v 2>&1 | awk 'NR == 1 {print "HAProxy " $3}')
NGINX_VERSION=$(nginx -v 2>&1 | sed 's|.*nginx/|nginx |')
if [ "$BACKEND" = echo ]; then
    BACKEND_LABEL="3 x floodgate echo backends (1 thread each, short text body)"
else
    BACKEND_LABEL="3 x nginx static backends (1 worker each, short text body)"
fi
[ -n "$THREADS" ] && BACKEND_LABEL="$BACKEND_LABEL; in the thread settings 1 thread each per 6 cores left to the load"
if [ $UPCOUNT = kernel ]; then
    UPCOUNT_LABEL="TCP opens accepted by the backends during the run (kernel tracepoint)"
else
    UPCOUNT_LABEL="~ distinct connections seen by ss every 100 ms (approximate; perf unavailable)"
fi

ALL_MODES=$MODES
for t in $THREADS; do ALL_MODES="$ALL_MODES t$t"; done
# conns_of MODE: the client connection counts of a mode's settings.
conns_of() {
    case $1 in t*) echo "$THREADS_CONNS" ;; *) echo "$CONNS" ;; esac
}
nproxies=$(wc -w <<<"$PROXIES")
total=0
for mode in $ALL_MODES; do
    total=$((total + $(wc -w <<<"$(conns_of "$mode")") * ROUNDS * nproxies))
done
say "gateway bench: $total runs of ${DURATION}s (+1 s warm-up each), then $IDLE_CONNS idle connections per proxy"
say "backends: $BACKEND_LABEL; raw results in $OUT"

printf 'mode\tconns\tround\tproxy\twrk\trss_kib\thwm_kib\tup_conns\tup_conns_warmup\tfg_opened\tcpu_ticks\n' \
    >"$OUT/runs.tsv"
printf 'proxy\tn\tok\tfailed\trss0_kib\trss1_kib\testablished\n' >"$OUT/idle.tsv"

n=0
for mode in $ALL_MODES; do
    set_mode "$mode"
    start_backends "$mode"
    for conns in $(conns_of "$mode"); do
        for round in $(seq "$ROUNDS"); do
            for proxy in $(round_order "$round"); do
                n=$((n + 1))
                tag="$mode-c$conns-r$round-$proxy"
                start_proxy "$proxy" "$mode" "$tag"
                url="http://127.0.0.1:$PX_PORT/"
                counted_wrk 1 "$conns" "$url" "$PX_DIR/warmup.txt" "$PX_DIR/upconns-warmup"
                before=0
                case $proxy in floodgate*) before=$(fg_opened "$PX_ADMIN") ;; esac
                # RSS while the connections are still open: 1 s before the end.
                start_bg bash -c 'sleep "$1"' _ "$((DURATION - 1))"
                sampler=$BG_PID
                ( while alive "$sampler"; do sleep 0.05; done
                  mem_sum "$PX_PID" VmRSS >"$PX_DIR/rss" ) &
                rsswatch=$!
                STARTED+=("$rsswatch")
                cpu0=$(cpu_ticks "$PX_PID")
                counted_wrk "$DURATION" "$conns" "$url" "$PX_DIR/wrk.txt" "$PX_DIR/upconns"
                cpu=$(( $(cpu_ticks "$PX_PID") - cpu0 ))
                forget_pid "$sampler"
                forget_pid "$rsswatch"
                hwm=$(mem_sum "$PX_PID" VmHWM)
                opened=-
                case $proxy in floodgate*) opened=$(( $(fg_opened "$PX_ADMIN") - before )) ;; esac
                stop_pid "$PX_PID"
                rss=$(cat "$PX_DIR/rss" 2>/dev/null || echo -)
                up=$(cat "$PX_DIR/upconns" 2>/dev/null || echo -)
                upw=$(cat "$PX_DIR/upconns-warmup" 2>/dev/null || echo -)
                printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$mode" "$conns" "$round" "$proxy" \
                    "$tag/wrk.txt" "$rss" "$hwm" "${up:--}" "${upw:--}" "$opened" "$cpu" >>"$OUT/runs.tsv"
                rps=$(awk '/^Requests\/sec:/ {printf "%\047.0f", $2}' "$PX_DIR/wrk.txt")
                cpr=$(awk -v t="$cpu" -v hz="$CLK_TCK" '/ requests in / {if ($1 > 0) printf "%.1f", t / hz / $1 * 1e6}' \
                    "$PX_DIR/wrk.txt")
                say "$(printf '[%2d/%d] %-8s %4s conns  round %s  %-14s %9s req/s  %6s us CPU/req  upstream conns %s (+%s warm-up)' \
                    "$n" "$total" "$mode" "$conns" "$round" "$proxy" "${rps:-?}" "${cpr:-?}" "${up:--}" "${upw:--}")"
            done
        done
    done

    # Idle keep-alive connections, with the pinned configurations.
    if [ "$mode" = pinned ] && [ "$IDLE_CONNS" -gt 0 ]; then
        for proxy in $PROXIES; do
            start_proxy "$proxy" pinned "idle-$proxy"
            $CLIENT_PIN wrk -t2 -c64 -d1s "http://127.0.0.1:$PX_PORT/" >"$PX_DIR/warmup.txt" 2>&1 || true
            sleep 1
            rss0=$(mem_sum "$PX_PID" VmRSS)
            start_bg $CLIENT_PIN python3 "$HERE/idle_conns.py" 127.0.0.1 "$PX_PORT" "$IDLE_CONNS" 60 \
                >"$PX_DIR/idle.out" 2>&1
            client=$BG_PID
            for i in $(seq 700); do
                grep -q '^ready' "$PX_DIR/idle.out" 2>/dev/null && break
                alive "$client" || break
                sleep 0.1
            done
            sleep 1
            rss1=$(mem_sum "$PX_PID" VmRSS)
            est=$(ss -tanH state established "( sport = :$PX_PORT )" | wc -l)
            read -r _ ok failed < <(grep '^ready' "$PX_DIR/idle.out" || echo "ready 0 $IDLE_CONNS")
            stop_pid "$client"
            stop_pid "$PX_PID"
            printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$proxy" "$IDLE_CONNS" "$ok" "$failed" "$rss0" "$rss1" \
                "$est" >>"$OUT/idle.tsv"
            say "$(printf '[idle]  %-9s %s/%s held, RSS %s -> %s KiB' "$proxy" "$ok" "$IDLE_CONNS" "$rss0" "$rss1")"
        done
    fi
    stop_backends
done

MODE_LABEL_PINNED="1 thread pinned" MODE_LABEL_UNPINNED="$NCPU threads unpinned" \
    BACKEND_LABEL="$BACKEND_LABEL" UPCOUNT="$UPCOUNT" UPCOUNT_LABEL="$UPCOUNT_LABEL" \
    HAPROXY_VERSION="$HAPROXY_VERSION" NGINX_VERSION="$NGINX_VERSION" \
    DURATION="$DURATION" ROUNDS="$ROUNDS" NCPU="$NCPU" IDLE_CONNS="$IDLE_CONNS" BACKEND="$BACKEND" \
    MAXCONN="$MAXCONN" PROXIES="$PROXIES" BASE="$BASE" CLK_TCK="$CLK_TCK" \
    python3 - "$OUT/meta.json" <<'EOF'
import json, os, platform, sys
e = os.environ
json.dump({
    "proxies": e["PROXIES"].split(), "base_bin": e["BASE"] or None, "clk_tck": int(e["CLK_TCK"]),
    "backend": e["BACKEND"], "backend_label": e["BACKEND_LABEL"],
    "duration_s": int(e["DURATION"]), "rounds": int(e["ROUNDS"]), "cpus": int(e["NCPU"]),
    "kernel": "Linux " + platform.release(),
    "haproxy_version": e["HAPROXY_VERSION"], "nginx_version": e["NGINX_VERSION"],
    "mode_labels": {"pinned": e["MODE_LABEL_PINNED"], "unpinned": e["MODE_LABEL_UNPINNED"]},
    "upstream_count_method": e["UPCOUNT"], "upstream_count_label": e["UPCOUNT_LABEL"],
    "idle_conns": int(e["IDLE_CONNS"]), "maxconn": int(e["MAXCONN"]),
    "idle_label": e["IDLE_CONNS"] + " connections, one request each, pinned mode (1 thread);"
                  " (RSS with them - RSS before) / connections",
}, open(sys.argv[1], "w"), indent=2)
EOF

python3 "$HERE/gateway_report.py" "$OUT"
