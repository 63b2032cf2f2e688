#!/bin/bash
# imgfs lazily mounts eStargz made by another tool: stargz-snapshotter's `ctr-remote image convert
# --estargz` (Debian's package, on a containerd this test starts with a private root, state and
# socket), with its own chunking (one chunk per file by default; fixed 100000-byte chunks too). The
# lazy mount shows the same tree as the source image, and reads fetch only on demand.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
source "$TOP/tests/lib_registry.sh"
t_begin lazy_ctr_remote
t_need_fixture busybox.tar
command -v containerd >/dev/null || t_skip "containerd not installed"
command -v ctr-remote >/dev/null || t_skip "ctr-remote (stargz-snapshotter) not installed"
reg_start

C=$T/containerd
mkdir -p "$C"
cat >"$C/config.toml" <<EOC
version = 2
root = "$C/root"
state = "$C/state"
[grpc]
  address = "$C/sock"
[plugins."io.containerd.grpc.v1.cri"]
  disable = true
EOC
containerd --config "$C/config.toml" >"$C/log" 2>&1 &
cpid=$!
t_cleanup "kill $cpid 2>/dev/null; wait $cpid 2>/dev/null"
t_wait_for 400 test -S "$C/sock" || { cat "$C/log"; t_fail "containerd did not start"; exit 1; }
ctr() { command ctr -a "$C/sock" -n imgfs "$@"; }

mkdir -p "$T/extra/opt"
head -c 700000 /dev/urandom >"$T/extra/opt/big.bin"
cp "$FIXTURES/busybox.tar" "$T/src.tar"
tar -rf "$T/src.tar" -C "$T/extra" opt/big.bin
t_check "import the source image" "$IMGFS" import -q -t src:1 "$T/src.tar"
t_check "export it for containerd" "$IMGFS" export --format docker -o "$T/src-docker.tar" src:1
t_check "ctr image import" ctr image import "$T/src-docker.tar" >/dev/null
mkdir "$T/ref" "$T/mnt"
t_check "mount the source" "$IMGFS" mount src:1 "$T/ref"
t_cleanup "'$IMGFS' umount '$T/ref'"

n=0
for chunking in "" "--estargz-chunk-size 100000"; do
    n=$((n + 1))
    t_check "ctr-remote convert --estargz --oci $chunking" \
        ctr-remote -a "$C/sock" -n imgfs image convert --estargz --oci $chunking docker.io/library/src:1 "$REG/esgz:$n"
    t_check "push it to the registry" ctr image push --plain-http "$REG/esgz:$n" >/dev/null
    manifest=$(curl -fsS -H 'Accept: application/vnd.oci.image.manifest.v1+json' "http://$REG/v2/esgz/manifests/$n")
    t_check "ctr-remote's layer carries a TOC digest" \
        jq -e '.layers[0].annotations["containerd.io/snapshot/stargz/toc.digest"]' <<<"$manifest" >/dev/null
    export IMGFS_ROOT=$T/lazy$n
    mark=$(wc -l <"$REG_DIR/log")
    t_check "pull --lazy" "$IMGFS" pull -q --lazy "$REG/esgz:$n"
    t_eq "nothing but metadata fetched" 0 "$("$IMGFS" du --json | jq .Chunks)"
    t_check "mount" "$IMGFS" mount "$REG/esgz:$n" "$T/mnt"
    t_check "read one file" cmp "$T/extra/opt/big.bin" "$T/mnt/opt/big.bin"
    t_check "most of the image is still remote" test "$("$IMGFS" du --json | jq '[.Images[].Remote] | max')" -gt 500000
    t_check "the lazy mount is the source tree" "$TOP/tests/compare-trees.sh" "$T/ref" "$T/mnt"
    if [[ -n $chunking ]]; then
        chunks=$(curl -fsS "http://$REG/v2/esgz/blobs/$(jq -r '.layers[0].digest' <<<"$manifest")" | tar -xzO stargz.index.json 2>/dev/null |
            jq '[.entries[] | select(.name == "opt/big.bin" and .chunkDigest)] | length')
        t_check "ctr-remote cut the big file into fixed chunks ($chunks)" test "$chunks" -ge 7
    fi
    t_check "fsck" "$IMGFS" fsck >/dev/null
    "$IMGFS" umount "$T/mnt"
    export IMGFS_ROOT=$T/store
done
t_end
