#!/bin/bash
# Every parser of untrusted input has a libFuzzer target (tests/fuzz/); run each for a fixed number
# of inputs, seeded with real examples, and fail on any crash or sanitizer report. Longer campaigns:
# `make fuzz` and run build/fuzz/fuzz_NAME CORPUS_DIR by hand.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
t_begin fuzz_smoke
[[ $(basename "$IMGFS") == imgfs ]] || t_skip "fuzz targets are sanitizer builds already; run once"

t_check "fuzz targets build" make -s -C "$TOP" fuzz

# seeds: small tars with every kind of member, compressed several ways, and real configs
mkdir -p "$T/src/d/sub" "$T/seed/tar" "$T/seed/config" "$T/seed/layer" "$T/seed/view" "$T/seed/oci" \
    "$T/seed/registry" "$T/seed/estargz"
echo hello >"$T/src/d/file"
ln "$T/src/d/file" "$T/src/d/hard"
ln -s file "$T/src/d/sym"
mkfifo "$T/src/d/fifo"
: >"$T/src/d/.wh.gone"
: >"$T/src/d/sub/.wh..wh..opq"
truncate -s 100000 "$T/src/d/sparse"
setfattr -n user.k -v v "$T/src/d/file" 2>/dev/null || true
tar --xattrs -C "$T/src" -cf "$T/seed/tar/plain.tar" d
tar --format=gnu -C "$T/src" -cf "$T/seed/tar/gnu.tar" d
tar --format=pax --sparse -C "$T/src" -cf "$T/seed/tar/pax-sparse.tar" d
gzip -c "$T/seed/tar/plain.tar" >"$T/seed/tar/plain.tar.gz"
xz -c "$T/seed/tar/plain.tar" >"$T/seed/tar/plain.tar.xz"
echo '{"architecture":"amd64","os":"linux","config":{"Env":["A=1"],"Cmd":["sh"],"ExposedPorts":{"80/tcp":{}},"Labels":{"a":"b"}},"rootfs":{"type":"layers","diff_ids":[]}}' >"$T/seed/config/c1"
printf '{"config":{"Entrypoint":null}}\xffCMD ["a","b"]\nENV A=1 B="x y"\nEXPOSE 80/udp\n' >"$T/seed/config/c2"

# small image archives, made by imgfs itself (OCI and docker save)
tar -C "$T/src" -cf "$T/tiny.tar" d/file d/sym
t_check "a tiny image for the OCI seeds" "$IMGFS" import -q -t tiny "$T/tiny.tar"
t_check "seed: OCI archive" "$IMGFS" export --format oci tiny -o "$T/seed/oci/tiny-oci.tar"
t_check "seed: docker archive" "$IMGFS" export --format docker tiny -o "$T/seed/oci/tiny-docker.tar"
# an eStargz TOC, as imgfs writes it
t_check "seed: eStargz archive" "$IMGFS" export --format estargz tiny -o "$T/tiny-estargz.tar"
mkdir "$T/estargz"
tar -C "$T/estargz" -xf "$T/tiny-estargz.tar"
for b in "$T"/estargz/blobs/sha256/*; do
    if gzip -t "$b" 2>/dev/null; then tar -xzOf "$b" stargz.index.json >"$T/seed/estargz/toc.json"; fi
done

run_fuzzer() { # NAME SEED_DIR RUNS
    local log=$T/fuzz-$1.log
    if "$TOP/build/fuzz/fuzz_$1" -runs="$3" -max_len=65536 -rss_limit_mb=2048 \
        -artifact_prefix="$T/crash-$1-" "$2" >"$log" 2>&1; then
        return 0
    fi
    grep -E "ERROR|runtime error|Base64" "$log" | head -5
    return 1
}
t_check "fuzz_tar: 5000 inputs, no crash" run_fuzzer tar "$T/seed/tar" 5000
t_check "fuzz_config: 50000 inputs, no crash" run_fuzzer config "$T/seed/config" 50000
t_check "fuzz_layer: 20000 inputs, no crash" run_fuzzer layer "$T/seed/layer" 20000
t_check "fuzz_view: 100000 inputs, no crash" run_fuzzer view "$T/seed/view" 100000
t_check "fuzz_oci: 1000 inputs, no crash" run_fuzzer oci "$T/seed/oci" 1000
# registry documents: the manifest and index of the tiny image's OCI export, and references
tar -xOf "$T/seed/oci/tiny-oci.tar" index.json >"$T/seed/registry/index.json"
for m in $(tar -tf "$T/seed/oci/tiny-oci.tar" | grep '^blobs/sha256/.'); do
    tar -xOf "$T/seed/oci/tiny-oci.tar" "$m" | head -c 4096 >"$T/seed/registry/${m##*/}"
done
printf 'localhost:5000/a/b:1@sha256:%064d' 0 >"$T/seed/registry/ref"
t_check "fuzz_registry: 50000 inputs, no crash" run_fuzzer registry "$T/seed/registry" 50000
t_check "fuzz_estargz: 2000 inputs, no crash" run_fuzzer estargz "$T/seed/estargz" 2000
t_end
