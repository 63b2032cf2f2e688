#!/bin/bash
# An `imgfs exec`'d process must never be visible in the container before it is confined as the
# container is. It used to appear in the container's pid namespace right after the fork, holding
# every capability of imgfs and no seccomp filter, until it set itself up: a container with
# --cap-add SYS_PTRACE could attach to it in that window and use those capabilities. A probe in the
# container (60_sysprobe.c catch-new) ptrace-attaches every new process as soon as it shows up in
# /proc while the host runs execs, and reads its CapEff and Seccomp while it is stopped.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/60_security.bash"
t_begin security_exec_ptrace
sec_probe_image probe
"$IMGFS" run -d --name pt --network none --cap-add SYS_PTRACE probe sleep 100000 >/dev/null
t_cleanup "'$IMGFS' rm -f pt"
t_wait_for 200 bash -c "'$IMGFS' ps | grep -q ' pt\$'" || true
want_caps=$("$IMGFS" exec pt sh -c 'grep ^CapEff: /proc/self/status' | awk '{print $2}')
t_check "the container's capability set ($want_caps)" test -n "$want_caps"
rounds=40
[[ $IMGFS_ASAN == 1 ]] && rounds=15
"$IMGFS" exec pt sysprobe catch-new 1000 >"$T/caught" 2>&1 &
catcher=$!
t_cleanup "kill $catcher"
t_check "the probe watches the container's pid namespace" t_wait_for 400 grep -q 'catch-new ready' "$T/caught"
for ((i = 0; i < rounds; i++)); do
    "$IMGFS" exec pt true
    "$IMGFS" exec -u 1000 pt true
done
"$IMGFS" exec pt touch /tmp/stop-catch
wait "$catcher" || true
caught=$(grep -c '^caught' "$T/caught" || true)
t_note "caught $caught processes; states: $(grep '^caught' "$T/caught" | awk '{print $3, $4}' | sort | uniq -c | tr '\n' ';')"
t_check "the probe caught exec'd processes (it works)" test "$caught" -ge 10
bad=$(grep '^caught' "$T/caught" | grep -v -e "CapEff=$want_caps Seccomp=2" -e "CapEff=0000000000000000 Seccomp=2" || true)
t_eq "every exec'd process the container could reach was already confined" "" "$bad"
t_end
