#!/bin/bash
# imgfs mount / umount refuse what they cannot do, with a clear "imgfs VERB: ..." message and exit
# status 125, and leave nothing mounted or running behind.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
t_begin mount_errors
t_need_fixture busybox.tar

# fails "what" PATTERN command...: exits 125 with an "imgfs VERB: " message matching PATTERN
fails() {
    local what=$1 pattern=$2 rc=0 out
    shift 2
    out=$("$@" 2>&1) || rc=$?
    echo "$out" | head -n 2 | sed 's/^/    stderr: /'
    t_eq "$what: exit 125" 125 "$rc"
    if grep -qE "^imgfs u?mount: " <<<"$out" && grep -qE -- "$pattern" <<<"$out"; then
        t_pass "$what: says what is wrong"
    else
        t_fail "$what: expected a message matching /$pattern/, got: $out"
    fi
}

mkdir -p "$T/mnt" "$T/mnt2" "$T/tmpfs"
fails "no store yet" "no store|No such file" "$IMGFS" mount busybox "$T/mnt"
"$IMGFS" import -t busybox "$FIXTURES/busybox.tar" >/dev/null

fails "missing image" "no-such-image" "$IMGFS" mount no-such-image "$T/mnt"
fails "missing mount point" "No such file or directory" "$IMGFS" mount busybox "$T/nonexistent"
touch "$T/file"
fails "mount point is a file" "not a directory" "$IMGFS" mount busybox "$T/file"
fails "no arguments" "IMAGE and DIR" "$IMGFS" mount
fails "one argument" "IMAGE and DIR" "$IMGFS" mount busybox
fails "unknown option" "unknown flag: --bogus" "$IMGFS" mount --bogus busybox "$T/mnt"
fails "bad --threads" "threads" "$IMGFS" mount --threads nine busybox "$T/mnt"
t_check_fails "nothing got mounted" mountpoint -q "$T/mnt"

t_cleanup "umount -l '$T/mnt'"
t_check "mount busybox" "$IMGFS" mount busybox "$T/mnt"
fails "mount on a mount point" "already a mount point" "$IMGFS" mount busybox "$T/mnt"
t_eq "the first mount still serves" "hello" "$(chroot "$T/mnt" /bin/echo hello)"
t_eq "only one mount there" 1 "$(grep -cF " $T/mnt " /proc/mounts)"

# the daemon keeps none of the caller's descriptors (a caller waiting for EOF on a pipe it handed
# down would otherwise wait forever)
mkdir -p "$T/mnt3"
t_cleanup "umount -l '$T/mnt3'"
t_check "mount with extra descriptors open" "$IMGFS" mount busybox "$T/mnt3" 3>"$T/held" 7>>"$T/held"
t_check_fails "no process holds them afterwards" fuser "$T/held"
t_check "umount" "$IMGFS" umount "$T/mnt3"

fails "umount of a plain directory" "not a mount point" "$IMGFS" umount "$T/mnt2"
fails "umount of a missing directory" "No such file|not a mount point" "$IMGFS" umount "$T/nope/x"
t_cleanup "umount -l '$T/tmpfs'"
mount -t tmpfs tmpfs "$T/tmpfs"
fails "umount of a non-imgfs mount" "not an imgfs mount" "$IMGFS" umount "$T/tmpfs"
t_check "the tmpfs is still mounted" mountpoint -q "$T/tmpfs"
umount "$T/tmpfs"
fails "umount without arguments" "DIR" "$IMGFS" umount

# busy: a process has its working directory inside the mount
sleep_in() { cd "$T/mnt/etc" && exec sleep 1000000; }
sleep_in &
busy=$!
t_cleanup "kill $busy"
cwd_is() { [[ $(readlink "/proc/$1/cwd") == "$2" ]]; }
t_check "a process works inside the mount" t_wait_for 600 cwd_is "$busy" "$T/mnt/etc"
fails "umount of a busy mount" "busy" "$IMGFS" umount "$T/mnt"
t_check "still mounted" mountpoint -q "$T/mnt"
t_check "umount -l detaches a busy mount" "$IMGFS" umount -l "$T/mnt"
t_check_fails "gone from the namespace" mountpoint -q "$T/mnt"
t_check "the busy process still reads through its cwd" test -s "/proc/$busy/cwd/passwd"
kill "$busy"
t_end
