#!/bin/bash
# Mount points Docker makes for you: `-v HOST:CTR` with a HOST directory that does not exist yet
# creates it (mkdir -p, as Docker does), and `--read-only` with `--tmpfs`/`-v` targets the image
# does not have works (the mount points are made before the rootfs becomes read-only) while the
# rootfs itself stays read-only.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
t_begin run_mount_points
t_need_fixture busybox.tar
"$IMGFS" import -q -t busybox "$FIXTURES/busybox.tar"

# -v with a missing host directory
host=$T/not/yet/there
t_eq "the host directory is missing before the run" "no" "$([[ -e $host ]] && echo yes || echo no)"
t_eq "-v with a missing host dir runs and writes into it" "ok" \
    "$("$IMGFS" run --rm -v "$host:/data" busybox sh -c 'echo hi >/data/f && echo ok' </dev/null)"
t_eq "the host directory was created" "directory" "$(stat -c %F "$host")"
t_eq "the container's write is on the host" "hi" "$(cat "$host/f")"

# --read-only with targets that are not in the image
mkdir -p "$T/vol"
echo from-host >"$T/vol/file"
out=$("$IMGFS" run --rm --read-only --tmpfs /scratch/deep -v "$T/vol:/newdir/vol:ro" busybox sh -c '
    echo t >/scratch/deep/x && cat /scratch/deep/x
    cat /newdir/vol/file
    if touch /rootfile 2>/dev/null; then echo root-writable; else echo root-readonly; fi
    if touch /newdir/other 2>/dev/null; then echo newdir-writable; else echo newdir-readonly; fi' </dev/null 2>&1) || true
t_eq "--read-only with a --tmpfs and a -v the image lacks" "t
from-host
root-readonly
newdir-readonly" "$out"
t_eq "--read-only: a tmpfs on an existing dir still works" "ok" \
    "$("$IMGFS" run --rm --read-only --tmpfs /tmp busybox sh -c 'touch /tmp/a && echo ok' </dev/null)"
t_check_fails "--read-only: writing to the rootfs fails" "$IMGFS" run --rm --read-only busybox touch /etc/x
t_end
