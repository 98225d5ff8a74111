#!/usr/bin/env bash
# bench/run.sh FLOODGATE_BIN: runs every bench/<component>.sh there is,
# one after another, each printing its own table. Raw results go to
# bench/out/ (not tracked). Exits non-zero only if a bench could not run
# (a proxy or backend that does not start), never because of speed.
set -uo pipefail

if [ $# -ne 1 ] || [ ! -x "$1" ]; then
    echo "usage: $0 FLOODGATE_BIN" >&2
    exit 2
fi
BIN=$(realpath "$1")
HERE=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$HERE/out"

failed=()
for b in "$HERE"/*.sh; do
    name=$(basename "$b" .sh)
    [ "$name" = run ] && continue
    echo
    echo "=== bench: $name"
    if ! bash "$b" "$BIN"; then
        failed+=("$name")
    fi
done
echo
if [ ${#failed[@]} -gt 0 ]; then
    echo "benches that could not run: ${failed[*]}"
    exit 1
fi
echo "raw results: $HERE/out/"
