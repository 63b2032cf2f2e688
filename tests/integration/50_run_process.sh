#!/bin/bash
# PID 1 duties and the terminal: signals sent to `imgfs run` reach the command, orphans are reaped,
# -it gives the command a real pty (driven here through python3's pty module).
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
t_begin run_process
t_need_fixture busybox.tar
"$IMGFS" import -q -t busybox "$FIXTURES/busybox.tar"
run() { "$IMGFS" run --rm --network none "$@"; }

# signals to the foreground `imgfs run` are forwarded to the command (PID 1 itself, or under
# imgfs-init with --init)
forwarded() { # forwarded SIG [--init]
    local sig=$1 init=${2:-} tag=$1${2:-}
    mkfifo "$T/ready-$tag"
    "$IMGFS" run --rm --network none $init -v "$T:/t" busybox sh -c "trap 'echo caught-$sig; exit 9' $sig; echo up > /t/ready-$tag; while :; do sleep 0.05; done" >"$T/out-$tag" &
    local pid=$! rc
    t_cleanup "kill -9 $pid"
    read -r _ <"$T/ready-$tag"
    kill -s "$sig" "$pid"
    set +e
    wait "$pid"
    rc=$?
    set -e
    t_eq "SIG$sig $init forwarded, trap ran" "caught-$sig" "$(cat "$T/out-$tag")"
    t_eq "SIG$sig $init: the command's status" 9 "$rc"
}
for sig in TERM INT HUP USR1; do forwarded $sig; done
for sig in TERM USR1; do forwarded $sig --init; done

# --init: an untrapped SIGTERM kills the command (it is not PID 1, so the default action applies;
# without --init PID 1 ignores it, as in Docker: 51_run_pid1)
mkfifo "$T/ready-plain"
"$IMGFS" run --rm --network none --init -v "$T:/t" busybox sh -c 'echo up > /t/ready-plain; exec sleep 1000' &
pid=$!
t_cleanup "kill -9 $pid"
read -r _ <"$T/ready-plain"
kill -TERM "$pid"
set +e
wait "$pid"
rc=$?
set -e
t_eq "SIGTERM without a handler: 143" 143 "$rc"

# --init: orphans re-parented to PID 1 are reaped (without it, by the command or nobody: 51_run_pid1)
out=$(run --init busybox sh -c '
    for i in 1 2 3 4 5; do (sleep 0.01 &) ; done
    # wait until the orphans have ended, then count zombies
    while [ -n "$(ps -o pid,comm | grep -w sleep)" ]; do sleep 0.02; done
    ps -o stat,comm | grep -c "^Z" || true')
t_eq "no zombies left by orphans" "0" "$out"

# the command's own children are not killed early: the container ends when the command ends
t_eq "background output before exit" "child done" \
    "$(run busybox sh -c '(sleep 0.1; echo child done) & wait')"

# -it: a real terminal
cat >"$T/drive.py" <<'PY'
import os, pty, sys, select
pid, fd = pty.fork()
if pid == 0:
    os.execvp(sys.argv[1], sys.argv[1:])
os.write(fd, b"tty; echo term=$TERM; echo sum=$((6*7)); exit 5\n")
out = b""
while True:
    r, _, _ = select.select([fd], [], [], 60)
    if not r:
        break
    try:
        d = os.read(fd, 4096)
    except OSError:
        break
    if not d:
        break
    out += d
_, st = os.waitpid(pid, 0)
sys.stdout.write(out.decode(errors="replace").replace("\r", ""))
print("exit=%d" % os.waitstatus_to_exitcode(st))
PY
out=$(python3 "$T/drive.py" "$IMGFS" run --rm -it --network none busybox sh)
t_check "-it: stdin is a pty" grep -q "^/dev/pts/0$" <<<"$out"
t_check "-it: TERM set" grep -q "^term=xterm$" <<<"$out"
t_check "-it: the shell ran our input" grep -q "^sum=42$" <<<"$out"
t_check "-it: exit status through" grep -q "^exit=5$" <<<"$out"
t_eq "without -t: no tty" "not a tty" "$(run busybox tty || true)"
out=$(python3 "$T/drive.py" "$IMGFS" run --rm -t --network none busybox sh -c 'tty; test -t 1 && echo stdout-tty')
t_check "-t without -i: a pty" grep -q "^/dev/pts/0$" <<<"$out"
t_check "-t without -i: stdout is the pty" grep -q "^stdout-tty$" <<<"$out"

# exec -it
"$IMGFS" run -d --network none --name bg busybox sleep 1000 >/dev/null
t_cleanup "'$IMGFS' rm -f bg"
out=$(python3 "$T/drive.py" "$IMGFS" exec -it bg sh)
t_check "exec -it: a pty of the container" grep -q "^/dev/pts/[0-9]*$" <<<"$out"
t_check "exec -it: exit status" grep -q "^exit=5$" <<<"$out"
t_end
