#!/bin/bash
# A full disk and a full LMDB map: the import fails with a clear error, nothing half-made becomes
# visible, and what was in the store before is intact (fsck passes, the earlier image still reads).
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
t_begin store_limits
t_need_fixture busybox.tar debian.tar.gz

# --- disk full: the store on a 24 MiB tmpfs, then an image that does not fit ---
mkdir -p "$T/small"
mount -t tmpfs -o size=24m tmpfs "$T/small"
t_cleanup umount -l "$T/small"
export IMGFS_ROOT=$T/small/store
t_check "busybox fits" "$IMGFS" import -q -t busybox "$FIXTURES/busybox.tar"
before=$("$IMGFS" images --json | jq -c '[.[].Name]')
out=$("$IMGFS" import -t debian "$FIXTURES/debian.tar.gz" 2>&1) && rc=0 || rc=$?
t_check "debian does not fit: import fails" test "$rc" -ne 0
t_check "the error says the disk is full" grep -qiE "no space|full" <<<"$out"
t_eq "no new image is visible" "$before" "$("$IMGFS" images --json | jq -c '[.[].Name]')"
t_check "fsck passes after the failed import" "$IMGFS" fsck
t_check "gc frees the failed import's leftovers" "$IMGFS" gc
t_check "busybox still exports" "$IMGFS" export --format rootfs busybox -o "$T/bb.tar"
t_check "and its busybox binary is intact" cmp <(tar -xOf "$T/bb.tar" bin/busybox) \
    <(tar -xOf "$FIXTURES/busybox.tar" ./bin/busybox 2>/dev/null || tar -xOf "$FIXTURES/busybox.tar" bin/busybox)

# --- map full: a 16 MiB map on an ordinary disk ---
export IMGFS_ROOT=$T/mapstore IMGFS_MAP_SIZE=$((16 << 20))
t_check "busybox fits in the map" "$IMGFS" import -q -t busybox "$FIXTURES/busybox.tar"
out=$("$IMGFS" import -t debian "$FIXTURES/debian.tar.gz" 2>&1) && rc=0 || rc=$?
t_check "debian does not fit in the map: import fails" test "$rc" -ne 0
t_check "the error names the full map and how to raise it" grep -q "IMGFS_MAP_SIZE" <<<"$out"
t_eq "only busybox is visible" '["busybox:latest"]' "$("$IMGFS" images --json | jq -c '[.[].Name]')"
t_check "fsck passes after the map filled" "$IMGFS" fsck
unset IMGFS_MAP_SIZE
t_check "with a larger map the same store takes debian" "$IMGFS" import -q -t debian "$FIXTURES/debian.tar.gz"
t_check "fsck passes" "$IMGFS" fsck
t_end
