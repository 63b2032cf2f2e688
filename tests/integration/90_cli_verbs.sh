#!/bin/bash
# Docker's container verbs (issue 9, section 1): inspect of containers (Docker's fields, templates),
# wait, rename — on real containers of the busybox fixture.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
t_begin cli_verbs
t_need_fixture busybox.tar
"$IMGFS" import -q -t busybox "$FIXTURES/busybox.tar"
t_cleanup "'$IMGFS' ps -aq | xargs -r '$IMGFS' rm -f"
fmt() { "$IMGFS" inspect -f "$1" "$2"; }

# ---- inspect of a running container ----
id=$("$IMGFS" run -d --network none --name web -e FOO=bar -w /tmp busybox \
    sh -c 'echo up; exec sleep 1000')
t_check "logs show it started" t_wait_for 200 sh -c "'$IMGFS' logs web | grep -q up"
json=$("$IMGFS" inspect web)
t_eq "a JSON array of one" 1 "$(jq length <<<"$json")"
t_eq "Id" "$id" "$(jq -r '.[0].Id' <<<"$json")"
t_eq "Name has Docker's slash" "/web" "$(jq -r '.[0].Name' <<<"$json")"
t_eq "Path" "sh" "$(jq -r '.[0].Path' <<<"$json")"
t_eq "Args" '["-c","echo up; exec sleep 1000"]' "$(jq -c '.[0].Args' <<<"$json")"
t_eq "State.Status" running "$(jq -r '.[0].State.Status' <<<"$json")"
t_eq "State.Running" true "$(jq -r '.[0].State.Running' <<<"$json")"
pid=$(jq -r '.[0].State.Pid' <<<"$json")
t_eq "State.Pid is the container's PID 1 seen from the host" 1 \
    "$(awk '/^NSpid:/ {print $NF}' "/proc/$pid/status")"
t_check "StartedAt is RFC 3339" grep -Eq '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z$' \
    <<<"$(jq -r '.[0].State.StartedAt' <<<"$json")"
t_eq "FinishedAt is Go's zero time while running" "0001-01-01T00:00:00Z" \
    "$(jq -r '.[0].State.FinishedAt' <<<"$json")"
image_id=$("$IMGFS" images --json | jq -r '.[0].Id')
t_eq "Image is the image ID (config digest), as Docker's" "$image_id" "$(jq -r '.[0].Image' <<<"$json")"
t_eq "... the one inspect -f {{.Id}} of the image gives" "$image_id" "$("$IMGFS" inspect -f '{{.Id}}' busybox)"
t_eq "Config.Image" busybox "$(jq -r '.[0].Config.Image' <<<"$json")"
t_check "Config.Env has -e" jq -e '.[0].Config.Env | index("FOO=bar")' <<<"$json"
t_eq "Config.WorkingDir" /tmp "$(jq -r '.[0].Config.WorkingDir' <<<"$json")"
t_eq "Config.Hostname is the short id" "${id:0:12}" "$(jq -r '.[0].Config.Hostname' <<<"$json")"
t_eq "HostConfig.NetworkMode" none "$(jq -r '.[0].HostConfig.NetworkMode' <<<"$json")"
t_eq "the hostname inside is Config.Hostname" "${id:0:12}" "$("$IMGFS" exec web hostname)"

# templates
t_eq "-f State.Status" running "$(fmt '{{.State.Status}}' web)"
t_eq "-f several fields and text" "/web is running (pid $pid)" \
    "$(fmt '{{.Name}} is {{.State.Status}} (pid {{.State.Pid}})' web)"
t_eq "-f json .Config.WorkingDir" '"/tmp"' "$(fmt '{{json .Config.WorkingDir}}' web)"
t_eq "-f .Config.Env in Go's list form" \
    "$(jq -r '"[" + (.[0].Config.Env | join(" ")) + "]"' <<<"$json")" "$(fmt '{{.Config.Env}}' web)"
t_eq "-f range" "FOO=bar;" "$(fmt '{{range .Config.Env}}{{.}};{{end}}' web | grep -o 'FOO=bar;')"
t_eq "a template Go cannot parse exits 64, as Docker's inspect" 64 \
    "$(set +e; fmt '{{.State.Status' web >/dev/null 2>&1; echo $?)"
t_eq "one outside imgfs's subset is a usage error" 125 \
    "$(set +e; fmt '{{.State.Status | upper}}' web >/dev/null 2>&1; echo $?)"
t_check "and says where" sh -c "'$IMGFS' inspect -f '{{.Name' web 2>&1 | grep -q 'unclosed action'"
t_eq "--type image does not see containers" 1 \
    "$(set +e; "$IMGFS" inspect --type image web >/dev/null 2>&1; echo $?)"
t_eq "a missing object exits 1" 1 "$(set +e; "$IMGFS" inspect nosuch >/dev/null 2>&1; echo $?)"
t_check "with Docker's words" sh -c "'$IMGFS' inspect nosuch 2>&1 | grep -q 'No such object: nosuch'"

# image templates in Docker's shape: .Id is the config digest
cfg=$("$IMGFS" inspect --json busybox | jq -r '.[0].ConfigDigest')
t_eq "image {{.Id}} is the config digest" "$cfg" "$(fmt '{{.Id}}' busybox)"
t_eq "image {{.RepoTags}}" "[busybox:latest]" "$(fmt '{{.RepoTags}}' busybox)"
t_eq "image {{.Config.Env}}" "$("$IMGFS" inspect --json busybox | jq -r '"[" + (.[0].Config.config.Env | join(" ")) + "]"')" \
    "$(fmt '{{.Config.Env}}' busybox)"
t_eq "image {{.Os}}/{{.Architecture}}" linux/amd64 "$(fmt '{{.Os}}/{{.Architecture}}' busybox)"
t_eq "image bare word Digest still works" \
    "$("$IMGFS" inspect --json busybox | jq -r '.[0].Digest')" "$(fmt Digest busybox)"

# ---- rename ----
t_check "rename a running container" "$IMGFS" rename web web2
t_eq "the new name finds it" "$id" "$(fmt '{{.Id}}' web2)"
t_eq "the old one does not" 1 "$(set +e; "$IMGFS" inspect --type container web >/dev/null 2>&1; echo $?)"
other=$("$IMGFS" run -d --network none --name other busybox sleep 1000)
t_eq "renaming onto a taken name exits 1" 1 \
    "$(set +e; "$IMGFS" rename other web2 2>/dev/null; echo $?)"
t_check "with Docker's Conflict message" sh -c "'$IMGFS' rename other web2 2>&1 | grep -q Conflict"
t_eq "a bad name exits 1" 1 "$(set +e; "$IMGFS" rename other 'a b' 2>/dev/null; echo $?)"
t_check "the freed old name can be taken" "$IMGFS" rename other web
t_eq "rename with one argument: a usage error (requires 2 arguments)" 125 "$(set +e; "$IMGFS" rename web 2>/dev/null; echo $?)"

# ---- cp ----
"$IMGFS" run -d --network none --name files busybox sh -c \
    'mkdir -p /data/sub; echo hi > /data/a; echo deep > /data/sub/b; chmod 0751 /data/sub;
     ln -s /etc/passwd /data/link; ln -s / /escape; touch /ready; exec sleep 1000' >/dev/null
t_check "the container made its files" t_wait_for 200 "$IMGFS" exec files test -e /ready
mkdir "$T/out"
t_check "cp CTR:DIR HOSTDIR" "$IMGFS" cp files:/data "$T/out"
t_eq "into the directory, under its name" "deep" "$(cat "$T/out/data/sub/b")"
t_eq "modes kept" 751 "$(stat -c %a "$T/out/data/sub")"
t_eq "a symlink is copied as a link" /etc/passwd "$(readlink "$T/out/data/link")"
t_check "cp CTR:DIR/. NEW copies the contents" "$IMGFS" cp files:/data/. "$T/out2"
t_eq "contents" "a link sub" "$(ls "$T/out2" | xargs)"
t_check "cp CTR:FILE NEWNAME" "$IMGFS" cp files:/data/a "$T/renamed"
t_eq "the file" hi "$(cat "$T/renamed")"
echo from-host >"$T/h"
t_check "cp HOSTFILE CTR:DIR/" "$IMGFS" cp "$T/h" files:/data/
t_eq "the container sees it" from-host "$("$IMGFS" exec files cat /data/h)"
t_check "it went to the container's upper layer" \
    test -f "$IMGFS_RUN_DIR/containers/$(fmt '{{.Id}}' files)/upper/data/h"
marker=$(mktemp -u /tmp/imgfs-cp-escape.XXXXXX)
t_check "cp through a symlink to / stays in the container" \
    "$IMGFS" cp "$T/h" "files:/escape${marker}"
t_check_fails "nothing written on the host" test -e "$marker"
t_eq "it landed inside" from-host "$("$IMGFS" exec files cat "$marker")"
"$IMGFS" exec files hostname >"$T/want-hn"
t_check "cp CTR:/escape/etc/hostname reads the container's file" \
    "$IMGFS" cp files:/escape/etc/hostname "$T/hn"
t_eq "the container's hostname file" "$(cat "$T/want-hn")" "$(cat "$T/hn")"
t_eq "a missing source exits 1" 1 "$(set +e; "$IMGFS" cp files:/nope "$T/" 2>/dev/null; echo $?)"
t_eq "no container named: Docker's 1" 1 "$(set +e; "$IMGFS" cp "$T/h" "$T/h2" 2>/dev/null; echo $?)"
"$IMGFS" stop files >/dev/null
t_check "cp from the stopped container (98_cp_stopped has more)" "$IMGFS" cp files:/data/h "$T/x"
t_eq "its kept upper layer" from-host "$(cat "$T/x")"

# ---- wait ----
"$IMGFS" run -d --network none --name quick busybox sh -c 'sleep 0.3; exit 3' >/dev/null
t_eq "wait prints the exit code once it ends" 3 "$("$IMGFS" wait quick)"
t_eq "and it did end" exited "$(fmt '{{.State.Status}}' quick)"
t_eq "State.ExitCode" 3 "$(fmt '{{.State.ExitCode}}' quick)"
t_eq "wait on an exited container returns at once" 3 "$("$IMGFS" wait quick)"
"$IMGFS" kill web2 >/dev/null
t_eq "wait on a killed one: 137" 137 "$("$IMGFS" wait web2)"
t_eq "the renamed container kept its new name when it ended" "/web2" "$(fmt '{{.Name}}' "$id")"
t_eq "wait for a missing container exits 1" 1 "$(set +e; "$IMGFS" wait nosuch 2>/dev/null; echo $?)"
t_eq "wait without arguments: a usage error" 125 "$(set +e; "$IMGFS" wait 2>/dev/null; echo $?)"

# ---- top ----
"$IMGFS" run -d --network none --name topc busybox sh -c 'sleep 1001 & exec sleep 1002' >/dev/null
t_check "both processes run" t_wait_for 200 sh -c "'$IMGFS' top topc | grep -q 'sleep 1001'"
out=$("$IMGFS" top topc)
t_check "ps -ef's header" grep -q "^UID *PID *PPID" <<<"$out"
t_check "the command is listed" grep -q "sleep 1002" <<<"$out"
t_check "State.Pid is among the pids" \
    grep -qw "$(fmt '{{.State.Pid}}' topc)" <<<"$(awk 'NR > 1 {print $2}' <<<"$out")"
t_check "no host process (this shell) is listed" bash -c '! grep -qw "$0" <<<"$1"' "$$" \
    "$(awk 'NR > 1 {print $2}' <<<"$out")"
t_eq "2 processes: sleep (PID 1), sleep" 2 "$(($(wc -l <<<"$out") - 1))"
t_eq "ps options are passed on" "PID COMMAND" "$("$IMGFS" top topc -o pid,comm | head -1 | xargs)"
"$IMGFS" rm -f topc >/dev/null
t_eq "top of a removed container exits 1" 1 "$(set +e; "$IMGFS" top topc 2>/dev/null; echo $?)"

# ---- logs --tail ----
"$IMGFS" run -d --network none --name lines busybox sh -c 'for i in 1 2 3 4 5; do echo l$i; done; printf end' >/dev/null
t_eq "the container ended" 0 "$("$IMGFS" wait lines)"
t_eq "logs --tail 2 (the last line has no newline)" "l5
end" "$("$IMGFS" logs --tail 2 lines)"
t_eq "-n 1" "end" "$("$IMGFS" logs -n 1 lines)"
t_eq "--tail 0" "" "$("$IMGFS" logs --tail 0 lines)"
t_eq "--tail all" 6 "$("$IMGFS" logs --tail all lines | wc -l | xargs expr 1 +)"
t_eq "--tail more than there is" "l1" "$("$IMGFS" logs --tail 100 lines | head -1)"
t_eq "--tail x is a usage error" 125 "$(set +e; "$IMGFS" logs --tail x lines 2>/dev/null; echo $?)"

# ---- stats ----
"$IMGFS" run -d --network none -m 64m --name busy busybox sh -c 'sleep 1003 & while :; do :; done' >/dev/null
row() { "$IMGFS" stats --no-stream busy | awk 'NR == 2'; }
t_check "stats --no-stream prints Docker's header" \
    grep -q "^CONTAINER ID *NAME *CPU % *MEM USAGE / LIMIT *MEM % *NET I/O *PIDS" \
    <<<"$("$IMGFS" stats --no-stream busy)"
busy_cpu() { row | awk '{sub("%", "", $3); exit !($3 > 0)}'; }
t_check "a busy loop uses CPU" t_wait_for 20 busy_cpu
t_eq "the memory limit is -m's" "64MiB" "$(row | awk '{print $6}')"
t_eq "PIDS: sh (PID 1) and sleep" 2 "$(row | awk '{print $NF}')"
t_eq "the name" busy "$(row | awk '{print $2}')"
"$IMGFS" rm -f busy >/dev/null
t_eq "stats of a missing container exits 1" 1 \
    "$(set +e; "$IMGFS" stats --no-stream busy 2>/dev/null; echo $?)"

# ---- attach: not supported, and says why ----
t_check "attach --help explains" sh -c "'$IMGFS' attach --help | grep -q 'copies its output into the log file only'"
t_eq "attach exits 125" 125 "$(set +e; "$IMGFS" attach files 2>/dev/null; echo $?)"
t_check "naming what to use instead" sh -c "'$IMGFS' attach files 2>&1 | grep -q 'logs -f'"

# ---- save, load ----
t_check "save -o FILE IMAGE" "$IMGFS" save -o "$T/bb.tar" busybox
t_eq "a docker-save archive with the image's name" '["busybox:latest"]' \
    "$(tar -xOf "$T/bb.tar" manifest.json | jq -c '.[0].RepoTags')"
want=$("$IMGFS" inspect -f Digest busybox)
t_eq "load -i into another store" "Loaded image: busybox:latest" \
    "$(IMGFS_ROOT="$T/store2" "$IMGFS" load -i "$T/bb.tar")"
t_eq "the same image there" "$want" "$(IMGFS_ROOT="$T/store2" "$IMGFS" inspect -f Digest busybox)"
t_eq "save | load through a pipe" "Loaded image: busybox:latest" \
    "$("$IMGFS" save busybox | IMGFS_ROOT="$T/store3" "$IMGFS" load)"
t_check_fails "save of a missing image fails" "$IMGFS" save -o "$T/x.tar" nosuch
# several images in one archive, as docker save: an entry per image with the names given for it,
# each layer once; load prints every image's names in the archive's order
"$IMGFS" import -q -t tree:1 "$FIXTURES/tree.tar"
"$IMGFS" tag busybox bb:2
"$IMGFS" save -o "$T/multi.tar" busybox tree:1 bb:2
t_eq "save A B C: one manifest entry per image, RepoTags the names given" \
    '[["busybox:latest","bb:2"],["tree:1"]]' "$(tar -xOf "$T/multi.tar" manifest.json | jq -c '[.[].RepoTags]')"
t_eq "  ... each layer once" "$(tar -xOf "$T/multi.tar" manifest.json | jq -r '.[].Layers[]' | sort -u)" \
    "$(tar -tf "$T/multi.tar" | grep layer.tar | sort)"
t_eq "  ... the repositories file names them all" '{"bb":["2"],"busybox":["latest"],"tree":["1"]}' \
    "$(tar -xOf "$T/multi.tar" repositories | jq -cS 'map_values(keys)')"
t_eq "load of it: every image's names" \
    "$(printf 'Loaded image: busybox:latest\nLoaded image: bb:2\nLoaded image: tree:1')" \
    "$(IMGFS_ROOT="$T/store5" "$IMGFS" load -i "$T/multi.tar")"
t_eq "  ... the same images there" "$("$IMGFS" inspect -f Digest tree:1) $want" \
    "$(IMGFS_ROOT="$T/store5" "$IMGFS" inspect -f Digest tree:1) $(IMGFS_ROOT="$T/store5" "$IMGFS" inspect -f Digest bb:2)"
tree_id=$("$IMGFS" inspect -f '{{.Id}}' tree:1)
t_eq "an image given by ID: no RepoTags; load says its ID" "null Loaded image ID: $tree_id" \
    "$("$IMGFS" save -o "$T/byid.tar" "$tree_id" && tar -xOf "$T/byid.tar" manifest.json | jq -c '.[0].RepoTags') $(IMGFS_ROOT="$T/store6" "$IMGFS" load -i "$T/byid.tar")"
t_eq "save with one missing image writes nothing, exit 1" "1 no file" \
    "$(set +e; "$IMGFS" save -o "$T/y.tar" busybox nosuch 2>/dev/null; echo "$? $(test -e "$T/y.tar" && echo file || echo no file)")"
t_eq "export takes one image" 125 "$(set +e; "$IMGFS" export -o "$T/z.tar" busybox tree:1 2>/dev/null; echo $?)"
"$IMGFS" rmi tree:1 bb:2 >/dev/null
t_eq "load of a non-archive fails" 1 \
    "$(set +e; echo junk | IMGFS_ROOT="$T/store4" "$IMGFS" load 2>/dev/null; echo $?)"

# ---- system df ----
"$IMGFS" run --network none --name writer busybox sh -c 'head -c 100000 /dev/zero > /big'
df=$("$IMGFS" system df)
t_check "system df has Docker's header" grep -q "^TYPE *TOTAL *ACTIVE *SIZE *RECLAIMABLE" <<<"$df"
t_eq "Images: distinct named images" "$("$IMGFS" images --json | jq '[.[].Digest] | unique | length')" \
    "$(awk '$1 == "Images" {print $2}' <<<"$df")"
t_eq "Containers: all of them" "$("$IMGFS" ps -aq | wc -l)" "$(awk '$1 == "Containers" {print $2}' <<<"$df")"
t_eq "Containers ACTIVE: the running ones" "$("$IMGFS" ps -q | wc -l)" \
    "$(awk '$1 == "Containers" {print $3}' <<<"$df")"
t_check "the stopped writer's 100kB are reclaimable" \
    awk '$1 == "Containers" {sub("kB", "", $5); exit !($5 >= 100)}' <<<"$df"

# ---- container prune, image prune ----
keep=$("$IMGFS" run -d --network none --name keep busybox sleep 1000)
stopped=$("$IMGFS" ps -a -q --no-trunc -f status=exited | sort)
t_check "there are stopped containers to prune" test -n "$stopped"
t_eq "answering no removes nothing" "$stopped" \
    "$(echo n | "$IMGFS" container prune >/dev/null 2>&1; "$IMGFS" ps -a -q --no-trunc -f status=exited | sort)"
out=$("$IMGFS" container prune -f)
t_eq "container prune -f lists what it removed" "$stopped" \
    "$(sed -n '/^Deleted Containers:/,/^$/p' <<<"$out" | grep -E '^[0-9a-f]{64}$' | sort)"
t_check "and the reclaimed space" grep -q "^Total reclaimed space: " <<<"$out"
t_eq "no stopped container is left" "" "$("$IMGFS" ps -a -q -f status=exited)"
t_check "the running one is kept" grep -qx "$keep" <<<"$("$IMGFS" ps -q --no-trunc)"
t_eq "an unknown subcommand is a usage error" 125 \
    "$(set +e; "$IMGFS" container frobnicate 2>/dev/null; echo $?)"
"$IMGFS" import -q -t spare "$FIXTURES/tree.tar"
before=$(t_stored_bytes)
t_check "rmi leaves the content" "$IMGFS" rmi spare
out=$(echo y | "$IMGFS" image prune)
t_check "image prune (answered y) frees what no name reaches" \
    test "$(t_stored_bytes)" -lt "$before"
t_check "and says how much" grep -q "^Total reclaimed space: " <<<"$out"
t_check "images still there" "$IMGFS" inspect -f Digest busybox
# -a: the names of images no container was made from go too ("keep" runs busybox; spare2 and
# spare3 are one image no container uses)
"$IMGFS" import -q -t spare2 "$FIXTURES/tree.tar"
"$IMGFS" tag spare2 spare3:x
spare_id=$("$IMGFS" inspect -f '{{.Id}}' spare2)
before=$(t_stored_bytes)
t_check "image prune -a answered no keeps the names" \
    sh -c "echo n | '$IMGFS' image prune -a 2>/dev/null; '$IMGFS' inspect spare2 >/dev/null"
t_check "  ... after Docker's warning for -a" sh -c "echo n | '$IMGFS' image prune -a 2>&1 >/dev/null |
    grep -qx 'WARNING! This will remove all images without at least one container associated to them.'"
out=$("$IMGFS" image prune -a -f)
t_eq "image prune -a -f: the unused image's names, then its ID, as Docker lists them" \
    "$(printf 'Deleted Images:\nuntagged: spare2:latest\nuntagged: spare3:x\ndeleted: %s' "$spare_id")" \
    "$(sed '/^$/,$d' <<<"$out")"
t_check "  ... and the space it freed" test "$(t_stored_bytes)" -lt "$before"
t_check "  ... said" grep -q "^Total reclaimed space: [1-9]" <<<"$out"
t_check "the image a container uses keeps its name" "$IMGFS" inspect -f Digest busybox
t_eq "image prune -a with nothing to remove" "Total reclaimed space: 0B" "$("$IMGFS" image prune -a -f)"
t_eq "container prune has no -a" 125 "$(set +e; "$IMGFS" container prune -a -f 2>/dev/null; echo $?)"

# ---- diff of a directory replaced whole (overlayfs's opaque directory): what Docker 20.10 lists
# for the same steps (92_cli_docker compares with it): the image's entries it hides are deleted
"$IMGFS" run --network none --name redo busybox \
    sh -c 'rm -rf /home /usr && mkdir -p /home/z /usr/bin && touch /home/z/f /usr/bin/awk' >/dev/null
out=$("$IMGFS" diff redo)
t_eq "a replaced directory, its new entries and the one it hid" \
    "$(printf 'C /home\nD /home/app\nA /home/z\nA /home/z/f')" "$(grep '^. /home' <<<"$out")"
t_check "an entry of the image made again is changed" grep -qx "C /usr/bin/awk" <<<"$out"
t_check "the ones not made again are deleted" grep -qx "D /usr/bin/wget" <<<"$out"
t_check "a directory the image had below the replaced one is deleted whole" grep -qx "D /usr/sbin" <<<"$out"
t_check "  ... not what is in it" bash -c '! grep -q "^D /usr/sbin/" <<<"$0"' "$out"
t_eq "every entry the image had under /usr/bin but awk is deleted" \
    "$(tar tf "$FIXTURES/busybox.tar" | grep -c '^\./usr/bin/.' | awk '{print $1 - 1}')" \
    "$(grep -c '^D /usr/bin/' <<<"$out")"
t_end
