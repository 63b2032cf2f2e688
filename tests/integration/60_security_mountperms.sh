#!/bin/bash
# An image is untrusted: its setuid-root programs must not make a host user root. `imgfs mount`
# (inspection) mounts are nosuid,nodev and only for the user who made them; --allow-other and
# --suid opt in. The runner's shared lower (RUN_DIR/images/KEY/rootfs) keeps allow_other and suid
# for the containers (Docker honours setuid bits in containers) but sits in a 0700 directory, also
# when that directory existed before with a looser mode. Checked as an unprivileged host user
# (setpriv --reuid=65534) with a setuid-root copy of 60_sysprobe.c in the image.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/60_security.bash"
t_begin security_mountperms
command -v setpriv >/dev/null || t_skip "setpriv missing"
sec_build_probe
cp "$T/sysprobe" "$T/suidprobe"
chmod 4755 "$T/suidprobe"
sec_image suidimg --probe "bin/suidprobe<$T/suidprobe"
chmod 0755 "$T" # mktemp made it 0700: let the other user walk to the mounts
# setpriv keeps its capabilities until its execve: run the command through a shell, so that
# every path lookup of the check is made by the unprivileged user
nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups /bin/sh -c '"$@"' sh "$@"; }
mkdir -p "$T/mnt"
t_cleanup "'$IMGFS' umount '$T/mnt'"

# default: nosuid, nodev, no allow_other
"$IMGFS" mount suidimg "$T/mnt"
opts=$(findmnt -n -o VFS-OPTIONS,FS-OPTIONS "$T/mnt")
t_note "default mount options: $opts"
t_check "the owner reads the mount" grep -q root: "$T/mnt/etc/passwd"
t_check "the setuid bit is in the image" test -u "$T/mnt/bin/suidprobe"
t_check "mounted nosuid" grep -qw nosuid <<<"$opts"
t_check "mounted nodev" grep -qw nodev <<<"$opts"
t_check "not allow_other" bash -c "! grep -qw allow_other <<<'$opts'"
out=$(nobody cat "$T/mnt/etc/passwd" 2>&1) && rc=0 || rc=$?
t_check "another user cannot read the mount ($out)" test "$rc" != 0
t_check "... because access is denied" grep -q "Permission denied" <<<"$out"
out=$(nobody "$T/mnt/bin/suidprobe" euid 2>&1) || true
t_check "another user cannot run the image's setuid program ($out)" bash -c "! grep -q '^euid' <<<'$out'"
"$IMGFS" umount "$T/mnt"

# --allow-other: readable by others, setuid bits still without effect
"$IMGFS" mount --allow-other suidimg "$T/mnt"
t_check "--allow-other: allow_other" grep -qw allow_other <<<"$(findmnt -n -o FS-OPTIONS "$T/mnt")"
t_check "--allow-other: another user reads the mount" nobody grep -q root: "$T/mnt/etc/passwd"
out=$(nobody "$T/mnt/bin/suidprobe" euid 2>&1) || true
t_eq "--allow-other: the setuid program runs without its owner's uid" "euid 65534 65534" "$out"
"$IMGFS" umount "$T/mnt"

# --suid too: the check above can fail — with both opt-ins the bit takes effect
"$IMGFS" mount --allow-other --suid suidimg "$T/mnt"
out=$(nobody "$T/mnt/bin/suidprobe" euid 2>&1) || true
t_eq "--allow-other --suid: the setuid bit takes effect (opted in)" "euid 65534 0" "$out"
"$IMGFS" umount "$T/mnt"
out=$("$IMGFS" mount --bogus suidimg "$T/mnt" 2>&1) && rc=0 || rc=$?
t_eq "an unknown flag is a usage error" 125 "$rc"
t_check "--help documents --allow-other and --suid" \
    bash -c "'$IMGFS' mount --help | grep -q -- --allow-other && '$IMGFS' mount --help | grep -q -- --suid"

# The runner's lower: a run dir whose directories are open to everyone (made by an admin or an
# older imgfs) must still not let other users reach it
mkdir -p "$IMGFS_RUN_DIR/images"
chmod 0755 "$IMGFS_RUN_DIR" "$IMGFS_RUN_DIR/images"
"$IMGFS" run -d --name pc1 --network none suidimg sleep 1000 >/dev/null
t_cleanup "'$IMGFS' rm -f pc1 pc2"
lower=$(findmnt -rn -o TARGET | grep -F "$IMGFS_RUN_DIR/images/" | grep '/rootfs$' | head -n 1)
t_check "the shared lower is mounted ($lower)" test -n "$lower"
keydir=$(dirname "$lower")
chmod 0755 "$keydir" "$IMGFS_RUN_DIR/images" # loosened behind imgfs's back
"$IMGFS" run -d --name pc2 --network none suidimg sleep 1000 >/dev/null
t_eq "the image's directory is 0700 again" 700 "$(stat -c %a "$keydir")"
t_check "the lower is there for root" test -u "$lower/bin/suidprobe"
out=$(nobody ls "$lower" 2>&1) && rc=0 || rc=$?
t_check "another user cannot reach the runner's lower ($out)" test "$rc" != 0
out=$(nobody "$lower/bin/suidprobe" euid 2>&1) || true
t_check "another user cannot run the lower's setuid program" bash -c "! grep -q '^euid' <<<'$out'"
# containers still honour setuid bits, as Docker's do
out=$("$IMGFS" exec -u 65534 pc1 /bin/suidprobe euid 2>&1) || true
t_eq "in a container the setuid bit takes effect" "euid 65534 0" "$out"
out=$("$IMGFS" run --rm --read-only --network none -u 65534 suidimg /bin/suidprobe euid 2>&1) || true
t_eq "in a --read-only container (the lower bound directly) too" "euid 65534 0" "$out"
t_end
