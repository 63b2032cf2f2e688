#!/bin/bash
# Names and space: tag adds a name, rmi removes names, gc frees exactly what no name reaches.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
t_begin import_gc
t_need_fixture busybox.tar tree.tar

t_check "import busybox" "$IMGFS" import -t bb "$FIXTURES/busybox.tar"
s_bb=$(t_stored_bytes)
t_check "import tree" "$IMGFS" import -t tree "$FIXTURES/tree.tar"
s_both=$(t_stored_bytes)
t_check "tree adds bytes" test "$s_both" -gt "$s_bb"

t_check "tag bb as bb2:v1" "$IMGFS" tag bb bb2:v1
t_eq "both names listed" "bb2:v1 bb:latest tree:latest" "$(t_image_names | tr '\n' ' ' | sed 's/ $//')"
t_eq "a tag is the same image" "$("$IMGFS" inspect --json bb | jq -S '.. | objects | .diff_ids? // empty')" \
    "$("$IMGFS" inspect --json bb2:v1 | jq -S '.. | objects | .diff_ids? // empty')"
t_check_fails "tag of a missing image fails" "$IMGFS" tag nothing-here x
t_check_fails "rmi of a missing name fails" "$IMGFS" rmi nothing-here

t_check "rmi bb (bb2:v1 still names it)" "$IMGFS" rmi bb
t_check "gc" "$IMGFS" gc
t_eq "nothing freed while a name is left" "$s_both" "$(t_stored_bytes)"
t_check "bb2:v1 still inspects" "$IMGFS" inspect bb2:v1
t_check "fsck after gc" "$IMGFS" fsck

t_check "rmi tree" "$IMGFS" rmi tree
t_check "gc" "$IMGFS" gc
t_eq "gc frees the tree's bytes, keeps busybox" "$s_bb" "$(t_stored_bytes)"
t_check "fsck after gc" "$IMGFS" fsck

t_check "rmi the last name" "$IMGFS" rmi bb2:v1
t_eq "no images" "" "$(t_image_names)"
t_check "gc" "$IMGFS" gc
t_eq "an empty store stores nothing" 0 "$(t_stored_bytes)"
t_check "fsck on the empty store" "$IMGFS" fsck

# gc is idempotent and everything can come back
t_check "gc again" "$IMGFS" gc
t_check "re-import busybox" "$IMGFS" import -t bb "$FIXTURES/busybox.tar"
t_eq "same bytes as the first time" "$s_bb" "$(t_stored_bytes)"
t_check "fsck" "$IMGFS" fsck
t_end
