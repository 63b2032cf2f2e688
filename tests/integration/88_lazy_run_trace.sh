#!/bin/bash
# `imgfs run` of a lazily pulled image with the lazy options of `imgfs mount`: --record-trace
# records the start-up's reads (a private traced mount, as `imgfs optimize`), so a lazily pulled
# image can be optimized and pushed again with its start-up first; --prefetch all fetches the whole
# image in the background of a running container; the default (trace) fetches only the recorded
# range; bad values are refused with run's usage status.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
source "$TOP/tests/lib_registry.sh"
t_begin lazy_run_trace
t_need_fixture busybox.tar
reg_start

t_busybox_plus "$T/app.tar" 300000 later.bin startup.bin
t_check "import" "$IMGFS" import -q -t app:1 "$T/app.tar"
t_check "push it (no trace)" "$IMGFS" push -q app:1 "$REG/app:1"
at() { local root=$1; shift; IMGFS_ROOT=$T/$root "$IMGFS" "$@"; }
present() { at "$1" du --json | jq '[.Images[].Present] | max'; }
remote() { at "$1" du --json | jq '[.Images[].Remote] | max'; }

# ---- bad values and combinations: refused before anything runs
for bad in "--prefetch sometimes" "--fetch-timeout 5y" "--fetch-timeout 0" "--record-trace -d" "--record-trace"; do
    rc=0
    # shellcheck disable=SC2086
    at bad run --network none $bad app:1 true 2>"$T/err" || rc=$?
    t_eq "run $bad is refused with status 125 ($(head -1 "$T/err"))" 125 "$rc"
done
rc=0
at bad create --prefetch all app:1 true 2>"$T/err" || rc=$?
t_eq "create --prefetch is refused ($(head -1 "$T/err"))" 125 "$rc"

# ---- --record-trace on a lazily pulled image (pulled by run itself)
out=$(at lazy run --rm --network none --record-trace "$REG/app:1" sh -c 'cat /opt/startup.bin >/dev/null; echo started' 2>"$T/err")
t_eq "the container ran" started "$out"
t_check "it pulled lazily" grep -q "pulling it lazily" "$T/err"
t_check "it recorded the start-up ($(tail -1 "$T/err"))" grep -q "^Recorded [1-9][0-9]* files read by the start-up of $REG/app:1" "$T/err"
trace=$(ls "$T/lazy/traces")
t_eq "one trace, kept with the image" 1 "$(wc -l <<<"$trace")"
t_check "it lists the file read" grep -qx "opt/startup.bin" "$T/lazy/traces/$trace"
t_check "and the shell" grep -qx "bin/busybox" "$T/lazy/traces/$trace"
t_check "not the file left alone" test "$(grep -c "^opt/later.bin$" "$T/lazy/traces/$trace")" -eq 0
t_check "no mount left behind" test "$(grep -c "$T/" /proc/self/mounts)" -eq 0
t_check "later.bin is still remote" test "$(remote lazy)" -ge 300000

# ---- push it again: the start-up first, before the landmark
t_check "push the lazily pulled, traced image" eval "at lazy push -q '$REG/app:1' '$REG/app:2' 2>/dev/null"
layer=$(curl -fsS -H 'Accept: application/vnd.oci.image.manifest.v1+json' "http://$REG/v2/app/manifests/2" | jq -r '.layers[0].digest')
curl -fsS "http://$REG/v2/app/blobs/$layer" -o "$T/layer"
tar -tzf "$T/layer" 2>/dev/null >"$T/members"
landmark=$(grep -n '^\.prefetch\.landmark$' "$T/members" | cut -d: -f1)
t_check "the pushed layer has a prefetch landmark" test -n "$landmark"
t_check "the start-up's file comes before it" test "$(grep -n '^opt/startup.bin$' "$T/members" | cut -d: -f1)" -lt "${landmark:-0}"
t_check "the file it did not read after it" test "$(grep -n '^opt/later.bin$' "$T/members" | cut -d: -f1)" -gt "${landmark:-0}"

# ---- run --prefetch all: everything arrives while the container runs, without a read
t_check "pull app:2 lazily" at all pull -q --lazy "$REG/app:2"
id=$(at all run -d --network none --prefetch all "$REG/app:2" sleep 1000)
t_cleanup "IMGFS_ROOT='$T/all' '$IMGFS' rm -f '$id' >/dev/null 2>&1"
nothing_remote() { test "$(remote all)" -eq 0; }
t_check "the whole image arrives in the background" t_wait_for 600 nothing_remote
at all rm -f "$id" >/dev/null

# ---- the default (trace): only the recorded range arrives
t_check "pull app:2 lazily into another store" at dflt pull -q --lazy "$REG/app:2"
id=$(at dflt run -d --network none "$REG/app:2" sleep 1000)
t_cleanup "IMGFS_ROOT='$T/dflt' '$IMGFS' rm -f '$id' >/dev/null 2>&1"
arrived() { test "$(present dflt)" -ge 1300000; }
t_check "the start-up's range arrives without a read" t_wait_for 600 arrived
t_check "later.bin stays remote" test "$(remote dflt)" -ge 300000
at dflt rm -f "$id" >/dev/null
t_end
