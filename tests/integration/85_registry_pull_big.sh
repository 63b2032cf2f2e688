#!/bin/bash
# A failed pull of a layer larger than one store batch (64 MiB uncompressed): the batches committed
# before the failure are in the store but nothing names them (no image, fsck clean); a retry
# completes the pull, resuming the download with Range where the failed one broke (the bytes it
# had are kept in ROOT/tmp/pull-<hex>), and writes only the chunks that are not there yet (the
# committed ones are reused, not stored twice); gc frees what a failed pull left. The hostile registry sends half of
# the layer (71 MB of distinct text lines, so more than one batch) and dies.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
source "$TOP/tests/lib_registry.sh"
t_begin registry_pull_big
command -v python3 >/dev/null || t_skip "python3 not installed"
command -v mdb_stat >/dev/null || t_skip "mdb_stat (lmdb-utils) not installed"

quiet() { "$@" >/dev/null 2>&1; }
chunks() { mdb_stat -s chunk "$1" | awk '/Entries:/ {print $2}'; }
mkdir -p "$T/src/data"
seq 1 17000000 >"$T/src/data/big.txt" # 142 MB, every FastCDC chunk distinct
tar -C "$T/src" -cf "$T/big.tar" data
t_check "import a one-layer image of 142 MB" "$IMGFS" import -q -t big:1 "$T/big.tar"
rm -f "$T/big.tar"
"$IMGFS" export -o "$T/big-oci.tar" big:1
mkdir -p "$T/layout"
tar -C "$T/layout" -xf "$T/big-oci.tar"
rm -f "$T/big-oci.tar"


export IMGFS_ROOT=$T/pulled
fails() {
    hostile die
    local rc=0
    "$IMGFS" pull -q "$H/big:1" >/dev/null 2>"$T/err" || rc=$?
    t_eq "the registry dies half way through the layer: exit 1 ($(tail -n 1 "$T/err"))" 1 "$rc"
    wait "$HPID" 2>/dev/null || true
    HPID=""
}
fails
left=$(chunks "$IMGFS_ROOT")
t_check "  committed batches stay in the store ($left chunks)" test "$left" -gt 500
t_eq "  nothing is an image" "" "$("$IMGFS" images -q)"
out=$("$IMGFS" fsck)
t_check "  fsck: clean ($(tail -n 1 <<<"$out"))" grep -q " 0 problems" <<<"$out"
big=$(jq -r '.layers[0].digest' "$T/layout/blobs/sha256/$(jq -r '.manifests[0].digest' "$T/layout/index.json" | cut -d: -f2)")
kept=$(stat -c %s "$IMGFS_ROOT/tmp/pull-${big#sha256:}" 2>/dev/null || echo 0)
t_check "  the bytes received are kept for a retry ($kept of $(stat -c %s "$T/layout/blobs/sha256/${big#sha256:}"))" \
    test "$kept" -gt 0
cp -a "$IMGFS_ROOT" "$T/pulled2" # for gc, below (no process has the store open)

hostile ok
t_check "a retry completes the pull" quiet "$IMGFS" pull -q "$H/big:1"
grep "^GET [^ ]*/blobs/$big " "$HLOG" | sed 's/^/    log: /'
t_check "  it asked for the rest of the layer: Range bytes=$kept-" \
    grep -q "^GET [^ ]*/blobs/$big range=bytes=$kept- .* -> 206" "$HLOG"
t_eq "  and nothing of the layer before byte $kept" "" \
    "$(grep "^GET [^ ]*/blobs/$big " "$HLOG" | grep -v "range=bytes=$kept- ")"
t_check "  the kept bytes are gone once the layer is in" test ! -e "$IMGFS_ROOT/tmp/pull-${big#sha256:}"
t_eq "  the image is the original" "$(IMGFS_ROOT=$T/store "$IMGFS" images -q big:1)" \
    "$("$IMGFS" images -q "$H/big:1")"
all=$(chunks "$IMGFS_ROOT")
t_eq "  the store holds the image's chunks once: as many as the source store" \
    "$(chunks "$T/store")" "$all"
t_check "  the retry reused the committed chunks (it added $((all - left)) of $all)" \
    test "$((all - left))" -lt "$all"

# gc frees what a failed pull left (a copy of the store as the failure left it)
export IMGFS_ROOT=$T/pulled2
out=$("$IMGFS" gc)
t_check "  gc frees them ($out)" grep -q "Freed $left chunks" <<<"$out"
t_eq "  none left" 0 "$(chunks "$IMGFS_ROOT")"
t_check "  nor the bytes kept for a retry" test ! -e "$IMGFS_ROOT/tmp/pull-${big#sha256:}"
t_end
