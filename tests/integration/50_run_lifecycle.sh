#!/bin/bash
# Containers in the background: -d, ps (also when the monitor is killed), logs, stop, kill, rm, exec,
# names, --rm, and the shared image mount (one per image, gone after the last container).
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
t_begin run_lifecycle
t_need_fixture busybox.tar
"$IMGFS" import -q -t busybox "$FIXTURES/busybox.tar"
running() { "$IMGFS" ps -q --no-trunc | grep -q "^$1"; }
state() { "$IMGFS" ps -a --json | jq -r ".[] | select(.name == \"$1\") | .$2"; }
image_mounts() { grep -c " $IMGFS_RUN_DIR/images/.*/rootfs fuse" /proc/mounts || true; }
image_mount() { awk -v p="^$IMGFS_RUN_DIR/images/.*/rootfs\$" '$2 ~ p && $3 ~ /^fuse/ {print $2}' /proc/mounts; }
# stop everything at exit, by container (the monitor kills what is in it)
t_cleanup "'$IMGFS' ps -q | xargs -r '$IMGFS' rm -f"

# -d prints the id and returns while the command runs
id=$("$IMGFS" run -d --network none --name web busybox \
    sh -c 'trap "echo got-term; exit 7" TERM; echo started; echo to-stderr >&2; while :; do sleep 0.05; done')
t_check "-d prints a full id" grep -Eq '^[0-9a-f]{64}$' <<<"$id"
t_check "ps shows it running" running "$id"
t_eq "ps --json state" "running" "$(state web state)"
t_eq "one image mount" 1 "$(image_mounts)"
t_check "logs has stdout and stderr" t_wait_for 200 sh -c "'$IMGFS' logs web 2>&1 | grep -q to-stderr"
t_eq "logs content" "started
to-stderr" "$("$IMGFS" logs web 2>&1)"
t_eq "find by id prefix" "started" "$("$IMGFS" logs "${id:0:8}" | head -1)"

# a second container of the same image shares the mount, and is isolated from the first
id2=$("$IMGFS" run -d --network none --name other busybox sh -c 'echo mine > /tmp/file; sleep 1000')
t_eq "still one image mount" 1 "$(image_mounts)"
t_check "second container wrote its file" t_wait_for 200 "$IMGFS" exec other test -f /tmp/file
t_check_fails "the first container does not see it" "$IMGFS" exec web test -e /tmp/file
t_check "writes land in the container's upper dir" \
    test -f "$IMGFS_RUN_DIR/containers/$id2/upper/tmp/file"
# the shared image mount (found in /proc/mounts, not guessed) is the image: it has busybox's /bin/sh
mnt=$(image_mount)
t_check "the shared image mount is found" test -n "$mnt"
t_check "... and is the image" test -x "$mnt/bin/sh"
t_check_fails "and not in the image" test -e "$mnt/tmp/file"
t_check_fails "a duplicate name is refused" "$IMGFS" run --network none --name web busybox true

# exec
t_eq "exec output" "hello from exec" "$("$IMGFS" exec web echo hello from exec)"
t_eq "exec exit status" 3 "$(set +e; "$IMGFS" exec web sh -c 'exit 3'; echo $?)"
t_eq "exec not found" 127 "$(set +e; "$IMGFS" exec web no-such-cmd 2>/dev/null; echo $?)"
t_eq "exec sees the container's processes" "1" "$("$IMGFS" exec web sh -c 'ps -o pid | grep -cw 1')"
t_eq "exec -e -w -u" "v /tmp 65534" "$("$IMGFS" exec -e X=v -w /tmp -u nobody web sh -c 'echo $X $(pwd) $(id -u)')"
web_init=$(state web pid)
for ns in mnt pid net ipc uts; do
    t_eq "exec joins the container's $ns namespace" "$(readlink /proc/$web_init/ns/$ns)" \
        "$("$IMGFS" exec web readlink /proc/self/ns/$ns)"
done
t_eq "exec has the container's capabilities" "00000000a80425fb" \
    "$("$IMGFS" exec web sh -c 'grep CapEff /proc/self/status | cut -f2')"
t_eq "exec has the seccomp filter" "2" \
    "$("$IMGFS" exec web sh -c 'grep "^Seccomp:" /proc/self/status | cut -f2')"
echo "input line" >"$T/stdin"
t_eq "exec -i passes stdin" "input line" "$("$IMGFS" exec -i web cat <"$T/stdin")"

# stop: SIGTERM reaches the command through PID 1
t_check "stop" "$IMGFS" stop -t 30 web
t_eq "stopped by SIGTERM, its own exit status" "7" "$(state web exit_code)"
t_eq "state exited" "exited" "$(state web state)"
t_check "logs after the end" grep -q got-term <<<"$("$IMGFS" logs web)"
t_check_fails "exec in a stopped container fails" "$IMGFS" exec web true
t_check_fails "ps (running only) does not list it" running "$id"

# stop escalates to SIGKILL when SIGTERM is ignored
"$IMGFS" run -d --network none --name stubborn busybox sh -c 'trap "" TERM; while :; do sleep 0.05; done' >/dev/null
t_check "stop -t 0 of a SIGTERM-ignoring command" "$IMGFS" stop -t 0 stubborn
t_eq "SIGKILL: 137" "137" "$(state stubborn exit_code)"

# stop sends the image's STOPSIGNAL
"$IMGFS" import -q -t quitter -c 'STOPSIGNAL SIGQUIT' "$FIXTURES/busybox.tar"
"$IMGFS" run -d --network none --name quitter quitter sh -c 'trap "exit 33" QUIT; echo ready; while :; do sleep 0.05; done' >/dev/null
# -d returns once the command runs, not once its trap is set: wait for it to say so
t_check "quitter ready" t_wait_for 400 sh -c "'$IMGFS' logs quitter | grep -q ready"
t_check "stop of an image with STOPSIGNAL" "$IMGFS" stop -t 30 quitter
t_eq "STOPSIGNAL was sent" "33" "$(state quitter exit_code)"
"$IMGFS" rm quitter >/dev/null

# kill -s
"$IMGFS" run -d --network none --name hup busybox sh -c 'trap "exit 11" HUP; echo ready; while :; do sleep 0.05; done' >/dev/null
t_check "hup ready" t_wait_for 400 sh -c "'$IMGFS' logs hup | grep -q ready"
t_check "kill -s HUP" "$IMGFS" kill -s HUP hup
t_check "ends after SIGHUP" t_wait_for 400 sh -c "'$IMGFS' ps -a --json | jq -e '.[] | select(.name==\"hup\" and .state==\"exited\")' >/dev/null"
t_eq "its trap's status" "11" "$(state hup exit_code)"
t_check_fails "kill of a stopped container fails" "$IMGFS" kill hup

# ps stays true when the monitor itself is killed
"$IMGFS" run -d --network none --name orphan busybox sleep 1000 >/dev/null
mon=$(cat "$IMGFS_RUN_DIR/containers/$(state orphan id)/state.json" | jq .monitor_pid)
init=$(state orphan pid)
kill -9 "$mon"
t_check "the container dies with its monitor" t_wait_for 400 sh -c "! kill -0 $init"
t_eq "ps reports it exited" "exited" "$(state orphan state)"

# rm
t_check_fails "rm of a running container is refused" "$IMGFS" rm other
t_check "rm -f of a running container" "$IMGFS" rm -f other
t_check "rm of stopped ones" "$IMGFS" rm web stubborn hup orphan
t_eq "nothing left" "" "$("$IMGFS" ps -a -q)"
t_eq "no container directories left" "" "$(ls "$IMGFS_RUN_DIR/containers")"
t_eq "image unmounted after the last container" 0 "$(image_mounts)"

# --rm with -d: gone when it ends by itself
id3=$("$IMGFS" run -d --rm --network none busybox sh -c 'sleep 0.2')
t_check "-d --rm removes itself" t_wait_for 400 test ! -e "$IMGFS_RUN_DIR/containers/$id3"
t_check "help" "$IMGFS" ps --help
t_end
