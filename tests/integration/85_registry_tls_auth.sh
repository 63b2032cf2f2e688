#!/bin/bash
# A registry with TLS from a test CA and htpasswd basic auth: the CA is trusted only through
# CURL_CA_BUNDLE (never the system store); login checks credentials against /v2/ and stores them
# (Docker's auths layout, mode 0600, REGISTRY_AUTH_FILE honoured); pull and push use them; logout
# removes them.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
source "$TOP/tests/lib_registry.sh"
t_begin registry_tls_auth
t_need_fixture busybox.tar
command -v htpasswd >/dev/null || t_skip "htpasswd (apache2-utils) not installed"
quiet() { "$@" >/dev/null 2>&1; }

reg_start --tls --htpasswd alice s3cret
export REGISTRY_AUTH_FILE=$T/auth/auth.json
"$IMGFS" import -q -t busybox "$FIXTURES/busybox.tar"
V=--tls-verify=true # 127.0.0.1 is plain HTTP by default: this registry speaks TLS

# the CA is not trusted yet
out=$("$IMGFS" login $V -u alice --password-stdin "$REG" <<<"s3cret" 2>&1) && rc=0 || rc=$?
t_eq "login without the CA: exit 125" 125 "$rc"
t_check "  a certificate error" grep -qi "certificate" <<<"$out"
export CURL_CA_BUNDLE=$(reg_ca)

out=$("$IMGFS" login $V -u alice --password-stdin "$REG" <<<"wrong" 2>&1) && rc=0 || rc=$?
t_eq "login with a wrong password: exit 125" 125 "$rc"
t_check "  says authentication failed" grep -q "imgfs login: .*authentication failed" <<<"$out"
t_check "  stores nothing" test ! -e "$REGISTRY_AUTH_FILE"

out=$("$IMGFS" push $V busybox "$REG/b/busybox:1" 2>&1) && rc=0 || rc=$?
t_eq "push before login: exit 125" 125 "$rc"
t_check "  says to log in" grep -q "imgfs login" <<<"$out"

t_eq "login" "Login Succeeded" "$("$IMGFS" login $V -u alice --password-stdin "$REG" <<<"s3cret")"
t_eq "the auth file is 0600" 600 "$(stat -c %a "$REGISTRY_AUTH_FILE")"
t_eq "Docker's auths layout, base64 user:password" "alice:s3cret" \
    "$(jq -r --arg h "$REG" '.auths[$h].auth' "$REGISTRY_AUTH_FILE" | base64 -d)"

digest=$("$IMGFS" push -q $V busybox "$REG/b/busybox:1")
t_check "push with the stored credentials" grep -qE '^sha256:[0-9a-f]{64}$' <<<"$digest"
certs=$T/certs.d
mkdir -p "$certs"
cp "$(reg_ca)" "$certs/ca.crt"
t_eq "skopeo (same CA, same user) sees the digest" "$digest" \
    "$(skopeo inspect --cert-dir "$certs" --creds alice:s3cret "docker://$REG/b/busybox:1" | jq -r .Digest)"
t_check "pull into a fresh store" quiet env IMGFS_ROOT="$T/pulled" "$IMGFS" pull $V "$REG/b/busybox:1"
t_eq "  the registry's digest" "$digest" \
    "$(IMGFS_ROOT=$T/pulled "$IMGFS" inspect -f Digest "$REG/b/busybox:1")"
t_check "--tls-verify=false works without the CA" quiet env -u CURL_CA_BUNDLE \
    IMGFS_ROOT="$T/noverify" "$IMGFS" pull --tls-verify=false "$REG/b/busybox:1"
t_check "--ca-file instead of CURL_CA_BUNDLE" quiet env -u CURL_CA_BUNDLE \
    IMGFS_ROOT="$T/cafile" "$IMGFS" pull $V --ca-file "$(reg_ca)" "$REG/b/busybox:1"

t_check "logout" quiet "$IMGFS" logout "$REG"
t_eq "  the entry is gone" null "$(jq -r --arg h "$REG" '.auths[$h]' "$REGISTRY_AUTH_FILE")"
out=$(IMGFS_ROOT=$T/after "$IMGFS" pull $V "$REG/b/busybox:1" 2>&1) && rc=0 || rc=$?
t_eq "pull after logout: exit 125" 125 "$rc"
t_check "  an authentication error" grep -q "authentication required" <<<"$out"
t_check "  nothing named" test -z "$(IMGFS_ROOT=$T/after "$IMGFS" images -q)"
out=$("$IMGFS" logout "$REG" 2>&1) && rc=0 || rc=$?
t_check "logout again: not logged in" grep -q "not logged in" <<<"$out"
t_end
