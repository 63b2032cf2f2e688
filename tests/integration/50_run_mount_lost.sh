#!/bin/bash
# The shared image mount under containers: its FUSE daemon is a process of its own (not the first
# `imgfs run`), kill -9 of it does not disturb a container that reads the image in a loop (the
# keeper starts a new daemon on the same connection), and only when keeper and daemon are both gone
# are the containers on it failed — `ps` says Exited (255) (rootfs lost), their log says why — and
# the next `imgfs run` of the image mounts it again.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
t_begin run_mount_lost
t_need_fixture busybox.tar
"$IMGFS" import -q -t busybox "$FIXTURES/busybox.tar"
key=$("$IMGFS" images --json | jq -r '.[0].Digest' | sed 's/^sha256://')
root=$IMGFS_RUN_DIR/images/$key/rootfs
t_cleanup "'$IMGFS' ps -aq | xargs -r '$IMGFS' rm -f"
want=$(tar -xOf "$FIXTURES/busybox.tar" ./bin/busybox | md5sum | cut -d' ' -f1)

# reads that bypass the page cache (O_DIRECT through the overlay), checked, counted in /tmp/count
reader="ok=0 wrong=0 failed=0
while :; do
    if dd if=/bin/busybox iflag=direct bs=64k of=/tmp/copy 2>/dev/null; then
        case \$(md5sum </tmp/copy) in $want*) ok=\$((ok + 1)) ;; *) wrong=\$((wrong + 1)) ;; esac
    else
        failed=\$((failed + 1))
    fi
    echo \$ok \$wrong \$failed >/tmp/count.tmp && mv /tmp/count.tmp /tmp/count
done"
"$IMGFS" run -d --network none --name reader busybox sh -c "$reader" >/dev/null
count() { "$IMGFS" exec reader cat /tmp/count 2>/dev/null || echo "0 0 0"; }
oks() { count | cut -d' ' -f1; }
more_reads() { (($(oks) > $1)); }
t_check "the container reads" t_wait_for 2000 more_reads 0

daemon_pid() { pgrep -f "^imgfs-mountd $root " || true; }
one_daemon() { [[ $(daemon_pid | wc -l) == 1 ]]; }
kill_servers() { local p; for p in $(pgrep -f "^imgfs-(keeper|mountd) $root " || true); do kill -9 "$p"; done; }
t_cleanup kill_servers
t_check "one daemon serves the image" one_daemon
d=$(daemon_pid)
k=$(ps -o ppid= -p "$d" | tr -d ' ')
t_check "the daemon is a process of its own, named so (not a copy of the run that mounted it)" \
    grep -qx imgfs-mountd /proc/"$d"/comm
t_check "its parent is the image's keeper" grep -q "^imgfs-keeper $root" /proc/"$k"/cmdline

for i in 1 2 3; do
    old=$(daemon_pid)
    before=$(oks)
    kill -9 "$old"
    new_daemon() { local p; p=$(daemon_pid); [[ -n $p && $p != "$old" && $(wc -l <<<"$p") == 1 ]]; }
    t_check "kill $i: a new daemon" t_wait_for 2000 new_daemon
    t_check "kill $i: the container reads on" t_wait_for 2000 more_reads $((before + 2))
done
read -r ok wrong failed <<<"$(count)"
t_note "$ok reads, $wrong wrong, $failed failed across 3 kills"
t_eq "no wrong data" 0 "$wrong"
if [[ $(printf '%s\n' 6.9 "$(uname -r)" | sort -V | head -1) == 6.9 ]]; then
    t_eq "no failed read (FUSE_NOTIFY_RESEND)" 0 "$failed"
fi
t_eq "ps: still up" running "$("$IMGFS" ps --json | jq -r '.[] | select(.name == "reader") | .state')"
"$IMGFS" run -d --network none --name second busybox sleep 1000 >/dev/null
t_eq "a second container shares the same mount" 1 "$(grep -c " $root fuse.imgfs " /proc/mounts)"
t_eq "exec works in it" "$want  /bin/busybox" "$("$IMGFS" exec second md5sum /bin/busybox)"

# keeper and daemon gone: both containers failed
d=$(daemon_pid)
kill -9 "$k" "$d"
dead() { ! stat -f "$root" >/dev/null 2>&1; }
t_check "the mount is dead" t_wait_for 600 dead
field() { "$IMGFS" ps -a --json | jq -r ".[] | select(.name == \"$1\") | .$2"; }
for c in reader second; do
    t_eq "$c: ps state exited" exited "$(field $c state)"
    t_eq "$c: exit code 255" 255 "$(field $c exit_code)"
    t_check "$c: ps status says rootfs lost" grep -q '^Exited (255) .*(rootfs lost)$' <<<"$(field $c status)"
    t_check "$c: ps --json error names the image" grep -q "rootfs lost: the mount of image ${key:0:12} died" <<<"$(field $c error)"
    t_check "$c: the log says why" sh -c "'$IMGFS' logs $c 2>&1 | grep -q 'imgfs: rootfs lost'"
done
t_check "ps (plain) shows it" sh -c "'$IMGFS' ps -a | grep reader | grep -q 'Exited (255).*(rootfs lost)'"
t_check_fails "exec into a failed container fails" "$IMGFS" exec reader true

# the next run mounts again
t_eq "the next run of the image works" "$want  /bin/busybox" \
    "$("$IMGFS" run --rm --network none busybox md5sum /bin/busybox)"
t_check "the image's mount is live again, or gone after --rm" sh -c "stat -f '$root' >/dev/null 2>&1 || ! grep -q ' $root ' /proc/mounts"
"$IMGFS" rm reader second >/dev/null
t_eq "no image mount left after rm" 0 "$(grep -c " $IMGFS_RUN_DIR/images/" /proc/mounts || true)"
t_check_fails "no daemon left" one_daemon
t_end
