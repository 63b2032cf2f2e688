#!/bin/bash
# tests/compare-trees.sh [--no-content] A B — compare two directory trees the way a user of an image
# would see them: every path, its type, mode (with setuid/setgid/sticky), owner, size, link count,
# mtime to the nanosecond, device numbers, symlink target, xattrs (every namespace), which names
# are hardlinks of one another, and the bytes of every regular file. Prints the differences
# (`diff -u` of the two listings, "-" lines from A, "+" from B) and exits 1 when the trees differ,
# 0 when they match, 2 on bad usage.
#
# What is deliberately not compared:
#   - a directory's size and link count: file systems disagree about them (ext4 counts blocks,
#     tmpfs entries; btrfs keeps nlink 1), and nobody reads them;
#   - atime and ctime: an unpacked tree gets them from the unpacking, not from the image;
#   - inode numbers themselves (only which names share one).
# Names may hold any byte, newlines included: they are listed NUL-separated and escaped.
set -euo pipefail

content=1
if [[ ${1:-} == --no-content ]]; then
    content=0
    shift
fi
if [[ $# != 2 || $1 == -h || $1 == --help ]]; then
    sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'
    [[ ${1:-} == -h || ${1:-} == --help ]] && exit 0
    exit 2
fi
for d in "$1" "$2"; do
    if [[ ! -d $d ]]; then
        echo "compare-trees.sh: \`$d\` is not a directory" >&2
        exit 2
    fi
done

# NUL-terminated records -> one line each, with backslash and newline escaped.
lines() { sed -z 's/\\/\\\\/g; s/\n/\\n/g' | tr '\0' '\n'; }

listing() { # listing DIR: the whole description of the tree, sorted
    local dir=$1
    (
        cd "$dir"
        # metadata: directories without size and nlink
        find . -mindepth 1 ! -type d -printf '%P\t%y %#m %U:%G size=%s nlink=%n mtime=%T@ -> %l\0' | lines
        find . -mindepth 1 -type d -printf '%P\t%y %#m %U:%G mtime=%T@\0' | lines
        # device numbers (find cannot print them)
        find . -mindepth 1 \( -type b -o -type c \) -print0 | sed -z 's|^\./||' |
            xargs -0 -r stat --printf '%n\tdevice %t:%T\n' | sort
        # hardlinks: every name of a multiply-linked file points at the group's first name
        find . -mindepth 1 ! -type d -links +1 -printf '%i\t%P\0' | lines | sort -t$'\t' -k2 |
            awk -F'\t' '{ if (!($1 in first)) first[$1] = $2; print $2 "\thardlink of " first[$1] }'
        # xattrs in every namespace, one line per attribute (getfattr escapes odd names itself)
        getfattr -R -h -d -m - -e hex . 2>/dev/null |
            awk '/^# file: / { f = substr($0, 9); sub(/^\.\//, "", f); next }
                 /^$/ { next }
                 { print f "\txattr " $0 }'
        if ((content)); then
            # content: sha256sum escapes names with a leading backslash itself
            find . -type f -print0 | sed -z 's|^\./||' | xargs -0 -r sha256sum -- |
                awk '{ h = $1; $1 = ""; print substr($0, 2) "\tsha256 " h }'
        fi
    ) | LC_ALL=C sort
}

a=$(mktemp)
b=$(mktemp)
trap 'rm -f "$a" "$b"' EXIT
listing "$1" >"$a"
listing "$2" >"$b"
if ! diff -u --label "$1" --label "$2" "$a" "$b"; then
    echo "compare-trees.sh: \`$1\` and \`$2\` differ" >&2
    exit 1
fi
echo "compare-trees.sh: the trees match ($(wc -l <"$a") facts compared)"
