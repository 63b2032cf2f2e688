#!/bin/bash
# Multi-range requests of the lazy fetcher, against registries that answer them well and badly.
# A lazily pulled eStargz image (imgfs's own push, copied to an OCI layout by skopeo) is served by
# tests/registry_hostile.py; two files in the middle of the layer are read through the mount, then
# `imgfs pull` fetches the rest: the absent chunks on both sides of those files are runs of one
# blob, asked for in one multi-range request. A registry that answers it with 400, 416, a whole
# 200 or a 206 that is not multipart/byteranges is asked one range at a time from then on, and
# every case ends with the image complete, equal to the original, and the store consistent.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
source "$TOP/tests/lib_registry.sh"
t_begin lazy_ranges
t_need_fixture tree.tar
command -v python3 >/dev/null || t_skip "python3 not installed"
command -v skopeo >/dev/null || t_skip "skopeo not installed"
quiet() { "$@" >/dev/null 2>&1; }

reg_start
"$IMGFS" import -q -t tree:v1 "$FIXTURES/tree.tar"
digest=$(push_digest tree:v1 "$REG/tree:v1")
t_check "skopeo copies imgfs's eStargz image to an OCI layout" \
    quiet skopeo copy -q --src-tls-verify=false "docker://$REG/tree:v1" "oci:$T/layout:v1"
t_eq "  the manifest as pushed" "$digest" "$(jq -r '.manifests[0].digest' "$T/layout/index.json")"
reg_stop
manifest=$T/layout/blobs/sha256/${digest#sha256:}
layer=$(jq -r '.layers[0].digest' "$manifest")
blob=$T/layout/blobs/sha256/${layer#sha256:}
# two regular files a third and two thirds into the layer
mapfile -t files < <(tar -xzOf "$blob" stargz.index.json 2>/dev/null | jq -r '
    [.entries[] | select(.type == "reg" and .size > 0)] | .[length / 3 | floor].name,
    .[2 * length / 3 | floor].name')
t_eq "two files picked from the TOC" 2 "${#files[@]}"

mkdir -p "$T/ref" "$T/mnt"
t_check "mount the original" "$IMGFS" mount tree:v1 "$T/ref"
t_cleanup "'$IMGFS' umount '$T/ref'"

multi() { grep -E "^GET [^ ]*/blobs/$layer range=bytes=[0-9]+-[0-9]+," "$HLOG" || true; }
single_206_after_multi() { # single-range 206 answers for the layer after its first multi-range request
    awk -v b="$layer" '$1 == "GET" && index($2, b) {
        if ($3 ~ /,/) m = 1; else if (m && $3 ~ /^range=bytes=[0-9]+-[0-9]+$/ && $(NF - 1) == 206) n++
    } END { print n + 0 }' "$HLOG"
}

case_mode() { # MODE ANSWER: the first multi-range request is answered ANSWER
    local mode=$1 answer=$2 S=$T/store-$1
    lz() { IMGFS_ROOT=$S "$IMGFS" "$@"; }
    hostile "$mode"
    t_check "$mode: pull --lazy" quiet lz pull -q --lazy "$H/x/tree:1"
    t_check "$mode: mount" lz mount "$H/x/tree:1" "$T/mnt"
    local f ok=1
    for f in "${files[@]}"; do
        cmp -s "$T/ref/$f" "$T/mnt/$f" || ok=0
    done
    t_eq "$mode: the two files read through the mount are the original's" 1 "$ok"
    lz umount "$T/mnt"
    t_check "$mode: pull fetches the rest" quiet lz pull -q "$H/x/tree:1"
    local m
    m=$(multi)
    t_check "$mode: the runs around the files read were asked for in one multi-range request" \
        test -n "$m"
    t_eq "$mode: answered $answer" "$answer" "$(head -n 1 <<<"$m" | awk '{print $(NF - 1)}')"
    if [[ $mode != multirange-ok ]]; then
        t_eq "$mode: the registry is asked one range at a time from then on" 1 "$(wc -l <<<"$m")"
        t_check "$mode:   single ranges were served instead ($(single_206_after_multi))" \
            test "$(single_206_after_multi)" -gt 0
    fi
    t_eq "$mode: nothing is remote" 0 \
        "$(lz du --json | jq -r --arg n "$H/x/tree:1" '.Images[] | select(.Name == $n) | .Remote')"
    t_check "$mode: fsck" quiet lz fsck
    kill "$HPID" 2>/dev/null || true
    wait "$HPID" 2>/dev/null || true
    HPID=""
    t_check "$mode: offline, the mount is the original tree" lz mount "$H/x/tree:1" "$T/mnt"
    t_check "$mode:   compare" "$TOP/tests/compare-trees.sh" "$T/ref" "$T/mnt"
    lz umount "$T/mnt"
}
case_mode multirange-ok 206
case_mode multirange-400 400
case_mode multirange-416 416
case_mode multirange-200 200
case_mode multirange-bad 206
t_end
