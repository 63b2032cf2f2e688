#!/bin/bash
# The image never changes, so the kernel is told to cache everything: a second read of a file, a
# second listing of a directory, a second readlink or stat must not reach the daemon at all. The
# daemon's request trace (`imgfs mount -d`) counts what does.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
t_begin mount_cache
t_need_fixture busybox.tar

"$IMGFS" import -t busybox "$FIXTURES/busybox.tar" >/dev/null
mkdir -p "$T/mnt"
t_cleanup "umount -l '$T/mnt'"
"$IMGFS" mount -d busybox "$T/mnt" 2>"$T/trace" &
pid=$!
t_cleanup "kill $pid"
t_check "mount with the request trace on" t_wait_for 600 mountpoint -q "$T/mnt"

requests() { # requests OPCODE [NODEID]: how many such requests the daemon got so far
    grep -cE "opcode: $1 \\([0-9]+\\)${2:+, nodeid: $2,}" "$T/trace" || true
}

bin=$T/mnt/bin/busybox
ino=$(stat -c %i "$bin")
cat "$bin" >/dev/null
first=$(requests READ "$ino")
t_check "the first read reaches the daemon ($first READs)" test "$first" -gt 0
# 1 MiB requests once the daemon raised the mount's readahead window (128 KiB would take 16+)
t_check "in few large requests (2 MB in at most 8)" test "$first" -le 8
cat "$bin" >/dev/null
t_eq "a second read is served from the page cache" "$first" "$(requests READ "$ino")"
opens=$(requests OPEN)
cat "$T/mnt/etc/passwd" "$T/mnt/etc/group" >/dev/null
t_check "opens after the first are not sent (or at most one per file)" \
    test "$(requests OPEN)" -le $((opens + 2))

ls -l "$T/mnt/bin" >/dev/null
lists=$(requests READDIRPLUS)
links=$(requests READLINK)
getattrs=$(requests GETATTR)
lookups=$(requests LOOKUP)
ls -l "$T/mnt/bin" >/dev/null
t_eq "a second listing is cached (no READDIR/READDIRPLUS)" "$lists 0" \
    "$(requests READDIRPLUS) $(requests READDIR)"
t_eq "symlink targets are cached" "$links" "$(requests READLINK)"
t_eq "attributes are cached" "$getattrs" "$(requests GETATTR)"
t_eq "entries are cached" "$lookups" "$(requests LOOKUP)"
stat "$T/mnt/no-such-file" >/dev/null 2>&1 || true
missing=$(requests LOOKUP)
stat "$T/mnt/no-such-file" >/dev/null 2>&1 || true
t_eq "missing names are cached too" "$missing" "$(requests LOOKUP)"
chroot "$T/mnt" /bin/true
chroot "$T/mnt" /bin/true
xattrs=$(requests GETXATTR)
chroot "$T/mnt" /bin/true
t_eq "an image without xattrs: no getxattr per exec (security.capability)" "$xattrs" \
    "$(requests GETXATTR)"

# the counting itself works: with the page cache dropped, reads reach the daemon again
sync
echo 3 >/proc/sys/vm/drop_caches
cat "$bin" >/dev/null
t_check "after dropping the page cache the daemon is asked again" \
    test "$(requests READ "$ino")" -gt "$first"

t_check "umount" "$IMGFS" umount "$T/mnt"
gone() { ! kill -0 "$1" 2>/dev/null; }
t_check "the daemon exits" t_wait_for 600 gone "$pid"
t_end
