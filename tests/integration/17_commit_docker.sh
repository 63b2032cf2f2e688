#!/bin/bash
# `imgfs commit` against `docker commit` (Debian's docker.io, a private dockerd started here): the
# same changes made in a container of the same image give a new layer with the same entries —
# names, whiteouts, opaque markers, types, modes, owners, sizes, symlink and hardlink targets —
# and the same content. Only the times differ (Docker keeps the deletion time on whiteouts; and
# the changes are made at different moments), so they are not compared.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
t_begin commit_docker
t_need_fixture busybox.tar

t_check "a private dockerd (tests/lib.sh t_dockerd)" t_dockerd
D import "$FIXTURES/busybox.tar" base:1 >/dev/null
"$IMGFS" import -q -t base:1 "$FIXTURES/busybox.tar"

# /etc/hosts, /etc/hostname and /etc/resolv.conf are mount points in both: not touched
changes='set -e
echo hello > /etc/motd
echo more >> /etc/group
rm /etc/os-release
rm -r /home/app
rm -r /var/log && mkdir /var/log && echo new > /var/log/new
rm /etc/passwd && mkdir /etc/passwd && echo x > /etc/passwd/inside
ln -s ../etc/passwd /lnk
ln /etc/motd /hard
chmod 4755 /hard
mkdir -p /new/deep && echo deep > /new/deep/f && chown 1000:1000 /new/deep/f
mkfifo /new/fifo'
D run --network none --name c1 base:1 sh -c "$changes"
t_cleanup "D rm -f c1"
D commit c1 committed:1 >/dev/null
D save -o "$T/docker.tar" committed:1
"$IMGFS" run --network none --name c1 base:1 sh -c "$changes"
"$IMGFS" commit -q c1 committed:1
"$IMGFS" export -f docker -o "$T/imgfs.tar" committed:1

top_layer() { # ARCHIVE DIR: the newest layer of a docker-save archive, unpacked into DIR
    mkdir -p "$2/save" "$2/layer"
    tar -xf "$1" -C "$2/save"
    local l
    l=$(jq -r '.[0].Layers[-1]' "$2/save/manifest.json")
    tar --numeric-owner -tvf "$2/save/$l" | awk '{ $4 = ""; $5 = ""; print }' | LC_ALL=C sort -k4
    tar --numeric-owner -xpf "$2/save/$l" -C "$2/layer"
}
top_layer "$T/docker.tar" "$T/dk" >"$T/dk.list"
top_layer "$T/imgfs.tar" "$T/im" >"$T/im.list"
t_check "docker's layer has whiteouts and opaque markers" \
    grep -q 'home/.wh.app$' "$T/dk.list"
t_check "the same entries, types, modes, owners and sizes as docker's layer" \
    diff -u "$T/dk.list" "$T/im.list"
sums() { (cd "$1" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum); }
t_eq "the same content" "$(sums "$T/dk/layer")" "$(sums "$T/im/layer")"
t_eq "both have one layer more than the base" \
    "$(jq '.[0].Layers | length' "$T/dk/save/manifest.json")" \
    "$(jq '.[0].Layers | length' "$T/im/save/manifest.json")"
t_end
