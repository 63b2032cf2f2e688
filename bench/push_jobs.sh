#!/bin/bash
# bench/push_jobs.sh [--rounds N] [--layers N] [--mib N] [--imgfs BIN] — `imgfs push -j 1` against
# `imgfs push -j 3` (the default) of one image of several layers, through a loopback registry
# (Debian's docker-registry on 127.0.0.1, plain HTTP, a fresh storage for every push). Each layer
# is N MiB of a file that compresses like text (so the eStargz encoding works for real); each
# worker encodes a layer and then uploads it, so -j overlaps the encoding (CPU) of some layers with
# the others' uploads. The two take turns (round-robin) so the machine's load hits both alike.
# Prints medians in seconds, the ratio and the load average. Needs root (the registry's port only).
set -euo pipefail

TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ROUNDS=3
LAYERS=4
MIB=24
IMGFS=$TOP/imgfs
while (($#)); do
    case $1 in
    --rounds) ROUNDS=$2; shift 2 ;;
    --layers) LAYERS=$2; shift 2 ;;
    --mib) MIB=$2; shift 2 ;;
    --imgfs) IMGFS=$2; shift 2 ;;
    *) echo "usage: $0 [--rounds N] [--layers N] [--mib N] [--imgfs BIN]" >&2; exit 2 ;;
    esac
done
W=$(mktemp -d /var/tmp/imgfs-bench-pushjobs.XXXXXX)
REG_PID=""
cleanup() {
    [[ -n $REG_PID ]] && { kill "$REG_PID" 2>/dev/null || true; wait "$REG_PID" 2>/dev/null || true; }
    rm -rf "$W"
}
trap cleanup EXIT

free_port() {
    local p
    while :; do
        p=$((20000 + RANDOM % 40000))
        ss -Hltn "sport = :$p" | grep -q . || { echo "$p"; return; }
    done
}
wait_port() { local i; for ((i = 0; i < 600; i++)); do ss -Hltn "sport = :$1" | grep -q . && return 0; sleep 0.05; done; return 1; }
registry() { # a fresh registry (new storage) on a new port: sets REG
    [[ -n $REG_PID ]] && { kill "$REG_PID"; wait "$REG_PID" 2>/dev/null || true; }
    local port d
    port=$(free_port)
    d=$(mktemp -d "$W/reg.XXXXXX")
    printf 'version: 0.1\nlog: {level: error}\nstorage: {filesystem: {rootdirectory: %s}}\nhttp: {addr: 127.0.0.1:%s}\n' \
        "$d" "$port" >"$d.yml"
    docker-registry serve "$d.yml" >>"$W/registry.log" 2>&1 &
    REG_PID=$!
    wait_port "$port"
    REG=127.0.0.1:$port
}

# the image: LAYERS layers of MIB MiB each (base64 of random bytes: compresses about 4:3)
export IMGFS_ROOT=$W/src
mkdir -p "$W/ctx"
{ echo "FROM scratch"; } >"$W/ctx/Dockerfile"
for ((i = 1; i <= LAYERS; i++)); do
    head -c $((MIB * 1024 * 768)) /dev/urandom | base64 -w 100 >"$W/ctx/f$i"
    echo "COPY f$i /f$i" >>"$W/ctx/Dockerfile"
done
"$IMGFS" build -q -t bench/layers:1 "$W/ctx" >/dev/null

t() { # time a command in seconds (wall)
    local s e
    s=$(date +%s.%N)
    "$@" >/dev/null 2>&1 || { echo "FAILED: $*" >&2; return 1; }
    e=$(date +%s.%N)
    echo "$e - $s" | bc
}
declare -A R
for ((r = 1; r <= ROUNDS; r++)); do
    for j in 1 3; do
        registry
        rm -f "$W/src/pushed-blobs"
        R[j$j]+="$(t "$IMGFS" push -j "$j" bench/layers:1 "$REG/bench/layers:1") "
    done
done
median() { tr ' ' '\n' | grep . | sort -g | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
echo "image: $LAYERS layers of $MIB MiB, $ROUNDS rounds, $(nproc) cores, load average: $(cut -d' ' -f1-3 /proc/loadavg)"
j1=$(median <<<"${R[j1]}")
j3=$(median <<<"${R[j3]}")
printf '%-24s %8s\n' "command" "median s" "push -j 1" "$j1" "push -j 3" "$j3"
echo "push -j 3 / push -j 1: $(echo "scale=2; $j3 / $j1" | bc)"
