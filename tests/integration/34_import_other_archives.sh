#!/bin/bash
# Image archives by other writers are imported as images, not taken for a rootfs (which made a junk
# image of their files, exit 0):
# - go-containerregistry's tarball format (what `crane pull`, `ko build --tarball`, `kaniko
#   --tar-path` write; layout as in go-containerregistry pkg/v1/tarball/README.md and write.go):
#   `manifest.json` = [{"Config": "sha256:<config hex>", "RepoTags": [...], "Layers":
#   ["<compressed layer hex>.tar.gz", ...]}], the config a member named "sha256:<hex>", each layer
#   gzipped and named by the digest of its compressed bytes;
# - docker-save archives whose layer paths are not hex digests (manifest.json lists them).
# An archive with manifest.json / index.json / oci-layout at its top that is not a valid image
# archive is an error naming what is wrong, not a rootfs. The archives are made by hand here.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
t_begin import_other_archives

mkdir -p "$T/root/etc" "$T/root/bin"
echo "made by hand" >"$T/root/etc/motd"
head -c 50000 /dev/urandom >"$T/root/bin/tool"
tar --numeric-owner -C "$T/root" -cf "$T/layer.tar" .
gzip -n -c "$T/layer.tar" >"$T/layer.tar.gz"
sha() { sha256sum "$1" | cut -d' ' -f1; }
diff_id=$(sha "$T/layer.tar")
gz=$(sha "$T/layer.tar.gz")
printf '{"architecture":"amd64","os":"linux","config":{"Cmd":["/bin/tool"]},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' \
    "$diff_id" >"$T/config.json"
cfg=$(sha "$T/config.json")
direct=$("$IMGFS" import -q -t direct "$T/layer.tar" && t_diff_ids direct)

# --- go-containerregistry tarball ---
mkdir -p "$T/gcr"
cp "$T/config.json" "$T/gcr/sha256:$cfg"
cp "$T/layer.tar.gz" "$T/gcr/$gz.tar.gz"
printf '[{"Config":"sha256:%s","RepoTags":["gcr.example/app:v1"],"Layers":["%s.tar.gz"]}]' \
    "$cfg" "$gz" >"$T/gcr/manifest.json"
# the order tarball.Write uses: config, layers, manifest.json last
tar -C "$T/gcr" -cf "$T/gcr.tar" "sha256:$cfg" "$gz.tar.gz" manifest.json
t_check "a go-containerregistry tarball imports" "$IMGFS" import -q "$T/gcr.tar"
t_eq "named from its RepoTags" "gcr.example/app:v1" \
    "$("$IMGFS" images --json | jq -r '.[].Name' | grep gcr || true)"
t_eq "its one layer is the rootfs's layer (same canonical digest)" "$direct" \
    "$(t_diff_ids gcr.example/app:v1)"
t_eq "its config came with it" '["/bin/tool"]' \
    "$("$IMGFS" inspect --json gcr.example/app:v1 | jq -c '.[0].Config.Cmd // .[0].Config.config.Cmd')"
t_check "no junk image of its members" bash -c "! '$IMGFS' export --format rootfs \
    gcr.example/app:v1 -o - | tar -t | grep -q manifest.json"
printf '{"broken' >"$T/gcr/sha256:$cfg"
tar -C "$T/gcr" -cf "$T/gcr-bad.tar" "sha256:$cfg" "$gz.tar.gz" manifest.json
t_rejects "a go-containerregistry tarball whose config does not match its name" \
    "config .sha256:$cfg.*digest mismatch" "$T/gcr-bad.tar"

# --- docker save with layer paths that are not digests ---
mkdir -p "$T/ds/layer-one"
cp "$T/layer.tar" "$T/ds/layer-one/layer.tar"
cp "$T/config.json" "$T/ds/config.json"
printf '[{"Config":"config.json","RepoTags":["plain/names:1"],"Layers":["layer-one/layer.tar"]}]' \
    >"$T/ds/manifest.json"
tar -C "$T/ds" -cf "$T/ds.tar" layer-one config.json manifest.json
t_check "a docker-save archive with plain layer paths imports" "$IMGFS" import -q "$T/ds.tar"
t_eq "its layer" "$direct" "$(t_diff_ids plain/names:1)"
gzip -c "$T/ds.tar" >"$T/ds.tar.gz"
t_check "also gzipped" "$IMGFS" import -q -t plain/names:gz "$T/ds.tar.gz"
t_eq "the same layer" "$direct" "$(t_diff_ids plain/names:gz)"

# --- looks like an image archive, is not one: an error, not a rootfs ---
mkdir -p "$T/bad"
echo hello >"$T/bad/README"
printf '[{"Config":"config.json","Layers":["missing/layer.tar"]}]' >"$T/bad/manifest.json"
cp "$T/config.json" "$T/bad/config.json"
tar -C "$T/bad" -cf "$T/bad.tar" README config.json manifest.json
t_rejects "manifest.json at the top, a layer missing" \
    "has .manifest.json. at its top.*missing/layer.tar" "$T/bad.tar"
mkdir -p "$T/bad2"
echo '{"imageLayoutVersion":"1.0.0"}' >"$T/bad2/oci-layout"
echo hello >"$T/bad2/README"
tar -C "$T/bad2" -cf "$T/bad2.tar" README oci-layout
t_rejects "oci-layout at the top, no index.json" "has .oci-layout. at its top" "$T/bad2.tar"

# a rootfs is still a rootfs
t_check "a plain rootfs still imports" "$IMGFS" import -q -t rootfs "$T/layer.tar"
t_check "fsck is clean" "$IMGFS" fsck
t_end
