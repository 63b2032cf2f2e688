#!/bin/bash
# Export, save and push of a lazily pulled image. Its layers are stored under the registry's
# diff_ids (docs/lazy.md); an archive names them by their canonical digests. So: export and save
# first fetch what is still remote (saying so on stderr), then write the archive a full pull of the
# image gives, byte for byte; the archive imports and is the pushed tree; skopeo reads it (checking
# every blob's digest); push of a lazily pulled image gives the same manifest digest as the
# original's push. With the registry gone, export of an incomplete image fails with a clear error
# and writes nothing.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
source "$TOP/tests/lib_registry.sh"
t_begin lazy_export
t_need_fixture busybox.tar
reg_start

at() { local root=$1; shift; IMGFS_ROOT=$T/$root "$IMGFS" "$@"; }
remote_of() { at "$1" du --json | jq -r --arg n "$2" '.Images[] | select(.Name == $n) | .Remote'; }

t_check "import busybox" "$IMGFS" import -q -t bb:1 "$FIXTURES/busybox.tar"
t_check "push it" "$IMGFS" push -q bb:1 "$REG/bb:1"
t_check "full pull into store full" at full pull -q "$REG/bb:1"
t_check "lazy pull into store lazy" at lazy pull -q --lazy "$REG/bb:1"
t_check "the lazy image is remote" test "$(remote_of lazy "$REG/bb:1")" -gt 100000

# ---- export: fetched first, then the same archive as a full pull's
t_check "export the fully pulled image" at full export -o "$T/full.tar" "$REG/bb:1"
t_check "export the lazily pulled image" eval "IMGFS_ROOT='$T/lazy' '$IMGFS' export -o '$T/lazy.tar' '$REG/bb:1' 2>'$T/err'"
t_check "it said it fetched the rest ($(head -1 "$T/err"))" grep -q "was pulled lazily: fetching" "$T/err"
t_eq "nothing is remote any more" 0 "$(remote_of lazy "$REG/bb:1")"
t_check "the archives are the same bytes" cmp "$T/full.tar" "$T/lazy.tar"
t_check "save (docker format) too" eval "at lazy save -o '$T/lazy-save.tar' '$REG/bb:1' && at full save -o '$T/full-save.tar' '$REG/bb:1'"
t_check "... the same bytes" cmp "$T/full-save.tar" "$T/lazy-save.tar"
t_check "skopeo reads the export (every blob's digest checked)" skopeo --insecure-policy copy -q \
    "oci-archive:$T/lazy.tar" "dir:$T/skopeo"
t_check "it imports into an empty store" at fresh import -q -t back:1 "$T/lazy.tar"
mkdir "$T/ref" "$T/mnt"
t_check "mount the original" "$IMGFS" mount bb:1 "$T/ref"
t_cleanup "'$IMGFS' umount '$T/ref'"
t_check "mount the imported export" at fresh mount back:1 "$T/mnt"
t_cleanup "IMGFS_ROOT='$T/fresh' '$IMGFS' umount '$T/mnt'"
t_check "it is the pushed tree" "$TOP/tests/compare-trees.sh" "$T/ref" "$T/mnt"
at fresh umount "$T/mnt"

# ---- push of a lazily pulled image: fetched first, the same blobs and manifest
t_check "lazy pull into store lazy2" at lazy2 pull -q --lazy "$REG/bb:1"
t_check "push it under another name" eval "at lazy2 push -q '$REG/bb:1' '$REG/copy:1' 2>'$T/err'"
t_check "it said it fetched the rest" grep -q "was pulled lazily: fetching" "$T/err"
digest() { curl -fsSI -H 'Accept: application/vnd.oci.image.manifest.v1+json' "http://$REG/v2/$1" | tr -d '\r' | awk 'tolower($1) == "docker-content-digest:" {print $2}'; }
t_eq "the same manifest digest as the original's push" "$(digest bb/manifests/1)" "$(digest copy/manifests/1)"

# ---- offline: a clear error, nothing written, the store intact
t_check "lazy pull into store lazy3" at lazy3 pull -q --lazy "$REG/bb:1"
reg_stop
rc=0
at lazy3 export -o "$T/offline.tar" "$REG/bb:1" 2>"$T/err" || rc=$?
t_eq "export fails (exit 125, as for any failed export)" 125 "$rc"
t_check "naming the image and why ($(tail -1 "$T/err"))" grep -q "bb:1 was pulled lazily and export needs all of its content" "$T/err"
t_check "no archive was written" test ! -e "$T/offline.tar" -a ! -e "$T/offline.tar.tmp"
t_check "the store is consistent" at lazy3 fsck
t_check "and still lazily pulled" test "$(remote_of lazy3 "$REG/bb:1")" -gt 100000
t_end
