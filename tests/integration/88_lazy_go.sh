#!/bin/bash
# The headline: `imgfs run REGISTRY/IMAGE go version` on a Debian+golang image that is not in the
# store pulls it lazily and runs it, fetching only a small part of the image: less than 2% of the
# image's bytes cross the wire (the registry's access log: every 206 answer, TOCs included), and
# what the store then holds is counted by `imgfs du`. Slow (pushes a 570 MB image): release build
# only (ASAN_SKIP in tests/run.sh).
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
source "$TOP/tests/lib_registry.sh"
t_begin lazy_go
t_need_fixture debian-go.tar.gz
[[ $IMGFS_ASAN == 1 || $(basename "$IMGFS") == imgfs-asan ]] && t_skip "slow: run with the release build only"
reg_start

t_check "import Debian+golang" "$IMGFS" import -q -t go:1 "$FIXTURES/debian-go.tar.gz"
t_check "push it (eStargz)" "$IMGFS" push -q go:1 "$REG/go:1"
logical=$("$IMGFS" du --json | jq '.Images[] | select(.Name == "go:1") | .Logical')
compressed=$(curl -fsS -H 'Accept: application/vnd.oci.image.manifest.v1+json' "http://$REG/v2/go/manifests/1" | jq '[.layers[].size] | add')
mark=$(wc -l <"$REG_DIR/log")

export IMGFS_ROOT=$T/lazy
out=$("$IMGFS" run --rm --network none "$REG/go:1" go version 2>"$T/err") || true
t_check "go version runs in the lazily pulled image ($out)" grep -q '^go version go1' <<<"$out"
t_check "it said it pulled lazily" grep -q 'pulling it lazily' "$T/err"
wire=$(tail -n +$((mark + 1)) "$REG_DIR/log" | awk '$9 == 206 {s += $10} END {print s + 0}')
whole=$(tail -n +$((mark + 1)) "$REG_DIR/log" | awk '$9 == 200 && /\/blobs\// {n++} END {print n + 0}')
present=$("$IMGFS" du --json | jq '[.Images[].Present] | max')
t_note "image: $logical bytes ($compressed compressed); fetched over the wire: $wire bytes" \
    "($(awk -v a="$wire" -v b="$logical" 'BEGIN {printf "%.2f", 100 * a / b}')% of the image," \
    "$(awk -v a="$wire" -v b="$compressed" 'BEGIN {printf "%.2f", 100 * a / b}')% of its blobs);" \
    "chunks now in the store: $present bytes ($(awk -v a="$present" -v b="$logical" 'BEGIN {printf "%.2f", 100 * a / b}')%)"
t_eq "only the config was downloaded whole" 1 "$whole"
t_check "less than 2% of the image's bytes were fetched" test $((wire * 50)) -lt "$logical"
t_check "... and most of it is still remote" test $((present * 20)) -lt "$logical"
t_end
