#!/bin/bash
# imgfs push uploads layers in parallel, bounded by -j (default 3), and the result does not depend
# on it; ROOT/pushed-blobs (where imgfs pushed a blob before, for cross-repository mounts) stays
# bounded and a registry that lost a blob costs an upload, not a failed push.
#
# Parallelism is seen from the registry's side: tests/registry_hostile.py --mode upload-barrier
# holds each blob's final PUT until N uploads are in flight at once (or a few seconds pass), and
# logs how many were in flight.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
source "$TOP/tests/lib_registry.sh"
t_begin registry_push_jobs
t_need_fixture busybox.tar
command -v python3 >/dev/null || t_skip "python3 not installed"
quiet() { "$@" >/dev/null 2>&1; }

# an image of four layers with different content
C=$T/ctx
mkdir -p "$C"
for f in a b c d; do
    head -c 300000 /dev/urandom >"$C/$f"
done
printf 'FROM scratch\nCOPY a /a\nCOPY b /b\nCOPY c /c\nCOPY d /d\n' >"$C/Dockerfile"
t_check "build a four-layer image" quiet "$IMGFS" build -q -t four:1 "$C"
t_eq "  four layers" 4 "$(t_diff_ids four:1 | wc -l)"

"$IMGFS" import -q -t busybox "$FIXTURES/busybox.tar"
"$IMGFS" export -o "$T/bb.tar" busybox
mkdir -p "$T/layout"
tar -C "$T/layout" -xf "$T/bb.tar"

HPID=""
barrier() { # N: a hostile registry whose PUTs wait for N uploads in flight
    [[ -n $HPID ]] && { kill "$HPID" 2>/dev/null || true; wait "$HPID" 2>/dev/null || true; }
    HPORT=$(t_free_port)
    HLOG=$T/barrier-$1-$RANDOM.log
    python3 "$TOP/tests/registry_hostile.py" --port "$HPORT" --layout "$T/layout" \
        --mode upload-barrier --barrier "$1" --barrier-wait 3 --log "$HLOG" 2>>"$T/hostile.err" &
    HPID=$!
    t_cleanup "kill $HPID 2>/dev/null"
    t_wait_for 400 _reg_listening "$HPORT" || t_fail "the hostile registry did not start"
    H=127.0.0.1:$HPORT
}
most_inflight() { sed -n 's/.*-> 201 inflight=\([0-9]*\).*/\1/p' "$HLOG" | sort -n | tail -n 1; }

barrier 3
t_check "push (default jobs)" quiet "$IMGFS" push four:1 "$H/x/four:1"
t_eq "  three layers were uploading at once" 3 "$(most_inflight)"
t_eq "  four layer blobs and the config went up" 5 "$(grep -c '^PUT .*/blobs/uploads/.* -> 201' "$HLOG")"

barrier 3
t_check "push -j 2" quiet "$IMGFS" push -j 2 four:1 "$H/x/four:1"
t_eq "  never more than two at once" 2 "$(most_inflight)"

barrier 2
t_check "push -j 1" quiet "$IMGFS" push -j 1 four:1 "$H/x/four:1"
t_eq "  one at a time" 1 "$(most_inflight)"
kill "$HPID" 2>/dev/null || true
wait "$HPID" 2>/dev/null || true
HPID=""

# the result does not depend on the parallelism; the output has one line per layer
reg_start
out=$("$IMGFS" push -j 1 four:1 "$REG/s/four:1")
serial=$(sed -n 's/^1: digest: \(sha256:[0-9a-f]*\) size: .*/\1/p' <<<"$out")
t_check "push -j 1: docker's last line, TAG: digest: DIGEST size: BYTES" grep -qE '^sha256:[0-9a-f]{64}$' <<<"$serial"
t_eq "push -j 1 to a real registry: a line per layer" 4 "$(grep -cE '^[0-9a-f]{12}: Pushed' <<<"$out")"
out=$("$IMGFS" push -j 4 four:1 "$REG/p/four:1")
t_eq "push -j 4: the same manifest digest as -j 1" "$serial" \
    "$(sed -n 's/^1: digest: \(sha256:[0-9a-f]*\) size: .*/\1/p' <<<"$out")"
t_eq "  a line per layer" 4 "$(grep -cE '^[0-9a-f]{12}: (Pushed|Mounted)' <<<"$out")"
"$IMGFS" push --json four:1 "$REG/r/four:1" >"$T/events.json"
t_eq "--json: each layer says layer-preparing (encoding) first, its upload (mounted here) last" \
    "1 2 3 4" "$(jq -r -s '[group_by(.layer)[] | select(.[0].layer) |
        select(.[0].event == "layer-preparing" and (.[-1].event | test("done|mounted"))) | .[0].layer] |
        map(tostring) | join(" ")' "$T/events.json")"
t_check "  skopeo reads it" quiet skopeo inspect --tls-verify=false "docker://$REG/p/four:1"

# ROOT/pushed-blobs is bounded: a long history of other pushes is cut to the newest entries
hints=$IMGFS_ROOT/pushed-blobs
t_check "pushed-blobs lists the pushes" grep -q " $REG/p/four$" "$hints"
for i in $(seq 1 6000); do
    printf 'sha256:%064x reg.example:5000/old/r%d\n' "$i" "$i"
done >"$T/old-hints"
cat "$hints" >>"$T/old-hints"
cp "$T/old-hints" "$hints"
t_check "push after 6000 recorded blobs" quiet "$IMGFS" push four:1 "$REG/p/four:2"
t_check "  pushed-blobs is cut to at most 4096 lines ($(wc -l <"$hints"))" test "$(wc -l <"$hints")" -le 4096
t_check "  the oldest are gone" quiet bash -c "! grep -q ' reg.example:5000/old/r1$' '$hints'"
t_check "  the newest stay" grep -q ' reg.example:5000/old/r6000$' "$hints"
t_check "  and this push's blobs are there" grep -q " $REG/p/four$" "$hints"
t_eq "  one line per blob and repository" "" "$(sort "$hints" | uniq -d)"

# a registry that lost a blob where imgfs pushed it: the mount fails, the push uploads it
layer=$(jq -r -s 'map(select(.event == "layer-start" or .event == "layer-exists"))[0].digest' \
    <<<"$("$IMGFS" push --json four:1 "$REG/p/four:3")")
rm -rf "$REG_DIR/storage/docker/registry/v2/repositories/p/four/_layers/sha256/${layer#sha256:}"
rm -rf "$REG_DIR/storage/docker/registry/v2/repositories/s/four/_layers/sha256/${layer#sha256:}"
t_check "  (the registry no longer has $layer in p/four)" \
    quiet bash -c "! curl -sfI http://$REG/v2/p/four/blobs/$layer"
"$IMGFS" push --json four:1 "$REG/q/four:1" >"$T/lost.json"
t_eq "push to another repository: the lost layer is uploaded, not mounted" "layer-done" \
    "$(jq -r -s --arg d "$layer" 'map(select(.digest == $d and (.event | test("done|mounted"))))[0].event' "$T/lost.json")"
t_check "  the hint that pointed at p/four is dropped" \
    quiet bash -c "! grep -q '^$layer $REG/p/four$' '$hints'"
t_check "  skopeo copies what was pushed" \
    quiet skopeo copy -q --src-tls-verify=false "docker://$REG/q/four:1" "oci:$T/q:1"
t_end
