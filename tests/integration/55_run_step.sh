#!/bin/bash
# The runner's build-step API (runner.h: hidden, upper_dir/work_dir, lowers, redirect_output,
# ctr_image_*), driven by a small C program as the builder's RUN drives it: the step's changes land
# in the caller's upper directory, which is kept; an earlier step's upper stacked as a lower shows
# its files and its deletions; output comes through the caller's pipe; exit statuses come back;
# hidden containers never show in `ps`, leave nothing in RUN_DIR/containers, and one killed
# mid-step is cleaned up (cgroup, directory, image mount) by the next `ps`.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
t_begin run_step
t_need_fixture busybox.tar
# the driver is linked against the objects of the binary under test (ASan's for imgfs-asan)
flavour=release flags=()
if [[ $(basename "$IMGFS") == imgfs-asan ]]; then
    flavour=asan flags=(-fsanitize=address,undefined -fno-omit-frame-pointer)
fi
objs=("$TOP"/build/$flavour/fs/*.o "$TOP"/build/$flavour/runner/*.o)
[[ -e ${objs[0]} ]] || t_skip "no library objects in build/$flavour (run make first)"
# objects older than the headers they are built from (a rebuild under way) would disagree with
# the driver about struct ctr_spec: a run_dir read as NULL once mounted an image on "(null)/"
target=imgfs
[[ $flavour == asan ]] && target=imgfs-asan
make -s -q -C "$TOP" "$target" || { t_fail "build/$flavour is not up to date: run make"; exit 1; }
cc -std=gnu11 -D_GNU_SOURCE "${flags[@]}" -o "$T/run_step" "$TOP/tests/integration/55_run_step.c" \
    "${objs[@]}" $(pkg-config --libs fuse3 libarchive lmdb jansson libseccomp libcrypto zlib libcurl) \
    -lpthread
step() { "$T/run_step" "$IMGFS_ROOT" "$IMGFS_RUN_DIR" "$@"; }
visible() { find "$IMGFS_RUN_DIR/containers" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l; }

"$IMGFS" import -q -t base "$FIXTURES/busybox.tar"
mkdir -p "$T/u1" "$T/w1" "$T/u2" "$T/w2" "$T/cwd"

# a NULL run directory is refused before any path is made of it (no "(null)/images/" in the cwd)
rc=0
out=$(cd "$T/cwd" && "$T/run_step" null-run-dir "$IMGFS_ROOT" base) || rc=$?
t_eq "a NULL run directory: ctr_image_acquire and ctr_run refuse it" "1 no run directory given (the spec's run_dir is not set)
no run directory given (the spec's run_dir is not set)" "$rc $out"
t_eq "  ... and nothing was made in the cwd" "" "$(ls -A "$T/cwd")"

rc=0
out=$(step base "$T/u1" "$T/w1" none -- /bin/sh -c \
    'echo one > /one; rm /etc/passwd; mkdir /d; echo out; echo err >&2; exit 3') || rc=$?
t_eq "the step's exit status comes back" 3 "$rc"
t_eq "stdout and stderr through the caller's pipe" "[step] out
[step] err" "$out"
t_eq "the new file is in the caller's upper" "one" "$(cat "$T/u1/one")"
t_check "the deletion is a whiteout there" test -c "$T/u1/etc/passwd"
t_eq "the upper is kept, nothing else is left" 0 "$(visible)"
t_eq "no mount left" "" "$(grep -F " $IMGFS_RUN_DIR/" /proc/mounts || true)"

out=$(step base "$T/u2" "$T/w2" none "$T/u1" -- /bin/sh -c \
    'cat /one; test -e /etc/passwd || echo no-passwd; echo two > /two; cat /proc/net/dev | grep -c :')
t_eq "a second step sees the first one's files and deletions (and network none: lo only)" "[step] one
[step] no-passwd
[step] 1" "$out"
t_check "its changes go to its own upper" test -f "$T/u2/two"
t_check_fails "and not to the first one's" test -e "$T/u1/two"


# the shared mount held across steps by the caller
coproc HOLD { "$T/run_step" hold "$IMGFS_ROOT" "$IMGFS_RUN_DIR" base; }
read -r dir <&"${HOLD[0]}"
t_check "ctr_image_acquire mounts the image" mountpoint -q "$dir"
mkdir "$T/u4" "$T/w4" # (a work directory is good for one overlay mount: volatile)
t_check "a step meanwhile" step base "$T/u4" "$T/w4" none -- /bin/true
t_check "the mount outlives the step while held" mountpoint -q "$dir"
t_eq "the holder is not a container for ps" "" "$("$IMGFS" ps -a -q)"
eval "exec ${HOLD[1]}>&-"
wait "$HOLD_PID"
t_check_fails "released: unmounted" mountpoint -q "$dir"

# a step killed with its monitor: ps never shows it, and cleans up after it
mkdir -p "$T/u3" "$T/w3"
"$T/run_step" "$IMGFS_ROOT" "$IMGFS_RUN_DIR" base "$T/u3" "$T/w3" none -- /bin/sleep 600 \
    >/dev/null 2>&1 &
pid=$!
t_cleanup "kill -9 $pid"
t_check "the hidden step is running" t_wait_for 600 sh -c "ls -d '$IMGFS_RUN_DIR'/containers/.*/rootfs"
t_eq "ps does not list it" "" "$("$IMGFS" ps -a -q)"
kill -9 "$pid"
wait "$pid" 2>/dev/null || true
"$IMGFS" ps -a >/dev/null
t_eq "after the next ps nothing is left in RUN_DIR/containers" 0 "$(visible)"
t_check "and the image mount was released" t_wait_for 200 sh -c \
    "! grep -qF ' $IMGFS_RUN_DIR/images/' /proc/mounts"
t_end
