#!/bin/bash
# A default container is as confined as Docker's: its capabilities, the seccomp filter, masked and
# read-only kernel paths, the device allowlist, no view of host processes or files, no leaked
# descriptors. Every forbidden operation is tried for real from inside (tests/integration/60_sysprobe.c).
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/60_security.bash"
t_begin security_default
sec_probe_image probe

run() { "$IMGFS" run --rm probe "$@"; }
run_init() { "$IMGFS" run --rm --init probe "$@"; }
# probe OP [ARG]: the probe's one-line verdict ("OP ok" / "OP EPERM"), whatever the exit status
probe() { run sysprobe "$@" 2>&1 || true; }

t_check "a default container starts" run true

# Capabilities: Docker's 14, nothing inheritable or ambient
t_eq "CapEff is Docker's default set" 00000000a80425fb "$(sec_status_field probe CapEff)"
t_eq "--init: imgfs's PID 1 keeps only CAP_KILL" "0000000000000020 0000000000000020" \
    "$("$IMGFS" run --rm --init probe sh -c 'grep -E "^Cap(Eff|Bnd):" /proc/1/status' | awk '{print $2}' | tr '\n' ' ' | sed 's/ $//')"
t_eq "CapPrm is Docker's default set" 00000000a80425fb "$(sec_status_field probe CapPrm)"
t_eq "CapBnd is Docker's default set" 00000000a80425fb "$(sec_status_field probe CapBnd)"
t_eq "CapInh is empty" 0000000000000000 "$(sec_status_field probe CapInh)"
t_eq "CapAmb is empty" 0000000000000000 "$(sec_status_field probe CapAmb)"
t_eq "seccomp filter mode" 2 "$(sec_status_field probe Seccomp)"
t_eq "a non-root user has no effective capabilities" 0000000000000000 \
    "$(sec_status_field probe CapEff -u 1000)"
t_eq "a non-root user keeps the bounding set" 00000000a80425fb "$(sec_status_field probe CapBnd -u 1000)"

# Forbidden operations (seccomp and missing capabilities)
t_eq "mount is refused" "mount EPERM" "$(probe mount)"
t_eq "unshare(CLONE_NEWNS) is refused" "unshare-ns EPERM" "$(probe unshare-ns)"
t_eq "unshare(CLONE_NEWUSER) is refused" "unshare-user EPERM" "$(probe unshare-user)"
t_eq "unshare(CLONE_NEWNET) is refused" "unshare-net EPERM" "$(probe unshare-net)"
t_eq "clone with CLONE_NEWNS is refused" "clone-newns EPERM" "$(probe clone-newns)"
t_eq "clone3 answers ENOSYS (libc falls back to clone)" "clone3 ENOSYS" "$(probe clone3)"
t_eq "keyctl is refused" "keyctl EPERM" "$(probe keyctl)"
t_eq "bpf is refused" "bpf EPERM" "$(probe bpf)"
t_eq "sethostname is refused" "sethostname EPERM" "$(probe sethostname)"
t_eq "personality(ADDR_NO_RANDOMIZE) is refused" "personality EPERM" "$(probe personality)"
t_eq "chroot is allowed (CAP_SYS_CHROOT is a default)" "chroot ok" "$(probe chroot)"
t_eq "a syscall newer than the profile answers ENOSYS" "future ENOSYS" "$(probe future)"
t_check_fails "busybox mount fails" run mount -t tmpfs none /mnt
t_check_fails "busybox unshare fails" run unshare -m true
t_check "fork and exec work under the filter" run sh -c 'sh -c "exit 3"; [ $? = 3 ]'

# ptrace of a process outside: invisible (pid namespace), and the process is not stopped
bash -c 'exec -a imgfs-host-marker sleep 100000' &
host_pid=$!
t_cleanup "kill $host_pid"
t_wait_for 100 grep -q imgfs-host-marker "/proc/$host_pid/cmdline"
out=$(probe ptrace "$host_pid")
t_check "ptrace of a host pid fails ($out)" test "$out" != "ptrace ok"
t_check "the host process is not being traced" \
    bash -c "grep -q '^TracerPid:[[:space:]]*0$' /proc/$host_pid/status"
t_eq "no host process is visible" 0 \
    "$(run sh -c 'cat /proc/[0-9]*/cmdline 2>/dev/null | tr "\0" " " | grep -c imgfs-host-[m]arker' || true)"
t_check "the container sees only its own processes" \
    test "$(run sh -c 'ls -d /proc/[0-9]* | wc -l')" -le 4

# With --init, PID 1 is imgfs's init, started from the host: its environment, descriptors and binary
# stay out of reach of the container's processes (non-dumpable; ptrace access checks)
t_check_fails "--init: the init's environment can't be read" run_init cat /proc/1/environ
t_check_fails "--init: the init's descriptors can't be followed" run_init readlink /proc/1/fd/0
t_check_fails "--init: the init's executable (a host file) can't be opened" \
    run_init head -c 1 /proc/1/exe
# Without it PID 1 is the command, and its binary is the image's, not imgfs's
t_eq "PID 1 is the command, an image file" /bin/busybox "$(run readlink /proc/1/exe)"
t_eq "PID 1 has the container's capabilities" 00000000a80425fb \
    "$(run sh -c 'grep "^CapEff:" /proc/1/status' | awk '{print $2}')"
t_eq "PID 1 carries the seccomp filter" 2 \
    "$(run sh -c 'grep "^Seccomp:" /proc/1/status' | awk '{print $2}')"

# Host files are not there
echo secret >"$T/host-secret"
t_check_fails "a host file is invisible" run test -e "$T/host-secret"
t_check_fails "the host's root is not reachable through /proc/1/root" \
    run test -e "/proc/1/root$T/host-secret"
t_check_fails "--init: the host's root is not reachable through /proc/1/root" \
    run_init test -e "/proc/1/root$T/host-secret"

# /proc and /sys: Docker's masked and read-only paths
t_check_fails "writing /proc/sysrq-trigger fails" run sh -c 'echo h >/proc/sysrq-trigger'
t_eq "/proc/kcore reads nothing" 0 "$(run sh -c 'head -c 16 /proc/kcore 2>/dev/null | wc -c' || echo err)"
t_eq "/proc/keys reads nothing" 0 "$(run sh -c 'cat /proc/keys 2>/dev/null | wc -c' || echo err)"
t_eq "/proc/timer_list reads nothing" 0 "$(run sh -c 'cat /proc/timer_list 2>/dev/null | wc -c' || echo err)"
t_eq "/sys/firmware is empty" 0 "$(run sh -c 'ls -A /sys/firmware 2>/dev/null | wc -l' || echo err)"
t_check_fails "/proc/sys is read-only" run sh -c 'echo 1 >/proc/sys/kernel/domainname'
t_check "/sys is mounted read-only" run sh -c 'grep -E "^[^ ]+ /sys sysfs ro[, ]" /proc/mounts'

# /dev: a tmpfs with the standard nodes only; a disk node made with mknod can't be opened
devs=$(run ls /dev | tr '\n' ' ')
for d in null zero full random urandom tty ptmx pts shm; do
    t_check "/dev/$d exists" grep -qw "$d" <<<"$devs"
done
t_eq "no disks in /dev" 0 "$(run sh -c 'ls /dev | grep -cE "^(sd|vd|nvme|loop|mem|kmem|port)" || true')"
out=$(probe mknod-read)
t_check "a mknod'ed block device can't be opened ($out)" \
    grep -qE '^(mknod|mknod-read) (EPERM|EACCES)$' <<<"$out"

# No descriptor of imgfs reaches the command
t_eq "no inherited descriptors" "fds none" "$(probe fds)"

# exec joins the container with the same confinement
"$IMGFS" run -d --name sec-exec probe sleep 100000 >/dev/null
t_cleanup "\"$IMGFS\" rm -f sec-exec"
ex() { "$IMGFS" exec sec-exec "$@"; }
t_eq "exec: CapEff" 00000000a80425fb "$(ex grep ^CapEff: /proc/self/status | awk '{print $2}')"
t_eq "exec: CapBnd" 00000000a80425fb "$(ex grep ^CapBnd: /proc/self/status | awk '{print $2}')"
t_eq "exec: seccomp filter" 2 "$(ex grep ^Seccomp: /proc/self/status | awk '{print $2}')"
t_eq "exec: mount refused" "mount EPERM" "$(ex sysprobe mount 2>&1 || true)"
t_eq "exec: keyctl refused" "keyctl EPERM" "$(ex sysprobe keyctl 2>&1 || true)"
t_eq "exec: no inherited descriptors" "fds none" "$(ex sysprobe fds 2>&1 || true)"
t_eq "exec -u 1000: no effective capabilities" 0000000000000000 \
    "$("$IMGFS" exec -u 1000 sec-exec grep ^CapEff: /proc/self/status | awk '{print $2}')"
t_check "exec: the host's processes stay invisible" \
    test "$(ex sh -c 'cat /proc/[0-9]*/cmdline 2>/dev/null | tr "\0" " " | grep -c imgfs-host-[m]arker' || true)" = 0
"$IMGFS" rm -f sec-exec >/dev/null

# The same on the Debian image (glibc, dash)
if [[ -s $FIXTURES/debian.tar.gz ]]; then
    "$IMGFS" import -q -t debian "$FIXTURES/debian.tar.gz"
    t_eq "debian: CapEff" 00000000a80425fb \
        "$("$IMGFS" run --rm debian sh -c 'grep ^CapEff: /proc/self/status' | awk '{print $2}')"
    t_check_fails "debian: mount fails" "$IMGFS" run --rm debian mount -t tmpfs none /mnt
    t_check_fails "debian: unshare fails" "$IMGFS" run --rm debian unshare -U true
    # ordinary programs are not hurt by the filter: threads, timers, signals, apt's locking
    t_check "debian: perl, apt-get, tar, threaded sort and timeout work under the filter" \
        "$IMGFS" run --rm debian sh -ec 'perl -e 1; apt-get -qq check; tar czf /tmp/e.tgz /etc
            seq 100000 | sort --parallel=2 -n >/dev/null; timeout 0.2 sleep 5 || [ $? = 124 ]'
fi
t_end
