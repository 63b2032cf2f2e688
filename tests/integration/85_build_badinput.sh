#!/bin/bash
# imgfs build on bad input: a broken Dockerfile of each error class (a clear "imgfs build:" error
# naming FILE:LINE, exit 1, the store unchanged), usage errors (exit 125), a context of 100,000
# files, a build killed with SIGKILL in the middle of a RUN (fsck clean, nothing named, nothing
# left running, the next build works) and one interrupted with SIGINT (cleaned up the same way).
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
t_begin build_badinput
t_need_fixture busybox.tar
"$IMGFS" import -t busybox:latest "$FIXTURES/busybox.tar" >/dev/null

C=$T/ctx
mkdir -p "$C"
echo a >"$C/a.txt"

# t_bad "what" PATTERN DOCKERFILE-TEXT: the build fails cleanly with a message matching PATTERN
t_bad() {
    local what=$1 pattern=$2 rc=0 out names bytes
    printf '%b' "$3" >"$C/Dockerfile"
    names=$(t_image_names)
    bytes=$(t_stored_bytes)
    out=$("$IMGFS" build -t bad "$C" 2>&1) || rc=$?
    if ((rc == 1)); then t_pass "$what: fails (exit 1)"; else t_fail "$what: exit $rc"; fi
    if grep -q "^imgfs build: " <<<"$out" && grep -qE -- "$pattern" <<<"$out"; then
        t_pass "$what: says what and where"
    else
        t_fail "$what: expected /$pattern/ in: $out"
    fi
    t_eq "$what: no name changed" "$names" "$(t_image_names)"
    t_eq "$what: nothing stored" "$bytes" "$(t_stored_bytes)"
}
t_bad "unknown instruction" "Dockerfile:2: unknown instruction: FOOBAR" 'FROM busybox:latest\nFOOBAR x\n'
t_bad "no FROM first" "Dockerfile:1:.*(FROM|stage)" 'RUN true\n'
t_bad "empty file" "file with no instructions" '# only a comment\n'
t_bad "FROM without an image" "Dockerfile:1:.*FROM" 'FROM\n'
t_bad "FROM an image not in the store" "Dockerfile:1:.*nosuchimage.*no such image" 'FROM nosuchimage:1\n'
t_bad "an unknown flag" "Dockerfile:2:.*(unknown flag|flag)" 'FROM busybox:latest\nCOPY --nosuch=1 a.txt /a\n'
t_bad "ENV without a value" "Dockerfile:2:.*ENV" 'FROM busybox:latest\nENV ONLYKEY\n'
t_bad "an unterminated heredoc" "Dockerfile:2:.*(heredoc|EOF)" 'FROM busybox:latest\nRUN <<EOF\necho x\n'
t_bad "a bad escape directive" "Dockerfile:1:.*escape" '# escape=x\nFROM busybox:latest\n'
t_bad "an undefined required variable" 'Dockerfile:2:.*X: is not allowed to be unset|X: ' \
    'FROM busybox:latest\nWORKDIR ${X?}\n'
t_bad "a missing COPY source" 'Dockerfile:2:.*"/nope": not found' 'FROM busybox:latest\nCOPY nope /x\n'
t_bad "several sources to a non-directory" "Dockerfile:2:.*must be a directory and end with a /" \
    'FROM busybox:latest\nCOPY a.txt Dockerfile /x\n'
t_bad "a duplicate stage name" "Dockerfile:2:.*duplicate stage name" \
    'FROM busybox:latest AS x\nFROM busybox:latest AS x\n'
t_bad "a bad --chown user" "Dockerfile:2:.*unable to find user nosuchuser" \
    'FROM busybox:latest\nCOPY --chown=nosuchuser a.txt /a\n'
t_bad "a failing RUN" "Dockerfile:2:.*exit code: 7" 'FROM busybox:latest\nRUN exit 7\n'

usage_rc() { "$IMGFS" build "$@" >/dev/null 2>&1 && echo 0 || echo $?; }
t_eq "no context: a usage error" 125 "$(usage_rc)"
t_eq "an unknown option: a usage error" 125 "$(usage_rc --nosuch "$C")"
t_eq "a bad -t name: a usage error" 125 "$(usage_rc -t 'Bad Name' "$C")"
t_eq "a context that is not there" 1 "$(usage_rc "$T/nope")"
printf 'FROM busybox:latest\nRUN true\n' | "$IMGFS" build -q -t fromstdin - >/dev/null 2>&1 && rc=0 || rc=$?
t_eq "a Dockerfile on stdin (context -)" 0 "$rc"

t_note "$(date +%T) 100,000 files"
# ---- a context of 100,000 files ----
B=$T/big
mkdir -p "$B"
# on a tmpfs: making and deleting 100,000 files on a busy disk takes minutes, and it is the
# builder that is tested here, not the disk
mount -t tmpfs -o size=1g tmpfs "$B"
t_cleanup "umount -l $B"
dirs=100
if ((IMGFS_ASAN)); then
    dirs=10
    t_note "ASan pass: 10,000 files (the release pass takes 100,000 through the same code)"
fi
python3 - "$B" "$dirs" <<'EOF'
import os, sys
root = sys.argv[1]
for d in range(int(sys.argv[2])):
    os.mkdir(f"{root}/d{d:03}")
    for f in range(1000):
        with open(f"{root}/d{d:03}/f{f:04}", "w") as fh:
            fh.write(f"{d}-{f}\n")
EOF
printf 'FROM busybox:latest\nCOPY . /ctx\n' >"$B/Dockerfile"
"$IMGFS" build --progress plain -t big "$B" >"$T/big.log" 2>&1 && rc=0 || rc=$?
t_eq "a context of $((dirs * 1000)) files builds" 0 "$rc"
((rc == 0)) || tail -n 20 "$T/big.log"
t_eq "every file is in the image" $((dirs * 1000 + 1)) \
    "$("$IMGFS" export -f rootfs big | tar -t | grep -c '^ctx/.*[^/]$')"
"$IMGFS" build --progress plain -t big "$B" >"$T/big.log" 2>&1
t_check "its rebuild comes from the cache" grep -q '^#2 CACHED' "$T/big.log"
umount "$B"

t_note "$(date +%T) SIGKILL"
# ---- SIGKILL in the middle of a RUN ----
# the sleep's argument is unique to this run, so pgrep finds only the processes this test started
sleep_arg=$((100000000 + RANDOM * 32768 + RANDOM))
printf 'FROM busybox:latest\nRUN echo started && sleep %s\n' "$sleep_arg" >"$C/Dockerfile"
names=$(t_image_names)
"$IMGFS" build --progress plain -t killed "$C" >"$T/kill.log" 2>&1 &
bpid=$!
t_cleanup "kill -9 $bpid"
t_check "the RUN started" t_wait_for 600 grep -q "started" "$T/kill.log"
t_check "its sleep is found (the check below can fail)" t_wait_for 200 pgrep -f "^sleep $sleep_arg\$"
kill -9 "$bpid"
wait "$bpid" 2>/dev/null || true
t_check "no sleep of the build runs on" t_wait_for 200 bash -c "! pgrep -f '^sleep $sleep_arg\$' >/dev/null"
t_eq "nothing was named" "$names" "$(t_image_names)"
t_check "fsck is clean" "$IMGFS" fsck
printf 'FROM busybox:latest\nRUN echo after >/after\n' >"$C/Dockerfile"
"$IMGFS" build -q -t after "$C" >/dev/null 2>&1 && rc=0 || rc=$?
t_eq "the next build works" 0 "$rc"
t_eq "the killed build's step directory is gone" "" "$(ls "$IMGFS_ROOT/tmp")"

t_note "$(date +%T) SIGINT"
# ---- SIGINT (Ctrl-C) in the middle of a RUN ----
printf 'FROM busybox:latest\nRUN echo started && sleep %s\n' "$sleep_arg" >"$C/Dockerfile"
"$IMGFS" build --progress plain -t interrupted "$C" >"$T/int.log" 2>&1 &
bpid=$!
t_cleanup "kill -9 $bpid"
t_wait_for 600 grep -q "started" "$T/int.log" || true
kill -INT "$bpid"
rc=0
wait "$bpid" || rc=$?
t_check "an interrupted build fails" test "$rc" -ne 0
t_check "... saying so" grep -q "interrupted" "$T/int.log"
t_check_fails "nothing was named" "$IMGFS" inspect interrupted
t_check "no sleep runs on" t_wait_for 200 bash -c "! pgrep -f '^sleep $sleep_arg\$' >/dev/null"
t_eq "no step directory is left" "" "$(ls "$IMGFS_ROOT/tmp")"
t_check "fsck is clean" "$IMGFS" fsck
t_end
