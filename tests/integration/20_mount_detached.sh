#!/bin/bash
# A mount keeper ends when its mount is gone, and SIGTERM always stops it:
# - `umount -l` from outside while a process still works in the mount: it is served on (what
#   umount -l promises), and the keeper and its daemon end once that process is done;
# - `umount -l` while the mount survives only as a copy in another mount namespace that no process
#   uses (made by `unshare -m` while it was mounted): the keeper and the daemon end, instead of
#   serving for as long as that namespace lives;
# - the mount's directory removed in another mount namespace: the kernel detaches every mount on a
#   removed directory, copies included, so the connection ends by itself and the keeper with it;
# - a new mount on the same directory after the old one was detached is left alone by the old
#   keeper's end (it must not unmount what is there now);
# - SIGTERM to the keeper of a mount made by a process that had SIGTERM, SIGINT and SIGHUP blocked
#   (a blocked mask is inherited through fork and exec), the mount in use: keeper and daemon end,
#   the mount is gone.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
t_begin mount_detached
t_need_fixture busybox.tar
"$IMGFS" import -q -t busybox "$FIXTURES/busybox.tar"

# pids of what serves DIR now ("imgfs-keeper DIR REF", "imgfs-mountd DIR REF"), once the keeper
# has forked its daemon
servers() { pgrep -f "^imgfs-(keeper|mountd) $1 " || true; }
two_servers() { [[ $(servers "$1" | wc -l) == 2 ]]; }
keeper() { pgrep -f "^imgfs-keeper $1 " || true; }
alive() { local p; for p in "$@"; do [[ -e /proc/$p ]] && return 0; done; return 1; }
none_alive() { ! alive "$@"; }
holders=()
kill_holders() { local p; for p in "${holders[@]}"; do kill "$p" 2>/dev/null || true; done; }
t_cleanup kill_holders
# at exit, whatever still serves a mount of ours (resolved then: pids may be reused by then)
kill_servers() { local p; for p in $(pgrep -f "^imgfs-(keeper|mountd) $T/" || true); do kill -9 "$p"; done; }
t_cleanup kill_servers
hold() { # hold DIR: a process whose working directory is inside DIR, until killed
    (cd "$1/bin" && exec sleep 100000) &
    holders+=($!)
    t_check "a process holds $1" t_wait_for 200 test -e "/proc/$!/cwd/busybox"
}

copies=()
kill_copies() { local p; for p in "${copies[@]}"; do kill "$p" 2>/dev/null || true; done; }
t_cleanup kill_copies
copy_ns() { # a mount namespace made now (a copy of every mount), held by an idle process
    unshare -m --propagation private sleep 100000 &
    copies+=($!)
    t_check "a namespace copy exists" t_wait_for 200 test -e "/proc/$!/ns/mnt"
}
# mount_busybox DIR [PREFIX...]: mount the image on DIR (PREFIX runs the mount, e.g. with a signal
# mask); $served = its keeper and daemon
mount_busybox() {
    local dir=$1
    shift
    mkdir -p "$dir"
    t_cleanup "umount -l '$dir' 2>/dev/null"
    "$@" "$IMGFS" mount busybox "$dir"
    t_wait_for 200 two_servers "$dir" || true
    served=$(servers "$dir")
    t_eq "a keeper and a daemon serve $dir" 2 "$(wc -w <<<"$served")"
}

# 1. umount -l from outside, the mount in use: served until the user is done
m1=$T/m1
mount_busybox "$m1"
s1=$served
hold "$m1"
h1=${holders[-1]}
umount -l "$m1"
t_check "after umount -l the process still reads through its cwd" test -s "/proc/$h1/cwd/busybox"
t_check "and the keeper and the daemon still run" alive $s1
kill "$h1"
t_check "once it is done, they end" t_wait_for 200 none_alive $s1

# 1b. umount -l, the mount left only as an unused copy in another mount namespace
m1b=$T/m1b
mount_busybox "$m1b"
s1b=$served
copy_ns
t_check "the copy has the mount" grep -q " $m1b " "/proc/${copies[-1]}/mountinfo"
umount -l "$m1b"
t_check "after umount -l the keeper and the daemon end" t_wait_for 200 none_alive $s1b

# 2. the mount's directory removed in another mount namespace: the kernel detaches it everywhere
m2=$T/m2
mount_busybox "$m2"
s2=$served
copy_ns
unshare -m --propagation private sh -c "umount -l '$m2' && rmdir '$m2'"
t_check "the directory is gone" test ! -e "$m2"
t_check "after its directory went the keeper and the daemon end" t_wait_for 200 none_alive $s2

# 3. a new mount on the directory of a detached one: the old keeper's end leaves it alone
m3=$T/m3
mount_busybox "$m3"
s3=$served
copy_ns
umount -l "$m3"
"$IMGFS" mount busybox "$m3"
t_check "the old keeper and daemon end" t_wait_for 200 none_alive $s3
t_check "the new mount is still there" grep -q " $m3 fuse.imgfs " /proc/self/mounts
t_check "and serves" test -x "$m3/bin/busybox"
t_check "imgfs umount ends it" "$IMGFS" umount "$m3"

# 4. SIGTERM to the keeper of a mount made with SIGTERM, SIGINT and SIGHUP blocked, held
m4=$T/m4
block='sigprocmask(SIG_BLOCK, POSIX::SigSet->new(SIGTERM, SIGINT, SIGHUP)) or die; exec @ARGV'
mount_busybox "$m4" perl -MPOSIX -e "$block"
s4=$served
k4=$(keeper "$m4")
hold "$m4"
kill -TERM "$k4"
t_check "SIGTERM ends the keeper and the daemon" t_wait_for 200 none_alive $s4
t_check "and unmounts" bash -c "! grep -q ' $m4 fuse.imgfs ' /proc/self/mounts"
t_end
