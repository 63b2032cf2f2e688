#!/bin/bash
# A lazy pull of an image whose layers are not all eStargz: the eStargz layers stay remote
# (footer and TOC only), the others are pulled whole, each with a one-line note; the image is the
# pushed tree, and it exports to what a full pull exports; imgfs build FROM it pulls it so too. The image: two eStargz layers (imgfs
# export --format estargz of a build) with the top one replaced by the plain gzip of its canonical
# tar (and the config's diff_id with it), pushed by skopeo as it is.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
source "$TOP/tests/lib_registry.sh"
t_begin lazy_mixed
t_need_fixture busybox.tar
reg_start

at() { local root=$1; shift; IMGFS_ROOT=$T/$root "$IMGFS" "$@"; }

t_check "import busybox" "$IMGFS" import -q -t bb:1 "$FIXTURES/busybox.tar"
mkdir -p "$T/ctx"
head -c 400000 /dev/urandom >"$T/ctx/new.bin"
printf 'FROM bb:1\nCOPY new.bin /opt/new.bin\n' >"$T/ctx/Dockerfile"
t_check "build a second layer on it" eval "'$IMGFS' build --progress plain -t two:1 '$T/ctx' >'$T/build.log' 2>&1"
t_check "export it with eStargz layers" "$IMGFS" export --format estargz -o "$T/two.tar" two:1
mkdir "$T/oci"
tar -xf "$T/two.tar" -C "$T/oci"
blobs=$T/oci/blobs/sha256
mdigest=$(jq -r '.manifests[0].digest' "$T/oci/index.json")
m=$blobs/${mdigest#sha256:}
t_eq "two layers" 2 "$(jq '.layers | length' "$m")"
lazy_layer=$(jq -r '.layers[0].digest' "$m")
# layer 2 as a plain runtime would have it: the canonical tar (imgfs export's OCI layer), gzipped
t_check "export it as a plain OCI layout too" "$IMGFS" export -o "$T/plain.tar" two:1
mkdir "$T/plainoci"
tar -xf "$T/plain.tar" -C "$T/plainoci"
pm=$T/plainoci/blobs/sha256/$(jq -r '.manifests[0].digest' "$T/plainoci/index.json" | cut -d: -f2)
diff2=$(jq -r '.layers[1].digest' "$pm")
gzip -n -6 -c "$T/plainoci/blobs/sha256/${diff2#sha256:}" >"$T/plain.gz"
plain=sha256:$(sha256sum <"$T/plain.gz" | cut -d' ' -f1)
mv "$T/plain.gz" "$blobs/${plain#sha256:}"
cdigest=$(jq -r '.config.digest' "$m")
jq -c --arg d "$diff2" '.rootfs.diff_ids[1] = $d' "$blobs/${cdigest#sha256:}" >"$T/c.json"
newc=sha256:$(sha256sum <"$T/c.json" | cut -d' ' -f1)
cp "$T/c.json" "$blobs/${newc#sha256:}"
jq -c --arg d "$plain" --argjson s "$(stat -c %s "$blobs/${plain#sha256:}")" \
    --arg c "$newc" --argjson cs "$(stat -c %s "$T/c.json")" \
    '.layers[1] = {mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", digest: $d, size: $s}
     | .config.digest = $c | .config.size = $cs' "$m" >"$T/m.json"
newm=sha256:$(sha256sum <"$T/m.json" | cut -d' ' -f1)
cp "$T/m.json" "$blobs/${newm#sha256:}"
jq -c --arg d "$newm" --argjson s "$(stat -c %s "$T/m.json")" \
    '.manifests[0].digest = $d | .manifests[0].size = $s' "$T/oci/index.json" >"$T/index.json"
cp "$T/index.json" "$T/oci/index.json"
t_check "skopeo pushes it as it is" skopeo --insecure-policy copy -q --dest-tls-verify=false \
    "oci:$T/oci" "docker://$REG/mixed:1"

mark=$(reg_log_lines)
t_check "pull --lazy" eval "IMGFS_ROOT='$T/lazy' '$IMGFS' pull -q --lazy '$REG/mixed:1' 2>'$T/err'"
t_check "a note says layer 2 is pulled whole ($(head -1 "$T/err"))" \
    grep -q "^imgfs pull: note: layer 2 has no valid containerd.io/snapshot/stargz/toc.digest annotation: pulling this layer whole" "$T/err"
t_eq "... one line" 1 "$(wc -l <"$T/err")"
t_eq "layer 2's blob was downloaded whole" 1 "$(reg_log_since "$mark" | awk -v b="$plain" 'index($0, b) && $9 == 200' | wc -l)"
t_eq "layer 1's blob was not" 0 "$(reg_log_since "$mark" | awk -v b="$lazy_layer" 'index($0, b) && $9 == 200' | wc -l)"
remote=$(at lazy du --json | jq -r --arg n "$REG/mixed:1" '.Images[] | select(.Name == $n) | .Remote')
present=$(at lazy du --json | jq -r --arg n "$REG/mixed:1" '.Images[] | select(.Name == $n) | .Present')
t_check "busybox's layer is remote ($remote bytes)" test "$remote" -gt 500000
t_check "the new file's layer is present ($present bytes)" test "$present" -ge 400000
t_check "fsck" at lazy fsck

mkdir "$T/ref" "$T/mnt"
t_check "mount the built image" "$IMGFS" mount two:1 "$T/ref"
t_cleanup "'$IMGFS' umount '$T/ref'"
t_check "mount the lazily pulled one" at lazy mount "$REG/mixed:1" "$T/mnt"
t_cleanup "IMGFS_ROOT='$T/lazy' '$IMGFS' umount '$T/mnt'"
t_check "it is the built tree" "$TOP/tests/compare-trees.sh" "$T/ref" "$T/mnt"
at lazy umount "$T/mnt"

mark=$(reg_log_lines)
t_check "pull --lazy again" eval "at lazy pull -q --lazy '$REG/mixed:1' 2>/dev/null"
t_eq "... downloads no blob whole again" 0 "$(reg_log_since "$mark" | awk '$9 == 200 && /\/blobs\// && !/'"${newc#sha256:}"'/' | wc -l)"
t_check "full pull into another store" at full pull -q "$REG/mixed:1"
t_check "export both" eval "at lazy export -o '$T/l.tar' '$REG/mixed:1' 2>/dev/null && at full export -o '$T/f.tar' '$REG/mixed:1'"
t_check "the same archive" cmp "$T/l.tar" "$T/f.tar"

# imgfs build FROM it pulls it the same way, with the same note in the build's output
printf 'FROM %s/mixed:1\nRUN cat /opt/new.bin | wc -c >/n\n' "$REG" >"$T/ctx/Dockerfile"
mark=$(reg_log_lines)
t_check "build FROM it in a fresh store" \
    eval "at built build --progress plain -t on:1 '$T/ctx' >'$T/build.log' 2>&1"
t_check "... noting layer 2 is pulled whole" grep -q \
    "layer 2 has no valid containerd.io/snapshot/stargz/toc.digest annotation: pulling this layer whole" "$T/build.log"
t_eq "... layer 1's blob not downloaded whole" 0 "$(reg_log_since "$mark" | awk -v b="$lazy_layer" 'index($0, b) && $9 == 200' | wc -l)"
t_eq "... the RUN read layer 2's file" 400000 "$(IMGFS_ROOT=$T/built "$IMGFS" run --rm on:1 cat /n)"
t_end
