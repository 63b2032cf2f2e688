#!/bin/bash
# FROM a registry image the store lacks pulls it lazily: the build fetches its manifest, config
# and TOCs, then only the chunks of the files its steps read (counted in the registry's access
# log; `imgfs du` and fsck show the rest still remote), never a layer blob whole. The built image
# runs and holds what it should; a rebuild is CACHED and sends no request at all; --pull checks
# the manifest again and fetches no blob; with the registry gone the cached rebuild still works;
# an unreachable registry is an error naming the line and the reference, with no image; an image
# with no eStargz layer is pulled whole, with a note.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
source "$TOP/tests/lib_registry.sh"
t_begin build_lazy_from
t_need_fixture busybox.tar
t_build_setup
reg_start

requests() { reg_log_since "$1" | grep -c '"[A-Z]* /v2/' || true; }

# the base: busybox plus four 2 MiB random files (the bulk of the layer); the build reads one
t_busybox_plus "$T/base.tar" 2097152 a b c d
t_check "import the base" "$IMGFS" import -q -t base:1 "$T/base.tar"
t_check "push it (eStargz)" "$IMGFS" push -q base:1 "$REG/base:1"
layer=$(curl -fsS -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
    "http://$REG/v2/base/manifests/1" | jq -r '.layers[0].digest')
blob_size=$(curl -fsS -I "http://$REG/v2/base/blobs/$layer" | tr -d '\r' |
    awk 'tolower($1) == "content-length:" {print $2}')
t_check "the layer blob holds the 8 MiB of random files ($blob_size bytes)" test "$blob_size" -gt 8000000

export IMGFS_ROOT=$T/building
C=$T/ctx
mkdir -p "$C"
echo hello >"$C/hello.txt"
printf 'FROM %s/base:1\nRUN sha256sum /opt/a >/a.sum\nCOPY hello.txt /hello.txt\n' "$REG" >"$C/Dockerfile"
mark=$(reg_log_lines)
build -t out "$C" && rc=0 || rc=$?
t_eq "FROM a registry image builds in a fresh store" 0 "$rc"
((rc == 0)) || tail -n 20 "$T/build.log"
t_check "... saying it pulls lazily" grep -q "pulling $REG/base:1 lazily" "$T/build.log"
fetched=$(reg_blob_bytes "$mark" "$layer")
t_check "... fetching a fraction of the layer ($fetched of $blob_size bytes: the TOC, busybox, /opt/a)" \
    test "$fetched" -gt 2000000 -a "$fetched" -lt $((blob_size / 2))
t_eq "... and no layer blob whole" 0 "$(reg_whole_gets "$mark" "$layer")"
remote=$("$IMGFS" du --json | jq --arg n "$REG/base:1" '[.Images[] | select(.Name == $n) | .Remote] | add // 0')
t_check "imgfs du: the untouched files stay remote ($remote bytes)" test "$remote" -gt 6000000
t_check "fsck is clean and counts remote chunks" eval "'$IMGFS' fsck | grep -q 'chunk references are remote'"

sum=$(cd "$T/extra" && sha256sum opt/a | sed 's| opt/a| /opt/a|')
t_eq "the RUN read the pushed file" "$sum" "$("$IMGFS" run --rm out cat /a.sum)"
t_eq "the COPY is there" hello "$("$IMGFS" run --rm out cat /hello.txt)"
t_eq "a file the build never read reads right (fetched now)" \
    "$(sha256sum <"$T/extra/opt/d")" "$("$IMGFS" run --rm out cat /opt/d | sha256sum)"
id1=$("$IMGFS" inspect --format '{{.Id}}' out)

mark=$(reg_log_lines)
build -t out "$C" && rc=0 || rc=$?
t_eq "the rebuild succeeds" 0 "$rc"
t_eq "... every step CACHED" 2 "$(grep -c '^#[0-9]* CACHED' "$T/build.log")"
t_eq "... sending no request to the registry" 0 "$(requests "$mark")"
t_eq "... the same image" "$id1" "$("$IMGFS" inspect --format '{{.Id}}' out)"

mark=$(reg_log_lines)
build --pull -t out "$C" && rc=0 || rc=$?
t_eq "--pull builds" 0 "$rc"
t_check "... checking the manifest again" eval "reg_log_since $mark | grep -q '/v2/base/manifests/1'"
t_eq "... fetching nothing of the layer" 0 "$(reg_blob_bytes "$mark" "$layer")"
t_eq "... every step CACHED" 2 "$(grep -c '^#[0-9]* CACHED' "$T/build.log")"

reg_stop
build -t out "$C" && rc=0 || rc=$?
t_eq "with the registry gone the cached rebuild works" 0 "$rc"
((rc == 0)) || tail -n 20 "$T/build.log"
t_eq "... the same image" "$id1" "$("$IMGFS" inspect --format '{{.Id}}' out)"

export IMGFS_ROOT=$T/unreachable
build -t nothing "$C" && rc=0 || rc=$?
t_check "an unreachable registry fails the build" test "$rc" -ne 0
t_check "... naming the line and the reference ($(grep -m1 'Dockerfile:1' "$T/build.log" || true))" \
    grep -q "Dockerfile:1: pulling $REG/base:1: $REG: getting manifest base:1: .*connect" "$T/build.log"
t_check_fails "... and no image is named" eval "'$IMGFS' images | grep -q -e nothing -e base"

# ---- an image with no eStargz layer (plain OCI layout pushed by skopeo): pulled whole
reg_restart
export IMGFS_ROOT=$T/store
t_check "export the base as a plain OCI layout" "$IMGFS" export -o "$T/plain.tar" base:1
mkdir "$T/oci"
tar -xf "$T/plain.tar" -C "$T/oci"
t_check "skopeo pushes it as it is" skopeo --insecure-policy copy -q --dest-tls-verify=false \
    "oci:$T/oci" "docker://$REG/plain:1"
export IMGFS_ROOT=$T/plainstore
printf 'FROM %s/plain:1\nRUN sha256sum /opt/a >/a.sum\n' "$REG" >"$C/Dockerfile"
build -t fromplain "$C" && rc=0 || rc=$?
t_eq "FROM an image with no eStargz layer builds" 0 "$rc"
((rc == 0)) || tail -n 20 "$T/build.log"
t_check "... with a note that it is pulled whole" grep -q "pulling $REG/plain:1 whole" "$T/build.log"
t_eq "... and nothing remote" 0 "$("$IMGFS" du --json | jq '[.Images[].Remote // 0] | add // 0')"
t_eq "... the RUN read the file" "$sum" "$("$IMGFS" run --rm fromplain cat /a.sum)"
t_end
