#!/bin/bash
# tests/vm/cgroup-v2.sh — cgroup v2 with real controllers, checked in a VM (issue 9).
#
# This project's machine is cgroup v1/hybrid, so the suite cannot see limits enforced by v2
# controllers (tests/integration/61_cgroup_v2_real.sh part 2 skips). This script boots the host's
# own kernel under qemu with a pure v2 hierarchy (cgroup_no_v1=all) and runs
# tests/vm/cgroup-v2-guest.sh inside: limits enforced (pids, cpu, memory), `stats`, the container's
# cgroup namespace seen from `run` and from `exec`, no group left after `rm`.
#
# Not part of tests/run.sh (it needs qemu and a kernel image, and minutes under TCG). Run it as root
# from the repository, after `make`:
#     IMGFS_FIXTURES=/work/fixtures tests/vm/cgroup-v2.sh        (or: make test-vm)
# Needs (`make deps-vm` installs them): qemu-system-x86_64 (Debian: qemu-system-x86), a kernel /boot/vmlinuz-VERSION with its
# modules in /lib/modules/VERSION (Debian: linux-image-amd64; 9p, virtio_pci, fuse, overlay as
# modules or built in), busybox (static, for the initramfs), cpio, and the busybox.tar fixture.
# Skips (exit 0, a SKIP line) when one is missing.
# Environment: IMGFS_VM_KERNEL=/boot/vmlinuz-X (default the newest with modules),
# IMGFS_VM_ACCEL=tcg|kvm (default tcg: nested KVM hangs on this project's machine; with kvm,
# IMGFS_VM_CPU, default host,-arch-capabilities), IMGFS_VM_MEM (MiB, 2048), IMGFS_VM_TESTS (the
# suite's scripts also run in the guest, default "61_cgroup_v2_real 61_limits"; empty for none),
# IMGFS_VM_KEEP=1 keeps the work dir (console log, initramfs).
#
# The guest: an initramfs (busybox and the modules the 9p root needs) whose /init mounts the host's
# / read-only over virtio-9p, puts tmpfs on /tmp and /run, moves /dev /proc /sys there and
# switch_root's into it (a real root, not a chroot: mount namespaces, pivot_root and /proc work as
# on a host), then runs this script's --guest stage as PID 1: cgroup2 at /sys/fs/cgroup, the checks,
# then IMGFS_VM_TESTS; their output and exit code written to a second 9p share, poweroff.
# Output: the guest's PASS/FAIL lines; exit 1 when any check failed or the guest gave no result.
set -euo pipefail

if [[ ${1:-} == --guest ]]; then
    # PID 1 in the guest, on the host's root (read-only) after switch_root
    export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root TERM=dumb
    out=/run/vm-out
    # shellcheck disable=SC1091
    source "$out/env"
    rc=1
    {
        echo "guest: kernel $(uname -r), $(nproc) CPUs"
        mount -t cgroup2 -o nsdelegate cgroup2 /sys/fs/cgroup
        mkdir -p /dev/pts /dev/shm
        # devtmpfs has no /dev/fd (bash's process substitution needs it), as udev would make
        ln -sfn /proc/self/fd /dev/fd
        ln -sfn /proc/self/fd/0 /dev/stdin
        ln -sfn /proc/self/fd/1 /dev/stdout
        ln -sfn /proc/self/fd/2 /dev/stderr
        mount -t devpts -o newinstance,ptmxmode=0666 devpts /dev/pts
        mount -t tmpfs tmpfs /dev/shm
        modprobe fuse || true
        modprobe overlay || true
        ip link set lo up 2>/dev/null || true
        rc=0
        IMGFS_FIXTURES=$VM_FIXTURES IMGFS=$VM_IMGFS bash "$VM_TOP/tests/vm/cgroup-v2-guest.sh" || rc=1
        # the suite's own scripts on this real v2 host (61_cgroup_v2_real's part 2 skips on v1)
        for t in $VM_TESTS; do
            IMGFS_FIXTURES=$VM_FIXTURES IMGFS=$VM_IMGFS bash "$VM_TOP/tests/integration/$t.sh" 2>&1 |
                sed -E 's/^  ok   /PASS '"$t"': /; s/^  FAIL /FAIL '"$t"': /; s/^  SKIP /SKIP '"$t"': /'
            ((PIPESTATUS[0] == 0)) || rc=1
        done
    } >"$out/log" 2>&1 || true
    echo "$rc" >"$out/rc"
    sync
    echo o >/proc/sysrq-trigger # power off; qemu exits
    exit "$rc"                  # else PID 1 exits: panic=-1 reboots, and -no-reboot stops qemu
fi

TOP=$(cd "$(dirname "$0")/../.." && pwd)
IMGFS=${IMGFS_TEST_BIN:-$TOP/imgfs}
FIXTURES=${IMGFS_FIXTURES:-$TOP/tests/out/fixtures}
skip() { echo "SKIP cgroup-v2 VM: $*"; exit 0; }

[[ $(id -u) == 0 ]] || skip "needs root (the guest runs containers as root on the host's tree)"
QEMU=$(command -v qemu-system-x86_64) || skip "no qemu-system-x86_64 (Debian: apt-get install qemu-system-x86)"
BUSYBOX=$(command -v busybox) || skip "no busybox for the initramfs (Debian: busybox-static)"
file -L "$BUSYBOX" 2>/dev/null | grep -q "statically linked" || ldd "$BUSYBOX" 2>&1 | grep -q "not a dynamic" ||
    skip "$BUSYBOX is not statically linked (Debian: busybox-static)"
command -v cpio >/dev/null || skip "no cpio"
command -v modprobe >/dev/null || skip "no modprobe (Debian: kmod)"
[[ -x $IMGFS ]] || skip "no $IMGFS: run make first"
[[ -f $FIXTURES/busybox.tar ]] || skip "no $FIXTURES/busybox.tar (IMGFS_FIXTURES)"
kernel=${IMGFS_VM_KERNEL:-}
if [[ -z $kernel ]]; then
    for k in $(ls -1v /boot/vmlinuz-* 2>/dev/null | tac); do
        [[ -d /lib/modules/${k#/boot/vmlinuz-} ]] && { kernel=$k; break; }
    done
fi
[[ -n $kernel && -r $kernel ]] ||
    skip "no kernel image /boot/vmlinuz-* with modules in /lib/modules (Debian: apt-get install linux-image-amd64)"
kver=${kernel#/boot/vmlinuz-}
[[ -d /lib/modules/$kver ]] || skip "no /lib/modules/$kver for $kernel"
# TCG by default: on this project's machine (itself a VM) nested KVM hangs after the BIOS
accel=${IMGFS_VM_ACCEL:-tcg}
[[ $accel == tcg || -w /dev/kvm ]] || skip "IMGFS_VM_ACCEL=$accel but no writable /dev/kvm"

W=$(mktemp -d /tmp/imgfs-vm.XXXXXX)
qemu_pid=""
finish() {
    local rc=$?
    set +e
    if [[ -n $qemu_pid ]]; then
        kill "$qemu_pid" 2>/dev/null
        wait "$qemu_pid" 2>/dev/null
    fi
    if [[ ${IMGFS_VM_KEEP:-0} == 1 ]]; then echo "kept $W"; else rm -rf "$W"; fi
    exit "$rc"
}
trap finish EXIT
trap 'exit 143' TERM INT HUP

# the initramfs: busybox, the modules the 9p root needs (in load order), /init
R=$W/initramfs
mkdir -p "$R"/{bin,dev,proc,sys,newroot,mods}
cp "$BUSYBOX" "$R/bin/busybox"
mods=()
for m in virtio_pci 9pnet_virtio 9p; do
    while read -r verb path; do
        [[ $verb == insmod ]] || continue
        b=$(basename "$path")
        [[ " ${mods[*]} " == *" $b "* ]] && continue
        cp "$path" "$R/mods/$b"
        mods+=("$b")
    done < <(modprobe -S "$kver" --show-depends "$m" 2>/dev/null ||
        echo "missing $m")
done
printf '%s\n' "${mods[@]}" >"$R/mods/order"
cat >"$R/init" <<EOF
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
for m in \$(cat /mods/order); do insmod /mods/\$m || echo "initramfs: insmod \$m failed"; done
fail() { echo "initramfs: \$*"; echo o >/proc/sysrq-trigger; exit 1; }
mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144,cache=loose,ro host /newroot || fail "cannot mount the host's root"
mount -t tmpfs -o mode=1777 tmpfs /newroot/tmp || fail "tmpfs on /tmp"
mount -t tmpfs -o mode=755 tmpfs /newroot/run || fail "tmpfs on /run"
mkdir /newroot/run/vm-out
mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 out /newroot/run/vm-out || fail "cannot mount the result share"
mount --move /dev /newroot/dev
mount --move /proc /newroot/proc
mount --move /sys /newroot/sys
exec switch_root /newroot /bin/bash $TOP/tests/vm/cgroup-v2.sh --guest
EOF
chmod 755 "$R/init"
(cd "$R" && find . | cpio -o -H newc --quiet | gzip -1) >"$W/initramfs.gz"

mkdir -p "$W/out"
cat >"$W/out/env" <<EOF
VM_TOP=$(printf %q "$TOP")
VM_IMGFS=$(printf %q "$IMGFS")
VM_FIXTURES=$(printf %q "$FIXTURES")
VM_TESTS=$(printf %q "${IMGFS_VM_TESTS-61_cgroup_v2_real 61_limits}")
EOF

echo "cgroup-v2 VM: kernel $kernel, accel $accel, work dir $W"
"$QEMU" -accel "$accel" -m "${IMGFS_VM_MEM:-2048}" -smp 2 -nographic -no-reboot \
    $([[ $accel == kvm ]] && echo "-cpu ${IMGFS_VM_CPU:-host,-arch-capabilities}") \
    -kernel "$kernel" -initrd "$W/initramfs.gz" \
    -append "console=ttyS0 panic=-1 loglevel=4 cgroup_no_v1=all systemd.unified_cgroup_hierarchy=1 rdinit=/init" \
    -fsdev local,id=hostfs,path=/,security_model=passthrough,readonly=on,multidevs=remap \
    -device virtio-9p-pci,fsdev=hostfs,mount_tag=host \
    -fsdev local,id=outfs,path="$W/out",security_model=passthrough \
    -device virtio-9p-pci,fsdev=outfs,mount_tag=out \
    -nic none </dev/null >"$W/console.log" 2>&1 &
qemu_pid=$!
wait "$qemu_pid" || echo "qemu exited with $?"
qemu_pid=""

if [[ ! -f $W/out/rc ]]; then
    echo "FAIL cgroup-v2 VM: the guest gave no result; the console's end:"
    tail -n 40 "$W/console.log"
    exit 1
fi
cat "$W/out/log"
rc=$(cat "$W/out/rc")
echo "cgroup-v2 VM: guest exit $rc"
((rc == 0))
