#!/bin/bash
# The simple `docker run` flags: --label (container inspect, ps --filter label), --add-host,
# --dns/--dns-search/--dns-option (the container's /etc/hosts and /etc/resolv.conf),
# --stop-signal and --stop-timeout (what `stop` sends and how long it waits), --platform (a warning
# on a mismatch), and Docker's refusals of bad values (exit 125).
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
t_begin run_flags
t_need_fixture busybox.tar
"$IMGFS" import -q -t busybox "$FIXTURES/busybox.tar"
run() { "$IMGFS" run --rm "$@" </dev/null; }

# --label
t_cleanup "'$IMGFS' rm -f labelled >/dev/null 2>&1"
"$IMGFS" run -d --name labelled -l team=infra --label solo busybox sleep 60 >/dev/null </dev/null
t_eq "--label in inspect" "infra|" \
    "$("$IMGFS" inspect labelled | jq -r '.[0].Config.Labels | "\(.team)|\(.solo)"')"
t_eq "ps --filter label=team=infra finds it" "labelled" \
    "$("$IMGFS" ps --filter label=team=infra --format '{{.Names}}')"
t_eq "ps --filter label=team=other does not" "" "$("$IMGFS" ps --filter label=team=other --format '{{.Names}}')"
"$IMGFS" rm -f labelled >/dev/null

# --add-host, --dns, --dns-search, --dns-option
hosts=$(run --add-host db.local:192.0.2.7 --add-host v6:2001:db8::1 busybox cat /etc/hosts)
t_check "--add-host NAME:IP is in /etc/hosts" grep -qx $'192.0.2.7\tdb.local' <<<"$hosts"
t_check "--add-host with an IPv6 address" grep -qx $'2001:db8::1\tv6' <<<"$hosts"
resolv=$(run --network none --dns 192.0.2.53 --dns 192.0.2.54 --dns-search example.org --dns-option ndots:2 \
    busybox cat /etc/resolv.conf)
t_eq "--dns servers replace the default ones" "192.0.2.53 192.0.2.54" \
    "$(awk '$1 == "nameserver" {print $2}' <<<"$resolv" | xargs)"
t_eq "--dns-search" "search example.org" "$(grep '^search' <<<"$resolv" | tail -n 1)"
t_eq "--dns-option" "options ndots:2" "$(grep '^options' <<<"$resolv" | tail -n 1)"
t_check "without --dns the file is unchanged (no search line of ours)" \
    bash -c "! '$IMGFS' run --rm --network none busybox cat /etc/resolv.conf </dev/null | grep -q example.org"

# --stop-signal: stop sends it (the trap's exit status is the container's)
t_cleanup "'$IMGFS' rm -f sig >/dev/null 2>&1"
"$IMGFS" run -d --name sig --stop-signal USR1 busybox sh -c 'trap "exit 5" USR1; echo ready; while :; do sleep 0.1; done' >/dev/null </dev/null
ready() { "$IMGFS" logs "$1" 2>/dev/null | grep -q ready; }
t_check "the trap is set" t_wait_for 600 ready sig
"$IMGFS" stop sig >/dev/null
t_eq "--stop-signal USR1: stop sent USR1 (trap exit 5)" "5" "$("$IMGFS" wait sig)"
"$IMGFS" rm -f sig >/dev/null

# --stop-timeout: 0 kills at once (137), while the default grace lets the TERM trap finish (3)
t_cleanup "'$IMGFS' rm -f slow0 slowd >/dev/null 2>&1"
body='trap "sleep 1; exit 3" TERM; echo ready; while :; do sleep 0.1; done'
"$IMGFS" run -d --name slow0 --stop-timeout 0 busybox sh -c "$body" >/dev/null </dev/null
"$IMGFS" run -d --name slowd busybox sh -c "$body" >/dev/null </dev/null
t_check "both traps are set" t_wait_for 600 bash -c "$(declare -f ready); IMGFS='$IMGFS'; ready slow0 && ready slowd"
"$IMGFS" stop slow0 >/dev/null
"$IMGFS" stop slowd >/dev/null
t_eq "--stop-timeout 0: stop kills at once" "137" "$("$IMGFS" wait slow0)"
t_eq "default grace: the TERM trap finished" "3" "$("$IMGFS" wait slowd)"
"$IMGFS" rm -f slow0 slowd >/dev/null

# --platform
arch=$("$IMGFS" inspect --json busybox | jq -r '.. | objects | .architecture? // empty' | head -n 1)
t_check "the image names its architecture" test -n "$arch"
err=$("$IMGFS" run --rm --platform linux/s390x busybox true 2>&1 </dev/null)
t_check "--platform mismatch: a warning naming both" grep -q "is for linux/$arch, not the requested platform linux/s390x" <<<"$err"
t_eq "--platform matching: no warning" "" "$("$IMGFS" run --rm --platform "linux/$arch" busybox true 2>&1 </dev/null)"

# --ulimit and --shm-size
t_eq "--ulimit nofile=SOFT:HARD and core=N" "1000 2000 0" \
    "$(run --ulimit nofile=1000:2000 --ulimit core=0 busybox sh -c 'echo $(ulimit -n) $(ulimit -Hn) $(ulimit -c)')"
t_eq "--shm-size 128m: /dev/shm is 128 MiB" "131072" "$(run --shm-size 128m busybox df -k /dev/shm | awk 'NR == 2 {print $2}')"
t_eq "default /dev/shm is 64 MiB" "65536" "$(run busybox df -k /dev/shm | awk 'NR == 2 {print $2}')"

# --group-add (a gid and a name from the image's /etc/group)
t_eq "--group-add 1234 --group-add nogroup" "uid=1000(app) gid=1000(app) groups=1000(app),1234,65534(nogroup)" \
    "$(run --group-add 1234 --group-add nogroup -u 1000 busybox id)"

# --pid host, --ipc host: the host's namespaces (compared by their inode); without: the container's own
ns() { run "$@" busybox sh -c 'readlink /proc/self/ns/pid; readlink /proc/self/ns/ipc' | xargs; }
host_ns="$(readlink /proc/self/ns/pid) $(readlink /proc/self/ns/ipc)"
t_eq "--pid host --ipc host: the host's namespaces" "$host_ns" "$(ns --pid host --ipc host)"
own=$(ns)
t_check "by default neither namespace is the host's" test "${own%% *}" != "${host_ns%% *}" -a "${own##* }" != "${host_ns##* }"
t_eq "--ipc host alone: the host's IPC, its own PID namespace" "$(readlink /proc/self/ns/ipc)" "$(ns --ipc host | cut -d' ' -f2)"
t_cleanup "'$IMGFS' rm -f pidhost >/dev/null 2>&1"
"$IMGFS" run -d --name pidhost --pid host busybox sleep 60 >/dev/null </dev/null
t_eq "exec into a --pid host container" "$(readlink /proc/self/ns/pid)" "$("$IMGFS" exec pidhost readlink /proc/self/ns/pid)"
"$IMGFS" rm -f pidhost >/dev/null

refused() { # refused "what" "message part" imgfs-args...
    local what=$1 want=$2 out rc=0
    shift 2
    out=$("$IMGFS" "$@" 2>&1 </dev/null) || rc=$?
    t_eq "$what: exit status" 125 "$rc"
    if [[ $out == *"$want"* ]]; then t_pass "$what: says [$want]"; else t_fail "$what: wanted [$want], got [$out]"; fi
}
refused "--add-host without an IP: Docker's words" 'invalid argument "x" for "--add-host" flag: bad format for add-host: "x"' run --rm --add-host x busybox true
refused "--add-host with a bad IP" 'invalid IP address in add-host: "1.2.3"' run --rm --add-host a:1.2.3 busybox true
refused "--dns not an IP" 'invalid argument "dns.example" for "--dns" flag: dns.example is not an ip address' \
    run --rm --dns dns.example busybox true
refused "--stop-signal unknown" "Invalid signal: SIGNOPE" run --rm --stop-signal SIGNOPE busybox true
refused "--stop-timeout not a number" 'invalid argument "x" for "--stop-timeout" flag' run --rm --stop-timeout x busybox true
refused "--platform without a /" 'invalid argument "amd64" for "--platform" flag' run --rm --platform amd64 busybox true
refused "--ulimit unknown type" 'invalid argument "foo=1" for "--ulimit" flag: invalid ulimit type: foo' \
    run --rm --ulimit foo=1 busybox true
refused "--ulimit soft above hard" "ulimit soft limit must be less than or equal to hard limit: 5 > 2" \
    run --rm --ulimit nofile=5:2 busybox true
refused "--ulimit not a number" 'invalid ulimit argument: nofile=x' run --rm --ulimit nofile=x busybox true
refused "--shm-size not a size" "invalid argument \"abc\" for \"--shm-size\" flag: invalid size: 'abc'" \
    run --rm --shm-size abc busybox true
refused "--group-add of a missing group" "Unable to find group nosuch: no matching entries in group file" \
    run --rm --group-add nosuch busybox true
refused "--pid other" "invalid PID mode" run --rm --pid container:x busybox true
refused "--ipc other" "invalid IPC mode" run --rm --ipc shareable busybox true
t_end
