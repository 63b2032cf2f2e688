#!/bin/bash
# A recorded start-up: `imgfs optimize IMAGE -- CMD` records the files CMD reads; `imgfs push` writes
# them first in their layer, before `.prefetch.landmark`; a lazy mount of the pushed image fetches
# that range in the background, in a few large requests, before anything reads it, and leaves the
# rest remote.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
source "$TOP/tests/lib_registry.sh"
t_begin lazy_trace
t_need_fixture busybox.tar
reg_start

mkdir -p "$T/mnt"
t_busybox_plus "$T/app.tar" 300000 later.bin startup.bin
t_check "import" "$IMGFS" import -q -t app:1 "$T/app.tar"
out=$("$IMGFS" optimize app:1 -- /bin/sh -c "cat /opt/startup.bin >/dev/null" 2>&1)
t_check "optimize records the start-up ($out)" grep -q '^Recorded [1-9][0-9]* files' <<<"$out"
t_check "push" "$IMGFS" push -q app:1 "$REG/app:1"
layer=$(curl -fsS -H 'Accept: application/vnd.oci.image.manifest.v1+json' "http://$REG/v2/app/manifests/1" | jq -r '.layers[0].digest')
curl -fsS "http://$REG/v2/app/blobs/$layer" -o "$T/layer"
tar -tzf "$T/layer" 2>/dev/null >"$T/members"
landmark=$(grep -n '^\.prefetch\.landmark$' "$T/members" | cut -d: -f1)
t_check "the layer has a prefetch landmark" test -n "$landmark"
t_check "the start-up's file comes before it" test "$(grep -n '^opt/startup.bin$' "$T/members" | cut -d: -f1)" -lt "${landmark:-0}"
t_check "so does the shell it ran" test "$(grep -n '^bin/busybox$' "$T/members" | cut -d: -f1)" -lt "${landmark:-0}"
t_check "the file it did not read comes after" test "$(grep -n '^opt/later.bin$' "$T/members" | cut -d: -f1)" -gt "${landmark:-0}"
t_check "no no-prefetch landmark" test "$(grep -c '^\.no\.prefetch\.landmark$' "$T/members")" -eq 0

export IMGFS_ROOT=$T/lazy
t_check "pull --lazy" "$IMGFS" pull -q --lazy "$REG/app:1"
present() { "$IMGFS" du --json | jq '[.Images[].Present] | max'; }
remote() { "$IMGFS" du --json | jq '[.Images[].Remote] | max'; }
mark=$(wc -l <"$REG_DIR/log")
t_check "mount (prefetch: the landmark's range, the default)" "$IMGFS" mount "$REG/app:1" "$T/mnt"
t_cleanup "IMGFS_ROOT='$T/lazy' '$IMGFS' umount -l '$T/mnt'"
# nothing reads the mount: the background fetches the start-up's range by itself
arrived() { test "$(present)" -ge 1300000; }
t_check "the start-up's files arrive without a read" t_wait_for 600 arrived
requests=$(tail -n +$((mark + 1)) "$REG_DIR/log" | awk '$9 == 206' | wc -l)
t_check "in a few large requests ($requests)" test "$requests" -le 4
t_check "the rest is still remote" test "$(remote)" -ge 300000
t_check "and reads right" cmp "$T/extra/opt/startup.bin" "$T/mnt/opt/startup.bin"
t_end
