#!/bin/bash
# Docker as a peer of imgfs through a registry (Debian's docker.io, a private dockerd started
# here; 127.0.0.1 is an insecure registry for docker by default): docker pulls and runs what imgfs
# pushed (eStargz layers are plain tar+gzip to it), and imgfs pulls and runs what docker pushed,
# with docker's digest.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
source "$TOP/tests/lib_registry.sh"
t_begin registry_docker
t_need_fixture busybox.tar
quiet() { "$@" >/dev/null 2>&1; }

reg_start
t_check "a private dockerd" t_dockerd
want=$(tar -xOf "$FIXTURES/busybox.tar" ./bin/busybox | sha256sum | cut -d' ' -f1)

# imgfs -> docker
"$IMGFS" import -q -t bb:1 -c 'CMD ["/bin/busybox", "echo", "hello from imgfs"]' "$FIXTURES/busybox.tar"
digest=$(push_digest bb:1 "$REG/from-imgfs/bb:1")
t_check "docker pull of what imgfs pushed" quiet D pull "$REG/from-imgfs/bb:1"
t_eq "docker sees imgfs's digest" "$REG/from-imgfs/bb@$digest" \
    "$(D inspect --format '{{index .RepoDigests 0}}' "$REG/from-imgfs/bb:1")"
t_eq "docker run: the image's CMD" "hello from imgfs" \
    "$(D run --rm --network none "$REG/from-imgfs/bb:1")"
t_eq "docker run: the content is the image's" "$want" \
    "$(D run --rm --network none "$REG/from-imgfs/bb:1" /bin/busybox sha256sum /bin/busybox | cut -d' ' -f1)"

# docker -> imgfs
D import -c 'CMD ["/bin/busybox", "echo", "hello from docker"]' "$FIXTURES/busybox.tar" dk:1 >/dev/null
D tag dk:1 "$REG/from-docker/bb:1"
t_check "docker push" quiet D push "$REG/from-docker/bb:1"
# push -q: Docker's one line, the reference pushed to (":latest" added; the repository for -a)
D tag dk:1 "$REG/quiet/dk"
t_eq "docker push -q prints the reference" "$REG/quiet/dk:latest" "$(D push -q "$REG/quiet/dk")"
t_eq "imgfs push -q too" "$REG/quiet/ib:latest" "$("$IMGFS" push -q bb:1 "$REG/quiet/ib")"
t_eq "docker push -a -q: the repository" "$REG/quiet/dk" "$(D push -a -q "$REG/quiet/dk")"
t_eq "imgfs push -a -q too" "$REG/quiet/all" "$("$IMGFS" push -a -q bb "$REG/quiet/all")"
export IMGFS_ROOT=$T/pulled
t_check "imgfs pull of what docker pushed" quiet "$IMGFS" pull "$REG/from-docker/bb:1"
t_eq "imgfs shows docker's digest" \
    "$(D inspect --format '{{index .RepoDigests 0}}' "$REG/from-docker/bb:1" | cut -d@ -f2)" \
    "$("$IMGFS" inspect -f Digest "$REG/from-docker/bb:1")"
t_eq "imgfs run: docker's CMD" "hello from docker" \
    "$("$IMGFS" run --rm --network none "$REG/from-docker/bb:1")"
t_eq "imgfs run: the content" "$want" \
    "$("$IMGFS" run --rm --network none "$REG/from-docker/bb:1" /bin/busybox sha256sum /bin/busybox | cut -d' ' -f1)"

# a docker image of three layers (on imgfs's eStargz one), pulled three at a time
D run --network none --name c1 "$REG/from-imgfs/bb:1" /bin/busybox sh -c 'echo one > /one && rm /bin/arch'
t_cleanup "D rm -f c1 c2"
D commit c1 dk:2 >/dev/null
D run --network none --name c2 dk:2 /bin/busybox sh -c 'echo two > /two && mkdir -p /d/e'
D commit c2 "$REG/from-docker/bb:3" >/dev/null
t_check "docker push of three layers" quiet D push "$REG/from-docker/bb:3"
t_check "imgfs pull -j 3" quiet "$IMGFS" pull -j 3 "$REG/from-docker/bb:3"
t_eq "  three layers" 3 "$(t_diff_ids "$REG/from-docker/bb:3" | wc -l)"
# docker re-pushes imgfs's layer without its eStargz annotations: a plain layer, whose TOC file
# both show (as every runtime that is not eStargz-aware does)
t_eq "  docker and imgfs agree on the TOC file" \
    "$(D run --rm --network none "$REG/from-docker/bb:3" /bin/busybox ls /stargz.index.json)" \
    "$("$IMGFS" run --rm --network none "$REG/from-docker/bb:3" /bin/busybox ls /stargz.index.json)"
t_eq "  the merged tree has each layer's changes" "one two gone dir" \
    "$("$IMGFS" run --rm --network none "$REG/from-docker/bb:3" /bin/busybox sh -c \
        'echo $(cat /one /two) $(test -e /bin/arch && echo there || echo gone) $(test -d /d/e && echo dir)')"
t_end
