#!/bin/bash
# Lazy pulls from a real registry (Debian's docker-registry on 127.0.0.1): `imgfs pull --lazy`
# downloads the manifest, the config and each layer's footer and TOC (at most two Range requests per
# layer) and no file content; the mount then fetches content on first read and shows exactly the
# pushed tree; a second image sharing most chunks fetches only its own; 16 parallel readers of one
# file fetch each chunk once; `imgfs pull` afterwards fetches the rest. Counted from the registry's
# access log and from `imgfs du`.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
source "$TOP/tests/lib_registry.sh"
t_begin lazy_pull
t_need_fixture busybox.tar tree.tar
reg_start

# in store 2 (or 3), the lazily pulling side
lz() { IMGFS_ROOT=$T/store2 "$IMGFS" "$@"; }
lz3() { IMGFS_ROOT=$T/store3 "$IMGFS" "$@"; }
# registry access log lines after line $1 (docker-registry's combined log format)
blob_file() { echo "$REG_DIR/storage/docker/registry/v2/blobs/sha256/${1:7:2}/${1:7}/data"; }
# compressed bytes of the members holding file $2's chunks in eStargz blob $1, from its TOC
member_bytes() {
    local blob=$1 file=$2 off
    off=$((16#$(tail -c 51 "$blob" | head -c 32 | tail -c 16)))
    tar -xzOf "$blob" stargz.index.json 2>/dev/null | jq --arg f "$file" --argjson toc "$off" '
        . as $r | [$r.entries[] | select(.chunkDigest) | .offset] | unique as $offs |
        [ $r.entries[] | select(.chunkDigest and .name == $f) | .offset as $o |
          (([$offs[] | select(. > $o)] | min) // $toc) - $o ] | add'
}
remote_of() { lz du --json | jq -r --arg n "$1" '.Images[] | select(.Name == $n) | .Remote'; }

t_check "import the generated tree" "$IMGFS" import -q -t tree:v1 "$FIXTURES/tree.tar"
t_check "push it" "$IMGFS" push -q tree:v1 "$REG/tree:v1"
mkdir "$T/ref" "$T/mnt"
t_check "mount the original" "$IMGFS" mount tree:v1 "$T/ref"
t_cleanup "'$IMGFS' umount '$T/ref'"

# ---- pull --lazy: metadata only
manifest=$(curl -fsS -H 'Accept: application/vnd.oci.image.manifest.v1+json' "http://$REG/v2/tree/manifests/v1")
nl=$(jq '.layers | length' <<<"$manifest")
layer=$(jq -r '.layers[0].digest' <<<"$manifest")
mark=$(reg_log_lines)
t_check "pull --lazy" lz pull -q --lazy "$REG/tree:v1"
t_eq "no file content is stored" 0 "$(lz du --json | jq .Chunks)"
ranges=$(reg_log_since "$mark" | awk '$9 == 206' | wc -l)
t_check "at most two Range requests per layer ($ranges for $nl)" test "$ranges" -le $((2 * nl))
t_eq "no layer blob was downloaded whole" 0 \
    "$(reg_log_since "$mark" | awk -v b="$layer" 'index($0, b) && $9 == 200' | wc -l)"
t_check "everything is remote" test "$(remote_of "$REG/tree:v1")" -gt 1000000
t_check "fsck: remote chunks are not missing" lz fsck

# ---- the mount fetches on read and shows the pushed tree
mark=$(reg_log_lines)
t_check "mount the lazily pulled image" lz mount "$REG/tree:v1" "$T/mnt"
t_cleanup "IMGFS_ROOT='$T/store2' '$IMGFS' umount '$T/mnt'"
t_eq "mounting fetched nothing" 0 "$(reg_range_bytes "$mark" "$layer")"
t_check "the lazy mount is the pushed tree" "$TOP/tests/compare-trees.sh" "$T/ref" "$T/mnt"
t_check "reading fetched content" test "$(reg_range_bytes "$mark" "$layer")" -gt 0
t_eq "now nothing is remote" 0 "$(remote_of "$REG/tree:v1")"
t_check "fsck after the reads" lz fsck
mark=$(reg_log_lines)
t_check "read again" "$TOP/tests/compare-trees.sh" "$T/ref" "$T/mnt"
t_eq "a second read fetches nothing" 0 "$(reg_range_bytes "$mark" "$layer")"
lz umount "$T/mnt"

# ---- a second image sharing most chunks: only its own are fetched
mkdir -p "$T/extra/opt"
head -c 300000 /dev/urandom >"$T/extra/opt/new.bin"
cp "$FIXTURES/busybox.tar" "$T/b2.tar"
tar -rf "$T/b2.tar" -C "$T/extra" opt/new.bin
t_check "import busybox" "$IMGFS" import -q -t bb:1 "$FIXTURES/busybox.tar"
t_check "import busybox plus a file" "$IMGFS" import -q -t bb:2 "$T/b2.tar"
t_check "push both" eval "'$IMGFS' push -q bb:1 '$REG/bb:1' && '$IMGFS' push -q bb:2 '$REG/bb:2'"
t_check "pull bb:1 lazily" lz pull -q --lazy "$REG/bb:1"
t_check "mount bb:1" lz mount "$REG/bb:1" "$T/mnt"
t_check "read all of bb:1" tar -C "$T/mnt" -cf /dev/null .
lz umount "$T/mnt"
b2=$(curl -fsS -H 'Accept: application/vnd.oci.image.manifest.v1+json' "http://$REG/v2/bb/manifests/2" | jq -r '.layers[0].digest')
t_check "pull bb:2 lazily" lz pull -q --lazy "$REG/bb:2"
mark=$(reg_log_lines)
t_check "mount bb:2" lz mount "$REG/bb:2" "$T/mnt"
t_eq "bb:2 is busybox plus the new file" "$(sha256sum <"$T/extra/opt/new.bin")" "$(sha256sum <"$T/mnt/opt/new.bin")"
t_check "read all of bb:2" tar -C "$T/mnt" -cf /dev/null .
fetched=$(reg_range_bytes "$mark" "$b2")
new=$(member_bytes "$(blob_file "$b2")" opt/new.bin)
t_eq "bb:2 fetched only the new file's members ($new bytes), none of the shared chunks" "$new" "$fetched"
t_check "... while its blob is much bigger" test "$(stat -c %s "$(blob_file "$b2")")" -gt $((3 * new))
lz umount "$T/mnt"

# ---- a plain gzip layer (no eStargz footer or TOC): pulled whole, with a one-line note
t_check "export bb:1 as a plain OCI archive" "$IMGFS" export -o "$T/plain.tar" bb:1
t_check "skopeo pushes it gzip-compressed (no TOC)" skopeo --insecure-policy copy -q --dest-compress \
    --dest-tls-verify=false "oci-archive:$T/plain.tar" "docker://$REG/plain:1"
out=$(lz pull --lazy "$REG/plain:1" 2>&1 >/dev/null) || true
t_check "pull --lazy says it pulls the image whole ($out)" grep -q "^imgfs pull: note: .*pulling the image whole" <<<"$out"
t_eq "... one line" 1 "$(wc -l <<<"$out")"
t_check "and it is all there" lz export --format rootfs -o /dev/null "$REG/plain:1"

# ---- 16 readers of one file at once: every chunk fetched once
t_check "pull bb:1 lazily into a third store" lz3 pull -q --lazy "$REG/bb:1"
t_check "mount it" lz3 mount "$REG/bb:1" "$T/mnt"
t_cleanup "IMGFS_ROOT='$T/store3' '$IMGFS' umount '$T/mnt'"
b1=$(curl -fsS -H 'Accept: application/vnd.oci.image.manifest.v1+json' "http://$REG/v2/bb/manifests/1" | jq -r '.layers[0].digest')
want=$(IMGFS_ROOT=$T/store "$IMGFS" export --format rootfs bb:1 | tar -xO bin/busybox | sha256sum)
mark=$(reg_log_lines)
pids=()
for i in $(seq 16); do
    sha256sum <"$T/mnt/bin/busybox" >"$T/r$i" &
    pids+=($!)
done
wait "${pids[@]}"
ok=0
for i in $(seq 16); do [[ $(cat "$T/r$i") == "$want" ]] && ok=$((ok + 1)); done
t_eq "16 parallel readers read the right bytes" 16 "$ok"
t_eq "each chunk was fetched once" "$(member_bytes "$(blob_file "$b1")" bin/busybox)" "$(reg_range_bytes "$mark" "$b1")"
lz3 umount "$T/mnt"

# ---- pull without --lazy completes the image: then it needs no registry
t_check "bb:1 is partly remote in store 3" test "$(IMGFS_ROOT=$T/store3 "$IMGFS" du --json | jq '[.Images[].Remote] | max')" -gt 0
t_check "pull fetches the rest" lz3 pull -q "$REG/bb:1"
t_eq "nothing remote after pull" 0 "$(IMGFS_ROOT=$T/store3 "$IMGFS" du --json | jq '[.Images[].Remote] | max')"
reg_stop
t_check "mount with the registry gone" lz3 mount "$REG/bb:1" "$T/mnt"
t_check "read everything offline" tar -C "$T/mnt" -cf /dev/null .
lz3 umount "$T/mnt"
t_end
