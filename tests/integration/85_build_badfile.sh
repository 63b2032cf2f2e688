#!/bin/bash
# imgfs build on broken Dockerfiles and .dockerignore files: every class of parse error once. The
# build fails before anything runs, the message names FILE:LINE and shows the offending lines as
# BuildKit does (`>>>`), nothing is named; parser directives `syntax` and `check` only warn.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
t_begin build_badfile

C=$T/ctx
mkdir -p "$C"
: >"$C/file"

# parser directives syntax= and check= are accepted, with a warning (this also makes the store,
# so that "no image named" below is asked of a real store)
printf '# syntax=docker/dockerfile:1\n# check=skip=all\nFROM scratch\nLABEL ok=1\n' >"$C/Dockerfile"
"$IMGFS" build --progress plain -t directives "$C" >"$T/build.log" 2>&1 && rc=0 || rc=$?
t_eq "syntax and check directives build" 0 "$rc"
t_check "... with a note that syntax is ignored" grep -q "syntax directive is ignored" \
    "$T/build.log"

t_check "the store lists the good build" "$IMGFS" inspect directives

# bad DOCKERFILE-TEXT LINE MESSAGE: the build must fail at LINE with MESSAGE and name nothing
bad() {
    local name=bad$((++n))
    printf '%b' "$1" >"$C/Dockerfile"
    if "$IMGFS" build --progress plain -t "$name" "$C" >"$T/build.log" 2>&1; then
        t_check "$3: the build fails" false
        return
    fi
    t_check "$3: names Dockerfile:$2" grep -q "Dockerfile:$2: .*$3" "$T/build.log"
    t_check "$3: shows the line" grep -q '^ *'"$2"' | >>> ' "$T/build.log"
    t_check_fails "$3: no image named" "$IMGFS" inspect "$name" 2>/dev/null
}
n=0
bad 'FROM scratch\nFOOBAR x\n' 2 'unknown instruction: FOOBAR'
bad 'FROM scratch\nCOPY --chwon=1 file /f\n' 2 'unknown flag: --chwon'
bad 'FROM scratch\nCOPY --from file /f\n' 2 'missing a value on flag: --from'
bad 'FROM scratch\nCOPY --link=maybe file /f\n' 2 'expecting boolean value for flag --link'
bad 'FROM scratch\n\nCOPY file\n' 3 'COPY requires at least two arguments'
bad 'FROM scratch\nENV PATH\n' 2 'ENV must have two arguments'
bad 'FROM scratch\nLABEL a=b c\n' 2 "Syntax error - can't find = in"
bad 'FROM scratch AS 1st\n' 1 'invalid name for build stage'
bad 'FROM scratch\nRUN <<EOF\necho never ends\n' 2 'unterminated heredoc'
bad '# escape=x\nFROM scratch\n' 1 'invalid escape token'
bad 'FROM scratch\nCMD ["a", 1]\n' 2 'arrays must be comprised of strings only'
bad 'FROM scratch\nHEALTHCHECK --interval=1us CMD true\n' 2 'cannot be less than 1ms'
bad 'FROM scratch\nONBUILD ONBUILD RUN x\n' 2 'Chaining ONBUILD'
bad 'LABEL a=b\nFROM scratch\n' 1 'no build stage in current context'
# a continuation: both lines are marked
bad 'FROM scratch\nCOPY \\\n  --chwon=1 file /f\n' 2 'unknown flag: --chwon'
t_check "a continued instruction marks all its lines" grep -q '^ *3 | >>>   --chwon' "$T/build.log"

printf '# only comments\n\n' >"$C/Dockerfile"
t_check_fails "a file with no instructions fails" "$IMGFS" build -t empty "$C"

# a broken .dockerignore names its line
printf 'FROM scratch\nCOPY file /f\n' >"$C/Dockerfile"
printf '*.tmp\n!\n' >"$C/.dockerignore"
if "$IMGFS" build -t badignore "$C" >"$T/build.log" 2>&1; then
    t_check "a lone ! in .dockerignore fails the build" false
else
    t_check "a lone ! in .dockerignore names its line" grep -q \
        '.dockerignore:2: illegal exclusion pattern' "$T/build.log"
fi

# the hidden --dump-ast: BuildKit's parser dump of each conformance case, the negative ones refused
K=$TOP/tests/conformance/buildkit
same=0 total=0
for d in "$K"/testfiles/*/; do
    total=$((total + 1))
    if "$IMGFS" build --dump-ast "$d/Dockerfile" >"$T/dump" 2>"$T/dump.err" &&
        cmp -s "$T/dump" "$d/result"; then
        same=$((same + 1))
    else
        t_note "--dump-ast differs for $d"
    fi
done
t_eq "--dump-ast gives every conformance case's result" "33/33" "$same/$total"
refused=0
for d in "$K"/testfiles-negative/*/; do
    "$IMGFS" build --dump-ast "$d/Dockerfile" >/dev/null 2>"$T/dump.err" || refused=$((refused + 1))
done
t_eq "--dump-ast refuses the 4 negative cases" 4 "$refused"
printf 'FROM scratch\nCOPY a b\n' | "$IMGFS" build --dump-ast - >"$T/dump"
t_eq "--dump-ast - reads stdin" '(from "scratch")|(copy "a" "b")' "$(paste -sd'|' "$T/dump")"
t_check_fails "--dump-ast is not in --help (hidden, as BuildKit has no such flag)" \
    grep -q dump-ast <("$IMGFS" build --help)
t_end
