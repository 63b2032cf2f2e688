#!/bin/bash
# bench/build_from.sh [--rounds N] [TARBALL] — `imgfs build` FROM a registry image the store lacks:
# the Debian+golang fixture (tests/fixtures/make.sh --go) pushed by imgfs (eStargz) to a
# docker-registry on 127.0.0.1, built on in a cold store (page cache dropped) two ways:
#   lazy    imgfs build (FROM pulls lazily: metadata, then the chunks the steps read)
#   whole   imgfs pull REGISTRY/IMAGE, then imgfs build (what FROM did before it was lazy: the
#           same pull_image before the first step)
# on two Dockerfiles: `RUN go version >/v` and a COPY of a hello program with `RUN go build`.
# Each figure is the median of --rounds rounds (default 3), the methods interleaved; the load
# average is sampled at each build. Prints the wall time of pull + build and the bytes the
# registry sent (its access log: every 200 and 206 blob answer). Results go to docs/benchmarks.md
# by hand. Needs root (drop_caches, the build's mounts).
set -euo pipefail
TOP=$(cd "$(dirname "$0")/.." && pwd)
IMGFS=${IMGFS:-$TOP/imgfs}
ROUNDS=3
if [[ ${1:-} == --rounds ]]; then
    ROUNDS=$2
    shift 2
fi
TARBALL=${1:-${IMGFS_FIXTURES:-/work/fixtures}/debian-go.tar.gz}
[[ -s $TARBALL ]] || { echo "bench/build_from.sh: no $TARBALL (tests/fixtures/make.sh --go)" >&2; exit 2; }
for t in docker-registry jq curl ss; do
    command -v "$t" >/dev/null || { echo "bench/build_from.sh: $t is not installed (make deps)" >&2; exit 2; }
done
W=$(mktemp -d /var/tmp/imgfs-bench-build-from.XXXXXX)
REG_PID=
cleanup() {
    for m in $(grep -F " $W/" /proc/mounts | awk '{print $2}' | sort -r); do umount -l "$m" 2>/dev/null || true; done
    if [[ -n $REG_PID ]]; then kill "$REG_PID" 2>/dev/null || true; wait "$REG_PID" 2>/dev/null || true; fi
    rm -rf "$W"
}
trap cleanup EXIT
now() { date +%s%N; }
wait_for() { local i; for ((i = 0; i < 600; i++)); do "$@" 2>/dev/null && return 0; sleep 0.05; done; return 1; }

REG_PORT=$((20000 + RANDOM % 30000))
while ss -Hltn "sport = :$REG_PORT" | grep -q .; do REG_PORT=$((20000 + RANDOM % 30000)); done
REG=127.0.0.1:$REG_PORT
mkdir -p "$W/reg"
printf 'version: 0.1\nlog: {level: error, accesslog: {disabled: false}}\nstorage: {filesystem: {rootdirectory: %s}}\nhttp: {addr: %s}\n' \
    "$W/reg/storage" "$REG" >"$W/reg/config.yml"
docker-registry serve "$W/reg/config.yml" >"$W/reg/log" 2>&1 &
REG_PID=$!
wait_for curl -fsS "http://$REG/v2/" >/dev/null
echo "registry on $REG; importing and pushing $(basename "$TARBALL")..." >&2
IMGFS_ROOT=$W/seed "$IMGFS" import -q -t go:1 "$TARBALL" >/dev/null
IMGFS_ROOT=$W/seed "$IMGFS" push -q go:1 "$REG/go:1" >/dev/null
BLOBS=$(curl -fsS -H 'Accept: application/vnd.oci.image.manifest.v1+json' "http://$REG/v2/go/manifests/1" | jq '[.layers[].size] | add')

mkdir -p "$W/ctx-version" "$W/ctx-build"
printf 'FROM %s/go:1\nRUN go version >/v\n' "$REG" >"$W/ctx-version/Dockerfile"
printf 'package main\n\nimport "fmt"\n\nfunc main() { fmt.Println("hello") }\n' >"$W/ctx-build/main.go"
printf 'FROM %s/go:1\nCOPY main.go /src/main.go\nRUN cd /src && go build -o /hello main.go\n' "$REG" >"$W/ctx-build/Dockerfile"

fetched() { tail -n +$(($1 + 1)) "$W/reg/log" | awk '/GET \/v2\/.*\/blobs\// && ($9 == 200 || $9 == 206) {s += $10} END {print s + 0}'; }
declare -A TIMES BYTES
LOADS=()
one() { # METHOD WORKLOAD ROUND
    local how=$1 what=$2 root=$W/store-$1-$2-$3 m t0 t1
    sync
    echo 3 >/proc/sys/vm/drop_caches
    LOADS+=("$(cut -d' ' -f1 /proc/loadavg)")
    m=$(wc -l <"$W/reg/log")
    t0=$(now)
    if [[ $how == whole ]]; then IMGFS_ROOT=$root "$IMGFS" pull -q "$REG/go:1" >/dev/null; fi
    IMGFS_ROOT=$root IMGFS_RUN_DIR=$W/run "$IMGFS" build --progress plain -t out "$W/ctx-$what" \
        >"$W/build.log" 2>&1 || { tail -5 "$W/build.log" >&2; echo "bench/build_from.sh: $how $what failed" >&2; exit 1; }
    t1=$(now)
    TIMES[$how-$what]+="$(((t1 - t0) / 1000000)) "
    BYTES[$how-$what]=$(fetched "$m")
    echo "  round $3 $how $what: $(((t1 - t0) / 1000000)) ms, $(fetched "$m") bytes" >&2
    rm -rf "$root"
}
median() { tr ' ' '\n' | grep . | sort -n | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }
for ((r = 1; r <= ROUNDS; r++)); do
    for what in version build; do
        for how in lazy whole; do one "$how" "$what" "$r"; done
    done
done
echo
echo "imgfs build FROM $REG/go:1 (layer blobs $BLOBS bytes), cold store, median of $ROUNDS;" \
    "load average at the builds $(printf '%s\n' "${LOADS[@]}" | sort -n | head -1)-$(printf '%s\n' "${LOADS[@]}" | sort -n | tail -1)"
echo "| Dockerfile | lazy ms | lazy bytes fetched | whole (pull + build) ms | whole bytes | lazy / whole |"
echo "|---|---|---|---|---|---|"
for what in version build; do
    l=$(echo "${TIMES[lazy-$what]}" | median)
    w=$(echo "${TIMES[whole-$what]}" | median)
    echo "| $what | $l | ${BYTES[lazy-$what]} ($(awk -v a="${BYTES[lazy-$what]}" -v b="$BLOBS" 'BEGIN {printf "%.1f%%", 100 * a / b}')) | $w | ${BYTES[whole-$what]} | $(awk -v a="$l" -v b="$w" 'BEGIN {printf "%.2f", a / b}') |"
done
