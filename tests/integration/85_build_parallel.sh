#!/bin/bash
# imgfs build: stages that do not depend on each other build at the same time (one thread per CPU,
# as BuildKit, no flag). Observed without a clock: two stages meet through a FIFO in a shared cache
# mount — each one's RUN blocks until the other's opens it, so a serial build would never end.
# The parallel result equals a serial one (the same build pinned to one CPU with taskset), a
# failing stage cancels a running one (which would otherwise block forever), progress keeps
# each parallel step's lines under its own #N, and stages that need each other are an error.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
t_begin build_parallel
t_need_fixture busybox.tar
(($(nproc) >= 2)) || t_skip "needs 2 CPUs (stages run one per CPU)"
"$IMGFS" import -t busybox:latest "$FIXTURES/busybox.tar" >/dev/null

M=$T/mnt
mkdir -p "$M"
t_cleanup "mountpoint -q $M && $IMGFS umount -l $M"
C=$T/ctx
mkdir -p "$C"

# ---- two stages that can only finish together ----
cat >"$C/Dockerfile" <<'EOF'
FROM busybox:latest AS writer
RUN --mount=type=cache,id=rendezvous,target=/r \
    { mkfifo /r/meet 2>/dev/null || test -p /r/meet; } && echo from-writer >/r/meet && echo wrote >/w

FROM busybox:latest AS reader
RUN --mount=type=cache,id=rendezvous,target=/r \
    { mkfifo /r/meet 2>/dev/null || test -p /r/meet; } && cat /r/meet >/got

FROM busybox:latest
COPY --from=writer /w /w
COPY --from=reader /got /got
EOF
"$IMGFS" build --progress plain -t met "$C" >"$T/build.log" 2>&1 && rc=0 || rc=$?
t_eq "two stages meeting through a FIFO build (they ran at the same time)" 0 "$rc"
((rc == 0)) || cat "$T/build.log"
"$IMGFS" mount met "$M"
t_eq "the reader stage got the writer's line" "from-writer" "$(cat "$M/got")"
t_eq "the writer stage finished" "wrote" "$(cat "$M/w")"
"$IMGFS" umount "$M"
# both RUN steps started before either ended, and their lines carry their own step numbers
w=$(sed -n 's/^#\([0-9]*\) \[writer 2\/2\] RUN.*/\1/p' "$T/build.log")
r=$(sed -n 's/^#\([0-9]*\) \[reader 2\/2\] RUN.*/\1/p' "$T/build.log")
t_check "the writer's and the reader's RUN are steps of their own" test -n "$w" -a -n "$r" -a "$w" != "$r"
first_done=$(grep -nE "^#($w|$r) DONE" "$T/build.log" | head -1 | cut -d: -f1)
t_check "... and both started before either was done" test "$(grep -nE "^#($w|$r) \[" "$T/build.log" |
    cut -d: -f1 | awk -v d="$first_done" '$1 < d' | wc -l)" -eq 2

# ---- parallel equals serial ----
cat >"$C/Dockerfile" <<'EOF'
FROM busybox:latest AS one
RUN mkdir /out && echo one >/out/one && seq 1 500 >/out/seq
FROM busybox:latest AS two
RUN mkdir /out && echo two >/out/two && ln -s two /out/link
FROM scratch AS three
COPY Dockerfile /three
FROM busybox:latest
COPY --from=one /out /all
COPY --from=two /out /all
COPY --from=three /three /all/three
RUN ls -l /all >/listing
EOF
export SOURCE_DATE_EPOCH=1700000000
"$IMGFS" build --progress plain --no-cache -t par "$C" >"$T/par.log" 2>&1
taskset -c 0 "$IMGFS" build --progress plain --no-cache -t ser "$C" >"$T/ser.log" 2>&1
unset SOURCE_DATE_EPOCH
t_eq "a parallel build gives the image a serial one (one CPU) gives" \
    "$("$IMGFS" inspect --json ser | jq -r '.[0].Digest')" \
    "$("$IMGFS" inspect --json par | jq -r '.[0].Digest')"
# on one CPU every step ends before the next one starts
t_eq "on one CPU the steps run one after the other" "" "$(awk '
    /^#[0-9]+ \[/ { if (open != "") print "overlap: " $0; open = $1 }
    /^#[0-9]+ (DONE|CACHED)/ { open = "" }' "$T/ser.log")"

# ---- a failing stage cancels the others ----
cat >"$C/Dockerfile" <<'EOF'
FROM busybox:latest AS stuck
RUN --mount=type=cache,id=cancel,target=/r \
    { mkfifo /r/started /r/never 2>/dev/null || true; } && echo up >/r/started && cat /r/never

FROM busybox:latest AS failing
RUN --mount=type=cache,id=cancel,target=/r \
    { mkfifo /r/started /r/never 2>/dev/null || true; } && cat /r/started && exit 3

FROM busybox:latest
COPY --from=stuck /etc/hostname /a
COPY --from=failing /etc/hostname /b
EOF
"$IMGFS" build --progress plain -t cancelled "$C" >"$T/build.log" 2>&1 && rc=0 || rc=$?
t_eq "a build whose stage fails exits 1" 1 "$rc"
t_check "... naming the failing RUN's line and exit code" grep -q \
    "Dockerfile:6: process .* did not complete successfully: exit code: 3" "$T/build.log"
s=$(sed -n 's/^#\([0-9]*\) \[stuck 2\/2\] RUN.*/\1/p' "$T/build.log")
t_check "the stage blocked forever was canceled" grep -q "^#$s CANCELED" "$T/build.log"
t_check_fails "nothing is named" "$IMGFS" inspect cancelled
t_eq "no build step directory is left" "" "$(ls "$IMGFS_ROOT/tmp" | grep build-step || true)"

# ---- a cycle of stages is an error, not a wait ----
printf 'FROM busybox:latest AS a\nCOPY --from=b /etc/passwd /x\nFROM busybox:latest AS b\nCOPY --from=a /etc/passwd /y\n' \
    >"$C/Dockerfile"
"$IMGFS" build --progress plain --target a "$C" >"$T/build.log" 2>&1 && rc=0 || rc=$?
t_eq "stages that need each other fail" 1 "$rc"
t_check "... as a circular dependency" grep -q "circular dependency detected on stage" "$T/build.log"
t_end
