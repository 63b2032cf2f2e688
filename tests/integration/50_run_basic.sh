#!/bin/bash
# imgfs run on a real imported image: output, exit statuses with Docker's conventions, the image
# config (Env, Entrypoint/Cmd override rules, WorkingDir, User) and the options that change it.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
t_begin run_basic
t_need_fixture busybox.tar
# networking is tested by 70_net_*; the core's tests do not depend on slirp4netns
run() { "$IMGFS" run --rm --network none "$@"; }

"$IMGFS" import -q -t busybox "$FIXTURES/busybox.tar"
"$IMGFS" import -q -t configured -c 'ENV GREETING=hello PATH=/bin:/usr/bin' \
    -c 'ENTRYPOINT ["/bin/echo", "entry"]' -c 'CMD ["default", "args"]' \
    -c 'WORKDIR /srv/app' -c 'USER nobody' "$FIXTURES/busybox.tar"
"$IMGFS" import -q -t shellform -c 'CMD echo shell form $GREETING' -c 'ENV GREETING=hi' \
    "$FIXTURES/busybox.tar"

t_eq "command output" "hello world" "$(run busybox echo hello world)"
t_eq "stdout and stderr" "out err" "$(run busybox sh -c 'echo -n out; echo -n " err" >&2' 2>&1)"

status() { set +e; "$@" >/dev/null 2>&1; echo $?; set -e; }
t_eq "exit 0" 0 "$(status run busybox true)"
t_eq "exit 1" 1 "$(status run busybox false)"
t_eq "exit status passed through" 42 "$(status run busybox sh -c 'exit 42')"
t_eq "not found: 127" 127 "$(status run busybox no-such-command)"
t_eq "not executable: 126" 126 "$(status run busybox /etc/passwd)"
t_eq "a directory: 126" 126 "$(status run busybox /etc)"
t_eq "--init: killed by SIGKILL: 137" 137 "$(status run --init busybox sh -c 'kill -9 $$')"
t_eq "--init: killed by SIGTERM: 143" 143 "$(status run --init busybox sh -c 'kill -15 $$')"
# PID 1 ignores the signals it has no handler for, even its own SIGKILL (as in Docker)
t_eq "PID 1 survives its own kill -9" 0 "$(status run busybox sh -c 'kill -9 $$')"
t_eq "no such image: 125" 125 "$(status run no-such-image true)"
t_eq "no command at all: 125" 125 "$(status run busybox)"
t_eq "bad option: 125" 125 "$(status run --no-such-option busybox true)"
msg=$(run busybox no-such-command 2>&1 || true)
t_check "not-found message names the command" grep -q "no-such-command.*not found" <<<"$msg"

# the image config
t_eq "Entrypoint + Cmd" "entry default args" "$(run configured)"
t_eq "arguments replace Cmd, keep Entrypoint" "entry mine" "$(run configured mine)"
t_eq "--entrypoint drops Cmd" "" "$(run --entrypoint /bin/true configured)"
t_eq "--entrypoint with arguments" "x y" "$(run --entrypoint /bin/echo configured x y)"
t_eq "shell-form Cmd" "shell form hi" "$(run shellform)"
t_eq "image Env" "hello" "$(run --entrypoint /bin/sh configured -c 'echo $GREETING')"
t_eq "image PATH kept" "/bin:/usr/bin" "$(run --entrypoint /bin/sh configured -c 'echo $PATH')"
t_eq "default PATH" "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
    "$(run busybox sh -c 'echo $PATH')"
t_eq "WorkingDir made and entered" "/srv/app" "$(run --entrypoint /bin/pwd configured)"
t_eq "User from the image" "65534:65534" \
    "$(run --entrypoint /bin/sh configured -c 'echo $(id -u):$(id -g)')"
t_eq "HOME from passwd" "/root" "$(run busybox sh -c 'echo $HOME')"

# options
t_eq "-e KEY=VALUE" "v1 v2" "$(run -e A=v1 -e B=v2 busybox sh -c 'echo $A $B')"
t_eq "-e overrides image Env" "bye" \
    "$(run -e GREETING=bye --entrypoint /bin/sh configured -c 'echo $GREETING')"
export FROM_HOST=passed
t_eq "-e KEY takes our value" "passed" "$(run -e FROM_HOST busybox sh -c 'echo $FROM_HOST')"
printf '# comment\nF1=one\n\nF2=two words\n' >"$T/envfile"
t_eq "--env-file" "one|two words" "$(run --env-file "$T/envfile" busybox sh -c 'echo "$F1|$F2"')"
t_eq "-w" "/var/tmp/new" "$(run -w /var/tmp/new busybox pwd)"
t_eq "-u name" "uid=65534(nobody) gid=65534(nogroup) groups=65534(nogroup)" \
    "$(run -u nobody busybox id)"
t_eq "-u uid:gid" "1234:5678" "$(run -u 1234:5678 busybox sh -c 'echo $(id -u):$(id -g)')"
t_eq "-u root over image USER" "0" "$(run -u root --entrypoint /bin/sh configured -c 'id -u')"
t_eq "unknown user: 125" 125 "$(status run -u no-such-user busybox true)"
t_eq "--hostname" "box1" "$(run --hostname box1 busybox hostname)"
t_eq "HOSTNAME env" "box1" "$(run --hostname box1 busybox sh -c 'echo $HOSTNAME')"
t_eq "/etc/hostname" "box1" "$(run --hostname box1 busybox cat /etc/hostname)"
id_host=$(run busybox hostname)
t_check "default hostname is the id prefix" grep -Eq '^[0-9a-f]{12}$' <<<"$id_host"

# PID 1 and namespaces
t_eq "the command is PID 1" "1" "$(run busybox sh -c 'echo $$')"
t_eq "--init: the command is PID 2 under our init" "2" "$(run --init busybox sh -c 'echo $$')"
t_eq "only the container's processes" "1 2" "$(run --init busybox sh -c 'ps -o pid,comm | grep -v " ps$" | tail -n +2 | head -2 | while read p c; do echo -n "$p "; done' | xargs)"
t_check "no host process visible" run busybox sh -c '! ls /proc | grep -qE "^[0-9]{3,}$"'
t_check "own mount namespace" test "$(readlink /proc/self/ns/mnt)" != \
    "$(run busybox readlink /proc/self/ns/mnt)"
t_check "own ipc namespace" test "$(readlink /proc/self/ns/ipc)" != \
    "$(run busybox readlink /proc/self/ns/ipc)"
t_check "own uts namespace" test "$(readlink /proc/self/ns/uts)" != \
    "$(run busybox readlink /proc/self/ns/uts)"
t_check "own net namespace" test "$(readlink /proc/self/ns/net)" != \
    "$(run busybox readlink /proc/self/ns/net)"

t_eq "--init: PID 1 does not show our command line" "imgfs-init" \
    "$(run --init -e SECRET=hidden -v "$T:/t:ro" busybox sh -c 'tr "\0" "\n" < /proc/1/cmdline | head -1')"
t_check_fails "--init: no -e value or host path in /proc/1/cmdline" \
    run --init -e SECRET=hidden -v "$T:/t:ro" busybox grep -qE "hidden|imgfs-test" /proc/1/cmdline
t_eq "PID 1's command line is the command's" "cat /proc/1/cmdline" \
    "$(run -e SECRET=hidden busybox cat /proc/1/cmdline | tr '\0' ' ' | sed 's/ $//')"

# /dev, /proc, /sys as Docker sets them up
devs=$(run busybox sh -c 'cd /dev && ls -d null zero full random urandom tty ptmx pts shm mqueue fd stdin stdout stderr | tr "\n" " "')
t_eq "/dev entries" "fd full mqueue null ptmx pts random shm stderr stdin stdout tty urandom zero " "$devs"
t_eq "/dev/null works" "" "$(run busybox sh -c 'echo x > /dev/null; cat /dev/null')"
t_eq "/dev/zero works" "4" "$(run busybox sh -c 'head -c 4 /dev/zero | wc -c')"
t_check "/sys is read-only" run busybox sh -c 'grep -q " /sys sysfs ro," /proc/mounts'
t_check "/proc/sys is read-only" run busybox sh -c 'grep -q " /proc/sys proc ro," /proc/mounts'
t_check "/dev/pts is a new devpts" run busybox sh -c 'grep -q " /dev/pts devpts .*ptmxmode=666" /proc/mounts'
t_check "host root is not reachable" run busybox sh -c '! grep -q " / ext4" /proc/mounts && ! ls /tmp/imgfs-test.* 2>/dev/null'

# nothing left behind by --rm
t_eq "no container left" "" "$("$IMGFS" ps -a -q)"
t_check_fails "no image mount left" grep -q " $T/" /proc/mounts
t_end
