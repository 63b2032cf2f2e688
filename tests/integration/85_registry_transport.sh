#!/bin/bash
# The registry client's transport, end to end: keep-alive (one TCP connection serves a whole
# one-layer pull: the hostile registry logs each request's client port), and the
# insecure-registries setting for a name that is not loopback. `registry.test` is given the
# address 127.0.0.1 in a private mount namespace whose /etc/hosts is a bind-mounted file of the
# test's (the host's /etc/hosts is never touched): without the setting imgfs speaks verified HTTPS
# to it and fails with a clear error; with IMGFS_INSECURE_REGISTRIES or registries.conf it pulls
# over plain HTTP; a lazy pull remembers that for the mount daemon, which reads without the setting.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
source "$TOP/tests/lib_registry.sh"
t_begin registry_transport
t_need_fixture busybox.tar
command -v python3 >/dev/null || t_skip "python3 not installed"
command -v unshare >/dev/null || t_skip "unshare not installed"
[[ $(id -u) == 0 ]] || t_skip "needs root (a private mount namespace)"
reg_start

quiet() { "$@" >/dev/null 2>&1; }
"$IMGFS" import -q -t app:1 "$FIXTURES/busybox.tar" >/dev/null
t_check "push to the registry" quiet "$IMGFS" push app:1 "$REG/app:1"

# ---- keep-alive: every request of a pull on one connection
"$IMGFS" export -o "$T/app.tar" app:1
mkdir -p "$T/layout"
tar -C "$T/layout" -xf "$T/app.tar"
hostile ok
t_check "pull -j 1 from the hostile registry" quiet env IMGFS_ROOT="$T/ka" "$IMGFS" pull -j 1 "$H/x:1"
requests=$(grep -c ' -> ' "$HLOG")
t_check "  several requests ($requests)" test "$requests" -ge 3
t_eq "  on one connection (distinct client ports)" 1 \
    "$(sed -n 's/.* port=\([0-9]*\) .*/\1/p' "$HLOG" | sort -u | wc -l)"

# ---- a registry by a name that is not loopback
printf '127.0.0.1 localhost\n127.0.0.1 registry.test\n' >"$T/hosts"
# CMD... in a mount namespace of its own where /etc/hosts is $T/hosts
ns() { unshare -m --propagation private sh -c 'mount --bind "$0" /etc/hosts && exec "$@"' "$T/hosts" "$@"; }
NAME=registry.test:$REG_PORT
t_check "the namespace resolves registry.test to 127.0.0.1" \
    ns sh -c "getent hosts registry.test | grep -q '^127.0.0.1'"
t_check "  and the host does not (its /etc/hosts untouched)" sh -c '! getent hosts registry.test'

set +e
out=$(ns env IMGFS_ROOT="$T/secure" "$IMGFS" pull "$NAME/app:1" 2>&1)
rc=$?
set -e
t_eq "without the setting: exit 1" 1 "$rc"
t_check "  a clear error: the registry, plain HTTP, the setting ($(tail -n 1 <<<"$out"))" \
    grep -qE "registry.test:$REG_PORT.*answered HTTPS in plain HTTP.*IMGFS_INSECURE_REGISTRIES" <<<"$out"
t_eq "  nothing stored" "" "$(IMGFS_ROOT=$T/secure "$IMGFS" images -q 2>/dev/null)"
t_eq "  the registry saw no plain HTTP request from it" 0 "$(grep -c '"GET /v2/app/manifests/1' "$REG_DIR/log" || true)"

t_check "IMGFS_INSECURE_REGISTRIES=$NAME: the pull works over HTTP" \
    quiet ns env IMGFS_ROOT="$T/insecure" IMGFS_INSECURE_REGISTRIES="other.test,$NAME" "$IMGFS" pull "$NAME/app:1"
t_eq "  the image's content" "$("$IMGFS" images -q app:1)" \
    "$(IMGFS_ROOT=$T/insecure "$IMGFS" images -q "$NAME/app:1")"
t_check "  the registry served it" grep -q '"GET /v2/app/manifests/1' "$REG_DIR/log"

mkdir -p "$T/config/imgfs"
printf '# test registries\n%s\n' "$NAME" >"$T/config/imgfs/registries.conf"
t_check "registries.conf naming it: the pull works" \
    quiet ns env IMGFS_ROOT="$T/conf" XDG_CONFIG_HOME="$T/config" "$IMGFS" pull "$NAME/app:1"

# a lazy pull with the setting, then reads through a mount made without it: the daemon uses what
# the pull remembered (docs/lazy.md)
cat >"$T/lazy.sh" <<EOF
set -e
trap '"$IMGFS" umount -l "$T/mnt" 2>/dev/null || true' EXIT
IMGFS_INSECURE_REGISTRIES=$NAME "$IMGFS" pull -q --lazy "$NAME/app:1" >/dev/null
mkdir -p "$T/mnt"
"$IMGFS" mount "$NAME/app:1" "$T/mnt"
sha256sum <"$T/mnt/bin/busybox"
"$IMGFS" umount "$T/mnt"
EOF
out=$(ns env IMGFS_ROOT="$T/lazy" bash "$T/lazy.sh")
mkdir -p "$T/ref"
"$IMGFS" mount app:1 "$T/ref"
want=$(sha256sum <"$T/ref/bin/busybox")
"$IMGFS" umount "$T/ref"
t_eq "a lazy pull with the setting, a mount without it: reads fetch over HTTP" "$want" "$out"
t_check "  fetched from the registry (blob ranges)" grep -qE '"GET /v2/app/blobs/sha256:[0-9a-f]+ ' "$REG_DIR/log"
t_end
