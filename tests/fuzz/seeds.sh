#!/bin/bash
# tests/fuzz/seeds.sh IMGFS DIR — write a seed corpus for every fuzz target into DIR/NAME/ (NAME as in
# tests/fuzz/fuzz_NAME.c): small tars with every kind of member, compressed several ways, real
# configs, small image archives made by IMGFS itself, Dockerfiles and --format templates. Used by
# tests/integration/90_fuzz_smoke.sh and bench/fuzz-long.sh. A target without seeds here starts from
# an empty corpus.
set -euo pipefail
TOP=$(cd "$(dirname "$0")/../.." && pwd)
IMGFS=$1
OUT=$2
W=$(mktemp -d /tmp/imgfs-seeds.XXXXXX)
trap 'rm -rf "$W"' EXIT
mkdir -p "$W/src/d/sub" "$OUT/tar" "$OUT/config" "$OUT/layer" "$OUT/view" "$OUT/oci" \
    "$OUT/registry" "$OUT/estargz" "$OUT/dockerfile" "$OUT/template"
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

# Dockerfiles and .dockerignore files: BuildKit's parser cases (tests/conformance) and heredocs
for d in "$TOP"/tests/conformance/buildkit/testfiles*/*/; do
    cp "$d/Dockerfile" "$OUT/dockerfile/$(basename "$d")"
done
printf 'FROM a\nRUN <<EOF\necho ${A:-x} ${B//a/b} ${C%%%%.*}\nEOF\nCOPY <<-"X" <<Y /d\n\tx\n\tX\ny\nY\n' \
    >"$OUT/dockerfile/heredoc"
printf '*.go\n!keep/**\n**/x\n[a-c]?\n# c\n/abs/../p\n' >"$OUT/dockerfile/dockerignore"

# --format templates: what Docker users write (docs/cli.md), seeded by hand
printf '{{.Id}}' >"$OUT/template/field"
printf '{{json .A}}\t{{index .M "k"}}' >"$OUT/template/json-index"
printf '{{range .A}}[{{.}}]{{else}}none{{end}}' >"$OUT/template/range"
printf '{{if .M.k}}{{upper .Id}}{{end}} {{len .A}} {{join .A ","}}' >"$OUT/template/if"
printf 'table {{.Id}}\t{{- .M -}}' >"$OUT/template/table"

# regression inputs (not seeds: each is run once, by 90_fuzz_smoke): Dockerfiles and .dockerignore
# files whose arrays grew by one element per realloc, quadratic under ASan (a 64 KiB line: 262 s,
# now milliseconds; docs/fuzzing.md)
mkdir -p "$OUT/regress/dockerfile"
head -c 65535 /dev/zero | tr '\0' a >"$OUT/regress/dockerfile/long-line"
{ printf 'FROM a\nENV'; for ((i = 0; i < 10000; i++)); do printf ' a=b'; done; } \
    >"$OUT/regress/dockerfile/many-kvs"
{ printf 'FROM a\nCMD'; for ((i = 0; i < 30000; i++)); do printf ' a'; done; } \
    >"$OUT/regress/dockerfile/many-words"
{ printf 'FROM a\n'; for ((i = 0; i < 18000; i++)); do printf 'USER a\n'; done; } \
    >"$OUT/regress/dockerfile/many-instructions"
