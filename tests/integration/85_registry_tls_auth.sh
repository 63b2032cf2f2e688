#!/bin/bash
# A registry with TLS from a test CA and htpasswd basic auth: the CA is trusted only through
# CURL_CA_BUNDLE (never the system store); login checks credentials against /v2/ and stores them
# (Docker's auths layout, mode 0600, REGISTRY_AUTH_FILE honoured); pull and push use them; logout
# removes them. A lazy pull's TLS settings reach the mount daemon's own fetches; mount and run take
# them for a registry image they pull lazily.
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
t_eq "login without the CA: exit 1, as docker" 1 "$rc"
t_check "  a certificate error" grep -qi "certificate" <<<"$out"
export CURL_CA_BUNDLE=$(reg_ca)

out=$("$IMGFS" login $V -u alice --password-stdin "$REG" <<<"wrong" 2>&1) && rc=0 || rc=$?
t_eq "login with a wrong password: exit 1" 1 "$rc"
t_check "  says authentication failed" grep -q "imgfs login: .*authentication failed" <<<"$out"
t_check "  stores nothing" test ! -e "$REGISTRY_AUTH_FILE"

# prompts need a terminal, as docker's login says; with stdin not one, nothing is asked or stored
out=$("$IMGFS" login $V "$REG" </dev/null 2>&1) && rc=0 || rc=$?
t_eq "login with neither -u nor a terminal: refused (exit 1, as docker)" 1 "$rc"
t_check "  as docker's: no interactive login from a non TTY device" \
    grep -q "imgfs login: cannot perform an interactive login from a non TTY device" <<<"$out"
t_eq "  no prompt printed" "" "$(grep 'Username:' <<<"$out")"
out=$("$IMGFS" login $V -u alice "$REG" <<<"s3cret" 2>&1) && rc=0 || rc=$?
t_eq "login -u without a terminal for the password: refused too" 1 "$rc"
t_check "  stores nothing" test ! -e "$REGISTRY_AUTH_FILE"
out=$("$IMGFS" login $V -u alice -p wrong "$REG" 2>&1 >/dev/null) || true
t_check "login -p: docker's warning on stderr" \
    grep -qx "WARNING! Using --password via the CLI is insecure. Use --password-stdin." <<<"$out"

out=$("$IMGFS" push $V busybox "$REG/b/busybox:1" 2>&1) && rc=0 || rc=$?
t_eq "push before login: exit 1" 1 "$rc"
t_check "  says to log in" grep -q "imgfs login" <<<"$out"

t_eq "login" "Login Succeeded" "$("$IMGFS" login $V -u alice --password-stdin "$REG" <<<"s3cret")"
t_eq "the auth file is 0600" 600 "$(stat -c %a "$REGISTRY_AUTH_FILE")"
t_eq "Docker's auths layout, base64 user:password" "alice:s3cret" \
    "$(jq -r --arg h "$REG" '.auths[$h].auth' "$REGISTRY_AUTH_FILE" | base64 -d)"

digest=$(push_digest $V busybox "$REG/b/busybox:1")
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

# lazy pulls: the mount daemon's own fetches talk TLS as the pull was told to (--tls-verify,
# --ca-file), not as its environment would have it (no CURL_CA_BUNDLE here)
lz() { env -u CURL_CA_BUNDLE IMGFS_ROOT="$T/lazy" "$IMGFS" "$@"; }
mkdir -p "$T/ref" "$T/mnt" "$T/mnt2" "$T/ca"
t_check "mount the local image" "$IMGFS" mount busybox "$T/ref"
t_cleanup "'$IMGFS' umount '$T/ref'"
cp "$(reg_ca)" "$T/ca/ca.crt"
t_check "pull --lazy with --ca-file" quiet lz pull -q --lazy $V --ca-file "$T/ca/ca.crt" "$REG/b/busybox:1"
t_check "  remembered for the registry" \
    quiet jq -e --arg ca "$T/ca/ca.crt" '.["tls-verify"] == "true" and .["ca-file"] == $ca' \
    "$T/lazy/registries/$REG.json"
t_check "mount it" lz mount --fetch-timeout 3s "$REG/b/busybox:1" "$T/mnt"
t_cleanup "IMGFS_ROOT='$T/lazy' '$IMGFS' umount '$T/mnt'"
# another CA in the file: a daemon that checks the registry's certificate with it must fail
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=another CA" \
    -keyout "$T/ca/other.key" -out "$T/ca/other.crt" 2>/dev/null
cp "$T/ca/other.crt" "$T/ca/ca.crt"
t_check "with another CA in --ca-file's file, the daemon's fetch fails (it checks the certificate)" \
    quiet bash -c "! cat '$T/mnt/bin/busybox' >/dev/null"
cp "$(reg_ca)" "$T/ca/ca.crt"
t_check "with the CA back, the same read works (no remount)" cmp -s "$T/ref/bin/busybox" "$T/mnt/bin/busybox"
t_check "  and the whole tree reads" tar -C "$T/mnt" -cf /dev/null .
lz umount "$T/mnt"
out=$(env -u CURL_CA_BUNDLE IMGFS_ROOT="$T/lazy2" "$IMGFS" mount $V "$REG/b/busybox:1" "$T/mnt2" 2>&1) && rc=0 || rc=$?
t_eq "mount of a registry image with --tls-verify and no CA: exit 125" 125 "$rc"
t_check "  a certificate error from its lazy pull" grep -qi "certificate" <<<"$out"
t_check "mount --ca-file of a registry image pulls it lazily with the CA" \
    quiet env -u CURL_CA_BUNDLE IMGFS_ROOT="$T/lazy2" "$IMGFS" mount $V --ca-file "$(reg_ca)" \
    "$REG/b/busybox:1" "$T/mnt2"
t_cleanup "IMGFS_ROOT='$T/lazy2' '$IMGFS' umount '$T/mnt2'"
t_check "  and its reads fetch with it" cmp -s "$T/ref/bin/busybox" "$T/mnt2/bin/busybox"
IMGFS_ROOT=$T/lazy2 "$IMGFS" umount "$T/mnt2"
t_eq "run --ca-file of a registry image" "hello" \
    "$(env -u CURL_CA_BUNDLE IMGFS_ROOT="$T/lazy3" "$IMGFS" run --rm --network none $V \
        --ca-file "$(reg_ca)" "$REG/b/busybox:1" echo hello 2>"$T/run.err")"
# --authfile (relative here): the daemon's fetches use the credentials the lazy pull was given,
# with no REGISTRY_AUTH_FILE and no default auth file in their environment
cp "$REGISTRY_AUTH_FILE" "$T/other-auth.json"
noauth() { (cd "$T" && env -u CURL_CA_BUNDLE -u REGISTRY_AUTH_FILE XDG_CONFIG_HOME="$T/nocfg" \
    IMGFS_ROOT="$T/lazy4" "$IMGFS" "$@"); }
t_check "pull --lazy --authfile other-auth.json" \
    quiet noauth pull -q --lazy $V --ca-file "$(reg_ca)" --authfile other-auth.json "$REG/b/busybox:1"
t_check "  mount it" noauth mount --fetch-timeout 3s "$REG/b/busybox:1" "$T/mnt2"
t_cleanup "IMGFS_ROOT='$T/lazy4' '$IMGFS' umount '$T/mnt2'"
t_check "  the daemon's fetches authenticate with that file" cmp -s "$T/ref/bin/busybox" "$T/mnt2/bin/busybox"
noauth umount "$T/mnt2"

out=$("$IMGFS" mount --ca-file "$T/nothere.crt" busybox "$T/mnt2" 2>&1) && rc=0 || rc=$?
t_eq "--ca-file of a missing file: exit 125" 125 "$rc"
t_check "  names it" grep -q "ca-file .*nothere.crt.*No such file" <<<"$out"

t_check "logout" quiet "$IMGFS" logout "$REG"
t_eq "  the entry is gone" null "$(jq -r --arg h "$REG" '.auths[$h]' "$REGISTRY_AUTH_FILE")"
out=$(IMGFS_ROOT=$T/after "$IMGFS" pull $V "$REG/b/busybox:1" 2>&1) && rc=0 || rc=$?
t_eq "pull after logout: exit 1" 1 "$rc"
t_check "  an authentication error" grep -q "authentication required" <<<"$out"
t_check "  nothing named" test -z "$(IMGFS_ROOT=$T/after "$IMGFS" images -q)"
# again: nothing to remove, which docker's logout does not count as a failure (exit 0)
out=$("$IMGFS" logout "$REG" 2>"$T/logout.err") && rc=0 || rc=$?
t_eq "logout again: exit 0, as docker's" 0 "$rc"
t_eq "  says it was not logged in" "Not logged in to $REG" "$out"
t_eq "  nothing on stderr" "" "$(cat "$T/logout.err")"
t_end
