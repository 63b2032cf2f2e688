#!/bin/bash
# imgfs export in every format, and import(export(x)) == x: same image digest, same names, same tree.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
t_begin oci_roundtrip
t_need_fixture busybox.tar tree.tar

digest_of() { "$IMGFS" inspect -f Digest "$1"; }
is_tar() { tar -tf "$1" >/dev/null; }
names() { "$IMGFS" images | awk 'NR > 1 && $1 != "<none>" {print $1 ":" $2}' | sort | tr '\n' ' '; }
# One line per entry: type, mode, owner, size, links, mtime, symlink target; then file contents and
# xattrs. Two trees with the same manifest are the same tree for everything an image holds.
tree_manifest() {
    (
        cd "$1"
        find . -mindepth 1 -print0 | LC_ALL=C sort -z | xargs -0 -r stat -c '%n|%F|%a|%u|%g|%s|%t:%T|%h|%Y|%N' |
            awk -F'|' 'BEGIN {OFS = "|"} $2 == "directory" {$6 = "-"} {print}'
        find . -type f -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum
        getfattr -R -h -d -m - --absolute-names . 2>/dev/null || true
    )
}

t_check "export --help exits 0" "$IMGFS" export --help
t_check "import busybox" "$IMGFS" import -q -t busybox "$FIXTURES/busybox.tar"
t_check "import the generated tree" "$IMGFS" import -q -t tree:v1 "$FIXTURES/tree.tar"
bb=$(digest_of busybox)
tree=$(digest_of tree:v1)

for fmt in oci docker; do
    for img in busybox tree:v1; do
        f="$T/${img%%:*}-$fmt.tar"
        t_check "export $img as $fmt" "$IMGFS" export --format "$fmt" -o "$f" "$img"
        t_check "$fmt export of $img is a tar" is_tar "$f"
        t_check "no temp file is left beside it" test ! -e "$f.tmp"
    done
done

# The OCI layout: one manifest, annotated with the tag and the full name; every blob its digest.
idx=$(tar -xOf "$T/busybox-oci.tar" index.json)
t_eq "index.json lists one manifest" 1 "$(jq '.manifests | length' <<<"$idx")"
t_eq "its digest is the image's" "$bb" "$(jq -r '.manifests[0].digest' <<<"$idx")"
t_eq "ref.name is the tag" latest \
    "$(jq -r '.manifests[0].annotations["org.opencontainers.image.ref.name"]' <<<"$idx")"
t_eq "oci-layout says 1.0.0" 1.0.0 "$(tar -xOf "$T/busybox-oci.tar" oci-layout | jq -r .imageLayoutVersion)"
mkdir "$T/x"
tar -C "$T/x" -xf "$T/tree-oci.tar"
bad=0
for b in "$T"/x/blobs/sha256/*; do
    [[ $(sha256sum <"$b" | cut -d' ' -f1) == "$(basename "$b")" ]] || bad=$((bad + 1))
done
t_eq "every blob of the layout has its digest for a name" 0 "$bad"

# docker save format: manifest.json names config and layers; the layer is the diff_id's bytes.
man=$(tar -xOf "$T/busybox-docker.tar" manifest.json)
t_eq "manifest.json RepoTags" busybox:latest "$(jq -r '.[0].RepoTags[0]' <<<"$man")"
layer=$(jq -r '.[0].Layers[0]' <<<"$man")
t_eq "the layer.tar is the layer named by its diff_id" \
    "sha256:$(tar -xOf "$T/busybox-docker.tar" "$layer" | sha256sum | cut -d' ' -f1)" \
    "$(t_diff_ids busybox)"

# Import into a fresh store: the same digests and names come back, from both formats.
for fmt in oci docker; do
    export IMGFS_ROOT=$T/store-$fmt
    t_check "import the $fmt export of busybox" "$IMGFS" import -q "$T/busybox-$fmt.tar"
    t_check "import the $fmt export of the tree" "$IMGFS" import -q "$T/tree-$fmt.tar"
    t_eq "$fmt: names come back" "busybox:latest tree:v1 " "$(names)"
    t_eq "$fmt: busybox has its digest" "$bb" "$(digest_of busybox)"
    t_eq "$fmt: the tree has its digest" "$tree" "$(digest_of tree:v1)"
    t_check "$fmt: fsck passes" "$IMGFS" fsck
done
export IMGFS_ROOT=$T/store

# A docker-save entry with several RepoTags gets every one of them.
mkdir "$T/two-tags"
tar -C "$T/two-tags" -xf "$T/busybox-docker.tar"
jq -c '.[0].RepoTags = ["one:1", "two:2"]' "$T/two-tags/manifest.json" >"$T/m.json"
mv "$T/m.json" "$T/two-tags/manifest.json"
tar -C "$T/two-tags" -cf "$T/two-tags.tar" .
t_check "import a docker archive with two tags" \
    env IMGFS_ROOT="$T/store-tags" "$IMGFS" import -q "$T/two-tags.tar"
t_eq "both names" "one:1 two:2 " "$(IMGFS_ROOT=$T/store-tags names)"

# A real distribution (~8,000 files) survives the trip too.
if [[ -s $FIXTURES/debian.tar.gz ]]; then
    t_check "import debian" "$IMGFS" import -q -t debian:12 "$FIXTURES/debian.tar.gz"
    deb=$(digest_of debian:12)
    for fmt in oci docker; do
        t_check "debian: export $fmt" "$IMGFS" export --format "$fmt" -o "$T/debian-$fmt.tar" debian:12
        t_check "debian: import the $fmt export elsewhere" \
            env IMGFS_ROOT="$T/store-deb-$fmt" "$IMGFS" import -q "$T/debian-$fmt.tar"
        t_eq "debian: $fmt round trip keeps the digest" "$deb" \
            "$(IMGFS_ROOT=$T/store-deb-$fmt "$IMGFS" inspect -f Digest debian:12)"
        rm -rf "$T/store-deb-$fmt" "$T/debian-$fmt.tar"
    done
else
    t_note "debian.tar.gz fixture missing: skipping the debian round trip"
fi

# Export is deterministic, and `-o -` writes the same bytes to a pipe.
"$IMGFS" export -o - busybox | cat >"$T/stdout.tar"
t_eq "export to a pipe writes the same archive" "$(sha256sum <"$T/busybox-oci.tar")" \
    "$(sha256sum <"$T/stdout.tar")"
"$IMGFS" export busybox >"$T/default.tar"
t_eq "stdout is the default output when it is not a terminal" \
    "$(sha256sum <"$T/busybox-oci.tar")" "$(sha256sum <"$T/default.tar")"
t_check "import from stdin" bash -c "'$IMGFS' import -q -t piped - <'$T/stdout.tar'"
t_eq "stdin import has the digest" "$bb" "$(digest_of piped)"

# By digest: no name to write, the image is the same.
t_check "export by digest" "$IMGFS" export -o "$T/bydigest.tar" "$bb"
t_eq "a digest reference writes no ref.name" null \
    "$(tar -xOf "$T/bydigest.tar" index.json | jq -r '.manifests[0].annotations')"

# rootfs: the merged tree, the same as the tree imported.
t_check "export --format rootfs" "$IMGFS" export --format rootfs -o "$T/tree-rootfs.tar" tree:v1
mkdir "$T/a" "$T/b"
tar -C "$T/a" --xattrs --xattrs-include='*' -xpf "$FIXTURES/tree.tar" 2>/dev/null
tar -C "$T/b" --xattrs --xattrs-include='*' -xpf "$T/tree-rootfs.tar" 2>/dev/null
tree_manifest "$T/a" >"$T/a.list"
tree_manifest "$T/b" >"$T/b.list"
t_check "rootfs export extracts to the imported tree" diff "$T/a.list" "$T/b.list"
t_check "the comparison saw the tree's xattrs" grep -q '^user.foo=' "$T/a.list"
t_eq "hardlinks stay hardlinks" "$(find "$T/a" -type f -links +1 | wc -l)" \
    "$(find "$T/b" -type f -links +1 | wc -l)"
t_check "a rootfs tar imports as a rootfs" "$IMGFS" import -q -t again "$T/tree-rootfs.tar"
t_eq "and has the same tree (the same diff_id)" "$(t_diff_ids tree:v1)" "$(t_diff_ids again)"

# Sparse files: holes stay holes in the rootfs tar (a sparse map), and extract sparse again.
mkdir -p "$T/sp/d"
truncate -s 8M "$T/sp/d/sparse.bin"
printf start | dd of="$T/sp/d/sparse.bin" conv=notrunc status=none
printf middle | dd of="$T/sp/d/sparse.bin" bs=1M seek=3 conv=notrunc status=none
truncate -s 1M "$T/sp/d/hole.bin"
tar -S -C "$T/sp" -cf "$T/sparse.tar" .
t_check "import a tar with sparse files" "$IMGFS" import -q -t sparse "$T/sparse.tar"
t_check "export it as a rootfs" "$IMGFS" export --format rootfs -o "$T/sparse-rootfs.tar" sparse
t_check "the holes are not in the tar" test "$(stat -c %s "$T/sparse-rootfs.tar")" -lt 100000
mkdir "$T/spx"
tar -C "$T/spx" -xf "$T/sparse-rootfs.tar"
t_check "the sparse file's content" cmp "$T/sp/d/sparse.bin" "$T/spx/d/sparse.bin"
t_check "the all-hole file's content" cmp "$T/sp/d/hole.bin" "$T/spx/d/hole.bin"
t_check "extracted sparse" test "$(du -k "$T/spx/d/sparse.bin" | cut -f1)" -lt 1024

# Errors: clear, exit 125, and no file left behind.
t_check_fails "export of a missing image fails" "$IMGFS" export -o "$T/missing.tar" no-such-image
out=$("$IMGFS" export -o "$T/missing.tar" no-such-image 2>&1 || true)
t_check "the error names the image" grep -q "^imgfs export: .*no-such-image" <<<"$out"
t_check "no file is left" test ! -e "$T/missing.tar" -a ! -e "$T/missing.tar.tmp"
rc=0
"$IMGFS" export --format zip -o "$T/zip.tar" busybox 2>/dev/null || rc=$?
t_eq "an unknown format is exit 125" 125 "$rc"
if command -v script >/dev/null; then
    # a terminal on stdout (script(1) gives the command a pty): refused, nothing written to it
    out=$(script -qec "'$IMGFS' export busybox" /dev/null 2>&1 || true)
    t_check "a tar is not written to a terminal" grep -q "refusing to write a tar archive to a terminal" <<<"$out"
    t_check "not a byte of it" test "$(wc -c <<<"$out")" -lt 200
fi
# devices and fifos are written to, not replaced by a renamed temp file
t_check "export to /dev/null" "$IMGFS" export -o /dev/null busybox
t_check "/dev/null is still the device" test -c /dev/null
mkfifo "$T/fifo"
sha256sum <"$T/fifo" >"$T/fifo.sum" &
reader=$!
t_cleanup "kill $reader"
t_check "export to a fifo" "$IMGFS" export -o "$T/fifo" busybox
wait "$reader"
t_eq "the fifo got the archive" "$(sha256sum <"$T/busybox-oci.tar")" "$(cat "$T/fifo.sum")"
t_check_fails "export onto a directory fails" "$IMGFS" export -o "$T" busybox
t_check_fails "export into a missing directory fails" "$IMGFS" export -o "$T/nodir/x.tar" busybox
t_end
