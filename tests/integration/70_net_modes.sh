#!/bin/bash
# --network none|host|private: none has only `lo` (up, working); host sees the host's interfaces
# and loopback; private (the default) has lo + tap0 (10.0.2.100, default route via 10.0.2.2, DNS at
# 10.0.2.3), an outbound path to a server this test starts on the host's 127.0.0.1 (through
# 10.0.2.2, with allow_host_loopback=true), but not the host's own loopback; two private containers do not share a network. Only
# 127.0.0.0/8 and addresses inside the containers' own namespaces are ever contacted.
# (busybox wget -T segfaults in busybox-static 1.35, host included: no -T here; every failing
# connection below is refused at once, none waits.)
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
t_begin net_modes
command -v slirp4netns >/dev/null || t_skip "slirp4netns is not installed"
command -v curl >/dev/null || t_skip "curl is not installed"
command -v ss >/dev/null || t_skip "ss (iproute2) is not installed"

"$IMGFS" import -t busybox "$FIXTURES/busybox.tar" >/dev/null
run() { "$IMGFS" run --rm "$@"; }
ifaces() { awk -F: 'NR > 2 {gsub(/ /, "", $1); print $1}' | sort | tr '\n' ' '; }
free_port() { # a TCP port nothing listens on now (ss from iproute2; no python needed)
    local p
    while :; do
        p=$((20000 + RANDOM % 40000))
        ss -Hltn "sport = :$p" | grep -q . || { echo "$p"; return; }
    done
}

# A server on the host's loopback only, for the outbound path.
port=$(free_port)
mkdir -p "$T/www"
echo "served by the host" >"$T/www/index.html"
busybox httpd -f -p "127.0.0.1:$port" -h "$T/www" &
server=$!
t_cleanup "kill $server"
t_check "the host's test server is up" t_wait_for 400 curl -sf -o /dev/null "http://127.0.0.1:$port/"

# --network none
t_eq "none: only lo" "lo " "$(run --network none busybox cat /proc/net/dev | ifaces)"
t_check "none: lo is up" bash -c "\"$IMGFS\" run --rm --network none busybox ip -o link show lo |
    grep -q '<.*UP.*>'"
t_eq "none: loopback works inside" "loop ok" "$(run --network none busybox sh -c \
    'mkdir /w && echo loop ok >/w/i && httpd -p 127.0.0.1:81 -h /w && wget -qO- http://127.0.0.1:81/i')"
t_check_fails "none: no route out" run --network none busybox wget -qO- "http://10.0.2.2:$port/"

# --network host
# (compared a few times: another test on this machine may add or remove a host interface meanwhile)
same_ifaces() { [[ "$(run --network host busybox cat /proc/net/dev | ifaces)" == "$(ifaces </proc/net/dev)" ]]; }
t_check "host: the host's interfaces ($(ifaces </proc/net/dev))" t_wait_for 5 same_ifaces
t_check "host: more than lo" test "$(run --network host busybox cat /proc/net/dev | ifaces)" != "lo "
t_eq "host: the host's loopback server is reachable on 127.0.0.1" "served by the host" \
    "$(run --network host busybox wget -qO- "http://127.0.0.1:$port/")"

# --network private (the default)
t_eq "private: lo and tap0" "lo tap0 " "$(run busybox cat /proc/net/dev | ifaces)"
t_eq "private is the default and can be named" "lo tap0 " \
    "$(run --network private busybox cat /proc/net/dev | ifaces)"
t_check "private: tap0 has 10.0.2.100/24" bash -c "\"$IMGFS\" run --rm busybox ip -o -4 addr show tap0 |
    grep -q 'inet 10.0.2.100/24'"
t_check "private: default route via 10.0.2.2" bash -c "\"$IMGFS\" run --rm busybox ip route |
    grep -q '^default via 10.0.2.2 dev tap0'"
t_check "private: lo is up" bash -c "\"$IMGFS\" run --rm busybox ip -o link show lo | grep -q '<.*UP.*>'"
t_eq "private: resolv.conf names slirp4netns's DNS" "nameserver 10.0.2.3" \
    "$(run busybox grep nameserver /etc/resolv.conf)"
# (the host's loopback is the only outbound target on this machine: it takes the opt-in,
# 70_net_loopback.sh checks that the default refuses it)
lb=private:allow_host_loopback=true
t_eq "private: outbound to the host's 127.0.0.1 via 10.0.2.2" "served by the host" \
    "$(run --network $lb busybox wget -qO- "http://10.0.2.2:$port/")"
t_check_fails "private: the host's loopback is not the container's" \
    run busybox wget -qO- "http://127.0.0.1:$port/"
t_eq "private: loopback works inside" "loop ok" "$(run busybox sh -c \
    'mkdir /w && echo loop ok >/w/i && httpd -p 127.0.0.1:81 -h /w && wget -qO- http://127.0.0.1:81/i')"
t_check "private: a large download through slirp4netns is intact" bash -c "
    head -c 4194304 /dev/urandom >'$T/www/big' &&
    \"$IMGFS\" run --rm --network $lb busybox sh -c 'wget -qO- http://10.0.2.2:$port/big | sha256sum' |
        awk '{print \$1}' >'$T/got' && sha256sum '$T/www/big' | awk '{print \$1}' | diff - '$T/got'"

# Two private containers do not share a network: one listens on its loopback, the other can't see it.
"$IMGFS" run -d --name a busybox sh -c 'mkdir /w && echo a >/w/i && exec httpd -f -p 8080 -h /w' \
    >/dev/null
t_cleanup "\"$IMGFS\" rm -f a"
netns() { readlink "/proc/$1/ns/net"; }
pid_a=$(jq -r 'select(.name == "a") | .init_pid' "$IMGFS_RUN_DIR"/containers/*/state.json)
# /proc/PID/net/tcp{,6} list the sockets of PID's network namespace: a's listener, seen from the host
t_check "a listens on 8080 in its own namespace" t_wait_for 400 bash -c \
    "cat /proc/$pid_a/net/tcp /proc/$pid_a/net/tcp6 | awk '\$2 ~ /:1F90\$/ && \$4 == \"0A\"' | grep -q ."
t_check_fails "b does not see a's port" run busybox wget -qO- http://127.0.0.1:8080/i
t_check_fails "nor at the shared guest address" run busybox wget -qO- http://10.0.2.100:8080/i
t_check "a's init has its own net namespace" test "$(netns "$pid_a")" != "$(netns $$)"

# An init that fails early (here: -w names a file) takes its namespace along while slirp4netns is
# starting on it: the user must see the init's error, not the network's.
for i in 1 2 3 4 5; do
    "$IMGFS" run --rm -w /etc/passwd busybox true 2>>"$T/wd.err" && echo "ran?" >>"$T/wd.err" || true
done
t_eq "a bad -w is reported as such, every time" 5 "$(grep -c "working directory" "$T/wd.err")"
t_check "... never as a network failure" bash -c "! grep -q network '$T/wd.err'"

# Without ports the command starts once the namespace is configured (tap0, address, route) and the
# helper's last steps run beside it (net.h). A helper that configures the namespace and then dies
# without saying it is ready must still fail the container: a fake slirp4netns that configures the
# namespace with ip(8), waits until the container's command has run (it writes to a FIFO) and
# exits. Foreground: the command ran, then exit 125 with the helper's words; -d: the same, and no
# container is left.
if command -v ip >/dev/null && command -v nsenter >/dev/null; then
    mkdir -p "$T/fakebin" "$T/fifo"
    mkfifo "$T/fifo/f"
    cat >"$T/fakebin/slirp4netns" <<'FAKE'
#!/bin/sh
nsenter --net=/proc/self/fd/5 sh -c 'ip tuntap add dev tap0 mode tap && ip link set tap0 up &&
    ip addr add 10.0.2.100/24 dev tap0 && ip route add default via 10.0.2.2 dev tap0' || exit 2
read -r line <"$FAKE_FIFO"
echo "fake helper: gave up after the command said: $line" >&2
exit 1
FAKE
    chmod +x "$T/fakebin/slirp4netns"
    fake() { FAKE_FIFO=$T/fifo/f PATH=$T/fakebin:$PATH "$IMGFS" run -v "$T/fifo:/v" "$@"; }
    out=$(fake --rm busybox sh -c 'echo ran >/v/f; sleep 30' 2>&1) && rc=0 || rc=$?
    t_eq "a helper dying after the command started: exit 125" 125 "$rc"
    t_check "... after the command ran, saying why ($out)" \
        grep -q "slirp4netns did not get ready: fake helper: gave up after the command said: ran" \
        <<<"$out"
    out=$(fake -d --name fake busybox sh -c 'echo ran >/v/f; sleep 30' 2>&1) && rc=0 || rc=$?
    t_eq "-d: the same is exit 125" 125 "$rc"
    t_check "... saying why ($out)" grep -q "gave up after the command said: ran" <<<"$out"
    t_check "... and leaves no container" bash -c "! \"$IMGFS\" ps -a --format '{{.Names}}' | grep -qx fake"
else
    t_note "ip or nsenter missing: the helper-dies-late check is skipped"
fi

# Without slirp4netns (an empty PATH), private networking is a clear error; none still works.
mkdir -p "$T/emptybin"
out=$(PATH=$T/emptybin "$IMGFS" run --rm busybox true 2>&1) && rc=0 || rc=$?
t_eq "no slirp4netns: exit 125" 125 "$rc"
t_check "... saying so ($out)" grep -q "slirp4netns is not installed" <<<"$out"
t_check "... and --network none still runs" env PATH="$T/emptybin" "$IMGFS" run --rm --network none busybox true

t_check "an unknown mode is refused" bash -c "! \"$IMGFS\" run --rm --network bogus busybox true 2>'$T/err'"
t_check "... naming it" grep -q bogus "$T/err"
t_end
