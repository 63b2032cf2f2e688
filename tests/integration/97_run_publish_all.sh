#!/bin/bash
# -P publishes every port the image EXPOSEs on a free host port (as Docker): busybox httpd behind
# `EXPOSE 8080` is reached with curl on the port `imgfs port` reports; a port also given with -p
# keeps the -p binding; -p without a host port gets a free one too.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
t_begin run_publish_all
t_need_fixture busybox.tar
command -v curl >/dev/null || t_skip "curl is not installed"
"$IMGFS" import -q -t busybox "$FIXTURES/busybox.tar"
mkdir -p "$T/ctx"
printf 'FROM busybox\nEXPOSE 8080\nEXPOSE 9090/udp\n' >"$T/ctx/Dockerfile"
"$IMGFS" build -q -t exposer "$T/ctx" >/dev/null

t_cleanup "'$IMGFS' rm -f pa >/dev/null 2>&1"
"$IMGFS" run -d --name pa -P exposer sh -c 'mkdir /www && echo hello-P >/www/index.html && exec httpd -f -p 8080 -h /www' >/dev/null </dev/null
ports=$("$IMGFS" port pa)
echo "$ports" | sed 's/^/    port: /'
tcp=$(awk '$1 == "8080/tcp" {print $3}' <<<"$ports" | head -n 1)
udp=$(awk '$1 == "9090/udp" {print $3}' <<<"$ports" | head -n 1)
t_check "-P published 8080/tcp on a host port" test -n "$tcp"
t_check "-P published 9090/udp on a host port" test -n "$udp"
hp=${tcp##*:}
t_check "the host port is a port number" test "$hp" -gt 0
t_check "curl reaches httpd through the -P port" \
    t_wait_for 600 bash -c "curl -sf http://127.0.0.1:$hp/ | grep -qx hello-P"
"$IMGFS" rm -f pa >/dev/null

# with -p for one of them: that one keeps its -p host port
p=$(t_free_port)
"$IMGFS" run -d --name pa -P -p "127.0.0.1:$p:8080" exposer sleep 60 >/dev/null </dev/null
t_eq "-p wins for its port" "127.0.0.1:$p" "$("$IMGFS" port pa 8080/tcp)"
t_check "-P still published the other" bash -c "'$IMGFS' port pa | grep -q '^9090/udp'"
"$IMGFS" rm -f pa >/dev/null

# -p CTR and -p IP::CTR: a free host port, as Docker's
"$IMGFS" run -d --name pa -p 8080 -p 127.0.0.1::9090/udp exposer sh -c \
    'mkdir /www && echo hello-p >/www/index.html && exec httpd -f -p 8080 -h /www' >/dev/null </dev/null
hp=$("$IMGFS" port pa 8080/tcp | head -n 1)
hp=${hp##*:}
t_check "-p 8080: published on a host port" test "${hp:-0}" -gt 0
t_check "  ... curl reaches httpd there" \
    t_wait_for 600 bash -c "curl -sf http://127.0.0.1:$hp/ | grep -qx hello-p"
t_check "-p 127.0.0.1::9090/udp: on that address, a host port" \
    grep -Eq '^127\.0\.0\.1:[1-9][0-9]*$' <<<"$("$IMGFS" port pa 9090/udp)"
t_check "ps shows them" grep -q -- "->8080/tcp" <<<"$("$IMGFS" ps --format '{{.Ports}}' -f name=pa)"
t_end
