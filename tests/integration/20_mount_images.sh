#!/bin/bash
# imgfs mount of real rootfs images (busybox, Debian minbase), both mounted at once: each must equal
# its tarball unpacked by GNU tar, programs must run from it (chroot), and the daemons must go away
# when unmounted.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
t_begin mount_images
t_need_fixture busybox.tar debian.tar.gz
COMPARE=$TOP/tests/compare-trees.sh
quiet() { "$@" >/dev/null 2>&1; }

"$IMGFS" import -t busybox "$FIXTURES/busybox.tar" >/dev/null
"$IMGFS" import -t debian:12 "$FIXTURES/debian.tar.gz" >/dev/null
mkdir -p "$T/ref-busybox" "$T/ref-debian" "$T/busybox" "$T/debian" "$T/busybox2"
tar --xattrs --xattrs-include='*' --numeric-owner -xpf "$FIXTURES/busybox.tar" -C "$T/ref-busybox"
tar --xattrs --xattrs-include='*' --numeric-owner -xpf "$FIXTURES/debian.tar.gz" -C "$T/ref-debian"

t_cleanup "umount -l '$T/busybox'"
t_cleanup "umount -l '$T/debian'"
t_cleanup "umount -l '$T/busybox2'"
t_check "mount busybox" "$IMGFS" mount busybox "$T/busybox"
t_check "mount debian:12 at the same time" "$IMGFS" mount --threads 4 debian:12 "$T/debian"
t_check "mount busybox a second time elsewhere" "$IMGFS" mount busybox "$T/busybox2"

t_check "busybox equals its tarball" "$COMPARE" "$T/ref-busybox" "$T/busybox"
t_check "debian equals its tarball" "$COMPARE" "$T/ref-debian" "$T/debian"
t_check "the second busybox mount too" quiet "$COMPARE" "$T/ref-busybox" "$T/busybox2"

# many readers at once over a cold cache: every file of debian, 8 processes, against the copy
t_check "drop the page cache" sh -c 'sync; echo 3 >/proc/sys/vm/drop_caches'
(cd "$T/ref-debian" && find . -type f -print0) >"$T/files"
t_check "8 parallel readers see every debian file right" \
    xargs -0 -P 8 -n 64 bash -c 'for f in "${@:2}"; do cmp -s "$0/$f" "$1/$f" || { echo "differs: $f"; exit 1; }; done' \
    "$T/ref-debian" "$T/debian" <"$T/files"

# programs run straight from the mount (exec, mmap of binaries, setuid bits kept)
t_eq "busybox runs from its mount" "hello" "$(chroot "$T/busybox" /bin/sh -c 'echo hello')"
t_eq "debian's bash and coreutils run from the mount" "$(ls "$T/ref-debian/usr/bin" | wc -l)" \
    "$(chroot "$T/debian" /bin/bash -c 'ls /usr/bin | wc -l')"
t_eq "dpkg reads its database from the mount" \
    "$(grep -c '^Package: ' "$T/ref-debian/var/lib/dpkg/status")" \
    "$(chroot "$T/debian" dpkg-query -W -f='${Package}\n' | wc -l)"
if [[ -e $T/ref-debian/usr/bin/su ]]; then
    t_eq "setuid bit of su kept" "$(stat -c %a "$T/ref-debian/usr/bin/su")" \
        "$(stat -c %a "$T/debian/usr/bin/su")"
fi

# a daemon per mount; each exits once its mount is gone (a foreground one, to know its PID)
mkdir -p "$T/fg"
t_cleanup "umount -l '$T/fg'"
"$IMGFS" mount -f busybox "$T/fg" 2>"$T/fg.log" &
fg_pid=$!
t_cleanup "kill $fg_pid"
t_check "foreground mount comes up" t_wait_for 600 mountpoint -q "$T/fg"
t_eq "it serves" "hello" "$(chroot "$T/fg" /bin/echo hello)"
t_check "imgfs umount of the foreground mount" "$IMGFS" umount "$T/fg"
gone() { ! kill -0 "$1" 2>/dev/null; }
t_check "the daemon exits when unmounted" t_wait_for 600 gone "$fg_pid"
rc=0
wait "$fg_pid" || rc=$?
t_eq "and exits 0" 0 "$rc"

# SIGTERM to a daemon unmounts cleanly
"$IMGFS" mount -f busybox "$T/fg" 2>>"$T/fg.log" &
fg_pid=$!
t_cleanup "kill $fg_pid"
t_check "foreground mount again" t_wait_for 600 mountpoint -q "$T/fg"
kill -TERM "$fg_pid"
t_check "SIGTERM: the daemon exits" t_wait_for 600 gone "$fg_pid"
t_check_fails "SIGTERM: and the mount is gone" mountpoint -q "$T/fg"

t_check "umount busybox" "$IMGFS" umount "$T/busybox"
t_check "umount busybox2 (lazy)" "$IMGFS" umount -l "$T/busybox2"
t_check "debian is unaffected" quiet chroot "$T/debian" /bin/true
t_check "umount debian" "$IMGFS" umount "$T/debian"
t_eq "no imgfs mount left" "" "$(grep -F " $T/" /proc/mounts || true)"
t_end
