#!/bin/bash
# imgfs build: COPY --link with BuildKit's semantics — the layer does not depend on its parent:
# the step's cache key leaves the parent out (a changed base reuses the layer: CACHED, the same
# diff_id), the layer is the same blob on any base (scratch or busybox), and the steps after it
# still see the new base (their key names both). A plain COPY after a changed base runs again.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
t_begin build_link
t_need_fixture busybox.tar
"$IMGFS" import -t busybox:latest "$FIXTURES/busybox.tar" >/dev/null

t_build_setup # $M, build ARGS..., mnt IMAGE (tests/lib.sh)
C=$T/ctx
mkdir -p "$C/dir/sub"
echo linked >"$C/f"
echo deep >"$C/dir/sub/g"

dockerfile() {
    cat >"$C/Dockerfile" <<EOF
FROM busybox:latest
RUN echo $1 >/base
COPY --link f /app/f
COPY --link dir /app/dir/
COPY f /plain
RUN cat /base /app/f /app/dir/sub/g >/seen
EOF
}
step() { sed -n "s|^#\([0-9]*\) \[$1\] .*|\1|p" "$T/build.log"; }

dockerfile one
build -t link1 "$C" && rc=0 || rc=$?
t_eq "COPY --link builds" 0 "$rc"
((rc == 0)) || cat "$T/build.log"
mnt link1
t_eq "the linked file is there" "linked" "$(cat "$M/app/f")"
t_eq "a linked directory's contents too" "deep" "$(cat "$M/app/dir/sub/g")"
t_eq "the parent directory the layer brings is 0755 root" "755 0:0" "$(stat -c '%a %u:%g' "$M/app")"
"$IMGFS" umount "$M"

dockerfile two
build -t link2 "$C"
t_check "a changed base: COPY --link is CACHED" grep -q "^#$(step '3/6') CACHED$" "$T/build.log"
t_check "... both of them" grep -q "^#$(step '4/6') CACHED$" "$T/build.log"
t_check "a plain COPY is not" grep -q "^#$(step '5/6') DONE" "$T/build.log"
t_check "the RUN after them is not either" grep -q "^#$(step '6/6') DONE" "$T/build.log"
mapfile -t l1 < <(t_diff_ids link1)
mapfile -t l2 < <(t_diff_ids link2)
t_check "the base's RUN layer differs" test "${l1[1]}" != "${l2[1]}"
t_eq "the --link layers are the same blobs on the new base" "${l1[2]} ${l1[3]}" "${l2[2]} ${l2[3]}"
mnt link2
t_eq "the steps after it see the new base and the linked files" "two|linked|deep" \
    "$(paste -sd'|' "$M/seen")"
"$IMGFS" umount "$M"

# the same blob on any base, built afresh (no cache) at a fixed time
export SOURCE_DATE_EPOCH=1700000000
printf 'FROM scratch\nCOPY --link f /app/f\n' >"$C/Dockerfile"
build --no-cache -t onscratch "$C"
printf 'FROM busybox:latest\nRUN echo x >/x\nCOPY --link f /app/f\n' >"$C/Dockerfile"
build --no-cache -t onbusybox "$C"
unset SOURCE_DATE_EPOCH
t_eq "COPY --link makes the same layer on scratch and on busybox" \
    "$(t_diff_ids onscratch | tail -1)" "$(t_diff_ids onbusybox | tail -1)"
t_end
