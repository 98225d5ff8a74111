#!/usr/bin/env bash
# bench/run.sh FLOODGATE_BIN [BASE_BIN]: runs every bench/<component>.sh
# there is, one after another, each printing its own table. BASE_BIN (or
# the BASE_BIN environment variable), an earlier floodgate build, runs
# beside FLOODGATE_BIN in the gateway and broker benches' rounds. Raw results go to
# bench/out/ (not tracked). Exits non-zero only if a bench could not run
# (a proxy or backend that does not start), never because of speed; a
# bench whose tool is not installed (locks.sh without gdb) is skipped with
# a line that says so.
set -uo pipefail

if [ $# -lt 1 ] || [ $# -gt 2 ] || [ ! -x "$1" ]; then
    echo "usage: $0 FLOODGATE_BIN [BASE_BIN]" >&2
    exit 2
fi
BIN=$(realpath "$1")
if [ $# -eq 2 ]; then
    [ -x "$2" ] || { echo "$0: BASE_BIN '$2' is not an executable" >&2; exit 2; }
    export BASE_BIN=$2
fi
HERE=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$HERE/out"

failed=()
for b in "$HERE"/*.sh; do
    name=$(basename "$b" .sh)
    [ "$name" = run ] && continue
    echo
    echo "=== bench: $name"
    if [ "$name" = locks ] && ! command -v gdb >/dev/null; then
        echo "skipped: gdb is not installed (make bench-deps installs it)"
        continue
    fi
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
