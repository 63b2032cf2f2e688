#!/bin/bash
# gc removes the start-ups `imgfs optimize` recorded (ROOT/traces/<manifest hex>) of images it
# frees, and keeps those of images still named.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
t_begin gc_traces
t_need_fixture busybox.tar
mkdir -p "$T/extra/opt"
echo other >"$T/extra/opt/other"
cp "$FIXTURES/busybox.tar" "$T/other.tar"
tar -rf "$T/other.tar" -C "$T/extra" opt/other
"$IMGFS" import -q -t gone "$FIXTURES/busybox.tar"
"$IMGFS" import -q -t kept "$T/other.tar"
manifest() { "$IMGFS" images --json | jq -r ".[] | select(.Name == \"$1:latest\") | .Digest" | sed 's/^sha256://'; }
gone=$(manifest gone)
kept=$(manifest kept)
t_check "two different images" test -n "$gone" -a -n "$kept" -a "$gone" != "$kept"
t_check "optimize gone" "$IMGFS" optimize gone -- /bin/true
t_check "optimize kept" "$IMGFS" optimize kept -- /bin/cat /opt/other
t_check "gone's trace is recorded" test -s "$IMGFS_ROOT/traces/$gone"
t_check "kept's trace is recorded" test -s "$IMGFS_ROOT/traces/$kept"
echo unrelated >"$IMGFS_ROOT/traces/README"

t_check "gc with both named" "$IMGFS" gc
t_check "keeps gone's trace while it is named" test -s "$IMGFS_ROOT/traces/$gone"
t_check "rmi gone" "$IMGFS" rmi gone
out=$("$IMGFS" gc)
t_check "gc says it removed one trace ($out)" grep -q '^Removed 1 recorded start-up' <<<"$out"
t_check_fails "gone's trace is removed" test -e "$IMGFS_ROOT/traces/$gone"
t_check "kept's trace stays" test -s "$IMGFS_ROOT/traces/$kept"
t_check "a file that names no image is left alone" test -f "$IMGFS_ROOT/traces/README"
t_check "fsck is clean" "$IMGFS" fsck
t_end
