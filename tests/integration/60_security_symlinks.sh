#!/bin/bash
# An image is untrusted: symlinks in it (absolute, `..` chains, /proc/self/...) must not let the rootfs
# setup, WORKDIR, -w, -v targets or /etc files land outside the container's root. Crafted images
# (docker-save archives made here with python3 tarfile) point their symlinks at host directories this
# test made; those directories must come out exactly as they went in.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/60_security.bash"
t_begin security_symlinks
t_need_fixture busybox.tar

# Host directories the symlinks aim at. Under /tmp (not $T) so the `..` chains reach them from any
# depth; unique names; removed at exit.
host_dir=$(mktemp -d /tmp/imgfs-escape.XXXXXX)
host_etc=$(mktemp -d /tmp/imgfs-escape-etc.XXXXXX)
t_cleanup "rm -rf '$host_dir' '$host_etc'"
echo marker >"$host_dir/host-marker"
printf 'root:x:0:0:root:/root:/bin/sh\nescapee:x:4242:4242::/:/bin/sh\n' >"$host_etc/passwd"
printf 'root:x:0:\nescapee:x:4242:\n' >"$host_etc/group"
echo "10.9.9.9 host-marker" >"$host_etc/hosts"
snapshot() { (cd "$1" && find . -printf '%p %y %s %m %T@\n' | sort && find . -type f -exec md5sum {} + | sort); }
dir_before=$(snapshot "$host_dir")
etc_before=$(snapshot "$host_etc")
cwd_dir=$T/cwd
mkdir -p "$cwd_dir"
cwd_before=$(snapshot "$cwd_dir")
dotdots=../../../../../../../../../../../../../../../..

# make_image NAME WORKDIR LINK=TARGET...: busybox with the given symlinks (60_security.bash)
make_image() {
    local name=$1 workdir=$2
    shift 2
    sec_image "$name" --workdir "$workdir" "$@"
}

# The image: an absolute symlink, a `..` chain and a /proc/self link, each aimed at a host directory,
# and WORKDIR through a `..` chain to a directory that does not exist yet.
make_image esc "/wd/inner" \
    "vol=$host_dir" \
    "vol2=$dotdots$host_dir" \
    "wd=$dotdots$host_dir" \
    "pself=/proc/self/cwd"
t_check "the crafted image runs" "$IMGFS" run --rm --network none -w / esc true
run() { (cd "$cwd_dir" && "$IMGFS" run --rm --network none "$@"); }

# WORKDIR through the chain: resolved inside the root (created there), never on the host
out=$(run esc sh -c 'ls -A; touch created-by-container; pwd' 2>&1) && rc=0 || rc=$?
t_note "WORKDIR /wd/inner: exit $rc: $(tr '\n' ' ' <<<"$out")"
t_check "WORKDIR: the host directory's files are not visible" bash -c "! grep -q host-marker <<<'$out'"
t_check "WORKDIR: the container starts (the directory is made inside)" test "$rc" = 0
out=$(run -w /wd/other esc sh -c 'ls -A; touch created-by-w' 2>&1) && rc=0 || rc=$?
t_check "-w through the chain: host files not visible" bash -c "! grep -q host-marker <<<'$out'"
out=$(run -w /pself/sub esc sh -c 'touch created-by-pself-w' 2>&1) || true

# -v targets that are symlinks: the volume lands at the target resolved inside the root
mkdir -p "$T/hv"
echo volume-content >"$T/hv/volfile"
out=$(run -v "$T/hv:/vol" esc cat "$host_dir/volfile" 2>&1) && rc=0 || rc=$?
t_eq "-v onto an absolute symlink: mounted at its in-root target" volume-content "$out"
out=$(run -v "$T/hv:/vol2" esc sh -c "cat $host_dir/volfile" 2>&1) || true
t_eq "-v onto a .. chain: mounted at its in-root target" volume-content "$out"
run -v "$T/hv:/vol/newdir" esc true >/dev/null 2>&1 || true
run -v "$T/hv:/vol2/deeper/newdir" esc true >/dev/null 2>&1 || true
run -v "$T/hv:/pself/newdir" esc true >/dev/null 2>&1 || true
run --tmpfs /vol/tmpdir esc true >/dev/null 2>&1 || true

t_eq "the host directory is untouched" "$dir_before" "$(snapshot "$host_dir")"
t_eq "the caller's working directory is untouched (/proc/self/cwd)" "$cwd_before" "$(snapshot "$cwd_dir")"
t_check "no volume mount leaked onto the host" bash -c "! grep -qF '$host_dir' /proc/self/mountinfo"

# /etc as an absolute symlink to a host directory: the runner's /etc/hosts, hostname and
# resolv.conf, and the user lookup, stay inside
make_image escetc "/" "etc=$host_etc"
t_check "the image with /etc -> host path runs" "$IMGFS" run --rm --network none escetc true
out=$(run --hostname evil escetc sh -c 'cat /etc/hosts; cat /etc/hostname' 2>&1) || true
t_check "/etc symlink: the host's hosts file is not read" bash -c "! grep -q 10.9.9.9 <<<'$out'"
out=$(run -u escapee escetc id -u 2>&1) || true
t_check "/etc symlink: a user from the host directory is not found ($out)" test "$out" != 4242
out=$(run -v "$T/hv:/etc/mnt" escetc true 2>&1) || true
t_eq "the host /etc stand-in is untouched" "$etc_before" "$(snapshot "$host_etc")"
t_check "no mount on the host /etc stand-in" bash -c "! grep -qF '$host_etc' /proc/self/mountinfo"

# The kernel filesystems' mount points as symlinks: /proc, /dev, /sys and /dev/shm aimed at host
# directories (absolute, `..` chain, /proc/self): the container may refuse to start, but nothing may
# be made or mounted there
make_image kfs "/" "proc=$host_dir" "dev=$dotdots$host_dir/dev" "sys=/proc/self/cwd" "run=$host_dir"
out=$(run kfs sh -c 'ls -A /proc | head -n 3' 2>&1) && rc=0 || rc=$?
t_note "kernel filesystems on symlinks: exit $rc: $(head -n 2 <<<"$out" | tr '\n' ' ')"
t_check "no host file shows through /proc" bash -c "! grep -q host-marker <<<'$out'"
t_eq "the host directory is untouched after proc/dev/sys setup" "$dir_before" "$(snapshot "$host_dir")"
t_eq "the caller's directory is untouched after sys -> /proc/self/cwd" "$cwd_before" "$(snapshot "$cwd_dir")"
t_check "no kernel filesystem mounted on the host directory" bash -c "! grep -qF '$host_dir' /proc/self/mountinfo"

# Real host paths: an image whose /etc and /tmp point at the host's own (/etc -> /etc is a loop inside
# the root: the container may refuse to start, but must not touch the host)
make_image hostlinks "/" "etc=/etc" "tmp=$dotdots/tmp" "mnt=/"
etc_hosts=$(md5sum /etc/hosts /etc/hostname /etc/resolv.conf 2>/dev/null || true)
# a safety net for the machine should the runner be broken: put the host's files back at exit
mkdir -p "$T/etc-backup"
cp -a /etc/hosts /etc/hostname /etc/resolv.conf "$T/etc-backup/" 2>/dev/null || true
t_cleanup "cp -a '$T'/etc-backup/* /etc/ 2>/dev/null"
run --hostname evil2 hostlinks sh -c 'echo x >/tmp/imgfs-escaped-file' >/dev/null 2>&1 || true
run -v "$T/hv:/mnt/imgfs-escaped-dir" hostlinks true >/dev/null 2>&1 || true
t_eq "host /etc files unchanged" "$etc_hosts" "$(md5sum /etc/hosts /etc/hostname /etc/resolv.conf 2>/dev/null || true)"
t_check "nothing written to the host's /tmp" test ! -e /tmp/imgfs-escaped-file
t_check "no directory made at the host's root" test ! -e /imgfs-escaped-dir
rm -f /tmp/imgfs-escaped-file
rmdir /imgfs-escaped-dir 2>/dev/null || true
t_end
