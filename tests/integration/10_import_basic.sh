#!/bin/bash
# Import the generated tree, busybox and debian rootfs tarballs; list, inspect and check the store.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
t_begin import_basic
t_need_fixture tree.tar busybox.tar debian.tar.gz

t_check "--help exits 0" "$IMGFS" import --help
t_check "import the generated tree" "$IMGFS" import -t tree "$FIXTURES/tree.tar"
t_check "import busybox" "$IMGFS" import -t busybox "$FIXTURES/busybox.tar"
t_check "import debian" "$IMGFS" import -t debian:12 "$FIXTURES/debian.tar.gz"

names=$(t_image_names | tr '\n' ' ')
t_eq "images lists the three names" "busybox:latest debian:12 tree:latest " "$names"

t_check "inspect by name" "$IMGFS" inspect busybox
json=$("$IMGFS" inspect --json debian:12)
t_check "inspect --json is JSON" jq -e . <<<"$json"
t_eq "debian has one layer" 1 "$(t_diff_ids debian:12 | wc -l)"
t_check "the layer is a sha256 diff_id" grep -qE '^sha256:[0-9a-f]{64}$' <<<"$(t_diff_ids debian:12)"

# The image digest works as a reference, in full and as a prefix.
digest=$(jq -r '[.. | objects | (.Digest? // .digest? // .Id? // .id?) // empty
                 | select(type == "string" and startswith("sha256:"))][0]' <<<"$json")
t_check "inspect --json names the image digest" grep -qE '^sha256:[0-9a-f]{64}$' <<<"$digest"
if [[ $digest == sha256:* ]]; then
    t_check "inspect by full digest" "$IMGFS" inspect "$digest"
    t_check "inspect by 12-digit prefix" "$IMGFS" inspect "${digest:7:12}"
fi

# The tree's diff_id is the digest of the canonical tar: the same tree imported again is the same layer.
t_check "import the tree again under another name" "$IMGFS" import -t tree2 "$FIXTURES/tree.tar"
t_eq "same layer for the same content" "$(t_diff_ids tree)" "$(t_diff_ids tree2)"

t_check_fails "inspect of a missing image fails" "$IMGFS" inspect no-such-image
out=$("$IMGFS" inspect no-such-image 2>&1 || true)
t_check "the error names the image" grep -q "no-such-image" <<<"$out"
t_check_fails "import of a missing file fails" "$IMGFS" import -t x "$T/does-not-exist.tar"

t_check "du works" "$IMGFS" du
t_check "fsck passes on a good store" "$IMGFS" fsck
t_end
