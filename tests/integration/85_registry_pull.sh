#!/bin/bash
# imgfs pull from a real registry (Debian's docker-registry on 127.0.0.1, plain HTTP as loopback
# is by default) of what skopeo pushed: OCI and Docker schema 2 manifests, gzip, zstd and
# uncompressed layers, and an index of two platforms. The pulled image keeps the registry's
# identity (inspect's Digest is skopeo's, images --digests lists it, a pull by digest finds it)
# and its content is the source's (the same canonical layers; the mount equals the tree GNU tar
# unpacks).
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
source "$TOP/tests/lib_registry.sh"
t_begin registry_pull
t_need_fixture tree.tar busybox.tar
command -v skopeo >/dev/null || t_skip "skopeo not installed"
COMPARE=$TOP/tests/compare-trees.sh
quiet() { "$@" >/dev/null 2>&1; }

t_check "pull --help exits 0" quiet "$IMGFS" pull --help
reg_start
t_note "registry on $REG"
"$IMGFS" import -q -t tree:v1 "$FIXTURES/tree.tar"
"$IMGFS" import -q -t busybox "$FIXTURES/busybox.tar"
"$IMGFS" export -o "$T/tree.tar" tree:v1
"$IMGFS" export -o "$T/busybox.tar" busybox
want_ids=$(t_diff_ids tree:v1)
sk() { skopeo --insecure-policy copy -q --dest-tls-verify=false "$@"; }
t_check "skopeo: OCI, gzip" sk --format oci --dest-compress "oci-archive:$T/tree.tar" \
    "docker://$REG/t:oci-gzip"
t_check "skopeo: Docker schema 2, gzip" sk --format v2s2 --dest-compress \
    "oci-archive:$T/tree.tar" "docker://$REG/t:v2s2"
t_check "skopeo: OCI, uncompressed" sk --format oci "oci-archive:$T/tree.tar" \
    "docker://$REG/t:oci-plain"
t_check "skopeo: OCI, zstd" sk --format oci --dest-compress --dest-compress-format zstd \
    "oci-archive:$T/tree.tar" "docker://$REG/t:oci-zstd"
t_check "skopeo: busybox" sk --format oci --dest-compress "oci-archive:$T/busybox.tar" \
    "docker://$REG/t:busybox"

# A second store pulls (the first holds the sources).
export IMGFS_ROOT=$T/pulled
for tag in oci-gzip v2s2 oci-plain oci-zstd; do
    ref=$REG/t:$tag
    t_check "$tag: imgfs pull" quiet "$IMGFS" pull "$ref"
    t_eq "$tag: inspect's Digest is skopeo's" \
        "$(skopeo inspect --tls-verify=false "docker://$ref" | jq -r .Digest)" \
        "$("$IMGFS" inspect -f Digest "$ref")"
    t_eq "$tag: the same canonical layers as the source" "$want_ids" "$(t_diff_ids "$ref")"
done
oci_digest=$(skopeo inspect --tls-verify=false "docker://$REG/t:oci-gzip" | jq -r .Digest)
t_check "images --digests lists the registry digest" \
    grep -q "$oci_digest" <<<"$("$IMGFS" images --digests)"
t_eq "images shows one row for the tag (the digest name goes into it)" 1 \
    "$("$IMGFS" images | grep -c "^$REG/t  *oci-gzip ")"

# the mount is the source tree
mkdir -p "$T/ref" "$T/mnt"
tar --xattrs --xattrs-include='*' --numeric-owner -xpf "$FIXTURES/tree.tar" -C "$T/ref" 2>/dev/null
t_cleanup "umount -l '$T/mnt'"
if t_check "mount the pulled image" "$IMGFS" mount "$REG/t:v2s2" "$T/mnt"; then
    t_check "the mount equals the tarball unpacked by GNU tar" "$COMPARE" "$T/ref" "$T/mnt"
    "$IMGFS" umount "$T/mnt" || umount -l "$T/mnt"
fi

# again: nothing to download; by digest: found by that name
out=$("$IMGFS" pull "$REG/t:oci-gzip")
t_check "a second pull is up to date, in docker's words" \
    grep -qx "Status: Image is up to date for $REG/t:oci-gzip" <<<"$out"
t_eq "  first line: TAG: Pulling from PATH, as docker's" "oci-gzip: Pulling from t" "$(head -n 1 <<<"$out")"
t_eq "pull -q prints the name" "$REG/t@$oci_digest" "$("$IMGFS" pull -q "$REG/t@$oci_digest")"
t_eq "the digest name is the same image" "$("$IMGFS" inspect -f Id "$REG/t:oci-gzip")" \
    "$("$IMGFS" inspect -f Id "$REG/t@$oci_digest")"

# a fresh store: --json events, progress lines in plain mode
export IMGFS_ROOT=$T/json
"$IMGFS" pull --json "$REG/t:oci-gzip" >"$T/events"
t_check "--json: every line is a JSON event" quiet jq -e -s 'length > 2 and all(.event)' "$T/events"
t_eq "--json: resolved, layer-done, done" "resolved layer-done done" \
    "$(jq -r .event "$T/events" | grep -v -e progress -e start | tr '\n' ' ' | sed 's/ $//')"
t_eq "--json: the layer's bytes are the manifest's" \
    "$(skopeo inspect --tls-verify=false --raw "docker://$REG/t:oci-gzip" | jq '.layers[0].size')" \
    "$(jq -s 'map(select(.event == "layer-done"))[0].total' "$T/events")"
export IMGFS_ROOT=$T/plain
out=$("$IMGFS" pull "$REG/t:busybox")
t_check "plain output: one line per layer" grep -qE '^[0-9a-f]{12}: Pull complete' <<<"$out"
t_eq "plain output ends with the name" "$REG/t:busybox" "$(tail -n 1 <<<"$out")"
t_eq "  after docker's Digest and Status lines" \
    "Digest: $(skopeo inspect --tls-verify=false "docker://$REG/t:busybox" | jq -r .Digest)
Status: Downloaded newer image for $REG/t:busybox" "$(tail -n 3 <<<"$out" | head -n 2)"
out=$(IMGFS_ROOT=$T/notag "$IMGFS" pull "$REG/t" 2>&1) || true
t_eq "no tag: docker's 'Using default tag: latest' first" \
    "Using default tag: latest
latest: Pulling from t" "$(head -n 2 <<<"$out")"

# on a terminal (script(1) gives it one): bars redrawn in place, a total with the rate
if command -v script >/dev/null; then
    IMGFS_ROOT=$T/tty script -qec "'$IMGFS' pull '$REG/t:busybox'" /dev/null >"$T/tty.out" 2>&1 || true
    t_check "on a terminal: lines redrawn in place" grep -q $'\033\[[0-9]*A' "$T/tty.out"
    t_check "  a bar per layer" grep -qE '\[[= >]{30}\]' "$T/tty.out"
    t_check "  a total with the rate" grep -qE 'Total: .*/s' "$T/tty.out"
fi

# an index of two platforms, made by hand from the two manifests
mf() { skopeo inspect --tls-verify=false --raw "docker://$REG/t:$1"; }
desc() { # TAG ARCH
    local m
    m=$(mf "$1")
    jq -cn --arg d "sha256:$(printf '%s' "$m" | sha256sum | cut -d' ' -f1)" --argjson s "${#m}" \
        --arg a "$2" '{mediaType: "application/vnd.oci.image.manifest.v1+json", digest: $d,
        size: $s, platform: {os: "linux", architecture: $a}}'
}
index=$(jq -cn --argjson a "$(desc busybox arm64)" --argjson b "$(desc oci-gzip amd64)" \
    '{schemaVersion: 2, mediaType: "application/vnd.oci.image.index.v1+json", manifests: [$a, $b]}')
t_check "PUT an index (arm64: busybox, amd64: tree)" curl -fsS -X PUT \
    -H "Content-Type: application/vnd.oci.image.index.v1+json" --data-binary "$index" \
    "http://$REG/v2/t/manifests/multi" -o /dev/null
export IMGFS_ROOT=$T/multi
t_check "pull the index" quiet "$IMGFS" pull "$REG/t:multi"
t_eq "linux/amd64 is picked by default" "$want_ids" "$(t_diff_ids "$REG/t:multi")"
t_eq "inspect's Digest is the index's (skopeo's)" \
    "$(skopeo inspect --tls-verify=false "docker://$REG/t:multi" | jq -r .Digest)" \
    "$("$IMGFS" inspect -f Digest "$REG/t:multi")"
t_check "--platform linux/arm64" quiet "$IMGFS" pull --platform linux/arm64 "$REG/t:multi"
t_eq "the arm64 image is busybox's" "$(IMGFS_ROOT=$T/store t_diff_ids busybox)" \
    "$(t_diff_ids "$REG/t:multi")"
out=$("$IMGFS" pull --platform linux/s390x "$REG/t:multi" 2>&1) && rc=0 || rc=$?
t_eq "no such platform: exit 1, as docker" 1 "$rc"
t_check "  and says so" grep -q "no manifest for linux/s390x" <<<"$out"
# a malformed --platform is refused before the registry is asked, as docker's daemon does, also for
# an image that is no index (whose platform is never looked up); nothing is pulled
export IMGFS_ROOT=$T/platform
for bad in amd64 linux/ /amd64 linux/arm/v7/x; do
    out=$("$IMGFS" pull --platform "$bad" "$REG/t:busybox" 2>&1) && rc=0 || rc=$?
    t_eq "--platform $bad: exit 125" 125 "$rc"
    t_check "  names the flag and the form" grep -q "invalid argument \"$bad\" for \"--platform\" flag: want OS/ARCH\[/VARIANT\]" <<<"$out"
done
t_eq "  nothing pulled" "" "$(t_image_names)"
t_check "--platform linux/arm/v7 is well-formed (pulled: no index to pick from)" quiet \
    "$IMGFS" pull --platform linux/arm/v7 "$REG/t:busybox"
export IMGFS_ROOT=$T/multi

# errors: clear, nothing named
before=$(t_image_names)
out=$("$IMGFS" pull "$REG/t:nope" 2>&1) && rc=0 || rc=$?
t_eq "a missing tag: exit 1, as docker" 1 "$rc"
t_check "  with the registry's error" grep -q "imgfs pull: .*MANIFEST_UNKNOWN" <<<"$out"
t_eq "  nothing named" "$before" "$(t_image_names)"
out=$("$IMGFS" pull "$REG/T:x" 2>&1) && rc=0 || rc=$?
t_check "a bad reference is refused" grep -q "invalid reference" <<<"$out"

# gc keeps a pulled image whole, fsck agrees
t_check "gc" quiet "$IMGFS" gc
t_check "fsck after gc" quiet "$IMGFS" fsck
t_eq "the registry digest survives gc" \
    "$(skopeo inspect --tls-verify=false "docker://$REG/t:multi" | jq -r .Digest)" \
    "$("$IMGFS" inspect -f Digest "$REG/t:multi")"
t_end
