#!/bin/bash
# bench/run.sh [--runs N] [--rounds N] [--imgfs BIN] [--loop N] [--net-mb N] [--state tmpfs|disk]
# [--start-only] — container start, network throughput and concurrency, in one run.
#
# Start: `imgfs run --rm busybox /bin/true` on an image that is already mounted (a holder container
# keeps the shared mount), with the full default isolation (all namespaces, caps, seccomp, cgroup,
# private network through slirp4netns) and again with --network none, against `crun run` and
# `runc run` of an OCI bundle made from the same busybox rootfs (`crun spec` defaults: pid, net, ipc,
# uts, mount namespaces; args /bin/true). Measured with hyperfine, --runs in total per command, the
# commands taking turns in --rounds rounds (a shared machine's load then hits all alike); prints
# ratios of medians imgfs/crun and imgfs/runc (goal: <= 0.5 of crun's; reported, never asserted),
# and each command's CPU time (user+sys of it and its children, hyperfine's mean per round, averaged
# over the rounds): unlike the wall clock it hardly depends on what else runs on the machine.
#
# Runtime state — imgfs's RUN_DIR, crun's and runc's --root — is on a private tmpfs, where their
# defaults (/run/imgfs, /run/crun, /run/runc) are on a standard host; the store stays on disk.
# --state disk keeps it in the work directory under /var/tmp instead: on an ext4 without a journal
# (this machine's /) every file created costs more the more files were deleted in the last minutes,
# because the inode allocator steps over recently freed inodes one by one (docs/benchmarks.md).
# --start-only skips the network and concurrency parts.
#
# crun refuses this host's hybrid cgroups ("cgroups in hybrid mode not supported"), so its hyperfine
# runs inside a private mount namespace where /sys/fs/cgroup is a cgroup2 mount, with
# --cgroup-manager=disabled; the unshare and mount happen once, outside the timed commands.
#
# Network: N MiB (default 256) over HTTP through slirp4netns, both ways (a container's wget from a
# server on the host's 127.0.0.1 via 10.0.2.2; the host's curl from a container's httpd via -p),
# against --network host. Only 127.0.0.1 is used.
#
# Concurrency: n = 1, 2, 4, 8 containers of one image, each running a CPU-bound busybox shell loop
# of --loop iterations once all n are up (they wait at a barrier): wall time from the barrier until
# the last one exits, throughput (jobs/s) and total memory: the sum of PSS of every process of the
# containers (imgfs monitor, container init, the job, slirp4netns), sampled while all n wait; the
# one shared FUSE daemon is reported apart.
#
# Writes bench/out/run.md (the table) and bench/out/json/run-*.json (hyperfine's data). Needs root.
set -euo pipefail

TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RUNS=30
IMGFS=$TOP/imgfs
LOOP=300000
NET_MB=256
ROUNDS=6
STATE=tmpfs
START_ONLY=""
while (($#)); do
    case $1 in
    --runs) RUNS=$2; shift 2 ;;
    --imgfs) IMGFS=$2; shift 2 ;;
    --loop) LOOP=$2; shift 2 ;;
    --net-mb) NET_MB=$2; shift 2 ;;
    --rounds) ROUNDS=$2; shift 2 ;;
    --state) STATE=$2; shift 2 ;;
    --start-only) START_ONLY=1; shift ;;
    -h | --help) sed -n '2,37p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "run.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
[[ $STATE == tmpfs || $STATE == disk ]] || { echo "run.sh: --state is tmpfs or disk" >&2; exit 2; }
[[ $(id -u) == 0 ]] || { echo "run.sh: run as root" >&2; exit 1; }
[[ -x $IMGFS ]] || { echo "run.sh: $IMGFS not built (make)" >&2; exit 1; }
for tool in hyperfine crun runc jq unshare; do
    command -v "$tool" >/dev/null || { echo "run.sh: $tool is not installed" >&2; exit 1; }
done
FIXTURES=${IMGFS_FIXTURES:-$TOP/tests/out/fixtures}
if [[ ! -s $FIXTURES/busybox.tar ]]; then
    echo "run.sh: making the fixtures (tests/fixtures/make.sh)" >&2
    "$TOP/tests/fixtures/make.sh"
fi

OUT=$TOP/bench/out
J=$OUT/json
mkdir -p "$J"
rm -f "$J"/run-*.json
W=$(mktemp -d /var/tmp/imgfs-bench-run.XXXXXX)
S=$W # runtime state: a tmpfs mounted at $W/state below, or $W itself with --state disk
[[ $STATE == disk ]] || S=$W/state
export IMGFS_ROOT=$W/store IMGFS_RUN_DIR=$S/run
BUNDLE=$W/bundle

host_httpd=""
cleanup() {
    local rc=$? id
    [[ -z $host_httpd ]] || kill "$host_httpd" 2>/dev/null || true
    for id in $(ls "$IMGFS_RUN_DIR/containers" 2>/dev/null); do
        "$IMGFS" rm -f "$id" >/dev/null 2>&1 || true
    done
    crun --root "$S/crun" delete -f bench-crun >/dev/null 2>&1 || true
    runc --root "$S/runc" delete -f bench-runc >/dev/null 2>&1 || true
    { grep -F " $W/" /proc/mounts || true; } | awk '{print $2}' | sort -r | while read -r m; do
        umount -l "$m" 2>/dev/null || true
    done
    rm -rf "$W"
    exit "$rc"
}
trap cleanup EXIT
if [[ $STATE == tmpfs ]]; then
    mkdir "$S"
    mount -t tmpfs -o mode=0700 imgfs-bench-state "$S"
fi

echo "== setup: image, holder container, OCI bundle" >&2
"$IMGFS" import -t busybox "$FIXTURES/busybox.tar" >/dev/null
"$IMGFS" run -d --name holder --network none busybox sleep 1000000 >/dev/null
mkdir -p "$BUNDLE/rootfs"
tar -xf "$FIXTURES/busybox.tar" -C "$BUNDLE/rootfs"
(cd "$BUNDLE" && crun spec)
jq '.process.args = ["/bin/true"] | .process.terminal = false' "$BUNDLE/config.json" \
    >"$BUNDLE/config.json.new"
mv "$BUNDLE/config.json.new" "$BUNDLE/config.json"
# Each must work before it is timed.
"$IMGFS" run --rm busybox /bin/true
runc --root "$S/runc" run -b "$BUNDLE" bench-runc
CRUN_NS='mount --make-rprivate / && mount -t cgroup2 none /sys/fs/cgroup'
CRUN="crun --root $S/crun --cgroup-manager=disabled run -b $BUNDLE bench-crun"
unshare -m sh -c "$CRUN_NS && $CRUN"

echo "== start: $RUNS runs each, interleaved in $ROUNDS rounds" >&2
# The machine may be shared: load that comes and goes would favour whichever command ran in a quiet
# minute. So the commands take turns, a few runs each per round, and each one's times are merged.
per_round=$(((RUNS + ROUNDS - 1) / ROUNDS))
hf() { # hf NAME ROUND COMMAND
    hyperfine -N --warmup 1 --runs "$per_round" --export-json "$J/run-$1.r$2.json" -n "$1" "$3" >&2
}
for ((r = 1; r <= ROUNDS; r++)); do
    hf imgfs "$r" "$IMGFS run --rm busybox /bin/true"
    hf imgfs-none "$r" "$IMGFS run --rm --network none busybox /bin/true"
    hf runc "$r" "runc --root $S/runc run -b $BUNDLE bench-runc"
    unshare -m sh -c "$CRUN_NS && hyperfine -N --warmup 1 --runs $per_round \
        --export-json $J/run-crun.r$r.json -n crun '$CRUN'" >&2
done
for name in imgfs imgfs-none runc crun; do
    jq -s '{results: [{command: .[0].results[0].command, times: (map(.results[0].times) | add),
                       cpu: (map(.results[0].user + .results[0].system) | add / length)}
        | (.times | sort) as $s | ($s | length) as $n | ($s | add / $n) as $m
        | . + {mean: $m, min: $s[0], max: $s[$n - 1],
               median: (if $n % 2 == 1 then $s[($n - 1) / 2] else ($s[$n / 2 - 1] + $s[$n / 2]) / 2 end),
               stddev: (if $n > 1 then ($s | map((. - $m) * (. - $m)) | add / ($n - 1) | sqrt) else 0 end)}]}' \
        "$J"/run-"$name".r*.json >"$J/run-$name.json"
done

stat_ms() { jq ".results[0].$2 * 1000" "$J/run-$1.json"; } # stat_ms NAME mean|median|min|stddev
# Ratios of medians: on a shared machine a few runs that wait for the CPU inflate the mean.
ratio() { jq -n "$(stat_ms "$1" median) / $(stat_ms "$2" median)"; }

start_report() {
    echo "### Container start ($(date -u +%Y-%m-%d), $(nproc) CPUs, hyperfine -N, $((per_round * ROUNDS)) runs each in $ROUNDS interleaved rounds)"
    echo
    echo "Load average at the end: $(cut -d' ' -f1-3 /proc/loadavg). Runtime state on $STATE ($(stat -f -c %T "$S"))."
    echo
    echo "| command | median ms | mean ms | stddev ms | min ms | CPU ms (user+sys) | imgfs / this (medians) |"
    echo "|---|---|---|---|---|---|---|"
    for name in imgfs imgfs-none crun runc; do
        printf '| %s | %.1f | %.1f | %.1f | %.1f | %.1f | %.2f |\n' "$name" "$(stat_ms "$name" median)" \
            "$(stat_ms "$name" mean)" "$(stat_ms "$name" stddev)" "$(stat_ms "$name" min)" \
            "$(stat_ms "$name" cpu)" "$(ratio imgfs "$name")"
    done
    echo
    printf 'Medians: imgfs / crun = %.2f (goal <= 0.50), imgfs / runc = %.2f; with --network none: ' \
        "$(ratio imgfs crun)" "$(ratio imgfs runc)"
    printf 'imgfs / crun = %.2f, imgfs / runc = %.2f\n' "$(ratio imgfs-none crun)" \
        "$(ratio imgfs-none runc)"
}
if [[ -n $START_ONLY ]]; then
    start_report | tee "$OUT/run.md"
    exit 0
fi

# Memory: PSS (KiB) of the process trees rooted at the given pids.
pss_tree_kib() {
    ps -e -o pid=,ppid= | awk -v roots="$*" '
        BEGIN { n = split(roots, r, " "); for (i = 1; i <= n; i++) want[r[i]] = 1 }
        { parent[$1] = $2; pids[++m] = $1 }
        END {
            do {
                changed = 0
                for (i = 1; i <= m; i++)
                    if (!(pids[i] in want) && (parent[pids[i]] in want)) { want[pids[i]] = 1; changed = 1 }
            } while (changed)
            for (p in want) print p
        }' | while read -r p; do
        awk '/^Pss:/ {print $2}' "/proc/$p/smaps_rollup" 2>/dev/null || true
    done | awk '{s += $1} END {print s + 0}'
}
running_monitors() { # monitor pids of running containers named job*
    local f
    for f in "$IMGFS_RUN_DIR"/containers/*/state.json; do
        [[ -e $f ]] || continue
        jq -r 'select(.status == "running" and (.name | startswith("job"))) | .monitor_pid' "$f" \
            2>/dev/null || true
    done
}

echo "== network throughput: $NET_MB MiB over HTTP" >&2
# Outbound: a container downloads from a server on the host's 127.0.0.1 — private through
# slirp4netns (10.0.2.2), and --network host as the baseline. Inbound: curl on the host downloads
# from busybox httpd in a container through -p (slirp4netns), and from one in --network host.
free_port() { # a TCP port nothing listens on now (ss from iproute2; no python needed)
    local p
    while :; do
        p=$((20000 + RANDOM % 40000))
        ss -Hltn "sport = :$p" | grep -q . || { echo "$p"; return; }
    done
}
mkdir -p "$W/www"
head -c $((NET_MB << 20)) /dev/zero >"$W/www/big"
port_out=$(free_port)
busybox httpd -f -p "127.0.0.1:$port_out" -h "$W/www" &
host_httpd=$!
port_in=$(free_port)
port_host=$(free_port)
SERVE="mkdir -p /www && head -c $((NET_MB << 20)) /dev/zero >/www/big && exec httpd -f -p"
"$IMGFS" run -d --name srv-private -p "127.0.0.1:$port_in:80" busybox sh -c "$SERVE 80 -h /www" >/dev/null
"$IMGFS" run -d --name srv-host --network host busybox sh -c "$SERVE 127.0.0.1:$port_host -h /www" >/dev/null
for p in "$port_out" "$port_in" "$port_host"; do
    for _ in $(seq 200); do curl -sf -o /dev/null -r 0-0 "http://127.0.0.1:$p/big" && break; sleep 0.05; done
done
hfn() { # hfn NAME COMMAND: 5 runs, a shell is needed for the pipes
    hyperfine --warmup 1 --runs 5 --export-json "$J/run-$1.json" -n "$1" "$2" >&2
}
hfn out-private "$IMGFS run --rm --network private:allow_host_loopback=true busybox wget -qO /dev/null http://10.0.2.2:$port_out/big"
hfn out-host "$IMGFS run --rm --network host busybox wget -qO /dev/null http://127.0.0.1:$port_out/big"
hfn in-private "curl -sf -o /dev/null http://127.0.0.1:$port_in/big"
hfn in-host "curl -sf -o /dev/null http://127.0.0.1:$port_host/big"
kill "$host_httpd"
host_httpd=""
"$IMGFS" rm -f srv-private srv-host >/dev/null
mibps() { jq -n "$NET_MB / $(stat_ms "$1" median) * 1000"; }

echo "== concurrency: n containers, each a $LOOP-iteration shell loop" >&2
JOB="i=0; while [ \$i -lt $LOOP ]; do i=\$((i+1)); done"
# All n wait at a barrier (a file on a read-only volume) until every one runs: memory is sampled
# then, and the clock starts when the barrier opens, so start-up cost is not throughput.
mkdir -p "$W/barrier"
WAIT="while [ ! -e /barrier/go ]; do sleep 0.01; done"
conc_rows=""
base_tput=""
for n in 1 2 4 8; do
    rm -f "$W/barrier/go"
    pids=()
    for ((k = 0; k < n; k++)); do
        "$IMGFS" run --rm --name "job$k" -v "$W/barrier:/barrier:ro" busybox sh -c "$WAIT; $JOB" &
        pids+=($!)
    done
    for _ in $(seq 1200); do
        (($(running_monitors | wc -l) == n)) && break
        sleep 0.05
    done
    mons=$(running_monitors | tr '\n' ' ')
    (($(wc -w <<<"$mons") == n)) || { echo "run.sh: the $n containers did not all start" >&2; exit 1; }
    peak=0
    for _ in 1 2 3 4 5; do
        kib=$(pss_tree_kib "${pids[@]}" $mons)
        ((kib > peak)) && peak=$kib
        sleep 0.1
    done
    start=$(date +%s.%N)
    touch "$W/barrier/go"
    wait "${pids[@]}"
    end=$(date +%s.%N)
    wall=$(jq -n "$end - $start")
    tput=$(jq -n "$n / $wall")
    [[ -n $base_tput ]] || base_tput=$tput
    conc_rows+=$(printf '| %d | %.2f | %.2f | %.2fx | %.1f | %.1f |' "$n" "$wall" "$tput" \
        "$(jq -n "$tput / $base_tput")" "$(jq -n "$peak / 1024")" "$(jq -n "$peak / 1024 / $n")")
    conc_rows+=$'\n'
    echo "n=$n wall=${wall}s PSS=${peak} KiB" >&2
done
holder_mon=$(jq -r 'select(.name == "holder") | .monitor_pid' "$IMGFS_RUN_DIR"/containers/*/state.json)
fuse_pid=""
for p in /proc/[0-9]*; do # the process holding /dev/fuse and this store open
    fds=$(ls -l "$p/fd" 2>/dev/null || true)
    if grep -q ' /dev/fuse$' <<<"$fds" && grep -qF "$IMGFS_ROOT/" <<<"$fds"; then
        fuse_pid=${p#/proc/}
        break
    fi
done
fuse_kib=$(awk '/^Pss:/ {print $2}' "/proc/$fuse_pid/smaps_rollup" 2>/dev/null || echo 0)

{
    start_report
    echo
    echo "### Network throughput ($NET_MB MiB over HTTP, median of 5)"
    echo
    echo "| path | private (slirp4netns) MiB/s | --network host MiB/s | private / host |"
    echo "|---|---|---|---|"
    printf '| outbound: container wget from host 127.0.0.1 (incl. container start) | %.0f | %.0f | %.2f |\n' \
        "$(mibps out-private)" "$(mibps out-host)" "$(jq -n "$(mibps out-private) / $(mibps out-host)")"
    printf '| inbound: host curl from container httpd (-p) | %.0f | %.0f | %.2f |\n' \
        "$(mibps in-private)" "$(mibps in-host)" "$(jq -n "$(mibps in-private) / $(mibps in-host)")"
    echo
    echo "### Concurrent CPU-bound containers (busybox sh loop of $LOOP iterations each)"
    echo
    echo "| n | wall s | jobs/s | vs n=1 | total PSS MiB | PSS MiB per container |"
    echo "|---|---|---|---|---|---|"
    printf '%s' "$conc_rows"
    echo
    printf 'The shared FUSE daemon of the image (one for all containers): %.1f MiB PSS. ' \
        "$(jq -n "$fuse_kib / 1024")"
    printf 'Holder container (monitor+init+sleep): %.1f MiB PSS.\n' \
        "$(jq -n "$(pss_tree_kib $holder_mon) / 1024")"
} | tee "$OUT/run.md"
