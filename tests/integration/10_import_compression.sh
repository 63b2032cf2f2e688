#!/bin/bash
# The same rootfs as tar, tar.gz, tar.xz, tar.zst and tar.bz2, from files and from stdin: every
# import yields the same layer, and only the first one stores anything.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
t_begin import_compression
t_need_fixture tree.tar

src=$FIXTURES/tree.tar
gzip -c "$src" >"$T/tree.tar.gz"
xz -T1 -0 -c "$src" >"$T/tree.tar.xz"
zstd -q -c "$src" >"$T/tree.tar.zst"
bzip2 -c "$src" >"$T/tree.tar.bz2"
# a compressed file with a misleading name: formats are sniffed, not guessed from the name
cp "$T/tree.tar.xz" "$T/really-xz.tar.gz"

t_check "import plain tar" "$IMGFS" import -t plain "$src"
base=$(t_stored_bytes)
ref=$(t_diff_ids plain)
t_check "stored bytes are a number > 0" test "$base" -gt 0

for c in gz xz zst bz2; do
    t_check "import tar.$c" "$IMGFS" import -t "c-$c" "$T/tree.tar.$c"
    t_eq "tar.$c gives the same layer" "$ref" "$(t_diff_ids "c-$c")"
done
t_check "import xz named .gz" "$IMGFS" import -t misnamed "$T/really-xz.tar.gz"
t_eq "misnamed gives the same layer" "$ref" "$(t_diff_ids misnamed)"

for c in tar gz zst; do
    f=$src
    [[ $c != tar ]] && f=$T/tree.tar.$c
    t_check "import $c from stdin" "$IMGFS" import -t "stdin-$c" - <"$f"
    t_eq "stdin $c gives the same layer" "$ref" "$(t_diff_ids "stdin-$c")"
done
# stdin through a pipe (not seekable)
t_check "import from a pipe" bash -c "cat '$T/tree.tar.zst' | '$IMGFS' import -t piped -"
t_eq "piped gives the same layer" "$ref" "$(t_diff_ids piped)"

t_eq "nothing more stored after 9 re-imports" "$base" "$(t_stored_bytes)"
t_eq "10 names" 10 "$(t_image_names | wc -l)"
t_check "fsck passes" "$IMGFS" fsck
t_end
