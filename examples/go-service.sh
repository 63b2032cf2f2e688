#!/bin/bash
# examples/go-service.sh — the main job, end to end, the way every container user knows it:
#   1. the base image golang:1.19, made from Debian packages when the store lacks it
#      (tools/mkbase.sh; no registry is needed),
#   2. imgfs build -t go-service examples/go-service   (the Dockerfile: FROM golang:1.19, COPY, RUN
#      go build, EXPOSE, CMD),
#   3. imgfs run -d -p 127.0.0.1:$PORT:8080 go-service, curl it from the host,
#      imgfs exec CONTAINER ls /go/src/app, then stop and remove it.
# Needs root. Uses its own store and run dir under /var/tmp/imgfs-demo unless IMGFS_ROOT /
# IMGFS_RUN_DIR say otherwise. Port: $PORT (default 8080).
set -euo pipefail

TOP=$(cd "$(dirname "$0")/.." && pwd)
IMGFS=${IMGFS:-$TOP/imgfs}
PORT=${PORT:-8080}
export IMGFS_ROOT=${IMGFS_ROOT:-/var/tmp/imgfs-demo/store}
export IMGFS_RUN_DIR=${IMGFS_RUN_DIR:-/var/tmp/imgfs-demo/run}
ctr=""
cleanup() {
    [[ -n $ctr ]] && "$IMGFS" rm -f "$ctr" >/dev/null 2>&1 || true
}
trap cleanup EXIT

[[ $(id -u) == 0 ]] || { echo "go-service.sh: run as root (mounts, namespaces)" >&2; exit 1; }
[[ -x $IMGFS ]] || make -C "$TOP" imgfs

echo "== 1. the base image golang:1.19"
# tools/mkbase.sh leaves an image the store has alone; it uses the test fixtures when present
"$TOP/tools/mkbase.sh" --imgfs "$IMGFS" golang:1.19
"$IMGFS" images

echo "== 2. imgfs build -t go-service examples/go-service"
"$IMGFS" build -t go-service "$TOP/examples/go-service"

echo "== 3. run it: detached, port $PORT on the host -> 8080 in the container"
ctr=$("$IMGFS" run -d --name go-service-demo -p "127.0.0.1:$PORT:8080" go-service)
echo "container $ctr"
for _ in $(seq 1 200); do
    curl -fsS "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break
    sleep 0.05
done
echo "-- GET http://127.0.0.1:$PORT/"
curl -fsS "http://127.0.0.1:$PORT/"
echo "-- imgfs exec $ctr ls /go/src/app"
"$IMGFS" exec "$ctr" ls /go/src/app
"$IMGFS" ps
echo "-- logs"
"$IMGFS" logs "$ctr"
"$IMGFS" stop "$ctr" >/dev/null
"$IMGFS" rm "$ctr" >/dev/null
ctr=""
echo "== done: built go-service from its Dockerfile, ran it, reached it; stopped and removed it"
