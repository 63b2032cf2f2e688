# tests/lib_registry.sh — a real registry for the tests: Debian's docker-registry (distribution
# 2.8) on 127.0.0.1, a free port, a temporary storage dir, stopped by PID at exit. Source it after
# tests/lib.sh.
#
#   reg_start [--tls] [--htpasswd USER PASS] [--token]   start one; sets REG (127.0.0.1:PORT),
#                               REG_PORT, REG_DIR (its state), REG_PID
#   reg_stop / reg_restart      stop it by PID / start it again on the same port and storage
#   reg_ca                      (after --tls) the CA bundle that signed its certificate
#   hostile MODE [ARG...]       (re)start tests/registry_hostile.py in MODE on a fresh port,
#                               serving the OCI layout $T/layout (ARGs go to it); sets H
#                               (127.0.0.1:PORT), HPORT, HPID and HLOG ($T/hostile-MODE.log)
#
# --tls makes a test CA and a server certificate for 127.0.0.1 and localhost with openssl; clients
# trust it through CURL_CA_BUNDLE / --cert-dir, never through the system store.
# --token makes the registry accept only RS256 JWTs from tests/token_server.py, which this starts
# too (REG_TOKEN_URL is its realm); --htpasswd with --token makes the token server check those
# credentials.

_reg_listening() { ss -Hltn "sport = :$1" | grep -q .; }

# A CA and a certificate for 127.0.0.1/localhost signed by it, in $1.
reg_make_certs() {
    local d=$1
    mkdir -p "$d"
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=imgfs test CA" \
        -keyout "$d/ca.key" -out "$d/ca.crt" 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" \
        -keyout "$d/server.key" -out "$d/server.csr" 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n' >"$d/ext.cnf"
    openssl x509 -req -in "$d/server.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" -CAcreateserial \
        -days 2 -extfile "$d/ext.cnf" -out "$d/server.crt" 2>/dev/null
}

reg_start() {
    local tls=0 token=0 user="" pass=""
    while (($#)); do
        case $1 in
        --tls) tls=1 ;;
        --token) token=1 ;;
        --htpasswd) user=$2 pass=$3; shift 2 ;;
        *) echo "reg_start: unknown option $1" >&2; return 1 ;;
        esac
        shift
    done
    command -v docker-registry >/dev/null || t_skip "docker-registry not installed"
    REG_DIR=$(mktemp -d "$T/registry.XXXXXX")
    mkdir -p "$REG_DIR/storage"
    REG_PORT=$(t_free_port)
    REG=127.0.0.1:$REG_PORT
    {
        echo "version: 0.1"
        echo "log: {level: error, accesslog: {disabled: false}}"
        echo "storage:"
        echo "  filesystem: {rootdirectory: $REG_DIR/storage}"
        echo "  delete: {enabled: true}"
        echo "  maintenance: {uploadpurging: {enabled: false}}"
        echo "http:"
        echo "  addr: $REG"
        echo "  secret: imgfs-test-secret"
        if ((tls)); then
            echo "  tls: {certificate: $REG_DIR/certs/server.crt, key: $REG_DIR/certs/server.key}"
        fi
    } >"$REG_DIR/config.yml"
    if ((tls)); then
        reg_make_certs "$REG_DIR/certs"
    fi
    if [[ -n $user ]] && ((!token)); then
        htpasswd -Bbn "$user" "$pass" >"$REG_DIR/htpasswd"
        printf 'auth:\n  htpasswd: {realm: imgfs-test, path: %s}\n' "$REG_DIR/htpasswd" \
            >>"$REG_DIR/config.yml"
    fi
    if ((token)); then
        _reg_token_start "$user" "$pass"
        printf 'auth:\n  token:\n    realm: %s\n    service: imgfs-test-registry\n    issuer: imgfs-test-issuer\n    rootcertbundle: %s\n' \
            "$REG_TOKEN_URL" "$REG_DIR/token/cert.pem" >>"$REG_DIR/config.yml"
    fi
    _reg_launch
}

# Start docker-registry on $REG_PORT; when another test took that port first (the bind fails), a
# first start moves to a new port, a restart (--same-port) waits for the port and tries again.
_reg_launch() {
    local try from
    for try in 1 2 3 4 5; do
        from=$(($(stat -c %s "$REG_DIR/log" 2>/dev/null || echo 0) + 1))
        docker-registry serve "$REG_DIR/config.yml" >>"$REG_DIR/log" 2>&1 &
        REG_PID=$!
        t_cleanup "kill $REG_PID 2>/dev/null; wait $REG_PID 2>/dev/null"
        _wait_listening "$REG_PID" "$REG_PORT" && return 0
        kill "$REG_PID" 2>/dev/null || true
        wait "$REG_PID" 2>/dev/null || true
        tail -c +"$from" "$REG_DIR/log" | grep -q "address already in use" || break
        if [[ ${1:-} != --same-port ]]; then
            REG_PORT=$(t_free_port)
            REG=127.0.0.1:$REG_PORT
            sed -i "s|^  addr: .*|  addr: $REG|" "$REG_DIR/config.yml"
        fi
    done
    cat "$REG_DIR/log" >&2
    t_fail "docker-registry did not start on $REG"
    return 1
}

# Wait (20 s at most) until process $1 listens on port $2 — it, not another test's server on the
# same port; fails at once when the process has ended.
_wait_listening() {
    local i
    for ((i = 0; i < 400; i++)); do
        ss -Hltnp "sport = :$2" | grep -q "pid=$1," && return 0
        kill -0 "$1" 2>/dev/null || return 1
        sleep 0.05
    done
    return 1
}

reg_stop() {
    kill "$REG_PID" 2>/dev/null || true
    wait "$REG_PID" 2>/dev/null || true
    t_wait_for 400 eval "! _reg_listening $REG_PORT" || true
}

reg_restart() {
    reg_stop
    _reg_launch --same-port
}

reg_ca() { echo "$REG_DIR/certs/ca.crt"; }

# The registry's access log, for counting what a client fetched: reg_log_lines now, then after the
# client ran, reg_log_since MARK (the lines after it); reg_range_bytes MARK BLOB the bytes of 206
# (Range) answers for BLOB after MARK, reg_blob_bytes MARK BLOB of 200 and 206 answers, and
# reg_whole_gets MARK BLOB the number of whole (200) downloads of it.
reg_log_lines() { wc -l <"$REG_DIR/log"; }
reg_log_since() { tail -n +$(($1 + 1)) "$REG_DIR/log"; }
reg_range_bytes() { reg_log_since "$1" | awk -v b="$2" 'index($0, b) && $9 == 206 {s += $10} END {print s + 0}'; }
reg_blob_bytes() { reg_log_since "$1" | awk -v b="$2" 'index($0, b) && ($9 == 200 || $9 == 206) {s += $10} END {print s + 0}'; }
reg_whole_gets() { reg_log_since "$1" | awk -v b="$2" 'index($0, b) && $9 == 200' | wc -l; }

HPID=""
hostile() {
    local mode=$1
    shift
    [[ -n $HPID ]] && { kill "$HPID" 2>/dev/null || true; wait "$HPID" 2>/dev/null || true; }
    HLOG=$T/hostile-$mode.log
    local try
    for try in 1 2 3 4 5; do
        HPORT=$(t_free_port)
        python3 "$TOP/tests/registry_hostile.py" --port "$HPORT" --layout "$T/layout" --mode "$mode" \
            --log "$HLOG" "$@" 2>>"$T/hostile.err" &
        HPID=$!
        t_cleanup "kill $HPID 2>/dev/null"
        _wait_listening "$HPID" "$HPORT" && break
        kill "$HPID" 2>/dev/null || true
        wait "$HPID" 2>/dev/null || true
        HPID=""
    done
    [[ -n $HPID ]] || t_fail "the hostile registry did not start ($mode)"
    H=127.0.0.1:$HPORT
}

# The token server: tests/token_server.py, RS256 tokens signed with a key made here.
_reg_token_start() {
    local user=$1 pass=$2 d=$REG_DIR/token port
    mkdir -p "$d"
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=imgfs test token issuer" \
        -keyout "$d/key.pem" -out "$d/cert.pem" 2>/dev/null
    port=$(t_free_port)
    python3 "$TOP/tests/token_server.py" --port "$port" --key "$d/key.pem" --cert "$d/cert.pem" \
        --issuer imgfs-test-issuer --service imgfs-test-registry ${user:+--user "$user" --password "$pass"} \
        --log "$d/requests.log" >>"$d/server.log" 2>&1 &
    REG_TOKEN_PID=$!
    t_cleanup "kill $REG_TOKEN_PID 2>/dev/null; wait $REG_TOKEN_PID 2>/dev/null"
    REG_TOKEN_URL=http://127.0.0.1:$port/token
    if ! t_wait_for 400 _reg_listening "$port"; then
        cat "$d/server.log" >&2
        t_fail "the token server did not start"
        return 1
    fi
}

# skopeo against the test registry: plain HTTP, or TLS with the test CA (certificates directory)
reg_skopeo() { skopeo --insecure-policy "$@"; }
reg_tls_args() { # args for skopeo copy/inspect to a registry started with --tls
    mkdir -p "$REG_DIR/certs.d"
    cp "$REG_DIR/certs/ca.crt" "$REG_DIR/certs.d/ca.crt"
    echo "--cert-dir=$REG_DIR/certs.d"
}

# push_digest ARGS...: `imgfs push ARGS`, printing only the pushed manifest's digest, from its last
# line ("TAG: digest: sha256:... size: N"; -q prints the reference, as Docker's)
push_digest() { "$IMGFS" push "$@" | awk '/: digest: sha256:/ {d = $3} END {print d}'; }
