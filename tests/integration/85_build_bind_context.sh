#!/bin/bash
# RUN --mount=type=bind of the context shows the context as BuildKit sends it: what
# .dockerignore excludes is absent (under the bound directory too, not only as its source), every
# owner is 0:0 whatever the host's, modes, symlinks and times are kept; the host's files are
# untouched; an owner change keeps the step CACHED (BuildKit), a content change runs it again;
# the copy made for it is gone after the build.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
t_begin build_bind_context
t_need_fixture busybox.tar
t_build_setup
"$IMGFS" import -q -t busybox:latest "$FIXTURES/busybox.tar" >/dev/null

C=$T/ctx
mkdir -p "$C/sub" "$C/ignored-dir"
echo a >"$C/a.txt"
chmod 0640 "$C/a.txt"
chown 1234:5678 "$C/a.txt"
echo keep >"$C/sub/keep.txt"
echo secret >"$C/sub/secret.key"
echo back >"$C/sub/back.key"
echo x >"$C/ignored-dir/x"
ln -s a.txt "$C/link"
chown -h 4321:8765 "$C/link"
touch -d '2020-01-02 03:04:05' "$C/sub/keep.txt"
printf '**/*.key\n!sub/back.key\nignored-dir\n' >"$C/.dockerignore"
cat >"$C/Dockerfile" <<'EOF'
FROM busybox:latest
RUN --mount=type=bind,target=/ctx cd /ctx && find . | sort >/listing && \
    stat -c '%n %u:%g %a' a.txt sub/keep.txt >/owners && stat -c '%n %u:%g' link >>/owners && \
    readlink link >/target && stat -c %Y sub/keep.txt >/mtime
RUN --mount=type=bind,source=sub,target=/s ls /s >/sub-listing
RUN --mount=type=bind,source=a.txt,target=/one stat -c '%u:%g %a' /one >/one.out
RUN --mount=type=bind,target=/w,rw echo scribble >/w/a.txt && rm /w/sub/keep.txt && ls /w/sub >/rw-listing
EOF

build -t bound "$C" && rc=0 || rc=$?
t_eq "the build works" 0 "$rc"
((rc == 0)) || tail -n 20 "$T/build.log"
mnt bound
t_check "the command saw the context (the checks below can fail)" grep -qx './a.txt' "$M/listing"
t_check "... and a file under a directory" grep -qx './sub/keep.txt' "$M/listing"
t_check_fails "a file .dockerignore excludes under the bound directory is absent" \
    grep -q 'secret.key' "$M/listing"
t_check "... but its exception is there" grep -qx './sub/back.key' "$M/listing"
t_check_fails "an excluded directory is absent" grep -q 'ignored-dir' "$M/listing"
t_check "the .dockerignore itself is sent" grep -qx './.dockerignore' "$M/listing"
t_eq "owners are 0:0, modes kept" "a.txt 0:0 640
sub/keep.txt 0:0 644
link 0:0" "$(cat "$M/owners")"
t_eq "a symlink stays a symlink" "a.txt" "$(cat "$M/target")"
t_eq "times are kept" "$(stat -c %Y "$C/sub/keep.txt")" "$(cat "$M/mtime")"
t_eq "a bound subdirectory lacks the excluded file too" "back.key
keep.txt" "$(cat "$M/sub-listing")"
t_eq "a bound file is 0:0 with its mode" "0:0 640" "$(cat "$M/one.out")"
t_eq "an rw bind is the context as sent, and writable" "back.key" "$(cat "$M/rw-listing")"
"$IMGFS" umount "$M"
t_eq "the host's files are untouched" "1234:5678 a" "$(stat -c %u:%g "$C/a.txt") $(cat "$C/a.txt")"
t_check "... and the rw bind's removal did not reach them" test -f "$C/sub/keep.txt"
t_eq "no copy of the context is left" "" "$(ls "$IMGFS_ROOT/tmp")"

chown 999:999 "$C/a.txt"
build -t bound "$C"
t_eq "an owner change keeps every step CACHED" 4 "$(grep -c '^#[0-9]* CACHED' "$T/build.log")"
echo changed >"$C/sub/keep.txt"
build -t bound "$C"
t_check "a content change runs the bind's RUN again" grep -q '^#2 DONE' "$T/build.log"
t_end
