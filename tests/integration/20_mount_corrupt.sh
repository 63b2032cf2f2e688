#!/bin/bash
# A chunk whose bytes were damaged on disk: reading the file that holds it fails with EIO — never
# with wrong bytes — every time, the daemon logs it once (path and chunk digest), and the rest of
# the image still reads.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
t_begin mount_corrupt

marker="IMGFS-CORRUPTION-MARKER-$$-$RANDOM$RANDOM-END"
mkdir -p "$T/src/dir" "$T/mnt"
# one chunk for sure: smaller than the chunker's minimum
{ head -c 6000 /dev/urandom; printf '%s' "$marker"; head -c 6000 /dev/urandom; } >"$T/src/dir/victim.bin"
echo "a good file" >"$T/src/good.txt"
head -c 3000000 /dev/urandom >"$T/src/big.bin"
tar --numeric-owner -C "$T/src" -cf "$T/src.tar" .
"$IMGFS" import -t victim "$T/src.tar" >/dev/null

data=$IMGFS_ROOT/data.mdb
t_check "the store has a data.mdb" test -f "$data"
offsets=$(grep -obUaF "$marker" "$data" | cut -d: -f1)
t_check "the marker is stored verbatim (chunks are raw bytes)" test -n "$offsets"
for off in $offsets; do
    printf 'X' | dd of="$data" bs=1 seek="$off" conv=notrunc status=none
done
t_eq "every copy of the marker is damaged" 0 "$(grep -cUaF "$marker" "$data" || true)"

t_cleanup "umount -l '$T/mnt'"
"$IMGFS" mount -f victim "$T/mnt" 2>"$T/daemon.log" &
pid=$!
t_cleanup "kill $pid"
t_check "mount" t_wait_for 600 mountpoint -q "$T/mnt"

for attempt in 1 2; do
    rc=0
    cat "$T/mnt/dir/victim.bin" >"$T/out.$attempt" 2>"$T/err.$attempt" || rc=$?
    t_check "read $attempt of the damaged file fails" test "$rc" -ne 0
    t_check "read $attempt: with EIO" grep -q "Input/output error" "$T/err.$attempt"
    t_eq "read $attempt: no damaged bytes came out" 0 "$(grep -cUaF "X${marker:1}" "$T/out.$attempt" || true)"
done
t_eq "the file's size is still right" "$(stat -c %s "$T/src/dir/victim.bin")" \
    "$(stat -c %s "$T/mnt/dir/victim.bin")"
t_eq "other files read fine" "a good file" "$(cat "$T/mnt/good.txt")"
t_check "a large file reads fine" cmp "$T/src/big.bin" "$T/mnt/big.bin"

kill -0 "$pid"
t_pass "the daemon is still alive"
t_eq "the damage is logged once" 1 "$(grep -c 'victim.bin' "$T/daemon.log" || true)"
t_check "the log names the path" grep -q '/dir/victim.bin' "$T/daemon.log"
t_check "the log names the chunk" grep -qE 'sha256:[0-9a-f]{64}' "$T/daemon.log"
sed 's/^/    log: /' "$T/daemon.log"

t_check "umount" "$IMGFS" umount "$T/mnt"
gone() { ! kill -0 "$1" 2>/dev/null; }
t_check "the daemon exits" t_wait_for 600 gone "$pid"
t_end
