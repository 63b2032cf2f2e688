#!/bin/bash
# imgfs push to a real registry (docker-registry on 127.0.0.1): what it pushes (eStargz layers),
# skopeo copies and umoci unpacks to the tree `imgfs mount` shows; pushing is deterministic (two stores, one
# digest); blobs the registry has are skipped (HEAD), blobs imgfs pushed to another repository are
# mounted from there, big blobs go up in chunks; and imgfs pulls back what it pushed.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
source "$TOP/tests/lib_registry.sh"
t_begin registry_push
t_need_fixture tree.tar
command -v skopeo >/dev/null || t_skip "skopeo not installed"
command -v umoci >/dev/null || t_skip "umoci not installed"
quiet() { "$@" >/dev/null 2>&1; }

t_check "push --help exits 0" quiet "$IMGFS" push --help
reg_start
"$IMGFS" import -q -t tree:v1 "$FIXTURES/tree.tar"

out=$("$IMGFS" push tree:v1 "$REG/p/tree:v1")
t_check "push" grep -qE '^[0-9a-f]{12}: Pushed' <<<"$out"
# docker's first and last lines (scripts parse the last one: TAG: digest: DIGEST size: BYTES)
t_eq "  first the repository, as docker's" "The push refers to repository [$REG/p/tree]" \
    "$(head -n 1 <<<"$out")"
t_check "  last the tag, the digest and the size, as docker's" \
    grep -qE '^v1: digest: sha256:[0-9a-f]{64} size: [0-9]+$' <<<"$(tail -n 1 <<<"$out")"
digest=$(tail -n 1 <<<"$out" | awk '{print $3}')
t_eq "skopeo sees the digest push printed" "$digest" \
    "$(skopeo inspect --tls-verify=false "docker://$REG/p/tree:v1" | jq -r .Digest)"
raw=$(skopeo inspect --tls-verify=false --raw "docker://$REG/p/tree:v1")
t_eq "  and the size push printed is the manifest's" \
    "$(skopeo inspect --tls-verify=false --raw "docker://$REG/p/tree:v1" | wc -c)" \
    "$(tail -n 1 <<<"$out" | awk '{print $5}')"
t_eq "an OCI manifest with gzip layers" \
    "application/vnd.oci.image.manifest.v1+json application/vnd.oci.image.layer.v1.tar+gzip" \
    "$(jq -r '[.mediaType, .layers[0].mediaType] | join(" ")' <<<"$raw")"
t_check "every layer is eStargz: the TOC digest annotation" \
    quiet jq -e '.layers | all(.annotations["containerd.io/snapshot/stargz/toc.digest"])' <<<"$raw"
t_check "inspect lists the pushed digest in RepoDigests" \
    quiet jq -e --arg n "$REG/p/tree@$digest" '.[0].RepoDigests | index($n)' \
    <<<"$("$IMGFS" inspect --json tree:v1)"

# skopeo + umoci read it: the tree is the mount's
t_check "skopeo copy docker:// -> oci:" \
    skopeo copy -q --src-tls-verify=false "docker://$REG/p/tree:v1" "oci:$T/layout:v1"
t_check "umoci unpack" quiet umoci unpack --image "$T/layout:v1" "$T/bundle"
mkdir -p "$T/mnt"
t_cleanup "umount -l '$T/mnt'"
if t_check "mount the pushed image" "$IMGFS" mount tree:v1 "$T/mnt"; then
    t_tree_listing "$T/mnt" | sed 's/|[0-9]*|\([0-9]*|[^|]*\)$/|-|\1/' >"$T/mnt.list"
    # a plain runtime extracts the eStargz TOC and landmark as files at / (as for every eStargz
    # image); imgfs's own view has neither
    t_check "umoci extracts the eStargz TOC" test -s "$T/bundle/rootfs/stargz.index.json"
    t_check "  and the no-prefetch landmark" test -e "$T/bundle/rootfs/.no.prefetch.landmark"
    rm -f "$T/bundle/rootfs/stargz.index.json" "$T/bundle/rootfs/.no.prefetch.landmark"
    t_tree_listing "$T/bundle/rootfs" | sed 's/|[0-9]*|\([0-9]*|[^|]*\)$/|-|\1/' >"$T/umoci.list"
    diff "$T/mnt.list" "$T/umoci.list" >"$T/tree.diff" && t_pass "umoci's tree is the mount's" || { head -40 "$T/tree.diff"; t_fail "umoci's tree is the mount's"; }
    t_check "  (the comparison covered the tree)" test "$(wc -l <"$T/mnt.list")" -gt 100
    "$IMGFS" umount "$T/mnt" || umount -l "$T/mnt"
fi

# deterministic: another store, the same content, the same digest
t_eq "a second store pushes the same manifest" "$digest" \
    "$(IMGFS_ROOT=$T/store2 "$IMGFS" import -q -t tree:v1 "$FIXTURES/tree.tar" >/dev/null &&
        IMGFS_ROOT=$T/store2 push_digest tree:v1 "$REG/p/tree:v2")"

# HEAD: the registry has every blob now
"$IMGFS" push --json tree:v1 "$REG/p/tree:v3" >"$T/again.json"
t_check "pushing again: every layer exists already" \
    quiet jq -e -s 'map(select(.event == "layer-exists")) | length > 0' "$T/again.json"
t_check "  and none is uploaded" \
    quiet jq -e -s 'map(select(.event == "layer-start")) | length == 0' "$T/again.json"

# another repository of the same registry: mounted from p/tree
"$IMGFS" push --json tree:v1 "$REG/q/tree:v1" >"$T/mount.json"
t_eq "another repository: the layer is mounted from the first" "p/tree" \
    "$(jq -r -s 'map(select(.event == "layer-mounted"))[0].from' "$T/mount.json")"
t_eq "  same manifest" "$digest" \
    "$(skopeo inspect --tls-verify=false "docker://$REG/q/tree:v1" | jq -r .Digest)"

# chunked upload (POST, PATCH..., PUT)
t_eq "chunked upload" "$digest" \
    "$(push_digest --chunk-size 65536 tree:v1 "$REG/c/tree:v1")"
t_check "  the registry serves the layer it received" \
    quiet skopeo copy -q --src-tls-verify=false "docker://$REG/c/tree:v1" "oci:$T/chunked:v1"

# and back: a fresh store pulls what imgfs pushed, the same canonical layers
t_check "imgfs pulls what it pushed" quiet env IMGFS_ROOT="$T/back" "$IMGFS" pull "$REG/p/tree:v1"
t_eq "  the same canonical layers" "$(t_diff_ids tree:v1)" \
    "$(IMGFS_ROOT=$T/back t_diff_ids "$REG/p/tree:v1")"

# errors
out=$("$IMGFS" push nothere:v1 "$REG/p/x:1" 2>&1) && rc=0 || rc=$?
t_eq "pushing a missing image: exit 1, as docker" 1 "$rc"
t_check "  says so" grep -q "imgfs push: .*nothere" <<<"$out"
reg_stop
out=$("$IMGFS" push tree:v1 "$REG/p/tree:down" 2>&1) && rc=0 || rc=$?
t_eq "registry down: exit 1, as docker" 1 "$rc"
t_check "  names the registry" grep -q "imgfs push: .*$REG" <<<"$out"
t_end
