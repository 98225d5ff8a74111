#!/usr/bin/env bash
# The payments fan-out demo, end to end on one machine:
#   examples/sns/run.sh [COUNT]
# starts a broker (build/floodgate, a temporary data directory, a free
# port), sets up the topic, queues, dead-letter queues and subscriptions,
# starts an email worker (10 sends a second) and an SMS worker (2 a second,
# where every 7th payment has a bad phone number), publishes COUNT payment
# events (default 60), waits for the workers to go idle, prints their
# summaries and stops everything it started.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
bin=${FLOODGATE_BIN:-$root/build/floodgate}
count=${1:-60}
py=/usr/bin/python3
[ -x "$bin" ] || { echo "build first: make (no $bin)" >&2; exit 1; }

data=$(mktemp -d)
port=$($py -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
endpoint=http://127.0.0.1:$port
pids=()
cleanup() {
    local p
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    rm -rf "$data"
}
trap cleanup EXIT

"$bin" broker --listen "127.0.0.1:$port" --data "$data" 2>"$data/broker.log" &
pids+=($!)
for _ in $(seq 100); do grep -q "listening on" "$data/broker.log" 2>/dev/null && break; sleep 0.1; done

$py "$here/payments.py" --endpoint "$endpoint" --setup-only >/dev/null
$py "$here/worker.py" --endpoint "$endpoint" --channel email --rate 10 --idle-exit 4 >"$data/email.out" &
email=$!
$py "$here/worker.py" --endpoint "$endpoint" --channel sms --rate 2 --poison 7 --idle-exit 8 >"$data/sms.out" &
sms=$!
echo "publishing $count payment events to $endpoint ..."
$py "$here/payments.py" --endpoint "$endpoint" --count "$count" --rate 20
wait "$email" "$sms"
echo "email worker: $(tail -1 "$data/email.out")"
echo "sms worker:   $(tail -1 "$data/sms.out")"
curl -s "$endpoint/metrics" | grep '^floodgate_broker_sns_' || true
