#!/bin/bash
# Output formats (issue 9, section 3): ps --format/--filter/-n/-l and aligned columns, images
# REPOSITORY[:TAG] filter and --format — on real containers of the busybox fixture.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
t_begin cli_formats
t_need_fixture busybox.tar
"$IMGFS" import -q -t busybox "$FIXTURES/busybox.tar"
"$IMGFS" tag busybox bb:v1
t_cleanup "'$IMGFS' ps -aq | xargs -r '$IMGFS' rm -f"

up=$("$IMGFS" run -d --network none --name up1 busybox sleep 1000)
"$IMGFS" run --network none --name done1 busybox sh -c 'exit 4' || true
t_check "up1 runs" t_wait_for 200 sh -c "'$IMGFS' ps -q --no-trunc | grep -q $up"

# ---- ps ----
t_eq "--format one field per running container" up1 "$("$IMGFS" ps --format '{{.Names}}')"
t_eq "-a --format with several fields" "done1 exited
up1 running" "$("$IMGFS" ps -a --format '{{.Names}} {{.State}}' | sort)"
t_eq "{{.ID}} is the short id" "${up:0:12}" "$("$IMGFS" ps --format '{{.ID}}')"
t_eq "--no-trunc {{.ID}} is the full id" "$up" "$("$IMGFS" ps --no-trunc --format '{{.ID}}')"
t_eq "{{.Command}} is quoted as Docker's" '"sleep 1000"' "$("$IMGFS" ps --format '{{.Command}}')"
t_eq "table prefix prints headers (Docker's tabwriter: min width 10, padding 3)" "NAMES     STATE
up1       running" "$("$IMGFS" ps --format 'table {{.Names}}\t{{.State}}')"
t_eq "status=exited implies -a" done1 "$("$IMGFS" ps -f status=exited --format '{{.Names}}')"
t_eq "status=running" up1 "$("$IMGFS" ps -f status=running --format '{{.Names}}')"
t_eq "name= matches a part" up1 "$("$IMGFS" ps -a -f name=p1 --format '{{.Names}}')"
t_eq "two name= filters: either" "done1
up1" "$("$IMGFS" ps -a -f name=up1 -f name=done --format '{{.Names}}' | sort)"
t_eq "name= and status=: both" "" "$("$IMGFS" ps -f name=up1 -f status=exited --format '{{.Names}}')"
t_eq "id= prefix" up1 "$("$IMGFS" ps -a -f "id=${up:0:6}" --format '{{.Names}}')"
t_eq "ancestor= by name (:latest implied)" "done1
up1" "$("$IMGFS" ps -a -f ancestor=busybox --format '{{.Names}}' | sort)"
t_eq "ancestor= another image matches nothing" "" \
    "$("$IMGFS" ps -a -f ancestor=bb:v1 --format '{{.Names}}')"
t_eq "an unknown filter is refused with Docker's 1 (its daemon refuses it)" 1 \
    "$(set +e; "$IMGFS" ps -f bogus=1 2>/dev/null; echo $?)"
t_eq "a bad status: 1 too" 1 "$(set +e; "$IMGFS" ps -f status=sleepy 2>/dev/null; echo $?)"
t_eq "a filter that is not KEY=VALUE is a usage error" 125 \
    "$(set +e; "$IMGFS" ps -f bogus 2>/dev/null; echo $?)"
t_eq "a template Go cannot parse exits 1, as Docker's ps" 1 \
    "$(set +e; "$IMGFS" ps --format '{{.Names' 2>/dev/null; echo $?)"
t_check "with Docker's words" sh -c "'$IMGFS' ps --format '{{.Names' 2>&1 | grep -q 'template parsing error: .*unclosed action'"
t_eq "images too" 1 "$(set +e; "$IMGFS" images --format '{{end}}' 2>/dev/null; echo $?)"
t_eq "one Go parses but imgfs's subset has not is a usage error" 125 \
    "$(set +e; "$IMGFS" ps --format '{{printf "%s" .Names}}' 2>/dev/null; echo $?)"
t_eq "-n 2 shows both, whatever their state" 2 "$("$IMGFS" ps -n 2 -q | wc -l)"
t_eq "-n 1 shows one" 1 "$("$IMGFS" ps -n 1 -q | wc -l)"
t_eq "-l shows one" 1 "$("$IMGFS" ps -l --format '{{.Names}}' | wc -l)"
t_eq "-n takes a number" 125 "$(set +e; "$IMGFS" ps -n x 2>/dev/null; echo $?)"

# default columns stay aligned whatever the CREATED and STATUS text
out=$("$IMGFS" ps -a)
col() { awk -v w="$1" 'NR == 1 {print index($0, w) - 1}' <<<"$out"; }
status_col=$(col STATUS)
names_col=$(col NAMES)
t_check "the header has the PORTS column" grep -q "PORTS" <<<"$out"
aligned() {
    tail -n +2 <<<"$out" | while IFS= read -r line; do
        [[ ${line:$status_col:2} == Up || ${line:$status_col:6} == Exited ]] || exit 1
        [[ ${line:$((names_col - 1)):1} == " " && ${line:$names_col:1} != " " ]] || exit 1
    done
}
t_check "STATUS and NAMES start in their header's column on every row" aligned

# PORTS shows a published port of a running container (private network: slirp4netns)
if command -v slirp4netns >/dev/null; then
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    "$IMGFS" run -d --name web -p "127.0.0.1:$port:80" busybox sleep 1000 >/dev/null
    t_eq "{{.Ports}}" "127.0.0.1:$port->80/tcp" "$("$IMGFS" ps -f name=web --format '{{.Ports}}')"
    t_eq "inspect NetworkSettings.Ports" "[{\"HostIp\":\"127.0.0.1\",\"HostPort\":\"$port\"}]" \
        "$("$IMGFS" inspect web | jq -c '.[0].NetworkSettings.Ports["80/tcp"]')"
    t_eq "index of a key with a slash" "[map[HostIp:127.0.0.1 HostPort:$port]]" \
        "$("$IMGFS" inspect -f '{{index .NetworkSettings.Ports "80/tcp"}}' web)"
    t_eq "port lists the mapping" "80/tcp -> 127.0.0.1:$port" "$("$IMGFS" port web)"
    t_eq "port of one port" "127.0.0.1:$port" "$("$IMGFS" port web 80)"
    t_eq "port of one port with its protocol" "127.0.0.1:$port" "$("$IMGFS" port web 80/tcp)"
    t_eq "an unpublished port exits 1" 1 "$(set +e; "$IMGFS" port web 81 2>/dev/null; echo $?)"
    t_check "with Docker's words" sh -c "'$IMGFS' port web 81 2>&1 | grep -q \"No public port '81/tcp' published for web\""
    "$IMGFS" stop web >/dev/null
    t_eq "a stopped container publishes nothing" "" "$("$IMGFS" port web)"
    "$IMGFS" rm -f web >/dev/null
fi
t_eq "port of a missing container exits 1" 1 "$(set +e; "$IMGFS" port nosuch 2>/dev/null; echo $?)"
t_eq "port without arguments: a usage error" 125 "$(set +e; "$IMGFS" port 2>/dev/null; echo $?)"

# ---- images ----
t_eq "images REPOSITORY filter" "bb v1" \
    "$("$IMGFS" images bb --format '{{.Repository}} {{.Tag}}')"
t_eq "images REPOSITORY:TAG filter" "busybox:latest" \
    "$("$IMGFS" images busybox:latest --format '{{.Repository}}:{{.Tag}}')"
t_eq "images filter without a match: only the header" 1 "$("$IMGFS" images nosuch | wc -l)"
t_eq "images -q with a filter" 1 "$("$IMGFS" images -q bb:v1 | wc -l)"
t_eq "images --format table" "REPOSITORY   TAG
bb           v1" "$("$IMGFS" images bb --format 'table {{.Repository}}\t{{.Tag}}')"
digest=$("$IMGFS" images --json | jq -r '.[] | select(.Name == "bb:v1") | .Digest')
t_eq "images {{.Digest}}" "$digest" "$("$IMGFS" images bb --format '{{.Digest}}')"
t_check "images --digests has a DIGEST column" grep -q "^REPOSITORY *TAG *DIGEST *IMAGE ID" \
    <<<"$("$IMGFS" images --digests)"
# IMAGE ID is Docker's image ID, the config digest; DIGEST (--digests) the manifest's
cfg=$("$IMGFS" inspect -f '{{.Id}}' bb:v1)
t_eq "images {{.ID}} is the config digest" "${cfg:7:12}" "$("$IMGFS" images bb:v1 --format '{{.ID}}')"
t_eq "images -q too" "${cfg:7:12}" "$("$IMGFS" images -q bb:v1)"
t_eq "--digests shows the manifest digest" "$digest" \
    "$("$IMGFS" images --digests bb:v1 --format '{{.Digest}}')"
t_eq "an ID prefix of the config digest names the image (inspect)" "$cfg" \
    "$("$IMGFS" inspect -f '{{.Id}}' "${cfg:7:8}")"
t_eq "... and runs it" "by-id" "$("$IMGFS" run --rm --network none "${cfg:7:12}" echo by-id)"
t_eq "the manifest digest still names it" "$cfg" "$("$IMGFS" inspect -f '{{.Id}}' "$digest")"
t_end
