#!/bin/bash
# Layers from an overlayfs upper directory (fs/layerbuild.h, layer_from_upper) through `imgfs
# commit`: a container on a mounted image adds, modifies and deletes files and directories,
# replaces a directory by an opaque one and a file by a directory, makes a symlink, a hardlink, a
# setuid file and a sparse file; its upper directory becomes one layer. The committed image,
# mounted, must equal the same changes applied to an unpacked copy of the image (compare-trees),
# umoci must unpack the exported image to the same tree (it reads our whiteouts), export/import
# must keep the digest, and two containers making the same changes must commit, with
# SOURCE_DATE_EPOCH, to the same digest.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
t_begin commit_upper
t_need_fixture debian.tar.gz
COMPARE=$TOP/tests/compare-trees.sh

"$IMGFS" import -q -t base "$FIXTURES/debian.tar.gz"

# Every change a layer can hold. The mtimes of what changes are set, so the container's tree and
# the reference tree (the same script, chrooted, on the host) can be compared to the nanosecond.
changes='set -e
echo hello > /etc/motd.new
echo changed >> /etc/issue
rm /etc/debian_version
rm -r /etc/apt/apt.conf.d
rm -r /usr/share/doc && mkdir /usr/share/doc && echo only > /usr/share/doc/only
rm /etc/issue.net && mkdir /etc/issue.net && echo inside > /etc/issue.net/inside
ln -s ../etc/passwd /lnk
ln /etc/motd.new /hardlink
chmod 4755 /hardlink
mkdir -p /new/deep/dir && echo deep > /new/deep/dir/f && chown 1234:5678 /new/deep/dir/f
dd if=/dev/zero of=/sparse bs=1 count=0 seek=10M status=none && echo end >> /sparse
touch -h -d @1000000000 /etc /etc/motd.new /etc/issue /etc/apt /usr/share /usr/share/doc \
    /usr/share/doc/only /etc/issue.net /etc/issue.net/inside /lnk /new /new/deep /new/deep/dir \
    /new/deep/dir/f /sparse'

# the reference: the image unpacked, the same changes applied by its own shell
mkdir "$T/expect"
tar --xattrs --xattrs-include='*' --numeric-owner -xpzf "$FIXTURES/debian.tar.gz" -C "$T/expect"
touch -r "$T/expect" "$T/rootstamp"
chroot "$T/expect" /bin/sh -c "$changes"
touch -r "$T/rootstamp" "$T/expect" # the root's own attributes are not part of a layer
# debian's minbase has no setfattr: the xattr is set from the host, on the upper directory
setfattr -n user.note -v "kept" "$T/expect/etc/motd.new"

upper_of() { # the upper directory of container NAME
    local id
    for d in "$IMGFS_RUN_DIR"/containers/*/; do
        id=$(basename "$d")
        if jq -e --arg n "$1" '.name == $n' "$d/state.json" >/dev/null 2>&1; then
            echo "$IMGFS_RUN_DIR/containers/$id/upper"
            return
        fi
    done
    return 1
}
"$IMGFS" run --network none --name c1 base /bin/sh -c "$changes"
u1=$(upper_of c1)
t_check "the container's upper holds a whiteout device" test -c "$u1/etc/debian_version"
t_eq "and an opaque directory" "y" "$(getfattr --only-values -n trusted.overlay.opaque "$u1/usr/share/doc")"
setfattr -n user.note -v "kept" "$u1/etc/motd.new"

out=$("$IMGFS" commit -m "the changes" -a "Jane <jane@example.com>" \
    -c 'CMD ["cat", "/etc/motd.new"]' -c 'ENV COMMITTED=1' c1 committed:1)
t_check "commit prints the image digest" grep -qE '^sha256:[0-9a-f]{64}$' <<<"$out"
t_check "the image is listed" sh -c "'$IMGFS' images | grep -q '^committed *1 '"
layers=$("$IMGFS" inspect committed:1 | awk '/^Layers:/ {on = 1; next} on && /sha256:/ {n++} END {print n}')
t_eq "one layer on the base" 2 "$layers"

mkdir "$T/mnt"
t_cleanup "umount -l '$T/mnt'"
"$IMGFS" mount committed:1 "$T/mnt"
t_check "the committed image equals the changes applied by hand" "$COMPARE" "$T/expect" "$T/mnt"
t_check "the sparse file kept its hole" test "$(stat -c %b "$T/mnt/sparse")" -lt 1000
umount "$T/mnt"

t_eq "the new image runs with the committed config" "hello" \
    "$("$IMGFS" run --rm --network none committed:1)"
t_eq "its env has the change" "1" \
    "$("$IMGFS" run --rm --network none committed:1 /bin/sh -c 'echo $COMMITTED')"
t_eq "deleted files stay deleted in a container" "gone gone" \
    "$("$IMGFS" run --rm --network none committed:1 /bin/sh -c \
        'test -e /etc/debian_version || printf gone; test -e /etc/apt/apt.conf.d || printf " gone"')"
"$IMGFS" export -f oci -o "$T/img.tar" committed:1
mkdir "$T/layout"
tar -xf "$T/img.tar" -C "$T/layout"
cfg=$(jq -r '.manifests[0].digest' "$T/layout/index.json" | sed 's/sha256://')
cfg=$(jq -r '.config.digest' "$T/layout/blobs/sha256/$cfg" | sed 's/sha256://')
t_eq "history: message and author" "the changes|Jane <jane@example.com>" \
    "$(jq -r '.history[-1] | "\(.comment)|\(.author)"' "$T/layout/blobs/sha256/$cfg")"

# other tools read the whiteouts and opaque markers the same way
t_check "umoci unpacks the export" umoci unpack --image "$T/layout:1" "$T/bundle" >/dev/null
t_check "umoci's tree equals the reference" "$COMPARE" "$T/expect" "$T/bundle/rootfs"
t_check "skopeo reads the archive" skopeo inspect --raw "oci-archive:$T/img.tar:1" >/dev/null
t_eq "export and import keep the digest" "$out" "$("$IMGFS" import -t again:1 "$T/img.tar")"

# reproducible: the same changes in another container give the same image
"$IMGFS" run --network none --name c2 base /bin/sh -c "$changes"
setfattr -n user.note -v "kept" "$(upper_of c2)/etc/motd.new"
d1=$(SOURCE_DATE_EPOCH=1000000000 "$IMGFS" commit c1 repro:1)
d2=$(SOURCE_DATE_EPOCH=1000000000 "$IMGFS" commit c2 repro:2)
t_eq "two containers, the same changes: the same digest" "$d1" "$d2"

# errors
rc=0
msg=$("$IMGFS" commit no-such-container 2>&1) || rc=$?
t_eq "a missing container: exit 1" 1 "$rc"
t_check "and a message naming it" grep -q "no-such-container" <<<"$msg"
rc=0
"$IMGFS" commit c1 'Bad Name' 2>/dev/null || rc=$?
t_eq "a bad name is a usage error" 125 "$rc"
t_check "fsck is clean" "$IMGFS" fsck >/dev/null
t_end
