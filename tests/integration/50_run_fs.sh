#!/bin/bash
# The container's filesystem: a writable overlay layer per container (writes never reach the image
# or another container), --read-only, -v HOST:CTR[:ro], --tmpfs, and cleanup of it all.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
t_begin run_fs
t_need_fixture busybox.tar
"$IMGFS" import -q -t busybox "$FIXTURES/busybox.tar"
run() { "$IMGFS" run --rm --network none "$@"; }

# writable layer
t_eq "write, read back" "data" "$(run busybox sh -c 'echo data > /etc/new; cat /etc/new')"
t_eq "modify an image file" "changed" "$(run busybox sh -c 'echo changed > /etc/hostname.bak; cat /etc/hostname.bak')"
t_eq "delete an image file" "gone" "$(run busybox sh -c 'rm /bin/ls && { test -e /bin/ls || echo gone; }')"
t_eq "the next container sees the image unchanged" "present" \
    "$(run busybox sh -c 'test -e /bin/ls && test ! -e /etc/new && echo present')"
"$IMGFS" run --network none --name keep busybox sh -c 'echo kept > /root/file; rm /etc/group' >/dev/null
id=$("$IMGFS" ps -a -q --no-trunc)
t_check "the upper dir holds the new file" grep -q kept "$IMGFS_RUN_DIR/containers/$id/upper/root/file"
t_check "and the whiteout" test -c "$IMGFS_RUN_DIR/containers/$id/upper/etc/group"
"$IMGFS" rm keep >/dev/null
t_check "rm removes the writable layer" test ! -e "$IMGFS_RUN_DIR/containers/$id"

# --read-only
t_check_fails "--read-only: the rootfs is read-only" run --read-only busybox touch /newfile
t_eq "--read-only: /dev/shm still writable" "ok" "$(run --read-only busybox sh -c 'touch /dev/shm/x && echo ok')"
t_eq "--read-only with --tmpfs /tmp" "ok" "$(run --read-only --tmpfs /tmp busybox sh -c 'touch /tmp/x && echo ok')"

# volumes
mkdir -p "$T/vol"
echo from-host >"$T/vol/in"
t_eq "-v: host file visible" "from-host" "$(run -v "$T/vol:/data" busybox cat /data/in)"
run -v "$T/vol:/data" busybox sh -c 'echo from-container > /data/out'
t_eq "-v: written through to the host" "from-container" "$(cat "$T/vol/out")"
t_check_fails "-v :ro refuses writes" run -v "$T/vol:/data:ro" busybox touch /data/x
t_check "-v :ro still readable" run -v "$T/vol:/data:ro" busybox cat /data/in
t_eq "-v of a file" "from-host" "$(run -v "$T/vol/in:/etc/motd:ro" busybox cat /etc/motd)"
t_eq "-v creates the target directory" "from-host" "$(run -v "$T/vol:/a/b/c" busybox cat /a/b/c/in)"
# a missing host directory is created, as Docker does (95_run_mount_points.sh checks it in full)
t_check "-v of a missing host path creates it" run -v "$T/missing:/data" busybox true
t_eq "-v of a missing host path: it is a directory now" "directory" "$(stat -c %F "$T/missing")"
# NAME:/data is a named volume (98_volumes); a relative path is neither a name nor a host path
t_check_fails "-v with a relative host path" run -v "./vol:/data" busybox true

# --tmpfs
t_eq "--tmpfs is a tmpfs" "tmpfs" "$(run --tmpfs /scratch busybox sh -c 'grep " /scratch " /proc/mounts | cut -d" " -f3')"
t_check "--tmpfs options" run --tmpfs /scratch:size=1m,mode=700 busybox sh -c 'grep " /scratch " /proc/mounts | grep -q size=1024k'
t_check_fails "--tmpfs :ro" run --tmpfs /scratch:ro busybox touch /scratch/x

# nothing of ours leaks into the container
t_eq "only stdio open in the command" "0 1 2 3" "$(run busybox sh -c 'ls /proc/self/fd | sort -n | xargs')"
t_check "no host mount points inside" run busybox sh -c '! cut -d" " -f2 /proc/mounts | grep -q "imgfs-test"'

t_eq "nothing left" "" "$("$IMGFS" ps -a -q)"
t_check_fails "no mount left" grep -q " $IMGFS_RUN_DIR/" /proc/mounts
t_end
