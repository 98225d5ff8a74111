# Shared helpers of the bench scripts: processes started in the background
# and stopped by PID (children included), free ports, config templates,
# readiness. Sourced after the script defines say().

STARTED=()   # PIDs this script started and has not stopped yet

# Runs "$@" in the background and records its PID in BG_PID and STARTED.
start_bg() {
    "$@" &
    BG_PID=$!
    STARTED+=("$BG_PID")
}

descendants() {
    local p
    for p in $(pgrep -P "$1" 2>/dev/null || true); do
        echo "$p"
        descendants "$p"
    done
}

alive() {
    local st
    st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1) || return 1
    [ -n "$st" ] && [ "$st" != Z ]
}

# Stops a process started by start_bg, and its children (nginx workers):
# SIGTERM, up to 5 s, then SIGKILL.
stop_pid() {
    local pid=$1 all p i left
    all="$pid $(descendants "$pid" | tr '\n' ' ')"
    kill -TERM $all 2>/dev/null || true
    for i in $(seq 50); do
        left=0
        for p in $all; do alive "$p" && left=1; done
        [ $left = 0 ] && break
        sleep 0.1
    done
    [ $left = 1 ] && kill -KILL $all 2>/dev/null || true
    forget_pid "$pid"
}

# Waits for a process started in the background that ends by itself.
forget_pid() {
    wait "$1" 2>/dev/null || true
    local keep=() p
    for p in "${STARTED[@]}"; do [ "$p" != "$1" ] && keep+=("$p"); done
    STARTED=("${keep[@]+"${keep[@]}"}")
}

cleanup() {
    local i
    for ((i = ${#STARTED[@]} - 1; i >= 0; i--)); do
        stop_pid "${STARTED[$i]}"
    done
}

# N free TCP ports on 127.0.0.1, chosen by the kernel, one a line.
free_ports() {
    python3 - "$1" <<'EOF'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print("\n".join(str(s.getsockname()[1]) for s in socks))
EOF
}

# render TEMPLATE OUTPUT KEY=VALUE...: replaces each @KEY@.
render() {
    local in=$1 out=$2 kv args=()
    shift 2
    for kv in "$@"; do args+=(-e "s|@${kv%%=*}@|${kv#*=}|g"); done
    sed "${args[@]}" "$in" >"$out"
}

# wait_http URL PID LOG: until URL answers 200, the process exits, or 10 s.
wait_http() {
    local i
    for i in $(seq 100); do
        if [ "$(curl -s -o /dev/null -m 1 -w '%{http_code}' "$1" 2>/dev/null)" = 200 ]; then
            return 0
        fi
        alive "$2" || break
        sleep 0.1
    done
    say "--- $3 (tail)"
    tail -n 20 "$3" >&2 2>/dev/null || true
    return 1
}

trap cleanup EXIT
trap 'say "interrupted"; exit 130' INT TERM

# wait_tcp PORT PID LOG SECONDS: until PORT accepts, the process exits, or
# SECONDS pass (then the log's tail goes to stderr).
wait_tcp() {
    local i
    for i in $(seq $(($4 * 10))); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then
            return 0
        fi
        alive "$2" || break
        sleep 0.1
    done
    printf '%s\n' "--- $3 (tail)" >&2
    tail -n 20 "$3" >&2 2>/dev/null || true
    return 1
}

# CPU time (clock ticks) of a process and its descendants.
cpu_ticks() {
    local total=0 p v
    for p in $1 $(descendants "$1"); do
        v=$(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0)
        total=$((total + ${v:-0}))
    done
    echo "$total"
}

# start_rabbitmq_node NODE SCHEDULERS DESCRIPTION: a throwaway RabbitMQ node
# under $OUT/rabbitmq (its own epmd, ports, directories, cookie and config;
# nothing of the system's installation is used), pinned with $SERVER_PIN,
# started with $RABBIT_SERVER. Fills the caller's PORT, PID and VERSION
# arrays (keys rabbitmq, and epmd in PID).
start_rabbitmq_node() {
    local node=$1 sched=$2 desc=$3 dir=$OUT/rabbitmq ports dist epmd_port v
    mkdir -p "$dir/home" "$dir/log" "$OUT/data/rabbitmq"
    ports=$(free_ports 3)
    PORT[rabbitmq]=$(sed -n 1p <<<"$ports")
    dist=$(sed -n 2p <<<"$ports")
    epmd_port=$(sed -n 3p <<<"$ports")
    echo "[]." >"$dir/enabled_plugins"
    printf 'listeners.tcp.1 = 127.0.0.1:%s\nloopback_users = none\n' "${PORT[rabbitmq]}" >"$dir/rabbitmq.conf"
    start_bg epmd -port "$epmd_port" -address 127.0.0.1 >"$dir/epmd.log" 2>&1
    PID[epmd]=$BG_PID
    sleep 0.3
    start_bg env HOME="$dir/home" ERL_EPMD_PORT="$epmd_port" \
        RABBITMQ_NODENAME="$node$$@localhost" RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 \
        RABBITMQ_NODE_PORT="${PORT[rabbitmq]}" RABBITMQ_DIST_PORT="$dist" \
        RABBITMQ_MNESIA_BASE="$OUT/data/rabbitmq" RABBITMQ_LOG_BASE="$dir/log" \
        RABBITMQ_CONFIG_FILE="$dir/rabbitmq.conf" RABBITMQ_ENABLED_PLUGINS_FILE="$dir/enabled_plugins" \
        RABBITMQ_CONF_ENV_FILE=/dev/null RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="+S $sched:$sched" \
        $SERVER_PIN "$RABBIT_SERVER" >"$dir/server.log" 2>&1
    PID[rabbitmq]=$BG_PID
    wait_tcp "${PORT[rabbitmq]}" "$BG_PID" "$dir/server.log" 90 || return 1
    v=$(dpkg-query -W -f='${Version}' rabbitmq-server 2>/dev/null | sed 's/-.*//')
    VERSION[rabbitmq]="RabbitMQ ${v:-?} ($desc)"
}
