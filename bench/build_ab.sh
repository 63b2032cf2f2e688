#!/bin/bash
# bench/build_ab.sh --a BIN --b BIN [--rounds N] [--cases LIST] — two imgfs binaries, alternated build by build
# on one store, on examples/go-service:
#
#   seed-cold      the seed Dockerfile (FROM golang:1.19, COPY, RUN go build) with --no-cache
#   seed-one-line  the seed Dockerfile after a one-line change in main.go (COPY and RUN again)
#   three-runs     FROM golang:1.19, COPY, then three RUNs reading the toolchain (go build three
#                  times: plain, -ldflags=-s, -ldflags=-w; the later two compile from the first's
#                  Go build cache, in their lower, and link again), --no-cache
#
# --cases picks some of them (comma-separated; default all three).
# Each build's wall time and CPU time: the CPU of everything it starts — the build, the step
# monitors, the containers and the FUSE daemons, which leave the build's process tree — counted
# by a cgroup v1 cpuacct group the build runs in (the runner puts containers in cgroups of the
# memory/pids/cpu/devices hierarchies only, so they stay in it). Medians of --rounds (default 5);
# the load average (1 min) is sampled at every build. Before each build the previous one's
# step-directory remover is waited for (ROOT/trash/.lock), so it never overlaps the next build.
# Base images: tools/mkbase.sh golang:1.19 (from $IMGFS_FIXTURES when set). Needs root.
set -euo pipefail

TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ROUNDS=5
CASES=seed-cold,seed-one-line,three-runs
A="" B=""
while (($#)); do
    case $1 in
    --a) A=$2; shift 2 ;;
    --b) B=$2; shift 2 ;;
    --rounds) ROUNDS=$2; shift 2 ;;
    --cases) CASES=$2; shift 2 ;;
    -h | --help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "build_ab.sh: unknown option $1" >&2; exit 2 ;;
    esac
done
[[ -x $A && -x $B ]] || { echo "build_ab.sh: --a BIN and --b BIN are needed" >&2; exit 2; }
[[ $(id -u) == 0 ]] || { echo "build_ab.sh: run as root" >&2; exit 1; }
CG=/sys/fs/cgroup/cpuacct
[[ -e $CG/cpuacct.usage ]] || { echo "build_ab.sh: needs the cgroup v1 cpuacct hierarchy at $CG" >&2; exit 1; }

W=$(mktemp -d /var/tmp/imgfs-bench-ab.XXXXXX)
G=$CG/imgfs-bench-ab.$$
mkdir "$G"
cleanup() {
    { grep -F " $W/" /proc/mounts || true; } | awk '{print $2}' | sort -r | while read -r m; do
        umount -l "$m" 2>/dev/null || true
    done
    rmdir "$G" 2>/dev/null || true
    rm -rf "$W"
}
trap cleanup EXIT
export IMGFS_ROOT=$W/store IMGFS_RUN_DIR=$W/run IMGFS_BASE_CACHE=${IMGFS_BASE_CACHE:-$W/basecache}

"$TOP/tools/mkbase.sh" --root "$IMGFS_ROOT" golang:1.19 >"$W/mkbase.log" 2>&1 ||
    { cat "$W/mkbase.log" >&2; exit 1; }
SEED=$W/seed
THREE=$W/three
cp -r "$TOP/examples/go-service" "$SEED"
cp -r "$TOP/examples/go-service" "$THREE"
cat >"$THREE/Dockerfile" <<'EOF'
FROM golang:1.19
WORKDIR /go/src/app
COPY . .
RUN go build -o app
RUN go build -ldflags=-s -o app2
RUN go build -ldflags=-w -o app3
EOF

trash_wait() {
    [[ -e $IMGFS_ROOT/trash/.lock ]] && { (exec 9<"$IMGFS_ROOT/trash/.lock" && flock 9) || true; }
    return 0
}
# measure BIN ARGS...: one build in the cgroup; prints "WALL CPU LOAD" (seconds, seconds, 1-min
# load average at the start)
measure() {
    local bin=$1
    shift
    trash_wait
    local load u0 u1 t0 t1
    load=$(cut -d' ' -f1 /proc/loadavg)
    u0=$(cat "$G/cpuacct.usage")
    t0=$(date +%s.%N)
    (echo "$BASHPID" >"$G/cgroup.procs" && exec "$bin" build -q "$@" >/dev/null 2>>"$W/errors") ||
        { echo "build_ab.sh: a build failed: $bin build $*" >&2; cat "$W/errors" >&2; exit 1; }
    t1=$(date +%s.%N)
    # the daemons end right after the build's unmount: count their last CPU too
    local i
    for ((i = 0; i < 200; i++)); do
        [[ $(wc -l <"$G/cgroup.procs") -eq 0 ]] && break
        sleep 0.05
    done
    u1=$(cat "$G/cpuacct.usage")
    echo "$(echo "$t1 - $t0" | bc) $(echo "scale=3; ($u1 - $u0) / 1000000000" | bc) $load"
}

has() { [[ ,$CASES, == *,$1,* ]]; }
n=0
declare -A res
for ((r = 1; r <= ROUNDS; r++)); do
    for who in a b; do
        bin=$A
        [[ $who == b ]] && bin=$B
        if has seed-cold; then
            res[$who.seed-cold]+="$(measure "$bin" --no-cache -t seed "$SEED")"$'\n'
        fi
        if has seed-one-line; then
            n=$((n + 1))
            echo "// one-line change $n" >>"$SEED/main.go"
            res[$who.seed-one-line]+="$(measure "$bin" -t seed "$SEED")"$'\n'
        fi
        if has three-runs; then
            res[$who.three-runs]+="$(measure "$bin" --no-cache -t three "$THREE")"$'\n'
        fi
    done
    echo "round $r done ($(cut -d' ' -f1-3 /proc/loadavg))" >&2
done

median() { sort -n | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
echo "| case | a: wall s | b: wall s | a: CPU s | b: CPU s | load (1 min) at the builds |"
echo "|---|---|---|---|---|---|"
for c in ${CASES//,/ }; do
    aw=$(printf '%s' "${res[a.$c]}" | awk 'NF {print $1}' | median)
    bw=$(printf '%s' "${res[b.$c]}" | awk 'NF {print $1}' | median)
    ac=$(printf '%s' "${res[a.$c]}" | awk 'NF {print $2}' | median)
    bc_=$(printf '%s' "${res[b.$c]}" | awk 'NF {print $2}' | median)
    loads=$(printf '%s%s' "${res[a.$c]}" "${res[b.$c]}" | awk 'NF {print $3}' | sort -n |
        awk '{v[NR] = $1} END {print v[1] "-" v[NR]}')
    printf '| %s | %.2f | %.2f | %.2f | %.2f | %s |\n' "$c" "$aw" "$bw" "$ac" "$bc_" "$loads"
done
echo
for k in "${!res[@]}"; do printf '%s: %s\n' "$k" "$(printf '%s' "${res[$k]}" | awk 'NF {printf "%s/%s ", $1, $2}')"; done | sort
[[ -s $W/errors ]] && { echo "errors:"; cat "$W/errors"; }
exit 0
