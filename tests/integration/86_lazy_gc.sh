#!/bin/bash
# gc and a lazily pulled image: the `remote` records (where each absent chunk lives in the registry)
# are kept while an image references them — after gc a read still fetches its chunks and gets the
# pushed bytes — and dropped with the last image that referenced them. The records are counted in
# the store's LMDB `remote` table (mdb_stat), fsck agrees at each step.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
source "$TOP/tests/lib_registry.sh"
t_begin lazy_gc
t_need_fixture tree.tar
command -v mdb_stat >/dev/null || t_skip "mdb_stat (lmdb-utils) not installed"
reg_start

quiet() { "$@" >/dev/null 2>&1; }
lz() { IMGFS_ROOT=$T/lazy "$IMGFS" "$@"; }
remotes() { mdb_stat -s remote "$T/lazy" | awk '/Entries:/ {print $2}'; }

t_check "import the generated tree" "$IMGFS" import -q -t tree:v1 "$FIXTURES/tree.tar"
t_check "push it" "$IMGFS" push -q tree:v1 "$REG/tree:v1"
mkdir "$T/ref" "$T/mnt"
t_check "mount the original" "$IMGFS" mount tree:v1 "$T/ref"
t_cleanup "'$IMGFS' umount '$T/ref'"
file=$(cd "$T/ref" && find . -type f -size +100k -printf '%s %P\n' | sort -n | tail -n 1 | cut -d' ' -f2-)
t_check "the tree has a file of more than 100 KB ($file)" test -n "$file"

t_check "pull --lazy" lz pull -q --lazy "$REG/tree:v1"
n=$(remotes)
t_check "remote records were written ($n)" test "$n" -gt 0

t_check "gc with the image named" quiet lz gc
t_eq "  keeps every remote record" "$n" "$(remotes)"
t_check "  fsck agrees" quiet lz fsck
t_check "mount it" lz mount "$REG/tree:v1" "$T/mnt"
t_cleanup "IMGFS_ROOT='$T/lazy' '$IMGFS' umount '$T/mnt' 2>/dev/null"
t_check "  a read after gc fetches the pushed bytes" cmp "$T/ref/$file" "$T/mnt/$file"
# umount returns once the mount's keeper has dropped its lease (ROOT/leases), which gc honours: a
# gc right after it must not find the lease (it used to be there in 8 of 10 umounts). A few rounds,
# so that a return before the keeper is gone fails here, not now and then.
no_lease() { [[ -z $(ls -A "$T/lazy/leases") ]]; }
t_check "  the mount holds a lease" test -n "$(ls -A "$T/lazy/leases")"
t_check "umount" lz umount "$T/mnt"
t_check "  its lease is gone when umount returns" no_lease
for round in 1 2 3; do
    lz mount "$REG/tree:v1" "$T/mnt"
    cat "$T/mnt/$file" >/dev/null
    lz umount "$T/mnt"
    t_check "  again (round $round): no lease when umount returns" no_lease
done

# by ID with -f: every name (REPO:TAG and REPO@sha256:...) at once
t_check "rmi -f of the image" quiet lz rmi -f "$(lz images -q)"
t_eq "every name removed" "" "$(lz images -q)"
out=$(lz gc)
t_check "gc after the last name ($out)" grep -q "1 layers" <<<"$out"
t_eq "  drops every remote record" 0 "$(remotes)"
out=$(lz fsck)
t_check "  fsck: clean ($(tail -n 1 <<<"$out"))" grep -q " 0 problems" <<<"$out"
t_end
