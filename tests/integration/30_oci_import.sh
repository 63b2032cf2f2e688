#!/bin/bash
# Import images made by other tools: a multi-layer image with whiteouts built with umoci, copied by
# skopeo into oci-archive: and docker-archive: (gzip and zstd layers), the layout directory itself,
# a docker >= 25 style archive (OCI layout plus manifest.json) and a multi-platform index. Each must
# give the tree umoci unpacks.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
t_begin oci_import
t_need_fixture busybox.tar
command -v skopeo >/dev/null || t_skip "skopeo not installed"
command -v umoci >/dev/null || t_skip "umoci not installed"

quiet() { "$@" >/dev/null 2>&1; }
digest_of() { "$IMGFS" inspect -f Digest "$1"; }
tree_manifest() {
    (
        cd "$1"
        find . -mindepth 1 -print0 | LC_ALL=C sort -z | xargs -0 -r stat -c '%n|%F|%a|%u|%g|%s|%t:%T|%h|%Y|%N' |
            awk -F'|' 'BEGIN {OFS = "|"} $2 == "directory" {$6 = "-"} {print}'
        find . -type f -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum
        getfattr -R -h -d -m - --absolute-names . 2>/dev/null | grep -v '=""$' || true
    )
}
rootfs_of() { # rootfs_of IMAGE DIR: the image's merged tree, extracted
    mkdir -p "$2"
    "$IMGFS" export --format rootfs "$1" | tar -C "$2" --xattrs --xattrs-include='*' --numeric-owner -xpf - 2>/dev/null
}

# --- a two-layer image with whiteouts, built the way umoci users do ---
L=$T/layout
B=$T/bundle
quiet umoci init --layout "$L"
quiet umoci new --image "$L:base"
quiet umoci unpack --image "$L:base" "$B"
tar -C "$B/rootfs" -xpf "$FIXTURES/busybox.tar"
quiet umoci repack --refresh-bundle --image "$L:v1" "$B"
rm -f "$B/rootfs/etc/passwd"               # file whiteout
rm -rf "$B/rootfs/home"                    # directory whiteout ...
mkdir -p "$B/rootfs/home/new"              # ... and a new one of the same name
echo hello >"$B/rootfs/home/new/file"
echo changed >"$B/rootfs/etc/hostname"     # a file replaced in the upper layer
chmod 0700 "$B/rootfs/tmp"                 # metadata-only change
ln -s /bin/busybox "$B/rootfs/usr/bin/newlink"
quiet umoci repack --image "$L:v2" "$B"
m=$(jq -r '.manifests[] | select(.annotations["org.opencontainers.image.ref.name"] == "v2") | .digest' "$L/index.json")
t_eq "umoci made two layers" 2 "$(jq '.layers | length' "$L/blobs/sha256/${m#sha256:}")"
top=$(jq -r '.layers[1].digest' "$L/blobs/sha256/${m#sha256:}")
t_check "the top layer holds whiteouts" grep -q '\.wh\.passwd$' <(tar -tzf "$L/blobs/sha256/${top#sha256:}")
t_eq "layers are gzip" "application/vnd.oci.image.layer.v1.tar+gzip" \
    "$(jq -r '.layers[1].mediaType' "$L/blobs/sha256/${m#sha256:}")"

quiet umoci unpack --image "$L:v2" "$T/want-bundle"
tree_manifest "$T/want-bundle/rootfs" >"$T/want.list"
t_check "umoci's tree has the new file" grep -q '^./home/new/file|' "$T/want.list"
t_check "umoci's tree lost etc/passwd" bash -c "! grep -q '^./etc/passwd|' '$T/want.list'"

same_tree() { # same_tree WHAT IMAGE
    rm -rf "$T/got"
    rootfs_of "$2" "$T/got"
    tree_manifest "$T/got" >"$T/got.list"
    t_check "$1: the tree is the one umoci unpacks" diff "$T/want.list" "$T/got.list"
}

# --- skopeo's archives ---
t_check "skopeo: oci-archive (gzip)" quiet skopeo copy "oci:$L:v2" "oci-archive:$T/v2-oci.tar:example.com/app:v2"
t_check "skopeo: docker-archive" quiet skopeo copy "oci:$L:v2" "docker-archive:$T/v2-docker.tar:app:docker"
t_check "skopeo: oci-archive (zstd)" quiet skopeo copy --dest-compress --dest-compress-format zstd \
    "oci:$L:v2" "oci-archive:$T/v2-zstd.tar:app:zstd"

t_check "import skopeo's oci-archive" "$IMGFS" import -q "$T/v2-oci.tar"
t_check "it is named by its ref.name" quiet "$IMGFS" inspect -f Digest example.com/app:v2
same_tree "oci-archive" example.com/app:v2
want=$(digest_of example.com/app:v2)
t_eq "it has two layers" 2 "$(t_diff_ids example.com/app:v2 | wc -l)"

t_check "import skopeo's docker-archive" "$IMGFS" import -q "$T/v2-docker.tar"
name=$("$IMGFS" images | awk '$2 == "docker" {print $1 ":" $2}')
t_check "it is named by its RepoTags" test -n "$name"
t_eq "docker-archive: the same image" "$want" "$(digest_of "$name")"
gzip -c "$T/v2-docker.tar" >"$T/v2-docker.tar.gz"
zstd -q -c "$T/v2-oci.tar" >"$T/v2-oci.tar.zst"
t_check "import \`docker save | gzip\`" "$IMGFS" import -q -t gz "$T/v2-docker.tar.gz"
t_eq "a compressed docker archive: the same image" "$want" "$(digest_of gz)"
t_check "import a zstd-compressed OCI archive" "$IMGFS" import -q -t zst "$T/v2-oci.tar.zst"
t_eq "a compressed OCI archive: the same image" "$want" "$(digest_of zst)"
t_check "import the zstd archive" "$IMGFS" import -q -t zstd "$T/v2-zstd.tar"
t_eq "zstd layers: the same image" "$want" "$(digest_of zstd)"

# --- the layout directory: several images, one picked by tag ---
t_check "import the layout's v2 by tag" "$IMGFS" import -q -t dir:v2 "$L"
t_eq "layout directory: the same image" "$want" "$(digest_of dir:v2)"
t_check "import the layout's v1 by tag" "$IMGFS" import -q -t dir:v1 "$L"
t_eq "v1 has one layer" 1 "$(t_diff_ids dir:v1 | wc -l)"
t_check "import the whole layout (bare tags name nothing)" "$IMGFS" import -q "$L"
t_check_fails "a tag the layout does not have" "$IMGFS" import -q -t dir:v9 "$L"

# --- a docker >= 25 `docker save`: an OCI layout with manifest.json beside it ---
mkdir "$T/d25"
tar -C "$T/d25" -xf "$T/v2-oci.tar"
idx=$(jq -c '.manifests[0].annotations = {"io.containerd.image.name": "docker.io/library/app:d25",
                                          "org.opencontainers.image.ref.name": "d25"}' "$T/d25/index.json")
echo "$idx" >"$T/d25/index.json"
cfg=$(jq -r '.config.digest' "$T/d25/blobs/sha256/$(jq -r '.manifests[0].digest' <<<"$idx" | cut -d: -f2)")
echo "[{\"Config\":\"blobs/sha256/${cfg#sha256:}\",\"RepoTags\":[\"app:d25\"],\"Layers\":[]}]" >"$T/d25/manifest.json"
tar -C "$T/d25" -cf "$T/d25.tar" manifest.json blobs index.json oci-layout
t_check "import a docker >= 25 archive" "$IMGFS" import -q "$T/d25.tar"
t_eq "read as the OCI layout it is (containerd's name)" "$want" "$(digest_of docker.io/library/app:d25)"

# --- a multi-platform index: linux/amd64 is chosen ---
mkdir "$T/multi"
tar -C "$T/multi" -xf "$T/v2-oci.tar"
amd=$(jq -c '.manifests[0] | del(.annotations)' "$T/multi/index.json")
other=$(skopeo copy -q "oci:$L:v1" "oci:$T/multi:v1" >/dev/null &&
    jq -c '.manifests[] | select(.annotations["org.opencontainers.image.ref.name"] == "v1") | del(.annotations)' "$T/multi/index.json")
jq -nc --argjson a "$amd" --argjson o "$other" '{schemaVersion: 2,
    mediaType: "application/vnd.oci.image.index.v1+json",
    manifests: [($o + {platform: {os: "linux", architecture: "arm64"}}),
                ($a + {platform: {os: "linux", architecture: "amd64"}})]}' >"$T/nested.json"
nd=$(sha256sum <"$T/nested.json" | cut -d' ' -f1)
cp "$T/nested.json" "$T/multi/blobs/sha256/$nd"
jq -nc --arg d "sha256:$nd" --argjson s "$(stat -c %s "$T/nested.json")" '{schemaVersion: 2, manifests: [{
    mediaType: "application/vnd.oci.image.index.v1+json", digest: $d, size: $s,
    annotations: {"org.opencontainers.image.ref.name": "multi:1"}}]}' >"$T/multi/index.json"
t_check "import a multi-platform layout" "$IMGFS" import -q "$T/multi"
t_eq "linux/amd64 was picked" "$want" "$(digest_of multi:1)"

# build attestations (buildx) are not images: an index of one arm64 image and an attestation
jq -nc --argjson a "$amd" --argjson o "$other" '{schemaVersion: 2,
    mediaType: "application/vnd.oci.image.index.v1+json",
    manifests: [($a + {platform: {os: "unknown", architecture: "unknown"},
                       annotations: {"vnd.docker.reference.type": "attestation-manifest"}}),
                ($o + {platform: {os: "linux", architecture: "arm64"}})]}' >"$T/nested.json"
nd=$(sha256sum <"$T/nested.json" | cut -d' ' -f1)
cp "$T/nested.json" "$T/multi/blobs/sha256/$nd"
jq -nc --arg d "sha256:$nd" --argjson s "$(stat -c %s "$T/nested.json")" '{schemaVersion: 2, manifests: [{
    mediaType: "application/vnd.oci.image.index.v1+json", digest: $d, size: $s,
    annotations: {"org.opencontainers.image.ref.name": "multi:2"}}]}' >"$T/multi/index.json"
t_check "import an index with an attestation" "$IMGFS" import -q "$T/multi"
t_eq "the one image was picked" "$(digest_of dir:v1)" "$(digest_of multi:2)"

# empty layers: a gzip'd empty tar (docker's "empty layer") and a zero-byte blob are the same layer
add_layer() { # add_layer LAYOUT BLOBFILE MEDIATYPE: append a layer to the layout's first manifest
    local d m s
    d=$(sha256sum <"$2" | cut -d' ' -f1)
    cp "$2" "$1/blobs/sha256/$d"
    m=$(jq -r '.manifests[0].digest' "$1/index.json" | cut -d: -f2)
    jq -c --arg d "sha256:$d" --argjson s "$(stat -c %s "$2")" --arg t "$3" \
        '.layers += [{mediaType: $t, digest: $d, size: $s}]' "$1/blobs/sha256/$m" >"$T/m.json"
    d=$(sha256sum <"$T/m.json" | cut -d' ' -f1)
    cp "$T/m.json" "$1/blobs/sha256/$d"
    s=$(stat -c %s "$T/m.json")
    jq -c --arg d "sha256:$d" --argjson s "$s" '.manifests[0].digest = $d | .manifests[0].size = $s' \
        "$1/index.json" >"$T/i.json"
    mv "$T/i.json" "$1/index.json"
}
head -c 1024 /dev/zero | gzip -n >"$T/empty.tar.gz"
: >"$T/empty.blob"
for kind in gzip zero; do
    rm -rf "$T/el-$kind" && mkdir "$T/el-$kind" && tar -C "$T/el-$kind" -xf "$T/v2-oci.tar"
done
add_layer "$T/el-gzip" "$T/empty.tar.gz" application/vnd.oci.image.layer.v1.tar+gzip
add_layer "$T/el-zero" "$T/empty.blob" application/vnd.oci.image.layer.v1.tar
t_check "a gzip'd empty layer imports" "$IMGFS" import -q -t empty:gzip "$T/el-gzip"
t_check "a zero-byte layer imports" "$IMGFS" import -q -t empty:zero "$T/el-zero"
t_eq "three layers" 3 "$(t_diff_ids empty:gzip | wc -l)"
t_eq "both are the same image" "$(digest_of empty:gzip)" "$(digest_of empty:zero)"
same_tree "with an empty layer" empty:zero

t_check "fsck passes" quiet "$IMGFS" fsck
t_end
