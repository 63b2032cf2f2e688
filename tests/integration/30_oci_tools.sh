#!/bin/bash
# What imgfs exports, the ecosystem's tools read: skopeo (oci-archive:, docker-archive:) and umoci,
# which unpacks our OCI layout to exactly the tree `imgfs export --format rootfs` writes.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
t_begin oci_tools
t_need_fixture busybox.tar tree.tar
command -v skopeo >/dev/null || t_skip "skopeo not installed"
command -v umoci >/dev/null || t_skip "umoci not installed"

tree_manifest() { t_tree_listing "$@"; }
quiet() { "$@" >/dev/null; }
extract() { # extract TAR DIR
    mkdir -p "$2"
    tar -C "$2" --xattrs --xattrs-include='*' --numeric-owner -xpf "$1" 2>/dev/null
}

t_check "import busybox" "$IMGFS" import -q -t busybox "$FIXTURES/busybox.tar"
t_check "import the generated tree" "$IMGFS" import -q -t tree:v1 "$FIXTURES/tree.tar"

images=(busybox tree:v1)
if [[ -s $FIXTURES/debian.tar.gz ]]; then
    t_check "import debian" "$IMGFS" import -q -t debian:12 "$FIXTURES/debian.tar.gz"
    images+=(debian:12)
fi
for img in "${images[@]}"; do
    n=${img%%:*}
    digest=$("$IMGFS" inspect -f Digest "$img")
    t_check "$n: export oci" "$IMGFS" export -o "$T/$n.tar" "$img"
    t_check "$n: export docker" "$IMGFS" export --format docker -o "$T/$n-docker.tar" "$img"
    t_check "$n: export rootfs" "$IMGFS" export --format rootfs -o "$T/$n-rootfs.tar" "$img"
    diff_ids=$(t_diff_ids "$img" | jq -R . | jq -sc .)
    tag=latest
    [[ $img == *:* ]] && tag=${img#*:}

    # skopeo reads the OCI archive: same manifest digest, same layers
    if info=$(skopeo inspect "oci-archive:$T/$n.tar"); then
        t_pass "$n: skopeo inspect oci-archive:"
        t_eq "$n: skopeo sees the image digest" "$digest" "$(jq -r .Digest <<<"$info")"
        t_eq "$n: skopeo sees the layers" "$diff_ids" "$(jq -c .Layers <<<"$info")"
    else
        t_fail "$n: skopeo inspect oci-archive:"
    fi
    t_check "$n: skopeo finds the image by its tag" quiet skopeo inspect "oci-archive:$T/$n.tar:$tag"
    t_check "$n: skopeo copy oci-archive: -> oci:" \
        skopeo copy -q "oci-archive:$T/$n.tar" "oci:$T/$n-layout:latest"

    # umoci unpacks what skopeo copied, and our own layout unpacked as is
    t_check "$n: umoci unpack of skopeo's copy" \
        quiet umoci unpack --image "$T/$n-layout:latest" "$T/$n-bundle"
    mkdir "$T/$n-ours"
    tar -C "$T/$n-ours" -xf "$T/$n.tar"
    t_check "$n: umoci unpack of our layout" quiet umoci unpack --image "$T/$n-ours:$tag" "$T/$n-bundle2"
    extract "$T/$n-rootfs.tar" "$T/$n-rootfs"
    tree_manifest "$T/$n-rootfs" >"$T/$n-rootfs.list"
    tree_manifest "$T/$n-bundle/rootfs" >"$T/$n-umoci.list"
    tree_manifest "$T/$n-bundle2/rootfs" >"$T/$n-umoci2.list"
    t_check "$n: the rootfs export is the tree umoci unpacks" diff "$T/$n-umoci.list" "$T/$n-rootfs.list"
    t_check "$n: ... from our layout too" diff "$T/$n-umoci2.list" "$T/$n-rootfs.list"
    t_check "$n: the comparison covered the tree" test "$(wc -l <"$T/$n-rootfs.list")" -gt 100

    # skopeo reads the docker-save archive
    if info=$(skopeo inspect "docker-archive:$T/$n-docker.tar"); then
        t_pass "$n: skopeo inspect docker-archive:"
        t_eq "$n: docker-archive has the layers" "$diff_ids" "$(jq -c .Layers <<<"$info")"
    else
        t_fail "$n: skopeo inspect docker-archive:"
    fi
    t_check "$n: skopeo copy docker-archive: -> oci:" \
        skopeo copy -q "docker-archive:$T/$n-docker.tar" "oci:$T/$n-from-docker:latest"
    t_check "$n: umoci unpack of the docker-archive copy" \
        quiet umoci unpack --image "$T/$n-from-docker:latest" "$T/$n-bundle3"
    tree_manifest "$T/$n-bundle3/rootfs" >"$T/$n-umoci3.list"
    t_check "$n: ... is the same tree" diff "$T/$n-umoci3.list" "$T/$n-rootfs.list"
done
t_check "the tree's xattrs were compared" grep -q '^user.foo=' "$T/tree-rootfs.list"
t_check "the tree's device nodes were compared" grep -q '|character special file|' "$T/tree-rootfs.list"
t_end
