#!/bin/bash
# -p: busybox httpd in a default (private, slirp4netns) container reached with curl from the host,
# published both as 127.0.0.1:HOST:CTR (loopback only) and HOST:CTR (every address); the listener
# goes away with the container, also when its monitor is killed; a port already taken and bad specs
# are clean errors with nothing left behind. Only 127.0.0.0/8 is ever contacted.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
t_begin net_publish
command -v slirp4netns >/dev/null || t_skip "slirp4netns is not installed"
command -v curl >/dev/null || t_skip "curl is not installed"
command -v ss >/dev/null || t_skip "ss (iproute2) is not installed"

"$IMGFS" import -t busybox "$FIXTURES/busybox.tar" >/dev/null

free_port() { # a TCP port nothing listens on now (ss from iproute2; no python needed)
    local p
    while :; do
        p=$((20000 + RANDOM % 40000))
        ss -Hltn "sport = :$p" | grep -q . || { echo "$p"; return; }
    done
}
# state.json field of a container, by name
ctr_field() {
    local f
    for f in "$IMGFS_RUN_DIR"/containers/*/state.json; do
        jq -r --arg n "$1" --arg k "$2" 'select(.name == $n) | .[$k]' "$f"
    done
}
listening() { ss -Hltn "sport = :$1" | grep -q .; }
not_listening() { ! listening "$1"; }

p1=$(free_port)
p2=$(free_port)
while [[ $p2 == "$p1" ]]; do p2=$(free_port); done

# Two httpds in one container: 80 published on 127.0.0.1 only, 8080 on every address.
"$IMGFS" run -d --name web -p "127.0.0.1:$p1:80" -p "$p2:8080/tcp" busybox sh -c \
    'mkdir -p /www && echo "hello from $(hostname)" >/www/index.html &&
     head -c 1048576 /dev/urandom >/www/big && sha256sum /www/big >/www/big.sha &&
     httpd -p 80 -h /www && exec httpd -f -p 8080 -h /www' >/dev/null
t_cleanup "\"$IMGFS\" rm -f web"
host=$(ctr_field web id | cut -c1-12)

t_check "127.0.0.1:$p1:80 answers" t_wait_for 400 curl -sf -o /dev/null "http://127.0.0.1:$p1/"
t_eq "it is the container's httpd" "hello from $host" "$(curl -sf "http://127.0.0.1:$p1/")"
t_check "$p2:8080 answers" t_wait_for 400 curl -sf -o /dev/null "http://127.0.0.1:$p2/"
t_eq "same content on the second port" "hello from $host" "$(curl -sf "http://127.0.0.1:$p2/")"
t_check "the IP form listens on 127.0.0.1 only" \
    bash -c "ss -Hltn 'sport = :$p1' | awk '{print \$4}' | grep -qx '127.0.0.1:$p1'"
t_check "the plain form listens on every address" \
    bash -c "ss -Hltn 'sport = :$p2' | awk '{print \$4}' | grep -qE '^(0\.0\.0\.0|\*|\[::\]):$p2\$'"
t_check "a 1 MiB file comes through intact" bash -c "
    curl -sf 'http://127.0.0.1:$p1/big.sha' | awk '{print \$1}' >'$T/want' && test -s '$T/want' &&
    curl -sf 'http://127.0.0.1:$p1/big' | sha256sum | awk '{print \$1}' | diff - '$T/want'"
t_check_fails "an unpublished port is closed" curl -sf --max-time 5 "http://127.0.0.1:$((p1 == 65535 ? p1 - 1 : p1 + 1))/"

# A second container cannot take a published port: imgfs's own failure, a message naming the port,
# and nothing running for it afterwards.
out=$("$IMGFS" run --name clash -p "127.0.0.1:$p1:80" busybox true 2>&1) && rc=0 || rc=$?
t_cleanup "\"$IMGFS\" rm -f clash"
t_eq "publishing a taken port fails with 125" 125 "$rc"
t_check "the error names the port ($out)" grep -q "$p1" <<<"$out"
t_check "the first container still serves" curl -sf -o /dev/null "http://127.0.0.1:$p1/"
t_check "the failed container left nothing behind" \
    bash -c "! \"$IMGFS\" ps -a --json | jq -e '.[] | select(.name == \"clash\")' >/dev/null"
t_eq "only web's slirp4netns serves $p1" 1 "$(ss -Hltnp "sport = :$p1" | grep -c slirp4netns)"

# Bad specs: refused before anything starts.
# (`-p 80` alone is Docker's random host port: 97_run_publish_all)
for spec in 0:80 70000:80 8080:80/sctp "a.b.c.d:8080:80" "8000-8010:80"; do
    out=$("$IMGFS" run --rm -p "$spec" busybox true 2>&1) && rc=0 || rc=$?
    t_eq "-p $spec is refused (125)" 125 "$rc"
done
t_check "the error says what a port spec is" grep -q "HOST:CTR\|port" <<<"$out"
out=$("$IMGFS" run --rm -p "[::1]:$p1:80" busybox true 2>&1) && rc=0 || rc=$?
t_eq "an IPv6 host address is refused (125)" 125 "$rc"
t_check "... saying why ($out)" grep -q "IPv6" <<<"$out"

# The listener ends with the container.
t_check "stop" bash -c "\"$IMGFS\" stop -t 5 web >/dev/null"
t_check "port $p1 closed after stop" t_wait_for 400 not_listening "$p1"
t_check "port $p2 closed after stop" t_wait_for 400 not_listening "$p2"
t_check_fails "curl fails after stop" curl -sf --max-time 5 "http://127.0.0.1:$p1/"

# ... also when its monitor is killed outright: slirp4netns watches the monitor's exit pipe.
"$IMGFS" run -d --name orphan -p "127.0.0.1:$p1:80" busybox httpd -f -p 80 -h / >/dev/null
t_cleanup "\"$IMGFS\" rm -f orphan"
t_check "orphan's port answers" t_wait_for 400 listening "$p1"
monitor=$(ctr_field orphan monitor_pid)
helper=$(pgrep -P "$monitor" -x slirp4netns || true) # the monitor's child
t_check "orphan has a slirp4netns ($helper)" test -n "$helper"
t_check "kill -9 the monitor ($monitor)" kill -9 "$monitor"
t_check "slirp4netns exits with it" t_wait_for 400 bash -c "! kill -0 $helper"
t_check "orphan's port is closed" t_wait_for 400 not_listening "$p1"
t_end
