#!/bin/bash
# Sparse files (tar -S): holes read as zeros — at the start, between extents and after the last
# one up to the size — and are not counted in st_blocks.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
t_begin mount_sparse

S=$T/src
mkdir -p "$S" "$T/mnt"
truncate -s 10M "$S/sparse"
printf 'middle' | dd of="$S/sparse" bs=1M seek=5 conv=notrunc status=none
printf 'end' | dd of="$S/sparse" bs=1 seek=$((10 * 1024 * 1024 - 3)) conv=notrunc status=none
truncate -s 3M "$S/all-hole"
# data first, then a long hole to the end
head -c 200000 /dev/urandom >"$S/tail-hole"
truncate -s 8M "$S/tail-hole"
: >"$S/empty"
tar -S --numeric-owner -C "$S" -cf "$T/sparse.tar" .
"$IMGFS" import -t sparse "$T/sparse.tar" >/dev/null

t_cleanup "umount -l '$T/mnt'"
t_check "mount" "$IMGFS" mount sparse "$T/mnt"
for f in sparse all-hole tail-hole empty; do
    t_eq "$f: size" "$(stat -c %s "$S/$f")" "$(stat -c %s "$T/mnt/$f")"
    t_check "$f: content (holes read as zeros)" cmp "$S/$f" "$T/mnt/$f"
done
hole=$(dd if="$T/mnt/sparse" bs=4096 skip=100 count=1 status=none | od -An -v -tx1 | tr -s ' \n' '\n\n')
t_eq "a read inside a hole: 4096 zero bytes" "4096 00" "$(grep -c . <<<"$hole") $(grep . <<<"$hole" | sort -u)"
t_eq "a read across a hole's end" "$(dd if="$S/sparse" iflag=skip_bytes,count_bytes \
    skip=$((5 * 1024 * 1024 - 10)) count=20 status=none | od -An -tx1)" \
    "$(dd if="$T/mnt/sparse" iflag=skip_bytes,count_bytes skip=$((5 * 1024 * 1024 - 10)) \
        count=20 status=none | od -An -tx1)"
t_eq "an all-hole file has no blocks" 0 "$(stat -c %b "$T/mnt/all-hole")"
blocks=$(stat -c %b "$T/mnt/sparse")
t_check "holes are not counted in st_blocks ($blocks blocks for 10 MiB)" test "$blocks" -lt 1024
blocks=$(stat -c %b "$T/mnt/tail-hole")
t_check "nor is a trailing hole ($blocks blocks for 8 MiB)" test "$blocks" -lt 1024
t_check "umount" "$IMGFS" umount "$T/mnt"
t_end
