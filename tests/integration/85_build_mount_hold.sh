#!/bin/bash
# imgfs build: the FROM image is mounted once for the whole build. Every RUN of the build (and of
# every stage FROM that image) runs on the same FUSE mount — one daemon, one page cache — made at
# the first RUN and unmounted, its daemon gone, when the build ends: after a success, a failing
# RUN and Ctrl-C alike. Observed from the host while each RUN waits on a FIFO in a cache mount:
# the FUSE mounts under the run directory (their mount IDs: a new mount gets a new one) and the
# image's daemons.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
t_begin build_mount_hold
t_need_fixture busybox.tar
t_build_setup
"$IMGFS" import -t busybox:latest "$FIXTURES/busybox.tar" >/dev/null
C=$T/ctx
mkdir -p "$C"
# the cache mount id=sync, as the host sees it (builder/run.c: ROOT/build-cache-mounts/sha256(id))
S=$IMGFS_ROOT/build-cache-mounts/$(printf sync | sha256sum | cut -c1-64)

# The FUSE mounts under the run directory now, one mount point a line.
fuse_mounts() {
    awk -v p="$IMGFS_RUN_DIR/" 'index($5, p) == 1 && $0 ~ / - fuse/ { print $5 }' /proc/self/mountinfo
}
# The processes of the image mounts under the run directory — the daemon and its keeper, which
# keep the mount's log (RUN_DIR/images/KEY/mount.log) open — as "PID START_TIME" lines: a new
# mount has new ones (mount IDs and FUSE device numbers are reused at once, pids are not).
daemons() {
    local p f
    for p in /proc/[0-9]*; do
        for f in "$p"/fd/*; do
            if [[ $(readlink "$f" 2>/dev/null) == "$IMGFS_RUN_DIR"/images/*/mount.log ]]; then
                echo "${p#/proc/} $(cut -d' ' -f22 "$p/stat" 2>/dev/null)"
                break
            fi
        done
    done 2>/dev/null
    return 0
}
no_daemons() { [[ -z $(daemons) ]]; }
# A RUN that tells the host it runs (a line N on the FIFO `ready`) and waits for it (`go-N`).
step() { echo "RUN --mount=type=cache,id=sync,target=/s { mkfifo /s/ready 2>/dev/null || test -p /s/ready; } && mkfifo /s/go-$1 && echo $1 >/s/ready && cat /s/go-$1 && echo $1 >/ran-$1"; }

# Start `imgfs build --no-cache ARGS...` in the background ($pid, "" once reaped), with the
# host's end of the FIFO `ready` open read-write (it never sees EOF between the RUNs).
pid=""
kill_build() { [[ -z $pid ]] || kill "$pid"; }
t_cleanup kill_build
start_build() {
    rm -rf "$S"
    mkdir -p "$S"
    mkfifo "$S/ready"
    exec {ready}<>"$S/ready"
    "$IMGFS" build --progress plain --no-cache "$@" >"$T/build.log" 2>&1 &
    pid=$!
}
# Wait for the next RUN to say it runs; its number in $n ("" when the build ended instead).
next_run() {
    n=""
    while kill -0 "$pid" 2>/dev/null; do
        read -r -t 1 -u "$ready" n && return 0
    done
    return 0
}
end_build() {
    rc=0
    wait "$pid" || rc=$?
    pid=""
    exec {ready}>&-
}

# ---- three RUNs in two stages FROM one image: one mount for all ----
{
    echo "FROM busybox:latest AS first"
    step 1
    echo "FROM busybox:latest"
    echo "COPY --from=first /ran-1 /"
    step 2
    echo "RUN true"
    step 3
} >"$C/Dockerfile"
start_build -t held "$C"
seen=()
procs=()
for i in 1 2 3; do
    next_run
    [[ -n $n ]] || break
    seen+=("$(fuse_mounts | wc -l)")
    procs+=("$(daemons | sort | paste -sd,)")
    echo go >"$S/go-$n"
done
end_build
t_eq "the build with three RUNs on one image succeeds" 0 "$rc"
((rc == 0)) || cat "$T/build.log"
t_eq "the host saw each of the three RUNs running" 3 "${#procs[@]}"
t_eq "one FUSE mount under the run directory during each RUN" "1 1 1" "${seen[*]}"
t_check "the image's daemon was found during the first RUN" test -n "${procs[0]:-}"
t_eq "... the same daemon processes during all three: mounted once" \
    "${procs[0]:-none} ${procs[0]:-none} ${procs[0]:-none}" "${procs[*]}"
t_eq "no mount is left after the build" "" "$(grep -F " $IMGFS_RUN_DIR/" /proc/mounts || true)"
t_check "... and the image's daemon is gone" t_wait_for 2000 no_daemons
t_eq "no holder is left in the run directory" "" "$(ls -A "$IMGFS_RUN_DIR/containers" 2>/dev/null)"
mnt held
t_eq "every RUN ran" "1 2 3" "$(cat "$M/ran-1" "$M/ran-2" "$M/ran-3" | paste -sd' ')"
"$IMGFS" umount "$M"

# ---- a failing RUN: the held mount goes too ----
{
    echo "FROM busybox:latest"
    step 1
    echo "RUN exit 3"
} >"$C/Dockerfile"
start_build -t failing "$C"
next_run
mounted=$(fuse_mounts)
[[ -n $n ]] && echo go >"$S/go-$n"
end_build
t_check "the mount was up during the first RUN" test -n "$mounted"
t_eq "the build fails" 1 "$rc"
t_check "... at its second RUN" grep -q "exit code: 3" "$T/build.log"
t_eq "no mount is left after the failed build" "" "$(grep -F " $IMGFS_RUN_DIR/" /proc/mounts || true)"
t_check "... and the image's daemon is gone" t_wait_for 2000 no_daemons

# ---- Ctrl-C during a RUN ----
{
    echo "FROM busybox:latest"
    echo "RUN echo before"
    step 1
} >"$C/Dockerfile"
start_build -t interrupted "$C"
next_run
mounted=$(fuse_mounts)
kill -INT "$pid"
end_build
t_check "the mount was up during the RUN" test -n "$mounted"
t_eq "the interrupted build exits 130" 130 "$rc"
t_eq "no mount is left after Ctrl-C" "" "$(grep -F " $IMGFS_RUN_DIR/" /proc/mounts || true)"
t_check "... and the image's daemon is gone" t_wait_for 2000 no_daemons
t_check_fails "nothing is named" "$IMGFS" inspect interrupted
t_eq "no container is left" "" "$("$IMGFS" ps -a -q)"
t_end
