#!/bin/bash
# What imgfs reads from a container's rootfs (/etc/passwd, /etc/group, the working directory, the
# command) the container controls. A FIFO there used to hang `imgfs exec` forever (also with -u);
# each must now be a clear error: opened without blocking, a regular file (a directory for the
# working directory) of bounded size, resolved inside the container's root. A hang is detected
# without a time limit: the check waits (bounded tries) until the command ended or one of its
# processes sleeps in the kernel's FIFO open (wchan wait_for_partner), then opens the FIFO's other
# end itself to let it go.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/60_security.bash"
t_begin security_exec_hostile
t_need_fixture busybox.tar
sec_image hostile

host_passwd=$(mktemp /tmp/imgfs-hostpasswd.XXXXXX)
t_cleanup "rm -f '$host_passwd'"
printf 'root:x:0:0:root:/root:/bin/sh\nhostonly:x:4242:4242::/:/bin/sh\n' >"$host_passwd"

"$IMGFS" run -d --name hx --network none hostile sleep 100000 >/dev/null
t_cleanup "'$IMGFS' rm -f hx"
t_wait_for 200 bash -c "'$IMGFS' ps | grep -q hx"
init_pid=$("$IMGFS" ps --json | jq -r '.[] | select(.name == "hx") | .pid')
t_check "the container runs (exec answers)" bash -c "[[ \$('$IMGFS' exec hx echo ran) == ran ]]"

# finished_or_blocked PID: true once PID has ended, or it or a child waits for a FIFO's partner
finished_or_blocked() {
    kill -0 "$1" 2>/dev/null || return 0
    local p
    for p in "$1" $(pgrep -P "$1"); do
        [[ $(cat "/proc/$p/wchan" 2>/dev/null) == wait_for_partner ]] && return 0
    done
    return 1
}
# no_hang WHAT PATTERN FIFO COMMAND...: COMMAND ends by itself with exit 125 and an error matching
# PATTERN (grep -E); FIFO (a host path to the container's FIFO) is opened for writing if it hangs.
no_hang() {
    local what=$1 pattern=$2 fifo=$3
    shift 3
    "$@" >"$T/out" 2>&1 &
    local pid=$! rc=0
    t_wait_for 2000 finished_or_blocked "$pid" || true
    if kill -0 "$pid" 2>/dev/null; then
        t_fail "$what: hangs ($(cat "/proc/$pid/wchan" 2>/dev/null))"
        if [[ -n $fifo ]]; then : >"$fifo" & else kill -KILL "$pid"; fi # let it go
    fi
    wait "$pid" || rc=$?
    t_eq "$what: exit 125" 125 "$rc"
    t_check "$what: a clear error ($(head -n 1 "$T/out"))" grep -qE "$pattern" "$T/out"
}
croot=/proc/$init_pid/root

# /etc/passwd a FIFO
"$IMGFS" exec hx sh -c 'cp /etc/passwd /etc/passwd.good; rm /etc/passwd; mkfifo /etc/passwd'
t_check "the container made /etc/passwd a FIFO" test -p "$croot/etc/passwd"
no_hang "exec with a FIFO passwd" '^imgfs exec: .*`/etc/passwd` in the container is not a regular file \(a FIFO\)' \
    "$croot/etc/passwd" "$IMGFS" exec hx true
no_hang "exec -u 1000 with a FIFO passwd" '`/etc/passwd` in the container is not a regular file' \
    "$croot/etc/passwd" "$IMGFS" exec -u 1000 hx true
no_hang "exec -u 0:0 with a FIFO passwd" '`/etc/passwd` in the container is not a regular file' \
    "$croot/etc/passwd" "$IMGFS" exec -u 0:0 hx true
# (the container's own root restores it: exec with a good passwd works again)
rm -f "$croot/etc/passwd" && cp "$croot/etc/passwd.good" "$croot/etc/passwd"
t_check "a good passwd again: exec works" bash -c "[[ \$('$IMGFS' exec hx echo ran) == ran ]]"

# /etc/group a FIFO
"$IMGFS" exec hx sh -c 'cp /etc/group /etc/group.good; rm /etc/group; mkfifo /etc/group'
t_check "the container made /etc/group a FIFO" test -p "$croot/etc/group"
no_hang "exec with a FIFO group" '`/etc/group` in the container is not a regular file \(a FIFO\)' \
    "$croot/etc/group" "$IMGFS" exec hx true
no_hang "exec -u 1000:1000 with a FIFO group" '`/etc/group` in the container is not a regular file' \
    "$croot/etc/group" "$IMGFS" exec -u 1000:1000 hx true
rm -f "$croot/etc/group" && cp "$croot/etc/group.good" "$croot/etc/group"

# huge passwd (sparse: costs nothing to make)
"$IMGFS" exec hx truncate -s 1G /etc/passwd
no_hang "exec with a 1 GiB passwd" '`/etc/passwd` in the container is too large' "" "$IMGFS" exec hx true
cp "$croot/etc/passwd.good" "$croot/etc/passwd"

# passwd a symlink to a host file: resolved inside the container, the host's user is not found
for link in "$host_passwd" "../../../../../../..$host_passwd"; do
    "$IMGFS" exec hx ln -sf "$link" /etc/passwd
    out=$("$IMGFS" exec -u hostonly hx id -u 2>&1) && rc=0 || rc=$?
    t_check "passwd -> $link: the host's user is not found ($out)" \
        grep -q 'unable to find user hostonly' <<<"$out"
    t_eq "passwd -> $link: exit 125" 125 "$rc"
done
# ... and followed inside it: the same path in the container does count
mkdir -p "$croot$(dirname "$host_passwd")"
cp "$host_passwd" "$croot$host_passwd"
t_eq "passwd -> the same path inside the container: its user is found" 4242 \
    "$("$IMGFS" exec -u hostonly hx id -u 2>&1)"
rm -f "$croot/etc/passwd" && cp "$croot/etc/passwd.good" "$croot/etc/passwd"

# the working directory and the command a FIFO
"$IMGFS" exec hx mkfifo /wdfifo /cmdfifo
no_hang "exec -w onto a FIFO" 'working directory' "$croot/wdfifo" "$IMGFS" exec -w /wdfifo hx true
"$IMGFS" exec hx chmod 755 /cmdfifo
"$IMGFS" exec hx /cmdfifo >"$T/out" 2>&1 &
pid=$!
t_wait_for 2000 finished_or_blocked "$pid" || true
t_check "exec of a FIFO as the command does not hang" bash -c "! kill -0 $pid 2>/dev/null"
kill -0 "$pid" 2>/dev/null && { : >"$croot/cmdfifo" & }
rc=0
wait "$pid" || rc=$?
t_eq "exec of a FIFO as the command: not executable (126)" 126 "$rc"
t_check "the container still answers" bash -c "[[ \$('$IMGFS' exec hx echo ran) == ran ]]"

# an image whose /etc/passwd is a FIFO: `run` fails clearly instead of hanging in the init
sec_image fifopw "etc/passwd:fifo"
no_hang "run of an image with a FIFO passwd" '^imgfs run: .*`/etc/passwd` in the container is not a regular file \(a FIFO\)' \
    "" "$IMGFS" run --rm --network none fifopw true
t_end
