#!/usr/bin/env bash
# bench/locks.sh FLOODGATE_BIN [N]: lock-prefixed instructions the gateway
# executes per request, counted, not sampled.
#
# A locked read-modify-write (atomic add, exchange, compare-and-swap) costs
# tens of cycles alone and far more when other cores touch the same line,
# so their number per request says how a proxy will scale with threads
# better than a 2-core throughput run can. This starts one `floodgate echo`
# backend and a one-thread gateway in front of it, sends two warm-up
# requests (the upstream connection gets pooled), attaches gdb with a
# breakpoint on every lock-prefixed instruction of the binary, sends N
# keep-alive requests (default 200) on one connection, and prints the hits
# per source line and per request. Lines hit a number of times unrelated
# to N come from timers (the main thread's tick, health checks). Needs gdb,
# objdump, curl and a binary with symbols (RelWithDebInfo). Everything it
# starts is stopped by PID.
set -euo pipefail

if [ $# -lt 1 ] || [ ! -x "$1" ]; then
    echo "usage: $0 FLOODGATE_BIN [N]" >&2
    exit 2
fi
FG=$(realpath "$1")
N=${2:-200}
for t in gdb objdump curl python3; do
    command -v $t >/dev/null || { echo "$0: needs $t" >&2; exit 2; }
done
D=$(mktemp -d "${TMPDIR:-/tmp}/floodgate-locks.XXXXXX")
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
BP=$(free_port)
GP=$(free_port)
AP=$(free_port)

# Offsets of every lock-prefixed instruction (objdump addresses of a PIE
# are relative to its load base).
objdump -d --no-show-raw-insn "$FG" | awk '/\tlock /{sub(":", "", $1); print $1}' >"$D/locks"

"$FG" echo -l "127.0.0.1:$BP" --name b1 >"$D/echo.log" 2>&1 &
PIDS+=($!)
cat >"$D/gw.yaml" <<EOF
listen: "127.0.0.1:$GP"
threads: 1
admin: "127.0.0.1:$AP"
access_log: off
log_level: warn
upstream:
  keepalive: 16
services:
  - name: b
    servers: [127.0.0.1:$BP]
routes:
  - prefix: /
    service: b
EOF
"$FG" gateway -c "$D/gw.yaml" >"$D/gw.log" 2>&1 &
GW_PID=$!
PIDS+=($GW_PID)
for _ in $(seq 50); do
    curl -s -o /dev/null "http://127.0.0.1:$GP/warm" && break
    sleep 0.1
done
curl -s "http://127.0.0.1:$GP/warm" "http://127.0.0.1:$GP/warm" >/dev/null

BASE=$(awk -v b="$FG" '$6 == b && $3 == "00000000" {split($1, r, "-"); print r[1]; exit}' \
    "/proc/$GW_PID/maps")
NB=$(wc -l <"$D/locks")
{
    echo "set pagination off"
    echo "set confirm off"
    while read -r a; do printf 'break *0x%x\n' $((0x$BASE + 0x$a)); done <"$D/locks"
    echo "commands 1-$NB"
    echo "silent"
    echo "continue"
    echo "end"
    echo "continue"
    echo "info breakpoints"
    echo "detach"
} >"$D/gdb.cmds"
gdb -q -batch -p "$GW_PID" -x "$D/gdb.cmds" >"$D/gdb.out" 2>&1 &
GDB_PID=$!
# Wait until gdb runs the inferior again (every breakpoint set).
for _ in $(seq 300); do
    grep -q "^Breakpoint $NB at" "$D/gdb.out" 2>/dev/null && break
    sleep 0.1
done
sleep 1
URLS=()
for _ in $(seq "$N"); do URLS+=("http://127.0.0.1:$GP/r"); done
curl -s "${URLS[@]}" >/dev/null
sleep 1
kill -INT $GDB_PID
wait $GDB_PID || true

# "N breakpoint keep y 0x... in FUNC at FILE:LINE" then "breakpoint already hit K times".
awk '/^[0-9]+ +breakpoint/ {loc = $NF; fn = ""; for (i = 1; i < NF; i++) if ($i == "in") fn = $(i + 1)}
     /breakpoint already hit/ {hits[fn " " loc] += $4}
     END {for (k in hits) print hits[k], k}' "$D/gdb.out" | sort -k3 >"$D/hits"
sed "s|$(dirname "$(dirname "$FG")")/||" "$D/hits"
awk -v n="$N" '{s += $1} END {printf "%d lock sites in the binary; %d hits for %d requests: %.2f per request\n", \
    '"$NB"', s, n, s / n}' "$D/hits"
rm -rf "$D"
