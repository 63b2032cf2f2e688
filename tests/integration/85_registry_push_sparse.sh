#!/bin/bash
# Pushing sparse files. A pushed layer is plain tar+gzip and eStargz, neither of which has holes
# (Docker's and containerd's tar readers write a sparse member's zeros out, eStargz TOCs cannot say
# "hole"), so push writes holes as zeros, up to --sparse-limit (default 4g) in a whole image: an
# image with a 1 PiB sparse file is refused at once, with the reason and the option, and nothing
# reaches the registry; a 64 MiB sparse file goes up as a small blob and comes back equal.
# No wall-clock limit here: a push that wrote the 1 PiB of zeros would hang and the suite's guard
# fails it.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
source "$TOP/tests/lib_registry.sh"
t_begin registry_push_sparse
command -v python3 >/dev/null || t_skip "python3 not installed"
quiet() { "$@" >/dev/null 2>&1; }

# pax sparse files (GNU sparse 1.0): NAME of SIZE bytes with 12 bytes of data at AT
python3 - "$T" <<'EOF'
import io, sys, tarfile
def sparse(path, name, size, at):
    data = b"sparse hello"
    regions = [(at, len(data)), (size, 0)]
    m = b"%d\n" % len(regions) + b"".join(b"%d\n%d\n" % r for r in regions)
    body = m + b"\0" * (-len(m) % 512) + data
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tf:
        ti = tarfile.TarInfo("GNUSparseFile.0/" + name)
        ti.size = len(body)
        ti.pax_headers = {"GNU.sparse.major": "1", "GNU.sparse.minor": "0",
                          "GNU.sparse.name": name, "GNU.sparse.realsize": str(size)}
        tf.addfile(ti, io.BytesIO(body))
sparse(sys.argv[1] + "/bomb.tar", "bomb", 1 << 50, 1 << 49)
sparse(sys.argv[1] + "/db.tar", "db", 64 << 20, 32 << 20)
EOF
t_check "import a 1 PiB sparse file" quiet "$IMGFS" import -q -t bomb "$T/bomb.tar"
t_check "import a 64 MiB sparse file" quiet "$IMGFS" import -q -t db "$T/db.tar"

reg_start
out=$("$IMGFS" push bomb "$REG/s/bomb:1" 2>&1) && rc=0 || rc=$?
t_eq "push of the 1 PiB sparse file: exit 1" 1 "$rc"
t_check "  says why: holes written as zeros, and the option to raise" \
    grep -qE "imgfs push: .*1125899906842612 bytes of holes .*bomb.*--sparse-limit" <<<"$out"
t_check "  nothing reached the registry" \
    quiet bash -c "! curl -sf http://$REG/v2/s/bomb/tags/list | grep -q ."
t_check "  no blob upload was started" \
    quiet bash -c "! grep -q 'POST /v2/s/bomb/blobs/uploads' '$REG_DIR/log'"

out=$("$IMGFS" push --sparse-limit 1m db "$REG/s/db:1" 2>&1) && rc=0 || rc=$?
t_eq "--sparse-limit 1m refuses 64 MiB of holes: exit 1" 1 "$rc"
t_check "  --sparse-limit checks its argument" \
    quiet bash -c "! '$IMGFS' push --sparse-limit lots db '$REG/s/db:1'"

t_check "push of the 64 MiB sparse file (default limit)" quiet "$IMGFS" push db "$REG/s/db:1"
size=$(curl -fsS -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
    "http://$REG/v2/s/db/manifests/1" | jq '.layers[0].size')
t_check "  its layer blob is small: the zeros compress ($size bytes)" test "$size" -lt 1048576
t_check "imgfs pulls it back into another store" \
    quiet env IMGFS_ROOT="$T/back" "$IMGFS" pull "$REG/s/db:1"
mkdir -p "$T/mnt"
t_check "  mount" env IMGFS_ROOT="$T/back" "$IMGFS" mount "$REG/s/db:1" "$T/mnt"
t_cleanup "IMGFS_ROOT='$T/back' '$IMGFS' umount '$T/mnt'"
t_eq "  64 MiB" $((64 << 20)) "$(stat -c %s "$T/mnt/db")"
t_eq "  the data where it was" "sparse hello" \
    "$(dd if="$T/mnt/db" iflag=skip_bytes,count_bytes skip=$((32 << 20)) count=12 status=none)"
t_eq "  zeros elsewhere (12 bytes are not zero)" 12 "$(tr -d '\0' <"$T/mnt/db" | wc -c)"
if command -v skopeo >/dev/null && command -v umoci >/dev/null; then
    t_check "skopeo copies it" quiet skopeo copy -q --src-tls-verify=false "docker://$REG/s/db:1" "oci:$T/oci:1"
    t_check "umoci unpacks it" quiet umoci unpack --image "$T/oci:1" "$T/bundle"
    t_check "  the same file" cmp "$T/mnt/db" "$T/bundle/rootfs/db"
fi
t_end
