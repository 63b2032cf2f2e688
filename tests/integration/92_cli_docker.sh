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

# the oracle's overlay2 fails a start now and then under load ("OCI runtime create failed ...
# exec: "sh": executable file not found", 86_build_docker): Docker's runs get three tries
Dretry() { # Dretry NAME ARGS...: `D ARGS` (a run --name NAME), again after such a failure
    local name=$1 try rc
    shift
    for try in 1 2 3; do
        rc=0
        D "$@" 2>"$T/dretry.err" || rc=$?
        grep -q 'OCI runtime create failed' "$T/dretry.err" || { cat "$T/dretry.err" >&2; return $rc; }
        D rm -f "$name" >/dev/null 2>&1 || true
    done
    return $rc
}
tool_run() { # tool_run TOOL NAME ARGS...: TOOL run --name NAME ARGS, Docker's retried
    local tool=$1 name=$2
    shift 2
    if [[ $tool == D ]]; then Dretry "$name" run --name "$name" "$@"; else "$tool" run --name "$name" "$@"; fi
}
for tool in D "$IMGFS"; do
    tool_run $tool svc -d --network none -e FOO=bar -w /tmp busybox sh -c 'exec sleep 1000' >/dev/null
    tool_run $tool done --network none busybox sh -c 'exit 3' || true
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
    tool_run $tool chg --network none busybox sh -c 'echo x >/newf; rm /etc/group; mkdir -p /tmp/a/b; echo y >>/etc/passwd' >/dev/null
done
both diff chg
t_eq "diff: A, C and D as Docker's" "$(sort <<<"$d")" "$(sort <<<"$i")"
t_check "  ... not empty" grep -q "^D /etc/group$" <<<"$i"
for tool in D "$IMGFS"; do # a directory replaced whole: overlayfs's opaque directory
    tool_run $tool redo --network none busybox \
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

# ---- save of several images, load, image prune -a (busybox is used by containers: Docker
# untags its names but the last, bb:2 < busybox:latest, whose untag the container refuses) ----
t_need_fixture tree.tar
"$IMGFS" import -q -t tree:1 "$FIXTURES/tree.tar"
"$IMGFS" tag busybox bb:2
"$IMGFS" save -o "$T/multi.tar" busybox tree:1 bb:2
d=$(D load -i "$T/multi.tar")
t_eq "docker load of imgfs's save A B C: the lines imgfs load prints" "$d" \
    "$(IMGFS_ROOT="$T/store2" "$IMGFS" load -i "$T/multi.tar")"
t_eq "  ... the same image IDs in Docker" \
    "$("$IMGFS" inspect -f '{{.Id}}' tree:1) $("$IMGFS" inspect -f '{{.Id}}' bb:2)" \
    "$(D inspect -f '{{.Id}}' tree:1) $(D inspect -f '{{.Id}}' bb:2)"
t_eq "  ... and the same files" "$(D run --rm --network none bb:2 md5sum /bin/busybox)" \
    "$("$IMGFS" run --rm --network none bb:2 md5sum /bin/busybox)"
t_eq "images CreatedAt: the config's time (Go's zero time without one), as Docker's" \
    "$(D images --format '{{.Repository}}:{{.Tag}} {{.CreatedAt}}' | sort)" \
    "$("$IMGFS" images --format '{{.Repository}}:{{.Tag}} {{.CreatedAt}}' | sort)"
t_eq "images CREATED of an image whose config has no time: N/A in the table, as Docker's" \
    "$(D images busybox | awk 'NR == 2 {print $4}')" "$("$IMGFS" images busybox | awk 'NR == 2 {print $4}')"
D save -o "$T/dmulti.tar" tree:1 bb:2 busybox
t_eq "docker save A B C: imgfs load says what docker load says (in its order)" \
    "$(D load -i "$T/dmulti.tar" | sort)" "$(IMGFS_ROOT="$T/store3" "$IMGFS" load -i "$T/dmulti.tar" | sort)"
t_eq "  ... and has the images" "$(D inspect -f '{{.Id}}' tree:1)" \
    "$(IMGFS_ROOT="$T/store3" "$IMGFS" inspect -f '{{.Id}}' tree:1)"
for verb in "image prune -a" "image prune" "container prune" "volume prune"; do
    t_eq "$verb answered no: Docker's warning and total" "$(echo n | D $verb 2>&1)" \
        "$(echo n | "$IMGFS" $verb 2>&1)"
done
# Docker lists the layers it deleted after the image ID and counts their bytes; imgfs frees
# chunks no image shares: the names and the image ID are compared
dr=$(D image prune -a -f)
ir=$("$IMGFS" image prune -a -f)
d=$(grep -v '^deleted: sha256:' <<<"$dr" | sed 's/^Total reclaimed space: .*/Total/')
i=$(grep -v '^deleted: sha256:' <<<"$ir" | sed 's/^Total reclaimed space: .*/Total/')
t_eq "image prune -a -f: the names removed, as Docker" "$(sort <<<"$d")" "$(sort <<<"$i")"
t_check "  ... tree:1 among them" grep -qx "untagged: tree:1" <<<"$i"
t_eq "  ... the image ID deleted is the one Docker deletes first" \
    "$(grep -m1 '^deleted: ' <<<"$dr")" "$(grep '^deleted: ' <<<"$ir")"
t_eq "  ... the images left" "$(D images --format '{{.Repository}}:{{.Tag}} {{.ID}}' | sort)" \
    "$("$IMGFS" images --format '{{.Repository}}:{{.Tag}} {{.ID}}' | sort)"
for tool in D "$IMGFS"; do $tool rm -f svc2 done >/dev/null; done
t_end
