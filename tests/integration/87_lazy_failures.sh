#!/bin/bash
# Lazy mounts when things go wrong: the registry dies mid-read (the read fails with EIO within the
# fetch budget, and succeeds once the registry is back, without a remount); a tampered blob in the
# registry's storage (EIO, nothing stored); the mount's daemon killed with its keeper (mounted again,
# offline once complete); hostile eStargz TOCs (`..` names, offsets outside the blob, a huge TOC)
# refused by `pull --lazy` with a clear error, nothing stored, no crash.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
source "$TOP/tests/lib_registry.sh"
t_begin lazy_failures
t_need_fixture busybox.tar
command -v python3 >/dev/null || t_skip "python3 not installed"
reg_start

lz() { IMGFS_ROOT=$T/store2 "$IMGFS" "$@"; }
chunks() { lz du --json | jq .Chunks; }
blob_file() { echo "$REG_DIR/storage/docker/registry/v2/blobs/sha256/${1:7:2}/${1:7}/data"; }

mkdir -p "$T/mnt"
t_busybox_plus "$T/img.tar" 400000 a.bin b.bin
t_check "import an image" "$IMGFS" import -q -t app:1 "$T/img.tar"
t_check "push it" "$IMGFS" push -q app:1 "$REG/app:1"
t_check "pull it lazily" lz pull -q --lazy "$REG/app:1"
t_check "mount it with a 2 s fetch budget" lz mount --fetch-timeout 2s "$REG/app:1" "$T/mnt"
t_cleanup "IMGFS_ROOT='$T/store2' '$IMGFS' umount -l '$T/mnt'"

# ---- the registry dies: EIO within the budget; back: the same read succeeds
t_check "a read while the registry is up" cmp -s "$T/extra/opt/a.bin" "$T/mnt/opt/a.bin"
reg_stop
start=$(date +%s%N)
if out=$(cat "$T/mnt/opt/b.bin" 2>&1 >/dev/null); then
    t_fail "a read with the registry gone succeeded"
else
    t_pass "a read with the registry gone fails"
fi
elapsed=$((($(date +%s%N) - start) / 1000000))
t_check "... with EIO ($out)" grep -q "Input/output error" <<<"$out"
# the budget is 2 s; far more than that means the read hung on retries
t_check "... within the budget, not minutes ($elapsed ms)" test "$elapsed" -lt 20000
reg_restart
t_check "the registry is back: the same read succeeds, no remount" cmp -s "$T/extra/opt/b.bin" "$T/mnt/opt/b.bin"
lz umount "$T/mnt"

# ---- a tampered blob: the bytes do not hash to their chunkDigest
t_check "pull it lazily into a fresh store" env IMGFS_ROOT="$T/store3" "$IMGFS" pull -q --lazy "$REG/app:1"
layer=$(curl -fsS -H 'Accept: application/vnd.oci.image.manifest.v1+json' "http://$REG/v2/app/manifests/1" | jq -r '.layers[0].digest')
blob=$(blob_file "$layer")
# flip bytes inside a.bin's first chunk member (its offset from the TOC)
off=$(tar -xzOf "$blob" stargz.index.json 2>/dev/null | jq '[.entries[] | select(.name == "opt/a.bin" and .chunkDigest) | .offset] | min')
python3 -c 'import sys; f=open(sys.argv[1],"r+b"); f.seek(int(sys.argv[2])+200); b=f.read(16); f.seek(int(sys.argv[2])+200); f.write(bytes(x ^ 0x5a for x in b))' "$blob" "$off"
before=$(IMGFS_ROOT=$T/store3 "$IMGFS" du --json | jq .Chunks)
t_check "mount it" env IMGFS_ROOT="$T/store3" "$IMGFS" mount --fetch-timeout 2s "$REG/app:1" "$T/mnt"
t_cleanup "IMGFS_ROOT='$T/store3' '$IMGFS' umount -l '$T/mnt'"
t_check_fails "reading the tampered file fails" cat "$T/mnt/opt/a.bin"
t_eq "nothing of it was stored" "$before" "$(IMGFS_ROOT=$T/store3 "$IMGFS" du --json | jq .Chunks)"
t_check_fails "and it keeps failing (never served)" cmp -s "$T/extra/opt/a.bin" "$T/mnt/opt/a.bin"
t_check "an untampered file of the same layer reads" cmp -s "$T/extra/opt/b.bin" "$T/mnt/opt/b.bin"
IMGFS_ROOT=$T/store3 "$IMGFS" umount "$T/mnt"

# ---- the daemon and its keeper killed: mounted again; offline once complete
t_check "mount store 2's image again" lz mount "$REG/app:1" "$T/mnt"
pids=$(pgrep -f "^imgfs-(keeper|mountd) $T/mnt " || true)
t_check "found its keeper and daemon" test -n "$pids"
# the keeper first (it would start a new daemon), then every daemon, until none is left
kill -9 $(pgrep -f "^imgfs-keeper $T/mnt ") 2>/dev/null || true
gone() {
    local p
    p=$(pgrep -f "^imgfs-(keeper|mountd) $T/mnt ") || return 0
    kill -9 $p 2>/dev/null
    return 1
}
t_check "they are gone" t_wait_for 400 gone || pgrep -af "^imgfs-(keeper|mountd) $T/mnt " || true
t_check_fails "the dead mount does not serve" stat "$T/mnt/bin"
t_check "pull fetches the rest" lz pull -q "$REG/app:1"
reg_stop
t_check "mount again, registry gone" lz mount "$REG/app:1" "$T/mnt"
t_check "everything reads offline" cmp -s "$T/extra/opt/b.bin" "$T/mnt/opt/b.bin"
t_check "... the whole tree" tar -C "$T/mnt" -cf /dev/null .
lz umount "$T/mnt"
reg_restart

# ---- hostile TOCs: a one-layer image whose eStargz TOC lies
upload() { # upload FILE -> prints its digest
    local d loc
    d=sha256:$(sha256sum <"$1" | cut -c1-64)
    loc=$(curl -fsS -o /dev/null -D - -X POST "http://$REG/v2/evil/blobs/uploads/" | tr -d '\r' | awk 'tolower($1) == "location:" {print $2}')
    [[ $loc == http* ]] || loc=http://$REG$loc
    curl -fsS -o /dev/null -X PUT -H 'Content-Type: application/octet-stream' --data-binary "@$1" "$loc&digest=$d" 2>/dev/null ||
        curl -fsS -o /dev/null -X PUT -H 'Content-Type: application/octet-stream' --data-binary "@$1" "$loc?digest=$d"
    echo "$d"
}
hostile() { # hostile NAME KIND: build, push and lazily pull an image whose TOC is of KIND
    local name=$1 kind=$2 blob cfg layer tocd m rc=0 out
    python3 - "$kind" "$T/$name.blob" "$T/$name.toc" <<'EOF'
import io, json, sys, tarfile, zlib, hashlib
kind, out, tocout = sys.argv[1:4]
def member(data):
    c = zlib.compressobj(6, zlib.DEFLATED, 31)
    return c.compress(data) + c.flush()
def header(name, size):
    i = tarfile.TarInfo(name)
    i.size = size
    return i.tobuf(format=tarfile.USTAR_FORMAT)
content = b"hello world\n"
d = "sha256:" + hashlib.sha256(content).hexdigest()
name, offset = "f", None
if kind == "dotdot":
    name = "../../etc/evil"
blob = member(header(name, len(content)))
offset = len(blob)
blob += member(content + bytes(512 - len(content)))
if kind == "outside":
    offset = 10 ** 9
entries = [{"name": name, "type": "reg", "size": len(content), "mode": 0o644, "offset": offset,
            "chunkDigest": d, "digest": d}]
toc = json.dumps({"version": 1, "entries": entries}).encode()
tocoff = len(blob)
if kind == "huge":
    # a TOC member whose tar header claims 300 MiB: refused before anything is read or kept
    blob += member(header("stargz.index.json", 300 << 20) + b"{" + bytes(511))
else:
    blob += member(header("stargz.index.json", len(toc)) + toc + bytes(-len(toc) % 512) + bytes(1024))
blob += bytes([0x1f, 0x8b, 8, 4, 0, 0, 0, 0, 0, 0xff, 26, 0, ord("S"), ord("G"), 22, 0])
blob += b"%016xSTARGZ" % tocoff + bytes([1, 0, 0, 0xff, 0xff]) + bytes(8)
open(out, "wb").write(blob)
open(tocout, "w").write("sha256:" + hashlib.sha256(toc).hexdigest())
EOF
    blob=$(upload "$T/$name.blob")
    gzip -dc "$T/$name.blob" 2>/dev/null | sha256sum | cut -c1-64 >"$T/$name.diff"
    printf '{"architecture":"amd64","os":"linux","config":{},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' \
        "$(cat "$T/$name.diff")" >"$T/$name.cfg"
    cfg=$(upload "$T/$name.cfg")
    tocd=$(cat "$T/$name.toc")
    m=$(jq -cn --arg c "$cfg" --argjson cs "$(stat -c %s "$T/$name.cfg")" --arg l "$blob" \
        --argjson ls "$(stat -c %s "$T/$name.blob")" --arg t "$tocd" \
        '{schemaVersion: 2, mediaType: "application/vnd.oci.image.manifest.v1+json",
          config: {mediaType: "application/vnd.oci.image.config.v1+json", digest: $c, size: $cs},
          layers: [{mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", digest: $l, size: $ls,
                    annotations: {"containerd.io/snapshot/stargz/toc.digest": $t}}]}')
    curl -fsS -o /dev/null -X PUT -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' \
        --data-binary "$m" "http://$REG/v2/evil/manifests/$name"
    local names chunks_before
    names=$(IMGFS_ROOT=$T/store4 "$IMGFS" images -q 2>/dev/null | sort)
    out=$(IMGFS_ROOT=$T/store4 "$IMGFS" pull -q --lazy "$REG/evil:$name" 2>&1) || rc=$?
    echo "$out" | head -n 2 | sed 's/^/    /'
    echo "$rc"
}
IMGFS_ROOT=$T/store4 "$IMGFS" import -q -t keep:1 "$FIXTURES/busybox.tar"
state() { IMGFS_ROOT=$T/store4 "$IMGFS" images --json | jq -c '[.[].Name] | sort'; IMGFS_ROOT=$T/store4 "$IMGFS" du --json | jq '.Chunks'; }
good_state=$(state)
for kind in dotdot outside huge; do
    res=$(hostile "$kind" "$kind")
    rc=$(tail -n1 <<<"$res")
    msg=$(sed '$d' <<<"$res")
    t_note "$kind: $msg"
    t_check "$kind TOC: pull --lazy fails, no crash (exit $rc)" test "$rc" -gt 0 -a "$rc" -lt 128
    case $kind in
    dotdot) want='`\.\.` part' ;;
    outside) want='outside the blob' ;;
    huge) want='more than the 256 MiB' ;;
    esac
    t_check "$kind TOC: the error says so" grep -qE "imgfs pull: .*$want" <<<"$msg"
    t_eq "$kind TOC: nothing stored, no name" "$good_state" "$(state)"
done
t_end
