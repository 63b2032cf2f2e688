#!/bin/bash
# Broken OCI layouts and docker-save archives: a blob whose digest does not match, a missing blob,
# broken JSON, unknown media types, lying sizes, names that leave the archive. Each import must fail
# with an error naming what is wrong, and leave the store as it was (t_rejects checks both).
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
t_begin oci_badinput
t_need_fixture busybox.tar

t_check "import a good image first" "$IMGFS" import -q -t bb "$FIXTURES/busybox.tar"
t_check "export it as an OCI layout" "$IMGFS" export -o "$T/good.tar" bb
t_check "and as docker save" "$IMGFS" export --format docker -o "$T/good-docker.tar" bb
# Import the good image under another name into another store, so that a bad import's partly
# stored layers would show in that store's bytes.
export IMGFS_ROOT=$T/store2
t_check "the good archive imports" "$IMGFS" import -q -t good "$FIXTURES/busybox.tar"

fresh() { # fresh NAME: an unpacked copy of the good layout in $T/NAME; prints the manifest's blob path
    rm -rf "${T:?}/$1"
    mkdir "$T/$1"
    tar -C "$T/$1" -xf "$T/good.tar"
    echo "$T/$1/blobs/sha256/$(jq -r '.manifests[0].digest' "$T/$1/index.json" | cut -d: -f2)"
}
put_blob() { # put_blob LAYOUT FILE: store FILE as a blob; prints its digest
    local d
    d=$(sha256sum <"$2" | cut -d' ' -f1)
    cp "$2" "$1/blobs/sha256/$d"
    echo "sha256:$d"
}
# point index.json at a new manifest (given as JSON text)
set_manifest() { # set_manifest LAYOUT JSON
    printf '%s' "$2" >"$T/m.json"
    local d
    d=$(put_blob "$1" "$T/m.json")
    jq -c --arg d "$d" --argjson s "$(stat -c %s "$T/m.json")" \
        '.manifests[0].digest = $d | .manifests[0].size = $s' "$1/index.json" >"$T/i.json"
    mv "$T/i.json" "$1/index.json"
}
as_tar() { tar -C "$T/$1" -cf "$T/$1.tar" .; }

# a layer blob with one byte changed: the digest check names the blob (directory and tar)
man=$(fresh corrupt)
layer=$(jq -r '.layers[0].digest' "$man" | cut -d: -f2)
printf 'X' | dd of="$T/corrupt/blobs/sha256/$layer" bs=1 seek=5000 conv=notrunc status=none
t_rejects "corrupt layer blob (dir)" "${layer:0:12}.*(digest|mismatch)|(digest|mismatch).*${layer:0:12}" "$T/corrupt"
as_tar corrupt
t_rejects "corrupt layer blob (tar)" "${layer:0:12}.*(digest|mismatch)|(digest|mismatch).*${layer:0:12}" "$T/corrupt.tar"

# bytes appended to a layer: the tar reader would not see them, the digest does
man=$(fresh appended)
printf 'trailing' >>"$T/appended/blobs/sha256/$layer"
t_rejects "bytes appended to a layer blob" "mismatch" "$T/appended"

# a corrupt config
man=$(fresh badconfig)
cfg=$(jq -r '.config.digest' "$man" | cut -d: -f2)
sed -i 's/amd64/arm64/' "$T/badconfig/blobs/sha256/$cfg"
t_rejects "corrupt config blob" "${cfg:0:12}.*mismatch" "$T/badconfig"

# a missing layer blob
man=$(fresh missing)
rm "$T/missing/blobs/sha256/$layer"
t_rejects "missing layer blob (dir)" "${layer:0:12}" "$T/missing"
as_tar missing
t_rejects "missing layer blob (tar)" "${layer:0:12}.*missing|missing.*${layer:0:12}" "$T/missing.tar"

# a missing manifest
man=$(fresh nomanifest)
rm "$man"
as_tar nomanifest
t_rejects "missing manifest" "missing|No such file" "$T/nomanifest.tar"

# broken JSON: index.json, and a manifest whose blob is intact but not JSON
fresh badindex >/dev/null
printf '{"schemaVersion": 2, "manifests": [' >"$T/badindex/index.json"
t_rejects "broken index.json" "index.json.*JSON" "$T/badindex"
man=$(fresh badjson)
set_manifest "$T/badjson" '{"schemaVersion": 2, "config": '
t_rejects "a manifest that is not JSON" "manifest.*JSON" "$T/badjson"
fresh nolayout >/dev/null
rm "$T/nolayout/oci-layout"
as_tar nolayout
t_rejects "a layout tar without oci-layout" "oci-layout|not an OCI|format" "$T/nolayout.tar"

# unknown media types: the manifest's, the config's, a layer's
fresh badmt >/dev/null
jq -c '.manifests[0].mediaType = "application/vnd.example.unknown+json"' "$T/badmt/index.json" >"$T/i.json"
mv "$T/i.json" "$T/badmt/index.json"
t_rejects "unknown manifest media type" "unknown media type.*vnd.example.unknown" "$T/badmt"
man=$(fresh badlayermt)
set_manifest "$T/badlayermt" "$(jq -c '.layers[0].mediaType = "application/vnd.oci.image.layer.v1.tar+encrypted"' "$man")"
t_rejects "unknown layer media type" "layer media type.*encrypted" "$T/badlayermt"
man=$(fresh artifact)
set_manifest "$T/artifact" "$(jq -c '.config.mediaType = "application/vnd.cncf.helm.config.v1+json"' "$man")"
t_rejects "an artifact that is not a container image" "helm" "$T/artifact"

# a descriptor whose size lies
man=$(fresh badsize)
set_manifest "$T/badsize" "$(jq -c '.layers[0].size += 1' "$man")"
t_rejects "a layer size that does not match" "bytes|size" "$T/badsize"

# an unsupported digest algorithm
man=$(fresh sha512)
set_manifest "$T/sha512" "$(jq -c '.layers[0].digest = "sha512:" + ("ab" * 64)' "$man")"
t_rejects "a sha512 digest" "unsupported" "$T/sha512"

# docker save: a layer that is not its diff_id, broken manifest.json, names leaving the archive
rm -rf "$T/dk" && mkdir "$T/dk" && tar -C "$T/dk" -xf "$T/good-docker.tar"
dlayer=$(jq -r '.[0].Layers[0]' "$T/dk/manifest.json")
printf 'X' | dd of="$T/dk/$dlayer" bs=1 seek=5000 conv=notrunc status=none
tar -C "$T/dk" -cf "$T/dk.tar" .
t_rejects "docker save: a corrupt layer" "diff_id|mismatch" "$T/dk.tar"

rm -rf "$T/dk" && mkdir "$T/dk" && tar -C "$T/dk" -xf "$T/good-docker.tar"
printf '[{"Config": ' >"$T/dk/manifest.json"
tar -C "$T/dk" -cf "$T/dk.tar" .
t_rejects "docker save: broken manifest.json" "manifest.json.*JSON" "$T/dk.tar"

rm -rf "$T/dk" && mkdir "$T/dk" && tar -C "$T/dk" -xf "$T/good-docker.tar"
jq -c '.[0].Layers[0] = "../../../etc/passwd"' "$T/dk/manifest.json" >"$T/m.json"
mv "$T/m.json" "$T/dk/manifest.json"
tar -C "$T/dk" -cf "$T/dk.tar" .
t_rejects "docker save: a layer name leaving the archive" "bad name|layer" "$T/dk.tar"

rm -rf "$T/dk" && mkdir "$T/dk" && tar -C "$T/dk" -xf "$T/good-docker.tar"
rm "$T/dk/$(jq -r '.[0].Config' "$T/dk/manifest.json")"
tar -C "$T/dk" -cf "$T/dk.tar" .
t_rejects "docker save: a missing config" "missing" "$T/dk.tar"

# several images, and a name whose tag none of them is listed with: refused
fresh two >/dev/null
mkdir -p "$T/small/etc"
echo small >"$T/small/etc/hostname"
tar -C "$T/small" -cf "$T/small.tar" .
"$IMGFS" import -q -t small "$T/small.tar" >/dev/null
"$IMGFS" export -o "$T/other.tar" small
"$IMGFS" rmi small >/dev/null
mkdir "$T/other" && tar -C "$T/other" -xf "$T/other.tar"
cp -n "$T"/other/blobs/sha256/* "$T/two/blobs/sha256/"
jq -c --argjson o "$(jq -c '.manifests[0]' "$T/other/index.json")" '.manifests += [$o]' \
    "$T/two/index.json" >"$T/i.json"
mv "$T/i.json" "$T/two/index.json"
t_rejects "a name for one of several images" "2 images" "$T/two" -t mine:v7

t_check "the store is still sound" "$IMGFS" fsck
t_end
