#!/bin/bash
# examples/lazy-start.sh — start a container before its image is downloaded:
#   1. a local registry (Debian's docker-registry on 127.0.0.1, a free port, a temporary storage
#      directory; stopped at the end),
#   2. the image golang:1.19 (made from Debian packages when the store lacks it, tools/mkbase.sh)
#      pushed to it: every layer eStargz, so it can be read lazily,
#   3. `imgfs run REGISTRY/golang:1.19 go version` from an EMPTY store: the image is pulled lazily
#      (manifest, config, each layer's table of contents) and run; only the chunks `go version`
#      reads are fetched. `imgfs du` then shows what is present and what is still remote.
# Needs root. The source store is /var/tmp/imgfs-demo/store (as examples/go-service.sh) unless
# IMGFS_ROOT says otherwise; the empty store is a temporary directory.
set -euo pipefail

TOP=$(cd "$(dirname "$0")/.." && pwd)
IMGFS=${IMGFS:-$TOP/imgfs}
export IMGFS_ROOT=${IMGFS_ROOT:-/var/tmp/imgfs-demo/store}
export IMGFS_RUN_DIR=${IMGFS_RUN_DIR:-/var/tmp/imgfs-demo/run}
W=$(mktemp -d /var/tmp/imgfs-lazy-start.XXXXXX)
reg=""
cleanup() {
    [[ -n $reg ]] && { kill "$reg" 2>/dev/null; wait "$reg" 2>/dev/null; } || true
    rm -rf "$W"
}
trap cleanup EXIT

[[ $(id -u) == 0 ]] || { echo "lazy-start.sh: run as root (mounts, namespaces)" >&2; exit 1; }
[[ -x $IMGFS ]] || make -C "$TOP" imgfs
command -v docker-registry >/dev/null || { echo "lazy-start.sh: docker-registry is not installed (make deps)" >&2; exit 1; }

echo "== 1. a local registry"
while :; do
    port=$((20000 + RANDOM % 40000))
    ss -Hltn "sport = :$port" | grep -q . || break
done
printf 'version: 0.1\nlog: {level: error}\nstorage: {filesystem: {rootdirectory: %s}}\nhttp: {addr: 127.0.0.1:%s}\n' \
    "$W/storage" "$port" >"$W/registry.yml"
docker-registry serve "$W/registry.yml" >"$W/registry.log" 2>&1 &
reg=$!
for _ in $(seq 200); do curl -fsS "http://127.0.0.1:$port/v2/" >/dev/null 2>&1 && break; sleep 0.05; done
REF=127.0.0.1:$port/golang:1.19
echo "registry at 127.0.0.1:$port"

echo "== 2. push golang:1.19 to it"
"$TOP/tools/mkbase.sh" --imgfs "$IMGFS" golang:1.19
"$IMGFS" push golang:1.19 "$REF"

echo "== 3. run it from an empty store"
export IMGFS_ROOT=$W/empty IMGFS_RUN_DIR=$W/run
start=$(date +%s%N)
"$IMGFS" run --rm --network none "$REF" go version
echo "(first output after $((($(date +%s%N) - start) / 1000000)) ms, pull included)"
"$IMGFS" du
for m in $(grep -F " $W/" /proc/mounts | awk '{print $2}' | sort -r); do umount -l "$m" 2>/dev/null || true; done
