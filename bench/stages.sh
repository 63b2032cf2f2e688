#!/bin/bash
# bench/stages.sh [--rounds N] [--imgfs BIN] — independent stages in parallel: a Dockerfile with
# three independent stages and a final one copying from each, built with --no-cache by imgfs as
# it is (one stage per CPU) and pinned to one CPU with taskset (a serial build: imgfs counts the
# CPUs it may use, there is no flag, as in BuildKit). Two kinds of steps:
#
#   wait   each stage's RUN waits 2 s (what a download or a remote service costs): the CPU count
#          does not limit the overlap, only the number of workers does (2 on 2 CPUs)
#   cpu    each stage's RUN hashes 400 MiB of zeros (CPU-bound): pinning takes the second CPU
#          from the command too, so this is the speedup a user sees, bounded by the cores and by
#          the machine's load
#
# Each figure is the median of --rounds rounds (default 3; parallel and serial alternate). Prints
# a table with the load average at the start and the end; writes bench/out/stages.md. Needs root.
set -euo pipefail

TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ROUNDS=3
IMGFS=$TOP/imgfs
while (($#)); do
    case $1 in
    --rounds) ROUNDS=$2; shift 2 ;;
    --imgfs) IMGFS=$2; shift 2 ;;
    -h | --help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "stages.sh: unknown option $1" >&2; exit 2 ;;
    esac
done
[[ $(id -u) == 0 ]] || { echo "stages.sh: run as root" >&2; exit 1; }
FIXTURES=${IMGFS_FIXTURES:-$TOP/tests/out/fixtures}
[[ -f $FIXTURES/busybox.tar ]] || { echo "stages.sh: no $FIXTURES/busybox.tar" >&2; exit 1; }

W=$(mktemp -d /tmp/imgfs-bench-stages.XXXXXX)
trap 'rm -rf "$W"' EXIT
export IMGFS_ROOT=$W/store IMGFS_RUN_DIR=$W/run
"$IMGFS" import -t busybox:latest "$FIXTURES/busybox.tar" >/dev/null

dockerfile() { # KIND DIR
    mkdir -p "$2"
    local run
    case $1 in
    wait) run='sleep 2' ;;
    cpu) run='dd if=/dev/zero bs=1M count=400 2>/dev/null | sha256sum' ;;
    esac
    {
        for s in a b c; do
            printf 'FROM busybox:latest AS %s\nRUN %s >/%s; echo %s >>/%s\n' "$s" "$run" "$s" "$s" "$s"
        done
        printf 'FROM busybox:latest\n'
        for s in a b c; do printf 'COPY --from=%s /%s /%s\n' "$s" "$s" "$s"; done
    } >"$2/Dockerfile"
}

seconds() { # COMMAND...: wall time of one build
    local t0 t1
    t0=$(date +%s.%N)
    "$@" >/dev/null 2>&1
    t1=$(date +%s.%N)
    echo "$t1 - $t0" | bc
}
median() { sort -n | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }

load_start=$(cut -d' ' -f1-3 /proc/loadavg)
declare -A res
for kind in wait cpu; do
    dockerfile "$kind" "$W/$kind"
    par=() ser=()
    for ((r = 0; r < ROUNDS; r++)); do
        par+=("$(seconds "$IMGFS" build --no-cache -t par "$W/$kind")")
        ser+=("$(seconds taskset -c 0 "$IMGFS" build --no-cache -t ser "$W/$kind")")
    done
    res[$kind.par]=$(printf '%s\n' "${par[@]}" | median)
    res[$kind.ser]=$(printf '%s\n' "${ser[@]}" | median)
done
load_end=$(cut -d' ' -f1-3 /proc/loadavg)

mkdir -p "$TOP/bench/out"
{
    echo "Parallel stages, $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs, median of $ROUNDS," \
        "load average $load_start at the start, $load_end at the end (seconds):"
    echo
    echo "| steps | parallel | serial (taskset -c 0) | parallel / serial |"
    echo "|---|---|---|---|"
    for kind in wait cpu; do
        printf '| %s | %.2f | %.2f | %.2f |\n' "$kind" "${res[$kind.par]}" "${res[$kind.ser]}" \
            "$(echo "${res[$kind.par]} / ${res[$kind.ser]}" | bc -l)"
    done
} | tee "$TOP/bench/out/stages.md"
