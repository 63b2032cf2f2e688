#!/bin/bash
# bench/fuzz-long.sh — the long fuzzing campaign (`make fuzz-long`): every tests/fuzz/fuzz_*.c target,
# built with libFuzzer + ASan + UBSan, run one after another (never in parallel: the machine is shared)
# for RUNS executions each (default 10,000,000), niced, from a seed corpus (tests/fuzz/seeds.sh) that
# grows in a persistent corpus directory. Prints one table row per target for docs/fuzzing.md: the
# executions done, the time, the corpus size, and any crash, leak or timeout (with the saved input).
#
#   RUNS=N                 executions per target (default 10000000)
#   MAX_TIME=SECONDS       stop a target after this long even when RUNS are not reached (default: none)
#   TARGETS="tar oci"      only these targets (default: every tests/fuzz/fuzz_*.c)
#   OUT=DIR                corpus, logs and crashes (default build/fuzz-long)
#   NICE=N                 the fuzzers' nice value (default 19; on a loaded machine 19 gets about a
#                          fifth of a core, so a campaign beside other work may want less). With the
#                          kernel's autogroup scheduling on (/proc/sys/kernel/sched_autogroup_enabled),
#                          a nice value counts only against processes of the same session, so each
#                          fuzzer runs in a session of its own whose autogroup gets NICE as well
set -euo pipefail
TOP=$(cd "$(dirname "$0")/.." && pwd)
RUNS=${RUNS:-10000000}
MAX_TIME=${MAX_TIME:-0}
NICE=${NICE:-19}
OUT=${OUT:-$TOP/build/fuzz-long}
cd "$TOP"
make -s -j2 imgfs fuzz
mkdir -p "$OUT"
if [[ ! -d $OUT/seed ]]; then
    tests/fuzz/seeds.sh "$TOP/imgfs" "$OUT/seed.tmp"
    mv "$OUT/seed.tmp" "$OUT/seed"
fi
if [[ -n ${TARGETS:-} ]]; then
    read -ra targets <<<"$TARGETS"
else
    targets=()
    for f in tests/fuzz/fuzz_*.c; do
        n=${f##*/fuzz_}
        targets+=("${n%.c}")
    done
fi
# run_niced CMD... — CMD at nice NICE, in a session of its own whose autogroup (when the kernel has
# autogroup scheduling on) gets NICE too: without that, other sessions' processes compete with the
# fuzzer as if it were at nice 0 whatever NICE is (seen on 2026-12-02: nice -10 gave fuzz_tar 30-45%
# of a core beside four engineers' builds, 90% once the autogroup no longer applied)
run_niced() {
    setsid --wait bash -c 'echo "$0" >/proc/self/autogroup 2>/dev/null; exec nice -n "$0" "$@"' \
        "$NICE" "$@"
}
echo "| target | executions | seconds | exec/s | corpus | result |"
echo "|---|---|---|---|---|---|"
status=0
for t in "${targets[@]}"; do
    corpus=$OUT/corpus/$t
    mkdir -p "$corpus" "$OUT/crashes"
    [[ -d $OUT/seed/$t ]] && cp -n "$OUT/seed/$t"/* "$corpus/" 2>/dev/null || true
    log=$OUT/$t.log
    start=$(date +%s)
    rc=0
    # -timeout: an input taking longer than 60 s is a finding (a hang), not something to wait for
    run_niced "build/fuzz/fuzz_$t" -runs="$RUNS" -max_total_time="$MAX_TIME" -max_len=65536 \
        -timeout=60 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$OUT/crashes/$t-" "$corpus" >"$log" 2>&1 || rc=$?
    secs=$(($(date +%s) - start))
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    files=$(find "$corpus" -type f | wc -l)
    if ((rc == 0)) && [[ ${execs:-0} -lt $RUNS ]]; then
        result="ok, stopped by MAX_TIME before $RUNS"
    elif ((rc == 0)); then
        result=ok
    elif grep -q "run interrupted" "$log"; then
        result="interrupted by hand (not a finding)"
    else
        status=1
        what=$(grep -m1 -oE "ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer): [a-z-]+|runtime error: .*" "$log" || echo "exit $rc")
        input=$(grep -m1 -oE "Test unit written to [^ ]+" "$log" | sed 's/Test unit written to //' || true)
        result="FOUND: $what ${input:+($input)}"
    fi
    echo "| fuzz_$t | ${execs:-?} | $secs | ${speed:-?} | $files | $result |"
done
exit $status
