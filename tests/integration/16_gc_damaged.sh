#!/bin/bash
# gc never frees a named image it cannot load. One damaged record (a config or manifest that is
# not JSON, a layer table that does not decode) used to make gc skip the image and free every
# layer and chunk of it while its name still stood. Now gc refuses: exit non-zero, the image's name
# and the damage in the message, nothing freed; fsck reports the same image. After `rmi` of the
# name, gc frees it. Records are damaged with lmdb-utils (t_store_put), as a disk error would.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
t_begin gc_damaged

mkdir -p "$T/a/etc" "$T/b/etc"
head -c 200000 /dev/urandom >"$T/a/etc/data-a"
head -c 200000 /dev/urandom >"$T/b/etc/data-b"
tar -C "$T/a" -cf "$T/a.tar" .
tar -C "$T/b" -cf "$T/b.tar" .
hex() { od -An -tx1 -v | tr -d ' \n'; }
fresh() {
    rm -rf "$IMGFS_ROOT"
    "$IMGFS" import -q -t damaged "$T/a.tar"
    "$IMGFS" import -q -t intact "$T/b.tar"
    stored=$(t_stored_bytes)
}
# gc must refuse and free nothing; fsck must name the image
refused() { # WHAT PATTERN
    local out rc=0
    out=$("$IMGFS" gc 2>&1) || rc=$?
    t_check "$1: gc refuses (exit $rc)" test "$rc" -ne 0
    t_check "$1: gc names the image and the damage" \
        grep -qE "^imgfs gc: .*nothing was freed.*image \`damaged:latest\`.*$2" <<<"$out"
    t_eq "$1: gc freed nothing" "$stored" "$(t_stored_bytes)"
    out=$("$IMGFS" fsck 2>&1) && rc=0 || rc=$?
    t_check "$1: fsck fails" test "$rc" -ne 0
    t_check "$1: fsck names the image" grep -qE "damaged:latest.*$2" <<<"$out"
    t_check "$1: the intact image still exports" \
        "$IMGFS" export --format rootfs intact -o "$T/intact.tar"
    t_check "$1: ... with its content" cmp <(tar -xOf "$T/intact.tar" etc/data-b) "$T/b/etc/data-b"
}

fresh
config=$("$IMGFS" inspect --json damaged | jq -r '.[0].ConfigDigest' | cut -d: -f2)
manifest=$("$IMGFS" inspect --json damaged | jq -r '.[0].Digest' | cut -d: -f2)
layer=$(t_diff_ids damaged | head -1 | cut -d: -f2)
t_check "a clean store: gc runs" "$IMGFS" gc
t_check "a clean store: fsck is clean" "$IMGFS" fsck

t_store_put blob "$config" "$(printf '{broken' | hex)"
refused "a config that is not JSON" "config"

fresh
t_store_put blob "$manifest" "$(printf '[]' | hex)"
refused "a manifest that is not a manifest" "manifest"

fresh
t_store_put layer "$layer" "$(printf 'IMGFSLY1\x05\0\0\0\0\0\0\0garbage' | hex)"
refused "a layer table that does not decode" "layer"

# with the name removed, gc frees the damaged image and keeps the intact one
t_check "rmi the damaged image" "$IMGFS" rmi damaged
t_check "now gc runs" "$IMGFS" gc
t_check "fsck is clean" "$IMGFS" fsck
t_check "the intact image still exports after gc" \
    "$IMGFS" export --format rootfs intact -o "$T/intact.tar"
t_check "... with its content" cmp <(tar -xOf "$T/intact.tar" etc/data-b) "$T/b/etc/data-b"
t_end
