#!/bin/bash
# bench/logs.sh [--rounds N] [--lines N] [--imgfs BIN] [--base BIN] — the cost of the monitor
# copying a container's output into its log (docs/runner.md, "Logs"): `seq N` (default a million
# short lines) in a foreground `run` with stdout to /dev/null, and in a `run -d` waited for, with
# BIN (default ./imgfs) and, when given, an older BASE binary (one whose container wrote its output
# itself). Prints the median wall time, the user+sys CPU of the run (the monitor and the
# container), and the log's size; writes bench/out/logs.md. The tools take turns within a round.
# Needs root and tests/out/fixtures or $IMGFS_FIXTURES (busybox.tar).
set -euo pipefail

TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ROUNDS=3 LINES=1000000 IMGFS=$TOP/imgfs BASE=""
while (($#)); do
    case $1 in
    --rounds) ROUNDS=$2; shift 2 ;;
    --lines) LINES=$2; shift 2 ;;
    --imgfs) IMGFS=$2; shift 2 ;;
    --base) BASE=$2; shift 2 ;;
    *) echo "usage: $0 [--rounds N] [--lines N] [--imgfs BIN] [--base BIN]" >&2; exit 2 ;;
    esac
done
FIXTURES=${IMGFS_FIXTURES:-$TOP/tests/out/fixtures}
W=$(mktemp -d /tmp/imgfs-bench-logs.XXXXXX)
trap 'IMGFS_ROOT=$W/store IMGFS_RUN_DIR=$W/run "$IMGFS" ps -aq 2>/dev/null | xargs -r env IMGFS_ROOT=$W/store IMGFS_RUN_DIR=$W/run "$IMGFS" rm -f >/dev/null 2>&1; rm -rf "$W"' EXIT
export IMGFS_ROOT=$W/store IMGFS_RUN_DIR=$W/run
"$IMGFS" import -q -t busybox "$FIXTURES/busybox.tar"
# a holder keeps the image mounted: the runs measure output, not mounts
"$IMGFS" run -d --network none --name holder busybox sleep 100000 >/dev/null

bins=("$IMGFS")
[[ -n $BASE ]] && bins+=("$BASE")
median() { sort -n | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }
declare -A fg cpu bg size
for ((r = 0; r < ROUNDS; r++)); do
    for b in "${bins[@]}"; do
        out=$( { /usr/bin/time -f "%e %U %S" "$b" run --rm --network none busybox seq "$LINES" >/dev/null; } 2>&1 | tail -1)
        fg[$b]+="$(awk '{print $1}' <<<"$out") "
        cpu[$b]+="$(awk '{print $2 + $3}' <<<"$out") "
        s=$(date +%s%N)
        id=$("$b" run -d --network none busybox seq "$LINES")
        "$b" wait "$id" >/dev/null
        e=$(date +%s%N)
        bg[$b]+="$(((e - s) / 1000000)) "
        size[$b]=$(stat -c %s "$IMGFS_RUN_DIR/containers/$id/ctr.log")
        "$b" rm "$id" >/dev/null
    done
done
mkdir -p "$TOP/bench/out"
{
    echo "seq $LINES, median of $ROUNDS rounds, load average: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo
    echo "| binary | foreground wall s | foreground CPU s | -d wall ms | log bytes |"
    echo "|---|---|---|---|---|"
    for b in "${bins[@]}"; do
        echo "| $b | $(tr ' ' '\n' <<<"${fg[$b]}" | grep . | median) | $(tr ' ' '\n' <<<"${cpu[$b]}" | grep . | median) | $(tr ' ' '\n' <<<"${bg[$b]}" | grep . | median) | ${size[$b]} |"
    done
} | tee "$TOP/bench/out/logs.md"
