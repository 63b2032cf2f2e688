#!/bin/bash
# An import killed with SIGKILL half way (after it has committed content) leaves no visible image,
# a store that passes fsck, and orphans that gc frees; the next import works.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
t_begin import_killed
t_need_fixture busybox.tar
MiB=$((1024 * 1024))

t_check "import busybox" "$IMGFS" import -t bb "$FIXTURES/busybox.tar"
before_names=$(t_image_names)
before_bytes=$(t_stored_bytes)

# 160 MiB of incompressible files: more than one write batch (~64 MiB), so content is committed
# before the end of the input.
mkdir -p "$T/big"
for i in 1 2 3 4 5 6 7 8 9 10; do
    { openssl enc -aes-128-ctr -nosalt -pass "pass:big$i" -pbkdf2 </dev/zero 2>/dev/null || true; } |
        head -c $((16 * MiB)) >"$T/big/f$i"
done
tar --numeric-owner -C "$T/big" -cf "$T/big.tar" .
rm -rf "$T/big"
size=$(stat -c %s "$T/big.tar")

# Feed all but the last MiB through a FIFO and keep it open: the import then waits for more input,
# so it is certainly still running when we kill it.
mkfifo "$T/fifo"
{ head -c $((size - MiB)) "$T/big.tar"; exec sleep infinity; } >"$T/fifo" &
writer=$!
t_cleanup "kill $writer"
"$IMGFS" import -t killed - <"$T/fifo" >"$T/import.log" 2>&1 &
imp=$!
t_cleanup "kill -9 $imp"

# started writing = content committed to the store
grew() { (($(t_stored_bytes) > before_bytes)); }
t_check "the import commits content before its input ends" t_wait_for 6000 grew
t_check "the import is still running" kill -0 "$imp"
kill -9 "$imp"
wait "$imp" 2>/dev/null || true
kill "$writer" 2>/dev/null || true

t_eq "no new image is visible" "$before_names" "$(t_image_names)"
t_check_fails "the killed name does not resolve" "$IMGFS" inspect killed
t_check "fsck passes after the kill" "$IMGFS" fsck
t_check "gc" "$IMGFS" gc
t_eq "gc frees the orphaned content" "$before_bytes" "$(t_stored_bytes)"
t_check "busybox is intact" "$IMGFS" inspect bb
t_check "the next import works" "$IMGFS" import -t big "$T/big.tar"
t_check "fsck" "$IMGFS" fsck
t_end
