#!/bin/bash
# import --change sets a rootfs image's config the way `docker import --change` does.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
t_begin import_change
t_need_fixture busybox.tar

t_check "import with changes" "$IMGFS" import -q -t app \
    -c 'ENTRYPOINT ["/bin/busybox"]' -c 'CMD ["httpd", "-f"]' -c 'ENV A=1 B="two words"' \
    -c 'ENV C 3' -c 'EXPOSE 8080 53/udp' -c 'WORKDIR /srv' -c 'USER app' -c 'LABEL k=v' \
    -c 'STOPSIGNAL SIGINT' -c 'VOLUME /data' "$FIXTURES/busybox.tar"
cfg=$("$IMGFS" inspect --json app | jq -c '.[0].Config.config')
t_eq "Entrypoint" '["/bin/busybox"]' "$(jq -c .Entrypoint <<<"$cfg")"
t_eq "Cmd" '["httpd","-f"]' "$(jq -c .Cmd <<<"$cfg")"
t_eq "Env keeps PATH and adds A, B, C" \
    '["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin","A=1","B=two words","C=3"]' \
    "$(jq -c .Env <<<"$cfg")"
t_eq "ExposedPorts" '["53/udp","8080/tcp"]' "$(jq -c '.ExposedPorts | keys' <<<"$cfg")"
t_eq "WorkingDir" '"/srv"' "$(jq -c .WorkingDir <<<"$cfg")"
t_eq "User" '"app"' "$(jq -c .User <<<"$cfg")"
t_eq "Labels" '{"k":"v"}' "$(jq -c .Labels <<<"$cfg")"
t_eq "StopSignal" '"SIGINT"' "$(jq -c .StopSignal <<<"$cfg")"
t_eq "Volumes" '["/data"]' "$(jq -c '.Volumes | keys' <<<"$cfg")"

t_check "shell form" "$IMGFS" import -q -t sh -c 'CMD echo hello world' "$FIXTURES/busybox.tar"
t_eq "shell form runs through /bin/sh -c" '["/bin/sh","-c","echo hello world"]' \
    "$("$IMGFS" inspect --json sh | jq -c '.[0].Config.config.Cmd')"

for bad in 'FROM debian' 'EXPOSE http' 'WORKDIR relative' 'CMD' 'ENV NOVALUE'; do
    out=$("$IMGFS" import -t bad -c "$bad" "$FIXTURES/busybox.tar" 2>&1) && rc=0 || rc=$?
    t_check "--change '$bad' is refused" test "$rc" -ne 0
    t_check "  and the error quotes it" grep -qF -- "$bad" <<<"$out"
done
t_check_fails "no image named bad was made" "$IMGFS" inspect bad
t_end
