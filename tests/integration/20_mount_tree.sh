#!/bin/bash
# imgfs mount of the generated tree (every kind of file): the mount must show exactly what GNU tar
# unpacks from the same tarball — paths, types, modes, owners, sizes, link counts, mtimes (ns),
# device numbers, symlink targets, xattrs, hardlinks and content — and refuse every change.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
t_begin mount_tree
t_need_fixture tree.tar
COMPARE=$TOP/tests/compare-trees.sh
quiet() { "$@" >/dev/null 2>&1; }

t_check "mount --help exits 0" quiet "$IMGFS" mount --help
t_check "umount --help exits 0" quiet "$IMGFS" umount --help
"$IMGFS" import -t tree "$FIXTURES/tree.tar" >/dev/null
mkdir -p "$T/ref" "$T/mnt"
# tar warns about the tree's deliberately odd timestamps; the files are right
tar --xattrs --xattrs-include='*' --numeric-owner -xpf "$FIXTURES/tree.tar" -C "$T/ref" 2>/dev/null

t_cleanup "umount -l '$T/mnt'"
t_check "mount the tree (daemon)" "$IMGFS" mount --allow-other tree "$T/mnt"
t_eq "it is an imgfs FUSE mount" "fuse.imgfs" "$(findmnt -n -o FSTYPE "$T/mnt")"
t_check "mounted read-only" grep -qw ro <<<"$(findmnt -n -o OPTIONS "$T/mnt" | tr , ' ')"
t_check "the mount equals the tarball unpacked by GNU tar" "$COMPARE" "$T/ref" "$T/mnt"
# a second pass is served from the kernel's caches: it must agree too
t_check "and again, from the kernel's caches" "$COMPARE" "$T/ref" "$T/mnt"

# hardlinks: one inode, the right count
h=$T/mnt/hardlink
if [[ -e $h/a && -e $h/b ]]; then
    t_eq "hardlinks share one inode" "$(stat -c %i "$h/a")" "$(stat -c %i "$h/b")"
    t_eq "hardlink count as unpacked" "$(stat -c %h "$T/ref/hardlink/a")" "$(stat -c %h "$h/a")"
fi
t_eq "readdir lists . and .." ". .." "$(ls -a "$T/mnt" | head -n 2 | tr '\n' ' ' | sed 's/ $//')"
t_eq "a 600-entry directory lists completely" "$(ls "$T/ref/dirs/many" | wc -l)" \
    "$(ls "$T/mnt/dirs/many" | wc -l)"
t_eq "lookup of a missing name: ENOENT" "No such file or directory" \
    "$(cat "$T/mnt/no-such-file" 2>&1 | sed 's/.*: //')"

# reads at odd offsets and lengths, across chunk boundaries, against the unpacked copy
for f in files/random-1m.bin files/repeated-5m.bin files/size-262145; do
    for spec in "0 1" "1 4095" "65535 3" "100000 300000" "262143 2" "1048570 100"; do
        set -- $spec
        a=$(dd if="$T/ref/$f" iflag=skip_bytes,count_bytes skip="$1" count="$2" status=none | sha256sum)
        b=$(dd if="$T/mnt/$f" iflag=skip_bytes,count_bytes,direct skip="$1" count="$2" \
            status=none 2>/dev/null | sha256sum) ||
            b=$(dd if="$T/mnt/$f" iflag=skip_bytes,count_bytes skip="$1" count="$2" status=none |
                sha256sum)
        [[ $a == "$b" ]] || t_fail "read of $f at $1+$2 differs"
    done
done
t_pass "reads at odd offsets agree"

# many readers at once (the daemon is multithreaded; the page cache is shared)
sums=()
for i in 1 2 3 4; do
    (cat "$T/mnt/files/repeated-5m.bin" "$T/mnt/files/random-1m.bin" | sha256sum >"$T/sum.$i") &
    sums+=($!)
done
for p in "${sums[@]}"; do wait "$p"; done
want=$(cat "$T/ref/files/repeated-5m.bin" "$T/ref/files/random-1m.bin" | sha256sum)
for i in 1 2 3 4; do t_eq "parallel reader $i" "$want" "$(cat "$T/sum.$i")"; done

# read-only: every kind of change fails, and nothing changes
ro() { # ro "what" command...: fails with EROFS
    local out
    if out=$("${@:2}" 2>&1); then t_fail "$1 succeeded"; return; fi
    if grep -q "Read-only file system" <<<"$out"; then t_pass "$1: EROFS"; else t_fail "$1: $out"; fi
}
ro "create a file" touch "$T/mnt/new-file"
ro "write a file" dd if=/dev/zero of="$T/mnt/files/small.txt" bs=1 count=1 conv=notrunc status=none
ro "truncate a file" truncate -s 0 "$T/mnt/files/size-1"
ro "mkdir" mkdir "$T/mnt/newdir"
ro "rm" rm -f "$T/mnt/files/size-1"
ro "rmdir" rmdir "$T/mnt/dirs/empty"
ro "rename" mv "$T/mnt/files/size-1" "$T/mnt/files/size-1.moved"
ro "chmod" chmod 0777 "$T/mnt/files/size-1"
ro "chown" chown 1:1 "$T/mnt/files/size-1"
ro "touch -d" touch -d 2000-01-01 "$T/mnt/files/size-1"
ro "symlink" ln -s x "$T/mnt/files/link"
ro "hardlink" ln "$T/mnt/files/size-1" "$T/mnt/files/hard"
ro "setfattr" setfattr -n user.x -v 1 "$T/mnt/files/size-1"
t_check "still equal after the attempts" "$COMPARE" "$T/ref" "$T/mnt"

# permissions are checked by the kernel (default_permissions), for other users too (allow_other)
chmod o+x "$T" # mktemp made it 0700
t_check "another user reads a world-readable file" \
    quiet setpriv --reuid=65534 --regid=65534 --clear-groups cat "$T/mnt/files/no-newline"
t_check_fails "another user cannot read a 0600 file" \
    quiet setpriv --reuid=65534 --regid=65534 --clear-groups cat "$T/mnt/files/small.txt"
t_check_fails "another user cannot list a 0700 directory" \
    quiet setpriv --reuid=65534 --regid=65534 --clear-groups ls "$T/mnt/dirs/private"

t_check "df works on the mount" quiet df "$T/mnt"
t_eq "statfs says read-only" "ro" "$(findmnt -n -o VFS-OPTIONS "$T/mnt" | cut -d, -f1)"

t_check "imgfs umount" "$IMGFS" umount "$T/mnt"
t_check_fails "no longer a mount point" mountpoint -q "$T/mnt"
t_check_fails "umount again fails" quiet "$IMGFS" umount "$T/mnt"
t_end
