#!/bin/bash
# Image names that archives carry (docker-save RepoTags, containerd's image.name and a full
# org.opencontainers.image.ref.name in an OCI index) are held to the rules of `tag` and `import -t`:
# `a b:c`, `UPPER:tag`, `../../evil:1` or a bare digest refuse the whole archive with a message
# naming the bad name, and nothing is stored. Valid names still import. The archives are made by
# hand here (same shapes as 34_import_other_archives.sh).
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
t_begin import_bad_names

mkdir -p "$T/root/etc"
echo "named by the archive" >"$T/root/etc/motd"
tar --numeric-owner -C "$T/root" -cf "$T/layer.tar" .
sha() { sha256sum "$1" | cut -d' ' -f1; }
diff_id=$(sha "$T/layer.tar")
printf '{"architecture":"amd64","os":"linux","config":{},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' \
    "$diff_id" >"$T/config.json"
cfg=$(sha "$T/config.json")

docker_tar() { # docker_tar OUT TAGS-JSON
    local d=$T/d.$RANDOM
    mkdir -p "$d"
    cp "$T/config.json" "$d/$cfg.json"
    cp "$T/layer.tar" "$d/$diff_id.tar"
    printf '[{"Config":"%s.json","RepoTags":%s,"Layers":["%s.tar"]}]' "$cfg" "$2" "$diff_id" >"$d/manifest.json"
    tar -C "$d" -cf "$1" "$cfg.json" "$diff_id.tar" manifest.json
}
oci_tar() { # oci_tar OUT ANNOTATION-KEY NAME
    local d=$T/o.$RANDOM
    mkdir -p "$d/blobs/sha256"
    cp "$T/config.json" "$d/blobs/sha256/$cfg"
    cp "$T/layer.tar" "$d/blobs/sha256/$diff_id"
    printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:%s","size":%s}]}' \
        "$cfg" "$(stat -c %s "$T/config.json")" "$diff_id" "$(stat -c %s "$T/layer.tar")" >"$d/manifest.json"
    local m
    m=$(sha "$d/manifest.json")
    mv "$d/manifest.json" "$d/blobs/sha256/$m"
    printf '{"imageLayoutVersion":"1.0.0"}' >"$d/oci-layout"
    jq -n --arg m "sha256:$m" --argjson s "$(stat -c %s "$d/blobs/sha256/$m")" --arg k "$2" --arg n "$3" \
        '{schemaVersion:2,manifests:[{mediaType:"application/vnd.oci.image.manifest.v1+json",digest:$m,size:$s,annotations:{($k):$n}}]}' \
        >"$d/index.json"
    tar -C "$d" -cf "$1" oci-layout index.json blobs
}

# the archives themselves are fine: with a valid name they import under it
docker_tar "$T/good.tar" '["good/name:v1"]'
t_check "a docker archive with a valid RepoTag imports" "$IMGFS" import -q "$T/good.tar"
t_eq "named from its RepoTags" "good/name:v1" "$(t_image_names | grep good || true)"
oci_tar "$T/good-oci.tar" io.containerd.image.name "docker.io/library/okname:2"
t_check "an OCI archive with a valid containerd name imports" "$IMGFS" import -q "$T/good-oci.tar"
t_eq "named from its annotation" "okname:2" "$(t_image_names | grep okname || true)"

i=0
for bad in 'a b:c' 'UPPER:tag' '../../evil:1' 'x:bad tag' "sha256:$cfg" "evil@sha256:$cfg"; do
    i=$((i + 1))
    docker_tar "$T/bad$i.tar" "$(jq -cn --arg n "$bad" '["fine:1", $n]')"
    t_rejects "RepoTags [$bad]" "manifest.json.*(image name|reference) \`$(sed 's/[][\\.*^$]/\\&/g' <<<"$bad")\`" "$T/bad$i.tar"
done
for key in io.containerd.image.name org.opencontainers.image.ref.name; do
    for bad in 'a b:c' 'UPPER:tag' '../../evil:1'; do
        i=$((i + 1))
        oci_tar "$T/bad$i.tar" "$key" "$bad"
        t_rejects "$key [$bad]" "index.json.*(image name|reference) \`$(sed 's/[][\\.*^$]/\\&/g' <<<"$bad")\`" "$T/bad$i.tar"
    done
done
# a bare tag in ref.name (what skopeo's oci:DIR:TAG writes) names no repository and is not refused
oci_tar "$T/tag-only.tar" org.opencontainers.image.ref.name "latest"
t_check "a bare tag in ref.name still imports (given -t)" "$IMGFS" import -q -t tagonly:1 "$T/tag-only.tar"
t_end
