#!/bin/bash
# examples/demo.sh — imgfs end to end, from Debian packages only: make a Debian bookworm (minbase)
# rootfs with debootstrap, import it into a store, look at it, mount it read-only through FUSE, read
# files through the mount, and unmount. Run as root from the top of the tree after `make`:
#
#   make deps && make && sudo ./examples/demo.sh
#
# The rootfs tarball is cached in tests/out/fixtures (shared with the tests); the demo's store is
# /var/tmp/imgfs-demo (override with IMGFS_ROOT), so your default store is left alone.
set -euo pipefail

TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
IMGFS=${IMGFS:-$TOP/imgfs}
export IMGFS_ROOT=${IMGFS_ROOT:-/var/tmp/imgfs-demo}
FIXTURES=${IMGFS_FIXTURES:-$TOP/tests/out/fixtures}
MNT=$(mktemp -d /tmp/imgfs-demo-mnt.XXXXXX)

if [[ $(id -u) != 0 ]]; then
    echo "demo.sh: run as root (debootstrap and FUSE mounts need it): sudo $0" >&2
    exit 1
fi
if [[ ! -x $IMGFS ]]; then
    echo "demo.sh: $IMGFS is not built: run make first" >&2
    exit 1
fi
cleanup() {
    if mountpoint -q "$MNT"; then "$IMGFS" umount "$MNT" 2>/dev/null || umount -l "$MNT"; fi
    rmdir "$MNT" 2>/dev/null || true
}
trap cleanup EXIT

# print a command (shell-quoted, bold on a terminal), then run it
step() {
    local b='' n=''
    [[ -t 1 ]] && b=$'\033[1m' n=$'\033[0m'
    printf '\n%s$' "$b"
    printf ' %q' "$@"
    printf '%s\n' "$n"
    "$@"
}

echo "== 1. a Debian bookworm rootfs from Debian packages (debootstrap --variant=minbase; cached)"
"$TOP/tests/fixtures/make.sh" "$FIXTURES"
ls -lh "$FIXTURES/debian.tar.gz"

echo
echo "== 2. import it into the store at $IMGFS_ROOT"
step "$IMGFS" import -t demo/debian:bookworm "$FIXTURES/debian.tar.gz"
step "$IMGFS" images
step "$IMGFS" inspect demo/debian:bookworm
step "$IMGFS" du

echo
echo "== 3. mount it read-only: nothing is unpacked, file content is served from the store's chunks"
step "$IMGFS" mount demo/debian:bookworm "$MNT"
step ls -l "$MNT"
step cat "$MNT/etc/os-release"
step stat -c '%A %U:%G %s %n' "$MNT/usr/bin/bash" "$MNT/etc/shadow"
step sh -c "find '$MNT' | wc -l"
step sh -c "touch '$MNT/etc/new-file' 2>&1 || true"   # read-only
step sha256sum "$MNT/usr/bin/bash"

if "$IMGFS" run --help >/dev/null 2>&1; then
    echo
    echo "== 4. run a container on the same image (overlayfs upper over the FUSE mount)"
    step "$IMGFS" run --rm demo/debian:bookworm cat /etc/debian_version || true
fi

echo
echo "== unmount"
step "$IMGFS" umount "$MNT"
step "$IMGFS" fsck
echo
echo "Done. The store stays in $IMGFS_ROOT (remove it with: rm -rf $IMGFS_ROOT)."
