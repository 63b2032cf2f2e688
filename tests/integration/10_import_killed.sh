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

# 480 MiB of incompressible files: many write batches (~64 MiB each), so content is committed long
# before the import ends. (A FIFO would make this deterministic, but import spools stdin and sniffs
# a path before reading it, so the input must be a regular file.)
mkdir -p "$T/big"
for i in $(seq 30); do
    { openssl enc -aes-128-ctr -nosalt -pass "pass:big$i" -pbkdf2 </dev/zero 2>/dev/null || true; } |
        head -c $((16 * MiB)) >"$T/big/f$i"
done
tar --numeric-owner -C "$T/big" -cf "$T/big.tar" .
rm -rf "$T/big"

"$IMGFS" import -t killed "$T/big.tar" >"$T/import.log" 2>&1 &
imp=$!
t_cleanup "kill -9 $imp"

# started writing = content committed to the store; then kill at once
grew() { (($(t_stored_bytes) > before_bytes)) || ! kill -0 "$imp"; }
t_wait_for 100000 grew || true
if kill -9 "$imp" 2>/dev/null; then
    t_pass "killed the import after it committed $(($(t_stored_bytes) - before_bytes)) bytes"
else
    t_fail "the import ended before it could be killed: $(cat "$T/import.log")"
fi
wait "$imp" 2>/dev/null || true

t_eq "no new image is visible" "$before_names" "$(t_image_names)"
t_check_fails "the killed name does not resolve" "$IMGFS" inspect killed
t_check "fsck passes after the kill" "$IMGFS" fsck
t_check "gc" "$IMGFS" gc
t_eq "gc frees the orphaned content" "$before_bytes" "$(t_stored_bytes)"
t_check "busybox is intact" "$IMGFS" inspect bb
t_check "the next import works" "$IMGFS" import -t big "$T/big.tar"
t_check "fsck" "$IMGFS" fsck
t_end
