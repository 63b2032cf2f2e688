#!/bin/bash
# Input `imgfs run` must refuse as Docker does (Docker 20.10's messages and exit codes were taken
# from a real dockerd on this machine): container names, a name two runs want at once, -it without
# a terminal, --cpus/--memory/-e/--env-file values, -v onto / or /proc, and the exit status 1 that
# Docker gives verbs for a missing container.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
t_begin "cli_refuse"
"$IMGFS" import -q -t busybox "$FIXTURES/busybox.tar"

refused() { # refused "what" STATUS "message part" imgfs-args...
    local what=$1 want_rc=$2 want=$3
    shift 3
    local out rc=0
    out=$("$IMGFS" "$@" 2>&1 </dev/null) || rc=$?
    t_eq "$what: exit status" "$want_rc" "$rc"
    if [[ $out == *"$want"* ]]; then t_pass "$what: says [$want]"; else t_fail "$what: wanted [$want], got [$out]"; fi
}

# the checks must not pass because run fails for another reason: a plain run works
t_eq "a plain run works" "ok" "$("$IMGFS" run --rm busybox echo ok </dev/null)"

refused "a name with a space" 125 "Invalid container name (bad name), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed" \
    run --rm --name 'bad name' busybox true
refused "a name starting with -" 125 "Invalid container name (-x)" run --rm --name=-x busybox true
refused "a name starting with ." 125 "Invalid container name (.x)" run --rm --name .x busybox true
t_eq "a name with _ . - is fine" "ok" "$("$IMGFS" run --rm --name a_b.c-1 busybox echo ok </dev/null)"

# ten runs with one name at once: exactly one wins, the others get Docker's conflict message
t_cleanup "'$IMGFS' rm -f same"
for i in $(seq 10); do
    ("$IMGFS" run -d --name same busybox sleep 60 >"$T/par.$i" 2>&1 </dev/null; echo "rc=$?" >>"$T/par.$i") &
done
wait
t_eq "one of ten parallel runs with one name wins" 1 "$(cat "$T"/par.* | grep -c '^rc=0$')"
t_eq "nine are refused" 9 "$(cat "$T"/par.* | grep -c 'Conflict. The container name "/same" is already in use')"
t_eq "ps shows one container named same" 1 "$("$IMGFS" ps -a | awk '$NF == "same"' | wc -l)"
refused "the name is taken while the container exists" 125 "is already in use" run -d --name same busybox true
# a container made before names were linked (an older imgfs) has only its state file: the first
# claim in a run directory links it (and marks names/ as linked), so its name stays taken
rm "$IMGFS_RUN_DIR/names/same" "$IMGFS_RUN_DIR/names/.linked"
refused "an unlinked container's name is taken" 125 "is already in use" run -d --name same busybox true
t_eq "its name is linked again" "$("$IMGFS" inspect -f '{{.Id}}' same)" \
    "$(readlink "$IMGFS_RUN_DIR/names/same")"
t_eq "then the run directory is marked as linked" yes \
    "$([[ -e $IMGFS_RUN_DIR/names/.linked ]] && echo yes)"
refused "and the name stays taken" 125 "is already in use" run -d --name same busybox true
"$IMGFS" rm -f same >/dev/null
t_eq "after rm the name is free again" "ok" "$("$IMGFS" run --rm --name same busybox echo ok </dev/null)"

refused "-it without a terminal" 1 "the input device is not a TTY" run --rm -it busybox true
t_eq "-i with a pipe ends at EOF" "a b END" \
    "$(printf 'a\nb\n' | "$IMGFS" run --rm -i busybox sh -c 'while read x; do printf "%s " $x; done; echo END')"
refused "--cpus beyond the machine" 125 "Range of CPUs is from 0.01 to $(nproc).00, as there are only $(nproc) CPUs available" \
    run --rm --cpus 999 busybox true
refused "--cpus not a number" 125 'invalid argument "abc" for "--cpus" flag' run --rm --cpus abc busybox true
refused "-m names the limit" 125 "--memory 1k: the minimum memory limit allowed is 6MB" run --rm --memory 1k busybox true
refused "-m not a size" 125 "invalid argument \"abc\" for \"-m\" flag: invalid size: 'abc'" run --rm -m abc busybox true
refused "-e =x" 125 'invalid argument "=x" for "-e" flag: invalid environment variable: =x' run --rm -e =x busybox true
printf 'A B=1\n' >"$T/env1"
printf 'export X=1\n' >"$T/env2"
refused "--env-file key with a space" 125 "variable 'A B' contains whitespaces" run --rm --env-file "$T/env1" busybox true
refused "--env-file export X=1" 125 "variable 'export X' contains whitespaces" run --rm --env-file "$T/env2" busybox true
mkdir -p "$T/vol"
refused "-v onto /" 125 "destination can't be '/'" run --rm -v "$T/vol:/" busybox true
refused "-v onto /proc" 125 "/proc" run --rm -v "$T/vol:/proc" busybox true
refused "-v with a one-character volume name" 125 \
    "create x: volume name is too short, names should be at least two alphanumeric characters" \
    run --rm -v x:/data busybox true

refused "logs of a missing container" 1 "no such container" logs nosuch
refused "exec in a missing container" 1 "no such container" exec nosuch true
refused "stop of a missing container" 1 "no such container" stop nosuch
refused "rm of a missing container" 1 "no such container" rm nosuch
t_end
