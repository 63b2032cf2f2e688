#!/bin/bash
# bench/faults.sh — load and faults, measured (not in the quick suite: minutes). Prints its checks
# and figures; results with the load average go to docs/benchmarks.md (section "Load and faults").
#
#   1. N containers (default 20) of one image started at once: all succeed; after `rm -f` no mount,
#      cgroup (/sys/fs/cgroup/*/imgfs/ID), slirp4netns process, overlay dir or state file is left.
#   2. `kill -9` of `imgfs import` at KILLS (default 100) random points: fsck clean after every one,
#      no half image ever visible; a final gc frees the leftovers.
#   3. `rm -f` of a container while an `exec` runs in it: rm succeeds, the exec ends, nothing left.
#
#   IMGFS_FIXTURES=/work/fixtures bench/faults.sh   (N=, KILLS= to change the counts)
set -euo pipefail
source "$(dirname "$0")/../tests/lib.sh"
t_begin faults
t_need_fixture busybox.tar
N=${N:-20}
KILLS=${KILLS:-100}
t_note "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
"$IMGFS" import -q -t busybox "$FIXTURES/busybox.tar" >/dev/null

# A container's slirp4netns is a child of its monitor: their pids are noted while the containers
# run (note_helpers ID...), and counted while they are still slirp4netns processes.
helpers=()
note_helpers() {
    local id mon
    for id in "$@"; do
        mon=$(jq -r '.monitor_pid' "$IMGFS_RUN_DIR"/containers/"$id"*/state.json 2>/dev/null | head -1)
        helpers+=($(pgrep -P "$mon" -x slirp4netns || true))
    done
}
slirps() {
    local p n=0
    for p in "${helpers[@]}"; do
        [[ $(cat "/proc/$p/comm" 2>/dev/null) == slirp4netns ]] && n=$((n + 1))
    done
    echo "$n"
}

# Everything a container can leave behind, for the ids given: mounts under the run dir, cgroup
# directories, slirp4netns processes that name the run dir or a container id, state dirs.
leftovers() {
    local id n=0
    n=$((n + $(grep -c " $IMGFS_RUN_DIR/" /proc/mounts || true)))
    for id in "$@"; do
        n=$((n + $(find /sys/fs/cgroup/*/imgfs -maxdepth 1 -name "$id*" 2>/dev/null | wc -l)))
        [[ -e $IMGFS_RUN_DIR/containers/$id ]] && n=$((n + 1))
    done
    n=$((n + $(find "$IMGFS_RUN_DIR/containers" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)))
    n=$((n + $(slirps)))
    echo "$n"
}

# --- 1. N containers at once ---
start=$(date +%s%N)
pids=()
for ((i = 0; i < N; i++)); do
    "$IMGFS" run -d --name "c$i" busybox sleep 1000 >"$T/run-$i.out" 2>&1 &
    pids+=($!)
done
ok=0
for p in "${pids[@]}"; do wait "$p" && ok=$((ok + 1)); done
ms=$((($(date +%s%N) - start) / 1000000))
t_eq "$N containers started at once: all succeed (${ms} ms for all)" "$N" "$ok"
for ((i = 0; i < N; i++)); do t_cleanup "\"$IMGFS\" rm -f c$i"; done
ids=()
for ((i = 0; i < N; i++)); do ids+=("$(head -c 12 "$T/run-$i.out")"); done
up=$("$IMGFS" ps | grep -c ' Up ' || true)
note_helpers "${ids[@]}"
t_eq "all $N are Up" "$N" "$up"
t_check "the $N run one shared image mount" test "$(grep -c " $IMGFS_RUN_DIR/" /proc/mounts)" -ge 1
t_eq "one slirp4netns per container while they run" "$N" "$(slirps)"
start=$(date +%s%N)
names=()
for ((i = 0; i < N; i++)); do names+=("c$i"); done
t_check "rm -f of all $N" bash -c "'$IMGFS' rm -f ${names[*]} >/dev/null"
ms=$((($(date +%s%N) - start) / 1000000))
t_note "rm -f of $N: ${ms} ms"
gone() { [[ $(leftovers "${ids[@]}") == 0 ]]; }
t_wait_for 200 gone || true
t_eq "after rm: no mount, cgroup, slirp4netns, overlay dir or state left" 0 "$(leftovers "${ids[@]}")"
grep " $IMGFS_RUN_DIR/" /proc/mounts | sed 's/^/    left: /' || true

# --- 2. kill -9 of import at random points ---
export IMGFS_ROOT=$T/killstore
"$IMGFS" import -q -t base "$FIXTURES/busybox.tar" >/dev/null
src=$FIXTURES/busybox.tar
[[ -s $FIXTURES/debian.tar.gz ]] && src=$FIXTURES/debian.tar.gz
start=$(date +%s%N)
"$IMGFS" import -q -t probe "$src" >/dev/null
full_ms=$((($(date +%s%N) - start) / 1000000))
"$IMGFS" rmi probe >/dev/null
"$IMGFS" gc >/dev/null
t_note "a whole import of $(basename "$src") takes $full_ms ms here: kill points are 0..$full_ms ms"
killed_running=0 fsck_bad=0 half=0
for ((k = 0; k < KILLS; k++)); do
    at=$((RANDOM * 32768 + RANDOM))
    at=$((at % (full_ms + 1)))
    "$IMGFS" import -q -t half "$src" >/dev/null 2>&1 &
    p=$!
    sleep "$(printf '%d.%03d' $((at / 1000)) $((at % 1000)))"
    if kill -9 "$p" 2>/dev/null; then killed_running=$((killed_running + 1)); fi
    wait "$p" 2>/dev/null || true
    if "$IMGFS" images --json | jq -e '.[] | select(.Name == "half:latest")' >/dev/null; then
        # the import finished before the kill: a whole image, named; remove it for the next round
        if ! "$IMGFS" fsck >/dev/null; then half=$((half + 1)); fi
        "$IMGFS" rmi half >/dev/null
    fi
    "$IMGFS" fsck >"$T/fsck.out" 2>&1 || { fsck_bad=$((fsck_bad + 1)); tail -3 "$T/fsck.out"; }
done
t_note "$KILLS kills, $killed_running while the import ran"
t_eq "fsck clean after every kill" 0 "$fsck_bad"
t_eq "no half image ever visible" 0 "$half"
t_check "the killed imports' leftovers are freed by gc" "$IMGFS" gc
t_check "fsck clean after gc" "$IMGFS" fsck
t_eq "only the base image is named" "base:latest" "$(t_image_names | tr '\n' ' ' | sed 's/ $//')"
export IMGFS_ROOT=$T/store

# --- 3. rm -f while exec runs ---
id=$("$IMGFS" run -d --name ex busybox sleep 1000 | head -c 12)
t_cleanup "\"$IMGFS\" rm -f ex"
helpers=()
note_helpers "$id"
"$IMGFS" exec ex sh -c 'while :; do echo tick; sleep 0.01; done' >"$T/exec.out" 2>&1 &
pe=$!
t_cleanup "kill -9 $pe"
ticking() { [[ $(grep -c tick "$T/exec.out") -ge 3 ]]; }
t_check "the exec runs" t_wait_for 600 ticking
t_check "rm -f while the exec runs" bash -c "'$IMGFS' rm -f ex >/dev/null"
exec_gone() { ! kill -0 "$pe" 2>/dev/null; }
t_check "the exec ends" t_wait_for 600 exec_gone
rc=0
wait "$pe" || rc=$?
t_note "the exec's exit status: $rc"
gone_ex() { [[ $(leftovers "$id") == 0 ]]; }
t_wait_for 200 gone_ex || true
t_eq "nothing left of the container" 0 "$(leftovers "$id")"
t_note "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
t_end
