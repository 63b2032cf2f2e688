#!/bin/bash
# examples/go-service.sh — the main job, end to end, from Debian packages only:
#   1. compile a Go HTTP service (examples/go-service, golang-go) as a static binary,
#   2. make an image: a busybox-static rootfs plus the binary, imported with its config
#      (ENTRYPOINT, EXPOSE, ENV) set by `imgfs import --change`,
#   3. run it detached with a published port, ask it over HTTP from the host, show its logs,
#      stop and remove it.
# Needs root. Uses its own store and run dir under /var/tmp/imgfs-demo unless IMGFS_ROOT /
# IMGFS_RUN_DIR say otherwise. Port: $PORT (default 8080).
set -euo pipefail

TOP=$(cd "$(dirname "$0")/.." && pwd)
IMGFS=${IMGFS:-$TOP/imgfs}
PORT=${PORT:-8080}
export IMGFS_ROOT=${IMGFS_ROOT:-/var/tmp/imgfs-demo/store}
export IMGFS_RUN_DIR=${IMGFS_RUN_DIR:-/var/tmp/imgfs-demo/run}
WORK=$(mktemp -d /tmp/imgfs-go-service.XXXXXX)
ctr=""
cleanup() {
    [[ -n $ctr ]] && "$IMGFS" rm -f "$ctr" >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT

[[ $(id -u) == 0 ]] || { echo "go-service.sh: run as root (mounts, namespaces)" >&2; exit 1; }
[[ -x $IMGFS ]] || make -C "$TOP" imgfs
command -v go >/dev/null || { echo "go-service.sh: needs golang-go (make deps)" >&2; exit 1; }

echo "== 1. compile the Go service (static, reproducible)"
(cd "$TOP/examples/go-service" &&
    CGO_ENABLED=0 GOFLAGS=-trimpath GOCACHE=$WORK/gocache go build -ldflags=-s -o "$WORK/app" .)
ls -l "$WORK/app"

echo "== 2. make the image: busybox-static rootfs + the binary"
root=$WORK/rootfs
mkdir -p "$root"/{bin,etc,tmp,app}
chmod 1777 "$root/tmp"
cp /bin/busybox "$root/bin/busybox"
for applet in sh ls cat ps wget; do ln -s busybox "$root/bin/$applet"; done
printf 'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/app:/bin/sh\n' >"$root/etc/passwd"
printf 'root:x:0:\napp:x:1000:\n' >"$root/etc/group"
install -m 0755 "$WORK/app" "$root/app/server"
tar -C "$root" --numeric-owner --sort=name -czf "$WORK/rootfs.tar.gz" .
"$IMGFS" import -t go-service:latest \
    -c 'ENTRYPOINT ["/app/server"]' -c "EXPOSE 8080" -c "ENV PORT=8080" -c "USER app" \
    -c "WORKDIR /app" "$WORK/rootfs.tar.gz"
"$IMGFS" images

echo "== 3. run it: detached, port $PORT on the host -> 8080 in the container"
ctr=$("$IMGFS" run -d --name go-service-demo -p "127.0.0.1:$PORT:8080" go-service:latest)
echo "container $ctr"
for _ in $(seq 1 200); do
    curl -fsS "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break
    sleep 0.05
done
echo "-- GET http://127.0.0.1:$PORT/"
curl -fsS "http://127.0.0.1:$PORT/"
"$IMGFS" ps
echo "-- logs"
"$IMGFS" logs "$ctr"
"$IMGFS" stop "$ctr" >/dev/null
"$IMGFS" rm "$ctr" >/dev/null
ctr=""
echo "== done: built, imported, ran and reached a Go service; stopped and removed it"
