#!/bin/bash
# `imgfs run --fetch-timeout` through a container: run of a registry image pulls it lazily and
# mounts it with that budget; with the registry stopped, a read inside the container fails with
# EIO (seen by the container's own cat) within the budget instead of hanging; with the registry
# started again the same read in the same container succeeds — no remount, no restart.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
source "$TOP/tests/lib_registry.sh"
t_begin lazy_run_timeout
t_need_fixture busybox.tar
reg_start

t_busybox_plus "$T/img.tar" 400000 a.bin b.bin
t_check "import an image" "$IMGFS" import -q -t app:1 "$T/img.tar"
t_check "push it" "$IMGFS" push -q app:1 "$REG/app:1"

lz() { IMGFS_ROOT=$T/lazy IMGFS_RUN_DIR=$T/lazy-run "$IMGFS" "$@"; }
id=$(lz run -d --network none --fetch-timeout 1s "$REG/app:1" sleep 600 2>"$T/run.err")
t_cleanup "IMGFS_ROOT='$T/lazy' IMGFS_RUN_DIR='$T/lazy-run' '$IMGFS' rm -f '$id' >/dev/null 2>&1"
t_check "run -d --fetch-timeout 1s of the registry image" test -n "$id"
t_check "  it was pulled lazily" grep -q "pulling it lazily" "$T/run.err"
t_eq "  the container runs" running "$(lz inspect --format '{{.State.Status}}' "$id")"
t_eq "a read inside while the registry is up" "$(sha256sum <"$T/extra/opt/a.bin")" \
    "$(lz exec "$id" cat /opt/a.bin | sha256sum)"

reg_stop
start=$(date +%s%N)
rc=0
lz exec "$id" cat /opt/b.bin >/dev/null 2>"$T/cat.err" || rc=$?
elapsed=$((($(date +%s%N) - start) / 1000000))
t_check "the registry stopped: the read inside fails (cat exit $rc)" test "$rc" -ne 0
t_check "  with EIO, as the container sees it ($(head -n 1 "$T/cat.err"))" grep -q "I/O error\|Input/output error" "$T/cat.err"
# the budget is 1 s; far more than that means the read hung on retries (a bound, not a timing)
t_check "  within the budget, not minutes ($elapsed ms)" test "$elapsed" -lt 20000
t_eq "  the container still runs" running "$(lz inspect --format '{{.State.Status}}' "$id")"

reg_restart
t_eq "the registry back: the same read in the same container succeeds" \
    "$(sha256sum <"$T/extra/opt/b.bin")" "$(lz exec "$id" cat /opt/b.bin | sha256sum)"
t_end
