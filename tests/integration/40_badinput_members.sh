#!/bin/bash
# Hostile members inside a well-formed tar: ".." escapes, absolute names, links to nowhere, loops,
# names longer than PATH_MAX. Escapes and dangling hardlinks are errors naming the member; absolute
# names are made relative (as Docker does); symlinks are data, never followed at import.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
t_begin badinput_members
t_need_fixture busybox.tar

t_check "import a good image first" "$IMGFS" import -t bb "$FIXTURES/busybox.tar"

# mk NAME 'python statements using add(name, ...)' -> $T/NAME.tar
mk() {
    python3 - "$T/$1.tar" "$2" <<'PY'
import io, sys, tarfile
out, body = sys.argv[1], sys.argv[2]
tf = tarfile.open(out, "w", format=tarfile.PAX_FORMAT)
def add(name, data=b"x\n", kind=tarfile.REGTYPE, link="", mode=0o644):
    ti = tarfile.TarInfo(name)
    ti.type, ti.linkname, ti.mode, ti.mtime = kind, link, mode, 1000000000
    if kind == tarfile.REGTYPE:
        ti.size = len(data)
        tf.addfile(ti, io.BytesIO(data))
    else:
        tf.addfile(ti)
def d(name): add(name, kind=tarfile.DIRTYPE, mode=0o755)
def sym(name, target): add(name, kind=tarfile.SYMTYPE, link=target, mode=0o777)
def hard(name, target): add(name, kind=tarfile.LNKTYPE, link=target)
exec(body)
tf.close()
PY
}

mk dotdot 'd("etc"); add("etc/ok"); add("../escape")'
t_rejects "a ../ member" "escape|\.\." "$T/dotdot.tar" -t bad
mk dotdot-mid 'd("a"); add("a/../../etc/passwd")'
t_rejects "a member escaping through a/../.." "passwd|\.\." "$T/dotdot-mid.tar" -t bad
mk dotdot-link 'd("a"); add("a/f"); hard("b", "../a/f")'
t_rejects "a hardlink to ../" "\.\." "$T/dotdot-link.tar" -t bad
mk hard-missing 'd("a"); hard("a/link", "a/missing")'
t_rejects "a hardlink to a missing member" "a/link|a/missing" "$T/hard-missing.tar" -t bad
mk hard-forward 'hard("first", "second"); add("second")'
t_rejects "a hardlink to a later member" "first|second" "$T/hard-forward.tar" -t bad
mk hard-dir 'd("adir"); hard("dirlink", "adir")'
t_rejects "a hardlink to a directory" "dirlink|adir" "$T/hard-dir.tar" -t bad
long=$(printf 'n%.0s' $(seq 300))
mk longname "add('$long')"
t_rejects "a 300-byte name component" "long|name|$long" "$T/longname.tar" -t bad
huge=$(for i in $(seq 45); do printf 'c%.0s' $(seq 100); printf '/'; done)file
mk hugepath "add('$huge')"
t_rejects "a 4500-byte path" "long|path|name" "$T/hugepath.tar" -t bad
mk nul-free 'add("a\x00b")'
# (tarfile cuts names at NUL: whatever it wrote, the import must not crash)
rc=0
"$IMGFS" import -t nul "$T/nul-free.tar" >/dev/null 2>&1 || rc=$?
t_check "a name with a NUL does not crash the import (exit $rc)" test "$rc" -lt 128
"$IMGFS" rmi nul >/dev/null 2>&1 || true

# Accepted: absolute names become relative; symlinks (loops, escapes, dangling) are stored as data.
mk absolute 'd("/abs"); add("/abs/file", b"absolute\n"); add("//etc//double", b"double\n")'
t_check "absolute names are accepted" "$IMGFS" import -t abs "$T/absolute.tar"
mk symlinks 'sym("loop-a", "loop-b"); sym("loop-b", "loop-a"); sym("self", "self"); sym("up", "../../../../etc/shadow"); sym("root", "/"); sym("dangling", "nowhere")'
t_check "symlink loops and escapes are stored as symlinks" "$IMGFS" import -t syms "$T/symlinks.tar"
# A member below a symlink that points outside: must neither follow it on the host nor crash.
mk through-link 'sym("etc", "/tmp/imgfs-escape-canary"); add("etc/passwd", b"pwned\n")'
rc=0
"$IMGFS" import -t through "$T/through-link.tar" >"$T/through.log" 2>&1 || rc=$?
t_check "a member under a symlink: no crash (exit $rc: $(head -n1 "$T/through.log"))" test "$rc" -lt 128
t_check_fails "nothing was written through the symlink on the host" test -e /tmp/imgfs-escape-canary
# Duplicate members: the later one wins, as in tar -x.
mk dup 'add("f", b"first\n"); add("f", b"second\n")'
t_check "duplicate members are accepted" "$IMGFS" import -t dup "$T/dup.tar"

# With a mount (when `imgfs mount` works) the accepted trees look right.
mnt=$T/mnt
mkdir -p "$mnt"
if "$IMGFS" mount abs "$mnt" 2>/dev/null; then
    t_cleanup "'$IMGFS' umount '$mnt' || umount -l '$mnt'"
    t_eq "/abs/file is at abs/file" "absolute" "$(cat "$mnt/abs/file" 2>&1)"
    t_eq "//etc//double is at etc/double" "double" "$(cat "$mnt/etc/double" 2>&1)"
    "$IMGFS" umount "$mnt" || umount -l "$mnt"
    if "$IMGFS" mount syms "$mnt" 2>/dev/null; then
        t_eq "loop-a is a symlink to loop-b" "loop-b" "$(readlink "$mnt/loop-a")"
        t_eq "up keeps its target" "../../../../etc/shadow" "$(readlink "$mnt/up")"
        "$IMGFS" umount "$mnt" || umount -l "$mnt"
    fi
    if "$IMGFS" mount dup "$mnt" 2>/dev/null; then
        t_eq "the later duplicate wins" "second" "$(cat "$mnt/f" 2>&1)"
        "$IMGFS" umount "$mnt" || umount -l "$mnt"
    fi
else
    t_note "imgfs mount unavailable: accepted trees not checked through a mount"
fi

t_check "the good image is intact" "$IMGFS" inspect bb
t_check "fsck passes" "$IMGFS" fsck
t_end
