#!/bin/bash
# tools/gen-man.sh IMGFS > imgfs.1 — the man page, made from the --help texts of the binary so the two
# never disagree: imgfs(1) with a section per command.
set -euo pipefail
bin=${1:?usage: gen-man.sh IMGFS}

# roff-escape a line of --help text: backslashes, and a leading dot or quote that roff would take
# for a request
esc() { sed -e 's/\\/\\e/g' -e "s/^\([.']\)/\\\\\&\1/" -e 's/-/\\-/g'; }

verbs=$("$bin" --help | awk '/^Commands:/ {on=1; next} on && /^  [a-z]/ {print $1}')
version=$("$bin" --version | awk '{print $NF}')

cat <<HEAD
.TH IMGFS 1 "" "imgfs $version" "User Commands"
.SH NAME
imgfs \- container images as content-addressed filesystems, and containers on them
.SH SYNOPSIS
.B imgfs
[\fB\-\-root\fR \fIDIR\fR] [\fB\-\-run\-dir\fR \fIDIR\fR] \fICOMMAND\fR [\fIARG\fR...]
.SH DESCRIPTION
.nf
HEAD
"$bin" --help | sed -n '3,$p' | esc
echo ".fi"
echo ".SH COMMANDS"
for v in $verbs; do
    echo ".SS imgfs $v"
    echo ".nf"
    "$bin" "$v" --help | esc
    echo ".fi"
done
cat <<'TAIL'
.SH ENVIRONMENT
.TP
.B IMGFS_ROOT
the store directory (default /var/lib/imgfs)
.TP
.B IMGFS_RUN_DIR
runtime state of mounts and containers (default /run/imgfs)
.SH EXIT STATUS
As Docker's: 0 on success, 125 when imgfs itself failed or was used wrongly, 126 when a
container's command cannot be run, 127 when it is not found, and otherwise the command's own
status.
.SH SEE ALSO
The project's docs/ directory.
TAIL
