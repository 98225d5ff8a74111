#!/usr/bin/env bash
# Runs every libFuzzer target of a -DBUILD_FUZZER=ON build (make fuzz).
#   ./fuzz/run.sh BUILD_DIR SECONDS
# For each BUILD_DIR/fuzz/fuzz_<t>: fuzz a temporary copy of fuzz/<t>/corpus
# for SECONDS with fuzz/<t>/<t>.dict, then merge the inputs that add
# coverage back into fuzz/<t>/corpus (-merge=1 keeps only those). When the
# corpus grows past MAX_CORPUS files, the generated (sha1-named) entries are
# minimised again; the named seeds and regression inputs always stay.
# Any crash, leak, timeout or OOM input is copied into the corpus as
# regress-<t>-<sha1> (the crash-* name is git-ignored), where the replay
# test of the normal build keeps it as a regression case, and the script
# exits non-zero.
set -euo pipefail

if [ $# -lt 1 ] || [ $# -gt 2 ]; then
    echo "usage: $0 BUILD_DIR [SECONDS]" >&2
    exit 2
fi
build=$1
secs=${2:-60}
max_corpus=${MAX_CORPUS:-300}
here=$(cd "$(dirname "$0")" && pwd)
status=0
ran=0

corpus_size() { find "$1" -maxdepth 1 -type f | wc -l; }

for bin in "$build"/fuzz/fuzz_*; do
    [ -x "$bin" ] && [ -f "$bin" ] || continue
    t=${bin##*/fuzz_}
    dir=$here/$t
    if [ ! -d "$dir/corpus" ]; then
        echo "fuzz: $t: no corpus at $dir/corpus, skipped" >&2
        continue
    fi
    dict=()
    [ -f "$dir/$t.dict" ] && dict=("-dict=$dir/$t.dict")
    work=$(mktemp -d)
    mkdir "$work/corpus" "$work/artifacts"
    cp "$dir"/corpus/* "$work/corpus/" 2>/dev/null || true

    echo "fuzz: $t for ${secs}s ($(corpus_size "$dir/corpus") seeds)"
    rc=0
    "$bin" -max_total_time="$secs" -print_final_stats=1 ${dict[@]+"${dict[@]}"} \
        -artifact_prefix="$work/artifacts/" "$work/corpus" >"$work/log" 2>&1 || rc=$?
    grep -E '^stat::(number_of_executed_units|peak_rss_mb|new_units_added)' "$work/log" || true

    found=0
    for a in "$work"/artifacts/*; do
        [ -f "$a" ] || continue
        keep=$dir/corpus/regress-$t-$(sha1sum "$a" | cut -c1-40)
        cp "$a" "$keep"
        echo "fuzz: $t: ${a##*/} kept as ${keep#"$here"/}" >&2
        found=1
    done
    if [ "$rc" -ne 0 ] || [ "$found" -ne 0 ]; then
        echo "fuzz: $t failed (exit $rc); log follows" >&2
        tail -n 60 "$work/log" >&2
        status=1
    fi

    # Only inputs that add coverage over the committed corpus come back.
    "$bin" -merge=1 -use_counters=0 ${dict[@]+"${dict[@]}"} "$dir/corpus" "$work/corpus" >"$work/merge.log" 2>&1 ||
        { echo "fuzz: $t: merge failed" >&2; tail -n 20 "$work/merge.log" >&2; status=1; }
    if [ "$(corpus_size "$dir/corpus")" -gt "$max_corpus" ]; then
        mkdir "$work/min"
        "$bin" -merge=1 -use_counters=0 "$work/min" "$dir/corpus" >"$work/min.log" 2>&1 || status=1
        for f in "$dir"/corpus/*; do
            n=${f##*/}
            if [[ $n =~ ^[0-9a-f]{40}$ ]] && [ ! -e "$work/min/$n" ]; then
                rm -f "$f"
            fi
        done
    fi
    echo "fuzz: $t corpus now $(corpus_size "$dir/corpus") files"
    rm -rf "$work"
    ran=$((ran + 1))
done

if [ "$ran" -eq 0 ]; then
    echo "fuzz: no fuzz_* binaries in $build/fuzz (configure with -DBUILD_FUZZER=ON)" >&2
    exit 1
fi
exit "$status"
