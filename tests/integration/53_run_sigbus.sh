#!/bin/bash
# A corrupt chunk that kills a container (issue 9 §5): a file mmap'ed from the image whose chunk
# fails its digest is SIGBUS at the first touch of that page (exit code 135). The image's daemon
# logs the file and the chunk in its log (RUN_DIR/images/KEY/mount.log, besides syslog), and the
# container's log (`imgfs logs`, and the terminal of a foreground run) says so too. The chunk is
# damaged in the store as in 20_mount_corrupt.sh.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/60_security.bash"
t_begin run_sigbus
command -v cc >/dev/null || t_skip "no C compiler for the mmap helper"
cc -static -O2 -o "$T/mmapread" "$(dirname "$0")/53_run_sigbus.c" ||
    t_skip "cannot build a static helper (libc.a missing?)"
marker="IMGFS-SIGBUS-MARKER-$$-$RANDOM$RANDOM-END"
# one chunk for sure: smaller than the chunker's minimum
{ head -c 6000 /dev/urandom; printf '%s' "$marker"; head -c 6000 /dev/urandom; } >"$T/victim.bin"
head -c 9000 /dev/urandom >"$T/good.bin"
sec_image bus "/bin/mmapread<$T/mmapread" "/victim.bin<$T/victim.bin" "/good.bin<$T/good.bin"

# damaged before any mount: a chunk that was read (and so checked) once is not hashed again in
# this boot (docs/mount.md), so the helper proves itself on good.bin below
data=$IMGFS_ROOT/data.mdb
offsets=$(grep -obUaF "$marker" "$data" | cut -d: -f1)
t_check "the marker is stored verbatim" test -n "$offsets"
for off in $offsets; do
    printf 'X' | dd of="$data" bs=1 seek="$off" conv=notrunc status=none
done
t_eq "every copy of the marker is damaged" 0 "$(grep -cUaF "$marker" "$data" || true)"

t_cleanup "'$IMGFS' ps -aq | xargs -r '$IMGFS' rm -f"
# a container holds the image mount, so both runs below use the same daemon
"$IMGFS" run -d --name holder --network none bus sleep 1000 >/dev/null
"$IMGFS" run -d --name bus1 --network none bus mmapread /victim.bin >/dev/null
t_eq "the container died of SIGBUS: 135" 135 "$("$IMGFS" wait bus1)"
log=$("$IMGFS" logs bus1 2>&1)
t_note "logs: $log"
t_check "its log says SIGBUS" grep -q "SIGBUS" <<<"$log"
t_check "its log names the file" grep -q "/victim.bin" <<<"$log"
t_check "its log names the chunk" grep -qE "sha256:[0-9a-f]{64}" <<<"$log"
t_check "the line is on the container's stderr" \
    sh -c "'$IMGFS' logs bus1 2>&1 >/dev/null | grep -q /victim.bin"
mlog=$(ls "$IMGFS_RUN_DIR"/images/*/mount.log)
t_check "the daemon's log names the file" grep -q "/victim.bin" "$mlog"
t_check "the daemon's log names the chunk" grep -qE "sha256:[0-9a-f]{64}" "$mlog"
sed 's/^/    daemon log: /' "$mlog"

# the daemon logs a chunk once; a second container that dies of it is told as well
set +e
"$IMGFS" run --name bus2 --network none bus mmapread /victim.bin >/dev/null 2>"$T/fg.err"
rc=$?
set -e
t_eq "a foreground run: 135" 135 "$rc"
t_check "the foreground run's stderr names the file" grep -q "/victim.bin" "$T/fg.err"
t_check "and its log too" sh -c "'$IMGFS' logs bus2 2>&1 | grep -q 'SIGBUS.*victim.bin'"

# the check can fail: an intact file of the same image reads, and nothing is added to its log
t_eq "an intact file maps and reads (the sum of its bytes)" \
    "$(od -An -v -tu1 "$T/good.bin" | tr -s ' ' '\n' | awk '{s += $1} END {print s}')" \
    "$("$IMGFS" run --name good --network none bus mmapread /good.bin)"
t_eq "no SIGBUS line in a good container's log" 0 "$("$IMGFS" logs good 2>&1 | grep -c SIGBUS || true)"
t_end
