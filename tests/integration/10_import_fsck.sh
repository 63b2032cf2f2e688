#!/bin/bash
# fsck passes on a good store, and after one byte of one chunk is flipped inside data.mdb it fails
# and names that chunk.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
t_begin import_fsck
t_need_fixture busybox.tar

marker="IMGFS-FSCK-MARKER-$(openssl rand -hex 16)"
mkdir -p "$T/src/etc"
# 9000 bytes: one chunk (small files are one chunk), so the chunk's digest is the file's SHA-256
{ printf '%s\n' "$marker"; openssl rand -hex 4500; } | head -c 9000 >"$T/src/etc/victim"
echo "an innocent bystander" >"$T/src/etc/bystander"
tar --numeric-owner -C "$T/src" -cf "$T/src.tar" .
chunk=$(sha256sum "$T/src/etc/victim" | cut -d' ' -f1)
bystander=$(sha256sum "$T/src/etc/bystander" | cut -d' ' -f1)

t_check "import busybox" "$IMGFS" import -t bb "$FIXTURES/busybox.tar"
t_check "import the marker file" "$IMGFS" import -t victim "$T/src.tar"
t_check "fsck passes on a good store" "$IMGFS" fsck

db=$IMGFS_ROOT/data.mdb
t_check "the store has a data.mdb" test -f "$db"
mapfile -t offsets < <(grep -obUaF "$marker" "$db" | cut -d: -f1)
t_check "the marker is in data.mdb (${#offsets[@]} copies)" test "${#offsets[@]}" -ge 1
for off in "${offsets[@]}"; do
    # flip one byte well inside the chunk (after the marker's prefix), every copy of the page
    python3 - "$db" $((off + 10)) <<'PY'
import os, sys
fd = os.open(sys.argv[1], os.O_RDWR)
off = int(sys.argv[2])
b = os.pread(fd, 1, off)
os.pwrite(fd, bytes([b[0] ^ 0x20]), off)
os.fsync(fd)
os.close(fd)
PY
done

rc=0
out=$("$IMGFS" fsck 2>&1) || rc=$?
echo "$out" | head -n 20 | sed 's/^/    fsck: /'
t_check "fsck fails after the flip (exit $rc)" test "$rc" -ne 0
t_check "fsck names the corrupt chunk $chunk" grep -q "$chunk" <<<"$out"
t_check_fails "fsck does not blame the intact chunk next to it" grep -q "$bystander" <<<"$out"
t_end
