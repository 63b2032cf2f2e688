#!/bin/bash
# cgroup v2 for real, with controllers: --pids-limit and --cpus enforced and seen from inside the
# container's own cgroup namespace, `stats` reading them, --device through the v2 device program,
# and no cgroup left after `rm`.
#
# This project's test host is v1/hybrid: every controller is bound to a v1 hierarchy and its
# cgroup2 (/sys/fs/cgroup/unified) has none. A v1 controller whose hierarchy has no child cgroup
# and no other mount can be lent to v2: unmount the hierarchy and the kernel moves the controller to
# the cgroup2 hierarchy (cgroup.controllers lists it); clear it from every cgroup.subtree_control
# and mount the v1 hierarchy again to give it back. So the script, in a private mount namespace
# whose /sys/fs/cgroup is a cgroup2 mount (the runner then takes its v2 path, as on a v2 host):
#  1. the device program, which needs no controller: /dev/null, a --device node (read-only),
#     mknod + open of a device not allowed refused with EPERM — in the container and in an exec;
#  2. under /work/cgroup.lock (tests/lib.sh t_cgroup_lock; the tests using v1 limits hold it
#     shared), lends the v1 pids and cpu hierarchies to v2 for as short a time as it can, checks the
#     limits, and gives them back — in the EXIT trap, and from a watchdog if the script is killed
#     outright. Where they cannot be lent (a container or a dockerd's `docker/` group in them, a
#     mount in another namespace), part 2 is skipped and says why.
# On a real v2 host nothing is lent: the controllers are there already.
set -euo pipefail
if [[ -z ${IMGFS_V2_NS:-} ]]; then
    # the host's mount namespace stays reachable through descriptor 9 (to unmount and mount the
    # v1 hierarchies there); the rest runs in a private one whose mounts vanish with it
    exec 9</proc/self/ns/mnt
    exec unshare -m --propagation private env IMGFS_V2_NS=1 bash "$0" "$@"
fi
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/60_security.bash"
t_begin cgroup_v2_real
host() { nsenter --mount=/proc/self/fd/9 -- "$@"; }
[[ -e /proc/self/fd/9 ]] || t_fail "no descriptor of the host's mount namespace"

# The v1 hierarchies of pids and cpu, as the host mounts them: "MOUNTPOINT OPTIONS" (OPTIONS the
# controllers, e.g. cpu,cpuacct), one line each, taken before anything changes
v1_of() { # v1_of CONTROLLER
    host awk -v c="$1" '$0 ~ / - cgroup / {
        n = split($NF, o, ","); for (i = 1; i <= n; i++) if (o[i] == c) {
            opts = ""; for (j = 1; j <= n; j++) if (o[j] != "rw" && o[j] != "ro") opts = opts (opts ? "," : "") o[j]
            print $5, opts } }' /proc/self/mountinfo
}
declare -A v1_mount v1_opts
for c in pids cpu; do
    read -r m o < <(v1_of "$c") || true
    [[ -n ${m:-} ]] && v1_mount[$c]=$m v1_opts[$c]=$o
    unset m o
    # our copy of it would keep the hierarchy alive: this namespace needs no v1 mounts
    [[ -n ${v1_mount[$c]:-} ]] && umount "${v1_mount[$c]}"
done
mountpoint -q /sys/fs/cgroup && [[ $(stat -f -c %T /sys/fs/cgroup) == cgroup2fs ]] ||
    mount -t cgroup2 none /sys/fs/cgroup 2>/dev/null || t_skip "cannot mount cgroup2 here"
t_check "/sys/fs/cgroup is cgroup2 in this namespace" grep -q " /sys/fs/cgroup cgroup2 " /proc/self/mounts
sec_probe_image probe
run() { "$IMGFS" run --rm --network none "$@"; }

# 1. devices (BPF_PROG_TYPE_CGROUP_DEVICE, runner/cgroup.c): Docker's list plus --device rules
out=$(run --device /dev/fuse:/dev/xfuse:r probe sh -c '
    echo ran
    echo x >/dev/null && echo null-w-ok
    head -c 4 /dev/zero | wc -c | sed "s/^/zero-r /"
    : </dev/xfuse && echo dev-r-ok
    { : >/dev/xfuse && echo dev-w-ok; } 2>&1 | sed "s/^/dev-w: /"
    sysprobe mknod-read
' 2>&1) || true
t_note "$(tr '\n' ' ' <<<"$out")"
t_check "the container ran" grep -qx ran <<<"$out"
t_check "/dev/null can be written" grep -qx null-w-ok <<<"$out"
t_check "/dev/zero can be read" grep -qx "zero-r 4" <<<"$out"
t_check "--device NODE:PATH:r: the node opens for reading" grep -qx dev-r-ok <<<"$out"
t_check "--device NODE:PATH:r: not for writing (EPERM)" grep -q "^dev-w: .*Operation not permitted" <<<"$out"
t_check "a block device made inside (mknod) cannot be opened: EPERM" grep -qx "mknod-read EPERM" <<<"$out"
t_eq "--device /dev/fuse with the default rwm: read and write" "rw" \
    "$(run --device /dev/fuse probe sh -c ': </dev/fuse && echo -n r; : >/dev/fuse && echo w' 2>&1)"
"$IMGFS" run -d --name devs --network none probe sleep 100000 >/dev/null
t_cleanup "'$IMGFS' rm -f devs"
devs_id=$(sec_ctr_id devs)
t_eq "exec: /dev/null works" ok "$("$IMGFS" exec devs sh -c 'echo x >/dev/null && echo ok' 2>&1)"
t_eq "exec: a block device made inside cannot be opened" "mknod-read EPERM" \
    "$("$IMGFS" exec devs sysprobe mknod-read 2>&1 || true)"
t_eq "exec: the process sees its group as its cgroup namespace's root" "0::/" \
    "$("$IMGFS" exec devs grep "^0::" /proc/self/cgroup 2>&1)"
# "0::/" holds as well for a process left in the host's root group outside the namespace: prove
# from the host that the exec'd process is in the container's own group
devs_dir=/sys/fs/cgroup/imgfs/$devs_id
t_check "the container's group is on cgroup v2 ($devs_dir)" test -d "$devs_dir"
"$IMGFS" exec devs sh -c 'echo $$ >/tmp/exec.pid; exec sleep 100001' &
exec_client=$!
t_cleanup "kill $exec_client 2>/dev/null; wait $exec_client 2>/dev/null"
in_group() { # in_group DIR: the PID of the exec'd sleep, when DIR's cgroup.procs has it
    local p
    for p in $(cat "$1/cgroup.procs"); do
        [[ $(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null) == "sleep 100001 " ]] && { echo "$p"; return 0; }
    done
    return 1
}
t_check "exec: the process is in the container's cgroup.procs" t_wait_for 200 in_group "$devs_dir"
exec_pid=$(in_group "$devs_dir" || true)
t_eq "exec: the host sees it in the container's own group" "0::/imgfs/$devs_id" \
    "$(grep "^0::" "/proc/${exec_pid:-0}/cgroup" 2>&1)"
"$IMGFS" exec devs sh -c 'kill $(cat /tmp/exec.pid)'
wait "$exec_client" || true
t_check "rm -f removes it" "$IMGFS" rm -f devs
t_check "and its group" test ! -e "/sys/fs/cgroup/imgfs/$devs_id"
out=$(run --privileged probe sysprobe mknod-read 2>&1 || true)
t_check "--privileged: no device program (the open reaches the driver: $out)" \
    grep -qE "^mknod-read (ok|ENXIO|ENODEV)$" <<<"$out"

# 2. limits on real v2 controllers: lend pids (and cpu, where it can be) for the checks
v2_has() { grep -qw "$1" /sys/fs/cgroup/cgroup.controllers; }
# Why a v1 hierarchy cannot be lent, or nothing
busy_reason() { # busy_reason CONTROLLER
    local m=${v1_mount[$1]} kids ns p own host_ns
    kids=$(host find "$m" -mindepth 1 -maxdepth 1 -type d -printf '%f ' 2>/dev/null)
    [[ -n $kids ]] && { echo "the v1 $1 hierarchy has child cgroups (${kids% }): in use"; return; }
    [[ $(host awk -v m="$m" '$5 == m' /proc/self/mountinfo | wc -l) == 1 ]] ||
        { echo "the v1 $1 hierarchy is mounted more than once"; return; }
    own=$(readlink /proc/self/ns/mnt) host_ns=$(host readlink /proc/self/ns/mnt)
    for p in /proc/[0-9]*; do
        ns=$(readlink "$p/ns/mnt" 2>/dev/null) || continue
        [[ $ns == "$own" || $ns == "$host_ns" ]] && continue
        if grep -qE " - cgroup [^ ]+ ([^ ]*,)?$1(,[^ ]*)?\$" "$p/mountinfo" 2>/dev/null; then
            echo "the v1 $1 hierarchy is mounted in another mount namespace (pid ${p#/proc/})"
            return
        fi
    done
}
lend=()
for c in pids cpu; do
    v2_has "$c" && continue # already on v2 (a real v2 host)
    [[ -n ${v1_mount[$c]:-} ]] || { t_note "no v1 $c hierarchy and no v2 $c controller"; continue; }
    lend+=("$c")
done

# Giving back: no v2 group may keep a lent controller enabled (deepest first), then the v1
# hierarchies are mounted again where they were (retried while the kernel releases the v2 state).
# Idempotent; run from the EXIT trap and from the watchdog, in this namespace (where
# /sys/fs/cgroup is the cgroup2 hierarchy) with the mounts made through descriptor 9.
give_back_script='
for c in "$@"; do
    c=${c%%=*}
    find /sys/fs/cgroup -depth -type d -print0 2>/dev/null | while IFS= read -r -d "" d; do
        grep -qw "$c" "$d/cgroup.subtree_control" 2>/dev/null && echo "-$c" >"$d/cgroup.subtree_control" 2>/dev/null
    done
done
rc=0
for spec in "$@"; do
    c=${spec%%=*} rest=${spec#*=} m=${rest%%:*} o=${rest#*:}
    for i in $(seq 200); do
        nsenter --mount=/proc/self/fd/9 -- awk -v m="$m" "\$5 == m && / - cgroup / {f = 1} END {exit !f}" /proc/self/mountinfo && break
        nsenter --mount=/proc/self/fd/9 -- mount -t cgroup -o "$o" cgroup "$m" 2>/dev/null && break
        sleep 0.05
    done
    nsenter --mount=/proc/self/fd/9 -- awk -v m="$m" "\$5 == m && / - cgroup / {f = 1} END {exit !f}" /proc/self/mountinfo ||
        { echo "GIVE BACK FAILED: the v1 $c hierarchy is not mounted at $m again (mount -t cgroup -o $o cgroup $m)" >&2; rc=1; }
done
exit $rc'
give_back() { bash -c "$give_back_script" give-back "${lent_specs[@]}"; }

lent_specs=() reason=""
if ((${#lend[@]} == 0)); then
    t_note "nothing to lend: the cgroup2 hierarchy has $(cat /sys/fs/cgroup/cgroup.controllers)"
else
    t_cgroup_lock -x 120 || t_skip "part 2: $T_CGROUP_LOCK stayed busy for 120 s"
    for c in "${lend[@]}"; do
        why=$(busy_reason "$c")
        if [[ -n $why ]]; then
            [[ $c == pids ]] && { reason=$why; break; }
            t_note "cpu not lent ($why): --cpus not checked"
            continue
        fi
        lent_specs+=("$c=${v1_mount[$c]}:${v1_opts[$c]}")
    done
    [[ -n $reason ]] && t_skip "part 2 (limits on real v2 controllers): $reason"
    # from here the v1 hierarchies may be unmounted on the host: give them back whatever happens,
    # even if this script is killed outright (the watchdog, in its own session, waits for us)
    trap 'exit 143' TERM INT HUP
    t_cleanup give_back
    setsid bash -c 'tail --pid="$1" -f /dev/null; shift; bash -c "$0" give-back "$@"' \
        "$give_back_script" "$$" "${lent_specs[@]}" </dev/null >/dev/null 2>&1 &
    lent=()
    for spec in "${lent_specs[@]}"; do
        c=${spec%%=*}
        host umount "${v1_mount[$c]}" && lent+=("$c") || t_note "umount ${v1_mount[$c]} failed"
    done
    for c in "${lent[@]}"; do
        t_wait_for 100 v2_has "$c" || reason="the kernel kept the v1 $c hierarchy after its unmount"
    done
    if [[ -n $reason || ${#lent[@]} == 0 ]]; then
        give_back || t_fail "the v1 hierarchies are back"
        t_skip "part 2: ${reason:-nothing could be unmounted}"
    fi
    t_note "lent to cgroup v2: ${lent[*]} (now $(cat /sys/fs/cgroup/cgroup.controllers))"
fi
v2_has pids || t_skip "part 2: no pids controller on cgroup v2"
cpu=0
v2_has cpu && cpu=1

lim=(--pids-limit 20)
((cpu)) && lim+=(--cpus 0.05)
"$IMGFS" run -d --name lim --network none "${lim[@]}" probe sh -c 'while :; do :; done' >/dev/null
t_cleanup "'$IMGFS' rm -f lim"
id=$(sec_ctr_id lim)
dir=/sys/fs/cgroup/imgfs/$id
t_check "the container's group is on cgroup v2 ($dir)" test -d "$dir"
t_eq "pids.max on the host side" 20 "$(cat "$dir/pids.max" 2>&1)"
view=$("$IMGFS" exec lim sh -c '
    echo "self $(grep "^0::" /proc/self/cgroup)"
    echo "pids.max $(cat /sys/fs/cgroup/pids.max)"
    echo "cpu.max $(cat /sys/fs/cgroup/cpu.max 2>&1)"
    { echo max >/sys/fs/cgroup/pids.max && echo written; } 2>&1 | sed "s/^/write: /"
    echo "mount $(awk "\$5 == \"/sys/fs/cgroup\" {print \$9, \$6}" /proc/self/mountinfo)"
' 2>&1) || true
t_note "$(tr '\n' ' ' <<<"$view")"
t_check "exec: its own cgroup namespace (0::/)" grep -qx "self 0::/" <<<"$view"
t_check "pids.max in the container's view" grep -qx "pids.max 20" <<<"$view"
t_check "the view is a read-only cgroup2" grep -qE "^mount cgroup2 ro," <<<"$view"
t_check "pids.max cannot be raised from inside" grep -q "^write: .*Read-only file system" <<<"$view"
t_eq "pids.max unchanged" 20 "$(cat "$dir/pids.max" 2>&1)"
if ((cpu)); then
    t_check "cpu.max in the container's view (5 ms every 100 ms)" grep -qx "cpu.max 5000 100000" <<<"$view"
    # the busy loop is throttled: the kernel counts the periods it ran out of quota (no clock here)
    throttled() { (($(awk '$1 == "nr_throttled" {print $2}' "$dir/cpu.stat") > 0)); }
    t_check "--cpus 0.05: the busy loop is throttled (cpu.stat nr_throttled)" t_wait_for 400 throttled
    st=$("$IMGFS" stats --no-stream lim 2>&1) || true
    t_note "$(tail -n1 <<<"$st")"
    pct=$(awk 'NR == 2 {sub("%", "", $3); print $3}' <<<"$st")
    t_check "stats: CPU % at most the quota's 5 % plus rounding (${pct:-?})" \
        awk -v p="${pct:-x}" 'BEGIN {exit !(p ~ /^[0-9.]+$/ && p <= 10)}'
else
    st=$("$IMGFS" stats --no-stream lim 2>&1) || true
fi
t_eq "stats: PIDS is the group's pids.current" "$(cat "$dir/pids.current")" "$(awk 'NR == 2 {print $NF}' <<<"$st")"

# a fork loop stops at the limit; exec'd processes count against it too
out=$(run --pids-limit 20 probe sysprobe forks 200 2>&1) || true
t_check "a fork loop stops at --pids-limit 20 ($out)" grep -qE '^forks ([0-9]+) EAGAIN$' <<<"$out"
n=$(sed -nE 's/^forks ([0-9]+) EAGAIN$/\1/p' <<<"$out")
t_check "it stopped within the limit (${n:-?} <= 20)" test "${n:-999}" -le 20
out=$("$IMGFS" exec lim sysprobe forks 200 2>&1) || true
t_check "exec: the same limit holds ($out)" grep -qE '^forks (1?[0-9]) EAGAIN$' <<<"$out"
t_eq "without the limit 200 forks work" "forks ok" "$(run probe sysprobe forks 200 2>&1 || true)"

# a limit whose controller v2 lacks here (memory stays on v1): said so, nothing left behind
if ! v2_has memory; then
    out=$(run --memory 64m probe true 2>&1) && rc=0 || rc=$?
    t_check "--memory without a v2 memory controller fails ($rc)" test "$rc" -ne 0
    t_check "and says why ($out)" grep -q -- "--memory: the host's cgroup v2 hierarchy has no memory controller" <<<"$out"
fi

t_check "rm -f removes the container" "$IMGFS" rm -f lim
t_check "and its group" test ! -e "$dir"
if ((${#lent_specs[@]})); then
    t_check "the lent controllers are given back to v1" give_back
    for spec in "${lent_specs[@]}"; do
        c=${spec%%=*}
        t_check "the v1 $c hierarchy is mounted again" \
            host awk -v m="${v1_mount[$c]}" '$5 == m && / - cgroup / {f = 1} END {exit !f}' /proc/self/mountinfo
        t_check "and cgroup v2 no longer has $c" bash -c "! grep -qw $c /sys/fs/cgroup/cgroup.controllers"
    done
fi
t_end
