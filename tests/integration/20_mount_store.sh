#!/bin/bash
# A mount and the store around it: the mount's lease keeps its image alive through `rmi` + `gc`,
# imports that grow the store while it is mounted do not disturb it, and once unmounted the image
# can be collected.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
t_begin mount_store
t_need_fixture busybox.tar debian.tar.gz
COMPARE=$TOP/tests/compare-trees.sh
quiet() { "$@" >/dev/null 2>&1; }

"$IMGFS" import -t busybox "$FIXTURES/busybox.tar" >/dev/null
mkdir -p "$T/ref" "$T/mnt" "$T/mnt2"
tar --xattrs --xattrs-include='*' --numeric-owner -xpf "$FIXTURES/busybox.tar" -C "$T/ref"

t_cleanup "umount -l '$T/mnt'"
"$IMGFS" mount -f busybox "$T/mnt" 2>"$T/daemon.log" &
pid=$!
t_cleanup "kill $pid"
t_check "mount busybox" t_wait_for 600 mountpoint -q "$T/mnt"

# a big import while mounted: the LMDB map grows under the daemon
t_check "import debian while busybox is mounted" quiet "$IMGFS" import -t debian "$FIXTURES/debian.tar.gz"
t_check "busybox still reads completely (nothing read before the growth)" "$COMPARE" "$T/ref" "$T/mnt"

# the lease: the image's name goes away, gc runs, the mount keeps working
t_check "rmi busybox while mounted" quiet "$IMGFS" rmi busybox
t_check "gc while mounted" quiet "$IMGFS" gc
t_check_fails "the name is gone" quiet "$IMGFS" inspect busybox
t_check "the mount still equals the image after rmi + gc" "$COMPARE" "$T/ref" "$T/mnt"
t_check "drop the page cache" sh -c 'sync; echo 3 >/proc/sys/vm/drop_caches'
t_check "and still reads from the store (page cache dropped)" "$COMPARE" "$T/ref" "$T/mnt"
t_check "debian mounts meanwhile" "$IMGFS" mount debian "$T/mnt2"
t_cleanup "umount -l '$T/mnt2'"
t_check "debian runs" quiet chroot "$T/mnt2" /bin/true
t_check "umount debian" "$IMGFS" umount "$T/mnt2"

t_check "umount busybox" "$IMGFS" umount "$T/mnt"
gone() { ! kill -0 "$1" 2>/dev/null; }
t_check "the daemon exits (and drops its lease)" t_wait_for 600 gone "$pid"
before=$(t_stored_bytes)
t_check "gc after the unmount" quiet "$IMGFS" gc
after=$(t_stored_bytes)
t_check "gc now frees busybox's chunks ($before -> $after bytes)" test "$after" -lt "$before"
t_check "debian is intact" quiet "$IMGFS" fsck
t_end
