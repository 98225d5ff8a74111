#!/usr/bin/env bash
# tests/stress.sh [BUILD_DIR] [ROUNDS]: the whole end-to-end suite
# (`ctest -L e2e`), ROUNDS times in a row (default 3), with two CPU-burning
# processes in the background the whole time, as on a shared 2-core CI
# machine. Exits non-zero if any test failed in any round, after a summary.
#
# It builds nothing: BUILD_DIR (default build/) must hold a configured and
# built tree. Not part of `make test`: it takes a while, and is meant to be
# run by hand (or by a CI job of its own) to show that no test depends on
# the speed of the machine. The burners are remembered by PID and killed by
# PID when the script ends, however it ends.
set -uo pipefail

BUILD=${1:-build}
ROUNDS=${2:-3}
if [ ! -f "$BUILD/CTestTestfile.cmake" ]; then
    echo "usage: $0 [BUILD_DIR] [ROUNDS]  ($BUILD has no ctest tree: configure and build it first)" >&2
    exit 2
fi
case $ROUNDS in '' | *[!0-9]* | 0) echo "$0: ROUNDS must be a positive integer" >&2; exit 2 ;; esac

BURNERS=()
stop_burners() {
    for pid in "${BURNERS[@]}"; do
        kill "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    done
    BURNERS=()
}
trap stop_burners EXIT
trap 'exit 130' INT TERM

for _ in 1 2; do
    sh -c 'while :; do :; done' &
    BURNERS+=("$!")
done
echo "stress: CPU burners running as PIDs ${BURNERS[*]}"

LOGDIR=$(mktemp -d "${TMPDIR:-/tmp}/floodgate-stress.XXXXXX")
failed_rounds=0
summary=()
for round in $(seq 1 "$ROUNDS"); do
    log="$LOGDIR/round-$round.log"
    start=$(date +%s)
    echo "stress: round $round of $ROUNDS (log: $log)"
    (cd "$BUILD" && ctest -L e2e --output-on-failure) >"$log" 2>&1
    rc=$?
    secs=$(($(date +%s) - start))
    line=$(grep -E 'tests passed, [0-9]+ tests failed' "$log" | tail -n 1)
    if [ $rc -ne 0 ]; then
        failed_rounds=$((failed_rounds + 1))
        fails=$(sed -n '/The following tests FAILED:/,$p' "$log" | grep -E '^\s+[0-9]+ - ' | sed 's/^\s*//')
        summary+=("round $round: FAILED in ${secs}s: ${line:-ctest exited $rc}")
        while IFS= read -r f; do
            [ -n "$f" ] && summary+=("    $f")
        done <<<"$fails"
    else
        summary+=("round $round: ok in ${secs}s: $line")
    fi
done

stop_burners
echo
echo "stress: summary ($ROUNDS rounds of ctest -L e2e in $BUILD, two CPU burners)"
printf '  %s\n' "${summary[@]}"
if [ $failed_rounds -ne 0 ]; then
    echo "stress: $failed_rounds of $ROUNDS rounds had failures; logs in $LOGDIR"
    exit 1
fi
echo "stress: all $ROUNDS rounds passed; logs in $LOGDIR"
exit 0
