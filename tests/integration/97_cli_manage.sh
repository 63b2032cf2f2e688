#!/bin/bash
# Docker's management forms (issue 9): `imgfs container ls|inspect|rm|...` and `imgfs image
# ls|inspect|rm|tag|...` do what the top-level verbs do (tools/main.c's table), with the same output
# and exit statuses; and `images` lists an image once when an unnamed import of it is stored too.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
t_begin cli_manage
t_need_fixture busybox.tar
"$IMGFS" import -q -t busybox "$FIXTURES/busybox.tar"
t_cleanup "'$IMGFS' ps -aq | xargs -r '$IMGFS' rm -f"
"$IMGFS" run -d --network none --name up busybox sleep 1000 >/dev/null
"$IMGFS" run --network none --name ex busybox true

# both ARGS... -- ARGS...: the same output and exit status for the two forms
both() {
    local i n=$# a=() b=() ra=0 rb=0
    for ((i = 1; i <= n; i++)); do [[ ${!i} == -- ]] && break; a+=("${!i}"); done
    for ((i = i + 1; i <= n; i++)); do b+=("${!i}"); done
    out_a=$("$IMGFS" "${a[@]}" 2>&1) || ra=$?
    out_b=$("$IMGFS" "${b[@]}" 2>&1) || rb=$?
    t_eq "\`${a[*]}\` prints what \`${b[*]}\` does" "$out_b" "$out_a"
    t_eq "  ... and exits as it does ($rb)" "$rb" "$ra"
}
# (no CREATED/STATUS or CPU columns: they change between the two calls — "Less than a second"
# became "1 second" in a CI run — so .State, not .Status)
both container ls --format '{{.ID}} {{.Image}} {{.Command}} {{.Names}}' -- ps --format '{{.ID}} {{.Image}} {{.Command}} {{.Names}}'
both container ls -a --format '{{.Names}} {{.State}}' -- ps -a --format '{{.Names}} {{.State}}'
both container list -q -- ps -q
both container inspect up -- inspect --type container up
both container inspect busybox -- inspect --type container busybox
both image ls --format '{{.Repository}} {{.Tag}} {{.ID}}' -- images --format '{{.Repository}} {{.Tag}} {{.ID}}'
both image list busybox -- images busybox
both image inspect -f '{{.Id}}' busybox -- inspect --type image -f '{{.Id}}' busybox
both image inspect up -- inspect --type image up
both container logs ex -- logs ex
both container port up -- port up
both container top up -o pid,args -- top up -o pid,args
both container wait ex -- wait ex
both container rm -- rm
both image rm -- rmi
t_check "container ls shows the running one" grep -q "^up " <<<"$("$IMGFS" container ls --format '{{.Names}} {{.Status}}')"
t_eq "container inspect of an image is no container: exit 1" 1 \
    "$(set +e; "$IMGFS" container inspect busybox >/dev/null 2>&1; echo $?)"

# the forms that change something
"$IMGFS" image tag busybox bb:2
t_eq "image tag made the name" "$("$IMGFS" inspect -f '{{.Id}}' busybox)" "$("$IMGFS" inspect -f '{{.Id}}' bb:2)"
t_eq "image rm removes it" "Untagged: bb:2" "$("$IMGFS" image rm bb:2)"
t_check_fails "  ... it is gone" "$IMGFS" inspect --type image bb:2
"$IMGFS" container stop -t 1 up >/dev/null
t_eq "container stop stopped it" exited "$("$IMGFS" inspect -f '{{.State.Status}}' up)"
t_eq "container rm removes it" up "$("$IMGFS" container rm up)"
t_check_fails "  ... it is gone" "$IMGFS" inspect --type container up
"$IMGFS" container run --network none --name again busybox true
t_eq "container run ran it" exited "$("$IMGFS" inspect -f '{{.State.Status}}' again)"
t_check "container prune removes the stopped ones" grep -q "^Total reclaimed space" \
    <<<"$("$IMGFS" container prune -f)"
t_eq "  ... none left" "" "$("$IMGFS" ps -aq)"
"$IMGFS" image save -o "$T/bb.tar" busybox
t_check "image save wrote a docker-save archive" tar -tf "$T/bb.tar" manifest.json

# help and mistakes, as Docker's: the list without a subcommand (exit 0), an unknown one 125
help=$("$IMGFS" container)
for sub in ls inspect rm start stop logs exec run create; do
    t_check "container's help lists $sub" grep -qE "^  $sub " <<<"$help"
done
help=$("$IMGFS" image --help)
for sub in ls inspect rm tag pull push save load import prune; do
    t_check "image's help lists $sub" grep -qE "^  $sub " <<<"$help"
done
t_eq "an unknown subcommand exits 125" 125 "$(set +e; "$IMGFS" image bogus 2>/dev/null; echo $?)"

# one row per image: an unnamed import of busybox and its name share IMAGE ID
"$IMGFS" import -q "$FIXTURES/busybox.tar" >/dev/null
t_eq "images shows busybox once" "busybox latest" "$("$IMGFS" images --format '{{.Repository}} {{.Tag}}')"
t_eq "images -q: one ID" 1 "$("$IMGFS" images -q | wc -l)"
"$IMGFS" rmi busybox >/dev/null
t_eq "without its name, the unnamed one is listed" "<none> <none>" \
    "$("$IMGFS" images --format '{{.Repository}} {{.Tag}}')"
t_end
