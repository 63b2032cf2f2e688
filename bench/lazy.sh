#!/bin/bash
# bench/lazy.sh [--shaped RATE] [TARBALL] — time to the first output of `go version`, and of a
# `go build` of a hello program, in the Debian+golang image (tests/fixtures/make.sh --go), pulled
# from a registry on 127.0.0.1 into a cold store with the page cache dropped, by:
#   imgfs-lazy    imgfs run REGISTRY/IMAGE (not in the store: pulled lazily, then run)
#   imgfs-traced  the same, of the image pushed with that command's recorded start-up
#                 (imgfs optimize: its files first, before the prefetch landmark)
#   imgfs-full    imgfs pull REGISTRY/IMAGE, then imgfs run
#   docker        docker pull + docker run (a private dockerd started here: --bridge=none
#                 --iptables=false, own data root; containers --network none)
#   skopeo-crun   skopeo copy docker://... oci:..., umoci unpack, crun run
# and the bytes each fetched from the registry (its access log). Prints ratios to docker's time.
# The time is taken when the command's first line of output arrives (not when it ends).
# --shaped RATE (e.g. 100mbit): everything (registry, dockerd, the clients) runs in a private
# network namespace (unshare -n) whose own loopback is shaped with tc tbf to RATE; the machine's
# loopback is never touched. BENCH_LAZY_METHODS="lazy traced full docker crun" (the default)
# picks the methods. A method whose command fails is reported and the others go on.
# Goals (issue 6): imgfs-lazy <= 0.05 x docker's time to first output; <= 1% of the image's bytes
# for go version, <= 15% for go build. Results go to docs/benchmarks.md by hand.
set -euo pipefail
TOP=$(cd "$(dirname "$0")/.." && pwd)
IMGFS=${IMGFS:-$TOP/imgfs}
SHAPED=
if [[ ${1:-} == --shaped ]]; then
    SHAPED=$2
    shift 2
    if [[ -z ${BENCH_LAZY_IN_NETNS:-} ]]; then
        # again, inside a network namespace of our own: its loopback is the one shaped
        exec unshare -n env BENCH_LAZY_IN_NETNS=1 "$0" --shaped "$SHAPED" "$@"
    fi
    ip link set lo up
    tc qdisc add dev lo root tbf rate "$SHAPED" burst 256kb latency 50ms
    echo "loopback of a private network namespace shaped: $(tc qdisc show dev lo)" >&2
fi
TARBALL=${1:-${IMGFS_FIXTURES:-/work/fixtures}/debian-go.tar.gz}
[[ -s $TARBALL ]] || { echo "bench/lazy.sh: no $TARBALL (tests/fixtures/make.sh --go)" >&2; exit 2; }
for t in docker-registry skopeo umoci crun jq curl; do
    command -v "$t" >/dev/null || { echo "bench/lazy.sh: $t is not installed (make deps)" >&2; exit 2; }
done
W=$(mktemp -d /var/tmp/imgfs-bench-lazy.XXXXXX)
pids=()
cleanup() {
    for m in $(grep -F " $W/" /proc/mounts | awk '{print $2}' | sort -r); do umount -l "$m" 2>/dev/null || true; done
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
    rm -rf "$W"
}
trap cleanup EXIT
port() { local p; while :; do p=$((20000 + RANDOM % 40000)); ss -Hltn "sport = :$p" | grep -q . || { echo $p; return; }; done; }
wait_for() { local i; for ((i = 0; i < 600; i++)); do "$@" 2>/dev/null && return 0; sleep 0.05; done; return 1; }
now() { date +%s%N; }
ms() { echo $((($2 - $1) / 1000000)); }
drop_caches() { sync; echo 3 >/proc/sys/vm/drop_caches; }

# ---- the registry, and the image in it (pushed by imgfs: eStargz, a plain gzip for the others)
REG_PORT=$(port)
REG=127.0.0.1:$REG_PORT
mkdir -p "$W/reg"
printf 'version: 0.1\nlog: {level: error, accesslog: {disabled: false}}\nstorage: {filesystem: {rootdirectory: %s}}\nhttp: {addr: %s}\n' \
    "$W/reg/storage" "$REG" >"$W/reg/config.yml"
docker-registry serve "$W/reg/config.yml" >"$W/reg/log" 2>&1 &
pids+=($!)
wait_for ss -Hltn "sport = :$REG_PORT" | grep -q . || true
wait_for curl -fsS "http://$REG/v2/" >/dev/null
echo "registry on $REG; importing and pushing $(basename "$TARBALL")..." >&2
IMGFS_ROOT=$W/seed "$IMGFS" import -q -t go:1 "$TARBALL" >/dev/null
IMGFS_ROOT=$W/seed "$IMGFS" push -q go:1 "$REG/go:1" >/dev/null
LOGICAL=$(IMGFS_ROOT=$W/seed "$IMGFS" du --json | jq '.Images[0].Logical')
BLOBS=$(curl -fsS -H 'Accept: application/vnd.oci.image.manifest.v1+json' "http://$REG/v2/go/manifests/1" | jq '[.layers[].size] | add')
IMG=$REG/go:1

want() { [[ " ${BENCH_LAZY_METHODS:-lazy traced full docker crun} " == *" $1 "* ]]; }
GOVERSION=(go version)
GOBUILD=(sh -c 'cd /tmp && printf "package main\nimport \"fmt\"\nfunc main() { fmt.Println(\"hello\") }\n" >main.go && go build -o hello main.go && ./hello')
# the traced images: each command's start-up recorded in the seed store, pushed under its own tag
# (a trace belongs to the image; the second recording replaces the first before its push)
if want traced; then
    echo "recording the start-ups and pushing the traced images..." >&2
    IMGFS_ROOT=$W/seed IMGFS_RUN_DIR=$W/run-seed "$IMGFS" optimize go:1 -- "${GOVERSION[@]}" >/dev/null 2>&1
    IMGFS_ROOT=$W/seed "$IMGFS" push -q go:1 "$REG/go:traced-v" >/dev/null
    IMGFS_ROOT=$W/seed IMGFS_RUN_DIR=$W/run-seed "$IMGFS" optimize go:1 -- "${GOBUILD[@]}" >/dev/null 2>&1
    IMGFS_ROOT=$W/seed "$IMGFS" push -q go:1 "$REG/go:traced-b" >/dev/null
fi

mark() { wc -l <"$W/reg/log"; }
fetched() { tail -n +$(($1 + 1)) "$W/reg/log" | awk '/GET \/v2\/.*\/blobs\// && ($9 == 200 || $9 == 206) {s += $10} END {print s + 0}'; }

declare -A T B
record() { T[$1]=$2; B[$1]=$3; echo "  $1: $2 ms, $3 bytes fetched, printed: $(head -c 60 "$W/$1.out" 2>/dev/null)" >&2; }

# the time of the first line on stdin, into $W/$1.t1; the line into $W/$1.out; the rest drained
first_line() {
    local line=
    IFS= read -r line || true
    now >"$W/$1.t1"
    printf '%s\n' "$line" >"$W/$1.out"
    cat >/dev/null
}

# Where a lazy run's time to first output went, from the daemon's trace (IMGFS_LAZY_TRACE,
# docs/lazy.md): up to the daemon's start (the lazy pull: manifest, config, TOCs, their parse and
# commit; then the mount), from there to its first fetch (the container's start), the fetches
# (their Range requests and the decompress + verify + store of what came), the time between
# them (the program running), and from the last fetch to the first line of output.
breakdown() { # NAME T0_NS
    [[ -s $W/$1.trace ]] || return 0
    awk -v t0="$2" -v t1="$(cat "$W/$1.t1")" '
        /^A/ { split($2, a, "."); attach = (a[1] * 1000 + a[2]) - t0 / 1000000 }
        /^H/ { if ($2 + attach > first_out) next; if (!first) first = $2; last = $3; h += $3 - $2; n++ }
        /^R/ { if ($2 + attach > first_out) next; req += $3 - $2; st += $4 - $3; r++ }
        BEGIN { first_out = (t1 - t0) / 1000000 }
        END { printf "    breakdown: pull+mount %d ms, container start %d ms, %d fetches %d ms (%d requests: %d ms waiting for the registry, %d ms storing), between them %d ms, last fetch to output %d ms\n",
                  attach, first, n, h, r, req, st, last - first - h, first_out - attach - last }' "$W/$1.trace" >&2
}

run_imgfs() { # NAME lazy|full|traced WORKLOAD...
    local name=$1 how=$2 root=$W/imgfs-$1 m t0 img=$IMG
    shift 2
    [[ $how == traced ]] && img=$REG/go:traced-${name##*-}
    drop_caches
    m=$(mark)
    t0=$(now)
    if [[ $how == full ]]; then IMGFS_ROOT=$root "$IMGFS" pull -q "$img" >/dev/null; fi
    IMGFS_LAZY_TRACE=$W/$name.trace IMGFS_ROOT=$root IMGFS_RUN_DIR=$W/run-$name "$IMGFS" run --rm --network none "$img" "$@" 2>"$W/$name.err" | first_line "$name" ||
        echo "bench/lazy.sh: $name failed: $(tail -3 "$W/$name.err")" >&2
    record "$name" "$(ms "$t0" "$(cat "$W/$name.t1")")" "$(fetched "$m")"
    [[ $how == full ]] || breakdown "$name" "$t0"
    grep -q . "$W/$name.out" || echo "bench/lazy.sh: $name printed nothing" >&2
    for d in $(grep -F " $W/run-$name" /proc/mounts | awk '{print $2}' | sort -r); do umount -l "$d" 2>/dev/null || true; done
}

# ---- docker
if want docker; then
    DOCK=$W/docker
    mkdir -p "$DOCK"
    /usr/sbin/dockerd --bridge=none --iptables=false --ip6tables=false --data-root "$DOCK/data" \
        --exec-root "$DOCK/exec" --pidfile "$DOCK/pid" -H "unix://$DOCK/sock" >"$DOCK/log" 2>&1 &
    pids+=($!)
    D() { DOCKER_BUILDKIT=1 /usr/bin/docker -H "unix://$DOCK/sock" "$@"; }
    wait_for D version >/dev/null
fi
run_docker() { # NAME WORKLOAD...
    local name=$1 m t0 t1
    shift
    D rmi -f "$IMG" >/dev/null 2>&1 || true
    D image prune -af >/dev/null 2>&1 || true
    drop_caches
    m=$(mark)
    t0=$(now)
    D pull -q "$IMG" >/dev/null || echo "bench/lazy.sh: $name: docker pull failed" >&2
    D run --rm --network none "$IMG" "$@" 2>"$W/$name.err" | first_line "$name" ||
        echo "bench/lazy.sh: $name failed: $(tail -3 "$W/$name.err")" >&2
    record "$name" "$(ms "$t0" "$(cat "$W/$name.t1")")" "$(fetched "$m")"
}

run_crun() { # NAME WORKLOAD...
    local name=$1 m t0 t1 b=$W/bundle-$1
    shift
    drop_caches
    m=$(mark)
    t0=$(now)
    skopeo --insecure-policy copy -q --src-tls-verify=false "docker://$IMG" "oci:$W/oci-$name:1"
    umoci unpack --image "$W/oci-$name:1" "$b" >/dev/null
    jq --argjson a "$(printf '%s\n' "$@" | jq -R . | jq -s .)" '.process.args = $a | .process.terminal = false' \
        "$b/config.json" >"$b/config.json.new" && mv "$b/config.json.new" "$b/config.json"
    # crun refuses this host's hybrid cgroups: a private mount namespace with a cgroup2 mount
    # (as bench/run.sh does)
    unshare -m sh -c "mount --make-rprivate / && mount -t cgroup2 none /sys/fs/cgroup && \
        crun --root '$W/crun' --cgroup-manager=disabled run -b '$b' 'bench-$name'" 2>"$W/$name.err" |
        first_line "$name" || echo "bench/lazy.sh: $name failed: $(tail -3 "$W/$name.err")" >&2
    record "$name" "$(ms "$t0" "$(cat "$W/$name.t1")")" "$(fetched "$m")"
    rm -rf "$b" "$W/oci-$name"
}

echo "go version:" >&2
want lazy && run_imgfs lazy-v lazy "${GOVERSION[@]}"
want traced && run_imgfs traced-v traced "${GOVERSION[@]}"
want full && run_imgfs full-v full "${GOVERSION[@]}"
want docker && run_docker docker-v "${GOVERSION[@]}"
want crun && run_crun crun-v "${GOVERSION[@]}"
echo "go build of hello:" >&2
want lazy && run_imgfs lazy-b lazy "${GOBUILD[@]}"
want traced && run_imgfs traced-b traced "${GOBUILD[@]}"
want full && run_imgfs full-b full "${GOBUILD[@]}"
want docker && run_docker docker-b "${GOBUILD[@]}"
want crun && run_crun crun-b "${GOBUILD[@]}"

pct() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f%%", 100 * a / b}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (a == "" || b == "" || b == 0) print "-"; else printf "%.3f", a / b}'; }
for k in lazy traced full docker crun; do
    for w in v b; do T[$k-$w]=${T[$k-$w]:-}; B[$k-$w]=${B[$k-$w]:-}; done
done
echo
echo "image: $LOGICAL bytes uncompressed, $BLOBS bytes of layer blobs; link: ${SHAPED:-loopback, unshaped}; load: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-12s %12s %14s %10s | %12s %14s %10s\n' method "go version" fetched "x docker" "go build" fetched "x docker"
for m in lazy traced full docker crun; do
    printf '%-12s %9s ms %14s %10s | %9s ms %14s %10s\n' "$m" "${T[$m-v]}" "${B[$m-v]}" \
        "$(ratio "${T[$m-v]}" "${T[docker-v]}")" "${T[$m-b]}" "${B[$m-b]}" "$(ratio "${T[$m-b]}" "${T[docker-b]}")"
done
echo "imgfs lazy fetched $(pct "${B[lazy-v]}" "$LOGICAL") of the image's bytes for go version (goal <= 1%)," \
    "$(pct "${B[lazy-b]}" "$LOGICAL") for go build (goal <= 15%);" \
    "time to first output $(ratio "${T[lazy-v]}" "${T[docker-v]}") x docker's (goal <= 0.05);" \
    "traced: $(ratio "${T[traced-v]}" "${T[lazy-v]}") x the untraced lazy start for go version," \
    "$(ratio "${T[traced-b]}" "${T[lazy-b]}") for go build (goal <= 0.5)"
