#!/bin/bash
# imgfs build's TTY progress, on a real pseudo-terminal (script(1)): with --progress auto on a
# terminal the TTY mode is chosen; while a step runs its last lines show under its name, and when
# it is done they collapse into one line with the step's time. The screen is replayed from the
# bytes written (cursor up, erase line), so the test fails if the mode fell back to plain lines.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
t_begin build_progress
t_need_fixture busybox.tar
command -v script >/dev/null || t_skip "no script(1) for a pseudo-terminal"
"$IMGFS" import -t busybox:latest "$FIXTURES/busybox.tar" >/dev/null

C=$T/ctx
mkdir -p "$C"
cat >"$C/Dockerfile" <<'EOF'
FROM busybox:latest
RUN for i in $(seq 1 20); do echo "output line $i"; done
COPY Dockerfile /
EOF

# tty BUILD-ARGS...: run imgfs build on a pty; the raw bytes in $T/raw, the exit status in $T/rc
tty() {
    script -qec "$(printf '%q ' "$IMGFS" build "$@"); echo \$? >$T/rc" /dev/null >"$T/raw" 2>&1 </dev/null || true
}
# the final screen: what a terminal shows after those bytes (ESC[1A up a line, ESC[2K erase it)
screen() {
    python3 - "$T/raw" <<'EOF'
import re, sys
lines, cur = [""], 0
data = open(sys.argv[1], "rb").read().decode("utf-8", "replace").replace("\r\n", "\n")
for tok in re.findall(r"\x1b\[[0-9;]*[A-Za-z]|\n|[^\x1b\n]+", data):
    if tok == "\n":
        cur += 1
        if cur == len(lines):
            lines.append("")
    elif tok == "\x1b[1A":
        cur = max(cur - 1, 0)
    elif tok == "\x1b[2K":
        lines[cur] = ""
    elif tok.startswith("\x1b["):
        pass  # colours
    else:
        lines[cur] += tok
print("\n".join(lines).rstrip("\n"))
EOF
}

tty -t shown "$C"
t_eq "the build on a terminal succeeds" 0 "$(cat "$T/rc")"
screen >"$T/screen"
t_check "auto on a terminal is the TTY mode: it moves the cursor and erases lines" \
    grep -q $'\033\\[1A\033\\[2K' "$T/raw"
t_check_fails "... and prints no plain #N DONE lines" grep -qE '^#[0-9]+ DONE' "$T/screen"
t_check "while the RUN step ran, its last lines were under its name" \
    grep -qa $' #2 output line 20' "$T/raw"
t_check "... only the last ones: line 1 was no longer shown when line 20 was" python3 -c '
import sys
d = open(sys.argv[1], "rb").read().decode("utf-8", "replace")
last = d.rfind("output line 20")
frame = d[d.rfind("\x1b[34m => [2/3] RUN", 0, last):last]
sys.exit(0 if "output line 20" not in frame and "output line 15" in frame and "output line 1\x1b" not in frame else 1)' "$T/raw"
t_check "the RUN step collapsed into one line with its time" \
    grep -qE '^ => \[2/3\] RUN for i in .* +[0-9]+\.[0-9]s$' "$T/screen"
t_check_fails "... its output lines are gone from the screen" grep -q "output line [0-9]" "$T/screen"
t_check "the COPY step collapsed too" grep -qE '^ => \[3/3\] COPY Dockerfile / +[0-9]+\.[0-9]s$' \
    "$T/screen"
t_check "the summary follows" grep -q "^Built sha256:" "$T/screen"

tty -t shown "$C"
screen >"$T/screen"
t_check "a cached step shows as CACHED" grep -qE '^ => CACHED \[2/3\] RUN for i in' "$T/screen"

# a failing step prints its whole output, not only the tail the display showed
printf 'FROM busybox:latest\nRUN for i in $(seq 1 20); do echo "fail line $i"; done; exit 4\n' \
    >"$C/Dockerfile"
tty -t failed "$C"
t_eq "a failing RUN on a terminal exits 1" 1 "$(cat "$T/rc")"
screen >"$T/screen"
t_check "its whole output is printed again" grep -q "^fail line 1$" "$T/screen"
t_check "... after the step's name" grep -q '^ > \[2/2\] RUN for i' "$T/screen"
t_check "the error names the line" grep -q "Dockerfile:2: process .* exit code: 4" "$T/screen"

# --progress plain on a terminal stays plain
printf 'FROM busybox:latest\nRUN echo plain\n' >"$C/Dockerfile"
tty --progress plain -t plain "$C"
t_check "--progress plain on a terminal prints BuildKit's #N lines" \
    grep -qE '^#[0-9]+ DONE' <(screen)
t_end
