#!/bin/bash
# Private networking does not reach the host's loopback by default: slirp4netns runs with
# --disable-host-loopback, so a service bound to the host's 127.0.0.1 (meant for the host alone)
# is not reachable through 10.0.2.2. `--network private:allow_host_loopback=true` (Podman's
# spelling) turns it back on. The negative checks run in a container that first shows it ran and
# that its private network is up (tap0, the route via 10.0.2.2, a published port answering).
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
t_begin net_loopback
command -v slirp4netns >/dev/null || t_skip "slirp4netns is not installed"
command -v curl >/dev/null || t_skip "curl is not installed"
command -v ss >/dev/null || t_skip "ss (iproute2) is not installed"
t_need_fixture busybox.tar
"$IMGFS" import -q -t busybox "$FIXTURES/busybox.tar"

# a service on the host's loopback only
port=$(t_free_port)
mkdir -p "$T/www"
echo "served by the host" >"$T/www/index.html"
busybox httpd -f -p "127.0.0.1:$port" -h "$T/www" &
server=$!
t_cleanup "kill $server"
t_check "the host's loopback service is up" t_wait_for 400 curl -sf -o /dev/null "http://127.0.0.1:$port/"

# default: the container's network works (a published port answers) but 10.0.2.2 is not the
# host's loopback
pub=$(t_free_port)
"$IMGFS" run -d --name lb -p "127.0.0.1:$pub:8080" busybox sh -c \
    'mkdir /w && echo from the container >/w/i && exec httpd -f -p 8080 -h /w' >/dev/null
t_cleanup "'$IMGFS' rm -f lb"
t_check "default: a published port reaches the container (its network is up)" \
    t_wait_for 400 curl -sf -o /dev/null "http://127.0.0.1:$pub/i"
out=$("$IMGFS" exec lb sh -c "echo ran; ip route | grep -q '^default via 10.0.2.2 dev tap0' && echo route; wget -qO- http://10.0.2.2:$port/ 2>&1 || echo unreachable" 2>&1) || true
t_note "default: $(tr '\n' ' ' <<<"$out")"
t_check "default: the container ran" grep -qx ran <<<"$out"
t_check "default: its default route is 10.0.2.2 on tap0" grep -qx route <<<"$out"
t_check "default: the host's loopback service is not reachable via 10.0.2.2" grep -qx unreachable <<<"$out"
not_served() { ! grep -q 'served by the host' <<<"$out"; }
t_check "default: nothing of the host's service came back" not_served
# the container's slirp4netns: the child of its monitor
our_helper_args() {
    local f mon p
    for f in "$IMGFS_RUN_DIR"/containers/*/state.json; do
        mon=$(jq -r 'select(.name == "lb") | .monitor_pid' "$f")
        [[ -n $mon ]] || continue
        for p in $(pgrep -P "$mon" -x slirp4netns); do tr '\0' ' ' <"/proc/$p/cmdline"; done
    done
}
args=$(our_helper_args)
t_note "the container's slirp4netns: $args"
t_check "the container's slirp4netns runs with --disable-host-loopback" grep -q -- --disable-host-loopback <<<"$args"
"$IMGFS" rm -f lb >/dev/null

# the explicit option turns it back on
out=$("$IMGFS" run --rm --network private:allow_host_loopback=true busybox wget -qO- "http://10.0.2.2:$port/" 2>&1) || true
t_eq "allow_host_loopback=true: the host's loopback service is reachable" "served by the host" "$out"
out=$("$IMGFS" run --rm --network private:allow_host_loopback=false busybox sh -c "echo ran; wget -qO- http://10.0.2.2:$port/ 2>&1 || echo unreachable" 2>&1) || true
t_check "allow_host_loopback=false: the container ran" grep -qx ran <<<"$out"
t_check "allow_host_loopback=false: unreachable" grep -qx unreachable <<<"$out"
out=$("$IMGFS" run --rm --network private:bogus busybox true 2>&1) && rc=0 || rc=$?
t_eq "an unknown network option: exit 125" 125 "$rc"
t_check "... named in the error ($out)" grep -q "unknown network option \`bogus\`" <<<"$out"
t_end
