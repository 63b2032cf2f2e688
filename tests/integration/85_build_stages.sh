#!/bin/bash
# imgfs build: stages and the cache — --target, stage names ignoring case, a stage index, a stage
# used (by COPY --from) before it is defined, an unused stage skipped, ONBUILD firing once in the
# child and not the grandchild, the cache invalidated by a change a wildcard matches and not by an
# unrelated one, --label/--iidfile, reproducible digests (SOURCE_DATE_EPOCH, two stores, the
# same image digest), and FROM and COPY --from a registry reference (Debian's docker-registry on
# 127.0.0.1) pulled into the store; an unreachable one an error naming the line.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
source "$TOP/tests/lib_registry.sh"
t_begin build_stages
t_need_fixture busybox.tar
"$IMGFS" import -t busybox:latest "$FIXTURES/busybox.tar" >/dev/null

t_build_setup # $M, build ARGS..., mnt IMAGE (tests/lib.sh)
C=$T/ctx
mkdir -p "$C"

cat >"$C/Dockerfile" <<'EOF'
FROM busybox:latest AS Base
RUN echo base >/base

FROM base AS unused
RUN echo "the unused stage ran" && exit 1

FROM busybox:latest AS final
COPY --from=BASE /base /from-base
COPY --from=0 /base /from-index
COPY --from=later /later /from-later
LABEL stage=final

FROM busybox:latest AS later
RUN echo later >/later
EOF
build --target final --label built-by=test --iidfile "$T/iid" -t final "$C" && rc=0 || rc=$?
t_eq "--target final builds" 0 "$rc"
((rc == 0)) || cat "$T/build.log"
t_check_fails "the unused stage was skipped" grep -q "the unused stage ran" "$T/build.log"
mnt final
t_eq "COPY --from a stage name in another case" "base" "$(cat "$M/from-base")"
t_eq "COPY --from a stage index" "base" "$(cat "$M/from-index")"
t_eq "COPY --from a stage defined after it" "later" "$(cat "$M/from-later")"
t_check_fails "the target is the stage asked for, not the last" test -e "$M/later"
"$IMGFS" umount "$M"
t_eq "--iidfile has the image id" "$("$IMGFS" inspect --json final | jq -r '.[0].Digest')" \
    "$(cat "$T/iid")"
t_eq "--label and LABEL" '{"built-by":"test","stage":"final"}' \
    "$("$IMGFS" inspect --json final | jq -c '.[0].Config.config.Labels')"
build -t last "$C"
mnt last
t_check "without --target the last stage is built" test -f "$M/later"
"$IMGFS" umount "$M"
build --target nosuch -t x "$C" && rc=0 || rc=$?
t_check "an unknown --target fails" test "$rc" -ne 0
t_check "... naming it" grep -q 'target stage "nosuch" could not be found' "$T/build.log"

# ---- ONBUILD fires once ----
printf 'FROM busybox:latest\nONBUILD RUN echo fired >>/onbuild\n' >"$C/Dockerfile"
build -t parent "$C"
printf 'FROM parent\nRUN true\n' >"$C/Dockerfile"
build -t child "$C"
printf 'FROM child\nRUN true\n' >"$C/Dockerfile"
build -t grandchild "$C"
mnt grandchild
t_eq "ONBUILD fired in the child only" "fired" "$(cat "$M/onbuild")"
"$IMGFS" umount "$M"
t_eq "the child does not carry the trigger on" "null" \
    "$("$IMGFS" inspect --json child | jq -c '.[0].Config.config.OnBuild')"
t_eq "the parent keeps it" '["RUN echo fired >>/onbuild"]' \
    "$("$IMGFS" inspect --json parent | jq -c '.[0].Config.config.OnBuild')"

# ---- the cache follows content, not times ----
mkdir -p "$C/src"
echo one >"$C/src/a.txt"
echo two >"$C/src/b.txt"
echo readme >"$C/src/notes.md"
printf 'FROM busybox:latest\nCOPY src/*.txt /d/\nRUN cat /d/* >/all\n' >"$C/Dockerfile"
build -t c1 "$C"
touch -d '2001-01-01' "$C/src/a.txt"
build -t c2 "$C"
t_check "a new mtime alone keeps the cache" grep -q '^#2 CACHED' "$T/build.log"
echo readme2 >"$C/src/notes.md"
build -t c3 "$C"
t_check "a change no wildcard matches keeps the cache" grep -q '^#3 CACHED' "$T/build.log"
echo ONE >"$C/src/a.txt"
build -t c4 "$C"
t_check_fails "a change a wildcard matches invalidates COPY" grep -q '^#2 CACHED' "$T/build.log"
t_check_fails "... and the RUN after it" grep -q '^#3 CACHED' "$T/build.log"
mnt c4
t_eq "the new content is in the image" "ONE two" "$(tr '\n' ' ' <"$M/all" | sed 's/ $//')"
"$IMGFS" umount "$M"
chmod 600 "$C/src/b.txt"
build -t c5 "$C"
t_check_fails "a mode change invalidates COPY" grep -q '^#2 CACHED' "$T/build.log"

# ---- reproducible: two stores, the same digest ----
cat >"$C/Dockerfile" <<'EOF'
FROM busybox:latest
COPY src /src
RUN touch /built-at && mkdir -p /var/x && echo made >/var/x/f
ENV A=1
CMD ["sh"]
EOF
for n in 1 2; do
    "$IMGFS" --root "$T/store$n" import -t busybox:latest "$FIXTURES/busybox.tar" >/dev/null
    SOURCE_DATE_EPOCH=1700000000 "$IMGFS" --root "$T/store$n" build -q -t repro "$C" \
        >"$T/repro$n" 2>"$T/build.log" || cat "$T/build.log"
done
t_check "the first reproducible build made an image" grep -q '^sha256:' "$T/repro1"
t_eq "SOURCE_DATE_EPOCH: two stores, one digest" "$(cat "$T/repro1")" "$(cat "$T/repro2")"
t_eq "its created time is the epoch" "2023-11-14T22:13:20Z" \
    "$("$IMGFS" --root "$T/store1" inspect --json repro | jq -r '.[0].Config.created')"

# ---- FROM a registry reference: pulled when the store lacks it ----
reg_start
"$IMGFS" push busybox:latest "$REG/base:1" >/dev/null
export IMGFS_ROOT=$T/pulling
printf 'FROM %s/base:1\nRUN echo on-pulled >/p\n' "$REG" >"$C/Dockerfile"
build -t frompull "$C" && rc=0 || rc=$?
t_eq "FROM a registry reference the store lacks builds" 0 "$rc"
((rc == 0)) || tail -n 20 "$T/build.log"
t_check "the base was pulled into the store" "$IMGFS" inspect "$REG/base:1"
t_eq "the RUN ran on it" "on-pulled" "$("$IMGFS" run --rm frompull cat /p 2>/dev/null)"
printf 'FROM %s/nosuch:1\n' "$REG" >"$C/Dockerfile"
build -t nopull "$C" && rc=0 || rc=$?
t_check "a reference the registry lacks fails" test "$rc" -ne 0
t_check "... naming the line and the pull" grep -q "Dockerfile:1: pulling $REG/nosuch:1" "$T/build.log"

# ---- COPY --from a registry reference: pulled as FROM pulls ----
export IMGFS_ROOT=$T/copyfrom
printf 'FROM scratch\nCOPY --from=%s/base:1 /bin/busybox /bb\n' "$REG" >"$C/Dockerfile"
build -t copypull "$C" && rc=0 || rc=$?
t_eq "COPY --from a registry reference the store lacks builds" 0 "$rc"
((rc == 0)) || tail -n 20 "$T/build.log"
t_check "... pulling it into the store" "$IMGFS" inspect "$REG/base:1"
mnt copypull
copied=$(sha256sum <"$M/bb")
mnt "$REG/base:1"
t_eq "the file came from the pulled image" "$(sha256sum <"$M/bin/busybox")" "$copied"
"$IMGFS" umount "$M"
dead=127.0.0.1:$(t_free_port)
printf 'FROM scratch\nCOPY --from=%s/base:1 /x /x\n' "$dead" >"$C/Dockerfile"
build -t deadpull "$C" && rc=0 || rc=$?
t_eq "COPY --from an unreachable registry fails with 1" 1 "$rc"
t_check "... naming the line and the pull" grep -q "Dockerfile:2: pulling $dead/base:1" "$T/build.log"
t_check_fails "... naming nothing" "$IMGFS" inspect deadpull
t_end
