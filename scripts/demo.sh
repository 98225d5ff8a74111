#!/usr/bin/env bash
# scripts/demo.sh FLOODGATE_BIN: the gateway on its embedded defaults, in
# about half a minute. Starts three `floodgate echo` backends on
# 127.0.0.1:9001..9003 and `floodgate gateway` with no config (0.0.0.0:8080,
# admin and /metrics on 127.0.0.1:9901), sends traffic, shows how it was
# spread and what /metrics says, kills one backend to show a health check
# taking it out and putting it back, then stops everything it started.
set -euo pipefail

if [ $# -ne 1 ] || [ ! -x "$1" ]; then
    echo "usage: $0 FLOODGATE_BIN" >&2
    exit 2
fi
FG=$(realpath "$1")
GW=http://127.0.0.1:8080
ADMIN=http://127.0.0.1:9901
BACKENDS=(127.0.0.1:9001 127.0.0.1:9002 127.0.0.1:9003)
VICTIM=1 # index in BACKENDS of the backend that gets killed
LOGS=$(mktemp -d "${TMPDIR:-/tmp}/floodgate-demo.XXXXXX")
T0=$(date +%s.%N)

if [ -t 1 ]; then B=$'\e[1m' D=$'\e[2m' R=$'\e[0m'; else B="" D="" R=""; fi
step() { printf '\n%s==> %s%s\n' "$B" "$*" "$R"; }
info() { printf '    %s\n' "$*"; }
elapsed() { awk -v a="$T0" -v b="$(date +%s.%N)" 'BEGIN {printf "%5.1fs", b - a}'; }
event() { printf '    %s[%s]%s %s\n' "$D" "$(elapsed)" "$R" "$*"; }
die() { printf '\n%sdemo: %s%s\n' "$B" "$*" "$R" >&2; exit 1; }

# ---- traffic ----
# The load generator: floodgate flood, 16 keep-alive connections spread over
# 254 client addresses (127.0.0.1-254), as a crowd of users would be.
load() {
    "$FG" flood -t2 -c16 -d"${1}s" --sources 127.0.0.1-127.0.0.254 "$GW/" \
        >"$LOGS/load.txt" 2>"$LOGS/load.err" || true
}

# ---- processes ----
PIDS=() # everything started here, stopped by PID on exit

cleanup() {
    local rc=$? p i
    trap - EXIT INT TERM
    for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
        p=${PIDS[$i]}
        pkill -TERM -P "$p" 2>/dev/null || true # children of a backgrounded function
        kill -TERM "$p" 2>/dev/null || true
    done
    for p in "${PIDS[@]+"${PIDS[@]}"}"; do
        for i in $(seq 30); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$p" 2>/dev/null || true
        wait "$p" 2>/dev/null || true
    done
    if [ $rc -eq 0 ] || [ -z "$(ls -A "$LOGS")" ]; then rm -rf "$LOGS"; else echo "logs kept in $LOGS" >&2; fi
    exit $rc
}
trap cleanup EXIT
trap 'echo; echo "interrupted"; exit 130' INT TERM

forget() { # PID: wait for a process that ends by itself and drop it from PIDS
    wait "$1" 2>/dev/null || true
    local keep=() p
    for p in "${PIDS[@]}"; do [ "$p" != "$1" ] && keep+=("$p"); done
    PIDS=("${keep[@]+"${keep[@]}"}")
}

start_backend() { # index
    "$FG" echo -l "${BACKENDS[$1]}" >>"$LOGS/echo-$1.log" 2>&1 &
    BPID[$1]=$!
    PIDS+=($!)
}

# port_free HOST PORT: true when nothing is bound there (as a server would bind).
port_free() {
    python3 -c '
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    s.bind((sys.argv[1], int(sys.argv[2])))
except OSError:
    sys.exit(1)' "$1" "$2"
}

wait_200() { # URL, up to 5 s
    local i
    for i in $(seq 50); do
        [ "$(curl -s -o /dev/null -m 1 -w '%{http_code}' "$1" 2>/dev/null)" = 200 ] && return 0
        sleep 0.1
    done
    return 1
}

# ---- reading the gateway ----
metrics() { curl -s -m 2 "$ADMIN/metrics"; }

# Requests per server so far (all status classes), "ADDR COUNT" lines.
per_server() {
    metrics | awk '/^floodgate_gateway_server_requests_total\{/ {
        match($0, /server="[^"]*"/); s = substr($0, RSTART + 8, RLENGTH - 9); n[s] += $NF
    } END { for (s in n) print s, n[s] }' | sort
}

# Sum of every sample of a metric, optionally only those whose line matches a pattern.
metric_sum() {
    metrics | awk -v m="$1" -v pat="${2:-}" 'index($0, m) == 1 && (pat == "" || index($0, pat)) {s += $NF} END {print s + 0}'
}

# State of one server ("up", "down", ...) from the admin API.
server_state() {
    curl -s -m 2 "$ADMIN/services/echo/servers/$1" | python3 -c '
import json, sys
try:
    print(json.load(sys.stdin).get("state", "?"))
except Exception:
    print("?")'
}

explain() {
    case $1 in
    ejected)
        if [ "$2" = up ]; then
            echo " (its health checks pass again; the 10 s passive ejection has not run out yet)"
        else
            echo " (passive check: 5 requests in a row failed; left out for 10 s)"
        fi ;;
    down) echo " (active check: /health failed 3 times in a row)" ;;
    up) echo " (back in rotation)" ;;
    esac
}

# watch_state FROM UNTIL TENTHS: prints each change of the victim's state,
# starting from FROM, until it is UNTIL or TENTHS tenths of a second pass.
watch_state() {
    local last=$1 st i
    shift
    for i in $(seq "$2"); do
        st=$(server_state "$victim")
        if [ "$st" != "$last" ]; then
            event "the gateway reports $victim: ${B}${st}${R}$(explain "$st" "$1")"
            last=$st
        fi
        [ "$st" = "$1" ] && return 0
        sleep 0.1
    done
}

# spread_table BEFORE AFTER: requests per server between two per_server snapshots.
spread_table() {
    join -a2 -e 0 -o 0,1.2,2.2 <(echo "$1") <(echo "$2") | awk -v d="$D" -v r="$R" '
        { srv[NR] = $1; n[NR] = $3 - $2; total += n[NR] }
        END {
            printf "    %-16s %10s %7s\n", "server", "requests", "share"
            for (i = 1; i <= NR; i++) {
                p = total ? 100 * n[i] / total : 0
                bar = ""; for (j = 0; j < p / 2.5; j++) bar = bar "#"
                printf "    %-16s %10d %6.1f%%  %s%s%s\n", srv[i], n[i], p, d, bar, r
            }
            printf "    %-16s %10d\n", "total", total
        }'
}

# ---- 1. start ----
for port in 8080; do
    port_free 0.0.0.0 $port || die "port $port is already in use (the embedded default listens on 0.0.0.0:8080).
    Stop whatever holds it (ss -ltnp 'sport = :$port' shows it) and run the demo again."
done
port_free 127.0.0.1 9901 || die "port 9901 is already in use (the embedded default's admin API and /metrics listen there)."
for b in "${BACKENDS[@]}"; do
    port_free 127.0.0.1 "${b##*:}" || die "port ${b##*:} is already in use (the embedded default's backends are 127.0.0.1:9001..9003)."
done

step "Starting 3 backends: floodgate echo on ${BACKENDS[*]}"
for i in 0 1 2; do start_backend $i; done
for b in "${BACKENDS[@]}"; do wait_200 "http://$b/health" || die "backend $b did not start (see $LOGS)"; done
info "each answers \"<its address> <method> <path>\" to any request"

step "Starting floodgate gateway with no config file: the embedded default"
"$FG" gateway --print-default | sed -n '/^[^#]/p' | sed "s/^/    $D/; s/\$/$R/"
"$FG" gateway >"$LOGS/gateway.log" 2>&1 &
GPID=$!
PIDS+=($GPID)
wait_200 "$GW/" || { cat "$LOGS/gateway.log" >&2; die "the gateway did not become ready"; }
wait_200 "$ADMIN/metrics" || die "the gateway's admin API did not come up on 127.0.0.1:9901"
event "ready: $(sed -n 's/.*\] //; /gateway listening/p' "$LOGS/gateway.log")"
info "one request through it:  curl -si $GW/hello"
curl -si "$GW/hello" | tr -d '\r' | sed "s/^/      /"

# ---- 2. traffic ----
step "Sending traffic for 5 s (floodgate flood, 16 connections from 254 client addresses)"
before=$(per_server)
load 5
after=$(per_server)
if [ -s "$LOGS/load.txt" ]; then
    info "flood's summary:"
    sed 's/^/    /' "$LOGS/load.txt"
fi
info "how the gateway spread them (round robin), from $ADMIN/metrics:"
spread_table "$before" "$after"

step "A few lines of $ADMIN/metrics"
metrics | grep -E '^floodgate_gateway_(requests_total\{[^}]*code_class="(2xx|5xx)"|upstream_connections_(opened|reused)_total|active_connections|connections_accepted_total|request_duration_seconds_(sum|count)\{|server_up)' |
    sed "s/^/    /"
opened=$(metric_sum floodgate_gateway_upstream_connections_opened_total)
reused=$(metric_sum floodgate_gateway_upstream_connections_reused_total)
count=$(metric_sum 'floodgate_gateway_request_duration_seconds_count{')
sum=$(metric_sum 'floodgate_gateway_request_duration_seconds_sum{')
awk -v o="$opened" -v r="$reused" -v c="$count" -v s="$sum" 'BEGIN {
    if (o + r) printf "    -> %d upstream connections carried %d requests: %.2f%% reused a pooled connection\n", o, o + r, 100 * r / (o + r)
    if (c) printf "    -> mean time in the gateway: %.0f us per request\n", 1e6 * s / c
}'

# ---- 3. a health event ----
victim=${BACKENDS[$VICTIM]}
step "Health checks: kill -9 the backend on $victim while traffic flows"
load 9 &
LPID=$!
PIDS+=($LPID)
sleep 1
s0=$(per_server)
fail0=$(metric_sum 'floodgate_gateway_requests_total{' 'code_class="5xx"')
tries0=$(metric_sum floodgate_gateway_server_failures_total "$victim")
kill -KILL "${BPID[$VICTIM]}"
forget "${BPID[$VICTIM]}"
event "killed $victim (pid ${BPID[$VICTIM]})"
watch_state up down 60
grep -E "is (DOWN|UP)|eject" "$LOGS/gateway.log" | sed 's/^[^ ]* //' | tail -n 2 | while read -r line; do event "gateway log: $line"; done
s2=$(per_server)
sleep 3
s3=$(per_server)
event "traffic over the next 3 s, with $victim out:"
spread_table "$s2" "$s3"
fail1=$(metric_sum 'floodgate_gateway_requests_total{' 'code_class="5xx"')
tries1=$(metric_sum floodgate_gateway_server_failures_total "$victim")
event "attempts that failed on $victim: $((tries1 - tries0)); requests answered 5xx: $((fail1 - fail0))"
[ $((fail1 - fail0)) -eq 0 ] && info "         (a request that fails before anything was sent back is retried on another server)"
forget "$LPID"

start_backend "$VICTIM"
wait_200 "http://$victim/health" || die "could not restart $victim"
event "restarted $victim"
watch_state "$(server_state "$victim")" up 80
grep -E "is UP" "$LOGS/gateway.log" | sed 's/^[^ ]* //' | tail -n 1 | while read -r line; do event "gateway log: $line"; done
s4=$(per_server)
load 2
s5=$(per_server)
event "traffic over 2 s with all three back:"
spread_table "$s4" "$s5"

# ---- 4. stop ----
step "Stopping everything this demo started"
kill -TERM "$GPID" 2>/dev/null || true
for i in $(seq 50); do kill -0 "$GPID" 2>/dev/null || break; sleep 0.1; done
event "gateway: $(sed -n 's/.*\] //; /stopping\|stopped/p' "$LOGS/gateway.log" | tail -n 1)"

cat <<EOF

${B}What you just saw${R}
  - floodgate gateway ran with no config file: its embedded default listens on :8080,
    balances round robin over 127.0.0.1:9001..9003 and checks each one's /health every second.
  - Traffic was spread evenly over the three backends, over a few pooled keep-alive
    upstream connections reused for almost every request.
  - /metrics on 127.0.0.1:9901 exposes it all in Prometheus format (per-server requests,
    upstream connections opened and reused, latency histograms, server_up).
  - A backend killed with SIGKILL was taken out of rotation (passive ejection on the failed
    requests, then the active health check marking it down) while the other two kept
    serving; restarted, it passed its health checks and got its share again.
Try it yourself: ${FG} echo -l 9001 & ... ; ${FG} gateway ; curl -s $ADMIN/services
EOF
