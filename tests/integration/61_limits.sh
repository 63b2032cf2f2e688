#!/bin/bash
# --memory, --pids-limit and --cpus on this host's cgroups (v1 on hybrid hosts, v2 where unified):
# a memory hog is OOM-killed at the limit (exit 137), a fork loop stops at the pids limit, the CPU
# quota is set, and no cgroup outlives its container.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/60_security.bash"
t_begin limits
t_cgroup_lock -s || t_skip "$T_CGROUP_LOCK stayed busy (61_cgroup_v2_real lends the v1 pids and cpu hierarchies to v2 under it)"
[[ -w /sys/fs/cgroup ]] || t_skip "no writable /sys/fs/cgroup"
sec_probe_image probe
v2=0
[[ -e /sys/fs/cgroup/cgroup.controllers ]] && v2=1

run() { "$IMGFS" run --rm --network none "$@"; }

# Memory: a 256 MiB hog under --memory 64m is killed by the kernel; 16 MiB is fine
out=$(run --memory 64m probe sysprobe hog 256 2>&1) && rc=0 || rc=$?
t_eq "a memory hog is killed at --memory (137 = SIGKILL)" 137 "$rc"
t_check "it never finished" bash -c "! grep -q 'hog ok' <<<'$out'"
t_eq "under the limit it runs" "hog ok" "$(run --memory 64m probe sysprobe hog 16 2>&1)"
# inspect's State.OOMKilled, read from the group's OOM count before the group goes (Docker's)
"$IMGFS" run --name oom --network none --memory 64m probe sysprobe hog 256 >/dev/null 2>&1 || true
t_cleanup "'$IMGFS' rm -f oom"
t_eq "inspect: the OOM-killed container has State.OOMKilled true" true \
    "$("$IMGFS" inspect -f '{{.State.OOMKilled}}' oom 2>&1)"
"$IMGFS" run --name nooom --network none --memory 64m probe sysprobe hog 16 >/dev/null 2>&1 || true
t_cleanup "'$IMGFS' rm -f nooom"
t_eq "inspect: one under its limit has false" false "$("$IMGFS" inspect -f '{{.State.OOMKilled}}' nooom 2>&1)"
t_check "rm -f both" "$IMGFS" rm -f oom nooom
t_eq "without --memory the hog runs" "hog ok" "$(run probe sysprobe hog 256 2>&1)"

# pids: a fork loop stops with EAGAIN before the limit; without the limit it goes on
out=$(run --pids-limit 20 probe sysprobe forks 200 2>&1) || true
t_check "a fork loop stops at --pids-limit ($out)" grep -qE '^forks ([0-9]+) EAGAIN$' <<<"$out"
n=$(sed -nE 's/^forks ([0-9]+) EAGAIN$/\1/p' <<<"$out")
t_check "it stopped within the limit ($n <= 20)" test "${n:-999}" -le 20
t_eq "without the limit 200 forks work" "forks ok" "$(run probe sysprobe forks 200 2>&1 || true)"

# --cpus: the quota is written (cfs_quota_us / cpu.max) and a busy loop gets throttled
"$IMGFS" run -d --name lim --network none --cpus 0.5 --memory 32m --pids-limit 50 probe sh -c 'while :; do :; done' >/dev/null
t_cleanup "\"$IMGFS\" rm -f lim"
id=$(sec_ctr_id lim)
t_check "the container has an id" test -n "$id"
if ((v2 == 0)); then
    cpu=$(sec_cgroup_dir cpu "$id")
    t_check "its cpu cgroup exists" test -n "$cpu"
    t_eq "cpu.cfs_quota_us" 50000 "$(cat "$cpu/cpu.cfs_quota_us" 2>/dev/null)"
    t_eq "cpu.cfs_period_us" 100000 "$(cat "$cpu/cpu.cfs_period_us" 2>/dev/null)"
    mem=$(sec_cgroup_dir memory "$id")
    t_eq "memory.limit_in_bytes" 33554432 "$(cat "$mem/memory.limit_in_bytes" 2>/dev/null)"
    pids=$(sec_cgroup_dir pids "$id")
    t_eq "pids.max" 50 "$(cat "$pids/pids.max" 2>/dev/null)"
    dev=$(sec_cgroup_dir devices "$id")
    t_check "the devices allowlist is set" grep -q "^c 1:3 rwm" "$dev/devices.list"
    # the init is started inside its cgroups by the monitor's thread going in for the clone and
    # back out (cgroup.h, cgroup_enter_self): the container's processes are in, the monitor is not
    lim_init=$(jq -r '.init_pid' "$IMGFS_RUN_DIR/containers/$id/state.json")
    lim_mon=$(jq -r '.monitor_pid' "$IMGFS_RUN_DIR/containers/$id/state.json")
    for c in memory pids cpu devices; do
        d=$(sec_cgroup_dir "$c" "$id")
        t_check "$c: the init $lim_init is in the container's cgroup" grep -qx "$lim_init" "$d/cgroup.procs"
        t_check "$c: the monitor $lim_mon is not" bash -c "! grep -qx '$lim_mon' '$d/cgroup.procs'"
        t_check "$c: the monitor is back in its own cgroup" \
            bash -c "! grep -q '/imgfs/$id' /proc/$lim_mon/cgroup"
    done
    # exec's process moves itself in (runner/exec.c): it counts against the container's limits
    ex=$("$IMGFS" exec lim cat /proc/self/cgroup 2>&1 || true)
    for c in memory pids cpu devices; do
        t_check "exec: the process is in the container's $c cgroup" \
            grep -qE "^[0-9]+:([a-z]+,)*$c(,[a-z]+)*:.*/imgfs/$id\$" <<<"$ex"
    done
else
    dir=$(find /sys/fs/cgroup/imgfs -maxdepth 1 -type d -name "$id" | head -n 1)
    t_eq "cpu.max" "50000 100000" "$(cat "$dir/cpu.max" 2>/dev/null)"
    t_eq "memory.max" 33554432 "$(cat "$dir/memory.max" 2>/dev/null)"
    t_eq "pids.max" 50 "$(cat "$dir/pids.max" 2>/dev/null)"
fi

# The busy loop gets at most half a CPU: time how long it takes to burn 1 s of CPU (an upper bound on
# its rate, so a loaded machine can only make the check easier, never flaky)
init=$(jq -r '.init_pid // empty' "$IMGFS_RUN_DIR/containers/$id/state.json" 2>/dev/null || true)
# the shell is the container's PID 1 and runs the loop itself (a builtin loop, no child)
loop=$init
cpu_ticks() { awk '{print $14 + $15}' "/proc/$loop/stat"; }
if [[ -n $loop ]] && t0=$(cpu_ticks); then
    hz=$(getconf CLK_TCK)
    start=$(date +%s%N)
    t_check "the busy loop burns 1 s of CPU" t_wait_for 4000 bash -c "(( \$(awk '{print \$14 + \$15}' /proc/$loop/stat) >= $t0 + $hz ))"
    ms=$((($(date +%s%N) - start) / 1000000))
    t_check "--cpus 0.5: 1 s of CPU took at least 1.6 s ($ms ms)" test "$ms" -ge 1600
else
    t_fail "cannot find the busy loop (init pid ${init:-?})"
fi

# No cgroup outlives its container: removed with the container, also when its monitor is killed
t_check "rm -f removes the container" "$IMGFS" rm -f lim
t_eq "its cgroups are gone" "" "$(find /sys/fs/cgroup -type d -path "*/imgfs/$id" 2>/dev/null)"

"$IMGFS" run -d --name orphan --network none --memory 32m probe sleep 987654 >/dev/null
# (v1: under /sys/fs/cgroup/memory; v2: /sys/fs/cgroup/imgfs/ID)
t_check "the orphan-to-be has a cgroup" \
    test -n "$(find /sys/fs/cgroup -maxdepth 7 -type d -path "*/imgfs/$(sec_ctr_id orphan)" 2>/dev/null)"
t_cleanup "\"$IMGFS\" rm -f orphan"
id=$(sec_ctr_id orphan)
monitor=$(jq -r '.monitor_pid // empty' "$IMGFS_RUN_DIR/containers/$id/state.json" 2>/dev/null || true)
if [[ -n $monitor && $monitor != null ]]; then
    kill -9 "$monitor"
    # gone, or a zombie nobody reaps (its parent was the `imgfs run -d` that returned)
    t_wait_for 200 bash -c "[ ! -e /proc/$monitor ] || grep -q '^State:[[:space:]]*Z' /proc/$monitor/status"
    "$IMGFS" ps -a >/dev/null # notices the dead monitor and cleans up
    "$IMGFS" rm -f orphan >/dev/null 2>&1 || true
    t_eq "a killed monitor's container leaves no cgroup" "" \
        "$(find /sys/fs/cgroup -type d -path "*/imgfs/$id" 2>/dev/null)"
    t_check "and no process: sleep 987654 is gone" t_wait_for 200 bash -c "! pgrep -f 'sleep 98765[4]' >/dev/null"
else
    t_fail "no monitor pid in $IMGFS_RUN_DIR/containers/$id/state.json"
fi

# Bad values are imgfs's errors
t_eq "--memory nonsense fails with 125" 125 "$("$IMGFS" run --rm --memory lots probe true >/dev/null 2>&1; echo $?)"
t_eq "--cpus nonsense fails with 125" 125 "$("$IMGFS" run --rm --cpus -1 probe true >/dev/null 2>&1; echo $?)"
t_end
