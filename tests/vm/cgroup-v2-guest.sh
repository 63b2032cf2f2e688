#!/bin/bash
# tests/vm/cgroup-v2-guest.sh — the checks tests/vm/cgroup-v2.sh runs inside its VM, on a pure
# cgroup v2 host (cgroup2 at /sys/fs/cgroup, every controller there). Uses tests/lib.sh (its own
# store and run dir under /tmp, cleanup at exit); prints PASS/FAIL lines, exits 1 on a failure.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/../integration/60_security.bash"
t_pass() { _t_passed=$((_t_passed + 1)); echo "PASS $*"; }
t_fail() { _t_failed=$((_t_failed + 1)); echo "FAIL $*"; }
t_begin cgroup_v2_vm

cg=/sys/fs/cgroup
t_check "/sys/fs/cgroup is cgroup2" grep -q " $cg cgroup2 " /proc/mounts
t_check "no cgroup v1 hierarchy is mounted" bash -c '! grep -q " cgroup " /proc/mounts'
for c in memory pids cpu; do
    t_check "the $c controller is on v2" grep -qw "$c" "$cg/cgroup.controllers"
done
sec_probe_image probe
run() { "$IMGFS" run --rm --network none "$@"; }

# A container with the three limits; its group on the host side
"$IMGFS" run -d --name lim --network none --pids-limit 20 --cpus 0.5 -m 64m probe \
    sh -c 'while :; do :; done' >/dev/null
t_cleanup "'$IMGFS' rm -f lim"
id=$(sec_ctr_id lim)
dir=$cg/imgfs/$id
t_check "the container's group exists ($dir)" test -d "$dir"
t_eq "pids.max" 20 "$(cat "$dir/pids.max" 2>&1)"
t_eq "cpu.max (--cpus 0.5)" "50000 100000" "$(cat "$dir/cpu.max" 2>&1)"
t_eq "memory.max (-m 64m)" 67108864 "$(cat "$dir/memory.max" 2>&1)"
t_eq "memory.swap.max" 0 "$(cat "$dir/memory.swap.max" 2>&1)"

# --cpus 0.5: the busy loop runs out of quota, the kernel counts the throttled periods
throttled() { (($(awk '$1 == "nr_throttled" {print $2}' "$dir/cpu.stat") > 0)); }
t_check "--cpus 0.5: the busy loop is throttled (cpu.stat nr_throttled > 0)" t_wait_for 1000 throttled
t_note "$(tr '\n' ' ' <"$dir/cpu.stat")"

# stats reads the limits and the use from the v2 files
st=$("$IMGFS" stats --no-stream lim 2>&1) || true
t_note "stats: $(tr '\n' '|' <<<"$st")"
row=$(awk 'NR == 2' <<<"$st")
t_check "stats: the memory limit is 64MiB" grep -q "/ 64MiB" <<<"$row"
t_eq "stats: PIDS is the group's pids.current" "$(cat "$dir/pids.current")" "$(awk '{print $NF}' <<<"$row")"
pct=$(awk '{sub("%", "", $3); print $3}' <<<"$row")
# (one half-second sample; a CPU's 100 % unthrottled: under TCG the guest's clock makes it noisy)
t_check "stats: CPU % near the quota's 50 %, not a whole CPU (${pct:-?})" \
    awk -v p="${pct:-x}" 'BEGIN {exit !(p ~ /^[0-9.]+$/ && p <= 80)}'

# The container's view of /sys/fs/cgroup: its own group (cgroup namespace), read-only. The host's
# root group has no pids.max and has imgfs/ below it, so seeing pids.max 20 and no imgfs/ proves
# the view is the container's group, not 0::/ of the host.
view_script='
    echo "self $(grep "^0::" /proc/self/cgroup)"
    echo "pids.max $(cat /sys/fs/cgroup/pids.max 2>&1)"
    echo "cpu.max $(cat /sys/fs/cgroup/cpu.max 2>&1)"
    echo "memory.max $(cat /sys/fs/cgroup/memory.max 2>&1)"
    [ -e /sys/fs/cgroup/imgfs ] && echo "host-imgfs-dir seen"
    { echo max >/sys/fs/cgroup/pids.max && echo written; } 2>&1 | sed "s/^/write: /"
    echo "mount $(awk "\$5 == \"/sys/fs/cgroup\" {print \$9, \$6}" /proc/self/mountinfo)"
'
view_checks() { # view_checks HOW PIDS CPU MEM VIEW
    t_note "$1: $(tr '\n' ' ' <<<"$5")"
    t_check "$1: its own cgroup namespace (0::/)" grep -qx "self 0::/" <<<"$5"
    t_check "$1: pids.max is the container's ($2)" grep -qx "pids.max $2" <<<"$5"
    t_check "$1: cpu.max is the container's ($3)" grep -qx "cpu.max $3" <<<"$5"
    t_check "$1: memory.max is the container's ($4)" grep -qx "memory.max $4" <<<"$5"
    t_check "$1: the host's imgfs/ groups are not in the view" bash -c '! grep -q host-imgfs-dir <<<"$1"' _ "$5"
    t_check "$1: the view is a read-only cgroup2" grep -qE "^mount cgroup2 ro," <<<"$5"
    t_check "$1: pids.max cannot be raised from inside" grep -q "^write: .*Read-only file system" <<<"$5"
}
view_checks exec 20 "50000 100000" 67108864 "$("$IMGFS" exec lim sh -c "$view_script" 2>&1 || true)"
t_eq "pids.max unchanged after the write attempt" 20 "$(cat "$dir/pids.max" 2>&1)"
view_checks run 30 "25000 100000" 33554432 \
    "$(run --pids-limit 30 --cpus 0.25 -m 32m probe sh -c "$view_script" 2>&1 || true)"

# exec lands in the container's group: its process is listed in the group's cgroup.procs
"$IMGFS" exec lim sleep 100000 >/dev/null 2>&1 &
exec_pid=$!
t_cleanup "kill $exec_pid"
in_group() {
    local p
    for p in $(cat "$dir/cgroup.procs"); do
        [[ $(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null) == "sleep 100000 " ]] && return 0
    done
    return 1
}
t_check "exec: its process is in the container's group ($dir/cgroup.procs)" t_wait_for 400 in_group
kill "$exec_pid" 2>/dev/null || true

# --pids-limit: a fork loop stops at the limit, in run and in exec
out=$(run --pids-limit 20 probe sysprobe forks 200 2>&1) || true
n=$(sed -nE 's/^forks ([0-9]+) EAGAIN$/\1/p' <<<"$out")
t_check "run --pids-limit 20: the fork loop stops with EAGAIN ($out)" test -n "$n"
t_check "run: it stopped within the limit (${n:-?} <= 20)" test "${n:-999}" -le 20
out=$("$IMGFS" exec lim sysprobe forks 200 2>&1) || true
t_check "exec: the same limit holds ($out)" grep -qE '^forks (1?[0-9]|20) EAGAIN$' <<<"$out"
t_eq "without the limit 200 forks work" "forks ok" "$(run probe sysprobe forks 200 2>&1 || true)"

# -m: past the limit the kernel's OOM killer kills the process (exit 137, as Docker)
rc=0
"$IMGFS" run --name oom --network none -m 32m probe sysprobe hog 256 >/dev/null 2>&1 || rc=$?
t_cleanup "'$IMGFS' rm -f oom"
oom_id=$(sec_ctr_id oom)
t_eq "run -m 32m, 256 MiB touched: killed by SIGKILL (exit 137)" 137 "$rc"
t_eq "inspect: State.OOMKilled" true "$("$IMGFS" inspect -f '{{.State.OOMKilled}}' oom 2>&1)"
# a process of a running container killed: the live group's memory.events counts it
"$IMGFS" run -d --name oomlive --network none -m 32m probe sh -c 'sysprobe hog 256; sleep 100000' >/dev/null
t_cleanup "'$IMGFS' rm -f oomlive"
live_dir=$cg/imgfs/$(sec_ctr_id oomlive)
oom_counted() { awk '$1 == "oom_kill" && $2 > 0 {f = 1} END {exit !f}' "$live_dir/memory.events"; }
t_check "a running container's hog is OOM-killed: memory.events oom_kill > 0" t_wait_for 1000 oom_counted
t_note "memory.events: $(tr '\n' ' ' <"$live_dir/memory.events" 2>&1)"
t_eq "the container goes on (its shell survived)" true "$("$IMGFS" inspect -f '{{.State.Running}}' oomlive 2>&1)"
t_check "rm -f oomlive" "$IMGFS" rm -f oomlive
t_check "oomlive's group is gone" test ! -e "$live_dir"
t_eq "without -m the same 256 MiB are fine" "hog ok" "$(run probe sysprobe hog 256 2>&1 || true)"

# rm leaves no group behind
t_check "rm -f lim" "$IMGFS" rm -f lim
t_check "rm -f oom" "$IMGFS" rm -f oom
t_check "lim's group is gone" test ! -e "$dir"
t_check "oom's group is gone" test ! -e "$cg/imgfs/$oom_id"
t_eq "no group left under $cg/imgfs (or no imgfs/ at all)" "" "$(find "$cg/imgfs" -mindepth 1 -type d 2>/dev/null)"
t_end
