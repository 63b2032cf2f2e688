#!/bin/bash
# bench/gofast.sh [--runs N] [--imgfs BIN] — the Go fast path against the Dockerfile path for the
# same program (examples/go-service), in a private store with the offline bases (tools/mkbase.sh,
# from $IMGFS_FIXTURES when set):
#
#   go-fast warm     `imgfs build --go .` with a warm Go build cache (the user's)
#   go-fast edit     the same after a one-line change in main.go (go recompiles the package)
#   dockerfile cold  `imgfs build --no-cache` of the classic Dockerfile (FROM golang:1.19, COPY,
#                    RUN go build: the container's own, empty Go cache every time)
#   dockerfile edit  the Dockerfile after a one-line change (COPY and RUN run again)
#
# hyperfine, the commands taking turns; prints the medians, the ratios and both image sizes, and
# writes bench/out/gofast.md. The first --go build that fills a cold Go cache (about a minute:
# the standard library is compiled for CGO_ENABLED=0) is made before timing. Needs root.
set -euo pipefail

TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RUNS=10
IMGFS=$TOP/imgfs
while (($#)); do
    case $1 in
    --runs) RUNS=$2; shift 2 ;;
    --imgfs) IMGFS=$2; shift 2 ;;
    -h | --help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "gofast.sh: unknown option $1" >&2; exit 2 ;;
    esac
done
command -v hyperfine >/dev/null || { echo "gofast.sh: needs hyperfine (make deps)" >&2; exit 1; }
command -v go >/dev/null || { echo "gofast.sh: needs go (make deps)" >&2; exit 1; }
W=$(mktemp -d /tmp/imgfs-gofast.XXXXXX)
cleanup() {
    { grep -F " $W/" /proc/mounts || true; } | awk '{print $2}' | sort -r | while read -r m; do
        umount -l "$m" 2>/dev/null || true
    done
    rm -rf "$W"
}
trap cleanup EXIT
export IMGFS_ROOT=$W/store IMGFS_RUN_DIR=$W/run IMGFS_BASE_CACHE=$W/basecache
"$TOP/tools/mkbase.sh" --imgfs "$IMGFS" golang:1.19 static:latest
cp -r "$TOP/examples/go-service" "$W/src"
cd "$W/src"
"$IMGFS" build --go . -q -t fast >/dev/null                 # fills a cold Go cache
"$IMGFS" build --progress quiet -t df . >/dev/null          # the Dockerfile path, once
edit='echo "// $RANDOM$RANDOM" >> main.go'
mkdir -p "$TOP/bench/out"
# (--prepare is given once per command, in order: only the "edit" ones change main.go)
hyperfine --runs "$RUNS" --style basic --export-json "$W/gofast.json" \
    --prepare true --prepare "$edit" --prepare true --prepare "$edit" \
    -n "go-fast warm" "'$IMGFS' build --go . -q -t fast" \
    -n "go-fast edit" "'$IMGFS' build --go . -q -t fast" \
    -n "dockerfile cold" "'$IMGFS' build --progress quiet --no-cache -t df ." \
    -n "dockerfile edit" "'$IMGFS' build --progress quiet -t df ." >&2
med() { jq -r --arg n "$1" '.results[] | select(.command == $n) | .median' "$W/gofast.json"; }
size() { "$IMGFS" inspect "$1" | awk '/^Size:/ {print $2}'; }
fw=$(med "go-fast warm") fe=$(med "go-fast edit") dc=$(med "dockerfile cold") de=$(med "dockerfile edit")
{
    echo "| (median, s) | imgfs build --go | imgfs build (Dockerfile) | ratio |"
    echo "|---|---|---|---|"
    printf '| unchanged source | %.3f | %.3f (--no-cache) | %.2f |\n' "$fw" "$dc" "$(echo "$fw / $dc" | bc -l)"
    printf '| one-line change | %.3f | %.3f | %.2f |\n' "$fe" "$de" "$(echo "$fe / $de" | bc -l)"
    echo "| image size | $(size fast) | $(size df) | |"
    echo
    echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg); $RUNS runs each"
} | tee "$TOP/bench/out/gofast.md"
