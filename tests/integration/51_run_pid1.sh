#!/bin/bash
# The command as PID 1 (issue 9 §2), Docker as the oracle: without --init the command is the
# container's PID 1 and gets only the signals it has handlers for (so `stop` of a shell that ignores
# SIGTERM ends in SIGKILL after the timeout, 137), orphans are its to reap; with --init imgfs-init
# is PID 1, reaps them and passes signals on. The same busybox image and commands in a private
# dockerd (--network none) and in imgfs.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
t_begin run_pid1
t_need_fixture busybox.tar
"$IMGFS" import -q -t busybox "$FIXTURES/busybox.tar"
t_check "a private dockerd" t_dockerd
"$IMGFS" export -f docker -o "$T/bb.tar" busybox
D load -i "$T/bb.tar" >/dev/null
t_cleanup "'$IMGFS' ps -aq | xargs -r '$IMGFS' rm -f"
t_cleanup "D ps -aq | xargs -r docker -H 'unix://$T_DOCKER_SOCK' rm -f"
status() { set +e; "$@" >/dev/null 2>&1; echo $?; set -e; }
# Docker's side from its daemon, not its CLI's attach: under load `docker run` can end before its
# container ("error waiting for container": output cut, 125 for a status). `drun ARGS...` prints
# the container's output once it has ended, `drun_status ARGS...` its exit code.
# Under load the oracle also fails to start a container now and then ("OCI runtime create
# failed: exec: \"sh\": executable file not found"; `run -d` then exits non-zero, before any
# command ran): `orun_d NAME ARGS...` tries again then, up to five times.
orun_d() {
    local name=$1 try
    shift
    for try in 1 2 3 4 5; do
        D run -d --network none --name "$name" "$@" >/dev/null 2>"$T/orun.err" && return 0
        t_note "docker could not start $name (try $try): $(tail -n 1 "$T/orun.err")" >&2
        D rm -f "$name" >/dev/null 2>&1 || true
    done
    return 1
}
drun_n=0
drun_start() {
    drun_name=pid1-$BASHPID-$((++drun_n))
    orun_d "$drun_name" "$@"
}
# It also started one now and then on a root without the image's files: with --init its tini
# says "exec sh failed" (exit 127). `drun_ended ARGS...` runs one to its end, again (up to five
# times) when it did not see its image.
drun_ended() {
    local try
    for try in 1 2 3 4 5; do
        drun_start "$@"
        drun_code=$(D wait "$drun_name")
        D logs "$drun_name" >"$T/drun.out" 2>&1
        D rm "$drun_name" >/dev/null
        grep -q '^\[FATAL tini ([0-9]*)\] exec .* failed: No such file' "$T/drun.out" || return 0
        t_note "docker's container did not see its image (try $try): $(cat "$T/drun.out")" >&2
    done
}
drun() {
    drun_ended "$@"
    cat "$T/drun.out"
}
drun_status() {
    drun_ended "$@"
    echo "$drun_code"
}

# The PID the command sees, and the process table
t_eq "no --init: the command's \$\$ as in docker" \
    "$(drun busybox sh -c 'echo $$')" \
    "$("$IMGFS" run --rm --network none busybox sh -c 'echo $$')"
t_eq "the command is PID 1" 1 "$("$IMGFS" run --rm --network none busybox sh -c 'echo $$')"
# Docker's tini execs the command later (PID 7 here): only "not 1" is the same
t_check "--init: the command is not PID 1" \
    test "$("$IMGFS" run --rm --network none --init busybox sh -c 'echo $$')" != 1
for init in "" --init; do
    m=${init:-"no --init"}
    d=$(drun $init busybox ps -o pid,comm | awk 'NR > 1 && $1 == 1 {print $2}')
    i=$("$IMGFS" run --rm --network none $init busybox ps -o pid,comm | awk 'NR > 1 && $1 == 1 {print $2}')
    t_note "$m: PID 1 in ps: docker $d, imgfs $i"
    if [[ -z $init ]]; then
        t_eq "$m: ps shows the command as PID 1, as docker" "$d" "$i"
    else
        t_eq "--init: ps shows imgfs-init as PID 1 (docker: $d)" imgfs-init "$i"
    fi
done

# Exit codes, including signals a PID 1 sends itself (ignored without a handler, even SIGKILL)
for cmd in 'exit 0' 'exit 1' 'kill -9 $$' 'kill -15 $$' 'sleep 0 && exit 7'; do
    for init in "" --init; do
        m=${init:-"no --init"}
        t_eq "$m: exit status of sh -c '$cmd' as in docker" \
            "$(drun_status $init busybox sh -c "$cmd")" \
            "$(status "$IMGFS" run --rm --network none $init busybox sh -c "$cmd")"
    done
done

# stop: PID 1 ignores the SIGTERM it has no handler for (a shell: trap "" or none at all), so stop
# waits its timeout and sends SIGKILL: 137. With --init the init passes SIGTERM on to the command
# (not PID 1: the default action kills it, 143), unless the command ignores it.
says_up() { "$1" logs "$2" 2>/dev/null | grep -q up; }
stop_code() { # TOOL NAME INIT CMD: the exit code after `stop -t 1`
    local tool=$1 name=$2 init=$3 cmd=$4
    if [[ $tool == D ]]; then
        orun_d "$name" $init busybox sh -c "$cmd"
    else
        $tool run -d --network none --name "$name" $init busybox sh -c "$cmd" >/dev/null
    fi
    # -d returns once the command runs, not once its trap is set: wait for it to say so
    t_wait_for 400 says_up "$tool" "$name" || true
    $tool stop -t 1 "$name" >/dev/null
    $tool wait "$name"
    $tool rm "$name" >/dev/null
}
ignores='trap "" TERM; echo up; while :; do sleep 0.05; done'
plain='echo up; while :; do sleep 0.05; done'
for cmd in "$ignores" "$plain"; do
    t_eq "no --init: stop of sh -c '$cmd': exit code as docker" \
        "$(stop_code D dstop "" "$cmd")" "$(stop_code "$IMGFS" istop "" "$cmd")"
done
# docker --init (tini) gave 143 and 137 here by hand, but now and then something else under load
# (127 once): its figures are notes, imgfs's are checked below
t_note "docker --init: stop of a shell: $(stop_code D dstop --init "$plain"), ignoring SIGTERM:" \
    "$(stop_code D dstop --init "$ignores")"
t_eq "a shell as PID 1 without a TERM trap: stop ends in SIGKILL" 137 \
    "$(stop_code "$IMGFS" istop "" "$plain")"
t_eq "--init: stop's SIGTERM kills the shell" 143 "$(stop_code "$IMGFS" istop --init "$plain")"
t_eq "--init: a shell ignoring SIGTERM: SIGKILL" 137 "$(stop_code "$IMGFS" istop --init "$ignores")"

# Orphans: without --init PID 1 (here `sleep`, which never waits) leaves them zombies, as in Docker;
# imgfs-init reaps them. The orphan ends only when told to, once `sleep` runs (before, it ended on
# its own and the shell, still PID 1 on a loaded machine, could reap it), and is counted once it
# has ended. ("orpha[n]" keeps the checker's own command line from matching.)
orphan='(exec /bin/sh -c "m=orphan; until [ -e /tmp/go ]; do usleep 10000; done" &); exec sleep 1000'
zombies='until pidof sleep >/dev/null; do usleep 10000; done; touch /tmp/go
while ps -o stat,args | grep -v "^Z" | grep -q "m=orpha[n]"; do usleep 20000; done
ps -o stat | grep -c "^Z" || true'
orphan_zombies() { # TOOL INIT
    if [[ $1 == D ]]; then
        orun_d orphans $2 busybox sh -c "$orphan"
    else
        "$1" run -d --network none --name orphans $2 busybox sh -c "$orphan" >/dev/null
    fi
    "$1" exec orphans sh -c "$zombies"
    "$1" rm -f orphans >/dev/null
}
d=$(orphan_zombies D "")
t_eq "no --init: the orphan stays a zombie" 1 "$(orphan_zombies "$IMGFS" "")"
t_eq "no --init: as in docker ($d)" "$d" "$(orphan_zombies "$IMGFS" "")"
t_eq "--init: the orphan is reaped" 0 "$(orphan_zombies "$IMGFS" --init)"
t_end
