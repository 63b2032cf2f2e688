#!/bin/bash
# Docker as the oracle for the container verbs and formats (issue 9, sections 1 and 3): the same
# busybox image and the same commands in a private dockerd (--network none) and in imgfs, and
# the outputs Docker users script against compared.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
t_begin cli_docker
t_need_fixture busybox.tar
"$IMGFS" import -q -t busybox "$FIXTURES/busybox.tar"
t_check "a private dockerd" t_dockerd
"$IMGFS" export -f docker -o "$T/bb.tar" busybox
D load -i "$T/bb.tar" >/dev/null
t_cleanup "'$IMGFS' ps -aq | xargs -r '$IMGFS' rm -f"
both() { # both ARGS...: the same verb in docker and imgfs, outputs in $d and $i
    d=$(D "$@" 2>&1) || d="$d [exit $?]"
    i=$("$IMGFS" "$@" 2>&1) || i="$i [exit $?]"
}

for tool in D "$IMGFS"; do
    $tool run -d --network none --name svc -e FOO=bar -w /tmp busybox sh -c 'exec sleep 1000' >/dev/null
    $tool run --network none --name done busybox sh -c 'exit 3' || true
done
t_check "both run" t_wait_for 200 sh -c "'$IMGFS' ps -q | grep -q ."

tmpl='{{.Name}} {{.State.Status}} {{.State.Running}} {{.State.ExitCode}} {{.Config.WorkingDir}} {{.Path}} {{json .Args}} {{.Config.Image}}'
both inspect -f "$tmpl" svc
t_eq "inspect -f of a running container" "$d" "$i"
both inspect -f "$tmpl" done
t_eq "inspect -f of an exited one" "$d" "$i"
both inspect -f '{{index .Config.Env 0}}' svc
t_eq "index into Config.Env (-e first)" "$d" "$i"
both inspect -f '{{range .Config.Env}}{{if .}}[{{.}}]{{end}}{{end}}' svc
t_eq "range and if over Config.Env" "$d" "$i"
both inspect -f '{{.State.Pid}}' done
t_eq "State.Pid of an exited container" "$d" "$i"
both inspect -f '{{json .Config.ExposedPorts}} {{.HostConfig.NetworkMode}}' svc
t_eq "ExposedPorts and NetworkMode" "$d" "$i"
both inspect nosuch
t_eq "a missing object: the exit status" "$(grep -o '\[exit [0-9]*\]' <<<"$d")" "$(grep -o '\[exit [0-9]*\]' <<<"$i")"
t_check "and Docker's words" grep -q "No such object: nosuch" <<<"$i"

# a field Docker's value does not have is an error (exit 1), a Go map's missing key <no value>
status() { grep -o '\[exit [0-9]*\]$' <<<"$1" || echo "[exit 0]"; }
refused() { # refused ARGS...: Docker's exit status, and no <no value> printed
    both "$@"
    t_eq "\`$*\`: Docker's exit status" "$(status "$d")" "$(status "$i")"
    t_check "  ... not <no value>" bash -c '! grep -q "<no value>" <<<"$0"' "$i"
}
refused inspect -f '{{.Nope}}' svc
refused inspect -f '{{.State.Nope}}' svc
refused inspect -f '{{.Name.Foo}}' svc
refused inspect -f '{{.Config.Nope}}' busybox
refused ps --format '{{.Nope}}'
refused ps --format 'table {{.Names}}\t{{.Nope}}'
refused ps -f name=none --format '{{.Nope}}'
refused images --format '{{.Nope}}'
t_check "  ... and words Docker's have" grep -q 'map has no entry for key "Nope"' <<<"$("$IMGFS" inspect -f '{{.Nope}}' svc 2>&1)"
for tmpl in '{{.Config.Labels.nokey}}' '{{index .Config.Labels "nokey"}}' '{{.NetworkSettings.Networks.nokey}}'; do
    both inspect -f "$tmpl" svc
    t_eq "inspect -f '$tmpl': a missing map key, as Docker's" "$d" "$i"
done
both ps -a --format '{{.LocalVolumes}}'
t_eq "ps's LocalVolumes" "$d" "$i"

# history (the config's history[]) and diff (the writable layer, whiteouts as D)
both history --format '{{.ID}}|{{.CreatedBy}}|{{.Comment}}' busybox
t_eq "history --format" "$d" "$i"
t_eq "history's header" "$(D history busybox | head -1 | tr -s ' ')" "$("$IMGFS" history busybox | head -1 | tr -s ' ')"
both history nosuch
t_eq "history of a missing image: the exit status" "$(status "$d")" "$(status "$i")"
for tool in D "$IMGFS"; do
    $tool run --network none --name chg busybox sh -c 'echo x >/newf; rm /etc/group; mkdir -p /tmp/a/b; echo y >>/etc/passwd' >/dev/null
done
both diff chg
t_eq "diff: A, C and D as Docker's" "$(sort <<<"$d")" "$(sort <<<"$i")"
t_check "  ... not empty" grep -q "^D /etc/group$" <<<"$i"
for tool in D "$IMGFS"; do # a directory replaced whole: overlayfs's opaque directory
    $tool run --network none --name redo busybox \
        sh -c 'rm -rf /home /usr && mkdir -p /home/app /home/z /usr/bin && touch /home/app/f /usr/bin/awk /usr/x' >/dev/null
done
both diff redo
t_eq "diff of replaced directories: C/A/D as Docker's" "$(sort <<<"$d")" "$(sort <<<"$i")"
t_check "  ... with what they hid" grep -q "^D /usr/bin/wget$" <<<"$i"
both container diff nosuch
t_eq "diff of a missing container: the exit status" "$(status "$d")" "$(status "$i")"

both ps -a --format '{{.Names}} {{.State}} {{.Image}} {{.Command}}'
t_eq "ps -a --format" "$(sort <<<"$d")" "$(sort <<<"$i")"
both ps --format 'table {{.Names}}\t{{.State}}'
t_eq "ps --format table" "$d" "$i"
both ps -a -f status=exited --format '{{.Names}}'
t_eq "ps -f status=exited" "$d" "$i"
both ps -a -f name=sv --format '{{.Names}}'
t_eq "ps -f name=" "$d" "$i"
both ps -a -f ancestor=busybox --format '{{.Names}}'
t_eq "ps -f ancestor=" "$(sort <<<"$d")" "$(sort <<<"$i")"
t_eq "ps header" "$(D ps | head -1 | tr -s ' ')" "$("$IMGFS" ps | head -1 | tr -s ' ')"

both wait done
t_eq "wait of an exited container" "$d" "$i"
both rename svc svc2
t_eq "rename" "$d" "$i"
both inspect -f '{{.Name}}' svc2
t_eq "the new name" "$d" "$i"
both rename done svc2
t_eq "rename onto a taken name: exit status" "$(grep -o '\[exit [0-9]*\]' <<<"$d")" "$(grep -o '\[exit [0-9]*\]' <<<"$i")"
both port svc2
t_eq "port of a container without ports" "$d" "$i"
both top svc2 -o pid,comm
t_eq "top's header with ps options" "$(head -1 <<<"$d" | xargs)" "$(head -1 <<<"$i" | xargs)"
t_check "top lists the command" grep -q sleep <<<"$i"
t_eq "the container's Image is the image ID (config digest)" "$(D inspect -f '{{.Image}}' svc2)" \
    "$("$IMGFS" inspect -f '{{.Image}}' svc2)"
t_eq "images IMAGE ID: the config digest, as Docker's" "$(D images busybox --format '{{.ID}}')" \
    "$("$IMGFS" images busybox --format '{{.ID}}')"
t_eq "images -q" "$(D images -q busybox)" "$("$IMGFS" images -q busybox)"
short=$(D images -q busybox)
t_eq "ps -f ancestor=IMAGE-ID" "$(D ps -a -f "ancestor=$short" --format '{{.Names}}' | sort)" \
    "$("$IMGFS" ps -a -f "ancestor=$short" --format '{{.Names}}' | sort)"
both inspect -f '{{.Id}}' "${short:0:6}"
t_eq "inspect of an image ID prefix" "$d" "$i"
t_eq "images --format of the shared image" "$(D images busybox --format '{{.Repository}}:{{.Tag}}')" \
    "$("$IMGFS" images busybox --format '{{.Repository}}:{{.Tag}}')"
for tool in D "$IMGFS"; do $tool rm -f svc2 done >/dev/null; done
t_end
