#!/bin/bash
# A hostile registry (tests/registry_hostile.py) against imgfs pull: oversized, wrong-digest and
# truncated documents and blobs, a config whose diff_ids lie → a clear error, nothing named, the
# store consistent, no crash. And the transfer machinery: a broken download resumes with Range
# (also from a server that ignores Range), 503/429 are retried (after Retry-After, seconds or an
# HTTP-date), a token refused mid-pull (401, or a bare 403) is renewed once, a registry that dies mid-pull gives an error and a later pull works.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
source "$TOP/tests/lib_registry.sh"
t_begin registry_badinput
t_need_fixture busybox.tar
command -v python3 >/dev/null || t_skip "python3 not installed"

"$IMGFS" import -q -t busybox "$FIXTURES/busybox.tar"
"$IMGFS" export -o "$T/bb.tar" busybox
mkdir -p "$T/layout"
tar -C "$T/layout" -xf "$T/bb.tar"
want_ids=$(t_diff_ids busybox)
export IMGFS_ROOT=$T/pulled


rejects() { # MODE PATTERN: the pull fails with exit 1 (as docker pull) and an error matching PATTERN
    local mode=$1 pattern=$2 out rc before
    hostile "$mode"
    before=$("$IMGFS" du --json 2>/dev/null | jq -r '.Stored // 0' || echo 0)
    out=$("$IMGFS" pull "$H/x/bb:1" 2>&1) && rc=0 || rc=$?
    echo "$out" | tail -n 2 | sed 's/^/    output: /'
    t_eq "$mode: exit 1 (not a crash)" 1 "$rc"
    t_check "$mode: the error says what ($pattern)" grep -qE "imgfs pull: .*$pattern" <<<"$out"
    t_eq "$mode: nothing named" "" "$("$IMGFS" images -q 2>/dev/null)"
    t_eq "$mode: nothing stored" "$before" "$("$IMGFS" du --json 2>/dev/null | jq -r '.Stored // 0' || echo 0)"
    t_check "$mode: the store is consistent" "$IMGFS" fsck >/dev/null
}
rejects big-manifest "larger than"
rejects manifest-cut "not a JSON object"
rejects manifest-digest "Docker-Content-Digest .* does not match"
rejects blob-corrupt "has digest"
rejects blob-short "bytes served, the manifest says"
rejects diff-id "uncompressed stream has digest .* the config says"
rejects huge-config "larger than"
rejects die "getting blob .*(connect|Connection|closed)"
# what the dead registry had sent is kept for the next pull (85_registry_pull_big resumes from it);
# kept bytes that are not the blob's start (here one flipped): the pull resumes, the digest check
# fails, and the layer is downloaded again whole, once
big=$(jq -r '.layers[0].digest' "$T/layout/blobs/sha256/$(jq -r '.manifests[0].digest' "$T/layout/index.json" | cut -d: -f2)")
kept=$IMGFS_ROOT/tmp/pull-${big#sha256:}
t_check "die: the bytes received are kept" test -s "$kept"
cp -a "$IMGFS_ROOT" "$T/garbage"
rm -f "$kept" # the modes below start from nothing
printf '\xff' | dd of="$T/garbage/tmp/${kept##*/}" bs=1 seek=100 conv=notrunc status=none
hostile ok
t_check "kept bytes that are not the blob's: the pull succeeds" \
    env IMGFS_ROOT="$T/garbage" "$IMGFS" pull -q "$H/x/bb:1"
t_check "  it resumed first (Range bytes=$(stat -c %s "$kept" 2>/dev/null || echo N)-)" \
    grep -qE "^GET [^ ]*/blobs/$big range=bytes=[1-9][0-9]*- " "$HLOG"
t_check "  then downloaded the layer whole" grep -q "^GET [^ ]*/blobs/$big range=- " "$HLOG"
t_eq "  the source's layers" "$want_ids" "$(IMGFS_ROOT=$T/garbage t_diff_ids "$H/x/bb:1" 2>/dev/null)"
t_check "  the kept bytes are gone" test ! -e "$T/garbage/tmp/${kept##*/}"
rejects truncate-tamper "has digest"
t_check "  (the tampered bytes came in a resumed Range request)" \
    grep -qE "blobs/.* range=bytes=[1-9][0-9]*- .* -> 206" "$HLOG"

pulls() { # MODE WHAT: the pull succeeds and gives the source's layers
    hostile "$1"
    if "$IMGFS" pull -q "$H/x/bb:1" >"$T/out" 2>&1; then
        t_pass "$1: $2"
    else
        sed 's/^/    output: /' "$T/out"
        t_fail "$1: $2"
    fi
    t_eq "$1: the source's layers" "$want_ids" "$(t_diff_ids "$H/x/bb:1" 2>/dev/null)"
    "$IMGFS" rmi "$H/x/bb:1" >/dev/null 2>&1 || true
}
pulls truncate-once "a broken download resumes"
t_check "  with a Range request from where it broke" grep -qE "blobs/.* range=bytes=[1-9][0-9]*- " "$HLOG"
pulls ignore-range "resumes from a server that answers Range with the whole blob"
# a registry stopped in the middle of a layer and started again: the pull resumes where it broke
# (a fresh store: this one has the layer from the pulls above and would not download it)
hostile die
out=$T/die-restart.out
IMGFS_ROOT=$T/die-restart "$IMGFS" pull -q "$H/x/bb:1" >"$out" 2>&1 &
pull_pid=$!
t_cleanup "kill $pull_pid 2>/dev/null"
if ! t_wait_for 400 eval "! kill -0 $HPID 2>/dev/null"; then
    t_fail "the hostile registry did not die mid-layer"
    kill "$HPID" 2>/dev/null || true
fi
wait "$HPID" 2>/dev/null || true
died_log=$HLOG
python3 "$TOP/tests/registry_hostile.py" --port "$HPORT" --layout "$T/layout" --mode ok \
    --log "$T/hostile-back.log" 2>>"$T/hostile.err" &
HPID=$!
t_cleanup "kill $HPID 2>/dev/null"
if wait "$pull_pid"; then t_pass "registry stopped mid-layer, started again: the pull succeeds"; else
    sed 's/^/    output: /' "$out"; t_fail "registry stopped mid-layer, started again: the pull succeeds"; fi
t_check "  the first server sent part of the layer" grep -q " -> 200 cut" "$died_log"
t_check "  the one started again was asked for the rest (Range from where it broke)" \
    grep -qE "blobs/.* range=bytes=[1-9][0-9]*- .* -> 206" "$T/hostile-back.log"
big=$(jq -r '.layers[0].digest' "$T/layout/blobs/sha256/$(jq -r '.manifests[0].digest' "$T/layout/index.json" | cut -d: -f2)")
t_check "  and not for the whole layer again" \
    bash -c "! grep -q '^GET [^ ]*/blobs/$big range=- ' '$T/hostile-back.log'"
t_eq "  the source's layers (the digest held over the two transfers)" "$want_ids" \
    "$(IMGFS_ROOT=$T/die-restart t_diff_ids "$H/x/bb:1" 2>/dev/null)"

pulls retry "503 and 429 are retried"
t_eq "  twice per blob, then served" 2 "$(grep -c "blobs/.* -> \(503\|429\)" "$HLOG" | awk '{print ($1 >= 2) ? 2 : $1}')"
# waited() STATUS: the shortest pause, over every blob, between a STATUS answer and the next
# request for that blob (milliseconds)
waited() {
    awk -v st="$1" '$1 == "GET" && $2 ~ /blobs/ {
        t = substr($NF, 3) * 1000
        if ($2 in after) { d = t - after[$2]; if (min == "" || d < min) min = d; delete after[$2] }
        if ($(NF - 1) == st) after[$2] = t
    } END { printf "%d\n", min }' "$HLOG"
}
pulls retry-after "503 and 429 with Retry-After are retried"
t_eq "  each blob refused twice" 2 "$(grep -c "blobs/.* -> \(503\|429\)" "$HLOG" | awk '{print ($1 >= 2) ? 2 : $1}')"
t_check "  after Retry-After: 2 the next request waited 2 s (waited $(waited 503) ms)" \
    test "$(waited 503)" -ge 1900
t_check "  after an HTTP-date 2 s ahead it waited past that second (waited $(waited 429) ms)" \
    test "$(waited 429)" -ge 900
pulls reauth "a token refused mid-pull is renewed"
t_check "  the first token was refused on a blob" grep -q "blobs/.*auth=yes -> 401" "$HLOG"
t_eq "  and the pull ended with one more token" 2 "$(grep -c '^GET /token' "$HLOG")"
pulls reauth403 "a token refused with a bare 403 mid-pull is renewed"
t_check "  the first token was refused on a blob" grep -q "blobs/.*auth=yes -> 403" "$HLOG"
t_eq "  and the pull ended with one more token" 2 "$(grep -c '^GET /token' "$HLOG")"

# the registry died mid-pull before; it is back: the pull works
pulls ok "after a failed pull, a pull works"
t_check "gc after all that" "$IMGFS" gc >/dev/null
t_check "fsck" "$IMGFS" fsck >/dev/null
t_end
