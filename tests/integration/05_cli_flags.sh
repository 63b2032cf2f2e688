#!/bin/bash
# The command line refuses what Docker's refuses: a long flag must be spelled out (getopt_long would
# take any unambiguous prefix), unknown flags and missing values are usage errors (exit 125) whose
# message names the flag as the user typed it.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
t_begin "cli_flags"

# usage_error "what" "expected message part" imgfs-args...
usage_error() {
    local what=$1 want=$2
    shift 2
    local out rc=0
    out=$("$IMGFS" "$@" 2>&1) || rc=$?
    t_eq "$what: exit status" 125 "$rc"
    if [[ $out == *"$want"* && $out == *"--help'."* ]]; then
        t_pass "$what: says [$want]"
    else
        t_fail "$what: wanted [$want] and a pointer to --help, got [$out]"
    fi
}

usage_error "run --priv is not --privileged" "unknown flag: --priv" run --priv busybox true
usage_error "a prefix with a value" "unknown flag: --netw" run --netw=none busybox true
usage_error "ps --al is not --all" "unknown flag: --al" ps --al
usage_error "images --qu is not --quiet" "unknown flag: --qu" images --qu
usage_error "an unknown shorthand" "unknown shorthand flag: 'Z' in -aZ" ps -aZ
usage_error "a missing value" "flag needs an argument: --time" stop --time
usage_error "a missing short value" "flag needs an argument: 't' in -t" stop -t
usage_error "mount --thread" "unknown flag: --thread" mount --thread 2 busybox /nonexistent

# every verb's pointer to --help comes from tools/common.c's cli_usage_error, whatever refused it
for v in build exec kill logs rm stop; do
    usage_error "$v --bogus" "unknown flag: --bogus" "$v" --bogus
done
usage_error "build --base without --go" "--base goes with --go" build --base x .
usage_error "an unknown subcommand of a group" "unknown command \`nosuch\`" container nosuch
t_check "no verb prints the pointer to --help by hand" \
    bash -c "! grep -n \"See 'imgfs\" \"\$0\"/tools/cmd_*.c" "$TOP"

# The same flags spelled out work (no image or container needed for these).
t_check "ps --all --quiet works" "$IMGFS" ps --all --quiet
t_check "images --quiet works" "$IMGFS" images --quiet
out=$("$IMGFS" run --privileged 2>&1) || true
t_check "run --privileged is a known flag" bash -c '[[ $0 != *"unknown flag"* ]]' "$out"
t_end
