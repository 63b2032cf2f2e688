#!/bin/bash
# tools/mkbase.sh: the offline base images (debian:bookworm, golang:1.19, busybox:latest,
# static:latest) made from the fixtures and Debian packages, with the official images' configs;
# a second run is a no-op; an image made again from the cache has the same digest.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
t_begin mkbase
t_need_fixture debian.tar.gz debian-go.tar.gz
MK=$TOP/tools/mkbase.sh
export IMGFS_FIXTURES=$FIXTURES
cache=$T/cache

all=(debian:bookworm golang:1.19 busybox:latest static:latest)
if ((IMGFS_ASAN)); then
    # importing 700 MB of Debian under ASan takes minutes and drives the same code as 10_import
    t_note "ASan pass: busybox and static only"
    all=(busybox:latest static:latest)
fi
t_check "mkbase makes the images" "$MK" --cache "$cache" --imgfs "$IMGFS" "${all[@]}"
for i in "${all[@]}"; do
    t_check "$i is in the store" "$IMGFS" inspect "$i" >/dev/null
done
before=$("$IMGFS" images --quiet)
out=$("$MK" --cache "$cache" --imgfs "$IMGFS" "${all[@]}" 2>&1)
t_eq "a second run does nothing" "" "$out"
t_eq "and changes no image" "$before" "$("$IMGFS" images --quiet)"

cfg() { # IMAGE JQ: a field of the image's config, from an OCI export
    rm -rf "$T/x" && mkdir "$T/x"
    "$IMGFS" export -o "$T/x.tar" "$1" && tar -xf "$T/x.tar" -C "$T/x"
    local m c
    m=$(jq -r '.manifests[0].digest' "$T/x/index.json" | sed 's/sha256://')
    c=$(jq -r '.config.digest' "$T/x/blobs/sha256/$m" | sed 's/sha256://')
    jq -c "$2" "$T/x/blobs/sha256/$c"
}
t_eq "busybox: Cmd" '["sh"]' "$(cfg busybox:latest .config.Cmd)"

run() { "$IMGFS" run --rm --network none "$@"; }
t_eq "busybox: the default command is sh" "busybox ok" \
    "$(echo 'echo busybox ok' | "$IMGFS" run --rm -i --network none busybox:latest)"

if ((!IMGFS_ASAN)); then
    t_eq "golang: the official image's Env" \
        '["PATH=/go/bin:/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin","GOLANG_VERSION=1.19.8","GOPATH=/go"]' \
        "$(cfg golang:1.19 .config.Env)"
    t_eq "golang: WorkingDir and Cmd" '["/go",["bash"]]' "$(cfg golang:1.19 '[.config.WorkingDir, .config.Cmd]')"
    t_eq "debian: Cmd" '["bash"]' "$(cfg debian:bookworm .config.Cmd)"
    t_eq "golang: go on PATH, GOPATH and GOROOT" \
        $'go version go1.19.8 linux/amd64\n/go\n/usr/lib/go-1.19\n/go' \
        "$(run golang:1.19 sh -c 'go version; go env GOPATH GOROOT; pwd')"
    t_eq "golang: /usr/local/go/bin/go is Go too" "go version go1.19.8 linux/amd64" \
        "$(run golang:1.19 /usr/local/go/bin/go version)"
    t_eq "golang: GOPATH dirs writable by anyone" "1777 1777" \
        "$(run golang:1.19 stat -c %a /go/src /go/bin | tr '\n' ' ' | sed 's/ $//')"
    t_eq "debian: minbase bookworm" "12" "$(run debian:bookworm cut -d. -f1 /etc/debian_version)"
fi

mkdir "$T/static"
t_cleanup "umount -l '$T/static'"
"$IMGFS" mount static:latest "$T/static"
t_check "static: CA certificates" grep -q "BEGIN CERTIFICATE" "$T/static/etc/ssl/certs/ca-certificates.crt"
t_check "static: tzdata" test -s "$T/static/usr/share/zoneinfo/Europe/Berlin"
t_eq "static: the nonroot user" "nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin" \
    "$(grep '^nonroot:' "$T/static/etc/passwd")"
t_eq "static: /tmp 1777, /home/nonroot owned by it" "1777 65532" \
    "$(stat -c %a "$T/static/tmp") $(stat -c %u "$T/static/home/nonroot")"
t_check_fails "static: no shell" test -e "$T/static/bin/sh"
umount "$T/static"

# reproducible from the cache (golang's extra layer: a commit with SOURCE_DATE_EPOCH, 15_commit)
for i in busybox:latest static:latest; do
    d=$("$IMGFS" inspect "$i" | awk '/^Digest:/ {print $2}')
    "$IMGFS" rmi "$i" >/dev/null
    "$MK" --cache "$cache" --imgfs "$IMGFS" "$i" 2>/dev/null
    t_eq "$i made again has the same digest" "$d" "$("$IMGFS" inspect "$i" | awk '/^Digest:/ {print $2}')"
done
t_eq "no container left" "" "$("$IMGFS" ps -a -q)"
rc=0
"$MK" --cache "$cache" --imgfs "$IMGFS" nosuch:image 2>/dev/null || rc=$?
t_eq "an unknown base image is a usage error" 2 "$rc"
t_end
