#!/bin/bash
# /sys/fs/cgroup inside a container shows the container's own cgroups, read-only (cgroup v1, this
# host: one bind of the container's directory per hierarchy imgfs manages, as runc does without a
# cgroup namespace), so tools and runtimes that read their limits find them: memory, CPU quota,
# pids. Other containers' groups and the host's tree are not visible.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/60_security.bash"
t_begin cgroup_view
t_cgroup_lock -s || t_skip "$T_CGROUP_LOCK stayed busy (61_cgroup_v2_real lends the v1 pids and cpu hierarchies to v2 under it)"
[[ -d /sys/fs/cgroup/memory && -e /sys/fs/cgroup/memory/cgroup.procs ]] || t_skip "not a cgroup v1 host (v2 view not built)"
sec_image cgv
run() { "$IMGFS" run --rm --network none "$@"; }

sec_other_container cgv

out=$(run -m 64m --cpus 1.5 --pids-limit 50 cgv sh -c '
    echo ran
    echo "mem $(cat /sys/fs/cgroup/memory/memory.limit_in_bytes)"
    echo "quota $(cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us)"
    echo "pids $(cat /sys/fs/cgroup/pids/pids.max)"
    { echo 1 >/sys/fs/cgroup/pids/pids.max && echo written; } 2>&1 | sed "s/^/write: /"
    { mkdir /sys/fs/cgroup/x && echo made; } 2>&1 | sed "s/^/mkdir: /"
    echo "subdirs $(find /sys/fs/cgroup/memory -mindepth 1 -type d | wc -l)"
    echo "mountroot $(awk "\$5 == \"/sys/fs/cgroup/memory\" {print \$4}" /proc/self/mountinfo)"
    echo "cgroup $(sed -n "s/^[0-9]*:memory://p" /proc/self/cgroup)"
    find /sys/fs/cgroup/ 2>/dev/null | grep -c '"$other_id"' || true
' 2>&1) || true
t_note "$(tr '\n' ' ' <<<"$out")"
t_check "the container ran" grep -qx ran <<<"$out"
t_check "its memory limit is visible (64 MiB)" grep -qx "mem 67108864" <<<"$out"
t_check "its CPU quota is visible (1.5 CPUs)" grep -qx "quota 150000" <<<"$out"
t_check "its pids limit is visible" grep -qx "pids 50" <<<"$out"
t_check "the view is read-only (write refused)" grep -q "^write: .*Read-only file system" <<<"$out"
t_check "the view is read-only (mkdir refused)" grep -q "^mkdir: .*Read-only file system" <<<"$out"
t_check "no group below its own is visible" grep -qx "subdirs 0" <<<"$out"
mountroot=$(sed -n 's/^mountroot //p' <<<"$out")
t_check "the memory mount's root is the container's own group ($mountroot)" grep -q "/imgfs/" <<<"$mountroot"
t_eq "mountinfo and /proc/self/cgroup agree (path lookup works)" "cgroup $mountroot" "$(grep '^cgroup ' <<<"$out")"
t_check "the other container's group is not visible" grep -qx 0 <<<"$out"
t_end
