#!/bin/bash
# bench/build.sh [--rounds N] [--imgfs BIN] [--no-multistage] [--tools LIST] — `imgfs build` against
# `docker build` with BuildKit and with the legacy builder (the host's docker, its version in the
# report; a private dockerd) and `buildah bud --layers` (overlay, a private storage; runc: crun
# refuses this host's hybrid cgroups), on the seed Dockerfile
# (examples/go-service/Dockerfile: FROM golang:1.19, COPY, RUN go build) and the multi-stage one
# (golang -> static, a cache mount for the Go build cache; the legacy builder has no RUN --mount
# and is left out there):
#
#   cold      the build cache empty, the base images present
#   cached    the same build again, nothing changed
#   one-line  a one-line change in main.go (COPY and RUN run again)
#   growth    store growth over 10 successive one-line builds: `imgfs du` stored bytes and the
#             LMDB file vs the growth of docker's data root and buildah's storage (du -sb); a
#             build that fails is tried again (twice), a timed one that fails is left out of
#             the median and counted
#
# The same base images in every tool: made once by tools/mkbase.sh (from $IMGFS_FIXTURES when
# set), exported with `imgfs export -f docker`, loaded by docker and buildah. Each figure is the
# median of --rounds rounds (default 3), interleaved: every round builds both Dockerfiles with
# every tool in turn, so a shared machine's load hits all alike; the load average is sampled at
# every build and printed with the figures. The multi-stage cold build compiles Go's standard
# library for CGO_ENABLED=0 (a minute) in every tool, its cache mount emptied. --tools picks a
# subset (comma-separated: imgfs,buildkit,legacy,buildah; imgfs and buildkit are always in).
# Prints ratios imgfs/BuildKit (goal <= 0.5) and writes bench/out/build.md. `imgfs build --go` vs
# the Dockerfile path: bench/gofast.sh. Needs root.
set -euo pipefail

TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ROUNDS=3
IMGFS=$TOP/imgfs
MULTI=1
TOOLS=imgfs,buildkit,legacy,buildah
while (($#)); do
    case $1 in
    --rounds) ROUNDS=$2; shift 2 ;;
    --imgfs) IMGFS=$2; shift 2 ;;
    --no-multistage) MULTI=0; shift ;;
    --tools) TOOLS=$2; shift 2 ;;
    -h | --help) sed -n '2,26p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "build.sh: unknown option $1" >&2; exit 2 ;;
    esac
done
[[ $(id -u) == 0 ]] || { echo "build.sh: run as root" >&2; exit 1; }
for t in /usr/sbin/dockerd /usr/bin/docker buildah jq; do
    command -v "$t" >/dev/null || { echo "build.sh: needs $t (make deps)" >&2; exit 1; }
done

W=$(mktemp -d /var/tmp/imgfs-bench-build.XXXXXX)
dpid=""
cleanup() {
    [[ -n $dpid ]] && kill "$dpid" 2>/dev/null && wait "$dpid" 2>/dev/null
    { grep -F " $W/" /proc/mounts || true; } | awk '{print $2}' | sort -r | while read -r m; do
        umount -l "$m" 2>/dev/null || true
    done
    rm -rf "$W"
}
trap cleanup EXIT
export IMGFS_ROOT=$W/store IMGFS_RUN_DIR=$W/run IMGFS_BASE_CACHE=${IMGFS_BASE_CACHE:-$W/basecache}

echo "== bases" >&2
"$TOP/tools/mkbase.sh" --imgfs "$IMGFS" golang:1.19 static:latest >&2
sock=$W/d/docker.sock
mkdir -p "$W/d"
/usr/sbin/dockerd --bridge=none --iptables=false --ip6tables=false --data-root "$W/d/data" \
    --exec-root "$W/d/exec" --pidfile "$W/d/docker.pid" -H "unix://$sock" >"$W/d/dockerd.log" 2>&1 &
dpid=$!
D() { /usr/bin/docker -H "unix://$sock" "$@"; }
for _ in $(seq 600); do D version >/dev/null 2>&1 && break; sleep 0.1; done
# buildah keeps RUN --mount=type=cache directories under $TMPDIR (buildah-cache-UID): a private
# one, emptied for a cold build
mkdir -p "$W/buildah/tmp"
B() { TMPDIR=$W/buildah/tmp buildah --root "$W/buildah/root" --runroot "$W/buildah/run" --storage-driver overlay "$@"; }
for img in golang:1.19 static:latest; do
    f=$W/${img%%:*}.tar # no ':' in the path: buildah reads docker-archive:PATH[:REF]
    "$IMGFS" export -f docker -o "$f" "$img"
    D load -i "$f" >/dev/null
    B pull -q "docker-archive:$f" >/dev/null
done
B images >&2

C=$W/ctx
cp -r "$TOP/examples/go-service" "$C"
n_edit=0
edit() { n_edit=$((n_edit + 1)); sed -i "s/hello from [^%]*%s/hello from $n_edit %s/" "$C/main.go"; }
grep -q 'hello from %s' "$C/main.go" || { echo "build.sh: main.go changed shape" >&2; exit 1; }

now() { date +%s.%N; }
timed() { # timed CMD...: seconds, the command's output to the log; "fail" when it fails
    local t0 t1
    t0=$(now)
    if ! "$@" >>"$W/log" 2>&1; then
        echo "build.sh: failed: $*" >&2
        tail -n 5 "$W/log" >&2
        echo fail
        return 0
    fi
    t1=$(now)
    echo "$t1 - $t0" | bc -l
}
build_with() { # TOOL DOCKERFILE
    case $1 in
    imgfs) "$IMGFS" build -q -f "$C/$2" -t bench "$C" ;;
    buildkit) DOCKER_BUILDKIT=1 D build -q --network host -f "$C/$2" -t bench "$C" ;;
    legacy) DOCKER_BUILDKIT=0 D build -q --network host -f "$C/$2" -t bench "$C" ;;
    buildah) B bud -q --layers --runtime runc --network host -f "$C/$2" -t bench "$C" ;;
    esac
}
clear_cache() { # TOOL: an empty build cache, the bases kept
    case $1 in
    imgfs) "$IMGFS" rmi bench >/dev/null 2>&1 || true
        "$IMGFS" gc --build-cache >/dev/null
        rm -rf "$IMGFS_ROOT/build-cache-mounts" ;;
    buildkit | legacy) D rmi -f bench >/dev/null 2>&1 || true
        D builder prune -af >/dev/null
        D image prune -f >/dev/null ;;
    buildah) B rmi -f bench >/dev/null 2>&1 || true
        B rmi --prune >/dev/null 2>&1 || true
        rm -rf "$W/buildah/tmp" && mkdir -p "$W/buildah/tmp" ;;
    esac
}
median() { sort -n | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
store_bytes() { # TOOL: bytes its storage holds
    case $1 in
    imgfs) "$IMGFS" du --json | jq -r '.Stored' ;;
    imgfs-file) stat -c %s "$IMGFS_ROOT/data.mdb" ;;
    buildkit | legacy) { du -sb "$W/d/data" 2>/dev/null || true; } | cut -f1 ;;
    buildah) { du -sb "$W/buildah/root" 2>/dev/null || true; } | cut -f1 ;;
    esac
}

mkdir -p "$TOP/bench/out"
declare -A R
LOADS=""
load1() { cut -d' ' -f1 /proc/loadavg; }
tools_for() { # DOCKERFILE: the tools that build it (the legacy builder has no RUN --mount)
    local t out=""
    for t in imgfs buildkit legacy buildah; do
        [[ $t == imgfs || $t == buildkit || ",$TOOLS," == *",$t,"* ]] || continue
        [[ $1 == Dockerfile.multistage && $t == legacy ]] && continue
        out+="$t "
    done
    echo "$out"
}
DFS="Dockerfile"
((MULTI)) && DFS+=" Dockerfile.multistage"
one_round() { # ROUND: cold, cached and one-line of every Dockerfile with every tool, in turn
    local r=$1 df tool t1 t2 t3 l
    for df in $DFS; do
        for tool in $(tools_for "$df"); do
            echo "== round $r $df: $tool (load $(load1))" >&2
            clear_cache "$tool"
            l=$(load1)
            t1=$(timed build_with "$tool" "$df")
            t2=$(timed build_with "$tool" "$df")
            edit
            t3=$(timed build_with "$tool" "$df")
            LOADS+="$l $(load1) "
            R[$df,$tool,cold]+="$t1 " R[$df,$tool,cached]+="$t2 " R[$df,$tool,oneline]+="$t3 "
            echo "   $tool $df: cold $t1 cached $t2 one-line $t3" >&2
        done
    done
}
growth() { # DOCKERFILE TOOL: store growth over 10 successive one-line builds
    local df=$1 tool=$2 before after fb ok=1
    before=$(store_bytes "$tool")
    [[ $tool == imgfs ]] && fb=$(store_bytes imgfs-file)
    for _ in $(seq 10); do
        edit
        # docker's overlay2 fails now and then under load (as in 86_build_docker): three tries
        for try in 1 2 3; do
            build_with "$tool" "$df" >>"$W/log" 2>&1 && break
            ((try < 3)) || ok=0
        done
    done
    after=$(store_bytes "$tool")
    LOADS+="$(load1) "
    R[$df,$tool,growth]=$((${after:-0} - ${before:-0}))
    ((ok)) && [[ -n $before && -n $after ]] || R[$df,$tool,growth]=fail
    [[ $tool == imgfs ]] && R[$df,imgfs-file,growth]=$(($(store_bytes imgfs-file) - fb))
    echo "   $tool $df: growth ${R[$df,$tool,growth]} bytes over 10 builds" >&2
}

for ((r = 1; r <= ROUNDS; r++)); do one_round "$r"; done
for df in $DFS; do
    for tool in $(tools_for "$df"); do growth "$df" "$tool"; done
done

fmt() { # the median of the figures that did not fail (how many failed, if any); "-" for none
    local v nf
    v=$(tr ' ' '\n' <<<"${R[$1]:-}" | grep -x '[0-9.]*' | grep . || true)
    nf=$(tr ' ' '\n' <<<"${R[$1]:-}" | grep -c fail || true)
    if [[ -z $v ]]; then
        ((nf)) && echo fail || echo -
        return
    fi
    printf '%.2f' "$(median <<<"$v")"
    ((nf == 0)) || printf ' (%s failed)' "$nf"
}
mb() { if [[ ${R[$1]:-} == fail ]]; then echo fail; else echo "scale=1; ${R[$1]:-0} / 1000000" | bc -l; fi; }
# a ratio only of two numbers, the divisor positive (a growth can be 0 or negative: docker's
# data root shrinks when it prunes its own build cache); never a failing printf under set -e
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a !~ /^-?[0-9.]+$/ || b !~ /^[0-9.]+$/ || b + 0 <= 0) print "-"; else printf "%.2f", a / b }'; }
{
    for df in $DFS; do
        tools=$(tools_for "$df")
        echo "### $df (median seconds of $ROUNDS interleaved rounds; growth: MB over 10 one-line builds)"
        echo
        echo "| | $(sed 's/ *$//; s/ / | /g' <<<"$tools") | imgfs / BuildKit |"
        echo "|---|$(for _ in $tools; do printf -- '---|'; done)---|"
        for m in cold cached oneline; do
            row="| $m |"
            for t in $tools; do row+=" $(fmt "$df,$t,$m") |"; done
            echo "$row $(ratio "$(fmt "$df,imgfs,$m" | cut -d' ' -f1)" \
                "$(fmt "$df,buildkit,$m" | cut -d' ' -f1)") |"
        done
        row="| growth |"
        for t in $tools; do row+=" $(mb "$df,$t,growth") |"; done
        echo "$row $(ratio "${R[$df,imgfs,growth]}" "${R[$df,buildkit,growth]}") |"
        echo
        echo "imgfs's LMDB file grew $(mb "$df,imgfs-file,growth") MB over the same 10 builds" \
            "(stored chunk bytes: $(mb "$df,imgfs,growth") MB; no gc in between)."
        echo
        echo "All rounds (seconds, in order):"
        echo
        for t in $tools; do
            echo "- $t: cold ${R[$df,$t,cold]}/ cached ${R[$df,$t,cached]}/ one-line ${R[$df,$t,oneline]}"
        done
        echo
    done
    echo "load average (1 min) sampled at every build: $(tr ' ' '\n' <<<"$LOADS" | grep . | sort -n |
        awk '{a[NR] = $1} END {printf "min %s, median %s, max %s", a[1], a[int((NR + 1) / 2)], a[NR]}');" \
        "at the end: $(cut -d' ' -f1-3 /proc/loadavg); $(nproc) cores; $(/usr/bin/docker --version)," \
        "$(buildah --version | cut -d' ' -f1-3)"
} | tee "$TOP/bench/out/build.md.tmp"
mv "$TOP/bench/out/build.md.tmp" "$TOP/bench/out/build.md"
