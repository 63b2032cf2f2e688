#!/bin/bash
# imgfs build: two stages FROM the same registry image the store lacks start together (one thread
# each) and pull it once: the registry's access log shows one fetch of the manifest, the config
# and the layer's TOC, and the build says "pulling ... lazily" once; each stage reads its own file
# through the one pull. Then both stages FROM an image that cannot be pulled fail with the same
# error, naming their own lines.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
source "$TOP/tests/lib_registry.sh"
t_begin build_pull_once
t_need_fixture busybox.tar
(($(nproc) >= 2)) || t_skip "needs 2 CPUs (stages run one per CPU)"
t_build_setup
reg_start

t_busybox_plus "$T/base.tar" 1048576 a b
t_check "import the base" "$IMGFS" import -q -t base:1 "$T/base.tar"
t_check "push it (eStargz)" "$IMGFS" push -q base:1 "$REG/base:1"
manifest=$(curl -fsS -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
    "http://$REG/v2/base/manifests/1")
config=$(jq -r '.config.digest' <<<"$manifest")
layer=$(jq -r '.layers[0].digest' <<<"$manifest")

export IMGFS_ROOT=$T/building
C=$T/ctx
mkdir -p "$C"
cat >"$C/Dockerfile" <<EOF
FROM $REG/base:1 AS one
RUN sha256sum /opt/a >/sum
FROM $REG/base:1 AS two
RUN sha256sum /opt/b >/sum
FROM scratch
COPY --from=one /sum /a.sum
COPY --from=two /sum /b.sum
EOF
mark=$(reg_log_lines)
build -t out "$C" && rc=0 || rc=$?
t_eq "two stages FROM one registry image build in a fresh store" 0 "$rc"
((rc == 0)) || tail -n 20 "$T/build.log"
one=$(sed -n 's/^#\([0-9]*\) \[one 2\/2\] RUN.*/\1/p' "$T/build.log")
two=$(sed -n 's/^#\([0-9]*\) \[two 2\/2\] RUN.*/\1/p' "$T/build.log")
t_check "both stages ran their RUN" test -n "$one" -a -n "$two"
gets() { reg_log_since "$mark" | grep -c "\"GET /v2/base/$1" || true; }
t_eq "the manifest was fetched once" 1 "$(gets manifests/1)"
t_eq "the config was fetched once" 1 "$(gets "blobs/$config")"
t_eq "the build said it pulls the image once" 1 "$(grep -c "pulling $REG/base:1 lazily" "$T/build.log")"
mnt out
t_eq "stage one read /opt/a through the pull" "$(cd "$T/extra" && sha256sum opt/a | cut -d' ' -f1)" \
    "$(cut -d' ' -f1 "$M/a.sum")"
t_eq "stage two read /opt/b through the pull" "$(cd "$T/extra" && sha256sum opt/b | cut -d' ' -f1)" \
    "$(cut -d' ' -f1 "$M/b.sum")"
"$IMGFS" umount "$M"
t_check "the store is consistent" "$IMGFS" fsck

# ---- a pull that fails fails both stages, each at its own line, with no image ----
export IMGFS_ROOT=$T/failing
sed -i "s|$REG/base:1|$REG/missing:1|" "$C/Dockerfile"
mark=$(reg_log_lines)
build -t nothing "$C" && rc=0 || rc=$?
t_check "FROM an image the registry lacks fails the build" test "$rc" -ne 0
t_check "... naming a FROM line and the reference" \
    grep -qE "Dockerfile:[13]: pulling $REG/missing:1: " "$T/build.log"
t_eq "... asking for its manifest once" 1 \
    "$(reg_log_since "$mark" | grep -c '"GET /v2/missing/manifests/1' || true)"
t_check_fails "... naming nothing" "$IMGFS" inspect nothing
t_end
