#!/bin/bash
# Broken and foreign inputs: truncated and corrupt archives, unknown formats. Each must fail with a
# clear error, without crashing, and leave the store as it was.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
t_begin badinput_archives
t_need_fixture tree.tar busybox.tar

t_check "import a good image first" "$IMGFS" import -t bb "$FIXTURES/busybox.tar"

gzip -c "$FIXTURES/tree.tar" >"$T/tree.tar.gz"
size=$(stat -c %s "$T/tree.tar.gz")

# truncated compressed stream
head -c $((size / 2)) "$T/tree.tar.gz" >"$T/truncated.tar.gz"
t_rejects "truncated .tar.gz" "truncated|unexpected end|EOF|premature" "$T/truncated.tar.gz" -t bad

# truncated plain tar: in the middle of a member's content
head -c $(($(stat -c %s "$FIXTURES/tree.tar") / 2 + 100)) "$FIXTURES/tree.tar" >"$T/truncated.tar"
t_rejects "truncated .tar" "truncated|unexpected end|EOF|premature" "$T/truncated.tar" -t bad

# header only: a tar cut inside the first header
head -c 300 "$FIXTURES/busybox.tar" >"$T/cut-header.tar"
t_rejects "tar cut inside a header" "." "$T/cut-header.tar" -t bad

# flipped bytes in the middle of the gzip stream: inflate fails or the CRC does
cp "$T/tree.tar.gz" "$T/corrupt.tar.gz"
python3 - "$T/corrupt.tar.gz" <<'PY'
import sys
p = sys.argv[1]
b = bytearray(open(p, "rb").read())
for i in range(len(b) // 2, len(b) // 2 + 64, 7):
    b[i] ^= 0xA5
open(p, "wb").write(b)
PY
t_rejects "corrupt gzip stream" "." "$T/corrupt.tar.gz" -t bad

# a corrupt tar header checksum
cp "$FIXTURES/busybox.tar" "$T/badsum.tar"
printf 'XXXXXXXX' | dd of="$T/badsum.tar" bs=1 seek=148 conv=notrunc status=none
t_rejects "bad tar header checksum" "." "$T/badsum.tar" -t bad

# unknown formats
head -c 65536 /dev/urandom >"$T/random.bin"
t_rejects "random bytes" "format|unrecognized|not a|archive" "$T/random.bin" -t bad
: >"$T/empty"
t_rejects "an empty file" "empty|format|unrecognized|not a|archive" "$T/empty" -t bad
# a real PNG (1x1), magic and all
printf '\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N\x00\x00\x00\x00IEND\xaeB`\x82' >"$T/image.png"
t_rejects "a PNG" "format|unrecognized|not a|archive" "$T/image.png" -t bad
printf 'just some text\nnot an archive\n' >"$T/text.tar"
t_rejects "text named .tar" "format|unrecognized|not a|archive" "$T/text.tar" -t bad
# a zip is an archive libarchive reads, but not a rootfs tarball
(cd "$T" && python3 -c "import zipfile; z = zipfile.ZipFile('x.zip', 'w'); z.writestr('etc/passwd', 'root:x:0:0::/:/bin/sh'); z.close()")
t_rejects "a zip file" "format|unrecognized|not a|archive|zip" "$T/x.zip" -t bad
# a directory that is not an OCI layout
mkdir -p "$T/notoci"
echo hi >"$T/notoci/file"
t_rejects "a directory that is not an OCI layout" "oci|layout|index.json|director" "$T/notoci" -t bad
# stdin with nothing on it, and with garbage
t_rejects "empty stdin" "." - -t bad </dev/null
head -c 4096 /dev/urandom >"$T/garbage"
t_rejects "garbage on stdin" "." - -t bad <"$T/garbage"
# a bad name
t_rejects "an invalid image name" "name|invalid|reference" "$FIXTURES/busybox.tar" -t 'Bad Name!!'

t_check "the good image is intact" "$IMGFS" inspect bb
t_check "fsck passes" "$IMGFS" fsck
t_end
