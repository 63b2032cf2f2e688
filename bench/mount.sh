#!/bin/bash
# bench/mount.sh [--runs N] [--tarball FILE] [--imgfs BIN] [--cold-rounds N] — imgfs mount against
# its peers, in one run.
#
# The same rootfs (default: tests/out/fixtures/debian-go.tar.gz, Debian minbase + golang-go, ~20,000
# files; made by `tests/fixtures/make.sh --go`) three ways:
#   plain      `tar -xzf` into a directory on the local disk
#   squashfuse `mksquashfs` of that directory, mounted with squashfuse_ll (FUSE low-level, like imgfs)
#   imgfs      `imgfs import` into a fresh store, `imgfs mount`
# and measured with hyperfine:
#   walk        `find DIR | wc -l` and `du -s DIR`, cold (caches dropped) and warm
#   read-all    every file's content (`find DIR -type f -exec cat {} +`), cold and warm
#   large file  `cat` of the largest file, cold
#   import      `imgfs import` against `tar -xzf` of the same tarball (each into an empty target)
# It prints a table with the ratios imgfs/plain and imgfs/squashfuse (lower is better) and writes it
# to bench/out/results.md. The goals (walk <= 1.0x plain, cold read <= 1.1x, warm <= 1.05x, import <=
# 1.0x tar -xzf, better than squashfuse_ll everywhere) are reported, never asserted. Needs root
# (drop_caches, mounts).
#
# --cold-rounds N measures only the cold read of every file, for a loaded machine: N rounds, each
# reading plain, squashfuse and imgfs once (caches dropped before each), the order rotating from
# round to round so that a burst of someone else's load does not always hit the same one; medians
# over the rounds. "imgfs fresh" mounts anew before its read (a new keeper and daemon; chunks
# checked since boot are not hashed again), "imgfs" reads through a mount that stays.
# --compare BIN adds "base" and "base fresh", the same with another imgfs binary (an older build),
# to measure what one change does; --variant 'NAME=COMMAND' (repeatable) one more mount, made by
# `COMMAND bench DIR` (e.g. 'threads2=./imgfs mount --threads 2', 'x=env VAR=1 ./imgfs-old mount').
# Written to bench/out/cold.md.
set -euo pipefail

TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RUNS=5
COLD_ROUNDS=0
COMPARE=
VARIANTS=()
TARBALL=$TOP/tests/out/fixtures/debian-go.tar.gz
IMGFS=$TOP/imgfs
while (($#)); do
    case $1 in
    --runs) RUNS=$2; shift 2 ;;
    --tarball) TARBALL=$2; shift 2 ;;
    --imgfs) IMGFS=$2; shift 2 ;;
    --cold-rounds) COLD_ROUNDS=$2; shift 2 ;;
    --compare) COMPARE=$2; shift 2 ;;
    --variant) VARIANTS+=("$2"); shift 2 ;;
    -h | --help) sed -n '2,32p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "mount.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
[[ $(id -u) == 0 ]] || { echo "mount.sh: run as root" >&2; exit 1; }
[[ -x $IMGFS ]] || { echo "mount.sh: $IMGFS not built (make)" >&2; exit 1; }
if [[ ! -s $TARBALL ]]; then
    echo "mount.sh: making $TARBALL (tests/fixtures/make.sh --go)" >&2
    "$TOP/tests/fixtures/make.sh" --go
fi

OUT=$TOP/bench/out
W=${BENCH_WORK:-/var/tmp/imgfs-bench}
mkdir -p "$OUT"
J=$OUT/mount   # (bench/out/json belongs to bench/run.sh)
rm -rf "$J"
mkdir -p "$J"
PLAIN=$W/plain SQIMG=$W/tree.squashfs SQMNT=$W/sqmnt IMGMNT=$W/imgmnt
export IMGFS_ROOT=$W/store IMGFS_RUN_DIR=$W/run

unmount_all() {
    mountpoint -q "$IMGMNT" 2>/dev/null && { "$IMGFS" umount "$IMGMNT" 2>/dev/null || umount -l "$IMGMNT"; }
    mountpoint -q "$SQMNT" 2>/dev/null && umount -l "$SQMNT"
    return 0
}
trap unmount_all EXIT
unmount_all
rm -rf "$W"
mkdir -p "$W" "$SQMNT" "$IMGMNT"

DROP='sync; echo 3 > /proc/sys/vm/drop_caches'
log() { echo "bench: $*" >&2; }

# hyperfine NAME [hyperfine options...] -- COMMAND: mean seconds into $J/NAME.json
hf() {
    local name=$1
    shift
    hyperfine --style basic --export-json "$J/$name.json" "$@" >"$J/$name.txt" 2>&1 ||
        { cat "$J/$name.txt" >&2; return 1; }
    jq -r '.results[0].mean' "$J/$name.json"
}
# Medians (and the minimum): on a shared machine a few runs that wait for a CPU or for someone
# else's I/O inflate the mean; the median and the minimum say more about the filesystem itself.
median() { jq -r '.results[0].median' "$J/$1.json" 2>/dev/null || echo nan; }
minimum() { jq -r '.results[0].min' "$J/$1.json" 2>/dev/null || echo nan; }

log "tarball: $TARBALL ($(du -h "$TARBALL" | cut -f1))"

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2fx", a / b; else print "n/a" }'; }
if ((COLD_ROUNDS > 0)); then
    mkdir -p "$PLAIN" "$W/freshmnt" "$W/basemnt" "$W/basefreshmnt"
    log "tar -xzf and imgfs import"
    tar --xattrs --xattrs-include='*' --numeric-owner -xzf "$TARBALL" -C "$PLAIN"
    "$IMGFS" import -q -t bench "$TARBALL"
    mksquashfs "$PLAIN" "$SQIMG" -noappend -quiet -no-progress >/dev/null
    squashfuse_ll "$SQIMG" "$SQMNT"
    "$IMGFS" mount bench "$IMGMNT"
    trap 'unmount_all; for m in "$W"/freshmnt "$W"/basemnt "$W"/basefreshmnt "$W"/v-*; do mountpoint -q "$m" && umount -l "$m"; done; true' EXIT
    kinds=(plain squashfuse imgfs imgfs-fresh)
    if [[ -n $COMPARE ]]; then
        kinds+=(base base-fresh)
        "$COMPARE" mount bench "$W/basemnt"
    fi
    for v in "${VARIANTS[@]}"; do
        name=${v%%=*}
        kinds+=("$name")
        mkdir -p "$W/v-$name"
        # word splitting wanted: the command and its arguments
        # shellcheck disable=SC2086
        ${v#*=} bench "$W/v-$name"
    done
    dir_of() {
        case $1 in
        plain) echo "$PLAIN" ;; squashfuse) echo "$SQMNT" ;; imgfs) echo "$IMGMNT" ;;
        imgfs-fresh) echo "$W/freshmnt" ;;
        base) echo "$W/basemnt" ;; base-fresh) echo "$W/basefreshmnt" ;;
        *) echo "$W/v-$1" ;;
        esac
    }
    # CPU time (user + system, ms) the daemon used so far: less at the mercy of other load than wall
    # time. 0 for the peers (their work is in the kernel or the reader).
    daemon_cpu_ms() {
        [[ -n $1 ]] || { echo 0; return; }
        awk -v hz="$(getconf CLK_TCK)" '{ sub(/.*\) /, ""); print int(($12 + $13) * 1000 / hz) }' "/proc/$1/stat"
    }
    loads=()
    for ((r = 0; r < COLD_ROUNDS; r++)); do
        for ((i = 0; i < ${#kinds[@]}; i++)); do
            k=${kinds[$(((i + r) % ${#kinds[@]}))]}
            d=$(dir_of "$k")
            if [[ $k == *-fresh ]]; then
                bin=$IMGFS
                [[ $k == base-fresh ]] && bin=$COMPARE
                if mountpoint -q "$d"; then "$bin" umount "$d"; fi
                "$bin" mount bench "$d"
            fi
            sync
            echo 3 >/proc/sys/vm/drop_caches
            dpid=$(pgrep -f "^imgfs-mountd $d " || true)
            cpu0=$(daemon_cpu_ms "$dpid")
            start=$(date +%s%N)
            find "$d" -type f -exec cat {} + >/dev/null
            echo "$k $((($(date +%s%N) - start) / 1000000)) $(($(daemon_cpu_ms "$dpid") - cpu0))" >>"$J/cold.txt"
        done
        loads+=("$(cut -d' ' -f1 /proc/loadavg)")
        log "round $((r + 1))/$COLD_ROUNDS: load $(cut -d' ' -f1-3 /proc/loadavg)"
    done
    # med KIND [COLUMN]: the median of a column (2: wall ms, 3: daemon CPU ms) over the rounds
    med() { awk -v k="$1" -v c="${2:-2}" '$1 == k { print $c }' "$J/cold.txt" | sort -n | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
    mn() { awk -v k="$1" '$1 == k { print $2 }' "$J/cold.txt" | sort -n | head -1; }
    {
        echo "Cold read of every file (\`find DIR -type f -exec cat {} + >/dev/null\`, caches dropped before each), $COLD_ROUNDS interleaved rounds; $(nproc) cores, $(uname -r), $(date -u +%Y-%m-%d); load average (1 min) after each round: ${loads[*]}. Times in ms: median (minimum); ratios of medians."
        echo
        echo "| | median | min | /plain | /squashfuse | daemon CPU (median) |"
        echo "|---|---|---|---|---|---|"
        for k in "${kinds[@]}"; do
            echo "| $k | $(med "$k") | $(mn "$k") | $(ratio "$(med "$k")" "$(med plain)") | $(ratio "$(med "$k")" "$(med squashfuse)") | $(med "$k" 3) |"
        done
    } | tee "$OUT/cold.md"
    exit 0
fi

# ---- import vs tar -xzf (each into an empty target; the last run leaves the tree/store in place) ----
log "import: tar -xzf"
hf import-tar --runs "$RUNS" --prepare "rm -rf '$PLAIN' && mkdir -p '$PLAIN' && $DROP" \
    "tar --xattrs --xattrs-include='*' --numeric-owner -xzf '$TARBALL' -C '$PLAIN'" >/dev/null
log "import: imgfs import"
hf import-imgfs --runs "$RUNS" --prepare "rm -rf '$IMGFS_ROOT' && $DROP" \
    "'$IMGFS' import -t bench '$TARBALL'" >/dev/null
files=$(find "$PLAIN" | wc -l)
bytes=$(du -sb "$PLAIN" | cut -f1)
largest=$(find "$PLAIN" -type f -printf '%s %P\n' | sort -n | tail -n1 | cut -d' ' -f2-)
log "tree: $files entries, $bytes bytes; largest file: $largest"

log "mksquashfs"
mksquashfs "$PLAIN" "$SQIMG" -noappend -quiet -no-progress >/dev/null
squashfuse_ll "$SQIMG" "$SQMNT"
"$IMGFS" mount bench "$IMGMNT"
for d in "$SQMNT" "$IMGMNT"; do
    mountpoint -q "$d" || { echo "mount.sh: $d is not mounted" >&2; exit 1; }
done
# Sanity: the three trees agree on the entry count and on the largest file
for d in "$SQMNT" "$IMGMNT"; do
    n=$(find "$d" | wc -l)
    [[ $n == "$files" ]] || log "WARNING: $d has $n entries, plain has $files"
    cmp -s "$PLAIN/$largest" "$d/$largest" || log "WARNING: $d/$largest differs from plain"
done

for kind in plain squashfuse imgfs; do
    case $kind in
    plain) d=$PLAIN ;;
    squashfuse) d=$SQMNT ;;
    imgfs) d=$IMGMNT ;;
    esac
    log "measuring $kind ($d)"
    hf "walk-find-cold-$kind" --runs "$RUNS" --prepare "$DROP" "find '$d' | wc -l" >/dev/null
    hf "walk-find-warm-$kind" --runs "$RUNS" --warmup 1 "find '$d' | wc -l" >/dev/null
    hf "walk-du-warm-$kind" --runs "$RUNS" --warmup 1 "du -s '$d'" >/dev/null
    hf "read-cold-$kind" --runs "$RUNS" --prepare "$DROP" \
        "find '$d' -type f -exec cat {} + > /dev/null" >/dev/null
    hf "read-warm-$kind" --runs "$RUNS" --warmup 1 "find '$d' -type f -exec cat {} + > /dev/null" >/dev/null
    hf "large-cold-$kind" --runs "$RUNS" --prepare "$DROP" "cat '$d/$largest' > /dev/null" >/dev/null
done

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2fx", a / b; else print "n/a" }'; }
ms() { awk -v a="$(median "$1")" -v m="$(minimum "$1")" 'BEGIN { printf "%.0f (%.0f)", a * 1000, m * 1000 }'; }
{
    echo "Tarball: \`$(basename "$TARBALL")\` — $files entries, $((bytes / 1024 / 1024)) MiB; largest file \`$largest\` ($(($(stat -c %s "$PLAIN/$largest") / 1024 / 1024)) MiB)."
    echo "Host: $(nproc) cores, $(uname -r), $(date -u +%Y-%m-%d), load average at the end $(cut -d' ' -f1-3 /proc/loadavg). hyperfine, $RUNS runs each; times in ms: median (minimum). Ratios are of medians."
    echo
    echo "| measurement | plain dir | squashfuse_ll | imgfs | imgfs/plain | imgfs/squashfuse | goal (imgfs/plain) |"
    echo "|---|---|---|---|---|---|---|"
    for m in "walk-find-cold@walk: find \\| wc -l, cold@" "walk-find-warm@walk: find \\| wc -l, warm@<= 1.0x" \
        "walk-du-warm@walk: du -s, warm@<= 1.0x" "read-cold@read all files, cold@<= 1.1x" \
        "read-warm@read all files, warm@<= 1.05x" "large-cold@largest file, cold@"; do
        IFS=@ read -r key label goal <<<"$m"
        echo "| $label | $(ms "$key-plain") | $(ms "$key-squashfuse") | $(ms "$key-imgfs") | $(ratio "$(median "$key-imgfs")" "$(median "$key-plain")") | $(ratio "$(median "$key-imgfs")" "$(median "$key-squashfuse")") | $goal |"
    done
    echo "| import: \`imgfs import\` vs \`tar -xzf\` | $(ms import-tar) | | $(ms import-imgfs) | $(ratio "$(median import-imgfs)" "$(median import-tar)") | | <= 1.0x |"
    echo
    "$IMGFS" du --json | jq -r '"Store after import: \(.Logical) bytes of files, \(.Stored) bytes stored in \(.Chunks) chunks, data.mdb \(.StoreFile) bytes."'
    echo "squashfs image (mksquashfs defaults, gzip): $(du -h "$SQIMG" | cut -f1); plain tree on disk: $(du -sh "$PLAIN" | cut -f1)."
} | tee "$OUT/results.md"
