#!/bin/bash
# imgfs build: what a build no longer needs goes away. Its step directories (ROOT/tmp/build-step.*)
# are moved into a trash batch (ROOT/trash/batch.*) and removed after the build by a detached
# remover that holds the batch's lock to the end and keeps none of the build's descriptors; a
# batch whose remover died, and a killed build's step directories, are removed by the next build
# and by gc, a batch in use is not. A private cache mount in use gets a throw-away directory,
# gone with its step too.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
t_begin build_trash
t_need_fixture busybox.tar
"$IMGFS" import -t busybox:latest "$FIXTURES/busybox.tar" >/dev/null
t_build_setup
C=$T/ctx
mkdir -p "$C"

# ---- a RUN with many directories: removed after the build ----
printf 'FROM busybox:latest\nRUN for i in $(seq 1 300); do mkdir -p /d/$i && echo $i >/d/$i/f; done\n' \
    >"$C/Dockerfile"
build -t many "$C"
t_check "the build succeeded" "$IMGFS" inspect many
t_eq "no step directory is left in tmp" "" "$(ls -A "$IMGFS_ROOT/tmp")"
rm_pid=$(pgrep -f "__remove-trash $IMGFS_ROOT/trash/" || true)
# stopped while we look, if it is not done yet
stopped() { [[ $(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) == T ]]; }
if [[ -n $rm_pid ]] && kill -STOP "$rm_pid" 2>/dev/null; then
    t_cleanup "kill -CONT $rm_pid"
    fds= sid=
    if t_wait_for 200 stopped "$rm_pid"; then
        fds=$(for f in /proc/$rm_pid/fd/*; do
            l=$(readlink "$f" || true)
            case $l in
            "$IMGFS_ROOT/trash/.lock") l=all ;;
            "$IMGFS_ROOT"/trash/batch.*/.lock*) l=batch ;;
            "$IMGFS_ROOT"/trash/batch.*) continue ;; # the directories it is removing
            esac
            echo "${f##*/} $l"
        done | sort -n | paste -sd'|')
        sid=$(ps -o sid= -p "$rm_pid" | tr -d ' ')
    fi
    kill -CONT "$rm_pid" 2>/dev/null || true
    if [[ -n $fds ]]; then
        t_eq "the remover has only /dev/null and its locks open" \
            "0 /dev/null|1 /dev/null|2 /dev/null|3 batch|4 all" "$fds"
        t_eq "... in a session of its own" "$rm_pid" "$sid"
    else
        t_note "the remover was done before it could be looked at"
    fi
else
    t_note "the remover was done before it could be looked at"
fi
t_eq "the remover removes the batch" "" "$(t_build_trash_left)"

# ---- batches of removers that died, and a killed build's step directory ----
mkdir -p "$IMGFS_ROOT/trash/batch.dead/build-step.x/upper/a" "$IMGFS_ROOT/trash/batch.held/k"
: >"$IMGFS_ROOT/trash/batch.dead/.lock"
: >"$IMGFS_ROOT/trash/batch.held/.lock"
mkdir -p "$IMGFS_ROOT/trash/batch.nolock/b"
mkdir -p "$IMGFS_ROOT/tmp/build-step.dead/upper/c"
: >"$IMGFS_ROOT/tmp/build-step.dead/lock"
# a batch a live remover holds (flock here stands for it) stays
flock "$IMGFS_ROOT/trash/batch.held/.lock" "$IMGFS" gc >/dev/null
t_eq "gc removes dead batches and step directories, not a held batch" "batch.held|" \
    "$(ls "$IMGFS_ROOT/trash" | paste -sd'|')|$(ls -A "$IMGFS_ROOT/tmp")"
mkdir -p "$IMGFS_ROOT/trash/batch.dead2/x" "$IMGFS_ROOT/tmp/build-step.dead2"
printf 'FROM busybox:latest\nRUN echo next >/next\n' >"$C/Dockerfile"
build -t next "$C"
t_eq "the next build removes them too" "" \
    "$(t_build_trash_left)$(ls -A "$IMGFS_ROOT/tmp")"
t_check "the store is consistent" "$IMGFS" fsck

# ---- a private cache mount that is in use ----
printf 'FROM busybox:latest\nARG N\nRUN --mount=type=cache,id=pc,target=/c,sharing=private ls -A /c >/seen; touch /c/mine$N\n' \
    >"$C/Dockerfile"
build --build-arg N=1 -t private1 "$C"
lock=$(ls "$IMGFS_ROOT"/build-cache-mounts/*.lock)
t_eq "the cache has its lock" 1 "$(wc -l <<<"$lock")"
t_eq "the first build wrote into the cache" "mine1" "$(ls -A "${lock%.lock}")"
flock "$lock" "$IMGFS" build --progress plain --build-arg N=2 -t private2 "$C" >"$T/build.log" 2>&1
mnt private2
t_eq "while the cache is in use the step gets an empty directory" "" "$(cat "$M/seen")"
"$IMGFS" umount "$M"
t_eq "... which is not the cache" "mine1" "$(ls -A "${lock%.lock}")"
t_eq "... and is gone after the build" "" "$(ls -A "$IMGFS_ROOT/tmp")$(t_build_trash_left)"
t_end
