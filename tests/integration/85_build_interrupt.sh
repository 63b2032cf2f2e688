#!/bin/bash
# Ctrl-C of imgfs build is honoured wherever it lands: exit 130, nothing named, no container or
# step directory left, fsck clean.
# - At the two moments a race could lose it, made to happen every time under gdb (the threads
#   held where the race needs them, SIGINT sent with queue-signal): SIGINT pending while the
#   build's main thread starts its worker (it has the signal blocked then) and the worker's RUN
#   already running — the signal was caught just before the main thread's wait, which slept
#   until the RUN ended (a `sleep` of years); and SIGINT as the last step ends, before the image
#   is named (it used to be named, exit 0).
# - SIGINT from outside at several points of a build (FROM done, RUN's output seen).
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
t_begin build_interrupt
t_need_fixture busybox.tar
command -v gdb >/dev/null || t_skip "gdb not installed"
"$IMGFS" import -q -t busybox:latest "$FIXTURES/busybox.tar" >/dev/null

C=$T/ctx
mkdir -p "$C"
# the sleep's argument is unique to this run, so pgrep finds only the processes this test started
sleep_arg=$((100000000 + RANDOM * 32768 + RANDOM))
printf 'FROM busybox:latest\nRUN echo started && sleep %s\n' "$sleep_arg" >"$C/Dockerfile.sleep"
printf 'FROM busybox:latest\nRUN echo quick >/f\n' >"$C/Dockerfile.quick"
sleeping() { pgrep -f "^sleep $sleep_arg\$" >/dev/null; }
ended() { ! kill -0 "$1" 2>/dev/null; }

# the state every interrupted build must leave: $1 says which
t_clean() {
    t_check_fails "$1: nothing was named" "$IMGFS" inspect interrupted
    t_check "$1: no sleep runs on" t_wait_for 200 eval '! sleeping'
    t_eq "$1: no step directory is left" "" "$(ls "$IMGFS_ROOT/tmp" 2>/dev/null)"
    t_check "$1: fsck is clean" "$IMGFS" fsck
}

# gdb_build WHAT DOCKERFILE GDB-COMMANDS...: imgfs build under gdb, SIGINT queued where the
# commands say; the build's exit status is gdb's ($_exitcode). Sets GPID and the log $T/gdb.log.
gdb_build() {
    local what=$1 df=$2
    shift 2
    local cmds=() c
    for c in "$@"; do cmds+=(-ex "$c"); done
    # LeakSanitizer cannot stop the world of a process gdb traces already
    ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0 \
        gdb -q -batch -ex 'set pagination off' -ex 'handle SIGINT nostop noprint pass' \
        "${cmds[@]}" -ex delete -ex 'queue-signal SIGINT' -ex 'set scheduler-locking off' \
        -ex continue -ex 'quit $_exitcode' \
        --args "$IMGFS" build --progress plain -f "$C/$df" -t interrupted "$C" >"$T/gdb.log" 2>&1 &
    GPID=$!
    t_cleanup "gdb_kill $GPID"
}
# the build under gdb $1 (gdb's child) and gdb, by PID
gdb_kill() {
    local p
    for p in $(pgrep -P "$1"); do kill -9 "$p"; done
    kill -9 "$1" 2>/dev/null || true
}

# ---- SIGINT pending while the workers start: the main thread held just after it started the
# worker (the signal blocked) while the worker alone goes on until its RUN's container runs; then
# SIGINT for the main thread, and it goes on
gdb_build "workers" Dockerfile.sleep 'break build_stages' run 'break pthread_create' continue \
    finish delete 'set scheduler-locking on' 'thread 2' 'break build_monitor_add' continue 'thread 1'
t_check "the RUN started (the check below can fail)" t_wait_for 600 grep -q "started" "$T/gdb.log"
t_check "the build ends without waiting for the RUN" t_wait_for 600 ended "$GPID"
ended "$GPID" || gdb_kill "$GPID"
rc=0
wait "$GPID" || rc=$?
t_eq "SIGINT while the workers start: exit 130" 130 "$rc"
t_eq "... 'interrupted' said once" 1 "$(grep -c "interrupted" "$T/gdb.log")"
t_clean "SIGINT while the workers start"

# ---- SIGINT as the last step ends: every step done, still nothing named
# (the main thread joins the workers when every one has said it ended)
gdb_build "commit" Dockerfile.quick 'break pthread_join' run
rc=0
wait "$GPID" || rc=$?
t_check "the steps ran (the check below can fail)" grep -q "^#2 DONE" "$T/gdb.log"
t_eq "SIGINT after the last step: exit 130" 130 "$rc"
t_check_fails "... nothing was written as an image" grep -q "naming to" "$T/gdb.log"
t_clean "SIGINT after the last step"

# ---- SIGINT from outside at several points
for at in "#1 DONE" "started"; do
    "$IMGFS" build --progress plain -f "$C/Dockerfile.sleep" -t interrupted "$C" >"$T/int.log" 2>&1 &
    bpid=$!
    t_cleanup "kill -9 $bpid"
    t_check "SIGINT at '$at': the build got there" t_wait_for 600 grep -q "$at" "$T/int.log"
    kill -INT "$bpid"
    t_check "SIGINT at '$at': the build ends" t_wait_for 600 ended "$bpid"
    rc=0
    wait "$bpid" || rc=$?
    t_eq "SIGINT at '$at': exit 130" 130 "$rc"
    t_clean "SIGINT at '$at'"
done

printf 'FROM busybox:latest\nRUN echo after >/after\n' >"$C/Dockerfile"
t_check "the next build works" "$IMGFS" build -q -t after "$C"
t_end
