#!/bin/bash
# imgfs build: COPY and ADD as Docker (BuildKit) does them, checked on the built image's mounted
# tree with stat: wildcards, `dir` vs `dir/` vs `dir/.`, an empty wildcard, `COPY f $empty`, a
# trailing slash making a directory, --chown with a variable and names from the image's
# /etc/passwd, --chmod incl. created parents, symlinked sources, overwriting, WORKDIR chains with
# relative destinations, .dockerignore with `!`, COPY --from=IMAGE, heredocs, ADD of a local tar
# and of an http://127.0.0.1 URL (with --checksum), a destination through a symlink in the image
# staying inside the rootfs, and sources escaping the context refused. (The intent of BuildKit's
# dockerfile_test.go cases of the same names; our own Dockerfiles.)
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
t_begin build_copy
t_need_fixture busybox.tar
"$IMGFS" import -t busybox:latest "$FIXTURES/busybox.tar" >/dev/null

t_build_setup # $M, build ARGS..., mnt IMAGE (tests/lib.sh)
st() { stat -c "$1" "$M/$2" 2>&1; }

# ---- the context ----
C=$T/ctx
mkdir -p "$C"/dir/sub "$C"/other
echo a >"$C/a.txt"
echo b >"$C/b.txt"
echo c >"$C/c.md"
echo f >"$C/dir/f"
echo g >"$C/dir/sub/g"
echo o >"$C/other/o"
ln -s a.txt "$C/link-to-a"
ln -s /etc/passwd "$C/abs-link"
ln -s ../../etc "$C/up-link"
mkdir -p "$C/ign/keep"
echo x >"$C/ign/x"
echo k >"$C/ign/keep/k"
echo secret >"$C/secret.key"
printf 'ign\n!ign/keep\n*.key\n' >"$C/.dockerignore"
tar -C "$C/dir" -czf "$C/dir.tar.gz" .

cat >"$C/Dockerfile" <<'EOF'
FROM busybox:latest
ENV empty=""
ARG OWNER=1234:2345
COPY a.txt b.txt /multi/
COPY *.txt /glob/
COPY nomatch* a.txt /emptyglob/
COPY dir /d1
COPY dir/ /d2/
COPY dir/. /d3
COPY a.txt /newdir/
COPY a.txt /file-named-x
WORKDIR /w1
WORKDIR w2
COPY a.txt rel.txt
COPY a.txt $empty
COPY --chown=$OWNER a.txt /owned/a.txt
COPY --chown=app:app a.txt /named/a.txt
COPY --chmod=0751 dir /chmod/deep/
COPY link-to-a /viasymlink
COPY dir /overwrite
COPY other/o /overwrite/f
COPY ign /ignored/
COPY --from=busybox:latest /etc/passwd /from-image/passwd
COPY <<EOT /heredoc.txt
hello $empty heredoc
EOT
ADD dir.tar.gz /untarred/
EOF
build -t copy1 "$C" && rc=0 || rc=$?
t_eq "the COPY Dockerfile builds" 0 "$rc"
((rc == 0)) || cat "$T/build.log"
mnt copy1
t_eq "two sources into a dir/" "a|b" "$(cat "$M/multi/a.txt")|$(cat "$M/multi/b.txt")"
t_check "a wildcard copies every match" test -f "$M/glob/a.txt" -a -f "$M/glob/b.txt"
t_check_fails "a wildcard copies only matches" test -e "$M/glob/c.md"
t_eq "an empty wildcard beside a real source" "a" "$(cat "$M/emptyglob/a.txt")"
t_eq "dir copies its contents" "f g" "$(cat "$M/d1/f") $(cat "$M/d1/sub/g")"
t_eq "dir/ the same" "f g" "$(cat "$M/d2/f") $(cat "$M/d2/sub/g")"
t_eq "dir/. the same" "f g" "$(cat "$M/d3/f") $(cat "$M/d3/sub/g")"
t_check_fails "dir is not nested in itself" test -e "$M/d1/dir"
t_eq "a trailing slash makes a directory" "directory a" "$(st %F newdir) $(cat "$M/newdir/a.txt")"
t_eq "no trailing slash names the file" "regular file" "$(st %F file-named-x)"
t_eq "relative destination under a WORKDIR chain" "a" "$(cat "$M/w1/w2/rel.txt")"
t_eq "COPY f \$empty lands in WORKDIR" "a" "$(cat "$M/w1/w2/a.txt")"
t_eq "--chown with a variable" "1234:2345" "$(st %u:%g owned/a.txt)"
t_eq "--chown names from the image's /etc/passwd and /etc/group" "1000:1000" \
    "$(st %u:%g named/a.txt)"
t_eq "plain COPY is root-owned" "0:0" "$(st %u:%g multi/a.txt)"
t_eq "--chmod on files" "751" "$(st %a chmod/deep/f)"
t_eq "--chmod on copied directories" "751" "$(st %a chmod/deep/sub)"
t_eq "a symlink as the source is followed (inside the context)" "regular file a" \
    "$(st %F viasymlink) $(cat "$M/viasymlink")"
t_eq "a file overwrites a file" "o" "$(cat "$M/overwrite/f")"
t_eq "the directory around it stays" "g" "$(cat "$M/overwrite/sub/g")"
t_check ".dockerignore ! re-includes below an excluded dir" test -f "$M/ignored/keep/k"
t_check_fails ".dockerignore excludes the rest" test -e "$M/ignored/x"
t_check "COPY --from=IMAGE" cmp -s "$M/from-image/passwd" "$M/etc/passwd"
t_eq "a heredoc is a file (variables expanded)" "hello  heredoc" "$(cat "$M/heredoc.txt")"
t_eq "ADD extracts a local tar" "f g" "$(cat "$M/untarred/f") $(cat "$M/untarred/sub/g")"
"$IMGFS" umount "$M"

# ---- --exclude, --parents, --link ----
X=$T/ctxx
mkdir -p "$X/a/b" "$X/c"
echo 1 >"$X/a/b/f.txt"
echo 2 >"$X/a/g.log"
echo 3 >"$X/c/h.txt"
printf '%s\n' 'FROM busybox:latest' 'COPY --exclude=*.log a /ex/' \
    'COPY --parents a/b/f.txt c/h.txt /par/' 'COPY --link a/g.log /linked' >"$X/Dockerfile"
build -t flags "$X" && rc=0 || rc=$?
t_eq "the --exclude/--parents/--link Dockerfile builds" 0 "$rc"
mnt flags
t_check "--exclude leaves the matching file out" test ! -e "$M/ex/g.log" -a -f "$M/ex/b/f.txt"
t_check "--parents keeps the source's directories" test -f "$M/par/a/b/f.txt" -a -f "$M/par/c/h.txt"
t_eq "--link copies as COPY does" "2" "$(cat "$M/linked")"
"$IMGFS" umount "$M"

# ---- ADD of a URL, with --checksum ----
echo "served content" >"$T/served.txt"
port=$(( (RANDOM % 20000) + 30000 ))
used=" $(ss -Htan | awk '{print $4}' | sed 's/.*://' | tr '\n' ' ') "
while [[ $used == *" $port "* ]]; do port=$((port + 1)); done
python3 -m http.server --bind 127.0.0.1 --directory "$T" "$port" >/dev/null 2>&1 &
srv=$!
t_cleanup "kill $srv"
t_wait_for 200 curl -fsS -o /dev/null "http://127.0.0.1:$port/served.txt"
sum=$(sha256sum "$T/served.txt" | cut -d' ' -f1)
U=$T/ctxu
mkdir -p "$U"
printf 'FROM busybox:latest\nADD --checksum=sha256:%s http://127.0.0.1:%s/served.txt /srv/\n' \
    "$sum" "$port" >"$U/Dockerfile"
build -t addurl "$U" && rc=0 || rc=$?
t_eq "ADD of an http URL with the right checksum" 0 "$rc"
mnt addurl
t_eq "the downloaded file, mode 0600" "served content 600" "$(cat "$M/srv/served.txt") $(st %a srv/served.txt)"
"$IMGFS" umount "$M"
printf 'FROM busybox:latest\nADD --checksum=sha256:%064d http://127.0.0.1:%s/served.txt /srv/\n' \
    0 "$port" >"$U/Dockerfile"
build -t addbad "$U" && rc=0 || rc=$?
t_check "a wrong --checksum fails" test "$rc" -ne 0
t_check "... saying so" grep -q "digest mismatch" "$T/build.log"

# ---- a destination through a symlink in the image stays inside its root ----
S=$T/ctxs
mkdir -p "$S"
echo inside >"$S/x"
cat >"$S/Dockerfile" <<'EOF'
FROM busybox:latest
RUN ln -s / /rootlink && ln -s ../../../../../tmp /tmp/up && mkdir -p /tmp/real
COPY x /rootlink/tmp/real/
COPY x /tmp/up/escaped
EOF
build -t symdest "$S" && rc=0 || rc=$?
t_eq "COPY through image symlinks builds" 0 "$rc"
((rc == 0)) || cat "$T/build.log"
mnt symdest
t_eq "through an absolute symlink: inside the image" "inside" "$(cat "$M/tmp/real/x")"
t_eq "through a symlink with ..: clamped at the image's root" "inside" "$(cat "$M/tmp/escaped")"
"$IMGFS" umount "$M"
t_check_fails "nothing was written on the host's /tmp" test -e /tmp/escaped

# ---- sources escaping the context are refused, nothing is named ----
for src in ../outside.txt up-link/passwd abs-link; do
    E=$T/ctxe
    rm -rf "$E"
    cp -a "$C" "$E"
    echo outside >"$T/outside.txt"
    printf 'FROM busybox:latest\nCOPY %s /x\n' "$src" >"$E/Dockerfile"
    build -t escape "$E" && rc=0 || rc=$?
    t_check "COPY $src fails" test "$rc" -ne 0
    t_check "COPY $src: the error names the Dockerfile line" grep -q "Dockerfile:2" "$T/build.log"
    t_check "COPY $src: outside the context or not found" \
        grep -qE "outside the build context|not found" "$T/build.log"
done
t_check_fails "no image named by the failed builds" "$IMGFS" inspect escape
t_check "the store is consistent" "$IMGFS" fsck
t_end
