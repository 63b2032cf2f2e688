#!/bin/bash
# An imgfs mount as the lower directory of a kernel overlayfs, the way `imgfs run` uses it: the
# merged tree shows the image, writes land in the upper directory only (copy-up, whiteouts, new
# files), programs run from the merged tree, and the image mount never changes.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
t_begin mount_overlay
t_need_fixture busybox.tar tree.tar
COMPARE=$TOP/tests/compare-trees.sh
quiet() { "$@" >/dev/null 2>&1; }

"$IMGFS" import -t busybox "$FIXTURES/busybox.tar" >/dev/null
"$IMGFS" import -t tree "$FIXTURES/tree.tar" >/dev/null
mkdir -p "$T/ref" "$T/lower" "$T/upper" "$T/work" "$T/merged"
tar --xattrs --xattrs-include='*' --numeric-owner -xpf "$FIXTURES/busybox.tar" -C "$T/ref"

# foreground, to know the daemon's PID
t_cleanup "umount -l '$T/lower'"
"$IMGFS" mount -f busybox "$T/lower" 2>"$T/daemon.log" &
pid=$!
t_cleanup "kill $pid"
t_check "mount busybox" t_wait_for 600 mountpoint -q "$T/lower"

t_cleanup "umount -l '$T/merged'"
t_check "overlayfs over the imgfs mount" mount -t overlay overlay \
    -o "lowerdir=$T/lower,upperdir=$T/upper,workdir=$T/work" "$T/merged"
t_check "the merged tree equals the image" "$COMPARE" "$T/ref" "$T/merged"

# writes through the overlay
echo "new file" >"$T/merged/etc/new-file"
echo "appended" >>"$T/merged/etc/group"
rm "$T/merged/etc/passwd"
rm -r "$T/merged/home"
mkdir "$T/merged/data"
chmod 0700 "$T/merged/root"
t_eq "new file readable" "new file" "$(cat "$T/merged/etc/new-file")"
t_eq "copy-up kept the content and appended" "$(cat "$T/ref/etc/group"; echo appended)" \
    "$(cat "$T/merged/etc/group")"
t_check_fails "removed file is gone from the merged tree" test -e "$T/merged/etc/passwd"
t_check "upper holds the copied-up file" test -f "$T/upper/etc/group"
t_eq "upper holds a whiteout (0:0 char device) for the removed file" "character special file 0:0" \
    "$(stat -c '%F %t:%T' "$T/upper/etc/passwd")"
t_check "the image mount is unchanged" "$COMPARE" "$T/ref" "$T/lower"

# programs run from the merged tree, as in a container
t_eq "busybox runs from the overlay" "hello" "$(chroot "$T/merged" /bin/sh -c 'echo hello')"
t_eq "and sees the overlay's changes" "new file" "$(chroot "$T/merged" /bin/cat /etc/new-file)"
t_check "and can write in it" chroot "$T/merged" /bin/sh -c 'echo x >/tmp/x && test -s /tmp/x'

# Unmounting the image while the overlay still uses it: the overlay keeps its own reference to
# the FUSE file system, so it keeps working and the daemon keeps serving until the overlay goes.
t_check "imgfs umount of the lower mount" "$IMGFS" umount "$T/lower"
t_eq "the overlay still reads image files" "$(sha256sum <"$T/ref/bin/busybox")" \
    "$(sha256sum <"$T/merged/bin/busybox")"
t_check "the daemon still serves the overlay" kill -0 "$pid"
umount "$T/merged"
gone() { ! kill -0 "$1" 2>/dev/null; }
t_check "the daemon exits once the overlay is gone too" t_wait_for 600 gone "$pid"

# xattrs and odd files of the generated tree through the overlay
mkdir -p "$T/ref2" "$T/lower2" "$T/upper2" "$T/work2" "$T/merged2"
tar --xattrs --xattrs-include='*' --numeric-owner -xpf "$FIXTURES/tree.tar" -C "$T/ref2" 2>/dev/null
t_cleanup "umount -l '$T/lower2'"
t_check "mount the tree (daemon)" "$IMGFS" mount tree "$T/lower2"
t_cleanup "umount -l '$T/merged2'"
t_check "overlayfs over the tree" mount -t overlay overlay \
    -o "lowerdir=$T/lower2,upperdir=$T/upper2,workdir=$T/work2" "$T/merged2"
t_check "the merged tree equals the unpacked tree" "$COMPARE" "$T/ref2" "$T/merged2"
# The same with the mount's keeper (not -f): `imgfs umount` of the lower while the overlay uses
# it. No process has a file on the FUSE mount, but the overlay holds it: the keeper must serve on.
# umount returns once the keeper has decided, so what follows goes to the daemon, not to a cache:
# a name never looked up, and every file's content with the page cache dropped.
keeper=$(pgrep -f "^imgfs-keeper $T/lower2 " || true)
t_check "the tree's mount has a keeper" test -n "$keeper"
t_check "imgfs umount of the lower under the overlay" "$IMGFS" umount "$T/lower2"
t_eq "a name never looked up is ENOENT, not a dead connection" "No such file or directory" \
    "$(stat "$T/merged2/never-looked-up" 2>&1 | sed 's/.*: //')"
sync
echo 3 >/proc/sys/vm/drop_caches
t_check "the overlay reads the tree with the page cache dropped" "$COMPARE" "$T/ref2" "$T/merged2"
umount "$T/merged2"
t_check "the keeper ends once the overlay is gone too" t_wait_for 600 gone "$keeper"
t_end
