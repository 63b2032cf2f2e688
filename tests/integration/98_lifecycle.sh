#!/bin/bash
# create, start, restart and --restart policies (issue 9): a created container has not run; start
# runs it with its stored options, detached or attached (-a); a stopped one keeps its writable
# layer; the monitor restarts by policy (on-failure:N, always), shows "Restarting (N) ..." between
# runs, and stop/kill end the policy.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
t_begin lifecycle
t_need_fixture busybox.tar
"$IMGFS" import -q -t busybox "$FIXTURES/busybox.tar"
t_cleanup "'$IMGFS' ps -aq | xargs -r '$IMGFS' rm -f"
state() { "$IMGFS" inspect -f "$2" "$1"; }
monitor_gone() { "$IMGFS" wait "$1" >/dev/null; } # wait returns once no monitor holds it

# ---- create: on disk, nothing ran ----
id=$("$IMGFS" create --network none --name c1 -e K=v -w /tmp busybox \
    sh -c 'echo "run $K $(pwd)"; echo x >>/kept; wc -l </kept; exit 3')
t_check "create prints a full id" grep -Eq '^[0-9a-f]{64}$' <<<"$id"
t_eq "ps -a: Created" "c1|Created|created" "$("$IMGFS" ps -a --format '{{.Names}}|{{.Status}}|{{.State}}')"
t_eq "ps without -a does not list it" "" "$("$IMGFS" ps -q)"
t_eq "inspect: created, never started" "created false 0001-01-01T00:00:00Z" \
    "$(state c1 '{{.State.Status}} {{.State.Running}} {{.State.StartedAt}}')"
t_check_fails "its command did not run (no file in its writable layer)" \
    test -e "$IMGFS_RUN_DIR/containers/$id/upper/kept"
t_eq "its options are kept for start" "/tmp K=v" "$(state c1 '{{.Config.WorkingDir}} {{index .Config.Env 0}}')"

# ---- start: detached, with the stored options ----
t_eq "start prints the name" "c1" "$("$IMGFS" start c1)"
t_check "it ends" t_wait_for 400 sh -c "[ \"\$('$IMGFS' inspect -f '{{.State.Status}}' c1)\" = exited ]"
t_eq "with its exit status" 3 "$(state c1 '{{.State.ExitCode}}')"
t_eq "its output is in the log, with -e and -w applied" "run v /tmp
1" "$("$IMGFS" logs c1)"
# ---- start -a of the exited container: the same writable layer, our stdout, its status ----
out=$("$IMGFS" start -a c1) && rc=0 || rc=$?
t_eq "start -a: its exit status" 3 "$rc"
t_eq "start -a: its output on ours; /kept has both runs' lines (the layer was kept)" "run v /tmp
2" "$out"
t_eq "the id did not change" "$id" "$(state c1 '{{.Id}}')"

# ---- start of a running container: nothing happens, as Docker ----
"$IMGFS" run -d --network none --name svc busybox sleep 1000 >/dev/null
pid=$(state svc '{{.State.Pid}}')
t_eq "start of a running one: its name, status 0" "svc
0" "$("$IMGFS" start svc; echo $?)"
t_eq "... and it is the same process" "$pid" "$(state svc '{{.State.Pid}}')"
t_check_fails "start -a of a running one is refused (no attach)" "$IMGFS" start -a svc

# ---- restart: stopped, then running again (a new init) ----
t_eq "restart prints the name" "svc" "$("$IMGFS" restart -t 1 svc)"
t_eq "running again" "running" "$(state svc '{{.State.Status}}')"
t_check "with a new init" test "$pid" != "$(state svc '{{.State.Pid}}')"
t_check_fails "the old one is gone" kill -0 "$pid" 2>/dev/null
t_eq "restart of an exited one runs it" "c1" "$("$IMGFS" restart c1)"
t_check "it ran a third time" t_wait_for 400 sh -c "'$IMGFS' logs c1 | grep -qx 3"

# ---- --restart on-failure:2: two restarts, then it stays exited ----
"$IMGFS" run -d --network none --name of --restart on-failure:2 busybox sh -c 'echo ran; exit 4' >/dev/null
t_check "on-failure:2 ends after two restarts" monitor_gone of
t_eq "RestartCount, status, exit code" "2 exited 4" "$(state of '{{.RestartCount}} {{.State.Status}} {{.State.ExitCode}}')"
t_eq "HostConfig.RestartPolicy" '{"MaximumRetryCount":2,"Name":"on-failure"}' \
    "$("$IMGFS" inspect -f '{{json .HostConfig.RestartPolicy}}' of | jq -cS .)"
t_eq "three runs in the log" 3 "$("$IMGFS" logs of | grep -c '^ran$')"
"$IMGFS" run -d --network none --name ok --restart on-failure busybox true >/dev/null
monitor_gone ok
t_eq "on-failure does not restart a zero exit" "0 exited 0" "$(state ok '{{.RestartCount}} {{.State.Status}} {{.State.ExitCode}}')"

# ---- --restart always: "Restarting (5) ..." between runs (the wait doubles: it gets long enough
# to see), stop ends it at once ----
"$IMGFS" run -d --network none --name al --restart always busybox sh -c 'exit 5' >/dev/null
restarting() { "$IMGFS" ps --format '{{.Names}}|{{.Status}}|{{.State}}' | grep -q '^al|Restarting (5) .* ago|restarting$'; }
t_check "ps (without -a) shows Restarting (5)" t_wait_for 400 restarting
# (each wait is twice as long as the one before: inspect catches one, as ps did)
restarting_inspect() {
    [[ $(state al '{{.State.Status}} {{.State.Running}} {{.State.Restarting}} {{.State.Pid}} {{.State.ExitCode}}') == "restarting true true 0 5" ]]
}
t_check "inspect while restarting: restarting, Running and Restarting, no pid, the exit code" \
    t_wait_for 400 restarting_inspect
t_check "RestartCount counts" test "$(state al '{{.RestartCount}}')" -ge 1
t_eq "stop of a restarting container" "al" "$("$IMGFS" stop al)"
t_eq "it stays exited, no monitor left" "exited" "$(state al '{{.State.Status}}')"
t_check "(the monitor is gone)" monitor_gone al
t_eq "start of it runs it again (count reset)" "al" "$("$IMGFS" start al)"
t_check "... restarting again" t_wait_for 400 restarting
"$IMGFS" rm -f al >/dev/null
t_check_fails "rm -f removed it for good" "$IMGFS" inspect al

# ---- kill ends an `always` policy (Docker: a container killed by hand stays stopped) ----
"$IMGFS" run -d --network none --name k --restart always busybox sleep 1000 >/dev/null
t_eq "kill" "k" "$("$IMGFS" kill k)"
t_check "the monitor ends instead of restarting" monitor_gone k
t_eq "exited 137, never restarted" "exited 137 0" "$(state k '{{.State.Status}} {{.State.ExitCode}} {{.RestartCount}}')"

# ---- a foreground run with a policy: run returns the first exit status, as Docker's client
# does, and a monitor of its own restarts it in the background ----
out=$("$IMGFS" run --network none --name fg --restart on-failure:1 busybox sh -c 'echo fg-run; exit 6') && rc=0 || rc=$?
t_eq "foreground: the first run's status and output" "6 fg-run" "$rc $out"
t_check "the background monitor restarted it once and ended" monitor_gone fg
t_eq "RestartCount 1, exited 6" "1 exited 6" "$(state fg '{{.RestartCount}} {{.State.Status}} {{.State.ExitCode}}')"
# the foreground run is logged too (as in Docker), then the restarted one
t_eq "both runs' output is in its log" "fg-run
fg-run" "$("$IMGFS" logs fg)"

# ---- wait of a created container blocks until it has run, as Docker's ----
"$IMGFS" create --network none --name w busybox sh -c 'exit 4' >/dev/null
"$IMGFS" wait w >"$T/wait.out" &
waiter=$!
t_cleanup "kill $waiter"
"$IMGFS" start w >/dev/null
wait "$waiter"
t_eq "wait of a created container: the exit code of the run it waited for (not -1)" 4 "$(cat "$T/wait.out")"

# ---- refused ----
t_rc() { "$@" >/dev/null 2>&1 && echo 0 || echo $?; }
t_eq "--restart with --rm: usage error" 125 "$(t_rc "$IMGFS" run --rm --restart always busybox true)"
t_eq "--restart bogus: create's 1 (Docker's daemon refuses it)" 1 "$(t_rc "$IMGFS" create --restart bogus busybox true)"
t_eq "run --restart bogus: 125" 125 "$(t_rc "$IMGFS" run --restart bogus busybox true)"
t_eq "create -d is not an option (as Docker)" 125 "$(t_rc "$IMGFS" create -d busybox true)"
t_eq "start of a missing container" 1 "$(t_rc "$IMGFS" start nosuch)"
t_eq "nothing was left behind by the refused ones" "c1 fg k of ok svc w" \
    "$("$IMGFS" ps -a --format '{{.Names}}' | LC_ALL=C sort | xargs)"
t_end
