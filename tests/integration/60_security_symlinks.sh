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
# Every negative check below first proves the container ran (it prints "ran" first) or that the run
# was refused with an `imgfs run:` error: a container that never started proves nothing.
# ran WHAT [run args...] IMAGE SCRIPT: the container runs SCRIPT after `echo ran`; output in $out
ran() {
    local what=$1 script=${*: -1}
    set -- "${@:2:$#-2}"
    rc=0
    out=$(run "$@" sh -c "echo ran; $script" 2>&1) || rc=$?
    if [[ $(head -n 1 <<<"$out") == ran ]]; then
        t_pass "$what: the container ran"
    else
        t_fail "$what: the container did not run (exit $rc): $(tr '\n' ' ' <<<"$out")"
    fi
}
# refused WHAT PATTERN [run args...] IMAGE: exit 125, an `imgfs run:` error matching PATTERN
refused() {
    local what=$1 pattern=$2
    shift 2
    rc=0
    out=$(run "$@" sh -c 'echo ran' 2>&1) || rc=$?
    t_eq "$what: refused (125)" 125 "$rc"
    t_check "$what: with a clear error ($(head -n 1 <<<"$out"))" grep -qE "^imgfs run: .*$pattern" <<<"$out"
}
no_marker() { ! grep -q host-marker <<<"$out"; }

# WORKDIR through the chain: resolved inside the root (created there), never on the host
ran "WORKDIR /wd/inner" esc 'ls -A; touch created-by-container; pwd -P'
t_check "WORKDIR: the host directory's files are not visible" no_marker
t_check "WORKDIR: made inside the root at the chain's in-root target" grep -qx "$host_dir/inner" <<<"$out"
ran "-w through the chain" -w /wd/other esc 'ls -A; touch created-by-w; pwd -P'
t_check "-w through the chain: host files not visible" no_marker
t_check "-w through the chain: made inside at the in-root target" grep -qx "$host_dir/other" <<<"$out"
refused "-w through /proc/self/cwd" 'working directory: .*/pself/sub' -w /pself/sub esc

# -v targets that are symlinks: the volume lands at the target resolved inside the root
mkdir -p "$T/hv"
echo volume-content >"$T/hv/volfile"
ran "-v onto an absolute symlink" -v "$T/hv:/vol" esc "cat $host_dir/volfile"
t_check "-v onto an absolute symlink: mounted at its in-root target" grep -qx volume-content <<<"$out"
ran "-v onto a .. chain" -v "$T/hv:/vol2" esc "cat $host_dir/volfile"
t_check "-v onto a .. chain: mounted at its in-root target" grep -qx volume-content <<<"$out"
ran "-v below an absolute symlink" -v "$T/hv:/vol/newdir" esc "cat $host_dir/newdir/volfile"
t_check "-v below an absolute symlink: mounted inside" grep -qx volume-content <<<"$out"
ran "-v below a .. chain" -v "$T/hv:/vol2/deeper/newdir" esc "cat $host_dir/deeper/newdir/volfile"
t_check "-v below a .. chain: mounted inside" grep -qx volume-content <<<"$out"
refused "-v below /proc/self/cwd" 'pself/newdir' -v "$T/hv:/pself/newdir" esc
ran "--tmpfs below an absolute symlink" --tmpfs /vol/tmpdir esc "stat -f -c %T $host_dir/tmpdir"
t_check "--tmpfs below an absolute symlink: a tmpfs inside" grep -qx tmpfs <<<"$out"

t_eq "the host directory is untouched" "$dir_before" "$(snapshot "$host_dir")"
t_eq "the caller's working directory is untouched (/proc/self/cwd)" "$cwd_before" "$(snapshot "$cwd_dir")"
t_check "no volume mount leaked onto the host" bash -c "! grep -qF '$host_dir' /proc/self/mountinfo"

# /etc as an absolute symlink to a host directory: the runner's /etc/hosts, hostname and
# resolv.conf, and the user lookup, stay inside
make_image escetc "/" "etc=$host_etc"
ran "/etc -> host path" --hostname evil escetc 'cat /etc/hosts; cat /etc/hostname'
t_check "/etc symlink: the host's hosts file is not read" bash -c "! grep -q 10.9.9.9 <<<'$out'"
t_check "/etc symlink: the runner's hosts and hostname are there" grep -qx evil <<<"$out"
refused "/etc symlink: a user from the host directory" 'unable to find user escapee' -u escapee escetc
ran "/etc symlink: -v below it" -v "$T/hv:/etc/mnt" escetc 'cat /etc/mnt/volfile'
t_check "/etc symlink: the volume is inside" grep -qx volume-content <<<"$out"
t_eq "the host /etc stand-in is untouched" "$etc_before" "$(snapshot "$host_etc")"
t_check "no mount on the host /etc stand-in" bash -c "! grep -qF '$host_etc' /proc/self/mountinfo"

# The kernel filesystems' mount points as symlinks: /proc, /dev, /sys and /run aimed at host
# directories (absolute, `..` chain, /proc/self): /proc and /sys that are symlinks are refused
# (60_security_mounttargets.sh covers every target); nothing may be made or mounted there
make_image kfs "/" "proc=$host_dir" "dev=$dotdots$host_dir/dev" "sys=/proc/self/cwd" "run=$host_dir"
refused "kernel filesystems on symlinks" '`/proc` in the image is a symlink' kfs
make_image kfs2 "/" "dev=$dotdots$host_dir/dev" "run=$host_dir"
ran "/dev through a .. chain to a host path" kfs2 'ls -A /dev/ | grep -c host-marker || true; test -c /dev/null && echo devnull'
t_check "/dev through the chain: the devices are there" grep -qx devnull <<<"$out"
t_check "/dev through the chain: no host file in it" grep -qx 0 <<<"$out"
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
t_end
refused "/etc -> /etc (a loop inside the root)" '/etc/hosts' --hostname evil2 hostlinks
make_image hostlinks2 "/" "tmp=$dotdots/tmp" "mnt=/"
ran "/tmp through a .. chain to the host's /tmp" hostlinks2 '{ echo x >/tmp/imgfs-escaped-file && echo wrote; } 2>/dev/null || echo loops'
t_check "/tmp through the chain: inside the root it points at itself (no write)" grep -qx loops <<<"$out"
ran "-v below /mnt -> /" -v "$T/hv:/mnt/imgfs-escaped-dir" hostlinks2 'cat /imgfs-escaped-dir/volfile'
t_check "-v below /mnt -> /: mounted inside at /imgfs-escaped-dir" grep -qx volume-content <<<"$out"
t_eq "host /etc files unchanged" "$etc_hosts" "$(md5sum /etc/hosts /etc/hostname /etc/resolv.conf 2>/dev/null || true)"
t_check "nothing written to the host's /tmp" test ! -e /tmp/imgfs-escaped-file
t_check "no directory made at the host's root" test ! -e /imgfs-escaped-dir
rm -f /tmp/imgfs-escaped-file
rmdir /imgfs-escaped-dir 2>/dev/null || true
t_end
