#!/bin/bash
# fsck checks every record a mount and a container read, not only chunks: one flipped bit of a
# chunk digest inside an image's stored view used to pass fsck ("0 problems") while a read through
# the mount failed with EIO. fsck now rebuilds each view from its layer tables and compares, and
# re-hashes the documents (manifests, configs). Records are damaged with lmdb-utils (t_store_put).
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
t_begin fsck_view

mkdir -p "$T/src/etc"
head -c 100000 /dev/urandom >"$T/src/etc/data"
tar -C "$T/src" -cf "$T/src.tar" .
t_check "import" "$IMGFS" import -q -t img "$T/src.tar"
t_check "a clean store: fsck passes" "$IMGFS" fsck
manifest=$("$IMGFS" inspect --json img | jq -r '.[0].Digest' | cut -d: -f2)
config=$("$IMGFS" inspect --json img | jq -r '.[0].ConfigDigest' | cut -d: -f2)
view=$(t_store_get view "$manifest")
t_check "the view record is there" test -n "$view"
# the file's first chunk: the first key of the chunk database
chunk=$(mdb_dump -s chunk "$IMGFS_ROOT" | awk '/^HEADER=END/ {getline; print substr($0, 2)}')
t_check "the chunk's digest is in the view" grep -q "$chunk" <<<"$view"
# flip the lowest bit of the digest's first byte inside the view
first=$(printf '%02x' $((0x${chunk:0:2} ^ 1)))
t_store_put view "$manifest" "${view/$chunk/$first${chunk:2}}"

mkdir -p "$T/mnt"
t_cleanup "umount -l '$T/mnt'"
t_check "the damaged image still mounts" "$IMGFS" mount img "$T/mnt"
t_check_fails "a read through the mount fails (the damage is real)" cat "$T/mnt/etc/data"
t_check "umount" "$IMGFS" umount "$T/mnt"
out=$("$IMGFS" fsck 2>&1) && rc=0 || rc=$?
t_check "fsck fails" test "$rc" -ne 0
t_check "fsck says the view differs from its layers, naming the image" \
    grep -qE "img:latest.*view differs" <<<"$out"

# the view put back: clean again
t_store_put view "$manifest" "$view"
t_check "the view restored: fsck passes" "$IMGFS" fsck
t_check "and the file reads" cmp <(
    "$IMGFS" export --format rootfs img -o - | tar -xO etc/data
) "$T/src/etc/data"

# a view that does not even open
t_store_put view "$manifest" "00"
out=$("$IMGFS" fsck 2>&1) && rc=0 || rc=$?
t_check "a truncated view: fsck fails and says so" grep -qE "img:latest.*view does not open" <<<"$out"
t_store_put view "$manifest" "$view"

# a config changed (still valid JSON, so it loads): its hash no longer matches its key
t_store_put blob "$config" "$(t_store_get blob "$config" | sed 's/^7b/7b20/')"
out=$("$IMGFS" fsck 2>&1) && rc=0 || rc=$?
t_check "a changed config: fsck fails" test "$rc" -ne 0
t_check "fsck names the document" grep -q "document sha256:$config.*does not match its hash" <<<"$out"
t_end
