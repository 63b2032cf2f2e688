#!/bin/bash
# Nothing inside an image archive can hang an import: every file of an OCI layout directory
# (oci-layout, index.json, the manifest, the config, a layer blob) is opened without blocking and
# must be a regular file; a FIFO (which would wait forever for a writer) or a device is a clear
# error naming it, and the store is unchanged. A FIFO named as the SOURCE itself is a stream, read
# like standard input (as `docker load -i FIFO` does): rootfs tars and image archives both work.
# No time limit: before the fix these imports hang and the suite's guard fails the test.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
t_begin import_fifo

mkdir -p "$T/src/etc"
echo hello >"$T/src/etc/hello"
tar -C "$T/src" -cf "$T/rootfs.tar" .
digest=$("$IMGFS" import -t tiny "$T/rootfs.tar")
t_check "export an OCI archive" "$IMGFS" export --format oci tiny -o "$T/tiny-oci.tar"
mkdir -p "$T/layout"
tar -C "$T/layout" -xf "$T/tiny-oci.tar"
t_eq "the layout imports as it is" "$digest" "$("$IMGFS" import "$T/layout")"

manifest=$(jq -r '.manifests[0].digest' "$T/layout/index.json" | cut -d: -f2)
config=$(jq -r '.config.digest' "$T/layout/blobs/sha256/$manifest" | cut -d: -f2)
layer=$(jq -r '.layers[0].digest' "$T/layout/blobs/sha256/$manifest" | cut -d: -f2)
for what in oci-layout index.json "blobs/sha256/$manifest" "blobs/sha256/$config" \
    "blobs/sha256/$layer"; do
    rm -rf "$T/bad"
    cp -a "$T/layout" "$T/bad"
    rm "$T/bad/$what"
    mkfifo "$T/bad/$what"
    t_rejects "a FIFO as $what" "${what//\//\\/}.*is a fifo, not a regular file" "$T/bad"
done
rm -rf "$T/bad"
cp -a "$T/layout" "$T/bad"
rm "$T/bad/blobs/sha256/$layer"
ln -s /dev/zero "$T/bad/blobs/sha256/$layer"
t_rejects "a symlink to /dev/zero as the layer blob" "blobs/sha256/$layer.*is a symlink" "$T/bad"

# the source itself a FIFO: a stream (the writer may come after the import started)
mkfifo "$T/fifo"
cat "$T/rootfs.tar" >"$T/fifo" &
writer=$!
t_cleanup "kill $writer"
out=$("$IMGFS" import -t from-fifo "$T/fifo")
wait "$writer"
t_eq "a rootfs tar through a FIFO source imports (same content, same layer)" \
    "$(t_diff_ids tiny)" "$(t_diff_ids from-fifo)"
cat "$T/tiny-oci.tar" >"$T/fifo" &
writer=$!
t_cleanup "kill $writer"
t_eq "an OCI archive through a FIFO source imports with its own digest" "$digest" \
    "$("$IMGFS" import "$T/fifo")"
wait "$writer"
t_check "no spooled copy is left in the store's tmp dir" \
    bash -c "[[ -z \$(ls -A '$IMGFS_ROOT/tmp' 2>/dev/null) ]]"
t_check "fsck is clean" "$IMGFS" fsck
t_end
