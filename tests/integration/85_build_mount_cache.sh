#!/bin/bash
# imgfs build: the cache key of a RUN with --mount=type=bind holds what it binds, as BuildKit's
# does. A context bind keys on the content and mode of its source= (never owners, which it shows
# as 0:0, or mtimes, with .dockerignore applied, as COPY's key): a changed bound file runs the
# step again, a change outside source=, of an owner or of an mtime alone does not; rw binds the
# same. from=STAGE|IMAGE keys on that
# stage's or image's tree: a changed stage or a re-tagged image runs the step again. A bind of a
# path .dockerignore excludes fails as in BuildKit.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
t_begin build_mount_cache
t_need_fixture busybox.tar
"$IMGFS" import -t busybox:latest "$FIXTURES/busybox.tar" >/dev/null

M=$T/mnt
mkdir -p "$M"
t_cleanup "mountpoint -q $M && $IMGFS umount -l $M"
C=$T/ctx
mkdir -p "$C/src/sub"
build() { "$IMGFS" build --progress plain "$@" >"$T/build.log" 2>&1; }
# cached MARK: the RUN whose command has MARK was CACHED in the last build
cached() {
    local n
    n=$(grep -m1 -E "^#[0-9]+ \[.*\] RUN .*$1" "$T/build.log" | sed -E 's/^#([0-9]+) .*/\1/')
    [[ -n $n ]] && grep -q "^#$n CACHED$" "$T/build.log"
}
# built MARK: ... it ran (a step line and no CACHED), so a missing step is never "not cached"
ran() {
    local n
    n=$(grep -m1 -E "^#[0-9]+ \[.*\] RUN .*$1" "$T/build.log" | sed -E 's/^#([0-9]+) .*/\1/')
    [[ -n $n ]] && grep -q "^#$n DONE" "$T/build.log" && ! grep -q "^#$n CACHED$" "$T/build.log"
}
out() { # IMAGE FILE: FILE's content in IMAGE
    mountpoint -q "$M" && "$IMGFS" umount "$M"
    "$IMGFS" mount "$1" "$M"
    cat "$M/$2"
    "$IMGFS" umount "$M"
}

# ---- a bind of the build context ----
echo a1 >"$C/src/a"
echo b1 >"$C/src/sub/b"
echo x1 >"$C/src/ignored"
echo o1 >"$C/other"
printf 'src/ignored\n' >"$C/.dockerignore"
# one RUN per Dockerfile: each step's key then depends on its own mount only
printf 'FROM busybox:latest\nRUN --mount=type=bind,source=src,target=/s cat /s/a /s/sub/b >/ro-out\n' \
    >"$C/ro.Dockerfile"
printf 'FROM busybox:latest\nRUN --mount=type=bind,source=src,target=/s,rw sh -c "cat /s/a >/rw-out; echo w >/s/a"\n' \
    >"$C/rw.Dockerfile"
printf 'FROM busybox:latest\nRUN --mount=type=bind,source=src/a,target=/f cat /f >/file-out\n' \
    >"$C/file.Dockerfile"
printf 'FROM busybox:latest\nRUN --mount=type=bind,target=/c cat /c/other >/whole-out\n' \
    >"$C/whole.Dockerfile"
all() { # TAG-SUFFIX: build the four, each log kept in $T/<name>.log
    local f
    for f in ro rw file whole; do
        build -f "$C/$f.Dockerfile" -t "$f:$1" "$C" || {
            cat "$T/build.log"
            t_fail "building $f.Dockerfile ($1)"
        }
        cp "$T/build.log" "$T/$f.log"
    done
}
is_cached() { cp "$T/$1.log" "$T/build.log" && cached "$2"; }
has_run() { cp "$T/$1.log" "$T/build.log" && ran "$2"; }

all v1
t_check "the first build runs the ro bind step" has_run ro ro-out
t_check "... the rw one" has_run rw rw-out
t_eq "a rw bind's writes stay out of the context" "a1" "$(cat "$C/src/a")"
all v2
t_check "unchanged: the ro bind step is CACHED" is_cached ro ro-out
t_check "... the rw one" is_cached rw rw-out
t_check "... the file bind" is_cached file file-out
t_check "... the whole-context bind" is_cached whole whole-out

touch -d '2001-01-01' "$C/src/a" "$C/src/sub/b" "$C/src/sub" "$C/src"
all v3
t_check "new mtimes alone keep the cache (ro)" is_cached ro ro-out
t_check "... (rw)" is_cached rw rw-out
t_check "... (file)" is_cached file file-out

echo o2 >"$C/other"
echo x2 >"$C/src/ignored"
all v4
t_check "a change outside source=, or in a file .dockerignore excludes, keeps the cache (ro)" is_cached ro ro-out
t_check "... (rw)" is_cached rw rw-out
t_check "... (file)" is_cached file file-out
t_check "a change in the bound context (no source=) runs the step" has_run whole whole-out
t_eq "... which saw it" "o2" "$(out whole:v4 whole-out)"

echo b2 >"$C/src/sub/b"
all v5
t_check "a changed bound file runs the step again (ro)" has_run ro ro-out
t_eq "... which read the new content" "a1 b2" "$(out ro:v5 ro-out | tr '\n' ' ' | sed 's/ $//')"
t_check "... (rw)" has_run rw rw-out
t_check "a change beside a file bind keeps it" is_cached file file-out

echo a3 >"$C/src/a"
all v6
t_check "a changed bound file runs the file bind again" has_run file file-out
t_eq "... which read the new content" "a3" "$(out file:v6 file-out)"
t_eq "... and so does the rw bind" "a3" "$(out rw:v6 rw-out)"

chmod 600 "$C/src/a"
all v7
t_check "a mode change runs the step again (ro)" has_run ro ro-out
t_check "... (file)" has_run file file-out
chown 1234:1234 "$C/src/sub/b"
all v8
t_check "an owner change keeps the step CACHED (ro: the bind shows 0:0, as BuildKit's)" is_cached ro ro-out
t_check "... (rw)" is_cached rw rw-out
t_check "... not a file bind beside it" is_cached file file-out
echo new >"$C/src/sub/new"
all v9
t_check "a new file under source= runs the step again" has_run ro ro-out
echo new2 >"$C/src/sub/new"
all v10
t_check "... and so does a change of its content" has_run ro ro-out
rm "$C/src/sub/new"
all v11
t_check "its removal gives back v8's tree: the step from then is CACHED" is_cached ro ro-out

printf 'FROM busybox:latest\nRUN --mount=type=bind,source=src/ignored,target=/i cat /i\n' \
    >"$C/ign.Dockerfile"
build -f "$C/ign.Dockerfile" "$C" && rc=0 || rc=$?
t_eq "a bind of a path .dockerignore excludes fails" 1 "$rc"
t_check "... naming it, as BuildKit (not found)" \
    grep -q 'ign.Dockerfile:2: .*"/src/ignored": not found (excluded by .dockerignore)' "$T/build.log"

# ---- from=STAGE and from=IMAGE ----
cat >"$C/stage.Dockerfile" <<'EOF'
FROM busybox:latest AS tools
ARG V=1
RUN echo tool-$V >/version
FROM busybox:latest
RUN --mount=type=bind,from=tools,source=/version,target=/v cat /v >/stage-out
RUN --mount=type=bind,from=tools,source=/version,target=/v,rw cat /v >/stage-rw-out
EOF
build -f "$C/stage.Dockerfile" -t stage:1 "$C"
build -f "$C/stage.Dockerfile" -t stage:1b "$C"
t_check "an unchanged stage: the bind from it is CACHED" cached stage-out
t_check "... rw too" cached stage-rw-out
build -f "$C/stage.Dockerfile" --build-arg V=2 -t stage:2 "$C"
t_check "a changed stage runs the bind from it again" ran stage-out
t_eq "... which saw it" "tool-2" "$(out stage:2 stage-out)"
t_eq "... rw too" "tool-2" "$(out stage:2 stage-rw-out)"

printf 'FROM busybox:latest\nRUN echo img-1 >/version\n' >"$C/img.Dockerfile"
build -f "$C/img.Dockerfile" -t tool:x "$C"
printf 'FROM busybox:latest\nRUN --mount=type=bind,from=tool:x,source=/version,target=/v cat /v >/img-out\n' \
    >"$C/useimg.Dockerfile"
build -f "$C/useimg.Dockerfile" -t useimg:1 "$C"
build -f "$C/useimg.Dockerfile" -t useimg:1b "$C"
t_check "an unchanged image: the bind from it is CACHED" cached img-out
printf 'FROM busybox:latest\nRUN echo img-2 >/version\n' >"$C/img.Dockerfile"
build -f "$C/img.Dockerfile" -t tool:x "$C"
build -f "$C/useimg.Dockerfile" -t useimg:2 "$C"
t_check "a re-tagged image runs the bind from it again" ran img-out
t_eq "... which saw it" "img-2" "$(out useimg:2 img-out)"

t_end
