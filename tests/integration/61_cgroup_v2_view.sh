#!/bin/bash
# /sys/fs/cgroup inside a container on a cgroup v2 host: the container's own group, read-only,
# through a cgroup namespace rooted at it (/proc/self/cgroup says "0::/", as under Docker), and
# nothing of the host's tree or of other containers.
#
# This project's test host is v1/hybrid. The v2 code path is driven here the way bench/run.sh runs
# crun: in a private mount namespace whose /sys/fs/cgroup is a cgroup2 mount, so the runner takes
# it for a v2 host. That hierarchy has no controllers here (they are bound to v1): this test needs
# none — the namespace, the mount, its read-only flag, clone3(CLONE_INTO_CGROUP). The device
# program and the limits on real v2 controllers are 61_cgroup_v2_real's. On a real v2 host the
# test runs the same way (the private mount changes nothing there).
set -euo pipefail
if [[ -z ${IMGFS_V2_NS:-} ]]; then
    # once more, inside a private mount namespace (the mounts made here vanish with it)
    exec unshare -m --propagation private env IMGFS_V2_NS=1 bash "$0" "$@"
fi
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/60_security.bash"
t_begin cgroup_v2_view
t_cgroup_lock -s || t_skip "$T_CGROUP_LOCK stayed busy (61_cgroup_v2_real lends the v1 pids and cpu hierarchies to v2 under it)"
if ! grep -q " /sys/fs/cgroup cgroup2 " /proc/self/mounts; then
    mount -t cgroup2 none /sys/fs/cgroup 2>/dev/null || t_skip "cannot mount cgroup2 here"
fi
t_check "/sys/fs/cgroup is cgroup2 in this namespace" grep -q " /sys/fs/cgroup cgroup2 " /proc/self/mounts
sec_image cgv
run() { "$IMGFS" run --rm --network none "$@"; }

sec_other_container cgv
t_check "its group exists on the host side" test -d "/sys/fs/cgroup/imgfs/$other_id"
other_init=$(jq -r '.init_pid' "$IMGFS_RUN_DIR/containers/$other_id/state.json")
t_check "its init was born in it (clone3 into the group)" \
    grep -qx "$other_init" "/sys/fs/cgroup/imgfs/$other_id/cgroup.procs"

out=$(run cgv sh -c '
    echo ran
    echo "self $(grep "^0::" /proc/self/cgroup)"
    echo "mount $(awk "\$5 == \"/sys/fs/cgroup\" {print \$9, \$6}" /proc/self/mountinfo)"
    echo "procs $(tr "\n" " " </sys/fs/cgroup/cgroup.procs)"
    echo "pid $$"
    { mkdir /sys/fs/cgroup/x && echo made; } 2>&1 | sed "s/^/mkdir: /"
    { echo 1 >/sys/fs/cgroup/cgroup.max.depth && echo written; } 2>&1 | sed "s/^/write: /"
    echo "subdirs $(find /sys/fs/cgroup -mindepth 1 -type d | wc -l)"
    find /sys/fs/cgroup/ 2>/dev/null | grep -c '"$other_id"' || true
' 2>&1) || true
t_note "$(tr '\n' ' ' <<<"$out")"
t_check "the container ran" grep -qx ran <<<"$out"
t_check "its /proc/self/cgroup is the namespace's root (0::/)" grep -qx "self 0::/" <<<"$out"
t_check "/sys/fs/cgroup is a cgroup2 mount, read-only" grep -qE "^mount cgroup2 ro," <<<"$out"
pid=$(sed -n 's/^pid //p' <<<"$out")
t_eq "the shell is the container's PID 1" 1 "$pid"
t_check "its cgroup.procs lists the container's own processes (PID 1, the shell, and others)" \
    grep -qE "^procs 1 [0-9]+" <<<"$out"
t_check "the view is read-only (mkdir refused)" grep -q "^mkdir: .*Read-only file system" <<<"$out"
t_check "the view is read-only (write refused)" grep -q "^write: .*Read-only file system" <<<"$out"
t_check "no group below its own is visible" grep -qx "subdirs 0" <<<"$out"
t_check "the other container's group is not visible" grep -qx 0 <<<"$out"

t_check "rm removes the other container" "$IMGFS" rm -f other
t_check "and its group" test ! -e "/sys/fs/cgroup/imgfs/$other_id"
t_end
