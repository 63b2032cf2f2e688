#!/bin/bash
# A daemonized `imgfs mount` is a keeper holding the FUSE connection and a daemon serving it. kill -9
# of the daemon under a reader that bypasses the page cache (O_DIRECT: every read reaches the
# daemon): the keeper starts a new daemon on the same connection and the reader keeps reading the
# right bytes (no error at all where the kernel has FUSE_NOTIFY_RESEND, Linux >= 6.9; otherwise at
# most one ECONNABORTED per kill, never wrong data, never a hang: forced with IMGFS_MOUNT_NO_RESEND=1
# and tested too). Killing the keeper too leaves a
# dead mount (ENOTCONN), which `imgfs mount` detaches and mounts again. SIGTERM to the keeper
# unmounts.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
t_begin mount_keeper
t_need_fixture busybox.tar

"$IMGFS" import -q -t busybox "$FIXTURES/busybox.tar"
mnt=$T/mnt
mkdir -p "$mnt"
t_cleanup "umount -l '$mnt'"
"$IMGFS" mount busybox "$mnt"
want=$(tar -xOf "$FIXTURES/busybox.tar" ./bin/busybox | md5sum | cut -d' ' -f1)

# the processes serving $mnt, found by their titles ("imgfs-mountd DIR REF")
daemon_pid() { pgrep -f "^imgfs-mountd $mnt " || true; }
keeper_of() { ps -o ppid= -p "$1" | tr -d ' '; }
one_daemon() { [[ $(daemon_pid | wc -l) == 1 ]]; }
# at exit: whatever serves $mnt then (resolved at that time: recorded pids may be reused by then)
kill_servers() { local p; for p in $(pgrep -f "^imgfs-(keeper|mountd) $mnt " || true); do kill -9 "$p"; done; }
t_cleanup kill_servers
t_check "one daemon serves the mount" t_wait_for 600 one_daemon
d=$(daemon_pid)
k=$(keeper_of "$d")
t_eq "its parent is the keeper" "imgfs-keeper $mnt busybox" "$(tr '\0' ' ' </proc/"$k"/cmdline | sed 's/ *$//')"
t_check "the keeper holds /dev/fuse" sh -c "ls -l /proc/$k/fd | grep -q /dev/fuse"

# reader: O_DIRECT reads of a 2 MB file in a loop; counts right, wrong and failed reads
cat >"$T/reader.sh" <<EOF
ok=0 wrong=0 failed=0
while [ ! -e "$T/stop" ]; do
    if dd if="$mnt/bin/busybox" iflag=direct bs=64k of="$T/copy" 2>>"$T/dd.err"; then
        if [ "\$(md5sum <"$T/copy" | cut -d' ' -f1)" = "$want" ]; then ok=\$((ok + 1)); else wrong=\$((wrong + 1)); fi
    else
        failed=\$((failed + 1))
    fi
    echo "\$ok \$wrong \$failed" >"$T/count.tmp" && mv "$T/count.tmp" "$T/count"
done
EOF
bash "$T/reader.sh" &
reader=$!
# the reader stops at $T/stop; kill only jobs of ours that are still running
t_cleanup "touch '$T/stop'; kill \$(jobs -p) 2>/dev/null"
oks() { cut -d' ' -f1 "$T/count" 2>/dev/null || echo 0; }
more_reads() { (($(oks) > $1)); }
t_check "the reader reads" t_wait_for 2000 more_reads 0

kills=5
for ((i = 0; i < kills; i++)); do
    old=$(daemon_pid)
    before=$(oks)
    kill -9 "$old"
    new_daemon() { local p; p=$(daemon_pid); [[ -n $p && $p != "$old" && $(wc -l <<<"$p") == 1 ]]; }
    t_check "kill $((i + 1)): a new daemon serves the mount" t_wait_for 2000 new_daemon
    t_check "kill $((i + 1)): the reader goes on" t_wait_for 2000 more_reads $((before + 2))
done
touch "$T/stop"
wait "$reader" || true
read -r ok wrong failed <"$T/count"
t_note "$ok reads, $wrong wrong, $failed failed across $kills kills"
t_eq "no read returned wrong data" 0 "$wrong"
t_eq "the keeper is the same process" "$k" "$(keeper_of "$(daemon_pid)")"
if [[ $(printf '%s\n' 6.9 "$(uname -r)" | sort -V | head -1) == 6.9 ]]; then
    t_eq "no read failed (FUSE_NOTIFY_RESEND replayed the lost requests)" 0 "$failed"
else
    t_check "at most one failed read per kill (kernel without FUSE_NOTIFY_RESEND)" test "$failed" -le "$kills"
    t_check "failures are ECONNABORTED" sh -c "! grep -v 'records\|copied\|abort' '$T/dd.err'"
fi
t_eq "the file still reads right" "$want" "$(md5sum <"$mnt/bin/busybox" | cut -d' ' -f1)"

# the fallback of kernels without FUSE_NOTIFY_RESEND (forced): requests in flight at a kill fail
# with ECONNABORTED, at most one per kill, and nothing hangs
"$IMGFS" umount "$mnt"
IMGFS_MOUNT_NO_RESEND=1 "$IMGFS" mount busybox "$mnt"
t_check "fallback: one daemon" t_wait_for 600 one_daemon
rm -f "$T/stop" "$T/count" "$T/dd.err"
bash "$T/reader.sh" &
reader=$!
t_check "fallback: the reader reads" t_wait_for 2000 more_reads 0
for ((i = 0; i < kills; i++)); do
    old=$(daemon_pid)
    before=$(oks)
    kill -9 "$old"
    t_check "fallback kill $((i + 1)): a new daemon" t_wait_for 2000 new_daemon
    t_check "fallback kill $((i + 1)): the reader goes on" t_wait_for 2000 more_reads $((before + 2))
done
touch "$T/stop"
wait "$reader" || true
read -r ok wrong failed <"$T/count"
t_note "fallback: $ok reads, $wrong wrong, $failed failed across $kills kills"
t_eq "fallback: no read returned wrong data" 0 "$wrong"
t_check "fallback: at most one failed read per kill" test "$failed" -le "$kills"
t_check "fallback: failures are ECONNABORTED" sh -c "! grep -v 'records\|copied\|abort' '$T/dd.err'"
"$IMGFS" umount "$mnt"
"$IMGFS" mount busybox "$mnt"
t_check "one daemon again" t_wait_for 600 one_daemon
k=$(keeper_of "$(daemon_pid)")

# keeper and daemon gone: the mount is dead, and mounting again replaces it
d=$(daemon_pid)
kill -9 "$k" "$d"
dead() { ! stat -f "$mnt" >/dev/null 2>"$T/statfs.err" && grep -q 'not connected' "$T/statfs.err"; }
t_check "without keeper and daemon the mount is dead (ENOTCONN)" t_wait_for 600 dead
t_check "imgfs mount on the dead mount succeeds" "$IMGFS" mount busybox "$mnt"
t_eq "and serves the image" "$want" "$(dd if="$mnt/bin/busybox" iflag=direct bs=64k 2>/dev/null | md5sum | cut -d' ' -f1)"
t_eq "one mount on the directory" 1 "$(grep -c " $mnt fuse.imgfs " /proc/mounts)"
t_check "one daemon again" t_wait_for 600 one_daemon
d=$(daemon_pid)
k=$(keeper_of "$d")

# SIGTERM to the keeper: unmounted, both processes gone
kill -TERM "$k"
gone() { ! kill -0 "$k" 2>/dev/null && ! kill -0 "$d" 2>/dev/null; }
t_check "SIGTERM ends keeper and daemon" t_wait_for 2000 gone
t_check_fails "and unmounts" mountpoint -q "$mnt"
t_end
