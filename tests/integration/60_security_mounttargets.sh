#!/bin/bash
# Every place the runner mounts something (proc, sys, dev, dev/pts, dev/shm, dev/mqueue, the /etc
# files, the masked paths, --tmpfs and -v targets) and WORKDIR, made a symlink in the image to `/`,
# to `..` and to a host directory. The mount must never land on the container's root or outside it:
# an image with `/proc -> /` used to get procfs mounted over its root, reachable as `/..` without a
# mask, /proc/sys writable (core_pattern: a program run as root on the host). Each case either runs
# (proved by its output) and then finds, from inside, no procfs/sysfs outside /proc and /sys and
# /proc/sys/kernel/core_pattern read-only (60_sysprobe.c kernelfs), or is refused with an error that
# names the path. Nothing is ever written to core_pattern.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/60_security.bash"
t_begin security_mounttargets
t_need_fixture busybox.tar

host_dir=$(mktemp -d /tmp/imgfs-hostdir.XXXXXX)
t_cleanup "rm -rf '$host_dir'"
echo marker >"$host_dir/host-marker"
snapshot() { (cd "$1" && find . -printf '%p %y %s %m %T@\n' | sort && find . -type f -exec md5sum {} + | sort); }
before=$(snapshot "$host_dir")
mkdir -p "$T/vol"
echo volume-content >"$T/vol/volfile"

run() { "$IMGFS" run --rm --network none "$@"; }
# The script every started container runs: proof it ran, then the probe.
inside='echo ran; sysprobe kernelfs'

n=0
# runs_clean WHAT IMAGE [run options...] [-- EXTRA SHELL]: the container runs, no kernel fs leaks
runs_clean() {
    local what=$1 image=$2 extra=""
    shift 2
    local opts=()
    while (($#)) && [[ $1 != -- ]]; do opts+=("$1"); shift; done
    (($#)) && { shift; extra="; $*"; }
    local out rc=0
    out=$(run "${opts[@]}" "$image" sh -c "$inside$extra" 2>&1) || rc=$?
    if [[ $(head -n 1 <<<"$out") != ran ]]; then
        t_fail "$what: the container did not run (exit $rc): $(tr '\n' ' ' <<<"$out")"
        return
    fi
    t_pass "$what: the container ran"
    t_check "$what: no procfs/sysfs outside /proc and /sys ($(grep kernelfs <<<"$out"))" \
        grep -qx 'kernelfs none' <<<"$out"
    t_check "$what: /proc/sys/kernel/core_pattern read-only" grep -qx 'core_pattern ro' <<<"$out"
    t_check "$what: exit 0" test "$rc" = 0
    last_out=$out
}
# refused WHAT PATTERN IMAGE [run options...]: exit 125 with an `imgfs run:` error matching PATTERN
refused() {
    local what=$1 pattern=$2 image=$3
    shift 3
    local out rc=0
    out=$(run "$@" "$image" sh -c "$inside" 2>&1) || rc=$?
    if grep -qx ran <<<"$out"; then
        t_fail "$what: the container ran: $(tr '\n' ' ' <<<"$out")"
        return
    fi
    t_eq "$what: refused with exit 125" 125 "$rc"
    t_check "$what: the error names the path ($(head -n 1 <<<"$out"))" \
        grep -qE "^imgfs run: .*$pattern" <<<"$out"
}

# A control: the probe image as it is runs clean (so a failing probe is not the image's fault).
sec_image plain --probe
runs_clean "plain busybox" plain

# /proc and /sys: a symlink there (or a file) is refused, never followed — as runc does.
for fs in proc sys; do
    for target in / .. "$host_dir"; do
        sec_image "k$((++n))" --probe "$fs=$target"
        refused "/$fs -> $target" "\`/$fs\` in the image is a symlink \(to \`$target\`\): $fs must be mounted on an ordinary directory" "k$n"
    done
done
sec_image "k$((++n))" --probe "proc<$T/vol/volfile"
refused "/proc a regular file" "\`/proc\` in the image is not a directory" "k$n"

# The masked and read-only paths live in procfs/sysfs; symlinks the image put in its own /proc and
# /sys directories are under the kernel's mounts and must change nothing.
sec_image masks --probe "proc/sys=/" "proc/kcore=.." "sys/firmware=$host_dir" "proc/sysrq-trigger=/"
runs_clean "symlinks inside the image's /proc and /sys" masks -- 'test -d /proc/sys/kernel && echo procsys; ls /sys/firmware | wc -l'
t_check "the kernel's /proc/sys is there" grep -qx procsys <<<"$last_out"
t_check "/sys/firmware is masked (empty)" grep -qx 0 <<<"$last_out"

# /dev: to the root or `..` (= the root) is refused; elsewhere inside the root it gets the tmpfs.
for target in / ..; do
    sec_image "k$((++n))" --probe "dev=$target"
    refused "/dev -> $target" "mount target \`/dev\` resolves to the container's root directory" "k$n"
done
sec_image devhost --probe "dev=$host_dir"
runs_clean "/dev -> $host_dir" devhost -- 'test -c /dev/null && echo devnull; ls /dev/ | grep -c host-marker || true'
t_check "/dev -> host path: the devices are there" grep -qx devnull <<<"$last_out"
t_check "/dev -> host path: no host file in it" grep -qx 0 <<<"$last_out"
sec_image devproc --probe "dev=/proc/sys"
refused "/dev -> /proc/sys" "mount target \`/dev\` resolves to \`/proc/sys\`, inside a kernel file system" devproc

# dev/pts, dev/shm, dev/mqueue: the image's entries are under the runner's /dev tmpfs.
for sub in pts shm mqueue; do
    for target in / .. "$host_dir"; do
        sec_image "k$((++n))" --probe "dev/$sub=$target"
        runs_clean "/dev/$sub -> $target" "k$n" -- "stat -f -c '%t' /dev/$sub"
        case $sub in
        pts) want=1cd1 ;; shm) want=1021994 ;; mqueue) want=19800202 ;;
        esac
        t_check "/dev/$sub -> $target: the kernel's $sub is mounted there" grep -qx "$want" <<<"$last_out"
    done
done

# The runner's /etc files: to the root or `..` refused; to a host path: made and bound inside.
for f in hosts hostname resolv.conf; do
    for target in / ..; do
        sec_image "k$((++n))" --probe "etc/$f=$target"
        refused "/etc/$f -> $target" "mount target \`/etc/$f\` resolves to the container's root directory" "k$n"
    done
    sec_image "k$((++n))" --probe "etc/$f=$host_dir/$f"
    runs_clean "/etc/$f -> $host_dir/$f" "k$n" --hostname mt-host -- "cat /etc/$f"
    case $f in
    hosts) want=localhost ;; hostname) want=mt-host ;; resolv.conf) want=nameserver ;;
    esac
    t_check "/etc/$f -> host path: the runner's file is there" grep -q "$want" <<<"$last_out"
    sec_image "k$((++n))" --probe "etc/$f=/proc/sys/kernel/core_pattern"
    refused "/etc/$f -> /proc/sys/kernel/core_pattern" "resolves to \`/proc/sys/kernel/core_pattern\`, inside a kernel file system" "k$n"
done

# --tmpfs and -v targets: to the root or `..` refused, into /proc refused, to a host path: inside.
for target in / ..; do
    sec_image "k$((++n))" --probe "data=$target"
    refused "--tmpfs on /data -> $target" "mount target \`/data\` resolves to the container's root directory" "k$n" --tmpfs /data
    refused "-v on /data -> $target" "mount target \`/data\` resolves to the container's root directory" "k$n" -v "$T/vol:/data"
done
# (cmd_run refuses it already, with Docker's words; the runner would too)
refused "-v on /" "destination can't be '/'|mount target \`/\` resolves to the container's root directory" plain -v "$T/vol:/"
sec_image dataproc --probe "data=/proc/sys"
refused "--tmpfs on /data -> /proc/sys" "resolves to \`/proc/sys\`, inside a kernel file system" dataproc --tmpfs /data
refused "-v on /data -> /proc/sys" "resolves to \`/proc/sys\`, inside a kernel file system" dataproc -v "$T/vol:/data"
sec_image datahost --probe "data=$host_dir"
runs_clean "--tmpfs on /data -> $host_dir" datahost --tmpfs /data -- "stat -f -c %T $host_dir; ls /data | wc -l"
t_check "--tmpfs -> host path: a tmpfs at the in-root target" grep -qx tmpfs <<<"$last_out"
t_check "--tmpfs -> host path: empty (the host directory is not there)" grep -qx 0 <<<"$last_out"
runs_clean "-v on /data -> $host_dir" datahost -v "$T/vol:/data" -- "cat /data/volfile; ls /data"
t_check "-v -> host path: the volume is at the in-root target" grep -qx volume-content <<<"$last_out"
t_check "-v -> host path: the host directory is not what is shown" bash -c "! grep -q host-marker <<<'$last_out'"

# WORKDIR (not a mount, but resolved the same way): the root, `..`, a host path made inside.
for target in / .. "$host_dir"; do
    sec_image "k$((++n))" --probe --workdir /wd "wd=$target"
    runs_clean "WORKDIR /wd -> $target" "k$n" -- 'pwd -P; ls | grep -c host-marker || true'
    want=/
    [[ $target == /* && $target != / ]] && want=$target
    t_check "WORKDIR /wd -> $target: the working directory is $want inside" grep -qx -- "$want" <<<"$last_out"
    t_check "WORKDIR /wd -> $target: no host file there" grep -qx 0 <<<"$last_out"
done

t_eq "the host directory is untouched" "$before" "$(snapshot "$host_dir")"
t_check "nothing mounted on the host directory" bash -c "! grep -qF '$host_dir' /proc/self/mountinfo"
t_end
