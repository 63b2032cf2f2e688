#!/bin/bash
# logs (issue 9 §3) and run -a (§2), Docker as the oracle: the monitor records each line of the
# container's stdout and stderr with its stream and time (Docker's json-file records), foreground
# runs too; `logs` puts them back on stdout and stderr, -t prints the time as `docker logs -t`,
# --since/--until filter by RFC 3339, Unix seconds or a duration, -f follows, --tail counts lines.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
t_begin logs
t_need_fixture busybox.tar
"$IMGFS" import -q -t busybox "$FIXTURES/busybox.tar"
t_check "a private dockerd" t_dockerd
"$IMGFS" export -f docker -o "$T/bb.tar" busybox
D load -i "$T/bb.tar" >/dev/null
t_cleanup "'$IMGFS' ps -aq | xargs -r '$IMGFS' rm -f"
t_cleanup "D ps -aq | xargs -r docker -H 'unix://$T_DOCKER_SOCK' rm -f"
# docker's overlay2 fails a start now and then under load ("exec: \"sh\": executable file not
# found", as 86_build_docker saw): the oracle's runs get three tries, a failed try's container gone
Drun() {
    local a i rc name="" prev=""
    for a in "$@"; do [[ $prev == --name ]] && name=$a; prev=$a; done
    for i in 1 2 3; do
        rc=0
        D run "$@" 2>"$T/drun.err" || rc=$?
        # a try docker itself failed leaves no trace; the last one's stderr is the run's
        if ((rc < 125 || i == 3)); then cat "$T/drun.err" >&2; return $rc; fi
        [[ -z $name ]] || D rm -f "$name" >/dev/null 2>&1 || true
    done
}
# run ARGS... with $tool: imgfs, or docker with its tries
run_with() { if [[ $tool == D ]]; then Drun "$@"; else "$IMGFS" run "$@"; fi; }
ts_re='[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{9}Z'

# A foreground run, both tools: what reached the terminal, then what `logs` gives back, apart
prog='echo out1; echo err1 >&2; echo out2; printf "\377bad\n"; echo err2 >&2; printf partial'
for tool in D "$IMGFS"; do
    k=$([[ $tool == D ]] && echo d || echo i)
    run_with --name fg --network none busybox sh -c "$prog" >"$T/$k.run.out" 2>"$T/$k.run.err"
    $tool logs fg >"$T/$k.out" 2>"$T/$k.err"
    $tool logs -t fg >"$T/$k.tout" 2>"$T/$k.terr"
    # one stream only: between the two pipes the order is the reader's (in docker too)
    run_with --name tl --network none busybox sh -c 'echo a; echo b; printf c' >/dev/null
    $tool logs --tail 2 tl >"$T/$k.tail" 2>&1
done
t_check "the foreground run printed stdout" cmp "$T/i.run.out" "$T/d.run.out"
t_check "the foreground run printed stderr" cmp "$T/i.run.err" "$T/d.run.err"
t_check "a foreground run is logged: stdout" grep -q out2 "$T/i.out"
t_check "logs: stdout on stdout, as docker (a non-UTF-8 byte as U+FFFD)" cmp "$T/i.out" "$T/d.out"
t_check "logs: stderr on stderr, as docker" cmp "$T/i.err" "$T/d.err"
t_check_fails "no stderr line on stdout" grep -q err "$T/i.out"
t_check "-t: each line starts with an RFC 3339 time with 9 digits (docker's)" \
    grep -qE "^$ts_re out1\$" "$T/d.tout"
t_check "-t: imgfs prints the same form" grep -qE "^$ts_re out1\$" "$T/i.tout"
t_eq "-t: stdout as docker's, times aside" "$(sed -E "s/^$ts_re/T/" "$T/d.tout")" \
    "$(sed -E "s/^$ts_re/T/" "$T/i.tout")"
t_eq "-t: stderr as docker's, times aside" "$(sed -E "s/^$ts_re/T/" "$T/d.terr")" \
    "$(sed -E "s/^$ts_re/T/" "$T/i.terr")"
t_check "--tail 2 as docker" cmp "$T/d.tail" "$T/i.tail"
t_eq "--tail 2" "b
c" "$(cat "$T/i.tail")"
now=$(date +%s)
t_check "-t: the time is now (within a day)" \
    test $(($(date -d "$(head -c 30 "$T/i.tout")" +%s) - now)) -gt -86400

# --since / --until: by the records' own times (a line's time, in each of the forms), and durations
second=$(sed -n 2p "$T/i.tout" | cut -d' ' -f1) # out2's time
for tool in D "$IMGFS"; do
    k=$([[ $tool == D ]] && echo d || echo i)
    $tool logs --since 10m fg >"$T/$k.since10m" 2>&1
    $tool logs --until 10m fg >"$T/$k.until10m" 2>&1
    $tool logs --since "$(($(date +%s) + 3600))" fg >"$T/$k.future" 2>&1
    $tool logs --until 2000-01-01T00:00:00Z fg >"$T/$k.past" 2>&1
done
for f in since10m until10m future past; do
    t_eq "logs ($f) as docker" "$(sort "$T/d.$f")" "$(sort "$T/i.$f")"
done
t_eq "--since 10m: every line" 6 "$(wc -l <"$T/i.since10m" | xargs expr 1 +)"
t_eq "--until 10m: none" "" "$(cat "$T/i.until10m")"
t_eq "--since OUT2'S TIME: from out2 on (stdout)" "out2
�bad
partial" "$("$IMGFS" logs --since "$second" fg 2>/dev/null)"
t_eq "--until OUT2'S TIME: up to it (inclusive, as docker)" "out1
out2" "$("$IMGFS" logs --until "$second" fg 2>/dev/null)"
ns=$(date -d "$second" +%s.%N)
t_eq "--until in Unix seconds.nanoseconds" "out1
out2" "$("$IMGFS" logs --until "$ns" fg 2>/dev/null)"
t_eq "--since with a zone offset" 6 \
    "$("$IMGFS" logs --since "$(date -d @$((now - 60)) +%Y-%m-%dT%H:%M:%S+00:00)" fg 2>&1 | wc -l | xargs expr 1 +)"
t_eq "--since in Unix seconds, a minute ago" 6 \
    "$("$IMGFS" logs --since $((now - 60)) fg 2>&1 | wc -l | xargs expr 1 +)"
t_eq "a bad --since is a usage error" 125 "$(set +e; "$IMGFS" logs --since yesterday fg 2>/dev/null; echo $?)"
t_check "naming the flag" sh -c "'$IMGFS' logs --since yesterday fg 2>&1 | grep -q 'invalid value for \"since\"'"

# Long lines: cut into 16 KiB records, printed whole again
for tool in D "$IMGFS"; do
    run_with --name long --network none busybox sh -c 'head -c 40000 /dev/zero | tr "\0" a; echo' >/dev/null
done
t_eq "a 40000-byte line comes back whole, as in docker" "$(D logs long | wc -c)" \
    "$("$IMGFS" logs long | wc -c)"
t_eq "a 40000-byte line: 40001 bytes" 40001 "$("$IMGFS" logs long | wc -c)"

# -f: follows a detached container's new lines until it ends, stdout and stderr apart
mkfifo "$T/go"
"$IMGFS" run -d --name follow --network none -v "$T:/t" busybox sh -c 'echo first; read x </t/go; echo second; echo later-err >&2' >/dev/null
"$IMGFS" logs -f follow >"$T/f.out" 2>"$T/f.err" &
fpid=$!
t_cleanup "kill $fpid"
t_check "-f printed what is there" t_wait_for 400 grep -q first "$T/f.out"
echo go >"$T/go"
t_check "-f ends when the container ends" wait $fpid
t_eq "-f: stdout" "first
second" "$(cat "$T/f.out")"
t_eq "-f: stderr" "later-err" "$(cat "$T/f.err")"

# -a: the streams not attached reach only the log; stdin is -i's (as Docker: -a stdin alone
# leaves it closed)
for tool in D "$IMGFS"; do
    k=$([[ $tool == D ]] && echo d || echo i)
    run_with --rm --network none -a stdout busybox sh -c 'echo out; echo err >&2' >"$T/$k.a1" 2>&1
    run_with --name att --network none -a stderr busybox sh -c 'echo out; echo err >&2' >"$T/$k.a2" 2>&1
    $tool logs att >"$T/$k.a2logs" 2>/dev/null
    echo hi | run_with --rm --network none -a stdin -a stdout busybox cat >"$T/$k.a3" 2>&1
    echo hi | run_with --rm --network none -i -a stdout busybox cat >"$T/$k.a4" 2>&1
done
t_eq "-a stdout: only stdout, as docker" "$(cat "$T/d.a1")" "$(cat "$T/i.a1")"
t_eq "-a stdout: only stdout" out "$(cat "$T/i.a1")"
t_eq "-a stderr: only stderr, as docker" "$(cat "$T/d.a2")" "$(cat "$T/i.a2")"
t_eq "-a stderr: stdout is in the log, as docker" "$(cat "$T/d.a2logs")" "$(cat "$T/i.a2logs")"
t_eq "-a stdin without -i: stdin stays closed, as docker" "$(cat "$T/d.a3")" "$(cat "$T/i.a3")"
t_eq "-i -a stdout: stdin is passed" hi "$(cat "$T/i.a4")"
t_eq "-a of an unknown stream: 125" 125 "$(set +e; "$IMGFS" run -a foo busybox true 2>/dev/null; echo $?)"
t_check "naming the valid streams" sh -c "'$IMGFS' run -a foo busybox true 2>&1 | grep -q 'valid streams are STDIN, STDOUT and STDERR'"
t_eq "-a with -d: Docker's 1" 1 "$(set +e; "$IMGFS" run -d -a stdout busybox true 2>/dev/null; echo $?)"
t_check "-a with -d: docker's words" sh -c "'$IMGFS' run -d -a stdout busybox true 2>&1 | grep -q 'conflicting options: cannot specify both --attach and --detach'"
t_end
