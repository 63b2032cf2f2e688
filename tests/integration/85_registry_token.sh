#!/bin/bash
# A registry with token auth (docker-registry's `auth: token:`) and the token server the test
# starts (tests/token_server.py: RS256 JWTs, credentials checked): imgfs follows the Bearer flow —
# 401 with a challenge, a token from the realm (with the stored basic credentials), the request
# again with the token — for login, push (pull,push scope) and pull; skopeo reads what it pushed.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
source "$TOP/tests/lib_registry.sh"
t_begin registry_token
t_need_fixture busybox.tar
command -v python3 >/dev/null || t_skip "python3 not installed"
quiet() { "$@" >/dev/null 2>&1; }

reg_start --token --htpasswd bob hunter2
export REGISTRY_AUTH_FILE=$T/auth.json
"$IMGFS" import -q -t busybox "$FIXTURES/busybox.tar"
log=$REG_DIR/token/requests.log

out=$("$IMGFS" push busybox "$REG/team/bb:1" 2>&1) && rc=0 || rc=$?
t_eq "push without credentials: exit 1" 1 "$rc"
t_check "  the token server refused: says to log in" grep -q "no credentials; run .imgfs login" <<<"$out"

out=$("$IMGFS" login -u bob --password-stdin "$REG" <<<"wrong" 2>&1) && rc=0 || rc=$?
t_eq "login with a wrong password: exit 1" 1 "$rc"
t_check "  bad credentials" grep -q "bad credentials" <<<"$out"
t_eq "login" "Login Succeeded" "$("$IMGFS" login -u bob --password-stdin "$REG" <<<"hunter2")"
t_check "  the token server saw bob" grep -q "^token .*user=bob" "$log"

digest=$(push_digest busybox "$REG/team/bb:1")
t_check "push with a token" grep -qE '^sha256:[0-9a-f]{64}$' <<<"$digest"
t_check "  the token was asked for pull,push on team/bb" \
    grep -qE "^token (.* )?repository:team/bb:pull,push( .*)? user=bob" "$log"
t_eq "skopeo (its own token) sees the digest" "$digest" \
    "$(skopeo inspect --tls-verify=false --creds bob:hunter2 "docker://$REG/team/bb:1" | jq -r .Digest)"
t_check "pull into a fresh store with a token" quiet env IMGFS_ROOT="$T/pulled" "$IMGFS" pull "$REG/team/bb:1"
t_eq "  the registry's digest" "$digest" "$(IMGFS_ROOT=$T/pulled "$IMGFS" inspect -f Digest "$REG/team/bb:1")"
t_check "  a pull token" grep -qE "^token (.* )?repository:team/bb:pull( .*)? user=bob" "$log"
t_check "pulled content is intact" quiet env IMGFS_ROOT="$T/pulled" "$IMGFS" fsck
t_end
