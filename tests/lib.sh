# tests/lib.sh — sourced by every integration test (tests/integration/*.sh).
#
# Contract: a test script runs `set -euo pipefail`, sources this file, calls `t_begin "name"`, does its
# work with "$IMGFS" (the binary under test: ./imgfs or ./imgfs-asan), and ends with `t_end`. Every
# check goes through t_check/t_eq/t_fail, which count results; the script exits non-zero when any
# check failed. Each test has its own store and run dir under $T (a fresh temp dir, removed at exit).
# Cleanup registered with t_cleanup runs at exit, even on failure (LIFO): unmount what you mount,
# kill what you start, by PID.
set -euo pipefail

TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
IMGFS=${IMGFS:-$TOP/imgfs}
FIXTURES=${IMGFS_FIXTURES:-$TOP/tests/out/fixtures}   # cached test images (tests/fixtures/make.sh)
T=$(mktemp -d /tmp/imgfs-test.XXXXXX)
# tests/run.sh cleans up after a killed run only the test dirs whose owner is gone
echo $$ >"$T/.owner"
# 1 while tests/run.sh runs the suite against ./imgfs-asan: slow tests may do less (say so with t_note)
IMGFS_ASAN=${IMGFS_ASAN:-0}
export IMGFS_ROOT=$T/store IMGFS_RUN_DIR=$T/run
_t_cleanups=()
_t_passed=0
_t_failed=0
_t_name=""

t_cleanup() { _t_cleanups+=("$*"); }

# t_busybox_plus TAR BYTES NAME... — the busybox fixture with random files of BYTES each appended
# as /opt/NAME, in the order given (the layer's order), written to TAR; the files stay in
# $T/extra/opt to compare reads with.
t_busybox_plus() {
    local tar=$1 bytes=$2 f
    shift 2
    mkdir -p "$T/extra/opt"
    for f in "$@"; do head -c "$bytes" /dev/urandom >"$T/extra/opt/$f"; done
    cp "$FIXTURES/busybox.tar" "$tar"
    tar -rf "$tar" -C "$T/extra" "${@/#/opt/}"
}

# t_build_trash_left: what is left in the store's trash (builder/trash.c) once the removers of the
# builds that returned are done: each holds ROOT/trash/.lock shared until its batch is gone, so
# this takes it exclusively (opened without creating it) and lists the rest.
t_build_trash_left() {
    [[ -e $IMGFS_ROOT/trash/.lock ]] && { (exec 9<"$IMGFS_ROOT/trash/.lock" && flock 9) || true; }
    ls "$IMGFS_ROOT/trash" 2>/dev/null || true
}

# t_build_setup: what the builder tests share. $M is a mount point (unmounted at the end);
# build ARGS... runs `imgfs build --progress plain ARGS...` with its output in $T/build.log;
# mnt IMAGE shows the image's tree at $M (unmounting what was there).
t_build_setup() {
    M=$T/mnt
    mkdir -p "$M"
    build() { "$IMGFS" build --progress plain "$@" >"$T/build.log" 2>&1; }
    mnt() {
        mountpoint -q "$M" && "$IMGFS" umount "$M"
        "$IMGFS" mount "$1" "$M"
    }
    t_cleanup "mountpoint -q $M && $IMGFS umount -l $M"
}

_t_exit() {
    local rc=$?
    local i
    for ((i = ${#_t_cleanups[@]} - 1; i >= 0; i--)); do
        eval "${_t_cleanups[$i]}" >/dev/null 2>&1 || true
    done
    # nothing a test mounted may outlive it
    { grep -F " $T/" /proc/mounts || true; } | awk '{print $2}' | sort -r | while read -r m; do
        umount -l "$m" 2>/dev/null || true
    done
    rm -rf "$T" 2>/dev/null || true
    if ((rc != 0 && _t_failed == 0)); then
        echo "FAIL $_t_name: aborted (exit $rc) at line ${BASH_LINENO[0]:-?}"
        _t_failed=1
    fi
    echo "RESULT $_t_name passed=$_t_passed failed=$_t_failed"
    ((_t_failed == 0)) || exit 1
    exit 0
}
trap _t_exit EXIT

t_begin() { _t_name=$1; echo "== $1 ($(basename "$IMGFS"))"; }
t_end() { :; }

t_pass() { _t_passed=$((_t_passed + 1)); echo "  ok   $*"; }
t_fail() { _t_failed=$((_t_failed + 1)); echo "  FAIL $*"; }
# t_check "what" command...   passes when the command succeeds
t_check() {
    local what=$1; shift
    if "$@"; then t_pass "$what"; else t_fail "$what (command: $*)"; fi
}
# t_check_fails "what" command...   passes when the command fails (non-zero)
t_check_fails() {
    local what=$1; shift
    if "$@"; then t_fail "$what (unexpectedly succeeded: $*)"; else t_pass "$what"; fi
}
# t_eq "what" expected actual
t_eq() {
    if [[ "$2" == "$3" ]]; then t_pass "$1"; else t_fail "$1: expected [$2], got [$3]"; fi
}

# Wait (bounded by a number of tries, not by sleeping a fixed time) until a command succeeds.
t_wait_for() {
    local tries=$1; shift
    local i
    for ((i = 0; i < tries; i++)); do
        if "$@" 2>/dev/null; then return 0; fi
        sleep 0.05
    done
    return 1
}

# A TCP port no socket uses now (ss from iproute2), below the kernel's ephemeral range, so no
# outgoing connection takes it between this check and the server's bind. Parallel tests can still
# pick the same one: servers started on it retry with another port when the bind fails.
t_free_port() {
    local p lo _
    read -r lo _ </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || lo=32768
    ((lo > 12000)) || lo=32768
    while :; do
        p=$((10000 + RANDOM % (lo - 10000)))
        ss -Htan "sport = :$p" | grep -q . || { echo "$p"; return; }
    done
}

# t_cgroup_lock -s|-x [SECONDS]: hold, until the test ends, the lock 61_cgroup_v2_real takes (-x)
# while it lends the v1 pids and cpu hierarchies to cgroup v2; tests that need them on v1 take it
# shared (-s). $T_CGROUP_LOCK is the file: $IMGFS_CGROUP_LOCK, else /work/cgroup.lock on this
# project's machine, else /tmp/imgfs-cgroup.lock. Fails after SECONDS (default 600).
t_cgroup_lock() {
    T_CGROUP_LOCK=${IMGFS_CGROUP_LOCK:-/tmp/imgfs-cgroup.lock}
    [[ -z ${IMGFS_CGROUP_LOCK:-} && -d /work && -w /work ]] && T_CGROUP_LOCK=/work/cgroup.lock
    exec {_t_cgroup_lock_fd}>>"$T_CGROUP_LOCK"
    flock "$1" -w "${2:-600}" "$_t_cgroup_lock_fd"
}

# Skip the rest of a test with a reason (exit 0, counted as neither pass nor fail).
t_skip() { echo "  SKIP $*"; _t_cleanups+=(":"); exit 0; }

# Print a note in the log (not a check).
t_note() { echo "  note $*"; }

# Skip unless a fixture exists (tests/fixtures/make.sh makes them; `make test` runs it first).
t_need_fixture() {
    local f
    for f in "$@"; do
        [[ -s $FIXTURES/$f ]] || t_skip "fixture $f missing: run tests/fixtures/make.sh"
    done
}

# The store's visible state, for "nothing changed" checks: the image list and the stored bytes.
t_store_state() {
    "$IMGFS" images 2>&1 || true
    "$IMGFS" du 2>&1 | grep -iv 'map\|file' || true
}

# Distinct chunk bytes in the store (what dedup and gc change): from `imgfs du --json`.
t_stored_bytes() {
    "$IMGFS" du --json | jq -r '.Stored'
}
# The layer diff_ids of an image, one per line, from `imgfs inspect --json`.
t_diff_ids() {
    "$IMGFS" inspect --json "$1" | jq -r '[.. | objects | .diff_ids? // empty] | flatten | .[]'
}
# Image names in the store (REPOSITORY:TAG), sorted, one per line.
t_image_names() {
    "$IMGFS" images --json | jq -r '.[].Name' | sort
}

# t_rejects "what" PATTERN SOURCE [import args...]: `imgfs import` of SOURCE must fail cleanly — a
# non-zero exit that is not a crash, an "imgfs import: ..." message matching PATTERN (grep -E), and
# the store unchanged (same image names, same stored bytes).
t_rejects() {
    local what=$1 pattern=$2 src=$3
    shift 3
    local names bytes rc=0 out
    names=$(t_image_names)
    bytes=$(t_stored_bytes)
    out=$("$IMGFS" import "$@" "$src" 2>&1 >/dev/null) || rc=$?
    echo "$out" | head -n 3 | sed 's/^/    stderr: /'
    if ((rc == 0)); then
        t_fail "$what: import succeeded"
    elif ((rc > 128)); then
        t_fail "$what: import crashed (exit $rc)"
    else
        t_pass "$what: import fails (exit $rc)"
    fi
    if grep -qE "^imgfs import: " <<<"$out" && grep -qE -- "$pattern" <<<"$out"; then
        t_pass "$what: the error says what is wrong ($pattern)"
    else
        t_fail "$what: expected an 'imgfs import: ...' error matching /$pattern/, got: $out"
    fi
    t_eq "$what: image names unchanged" "$names" "$(t_image_names)"
    t_eq "$what: stored bytes unchanged" "$bytes" "$(t_stored_bytes)"
}

# A tree as umoci and tar both see it, for diffing unpacked images: one line per entry (type, mode,
# owner, size, links, mtime, symlink target), then file contents and xattrs. umoci does not set
# empty-valued xattrs (it skips them), so those are left out.
t_tree_listing() {
    (
        cd "$1"
        find . -mindepth 1 -print0 | LC_ALL=C sort -z | xargs -0 -r stat -c '%n|%F|%a|%u|%g|%s|%t:%T|%h|%Y|%N' |
            awk -F'|' 'BEGIN {OFS = "|"} $2 == "directory" {$6 = "-"} {print}'
        find . -type f -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum
        # in name order (getfattr -R follows the directory order, which differs between trees)
        find . -mindepth 1 -print0 | LC_ALL=C sort -z |
            xargs -0 -r getfattr -h -d -m - --absolute-names 2>/dev/null | grep -v '=""$' || true
    )
}

# Raw store records, to damage a store on purpose (lmdb-utils' mdb_dump / mdb_load): the value of
# KEY (hex) in database DB as hex, and a new value (hex) for it.
t_store_get() {
    mdb_dump -s "$1" "$IMGFS_ROOT" | awk -v k=" $2" 'f == 1 {print substr($0, 2); f = 2} $0 == k {f = 1}'
}
t_store_put() {
    printf 'VERSION=3\nformat=bytevalue\ntype=btree\nHEADER=END\n %s\n %s\nDATA=END\n' "$2" "$3" |
        mdb_load -s "$1" "$IMGFS_ROOT"
}

# A private dockerd (Debian's docker.io) for tests that use Docker as a peer: its own data root,
# exec root and socket under $T, no bridge, no iptables, stopped by PID at exit. `D ARGS...` runs
# the docker CLI against it. Skips the test when docker.io is not installed.
t_dockerd() {
    [[ -x /usr/sbin/dockerd && -x /usr/bin/docker ]] || t_skip "no docker.io (make deps)"
    T_DOCKER_SOCK=$T/d/docker.sock
    mkdir -p "$T/d"
    /usr/sbin/dockerd --bridge=none --iptables=false --ip6tables=false --data-root "$T/d/data" \
        --exec-root "$T/d/exec" --pidfile "$T/d/docker.pid" -H "unix://$T_DOCKER_SOCK" \
        >"$T/d/dockerd.log" 2>&1 &
    local pid=$!
    t_cleanup "kill $pid; wait $pid"
    t_wait_for 1200 D version --format "{{.Server.Version}}" >/dev/null ||
        { tail -n 20 "$T/d/dockerd.log"; t_fail "dockerd did not start"; return 1; }
}
D() { DOCKER_BUILDKIT=1 /usr/bin/docker -H "unix://$T_DOCKER_SOCK" "$@"; }
