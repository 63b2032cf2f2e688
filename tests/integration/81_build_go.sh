#!/bin/bash
# imgfs build --go (the Go fast path, builder/gofast.c): `go build` on the host, one layer with
# /app/NAME on the static base, the binary as entrypoint; the same source gives the same digest
# (twice, and on another store); a failed compile, a missing toolchain, a missing base and a
# non-main package are clear errors that name no image. Uses the user's Go build cache (a cold one
# makes the first build take ~1 min here: the standard library is compiled with CGO_ENABLED=0).
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
t_begin build_go
command -v go >/dev/null || t_skip "no go on PATH (apt-get install golang-go)"
export IMGFS_BASE_CACHE=$T/basecache
"$TOP/tools/mkbase.sh" --imgfs "$IMGFS" static:latest busybox:latest

mkdir "$T/src"
cat >"$T/src/go.mod" <<'EOF2'
module example.com/hello

go 1.19
EOF2
cat >"$T/src/main.go" <<'EOF2'
package main

import (
	"fmt"
	"os"
	"strings"
)

func main() {
	fmt.Printf("hello from go-fast, uid %d, args [%s]\n", os.Getuid(), strings.Join(os.Args[1:], " "))
}
EOF2
build() { (cd "$T/src" && "$IMGFS" build "$@"); }

out=$(build --go . -t hello --progress plain 2>&1)
t_check "build --go succeeds" grep -q "naming to hello:latest done" <<<"$out"
d1=$("$IMGFS" inspect hello | awk '/^Digest:/ {print $2}')
t_eq "one layer on the static base" 2 \
    "$("$IMGFS" inspect hello | awk '/^Layers:/ {on = 1; next} on && /sha256:/ {n++} END {print n}')"
t_check "the entrypoint is /app/hello" sh -c "'$IMGFS' inspect hello | grep -q '^Entrypoint: *\/app\/hello$'"
t_eq "it runs" "hello from go-fast, uid 0, args []" "$("$IMGFS" run --rm --network none hello)"
t_eq "arguments follow the entrypoint" "hello from go-fast, uid 0, args [a b]" \
    "$("$IMGFS" run --rm --network none hello a b)"
t_eq "as the nonroot user of the base" "hello from go-fast, uid 65532, args []" \
    "$("$IMGFS" run --rm --network none -u nonroot hello)"
mkdir "$T/mnt"
t_cleanup "umount -l '$T/mnt'"
"$IMGFS" mount hello "$T/mnt"
t_eq "/app/hello: root, 0755, mtime 0" "0:0 755 0" "$(stat -c '%u:%g %a %Y' "$T/mnt/app/hello")"
t_check "a static binary" sh -c "file -L '$T/mnt/app/hello' | grep -q 'statically linked'"
t_check "the base is there too" test -s "$T/mnt/etc/ssl/certs/ca-certificates.crt"
umount "$T/mnt"

# reproducible: again, and on another store
t_eq "the same source, the same digest" "$d1" "$(build --go . -q)"
t_eq "on another store too" "$d1" "$(IMGFS_ROOT=$T/store2 IMGFS_BASE_CACHE=$T/basecache \
    "$TOP/tools/mkbase.sh" --imgfs "$IMGFS" static:latest && cd "$T/src" &&
    IMGFS_ROOT=$T/store2 "$IMGFS" build --go . -q)"
d3=$(cd "$T/src" && SOURCE_DATE_EPOCH=1700000000 "$IMGFS" build --go . -q)
t_check "SOURCE_DATE_EPOCH changes the times" test "$d3" != "$d1"
t_eq "and is stable" "$d3" "$(cd "$T/src" && SOURCE_DATE_EPOCH=1700000000 "$IMGFS" build --go . -q)"

t_eq "--base busybox" "hello from go-fast, uid 0, args []" \
    "$(build --go . --base busybox -q -t hello-bb >/dev/null && "$IMGFS" run --rm --network none hello-bb)"

# errors
names=$("$IMGFS" images --quiet | sort)
echo 'package main
func main() { this is not go }' >"$T/src/broken.go"
rc=0
out=$(build --go . -t broken --progress plain 2>&1) || rc=$?
t_eq "a failed compile: exit 1" 1 "$rc"
t_check "go's message is shown" grep -q "broken.go" <<<"$out"
t_check "and the error says what failed" grep -q "go build . failed" <<<"$out"
rm "$T/src/broken.go"
rc=0
out=$(PATH=/nonexistent build --go . -t nogo 2>&1) || rc=$?
t_eq "no toolchain: exit 125" 125 "$rc"
t_check "no toolchain: a clear message" grep -q "no Go toolchain" <<<"$out"
rc=0
out=$(build --go . --base nosuch:base -t nobase 2>&1) || rc=$?
t_check "a missing base names it and mkbase" grep -q "nosuch:base.*mkbase" <<<"$out"
mkdir "$T/src/lib" && echo 'package lib' >"$T/src/lib/lib.go"
rc=0
out=$(build --go ./lib -t lib 2>&1) || rc=$?
t_check "a non-main package is refused, as go says" grep -q "no main packages" <<<"$out"
t_eq "no failed build named an image" "$names" "$("$IMGFS" images --quiet | sort)"
t_end
