#!/bin/bash
# Many writers on one store: two imports at once both succeed; gc running again and again while an
# import runs loses nothing (same stored bytes as the import alone, fsck passes); and what the lock
# guarantees, observed: while an import holds the store (it is held mid-stream, on a FIFO), gc
# waits for it in flock — it does not run beside it — and runs once the import is done; the held
# import holds no LMDB write transaction meanwhile, so another import still goes through.
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
t_check "final gc" "$IMGFS" gc
t_check "fsck: every chunk the image needs is there" "$IMGFS" fsck
IMGFS_ROOT=$T/ref-big "$IMGFS" import -t bb "$FIXTURES/busybox.tar" >/dev/null
t_eq "stored bytes equal the same images imported without gc" \
    "$(IMGFS_ROOT=$T/ref-big t_stored_bytes)" "$(t_stored_bytes)"
t_note "reference big alone: $ref_big bytes"

# gc while an import is held mid-stream: the import reads a FIFO whose writer stops after 1.5 MB
# (past the 1 MiB the import peeks before it takes the store) until told to go on
export IMGFS_ROOT=$T/lockstore
mkfifo "$T/src.fifo" "$T/go"
src=$FIXTURES/busybox.tar
{ head -c 1500000 "$src"; read -r _ <"$T/go"; tail -c +1500001 "$src"; } >"$T/src.fifo" &
writer=$!
t_cleanup "kill $writer"
"$IMGFS" import -q -t held "$T/src.fifo" >"$T/held.log" 2>&1 &
pi=$!
t_cleanup "kill -9 $pi"
lock_held() { [[ -e $IMGFS_ROOT/lock ]] && ! flock -n -x "$IMGFS_ROOT/lock" true; }
t_check "the import holds the store's lock while it waits for its input" t_wait_for 600 lock_held
# ... but no LMDB write transaction (LMDB has one writer at a time): another import goes through
t_check "another import completes meanwhile" "$IMGFS" import -q -t beside "$FIXTURES/tree.tar"
t_check "the held import is still running" kill -0 "$pi"
"$IMGFS" gc >"$T/held-gc.log" 2>&1 &
pg=$!
t_cleanup "kill -9 $pg"
gc_waits() { [[ $(cat "/proc/$pg/wchan" 2>/dev/null) == *lock* ]]; }
t_check "gc waits for the lock (in flock, not running beside the import)" t_wait_for 600 gc_waits
t_check "gc has freed nothing yet" bash -c "! grep -q Freed '$T/held-gc.log'"
t_check "the import is still running" kill -0 "$pi"
echo go >"$T/go"
rc=0
wait "$pi" || rc=$?
t_eq "the held import succeeds once its input goes on" 0 "$rc"
rc=0
wait "$pg" || rc=$?
t_eq "then gc runs and succeeds ($(cat "$T/held-gc.log"))" 0 "$rc"
wait "$writer" || true
t_check "fsck after the gc" "$IMGFS" fsck
t_check "the image is intact" cmp <("$IMGFS" export --format rootfs held -o - | tar -xO bin/busybox) \
    <(tar -xOf "$src" ./bin/busybox 2>/dev/null || tar -xOf "$src" bin/busybox)
t_end
