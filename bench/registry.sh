#!/bin/bash
# bench/registry.sh [--rounds N] [--image TARBALL] [--imgfs BIN] — full (non-lazy) pull and push
# through a loopback registry (Debian's docker-registry on 127.0.0.1, plain HTTP), imgfs against
# its peers, in one run:
#
#   pull: `imgfs pull` into an empty store   vs  `skopeo copy docker:// oci:` (download + verify,
#         no unpacking)  vs  `docker pull` (a private dockerd; download + unpack into overlay2)
#   push: `imgfs push` of the image (eStargz layers made on the way)  vs  `skopeo copy
#         oci-archive: docker://` of the same image (its layers already compressed; skopeo
#         recompresses nothing)
#
# The image is TARBALL (default the debian fixture) imported once; skopeo pushes it gzip'd (what a
# registry usually holds) for the pull rounds. Each round uses a fresh registry storage and fresh
# client state; the commands take turns (round-robin) so the machine's load hits all alike. Prints
# medians in seconds and the ratios imgfs/peer, with the load average. Needs root.
set -euo pipefail

TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ROUNDS=3
IMAGE=${IMGFS_FIXTURES:-$TOP/tests/out/fixtures}/debian.tar.gz
IMGFS=$TOP/imgfs
while (($#)); do
    case $1 in
    --rounds) ROUNDS=$2; shift 2 ;;
    --image) IMAGE=$2; shift 2 ;;
    --imgfs) IMGFS=$2; shift 2 ;;
    *) echo "usage: $0 [--rounds N] [--image TARBALL] [--imgfs BIN]" >&2; exit 2 ;;
    esac
done
[[ -s $IMAGE ]] || { echo "no image $IMAGE (tests/fixtures/make.sh)" >&2; exit 1; }
W=$(mktemp -d /var/tmp/imgfs-bench-registry.XXXXXX)
PIDS=()
cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
    rm -rf "$W"
}
trap cleanup EXIT

free_port() {
    local p
    while :; do
        p=$((20000 + RANDOM % 40000))
        ss -Hltn "sport = :$p" | grep -q . || { echo "$p"; return; }
    done
}
wait_port() { local i; for ((i = 0; i < 600; i++)); do ss -Hltn "sport = :$1" | grep -q . && return 0; sleep 0.05; done; return 1; }

REG_PID=""
registry() { # a fresh registry (new storage) on a new port: sets REG
    [[ -n $REG_PID ]] && { kill "$REG_PID"; wait "$REG_PID" 2>/dev/null || true; }
    local port d
    port=$(free_port)
    d=$(mktemp -d "$W/reg.XXXXXX")
    printf 'version: 0.1\nlog: {level: error}\nstorage: {filesystem: {rootdirectory: %s}}\nhttp: {addr: 127.0.0.1:%s}\n' \
        "$d" "$port" >"$d.yml"
    docker-registry serve "$d.yml" >>"$W/registry.log" 2>&1 &
    REG_PID=$!
    PIDS+=("$REG_PID")
    wait_port "$port"
    REG=127.0.0.1:$port
}

# the source image, once
export IMGFS_ROOT=$W/src
"$IMGFS" import -q -t bench/image:1 "$IMAGE"
"$IMGFS" export -o "$W/image.tar" bench/image:1
bytes=$(stat -c %s "$IMAGE")

# a private dockerd
DSOCK=$W/d/docker.sock
mkdir -p "$W/d"
/usr/sbin/dockerd --bridge=none --iptables=false --ip6tables=false --data-root "$W/d/data" \
    --exec-root "$W/d/exec" --pidfile "$W/d/docker.pid" -H "unix://$DSOCK" >"$W/d/log" 2>&1 &
PIDS+=($!)
D() { /usr/bin/docker -H "unix://$DSOCK" "$@"; }
for ((i = 0; i < 600; i++)); do D version >/dev/null 2>&1 && break; sleep 0.1; done

t() { # time a command in seconds (wall)
    local s e
    s=$(date +%s.%N)
    "$@" >/dev/null 2>&1 || { echo "FAILED: $*" >&2; return 1; }
    e=$(date +%s.%N)
    echo "$e - $s" | bc
}
declare -A R
for ((r = 1; r <= ROUNDS; r++)); do
    registry
    skopeo --insecure-policy copy -q --dest-tls-verify=false --dest-compress \
        "oci-archive:$W/image.tar" "docker://$REG/bench/image:1"
    R[imgfs_pull]+="$(IMGFS_ROOT=$W/pull-$r t "$IMGFS" pull "$REG/bench/image:1") "
    R[skopeo_pull]+="$(t skopeo --insecure-policy copy -q --src-tls-verify=false \
        "docker://$REG/bench/image:1" "oci:$W/oci-$r:x") "
    R[docker_pull]+="$(t D pull "$REG/bench/image:1") "
    D rmi -f "$REG/bench/image:1" >/dev/null 2>&1 || true
    D image prune -f >/dev/null 2>&1 || true
    registry
    R[imgfs_push]+="$(IMGFS_ROOT=$W/src t "$IMGFS" push bench/image:1 "$REG/bench/pushed:1") "
    R[skopeo_push]+="$(t skopeo --insecure-policy copy -q --dest-tls-verify=false \
        "oci-archive:$W/image.tar" "docker://$REG/bench/pushed:1") "
    rm -rf "$W/pull-$r" "$W/oci-$r"
    rm -f "$W/src/pushed-blobs"
done
median() { tr ' ' '\n' | grep . | sort -g | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
declare -A M
for k in "${!R[@]}"; do M[$k]=$(median <<<"${R[$k]}"); done
ratio() { echo "scale=2; $1 / $2" | bc; }
echo "image: $(basename "$IMAGE") ($bytes bytes gzip), $ROUNDS rounds, load average: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-34s %8s\n' "command" "median s"
for k in imgfs_pull skopeo_pull docker_pull imgfs_push skopeo_push; do printf '%-34s %8s\n' "$k" "${M[$k]}"; done
echo "imgfs pull / skopeo copy:  $(ratio "${M[imgfs_pull]}" "${M[skopeo_pull]}")"
echo "imgfs pull / docker pull:  $(ratio "${M[imgfs_pull]}" "${M[docker_pull]}")"
echo "imgfs push / skopeo copy:  $(ratio "${M[imgfs_push]}" "${M[skopeo_push]}")"
