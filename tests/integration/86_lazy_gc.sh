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
lz umount "$T/mnt"
# umount returns before the mount's daemon has ended and dropped its lease (ROOT/leases), and gc
# keeps what a lease holds: wait for the lease to go
no_lease() { [[ -z $(ls -A "$T/lazy/leases") ]]; }
t_check "  its lease is dropped once the daemon ends" t_wait_for 400 no_lease

# by ID with -f: every name (REPO:TAG and REPO@sha256:...) at once
t_check "rmi -f of the image" quiet lz rmi -f "$(lz images -q)"
t_eq "every name removed" "" "$(lz images -q)"
out=$(lz gc)
t_check "gc after the last name ($out)" grep -q "1 layers" <<<"$out"
t_eq "  drops every remote record" 0 "$(remotes)"
out=$(lz fsck)
t_check "  fsck: clean ($(tail -n 1 <<<"$out"))" grep -q " 0 problems" <<<"$out"
t_end
