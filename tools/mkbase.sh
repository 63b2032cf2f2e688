#!/bin/bash
# tools/mkbase.sh [--cache DIR] [--root STORE] [--imgfs BINARY] [IMAGE...] — make the base images
# offline, from Debian packages, named as on Docker Hub, in an imgfs store.
#
#   debian:bookworm  `debootstrap --variant=minbase bookworm`; Cmd ["bash"]
#   golang:1.19      that plus golang-go (Debian's Go 1.19); /usr/local/go -> /usr/lib/go-1.19,
#                    /go/{src,bin} mode 1777; Env and WorkingDir as the official image:
#                    PATH=/go/bin:/usr/local/go/bin:..., GOLANG_VERSION, GOPATH=/go; Cmd ["bash"]
#   busybox:latest   Debian's busybox-static: /bin/busybox and a link per applet, /etc/passwd
#                    and /etc/group as the official image's; Cmd ["sh"]
#   static:latest    for multi-stage Go images (as distroless/static): CA certificates and tzdata
#                    (the host's Debian packages ca-certificates and tzdata), /etc/passwd with
#                    root, nobody and nonroot (uid 65532), /tmp 1777, /home/nonroot; no shell
#
# IMAGE is one of those names (default: all four). Idempotent and quick: an image already in the
# store is left alone; the rootfs tars are cached (--cache DIR, $IMGFS_BASE_CACHE, default
# /var/cache/imgfs-base), and the test fixtures in $IMGFS_FIXTURES (debian.tar.gz,
# debian-go.tar.gz, see tests/fixtures/make.sh) are used when present instead of running
# debootstrap (which takes minutes and needs the Debian archive: $IMGFS_DEBIAN_MIRROR). The same
# cache gives the same image digests: tars are packed with sorted names, fixed times and numeric
# owners, and golang's extra layer is committed with SOURCE_DATE_EPOCH.
# --root and the binary default to $IMGFS_ROOT and $IMGFS (else `imgfs` next to this script's
# checkout, else in PATH). Must run as root.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TOP=$(cd "$HERE/.." && pwd)
CACHE=${IMGFS_BASE_CACHE:-/var/cache/imgfs-base}
IMGFS=${IMGFS:-}
ROOT_ARGS=()
WANT=()
usage() { sed -n '2,25p' "$0" | sed 's/^# \{0,1\}//'; }
while (($#)); do
    case $1 in
    --cache) CACHE=$2; shift 2 ;;
    --cache=*) CACHE=${1#*=}; shift ;;
    --root) ROOT_ARGS=(--root "$2"); shift 2 ;;
    --root=*) ROOT_ARGS=(--root "${1#*=}"); shift ;;
    --imgfs) IMGFS=$2; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    -*) echo "mkbase.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    *) WANT+=("$1"); shift ;;
    esac
done
((${#WANT[@]})) || WANT=(debian:bookworm golang:1.19 busybox:latest static:latest)
for w in "${WANT[@]}"; do
    case $w in
    debian:bookworm | golang:1.19 | busybox:latest | static:latest) ;;
    busybox | static) ;;
    *) echo "mkbase.sh: unknown base image \`$w\` (debian:bookworm, golang:1.19, busybox:latest, static:latest)" >&2; exit 2 ;;
    esac
done
if [[ -z $IMGFS ]]; then
    if [[ -x $TOP/imgfs ]]; then IMGFS=$TOP/imgfs; else IMGFS=$(command -v imgfs || true); fi
fi
[[ -x $IMGFS ]] || { echo "mkbase.sh: no imgfs binary (build it: make; or --imgfs PATH)" >&2; exit 1; }
if [[ $(id -u) != 0 ]]; then
    echo "mkbase.sh: must run as root (ownership, debootstrap, containers)" >&2
    exit 1
fi
MIRROR=${IMGFS_DEBIAN_MIRROR:-http://deb.debian.org/debian}
FIXTURES=${IMGFS_FIXTURES:-}
EPOCH=1700000000 # 2023-11-14: the time every cached rootfs and committed layer carries
PATH_DEFAULT=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

log() { echo "mkbase: $*" >&2; }
ig() { "$IMGFS" "${ROOT_ARGS[@]}" "$@"; }
have() { ig inspect "$1" >/dev/null 2>&1; }

mkdir -p "$CACHE"
exec 9>"$CACHE/.lock"
flock 9
WORK=$(mktemp -d "$CACHE/.work.XXXXXX")
GOLANG_CTR=""
cleanup() {
    local rc=$?
    [[ -z $GOLANG_CTR ]] || ig rm -f "$GOLANG_CTR" >/dev/null 2>&1 || true
    { grep -F " $WORK/" /proc/mounts || true; } | awk '{print $2}' | sort -r | while read -r m; do
        umount -l "$m" 2>/dev/null || true
    done
    rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT

pack() { # pack DIR FILE: a reproducible tar of DIR
    tar --xattrs --xattrs-include='*' --numeric-owner --sort=name --mtime="@$EPOCH" \
        --clamp-mtime -C "$1" -cf "$2.tmp" .
    mv -f "$2.tmp" "$2"
}

# A debootstrap rootfs: the fixture when there is one, else the cache, else debootstrap.
debian_rootfs() { # debian_rootfs NAME [debootstrap options...] -> prints the tar's path
    local name=$1
    shift
    if [[ -n $FIXTURES && -s $FIXTURES/$name.tar.gz && -f $FIXTURES/$name.tar.gz.ok ]]; then
        echo "$FIXTURES/$name.tar.gz"
        return
    fi
    local f=$CACHE/$name.tar.gz
    if [[ ! -s $f ]]; then
        log "debootstrap bookworm ($name) from $MIRROR: a few minutes"
        local r=$WORK/$name
        debootstrap --variant=minbase "$@" bookworm "$r" "$MIRROR" >"$WORK/$name.log" 2>&1 || {
            tail -n 20 "$WORK/$name.log" >&2
            log "debootstrap failed"
            return 1
        }
        rm -rf "$r"/var/cache/apt/archives/*.deb "$r"/var/lib/apt/lists/* "$r"/var/log/* \
            "$r"/debootstrap
        : >"$r/etc/resolv.conf"
        tar --xattrs --xattrs-include='*' --numeric-owner --sort=name -C "$r" -czf "$f.tmp" .
        mv -f "$f.tmp" "$f"
    fi
    echo "$f"
}

make_debian() {
    have debian:bookworm && return 0
    local tar
    tar=$(debian_rootfs debian)
    log "importing debian:bookworm"
    ig import -q -t debian:bookworm -c "ENV PATH=$PATH_DEFAULT" -c 'CMD ["bash"]' "$tar"
}

make_golang() {
    have golang:1.19 && return 0
    local tar
    tar=$(debian_rootfs debian-go --include=golang-go)
    log "importing golang:1.19"
    local tmp=mkbase-golang-$$
    ig import -q -t "$tmp:rootfs" "$tar"
    # the official image's layout on top: /usr/local/go and GOPATH /go (one small layer)
    local version name=mkbase-golang-$$
    GOLANG_CTR=$name
    version=$(ig run --rm --network none "$tmp:rootfs" cat /usr/lib/go-1.19/VERSION | head -n1)
    version=${version#go}
    [[ -n $version ]] || { log "no Go in the debian-go rootfs"; return 1; }
    ig run --network none --name "$name" "$tmp:rootfs" /bin/sh -c \
        'ln -s /usr/lib/go-1.19 /usr/local/go && mkdir -p /go/src /go/bin && chmod -R 1777 /go &&
         touch -h -d @'"$EPOCH"' /usr/local/go /go /go/src /go/bin /usr/local'
    SOURCE_DATE_EPOCH=$EPOCH ig commit -q \
        -c "ENV PATH=/go/bin:/usr/local/go/bin:$PATH_DEFAULT" -c "ENV GOLANG_VERSION=$version" \
        -c 'ENV GOPATH=/go' -c 'WORKDIR /go' -c 'CMD ["bash"]' "$name" golang:1.19
    ig rm "$name" >/dev/null
    GOLANG_CTR=""
    ig rmi "$tmp:rootfs" >/dev/null
}

make_busybox() {
    have busybox:latest && return 0
    local f=$CACHE/busybox.tar
    if [[ ! -s $f ]]; then
        local r=$WORK/busybox p
        mkdir -p "$r"/{bin,etc,root,tmp,home,usr/sbin,var/spool/mail,var/www}
        chmod 1777 "$r/tmp"
        chmod 0700 "$r/root"
        install -m 0755 /bin/busybox "$r/bin/busybox"
        # every applet a hard link in /bin, as the official image has them
        while read -r p; do
            [[ $p == busybox ]] || ln "$r/bin/busybox" "$r/bin/$p"
        done < <(/bin/busybox --list)
        cat >"$r/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
bin:x:2:2:bin:/bin:/bin/false
sys:x:3:3:sys:/dev:/bin/false
sync:x:4:100:sync:/bin:/bin/sync
mail:x:8:8:mail:/var/spool/mail:/bin/false
www-data:x:33:33:www-data:/var/www:/bin/false
operator:x:37:37:Operator:/var:/bin/false
nobody:x:65534:65534:nobody:/home:/bin/false
EOF
        cat >"$r/etc/group" <<'EOF'
root:x:0:
daemon:x:1:
bin:x:2:
sys:x:3:
adm:x:4:
tty:x:5:
disk:x:6:
wheel:x:10:root
mail:x:8:
www-data:x:33:
operator:x:37:
staff:x:50:
users:x:100:
nogroup:x:65534:
EOF
        pack "$r" "$f"
    fi
    log "importing busybox:latest"
    ig import -q -t busybox:latest -c "ENV PATH=$PATH_DEFAULT" -c 'CMD ["sh"]' "$f"
}

make_static() {
    have static:latest && return 0
    local f=$CACHE/static.tar
    if [[ ! -s $f ]]; then
        local r=$WORK/static p
        mkdir -p "$r"/{etc/ssl/certs,tmp,root,home/nonroot,usr/share,var}
        chmod 1777 "$r/tmp"
        chmod 0700 "$r/root" "$r/home/nonroot"
        chown 65532:65532 "$r/home/nonroot"
        [[ -s /etc/ssl/certs/ca-certificates.crt ]] ||
            { log "the host has no /etc/ssl/certs/ca-certificates.crt (apt-get install ca-certificates)"; return 1; }
        install -m 0644 /etc/ssl/certs/ca-certificates.crt "$r/etc/ssl/certs/ca-certificates.crt"
        # tzdata's files, as the package installed them (not the host's /etc/localtime)
        dpkg -L tzdata >/dev/null 2>&1 || { log "the host has no tzdata package"; return 1; }
        (cd / && dpkg -L tzdata | grep '^/usr/share/zoneinfo/' | while read -r p; do
            [[ -f $p || -L $p ]] && printf '%s\0' "${p#/}"
        done | tar --null -T - -cf -) | tar -C "$r" -xf -
        cat >"$r/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin
nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin
EOF
        cat >"$r/etc/group" <<'EOF'
root:x:0:
nobody:x:65534:
tty:x:5:
staff:x:50:
nonroot:x:65532:
EOF
        printf 'hosts: files dns\n' >"$r/etc/nsswitch.conf"
        printf 'PRETTY_NAME="imgfs static base (Debian ca-certificates, tzdata)"\nID=static\n' \
            >"$r/etc/os-release"
        pack "$r" "$f"
    fi
    log "importing static:latest"
    ig import -q -t static:latest -c "ENV PATH=$PATH_DEFAULT" \
        -c 'ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt' "$f"
}

for w in "${WANT[@]}"; do
    case $w in
    debian:bookworm) make_debian ;;
    golang:1.19) make_golang ;;
    busybox | busybox:latest) make_busybox ;;
    static | static:latest) make_static ;;
    esac
done
