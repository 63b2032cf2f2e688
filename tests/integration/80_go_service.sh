#!/bin/bash
# The README's main job, end to end: examples/go-service.sh builds the Go service from its
# Dockerfile (FROM golang:1.19 ... RUN go build ... CMD ["./app"]), runs it with a published port,
# reaches it over HTTP and lists the app's directory with exec; afterwards nothing of it is left
# running. Then a rebuild comes from the cache (same digest, no step run) and a one-line change in
# main.go runs COPY and RUN again.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
t_begin go_service
[[ $(basename "$IMGFS") == imgfs ]] || t_skip "the example is the same code path as 85_build_*; run once"

# go-service.sh makes golang:1.19 with tools/mkbase.sh, from the cached test fixture
export IMGFS_FIXTURES=$FIXTURES IMGFS_BASE_CACHE=$T/base-cache

used=" $(ss -Htan | awk '{print $4}' | sed 's/.*://' | tr '\n' ' ') "
port=20000
while [[ $used == *" $port "* ]]; do port=$((port + 1)); done
out=$(PORT=$port IMGFS=$IMGFS "$TOP/examples/go-service.sh" 2>&1) && rc=0 || rc=$?
[[ $rc == 0 ]] || echo "$out" | tail -n 30
t_eq "examples/go-service.sh succeeds" 0 "$rc"
t_check "the build ran go build in a RUN step" grep -q "RUN go build -o app" <<<"$out"
t_check "the service answered through the published port" grep -q "^hello from " <<<"$out"
t_check "exec listed the built binary in /go/src/app" grep -qx "app" <<<"$out"
t_check "exec listed the copied source" grep -qx "main.go" <<<"$out"
t_check "its log shows it listening" grep -q "listening on :8080" <<<"$out"
cfg=$("$IMGFS" inspect --json go-service | jq -c '.[0].Config')
t_eq "Cmd" '["./app"]' "$(jq -c '.config.Cmd' <<<"$cfg")"
t_eq "WorkingDir" /go/src/app "$(jq -r '.config.WorkingDir' <<<"$cfg")"
t_eq "ExposedPorts" '{"8080/tcp":{}}' "$(jq -c '.config.ExposedPorts' <<<"$cfg")"
t_eq "MAINTAINER is the author" "imgfs examples <imgfs@example.invalid>" "$(jq -r '.author' <<<"$cfg")"
t_check "history has the RUN step with a layer" \
    jq -e '[.history[] | select(.created_by == "RUN /bin/sh -c go build -o app # buildkit")
            | select(.empty_layer != true)] | length == 1' <<<"$cfg"
t_check "history marks EXPOSE as an empty layer" \
    jq -e '[.history[] | select(.created_by == "EXPOSE map[8080/tcp:{}]") | .empty_layer] == [true]' \
    <<<"$cfg"
t_eq "no container left" "" "$("$IMGFS" ps -a -q 2>/dev/null || "$IMGFS" ps -a | tail -n +2)"
t_check_fails "the port is closed again" curl -fsS --max-time 2 "http://127.0.0.1:$port/"
t_eq "no build mount left" "" "$(grep -F " $IMGFS_RUN_DIR/" /proc/mounts || true)"

# the cache: the same build again runs nothing and gives the same image
id1=$("$IMGFS" inspect --json go-service | jq -r '.[0].Digest')
again=$("$IMGFS" build --progress plain -t go-service "$TOP/examples/go-service" 2>&1)
t_check "a rebuild takes COPY and RUN from the cache" \
    test "$(grep -c '^#[0-9]* CACHED' <<<"$again")" -ge 3
t_check_fails "a rebuild runs no command (no output lines)" grep -q '^#[0-9]* [0-9.]* ' <<<"$again"
t_eq "the rebuild is the same image" "$id1" "$("$IMGFS" inspect --json go-service | jq -r '.[0].Digest')"

# a one-line change in main.go: COPY and RUN run again, the new binary answers differently
ctx=$T/ctx
cp -r "$TOP/examples/go-service" "$ctx"
sed -i 's/hello from/hi from/' "$ctx/main.go"
changed=$("$IMGFS" build --progress plain -t go-service:changed "$ctx" 2>&1) && rc=0 || rc=$?
t_eq "the changed build succeeds" 0 "$rc"
t_check "WORKDIR still comes from the cache" grep -q '^#3 CACHED' <<<"$changed"
t_check_fails "COPY is not cached after the change" grep -q '^#4 CACHED' <<<"$changed"
n=$("$IMGFS" run --rm go-service:changed grep -c "hi from" /go/src/app/app 2>/dev/null || true)
t_check "the rebuilt binary has the change" test "${n:-0}" -ge 1
t_end
