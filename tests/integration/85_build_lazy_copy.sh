#!/bin/bash
# COPY --from and RUN --mount from= a registry image pull it lazily: the build fetches its
# manifest, config and TOCs, then only the chunks of the files the step reads (counted in the
# registry's access log against the members of those files in the eStargz blob), never a layer
# blob whole. The copied file is the pushed one, the image is complete (fsck, export), a rebuild
# is CACHED and fetches nothing, and COPY --from an image pulled lazily before (its chunks
# still remote) works. An image built FROM a lazily pulled one exports as the same build on a full
# pull does.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
source "$TOP/tests/lib_registry.sh"
t_begin build_lazy_copy
t_need_fixture busybox.tar tree.tar
t_build_setup
reg_start

blob_file() { echo "$REG_DIR/storage/docker/registry/v2/blobs/sha256/${1:7:2}/${1:7}/data"; }
# compressed bytes of the members holding file $2's chunks in eStargz blob $1, from its TOC; a
# chunk held twice (the same digest) is fetched once, so counted once
member_bytes() {
    local blob=$1 file=$2 off
    off=$((16#$(tail -c 51 "$blob" | head -c 32 | tail -c 16)))
    tar -xzOf "$blob" stargz.index.json 2>/dev/null | jq --arg f "$file" --argjson toc "$off" '
        . as $r | [$r.entries[] | select(.chunkDigest) | .offset] | unique as $offs |
        [ $r.entries[] | select(.chunkDigest and .name == $f) ] | unique_by(.chunkDigest) |
        [ .[].offset as $o | (([$offs[] | select(. > $o)] | min) // $toc) - $o ] | add'
}
# t_fetched WHAT WANT GOT: GOT bytes are WANT's members, give or take 2%: the TOC bounds a member
# by the next chunk's, the fetcher by the next entry's, and of a chunk held at several offsets
# the fetcher takes the one recorded last, jq the first (the first of a file also holds a tar
# header); anything more than the file's members would be 50% more or the whole blob
t_fetched() {
    local d=$(($3 - $2))
    if ((d < 0)); then d=$((-d)); fi
    if ((d <= $2 / 50)); then t_pass "$1 ($3 bytes, $2 by the TOC)"; else
        t_fail "$1: fetched $3 bytes, the TOC says $2"; fi
}

t_check "import the generated tree" "$IMGFS" import -q -t tree:v1 "$FIXTURES/tree.tar"
t_check "push it (eStargz)" "$IMGFS" push -q tree:v1 "$REG/tree:v1"
layer=$(curl -fsS -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
    "http://$REG/v2/tree/manifests/v1" | jq -r '.layers[0].digest')
blob=$(blob_file "$layer")
want=$("$IMGFS" export -f rootfs tree:v1 | tar -xO files/random-1m.bin | sha256sum)

# what a lazy pull of it fetches (its footer and TOC): the same requests the build's pull makes
mark=$(reg_log_lines)
t_check "pull it lazily elsewhere" env IMGFS_ROOT="$T/probe" "$IMGFS" pull -q --lazy "$REG/tree:v1"
toc=$(reg_range_bytes "$mark" "$layer")
t_check "... which fetches its TOC ($toc bytes)" test "$toc" -gt 0

export IMGFS_ROOT=$T/building
"$IMGFS" import -q -t busybox:latest "$FIXTURES/busybox.tar" >/dev/null
C=$T/ctx
mkdir -p "$C"

# ---- COPY --from an image the store lacks: only the copied file's chunks
printf 'FROM busybox:latest\nCOPY --from=%s/tree:v1 /files/random-1m.bin /f\n' "$REG" >"$C/Dockerfile"
mark=$(reg_log_lines)
build -t copied "$C" && rc=0 || rc=$?
t_eq "COPY --from a registry image builds" 0 "$rc"
((rc == 0)) || tail -n 20 "$T/build.log"
t_check "... saying it pulls lazily" grep -q "pulling $REG/tree:v1 lazily" "$T/build.log"
fetched=$(reg_range_bytes "$mark" "$layer")
members=$(member_bytes "$blob" files/random-1m.bin)
t_check "the file's members are known ($members bytes)" test "$members" -gt 1000000
t_fetched "the build fetched the TOC and the copied file's members, nothing else" \
    "$((toc + members))" "$fetched"
t_check "... a small part of the blob ($fetched of $(stat -c %s "$blob") bytes)" \
    test "$fetched" -lt $(($(stat -c %s "$blob") / 4))
t_eq "no layer blob was downloaded whole" 0 "$(reg_whole_gets "$mark" "$layer")"
mnt copied
t_eq "the copied file is the pushed one" "$want" "$(sha256sum <"$M/f")"
"$IMGFS" umount "$M"
t_check "fsck is clean (remote chunks are not missing)" "$IMGFS" fsck
t_check "the built image exports whole" "$IMGFS" export -o /dev/null copied

mark=$(reg_log_lines)
build -t copied "$C"
t_check "the rebuild is CACHED" grep -q "^#2 CACHED" "$T/build.log"
t_eq "... and fetched nothing" 0 "$(reg_range_bytes "$mark" "$layer")"

# ---- COPY --from the image now in the store, most of it still remote: another file
printf 'FROM busybox:latest\nCOPY --from=%s/tree:v1 /files/repeated-5m.bin /g\n' "$REG" >"$C/Dockerfile"
mark=$(reg_log_lines)
build -t copied2 "$C" && rc=0 || rc=$?
t_eq "COPY --from a lazily pulled image with remote chunks builds" 0 "$rc"
((rc == 0)) || tail -n 20 "$T/build.log"
t_fetched "... fetching only that file's members" "$(member_bytes "$blob" files/repeated-5m.bin)" \
    "$(reg_range_bytes "$mark" "$layer")"
mnt copied2
t_eq "... which is the pushed one" \
    "$(IMGFS_ROOT=$T/store "$IMGFS" export -f rootfs tree:v1 | tar -xO files/repeated-5m.bin 2>/dev/null | sha256sum)" \
    "$(sha256sum <"$M/g")"
"$IMGFS" umount "$M"

# ---- RUN --mount=type=bind,from= the image: the command's reads fetch only what it reads
printf 'FROM busybox:latest\nRUN --mount=type=bind,from=%s/tree:v1,target=/t sha256sum </t/files/size-262145 >/h\n' \
    "$REG" >"$C/Dockerfile"
mark=$(reg_log_lines)
build -t bound "$C" && rc=0 || rc=$?
t_eq "RUN --mount from= a lazily pulled image builds" 0 "$rc"
((rc == 0)) || tail -n 20 "$T/build.log"
t_eq "... its command read the pushed file" \
    "$(IMGFS_ROOT=$T/store "$IMGFS" export -f rootfs tree:v1 | tar -xO files/size-262145 2>/dev/null | sha256sum)" \
    "$("$IMGFS" run --rm bound cat /h)"
t_fetched "... fetching only that file's members" "$(member_bytes "$blob" files/size-262145)" \
    "$(reg_range_bytes "$mark" "$layer")"
t_check "fsck is clean" "$IMGFS" fsck

# ---- COPY --from an image `imgfs pull --lazy` brought (a build had no fetcher: "chunk ... is not
# in the store")
export IMGFS_ROOT=$T/probe
"$IMGFS" import -q -t busybox:latest "$FIXTURES/busybox.tar" >/dev/null
printf 'FROM busybox:latest\nCOPY --from=%s/tree:v1 /files/random-1m.bin /f\n' "$REG" >"$C/Dockerfile"
build -t copied "$C" && rc=0 || rc=$?
t_eq "COPY --from an image pulled lazily before builds" 0 "$rc"
((rc == 0)) || tail -n 20 "$T/build.log"
t_check_fails "... pulling nothing again" grep -q "pulling $REG" "$T/build.log"
mnt copied
t_eq "... the file is the pushed one" "$want" "$(sha256sum <"$M/f")"
"$IMGFS" umount "$M"

# ---- FROM an image pulled lazily: the built image's export names its base layers by their
# content (the build keeps the registry's diff_ids as their keys; export failed: "regenerated tar
# does not match"), byte for byte what the same build on a full pull of the base exports
printf 'FROM %s/tree:v1\nCOPY Dockerfile /Dockerfile\n' "$REG" >"$C/Dockerfile"
for store in probe full; do
    export IMGFS_ROOT=$T/$store
    [[ $store == full ]] && "$IMGFS" pull -q "$REG/tree:v1" >/dev/null
    SOURCE_DATE_EPOCH=1700000000 build -t onbase "$C" && rc=0 || rc=$?
    t_eq "FROM the image ($store pull) builds" 0 "$rc"
    ((rc == 0)) || tail -n 20 "$T/build.log"
    t_check "... and exports" "$IMGFS" export -o "$T/onbase-$store.tar" onbase
done
t_check "the export on the lazy pull is the one on the full pull" \
    cmp "$T/onbase-probe.tar" "$T/onbase-full.tar"
t_end
