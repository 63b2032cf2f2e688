#!/bin/bash
# A gzip stream whose deflate data was damaged can still decode, into wrong bytes: only the CRC-32 in
# its trailer tells. Import must check it and fail, naming the problem, with the store unchanged.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
t_begin import_gzip_crc
t_need_fixture debian.tar.gz

t_check "a good image first" "$IMGFS" import -q -t good "$FIXTURES/debian.tar.gz"
before=$("$IMGFS" images --json | jq -c '[.[].Name]')
stored=$("$IMGFS" du --json | jq .Stored)
size=$(stat -c %s "$FIXTURES/debian.tar.gz")
failures=0
# damage a few places; each must be refused (by the CRC, or earlier by deflate or tar themselves)
for frac in 30 55 80 97; do
    python3 - "$FIXTURES/debian.tar.gz" "$T/bad.tgz" "$((size * frac / 100))" <<'PY'
import sys
data = bytearray(open(sys.argv[1], 'rb').read())
at = int(sys.argv[3])
data[at] ^= 0x01
open(sys.argv[2], 'wb').write(data)
PY
    if out=$("$IMGFS" import -t bad "$T/bad.tgz" 2>&1); then
        t_fail "damage at ${frac}% imported without an error"
        failures=$((failures + 1))
    else
        t_check "damage at ${frac}%: a clear error ($(tail -n1 <<<"$out" | cut -c1-120))" \
            grep -qiE "gzip|corrupt|tar|truncated" <<<"$out"
    fi
done
t_eq "no image named by the failed imports" "$before" "$("$IMGFS" images --json | jq -c '[.[].Name]')"
t_check "gc" "$IMGFS" gc
t_eq "stored bytes as before" "$stored" "$("$IMGFS" du --json | jq .Stored)"
t_check "fsck passes" "$IMGFS" fsck
t_end
