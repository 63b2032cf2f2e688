#!/bin/bash
# What a user finds besides the commands themselves: every verb answers --help, the man page holds
# every verb's help (tools/gen-man.sh makes it from those texts), bash completion offers verbs and
# the flags a verb's --help lists, and a mistyped verb gets a suggestion.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
t_begin "cli_docs"

verbs=$("$IMGFS" --help | awk '/^Commands:/ {on=1; next} on && /^  [a-z]/ {print $1}')
t_check "imgfs --help lists commands" test -n "$verbs"
"$TOP/tools/gen-man.sh" "$IMGFS" >"$T/imgfs.1"
MANWIDTH=200 man -l "$T/imgfs.1" >"$T/man.txt" 2>"$T/man.err"
t_check "the man page renders without warnings" test ! -s "$T/man.err"
for v in $verbs; do
    rc=0
    help=$("$IMGFS" "$v" --help) || rc=$?
    t_eq "imgfs $v --help exits 0" 0 "$rc"
    first=$(head -n1 <<<"$help" | tr -s ' ')
    t_check "man page has imgfs $v" grep -qF -- "$first" <(tr -s ' ' <"$T/man.txt")
done

complete_words() { # complete_words WORD... : what completion offers for the last word
    bash -c 'source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); _imgfs; echo "${COMPREPLY[*]}"' \
        _ "$TOP/tools/imgfs-completion.bash" "$@"
}
PATH_BIN=$IMGFS
t_eq "completion of a verb" "run" "$(complete_words "$PATH_BIN" ru)"
got=$(complete_words "$PATH_BIN" run --priv)
t_eq "completion of a run flag" "--privileged" "$got"
got=$(complete_words "$PATH_BIN" ps --)
t_check "completion of ps flags lists --all and --quiet" bash -c '[[ " $0 " == *" --all "* && " $0 " == *" --quiet "* ]]' "$got"

out=$("$IMGFS" rnu 2>&1) && rc=0 || rc=$?
t_eq "a mistyped verb exits 125" 125 "$rc"
t_check "a mistyped verb gets a suggestion" grep -qF "Did you mean \`imgfs run\`?" <<<"$out"
out=$("$IMGFS" xyzzy 2>&1) || true
t_check "no suggestion for a word far from every verb" bash -c '! grep -q "Did you mean" <<<"$0"' "$out"
t_end
