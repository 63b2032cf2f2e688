#!/bin/bash
# pull -a / push -a (docker's --all-tags) and docker's plain output lines: push -a sends every local
# tag of a repository (and no other repository) under one "The push refers to repository" line, a
# layer the registry has is docker's "HEX: Layer already exists" (no size); pull -a lists the
# registry's tags — every page of it (the hostile registry pages two at a time; a next page on
# another host is refused) — and pulls each, ending with docker's Status line and the repository's
# full name; a tag with -a is refused as docker refuses it.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
source "$TOP/tests/lib_registry.sh"
t_begin registry_all_tags
t_need_fixture busybox.tar
t_need_fixture tree.tar
command -v python3 >/dev/null || t_skip "python3 not installed"
reg_start

quiet() { "$@" >/dev/null 2>&1; }
"$IMGFS" import -q -t app:v1 "$FIXTURES/busybox.tar" >/dev/null
"$IMGFS" import -q -t app:v2 "$FIXTURES/tree.tar" >/dev/null
"$IMGFS" tag app:v1 app:latest
"$IMGFS" tag app:v1 other:v1
LOCAL=$IMGFS_ROOT
"$IMGFS" export -o "$T/bb.tar" app:v1

# --- push -a ---
set +e
out=$("$IMGFS" push -a app:v1 "$REG/app" 2>&1)
rc=$?
set -e
t_eq "push -a with a tag: exit 1, as docker" 1 "$rc"
t_check "  docker's message" grep -q "tag can't be used with --all-tags/-a" <<<"$out"
t_eq "  nothing reached the registry" 0 "$(grep -c '"PUT /v2/' "$REG_DIR/log" || true)"

out=$("$IMGFS" push -a app "$REG/app")
t_eq "push -a: one repository line" 1 "$(grep -cF "The push refers to repository [$REG/app]" <<<"$out")"
t_eq "  one digest line per local tag, in name order" "latest v1 v2" \
    "$(sed -n 's/^\([^ ]*\): digest: sha256:[0-9a-f]\{64\} size: [0-9]*$/\1/p' <<<"$out" | xargs)"
t_check "  v1 after latest (the same image): docker's 'HEX: Layer already exists', no size" \
    grep -qE '^[0-9a-f]{12}: Layer already exists$' <<<"$out"
t_check "  pushed layers: 'HEX: Pushed'" grep -qE '^[0-9a-f]{12}: Pushed$' <<<"$out"
t_eq "  the registry has those tags" '["latest","v1","v2"]' \
    "$(curl -sf "http://$REG/v2/app/tags/list" | jq -c '.tags | sort')"
t_eq "  and not the other repository's" 404 \
    "$(curl -s -o /dev/null -w '%{http_code}' "http://$REG/v2/other/tags/list")"
t_eq "  v1 and latest are one manifest" \
    "$(curl -sfI -H 'Accept: application/vnd.oci.image.manifest.v1+json' "http://$REG/v2/app/manifests/v1" | grep -i docker-content-digest)" \
    "$(curl -sfI -H 'Accept: application/vnd.oci.image.manifest.v1+json' "http://$REG/v2/app/manifests/latest" | grep -i docker-content-digest)"
out=$("$IMGFS" push app "$REG/solo")
t_eq "push without a tag: docker's first line" "Using default tag: latest" "$(head -n 1 <<<"$out")"
t_check "  and :latest is pushed" grep -q '^latest: digest: ' <<<"$out"
set +e
out=$("$IMGFS" push -a nothing-here "$REG/app" 2>&1)
rc=$?
set -e
t_eq "push -a of a repository with no local tag: exit 1" 1 "$rc"
t_check "  says so" grep -q "does not exist locally" <<<"$out"

# --- pull -a ---
export IMGFS_ROOT=$T/pulled
set +e
out=$("$IMGFS" pull -a "$REG/app:v1" 2>&1)
rc=$?
set -e
t_eq "pull -a with a tag: exit 1, as docker" 1 "$rc"
t_check "  docker's message" grep -q "tag can't be used with --all-tags/-a" <<<"$out"
out=$("$IMGFS" pull -a "$REG/app")
t_eq "pull -a: a 'TAG: Pulling from' line per tag" "latest v1 v2" \
    "$(sed -n 's/^\([^ ]*\): Pulling from app$/\1/p' <<<"$out" | sort | xargs)"
t_eq "  a Digest line per tag" 3 "$(grep -c '^Digest: sha256:' <<<"$out")"
t_check "  docker's Status line for the repository" \
    grep -qxF "Status: Downloaded newer image for $REG/app" <<<"$out"
t_eq "  last, the repository's full name" "$REG/app" "$(tail -n 1 <<<"$out")"
t_eq "  the store has the three tags" "latest v1 v2" \
    "$("$IMGFS" images --format '{{.Tag}}' "$REG/app" | sort | xargs)"
t_eq "  v2 is the tree image" "$(IMGFS_ROOT=$LOCAL "$IMGFS" images -q app:v2)" \
    "$("$IMGFS" images -q "$REG/app:v2")"
out=$("$IMGFS" pull -a "$REG/app")
t_check "pull -a again: up to date" grep -qxF "Status: Image is up to date for $REG/app" <<<"$out"
t_eq "pull -q -a: the full name only" "$REG/app" "$("$IMGFS" pull -q -a "$REG/app")"
out=$("$IMGFS" pull "$REG/app:v1")
t_eq "pull of one tag: its full name last" "$REG/app:v1" "$(tail -n 1 <<<"$out")"

# pages: the hostile registry lists t1..t5 two at a time
mkdir -p "$T/layout"
tar -C "$T/layout" -xf "$T/bb.tar"
hostile ok
export IMGFS_ROOT=$T/paged
out=$("$IMGFS" pull -a "$H/x")
t_eq "pull -a of a listing in three pages: every tag" "t1 t2 t3 t4 t5" \
    "$("$IMGFS" images --format '{{.Tag}}' "$H/x" | sort | xargs)"
t_eq "  three requests for the list" 3 "$(grep -c 'GET /v2/x/tags/list' "$HLOG")"
hostile tags-offsite
export IMGFS_ROOT=$T/offsite
set +e
out=$("$IMGFS" pull -a "$H/x" 2>&1)
rc=$?
set -e
t_eq "a next page on another host: exit 1" 1 "$rc"
t_check "  says why" grep -q "next page is not a path under /v2/" <<<"$out"
t_eq "  nothing pulled" "" "$("$IMGFS" images -q)"
t_end
