#!/bin/bash
# The README's main job, end to end: examples/go-service.sh compiles the Go service, makes its image,
# runs it with a published port and reaches it over HTTP; afterwards nothing of it is left running.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
t_begin go_service
[[ $(basename "$IMGFS") == imgfs ]] || t_skip "the example is the same code path as 50_run_*; run once"

used=" $(ss -Htan | awk '{print $4}' | sed 's/.*://' | tr '\n' ' ') "
port=20000
while [[ $used == *" $port "* ]]; do port=$((port + 1)); done
out=$(PORT=$port IMGFS=$IMGFS "$TOP/examples/go-service.sh" 2>&1) && rc=0 || rc=$?
t_eq "examples/go-service.sh succeeds" 0 "$rc"
t_check "the service answered through the published port" grep -q "^hello from " <<<"$out"
t_check "its log shows it listening" grep -q "listening on :8080" <<<"$out"
t_check "the image has the service's config" \
    test "$("$IMGFS" inspect --json go-service | jq -r '.[0].Config.config.Entrypoint[0]')" = /app/server
t_eq "no container left" "" "$("$IMGFS" ps -a -q 2>/dev/null || "$IMGFS" ps -a | tail -n +2)"
t_check_fails "the port is closed again" curl -fsS --max-time 2 "http://127.0.0.1:$port/"
t_end
