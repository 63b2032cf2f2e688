#!/bin/bash
# The container's PID 1 (imgfs-init with --init, else the command) carries the container's seccomp
# filter, as every process of a Docker container does. A container with --cap-add SYS_PTRACE can ptrace its PID 1 and make it run
# system calls (60_sysprobe.c inject: re-runs the `syscall` instruction PID 1 is blocked behind with
# other registers): those the profile refuses must fail with the filter's EPERM there too. `imgfs
# exec`'d processes carry the filter as well.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/60_security.bash"
t_begin security_init
[[ $(uname -m) == x86_64 ]] || t_skip "the ptrace injection probe is x86_64 only"
sec_probe_image probe
run() { "$IMGFS" run --rm --network none --cap-add SYS_PTRACE "$@"; }
probe_init='echo ran; for op in getpid keyctl unshare-user; do sysprobe inject 1 $op; done; grep -E "^(Seccomp|NoNewPrivs|CapEff):" /proc/1/status; echo alive'

# Both shapes: with --init PID 1 is imgfs-init (CAP_KILL only), without it the command itself.
for init in --init ""; do
    m=${init:-"no --init"}
    # The route works: PID 1 runs an allowed call for us (getpid answers 1: it ran in PID 1).
    out=$(run $init probe sh -c "$probe_init" 2>&1) && rc=0 || rc=$?
    t_note "$m: $(tr '\n' ' ' <<<"$out")"
    t_check "$m: the container ran" grep -qx ran <<<"$out"
    t_check "$m: the injection reaches PID 1 (getpid there answers 1)" \
        grep -qx 'inject getpid ok 1' <<<"$out"
    t_check "$m: keyctl made by PID 1 is refused by the filter" \
        grep -qx 'inject keyctl EPERM' <<<"$out"
    t_check "$m: unshare(CLONE_NEWUSER) made by PID 1 is refused by the filter" \
        grep -qx 'inject unshare-user EPERM' <<<"$out"
    t_check "$m: PID 1 is in seccomp filter mode" grep -qP '^Seccomp:\t2$' <<<"$out"
    # imgfs-init keeps CAP_KILL alone; the command has Docker's set + SYS_PTRACE
    t_check "$m: PID 1's capabilities" \
        grep -qP "^CapEff:\t$([[ -n $init ]] && echo 0000000000000020 || echo 00000000a80c25fb)\$" \
        <<<"$out"
    t_check "$m: PID 1 survives the injections (the container ends normally)" \
        grep -qx alive <<<"$out"
    t_eq "$m: exit status" 0 "$rc"

    # The same with no-new-privileges (the command then installs its filter last)
    out=$(run $init --security-opt no-new-privileges probe sh -c "$probe_init" 2>&1) || true
    t_check "$m, no-new-privileges: the container ran" grep -qx ran <<<"$out"
    t_check "$m, no-new-privileges: keyctl by PID 1 refused" \
        grep -qx 'inject keyctl EPERM' <<<"$out"

    # The check can fail: with seccomp=unconfined PID 1 has no filter and keyctl goes through.
    out=$(run $init --security-opt seccomp=unconfined probe sh -c "$probe_init" 2>&1) || true
    t_check "$m, unconfined: the container ran" grep -qx ran <<<"$out"
    t_check "$m, unconfined: keyctl by PID 1 succeeds (the probe detects a missing filter)" \
        grep -q '^inject keyctl ok' <<<"$out"
done

# exec'd processes: the filter, and PID 1 refuses through them too
"$IMGFS" run -d --init --name initctr --network none --cap-add SYS_PTRACE probe sleep 1000 >/dev/null
t_cleanup "'$IMGFS' rm -f initctr"
t_wait_for 100 bash -c "'$IMGFS' ps | grep -q initctr"
out=$("$IMGFS" exec initctr sh -c 'echo ran; grep ^Seccomp: /proc/self/status; sysprobe keyctl; sysprobe inject 1 keyctl' 2>&1) || true
t_check "exec: the process ran" grep -qx ran <<<"$out"
t_check "exec: in seccomp filter mode" grep -qP '^Seccomp:\t2$' <<<"$out"
t_check "exec: keyctl refused" grep -qx 'keyctl EPERM' <<<"$out"
t_check "exec: keyctl by PID 1 through ptrace refused" grep -qx 'inject keyctl EPERM' <<<"$out"
out=$("$IMGFS" exec -u 1000 initctr sh -c 'echo ran; grep ^Seccomp: /proc/self/status' 2>&1) || true
t_check "exec -u 1000: in seccomp filter mode" grep -qP '^Seccomp:\t2$' <<<"$out"
t_end
