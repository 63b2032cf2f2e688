#!/bin/bash
# imgfs build: RUN --mount beyond the basics — type=secret,env=NAME (the secret as a variable,
# never in a layer, the history, the config or the cache key), type=secret,required (an error
# when --secret does not give it), type=ssh (an agent socket forwarded with --ssh as BuildKit
# does: /run/buildkit/ssh_agent.N, SSH_AUTH_SOCK; a real ssh-agent answers through it;
# required=true without --ssh fails), type=bind,from=STAGE|IMAGE with source= (read-only, the
# stage's symlinks resolved inside it), rw binds (the writes gone after the step, the context
# untouched), type=cache,from=STAGE,source= (a new cache seeded from the stage, once).
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
t_begin build_mounts
t_need_fixture busybox.tar
"$IMGFS" import -t busybox:latest "$FIXTURES/busybox.tar" >/dev/null

t_build_setup # $M, build ARGS..., mnt IMAGE (tests/lib.sh)
C=$T/ctx
mkdir -p "$C"

# ---- secrets as environment variables ----
printf 'tok-%s' "s3cr3t" >"$T/secret.txt"
cat >"$C/Dockerfile" <<'EOF'
FROM busybox:latest
RUN --mount=type=secret,id=tok,env=TOKEN \
    echo "${#TOKEN}" >/len && echo "$TOKEN" | tr a-z A-Z >/upper && \
    { test -e /run/secrets/tok && echo file >/file || true; }
RUN --mount=type=secret,id=tok,env=ALSO,target=/run/secrets/both \
    test "$ALSO" = "$(cat /run/secrets/both)" && echo both >/both
RUN env >/env-after
EOF
build --secret id=tok,src="$T/secret.txt" -t envsecret "$C" && rc=0 || rc=$?
t_eq "a secret as env builds" 0 "$rc"
((rc == 0)) || cat "$T/build.log"
mnt envsecret
t_eq "RUN saw the secret in its variable" "TOK-S3CR3T" "$(cat "$M/upper" 2>/dev/null)"
t_eq "... all of it" "10" "$(cat "$M/len")"
t_check_fails "env= alone mounts no file (BuildKit)" test -e "$M/file"
t_eq "env= with a target gives both" "both" "$(cat "$M/both" 2>/dev/null)"
t_check_fails "the variable is gone in the next RUN" grep -q "TOKEN\|ALSO" "$M/env-after"
"$IMGFS" umount "$M"
t_check_fails "the secret is in no layer (but the upper-cased copy RUN wrote)" \
    bash -c "'$IMGFS' export -f docker envsecret | tar -xOf - --wildcards '*/layer.tar' | tar -xOf - | grep -q s3cr3t"
t_check_fails "... nor in the config or history" \
    bash -c "'$IMGFS' inspect --json envsecret | grep -q s3cr3t"
printf 'tok-%s' "other1" >"$T/secret.txt"
build --secret id=tok,src="$T/secret.txt" -t envsecret2 "$C"
t_check "its value is not in the cache key (a new value: cached)" grep -q '^#2 CACHED' "$T/build.log"

# ---- required secrets ----
printf 'FROM busybox:latest\nRUN --mount=type=secret,id=missing,required cat /run/secrets/missing\n' \
    >"$C/Dockerfile"
build -t noreq "$C" && rc=0 || rc=$?
t_eq "a required secret not given fails the build" 1 "$rc"
t_check "... naming the line and the secret" grep -q "Dockerfile:2: secret missing: not found" \
    "$T/build.log"
printf 'FROM busybox:latest\nRUN --mount=type=secret,id=missing test ! -e /run/secrets/missing\n' \
    >"$C/Dockerfile"
build -t optional "$C" && rc=0 || rc=$?
t_eq "an optional secret not given is simply absent" 0 "$rc"

# ---- bind and cache mounts from a stage or an image ----
echo orig >"$C/f"
cat >"$C/Dockerfile" <<'EOF'
FROM busybox:latest AS tools
RUN mkdir -p /opt/tool && echo tool-v1 >/opt/tool/version && ln -s /opt/tool /opt/link
FROM busybox:latest
RUN --mount=type=bind,from=tools,source=/opt/tool,target=/t \
    cat /t/version >/from-stage && { touch /t/x 2>/dev/null && echo writable || echo read-only; } >/ro
RUN --mount=type=bind,from=tools,source=opt/link,target=/l cat /l/version >/via-link
RUN --mount=type=bind,from=busybox:latest,source=/bin/busybox,target=/bb \
    cmp /bb /bin/busybox && echo same >/from-image
RUN --mount=type=bind,from=tools,source=/opt/tool,target=/t,rw \
    echo changed >/t/version && cat /t/version >/rw-saw
RUN --mount=type=bind,from=tools,source=/opt/tool,target=/t cat /t/version >/after-rw
RUN --mount=type=bind,source=.,target=/ctx,rw echo scribble >/ctx/f && cat /ctx/f >/ctx-rw
RUN --mount=type=cache,id=seeded,target=/c,from=tools,source=/opt/tool \
    cat /c/version >/seeded && echo more >>/c/version
RUN --mount=type=cache,id=seeded,target=/c,from=tools,source=/opt/tool cat /c/version >/seeded2
EOF
build -t fromstage "$C" && rc=0 || rc=$?
t_eq "bind and cache mounts from a stage build" 0 "$rc"
((rc == 0)) || cat "$T/build.log"
mnt fromstage
t_eq "a bind from a stage sees its files" "tool-v1" "$(cat "$M/from-stage")"
t_eq "... read-only" "read-only" "$(cat "$M/ro")"
t_eq "a source that is a symlink in the stage resolves inside it" "tool-v1" "$(cat "$M/via-link")"
t_eq "a bind from an image (source a file)" "same" "$(cat "$M/from-image" 2>/dev/null)"
t_eq "a rw bind is writable" "changed" "$(cat "$M/rw-saw")"
t_eq "... and its writes are gone after the step" "tool-v1" "$(cat "$M/after-rw")"
t_eq "a rw bind of the context is writable" "scribble" "$(cat "$M/ctx-rw")"
t_eq "... and the context is untouched" "orig" "$(cat "$C/f")"
t_eq "a new cache from a stage starts as its source" "tool-v1" "$(cat "$M/seeded")"
t_eq "... once: then it is a cache" "tool-v1|more" "$(paste -sd'|' "$M/seeded2")"
for p in t l bb ctx c; do
    t_check_fails "the mount point /$p is not in the image" test -e "$M/$p"
done
"$IMGFS" umount "$M"
printf 'FROM busybox:latest\nRUN --mount=type=bind,from=nosuchstage,target=/x true\n' >"$C/Dockerfile"
build -t badfrom "$C" && rc=0 || rc=$?
t_eq "a bind from nothing known fails" 1 "$rc"
t_check "... naming it" grep -q "Dockerfile:2: --mount from=nosuchstage: no such stage" "$T/build.log"
printf 'FROM busybox:latest AS s\nFROM busybox:latest\nRUN --mount=type=bind,from=s,source=/nope,target=/x true\n' >"$C/Dockerfile"
build -t badsrc "$C" && rc=0 || rc=$?
t_eq "a bind of a path the stage lacks fails" 1 "$rc"
t_check "... naming it" grep -q 'Dockerfile:3: --mount from=s: `/nope` not found' "$T/build.log"

# ---- ssh agent forwarding ----
if command -v ssh-agent >/dev/null && command -v ssh-keygen >/dev/null; then
    agent_dir=$T/agent
    mkdir -p "$agent_dir"
    eval "$(ssh-agent -a "$agent_dir/sock" -s)" >/dev/null
    t_cleanup "kill $SSH_AGENT_PID"
    ssh-keygen -q -t ed25519 -N '' -C imgfs-test-key -f "$T/key"
    ssh-add -q "$T/key" 2>/dev/null
    # the agent protocol by hand (busybox has no ssh): REQUEST_IDENTITIES (11), the answer is
    # IDENTITIES_ANSWER (12) with the key's comment in it
    cat >"$C/Dockerfile" <<'EOF'
FROM busybox:latest
RUN --mount=type=ssh \
    echo "$SSH_AUTH_SOCK" >/sock-path && test -S "$SSH_AUTH_SOCK" && echo socket >/is-socket
RUN --mount=type=ssh,id=other,required=true --mount=type=ssh,id=default \
    ls /run/buildkit >/agents && echo "$SSH_AUTH_SOCK" >/sock2
EOF
    build --ssh default --ssh other="$agent_dir/sock" -t sshok "$C" && rc=0 || rc=$?
    t_eq "RUN --mount=type=ssh builds with --ssh default" 0 "$rc"
    ((rc == 0)) || cat "$T/build.log"
    mnt sshok
    t_eq "SSH_AUTH_SOCK points at BuildKit's path" "/run/buildkit/ssh_agent.0" "$(cat "$M/sock-path")"
    t_eq "... which is the socket" "socket" "$(cat "$M/is-socket" 2>/dev/null)"
    t_eq "the N-th ssh mount of a RUN is ssh_agent.N" "ssh_agent.0 ssh_agent.1" \
        "$(tr '\n' ' ' <"$M/agents" | sed 's/ $//')"
    t_check_fails "the sockets are not in the image" test -e "$M/run/buildkit"
    "$IMGFS" umount "$M"
    if [[ -f $FIXTURES/debian.tar.gz ]]; then
        "$IMGFS" import -t debian:bookworm "$FIXTURES/debian.tar.gz" >/dev/null
        cat >"$C/Dockerfile" <<'EOF'
FROM debian:bookworm
RUN --mount=type=ssh perl - >/agent-answer <<'PERL'
use IO::Socket::UNIX;
my $s = IO::Socket::UNIX->new(Peer => $ENV{SSH_AUTH_SOCK}) or die "connect: $!";
print $s pack("NC", 1, 11);
read($s, my $h, 5) == 5 or die "short answer";
my ($len, $type) = unpack("NC", $h);
read($s, my $body, $len - 1);
print "type=$type\n", ($body =~ /imgfs-test-key/ ? "key seen\n" : "no key\n");
PERL
EOF
        build --ssh default -t sshtalk "$C" && rc=0 || rc=$?
        t_eq "a RUN talking to the forwarded agent builds" 0 "$rc"
        ((rc == 0)) || cat "$T/build.log"
        mnt sshtalk
        t_eq "the host's ssh-agent answered through the socket, with our key" \
            "type=12|key seen" "$(paste -sd'|' "$M/agent-answer")"
        "$IMGFS" umount "$M"
    else
        t_note "no debian fixture: the agent round trip is not checked"
    fi
    kill "$SSH_AGENT_PID"
    unset SSH_AUTH_SOCK SSH_AGENT_PID
else
    t_note "no ssh-agent: forwarding not checked"
fi
printf 'FROM busybox:latest\nRUN --mount=type=ssh,required=true true\n' >"$C/Dockerfile"
build -t sshreq "$C" && rc=0 || rc=$?
t_eq "type=ssh,required=true without --ssh fails" 1 "$rc"
t_check "... saying no key was forwarded" grep -q 'Dockerfile:2: no SSH key "default" forwarded' \
    "$T/build.log"
printf 'FROM busybox:latest\nRUN --mount=type=ssh test -z "$SSH_AUTH_SOCK"\n' >"$C/Dockerfile"
build -t sshopt "$C" && rc=0 || rc=$?
t_eq "an optional ssh mount without --ssh: no socket, no SSH_AUTH_SOCK" 0 "$rc"
"$IMGFS" build --ssh default "$C" >"$T/build.log" 2>&1 && rc=0 || rc=$?
t_eq "--ssh default without SSH_AUTH_SOCK is a usage error" 125 "$rc"
t_end
