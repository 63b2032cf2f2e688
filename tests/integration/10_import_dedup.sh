#!/bin/bash
# Content is stored once: the same file twice, the same file in two images, a file of repeated
# blocks, and an edited copy of a big file (content-defined chunking: only chunks near the edit
# are new). Measured with `imgfs du` (distinct chunk bytes).
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
t_begin import_dedup
MiB=$((1024 * 1024))

rand() { # rand BYTES SEED
    { openssl enc -aes-128-ctr -nosalt -pass "pass:$2" -pbkdf2 </dev/zero 2>/dev/null || true; } |
        head -c "$1"
}
mk_tar() { # mk_tar NAME (packs $T/NAME)
    tar --sort=name --numeric-owner -C "$T/$1" -cf "$T/$1.tar" .
}

mkdir -p "$T/one" "$T/two" "$T/rep" "$T/orig" "$T/edit"
rand $((2 * MiB)) a >"$T/one/a"
cp "$T/one/a" "$T/two/a"
cp "$T/one/a" "$T/two/b"
touch -d '2001-01-01' "$T/two/b"   # same bytes, different metadata
mk_tar one
mk_tar two

t_check "import one file" "$IMGFS" import -t one "$T/one.tar"
s1=$(t_stored_bytes)
t_check "stores at least the file ($s1 >= 2 MiB)" test "$s1" -ge $((2 * MiB))
t_check "and not much more ($s1 < 2.1 MiB)" test "$s1" -lt $((2 * MiB + MiB / 10))
t_check "import two copies of it" "$IMGFS" import -t two "$T/two.tar"
t_eq "the copies store nothing new" "$s1" "$(t_stored_bytes)"

# 5 MiB of one 64 KiB block repeated: chunk boundaries repeat with the content
rand 65536 block >"$T/block"
for _ in $(seq 80); do cat "$T/block"; done >"$T/rep/repeated"
mk_tar rep
t_check "import a file of repeated blocks" "$IMGFS" import -t rep "$T/rep.tar"
s2=$(t_stored_bytes)
grew=$((s2 - s1))
t_check "5 MiB of repeats stores < 1 MiB (stored $grew)" test "$grew" -lt "$MiB"

# An insertion in the middle of a 8 MiB file changes only the chunks around it.
rand $((8 * MiB)) big >"$T/orig/big"
{ head -c $((4 * MiB)) "$T/orig/big"; printf 'INSERTED 100 BYTES%.0s' $(seq 5); tail -c +$((4 * MiB + 1)) "$T/orig/big"; } >"$T/edit/big"
mk_tar orig
mk_tar edit
t_check "import a big file" "$IMGFS" import -t orig "$T/orig.tar"
s3=$(t_stored_bytes)
t_check "import it edited in the middle" "$IMGFS" import -t edit "$T/edit.tar"
s4=$(t_stored_bytes)
grew=$((s4 - s3))
t_check "the edit stores < 1 MiB new (stored $grew of 8 MiB)" test "$grew" -lt "$MiB"
t_check "and something (the edited chunks: $grew)" test "$grew" -gt 0

# Across images: busybox, then busybox plus one small file.
if [[ -s $FIXTURES/busybox.tar ]]; then
    t_check "import busybox" "$IMGFS" import -t bb "$FIXTURES/busybox.tar"
    s5=$(t_stored_bytes)
    mkdir -p "$T/bbplus"
    tar -C "$T/bbplus" -xf "$FIXTURES/busybox.tar"
    echo "one more file" >"$T/bbplus/etc/extra"
    mk_tar bbplus
    t_check "import busybox + one file" "$IMGFS" import -t bbplus "$T/bbplus.tar"
    grew=$(($(t_stored_bytes) - s5))
    t_check "only the new file is stored ($grew bytes)" test "$grew" -le 4096
fi

t_check "fsck passes" "$IMGFS" fsck
t_end
