#!/bin/bash
# Many writers on one store: two imports at once both succeed; gc running again and again while an
# import runs loses nothing (same stored bytes as the import alone, fsck passes).
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
t_begin import_concurrent
t_need_fixture tree.tar busybox.tar debian.tar.gz

big=$FIXTURES/debian.tar.gz

# Reference: each image alone in its own store.
IMGFS_ROOT=$T/ref-big t_check "reference import (alone)" "$IMGFS" import -t big "$big"
ref_big=$(IMGFS_ROOT=$T/ref-big t_stored_bytes)

# Two imports at once.
"$IMGFS" import -t big "$big" >"$T/a.log" 2>&1 &
pa=$!
t_cleanup "kill -9 $pa"
"$IMGFS" import -t tree "$FIXTURES/tree.tar" >"$T/b.log" 2>&1 &
pb=$!
t_cleanup "kill -9 $pb"
ra=0 rb=0
wait "$pa" || ra=$?
wait "$pb" || rb=$?
t_eq "first concurrent import succeeds ($(tail -n1 "$T/a.log"))" 0 "$ra"
t_eq "second concurrent import succeeds ($(tail -n1 "$T/b.log"))" 0 "$rb"
t_eq "both images listed" "big:latest tree:latest" "$(t_image_names | tr '\n' ' ' | sed 's/ $//')"
t_eq "same layer as the import alone" "$(IMGFS_ROOT=$T/ref-big t_diff_ids big)" "$(t_diff_ids big)"
t_check "fsck after concurrent imports" "$IMGFS" fsck

# gc in a loop while an import runs, in a fresh store.
export IMGFS_ROOT=$T/gcstore
t_check "seed the store" "$IMGFS" import -t bb "$FIXTURES/busybox.tar"
"$IMGFS" import -t big "$big" >"$T/c.log" 2>&1 &
pc=$!
t_cleanup "kill -9 $pc"
gcs=0 gc_failed=0
while kill -0 "$pc" 2>/dev/null; do
    "$IMGFS" gc >>"$T/gc.log" 2>&1 || gc_failed=$((gc_failed + 1))
    gcs=$((gcs + 1))
done
rc=0
wait "$pc" || rc=$?
t_eq "import under gc succeeds ($(tail -n1 "$T/c.log"))" 0 "$rc"
t_eq "every gc succeeded ($gcs ran)" 0 "$gc_failed"
t_check "at least one gc overlapped the import ($gcs)" test "$gcs" -ge 1
t_check "final gc" "$IMGFS" gc
t_check "fsck: every chunk the image needs is there" "$IMGFS" fsck
IMGFS_ROOT=$T/ref-big "$IMGFS" import -t bb "$FIXTURES/busybox.tar" >/dev/null
t_eq "stored bytes equal the same images imported without gc" \
    "$(IMGFS_ROOT=$T/ref-big t_stored_bytes)" "$(t_stored_bytes)"
t_note "reference big alone: $ref_big bytes"
t_end
