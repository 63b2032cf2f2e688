#!/bin/bash
# A sparse tar bomb: a tar of a few KiB declaring a 1 PiB file that is almost all holes. Holes are
# stored as holes (no chunk, no hashing of zeros), so the import takes as long as its few bytes of
# data — before, it hashed 1 PiB of zeros (days) while holding the store's lock, and gc waited
# behind it. The file reads back as zeros of the right size through a mount, round-trips through an
# OCI export (the canonical tar writes it as a pax sparse file), and the import's size limit
# (--max-size, --max-files, IMGFS_IMPORT_MAX_SIZE/FILES) refuses what is too large, storing nothing.
# No wall-clock limit here: an import that hashed the holes would hang and the suite's guard fails it.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
t_begin import_sparse_bomb

PIB=$((1 << 50))
DATA_AT=$((1 << 49))
# A pax sparse file (GNU sparse format 1.0, as GNU tar --format=posix --sparse and libarchive write
# it): pax records GNU.sparse.{major,minor,name,realsize}, a member named GNUSparseFile.0/NAME whose
# data starts with the map (count, then offset/length pairs, in decimal lines, padded to 512) and
# then the data regions. `bomb` has 12 bytes at 512 TiB, `void` none at all.
python3 - "$T/pax-bomb.tar" "$PIB" "$DATA_AT" <<'EOF'
import io, sys, tarfile
out, size, at = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
def sparse(tf, name, regions, data):
    m = b"%d\n" % len(regions) + b"".join(b"%d\n%d\n" % r for r in regions)
    body = m + b"\0" * (-len(m) % 512) + data
    ti = tarfile.TarInfo("GNUSparseFile.0/" + name)
    ti.size = len(body)
    ti.pax_headers = {"GNU.sparse.major": "1", "GNU.sparse.minor": "0",
                      "GNU.sparse.name": name, "GNU.sparse.realsize": str(size)}
    tf.addfile(ti, io.BytesIO(body))
with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as tf:
    sparse(tf, "bomb", [(at, 12), (size, 0)], b"sparse hello")
    sparse(tf, "void", [(size, 0)], b"")
EOF
t_check "the pax bomb is a small file ($(stat -c %s "$T/pax-bomb.tar") bytes)" \
    test "$(stat -c %s "$T/pax-bomb.tar")" -lt 20000
t_eq "tar lists a 1 PiB member" "$PIB" "$(tar -tvf "$T/pax-bomb.tar" | awk '$6 == "bomb" {print $3}')"

# gc started while the import runs waits for the import's lock, then runs: it must not sit behind
# days of hashing
"$IMGFS" import -q -t bomb "$T/pax-bomb.tar" >"$T/import.out" 2>&1 &
import_pid=$!
t_cleanup "kill $import_pid"
t_check "gc runs while the bomb is imported" "$IMGFS" gc
t_check "the import of the pax bomb succeeds" wait "$import_pid"
t_check "fsck is clean" "$IMGFS" fsck

mkdir -p "$T/mnt"
t_cleanup "umount -l '$T/mnt'"
t_check "mount the image" "$IMGFS" mount bomb "$T/mnt"
t_eq "bomb: 1 PiB" "$PIB" "$(stat -c %s "$T/mnt/bomb")"
t_eq "void: 1 PiB" "$PIB" "$(stat -c %s "$T/mnt/void")"
t_eq "the data region reads back" "sparse hello" \
    "$(dd if="$T/mnt/bomb" iflag=skip_bytes,count_bytes skip=$DATA_AT count=12 status=none)"
zeros() { # FILE OFFSET: 4096 bytes at OFFSET are all zeros
    [[ $(dd if="$1" iflag=skip_bytes,count_bytes skip="$2" count=4096 status=none |
        tr -d '\0' | wc -c) == 0 ]] &&
        [[ $(dd if="$1" iflag=skip_bytes,count_bytes skip="$2" count=4096 status=none | wc -c) == 4096 ]]
}
t_check "a hole before the data reads as zeros" zeros "$T/mnt/bomb" $((DATA_AT - 8192))
t_check "the hole at the end reads as zeros" zeros "$T/mnt/bomb" $((PIB - 4096))
t_check "the all-hole file reads as zeros" zeros "$T/mnt/void" $((PIB / 3))
t_eq "nothing past the end" 0 "$(dd if="$T/mnt/bomb" iflag=skip_bytes skip=$PIB bs=4096 count=1 \
    status=none | wc -c)"
t_check "umount" "$IMGFS" umount "$T/mnt"
t_eq "the holes are not stored (12 bytes of content)" 12 "$(t_stored_bytes)"

# export and import again: the canonical tar carries the holes as a pax sparse map, so the image
# comes back with the same digests (and the export is small)
digest=$("$IMGFS" inspect --json bomb | jq -r '.[0].Digest')
t_check "export as an OCI archive" "$IMGFS" export --format oci bomb -o "$T/bomb-oci.tar"
t_check "the export is small too" test "$(stat -c %s "$T/bomb-oci.tar")" -lt 100000
again=$(IMGFS_ROOT=$T/store2 "$IMGFS" import "$T/bomb-oci.tar")
t_eq "import(export(x)) has x's digest" "$digest" "$again"
t_eq "GNU tar lists the exported layer's 1 PiB file" "$PIB" "$(tar -xOf "$T/bomb-oci.tar" \
    "blobs/sha256/$(t_diff_ids bomb | head -1 | cut -d: -f2)" | tar -tv | awk '$6 == "bomb" {print $3}')"

# GNU tar's own sparse format (old GNU 'S' members), made from a real 1 PiB sparse file on tmpfs
# (ext4 and most disks cannot hold a file that large)
if shm=$(mktemp -d /dev/shm/imgfs-test.XXXXXX 2>/dev/null) && truncate -s "$PIB" "$shm/gnu" 2>/dev/null; then
    t_cleanup "rm -rf '$shm'"
    printf 'gnu data' | dd of="$shm/gnu" bs=1 seek=$DATA_AT conv=notrunc status=none
    tar --format=gnu --sparse -C "$shm" -cf "$T/gnu-bomb.tar" gnu
    rm -f "$shm/gnu"
    t_check "GNU tar's bomb is small" test "$(stat -c %s "$T/gnu-bomb.tar")" -lt 20000
    t_check "the GNU sparse bomb imports" "$IMGFS" import -q -t gnubomb "$T/gnu-bomb.tar"
    t_check "mount it" "$IMGFS" mount gnubomb "$T/mnt"
    t_eq "its size" "$PIB" "$(stat -c %s "$T/mnt/gnu")"
    t_eq "its data" "gnu data" \
        "$(dd if="$T/mnt/gnu" iflag=skip_bytes,count_bytes skip=$DATA_AT count=8 status=none)"
    t_check "its holes" zeros "$T/mnt/gnu" $((DATA_AT + 65536))
    t_check "umount" "$IMGFS" umount "$T/mnt"
else
    t_note "no tmpfs at /dev/shm for a 1 PiB file: GNU tar's sparse format not tried"
fi

# --- the size limit ---
mkdir -p "$T/big"
head -c 300000 /dev/urandom >"$T/big/a"
head -c 300000 /dev/urandom >"$T/big/b"
tar -C "$T/big" -cf "$T/big.tar" .
t_rejects "--max-size below the content" "limit of 500000" "$T/big.tar" --max-size 500000
IMGFS_IMPORT_MAX_SIZE=100k t_rejects "IMGFS_IMPORT_MAX_SIZE=100k" "limit of 102400" "$T/big.tar"
t_rejects "--max-files 2 (the tar has 3 entries)" "more than 2 entries" "$T/big.tar" --max-files 2
IMGFS_IMPORT_MAX_FILES=1 t_rejects "IMGFS_IMPORT_MAX_FILES=1" "more than 1 entries" "$T/big.tar"
out=$("$IMGFS" import --max-size 1000 "$T/big.tar" 2>&1 >/dev/null || true)
t_check "the error says how to raise the limit" grep -q -- "--max-size" <<<"$out"
t_rejects "an OCI archive's layers count against the limit too" "limit of 11" "$T/bomb-oci.tar" \
    --max-size 11
t_check "holes do not count: the bomb imports under --max-size 12" \
    "$IMGFS" import -q --max-size 12 -t bomb-limited "$T/pax-bomb.tar"
t_check "--max-size 1m takes the 600 kB tar" "$IMGFS" import -q --max-size 1m -t big "$T/big.tar"
t_check "--max-size 0 means no limit" "$IMGFS" import -q --max-size 0 "$T/big.tar"
t_check_fails "a bad --max-size is a usage error" "$IMGFS" import --max-size 12q "$T/big.tar"
t_check "--help documents the limits" bash -c "'$IMGFS' import --help | grep -q IMGFS_IMPORT_MAX_SIZE"
t_check "fsck is clean" "$IMGFS" fsck
t_end
