#!/bin/bash
# Readahead in a blob (docs/lazy.md): a lazily mounted image whose small files are read one after
# the other in the layer's order (as the go command reads a package's sources) is fetched in a few
# requests, each taking the members that follow it, in windows that grow; the same files read in
# the opposite order are no stream: a request per file, and nothing is fetched that was not read.
# A large file read in pieces (the page faults of a mapped binary): one piece fetches its chunk
# only; at a second piece the rest of the file comes at once, and nothing of the file after it.
# Counted from the registry's access log; every file read is the pushed one.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
source "$TOP/tests/lib_registry.sh"
t_begin lazy_readahead
reg_start

N=48
mkdir -p "$T/src/d"
for i in $(seq -w 1 $N); do head -c 20000 /dev/urandom >"$T/src/d/f$i"; done
tar -C "$T/src" -cf "$T/small.tar" d
t_check "import $N files of 20 kB" "$IMGFS" import -q -t small:1 "$T/small.tar"
t_check "push it" "$IMGFS" push -q small:1 "$REG/small:1"
layer=$(curl -fsS -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
    "http://$REG/v2/small/manifests/1" | jq -r '.layers[0].digest')
blob=$REG_DIR/storage/docker/registry/v2/blobs/sha256/${layer:7:2}/${layer:7}/data
# the files in the layer's order
toc_off=$((16#$(tail -c 51 "$blob" | head -c 32 | tail -c 16)))
mapfile -t order < <(tar -xzOf "$blob" stargz.index.json 2>/dev/null |
    jq -r '.entries[] | select(.type == "reg" and (.name | startswith("d/"))) | .name')
t_eq "the layer has the $N files" $N "${#order[@]}"
range_requests() { tail -n +$(($1 + 1)) "$REG_DIR/log" | awk -v b="$layer" 'index($0, b) && $9 == 206' | wc -l; }

read_all() { # STORE FILES...: lazy mount, read each file in the order given; $same: 1 when all
    # of them are the pushed ones
    local s=$1 f
    shift
    same=1
    mkdir -p "$T/mnt-$s"
    IMGFS_ROOT=$T/$s "$IMGFS" mount "$REG/small:1" "$T/mnt-$s"
    t_cleanup "IMGFS_ROOT='$T/$s' '$IMGFS' umount -l '$T/mnt-$s'"
    for f in "$@"; do cmp -s "$T/src/$f" "$T/mnt-$s/$f" || same=0; done
    IMGFS_ROOT=$T/$s "$IMGFS" umount "$T/mnt-$s"
}

# ---- in the layer's order: a stream
t_check "pull --lazy" env IMGFS_ROOT="$T/fwd" "$IMGFS" pull -q --lazy "$REG/small:1"
mark=$(wc -l <"$REG_DIR/log")
read_all fwd "${order[@]}"
t_eq "the files read in the layer's order are the pushed ones" 1 "$same"
fwd=$(range_requests "$mark")
t_check "they took a few requests, not one per file ($fwd for $N files)" test "$fwd" -le $((N / 4))
t_eq "nothing of the image is remote any more" 0 \
    "$(IMGFS_ROOT=$T/fwd "$IMGFS" du --json | jq '[.Images[].Remote] | add')"

# ---- in the opposite order: no stream, one request per file, nothing fetched that was not read
t_check "pull --lazy again, into another store" env IMGFS_ROOT="$T/rev" "$IMGFS" pull -q --lazy "$REG/small:1"
mapfile -t rev < <(printf '%s\n' "${order[@]}" | tac | head -n 12)
mark=$(wc -l <"$REG_DIR/log")
read_all rev "${rev[@]}"
t_eq "12 files read backwards are the pushed ones" 1 "$same"
back=$(range_requests "$mark")
t_check "at least one request per file read backwards ($back for 12)" test "$back" -ge 12
# (FastCDC may cut a 20 kB file in two: count the chunks from the TOC)
chunks=$(tar -xzOf "$blob" stargz.index.json 2>/dev/null |
    jq --argjson names "$(printf '%s\n' "${rev[@]}" | jq -R . | jq -s .)" \
        '[.entries[] | select(.chunkDigest and (.name as $n | $names | index($n))) | .chunkDigest] | unique | length')
t_eq "the store holds those 12 files' $chunks chunks and nothing more" "$chunks $((12 * 20000))" \
    "$(IMGFS_ROOT=$T/rev "$IMGFS" du --json | jq -r '"\(.Chunks) \(.Stored)"')"

# ---- a large file read in pieces, 4 KiB at a time (as page faults read a mapped binary)
mkdir -p "$T/big/d"
head -c $((2 << 20)) /dev/urandom >"$T/big/d/big"
printf 'the next file\n' >"$T/big/d/z"
tar -C "$T/big" -cf "$T/big.tar" d/big d/z
t_check "import a 2 MiB file and a small one after it" "$IMGFS" import -q -t big:1 "$T/big.tar"
t_check "push it" "$IMGFS" push -q big:1 "$REG/big:1"
blayer=$(curl -fsS -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
    "http://$REG/v2/big/manifests/1" | jq -r '.layers[0].digest')
export IMGFS_ROOT=$T/pieces
t_check "pull --lazy" "$IMGFS" pull -q --lazy "$REG/big:1"
mkdir -p "$T/mnt-pieces"
mark0=$(wc -l <"$REG_DIR/log")
IMGFS_LAZY_TRACE=$T/lazy.trace "$IMGFS" mount "$REG/big:1" "$T/mnt-pieces"
t_cleanup "IMGFS_ROOT='$T/pieces' '$IMGFS' umount -l '$T/mnt-pieces'"
piece() { dd if="$T/mnt-pieces/d/big" bs=4096 skip="$1" count=1 status=none | cmp -s - <(dd if="$T/big/d/big" bs=4096 skip="$1" count=1 status=none); }
remote() { "$IMGFS" du --json | jq '[.Images[].Remote] | max'; } # (one entry per name)
t_check "a 4 KiB piece in the middle is the pushed one" piece 256
stored=$("$IMGFS" du --json | jq .Stored)
t_check "  it fetched its chunk, not the file ($stored bytes stored)" test "$stored" -lt $((512 << 10))
mark=$(wc -l <"$REG_DIR/log")
t_check "a second piece, near the end, is the pushed one" piece 500
req=$(tail -n +$((mark + 1)) "$REG_DIR/log" | awk -v b="$blayer" 'index($0, b) && $9 == 206' | wc -l)
t_check "  it took the rest of the file in a few requests ($req)" test "$req" -le 2
t_eq "  only the next file is remote now" 14 "$(remote)"
t_check "the whole file reads back as pushed" cmp -s "$T/big/d/big" "$T/mnt-pieces/d/big"
t_eq "  without another request" "$req" \
    "$(tail -n +$((mark + 1)) "$REG_DIR/log" | awk -v b="$blayer" 'index($0, b) && $9 == 206' | wc -l)"
# the daemon's trace (IMGFS_LAZY_TRACE, docs/lazy.md) says what it fetched, and why
ino=$(stat -c %i "$T/mnt-pieces/d/big")
t_eq "the trace: the fetcher started once" 1 "$(grep -c '^A ' "$T/lazy.trace")"
t_eq "  a line per Range request the registry answered" \
    "$(tail -n +$((mark0 + 1)) "$REG_DIR/log" | awk -v b="$blayer" 'index($0, b) && $9 == 206' | wc -l)" \
    "$(grep -c '^R ' "$T/lazy.trace")"
t_eq "  the two reads that missed asked for one chunk of d/big each" 2 \
    "$(grep '^C [0-9]* asked ' "$T/lazy.trace" | grep -c " ino=$ino ")"
t_check "  the rest of d/big came as readahead" grep -q "^C [0-9]* extra .* ino=$ino " "$T/lazy.trace"
t_eq "  two reads fetched" 2 "$(grep -c '^H .* rc=0$' "$T/lazy.trace")"
"$IMGFS" umount "$T/mnt-pieces"
t_end
