#!/bin/bash
# tests/fuzz/seeds.sh IMGFS DIR — write a seed corpus for every fuzz target into DIR/NAME/ (NAME as in
# tests/fuzz/fuzz_NAME.c): small tars with every kind of member, compressed several ways, real
# configs, and small image archives made by IMGFS itself. Used by tests/integration/90_fuzz_smoke.sh
# and bench/fuzz-long.sh. A target without seeds here starts from an empty corpus.
set -euo pipefail
IMGFS=$1
OUT=$2
W=$(mktemp -d /tmp/imgfs-seeds.XXXXXX)
trap 'rm -rf "$W"' EXIT
mkdir -p "$W/src/d/sub" "$OUT/tar" "$OUT/config" "$OUT/layer" "$OUT/view" "$OUT/oci" \
    "$OUT/registry" "$OUT/estargz"
echo hello >"$W/src/d/file"
ln "$W/src/d/file" "$W/src/d/hard"
ln -s file "$W/src/d/sym"
mkfifo "$W/src/d/fifo"
: >"$W/src/d/.wh.gone"
: >"$W/src/d/sub/.wh..wh..opq"
truncate -s 100000 "$W/src/d/sparse"
printf data | dd of="$W/src/d/sparse" bs=1 seek=70000 conv=notrunc status=none
setfattr -n user.k -v v "$W/src/d/file" 2>/dev/null || true
tar --xattrs -C "$W/src" -cf "$OUT/tar/plain.tar" d
tar --format=gnu -C "$W/src" -cf "$OUT/tar/gnu.tar" d
tar --format=gnu --sparse -C "$W/src" -cf "$OUT/tar/gnu-sparse.tar" d
tar --format=pax --sparse -C "$W/src" -cf "$OUT/tar/pax-sparse.tar" d
gzip -c "$OUT/tar/plain.tar" >"$OUT/tar/plain.tar.gz"
xz -c "$OUT/tar/plain.tar" >"$OUT/tar/plain.tar.xz"
echo '{"architecture":"amd64","os":"linux","config":{"Env":["A=1"],"Cmd":["sh"],"ExposedPorts":{"80/tcp":{}},"Labels":{"a":"b"}},"rootfs":{"type":"layers","diff_ids":[]}}' >"$OUT/config/c1"
printf '{"config":{"Entrypoint":null}}\xffCMD ["a","b"]\nENV A=1 B="x y"\nEXPOSE 80/udp\n' >"$OUT/config/c2"

# small image archives, made by imgfs itself (OCI and docker save), in a store of their own
export IMGFS_ROOT=$W/store
tar -C "$W/src" -cf "$W/tiny.tar" d/file d/sym
"$IMGFS" import -q -t tiny "$W/tiny.tar"
"$IMGFS" export --format oci tiny -o "$OUT/oci/tiny-oci.tar"
"$IMGFS" export --format docker tiny -o "$OUT/oci/tiny-docker.tar"

# registry documents: the manifest and index of the tiny image's OCI export, and references
tar -xOf "$OUT/oci/tiny-oci.tar" index.json >"$OUT/registry/index.json"
for m in $(tar -tf "$OUT/oci/tiny-oci.tar" | grep '^blobs/sha256/.'); do
    tar -xOf "$OUT/oci/tiny-oci.tar" "$m" | head -c 4096 >"$OUT/registry/${m##*/}"
done
printf 'localhost:5000/a/b:1@sha256:%064d' 0 >"$OUT/registry/ref"

# an eStargz TOC, as imgfs writes it
"$IMGFS" export --format estargz tiny -o "$W/tiny-estargz.tar"
mkdir "$W/estargz"
tar -C "$W/estargz" -xf "$W/tiny-estargz.tar"
for b in "$W"/estargz/blobs/sha256/*; do
    if gzip -t "$b" 2>/dev/null; then tar -xzOf "$b" stargz.index.json >"$OUT/estargz/toc.json"; fi
done
