#!/bin/bash
# imgfs build: RUN and the metadata instructions as Docker (BuildKit) does them — ARG scoping
# (before FROM only in FROM lines; `ARG BAR=` vs bare `ARG FOO`; build args in RUN's environment
# but not in the image's config), ENV winning over ARG, `${FOO:?msg}` failing, heredocs (indent
# removal, quoted delimiter), SHELL applying to shell-form ENTRYPOINT, ENTRYPOINT clearing an
# inherited CMD, EXPOSE expansion, WORKDIR owned by the USER, RUN --mount=type=tmpfs not
# persisting, type=cache (id defaulting to the target, owner/mode, kept across builds, an escaping
# source refused), type=secret never in a layer, the history or the cache key; a failing RUN
# (output, FILE:LINE, exit code, nothing named, nothing left mounted); --no-cache.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
t_begin build_run
t_need_fixture busybox.tar
"$IMGFS" import -t busybox:latest "$FIXTURES/busybox.tar" >/dev/null

t_build_setup # $M, build ARGS..., mnt IMAGE (tests/lib.sh)
cfg() { "$IMGFS" inspect --json "$1" | jq -c ".[0].Config.config.$2"; }
C=$T/ctx
mkdir -p "$C"

# ---- ARG and ENV ----
cat >"$C/Dockerfile" <<'EOF'
ARG BASE=busybox
ARG ONLYFROM=meta
FROM ${BASE}:latest
ARG FOO
ARG BAR=
ARG BAZ=default
ARG BASE
ENV BAZ=fromenv
RUN echo "onlyfrom=[${ONLYFROM:-unset}] base=[$BASE]" >/args; env | sort >/env.txt
RUN echo "baz=$BAZ" >>/args
EXPOSE ${PORT:-8080} 9000-9001/udp
SHELL ["/bin/sh", "-xc"]
ENTRYPOINT echo hi
EOF
build --build-arg BAR=given -t args "$C" && rc=0 || rc=$?
t_eq "the ARG Dockerfile builds" 0 "$rc"
((rc == 0)) || cat "$T/build.log"
mnt args
t_eq "a meta ARG is only for FROM; redeclared it has its value" \
    "onlyfrom=[unset] base=[busybox]" "$(head -1 "$M/args")"
t_eq "ENV wins over the ARG of the same name" "baz=fromenv" "$(tail -1 "$M/args")"
t_check "a build arg is in RUN's environment" grep -qx "BAR=given" "$M/env.txt"
t_check_fails "bare ARG FOO without a value is not in the environment" grep -q "^FOO=" "$M/env.txt"
"$IMGFS" umount "$M"
t_check_fails "build args are not in the image's Env" grep -q "BAR" <<<"$(cfg args Env)"
t_eq "EXPOSE expands variables and ranges" '{"8080/tcp":{},"9000/udp":{},"9001/udp":{}}' \
    "$(cfg args ExposedPorts)"
t_eq "SHELL applies to a shell-form ENTRYPOINT" '["/bin/sh","-xc","echo hi"]' \
    "$(cfg args Entrypoint)"

printf 'FROM busybox:latest\nENV x=1\nWORKDIR /${NOPE:?you must set NOPE}\n' >"$C/Dockerfile"
build -t needs "$C" && rc=0 || rc=$?
t_check '${FOO:?msg} fails the build' test "$rc" -ne 0
t_check '... with the message and the line' grep -q "Dockerfile:3.*NOPE: you must set NOPE" "$T/build.log"

# ENTRYPOINT clears an inherited CMD; a CMD in the same stage stays
printf 'FROM busybox:latest\nCMD ["base-cmd"]\n' >"$C/Dockerfile"
build -t withcmd "$C"
printf 'FROM withcmd\nENTRYPOINT ["/bin/true"]\n' >"$C/Dockerfile"
build -t child "$C"
t_eq "ENTRYPOINT clears the inherited CMD" "null" "$(cfg child Cmd)"
printf 'FROM withcmd\nCMD ["mine"]\nENTRYPOINT ["/bin/true"]\n' >"$C/Dockerfile"
build -t child2 "$C"
t_eq "a CMD of the same stage stays" '["mine"]' "$(cfg child2 Cmd)"

# ---- heredocs, WORKDIR owned by USER ----
cat >"$C/Dockerfile" <<'EOF'
FROM busybox:latest
ENV GREETING=hello
RUN <<-EOT
	echo "$GREETING from a heredoc" >/h1
	echo indented >>/h1
	EOT
RUN <<'EOT' cat >/h2
literal $GREETING
EOT
USER app
WORKDIR /home/app/work
RUN touch mine
EOF
build -t heredoc "$C" && rc=0 || rc=$?
t_eq "the heredoc Dockerfile builds" 0 "$rc"
((rc == 0)) || cat "$T/build.log"
mnt heredoc
t_eq "<<- strips tabs and the shell expands" "hello from a heredoc|indented" \
    "$(tr '\n' '|' <"$M/h1" | sed 's/|$//')"
t_eq "a quoted delimiter keeps \$ literal" 'literal $GREETING' "$(cat "$M/h2")"
t_eq "WORKDIR is made owned by USER" "1000:1000" "$(stat -c %u:%g "$M/home/app/work")"
t_eq "RUN runs as USER in WORKDIR" "1000" "$(stat -c %u "$M/home/app/work/mine")"
"$IMGFS" umount "$M"

# ---- RUN --mount ----
echo "s3cr3t-value" >"$T/secret.txt"
cat >"$C/Dockerfile" <<'EOF'
FROM busybox:latest
RUN --mount=type=tmpfs,target=/scratch echo temp >/scratch/t && test -f /scratch/t
RUN --mount=type=cache,target=/cache,uid=1000,gid=1000,mode=0750 \
    stat -c '%u:%g %a' /cache >/cache-owner && date +%s%N >>/cache/runs && wc -l </cache/runs >/cache-count
RUN --mount=type=secret,id=tok cat /run/secrets/tok | wc -c >/secret-len
EOF
build --secret id=tok,src="$T/secret.txt" -t mounts "$C" && rc=0 || rc=$?
t_eq "the mount Dockerfile builds" 0 "$rc"
((rc == 0)) || cat "$T/build.log"
mnt mounts
t_check_fails "a tmpfs mount leaves nothing in the image" test -e "$M/scratch/t"
t_check_fails "... not even its mount point" test -e "$M/scratch"
t_eq "the cache mount has its uid/gid/mode" "1000:1000 750" "$(cat "$M/cache-owner")"
t_check_fails "the cache's content is not in the image" test -e "$M/cache/runs"
t_eq "the secret was readable by RUN" "13" "$(tr -d ' ' <"$M/secret-len")"
t_check_fails "the secret's mount point is not in the image" test -e "$M/run/secrets"
"$IMGFS" umount "$M"
t_check_fails "the secret is in no layer" \
    bash -c "'$IMGFS' export -f docker mounts | tar -xOf - --wildcards '*/layer.tar' | tar -xOf - | grep -q s3cr3t"
t_check_fails "the secret is not in the history" bash -c "'$IMGFS' inspect --json mounts | grep -q s3cr3t"
# the cache mount survives: --no-cache runs the step again, and it sees the first run's file
build --no-cache --secret id=tok,src="$T/secret.txt" -t mounts2 "$C" && rc=0 || rc=$?
t_eq "--no-cache rebuild" 0 "$rc"
t_check "--no-cache ran the steps again" test "$(grep -c '^#[0-9]* CACHED' "$T/build.log")" -eq 0
mnt mounts2
t_eq "the cache mount kept the first build's content" "2" "$(tr -d ' ' <"$M/cache-count")"
"$IMGFS" umount "$M"
# a different secret value does not change the cache key
echo "other-value!" >"$T/secret.txt"
build --secret id=tok,src="$T/secret.txt" -t mounts3 "$C"
t_check "a secret's content is not in the cache key" grep -q '^#4 CACHED' "$T/build.log"
# cache id defaults to the target: another Dockerfile with the same target shares it
printf 'FROM busybox:latest\nRUN --mount=type=cache,target=/cache wc -l </cache/runs >/seen\n' >"$C/Dockerfile"
build -t cacheid "$C"
mnt cacheid
t_eq "a cache mount's id defaults to its target" "2" "$(tr -d ' ' <"$M/seen")"
"$IMGFS" umount "$M"
printf 'FROM busybox:latest\nRUN --mount=type=cache,target=/c,source=../../etc true\n' >"$C/Dockerfile"
build -t badsrc "$C" && rc=0 || rc=$?
t_check "a cache source= that climbs out is refused" test "$rc" -ne 0
t_check "... saying so" grep -q "escapes the cache directory" "$T/build.log"

# ---- what RUN runs on: the earlier steps' layers as the image has them ----
# (stacked as overlay lowers, lowers.c: an earlier RUN's upper directory, COPY and WORKDIR layers
# written out, parents a layer does not list taken from below, deletions as whiteouts)
mkdir -p "$C/sub"
echo hello >"$C/sub/f"
cat >"$C/Dockerfile" <<'EOF'
FROM busybox:latest
RUN mkdir -p /srv/a && chmod 1750 /srv /srv/a && chown 12:34 /srv/a && echo x >/srv/a/old && echo x >/etc/keep && touch /late
COPY sub /srv/a/b/
RUN rm /srv/a/old /etc/keep && ln -s a /srv/link
WORKDIR /srv/a/b/c
COPY sub/f deeper/
RUN stat -c '%n %a %u:%g' /srv /srv/a /srv/a/b /srv/a/b/f /srv/a/b/c /srv/a/b/c/deeper/f >/seen; ls /srv/a >>/seen; ls /etc/keep >>/seen 2>&1; readlink /srv/link >>/seen; stat -c %Y /late >/late-mtime
EOF
SOURCE_DATE_EPOCH=1000000000 build -t stacked "$C" && rc=0 || rc=$?
t_eq "the stacked Dockerfile builds" 0 "$rc"
((rc == 0)) || cat "$T/build.log"
mnt stacked
expect=$(
    cd "$M"
    stat -c '/%n %a %u:%g' srv srv/a srv/a/b srv/a/b/f srv/a/b/c srv/a/b/c/deeper/f
)
t_eq "RUN sees the modes and owners of parents a COPY layer does not list, as the image has them" \
    "$expect" "$(head -6 "$M/seen")"
t_eq "... which are the first RUN's" "/srv 1750 0:0|/srv/a 1750 12:34" \
    "$(head -2 "$M/seen" | paste -sd'|')"
t_eq "a file an earlier RUN deleted is gone for the next RUN" "b" "$(sed -n 7p "$M/seen")"
t_check "... in another directory too" grep -q "/etc/keep: No such file or directory" "$M/seen"
t_eq "an earlier RUN's symlink is there" "a" "$(tail -1 "$M/seen")"
t_eq "an earlier RUN's files have their clamped SOURCE_DATE_EPOCH times for the next RUN" \
    "1000000000" "$(cat "$M/late-mtime")"
"$IMGFS" umount "$M"
t_eq "no step directory is left after the build" "" "$(ls "$IMGFS_ROOT/tmp")"

# ---- a failing RUN ----
printf 'FROM busybox:latest\nRUN echo before\nRUN echo "the output"; exit 3\nRUN echo never\n' >"$C/Dockerfile"
build -t failing "$C" && rc=0 || rc=$?
t_eq "a failing RUN fails the build (exit 1)" 1 "$rc"
t_check "its output is shown" grep -q "the output" "$T/build.log"
t_check "the error names FILE:LINE" grep -q "Dockerfile:3" "$T/build.log"
t_check "... and the exit code" \
    grep -q 'process "/bin/sh -c echo \\"the output\\"; exit 3" did not complete successfully: exit code: 3\|did not complete successfully: exit code: 3' \
    "$T/build.log"
t_check_fails "the later step did not run" grep -q "never" <(grep '^#[0-9]* [0-9.]* ' "$T/build.log")
t_check_fails "no image is tagged" "$IMGFS" inspect failing
t_eq "no mount is left" "" "$(grep -F " $IMGFS_RUN_DIR/" /proc/mounts || true)"
t_eq "no container is left" "" "$("$IMGFS" ps -a -q)"
t_eq "no step directory is left" "" "$(ls "$IMGFS_ROOT/tmp")"
t_eq "no intermediate image is named" "" \
    "$("$IMGFS" images --json | jq -r '.[].Name | select(startswith("sha256:"))')"
t_check "the store is consistent" "$IMGFS" fsck
t_end
