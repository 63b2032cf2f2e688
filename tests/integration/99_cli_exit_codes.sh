#!/bin/bash
# Exit statuses and messages of the container verbs against Docker 20.10 (issue 9, section 4): the
# same commands on the same containers (one running, one exited, one created) in a private
# dockerd (--network none) and in imgfs; the status must be Docker's, and the message must carry
# Docker's words where scripts grep for them.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
t_begin cli_exit_codes
t_need_fixture busybox.tar
"$IMGFS" import -q -t busybox "$FIXTURES/busybox.tar"
t_check "a private dockerd" t_dockerd
"$IMGFS" export -f docker -o "$T/bb.tar" busybox
D load -i "$T/bb.tar" >/dev/null
t_cleanup "'$IMGFS' ps -aq | xargs -r '$IMGFS' rm -f"
t_cleanup "D ps -aq | xargs -r docker -H 'unix://$T_DOCKER_SOCK' rm -f"
# The oracle's overlay2 fails a container's start now and then under load ("failed to create shim
# task"): Docker gets three tries at what it should do (86_build_docker does the same)
flaky() { grep -q "failed to create shim task" <<<"$1"; }
for n in 1 2 3; do
    D rm -f up ex >/dev/null 2>&1 || true
    D run -d --network none --name up busybox sleep 1000 >/dev/null &&
        D run --network none --name ex busybox true && break
done
D create --network none --name cr busybox true >/dev/null
"$IMGFS" run -d --network none --name up busybox sleep 1000 >/dev/null
"$IMGFS" run --network none --name ex busybox true
"$IMGFS" create --network none --name cr busybox true >/dev/null

# same ARGS...: the exit status of docker and imgfs for the same arguments; imgfs's message in $i
same() {
    local d dr=0 ir=0 n
    for n in 1 2 3; do
        dr=0
        d=$(D "$@" 2>&1 </dev/null) || dr=$?
        flaky "$d" || break
    done
    i=$("$IMGFS" "$@" 2>&1 </dev/null) || ir=$?
    t_eq "exit status of \`$*\` (docker: ${d%%$'\n'*})" "$dr" "$ir"
}
says() { t_check "  ... says \"$1\"" grep -qF -- "$1" <<<"$i"; }

# a wrong number of arguments: Docker's words "requires ..."; Docker exits 1 for them, imgfs 125,
# the status of every usage error (the issue's rule; docs/cli.md "Exit statuses")
args() {
    local dr=0 ir=0
    D "$@" >/dev/null 2>&1 </dev/null || dr=$?
    i=$("$IMGFS" "$@" 2>&1 </dev/null) || ir=$?
    t_eq "exit status of \`$*\`: 125 (docker's is 1: $dr)" 125 "$ir"
    local verb=$1
    [[ $1 == volume ]] && verb="$1 $2"
    says "See 'imgfs $verb --help'."
}
for v in stop rm kill restart start wait inspect top rmi run create; do
    args "$v"
    says "'imgfs $v' requires at least 1 argument"
done
args logs; says "'imgfs logs' requires 1 argument"
args exec up; says "requires at least 2 arguments"
args rename up; says "requires 2 arguments"
args cp up:/etc/hostname; says "requires 2 arguments"
args port; args commit; args tag busybox
args images a b
args ps x; says "'imgfs ps' accepts no arguments"
args volume ls x
args save; args load x; args pull; args push; args export; args import

# what Docker's client refuses after parsing, as a plain error: 1
same cp "$T/h" "$T/h2"; says "must specify at least one container source"
same cp up:/etc/hostname ex:/tmp; says "copying between containers is not supported"
n=$("$IMGFS" ps -aq | wc -l)
same run -a stdout -d busybox true; says "conflicting options: cannot specify both --attach and --detach"
t_eq "  ... and no container was made" "$n" "$("$IMGFS" ps -aq | wc -l)"

# flags
same stop --bogus up; says "unknown flag: --bogus"
same stop -t x up
same run --bogus busybox
same ps -f name
same ps -f bogus=1; says "Invalid filter 'bogus"
same ps -f status=sleepy; says "Invalid filter 'status=sleepy'"
same kill -s BOGUS up; says "Invalid signal: BOGUS"
same top --bogus up; says "unknown flag: --bogus"
same top up -o pid,comm # what follows the container is ps's, options too
same tag --bogus busybox x:1; says "unknown flag: --bogus"
t_check_fails "  ... and no image x was made of it" "$IMGFS" inspect --type image x:1

# missing containers and images
for v in stop rm kill restart start wait logs top port commit; do
    same "$v" nosuch
    says "o such container: nosuch"
done
same exec nosuch true
same rename nosuch x
same cp nosuch:/x "$T/x"
same stats --no-stream nosuch
same rm -f nosuch # Docker's rm -f of a missing container: reported, not a failure
same rm up nosuch
same inspect nosuch; says "No such object: nosuch"
same rmi nosuch
same tag nosuch x
same push nosuch # Docker's "An image does not exist locally": 1, not a usage error
same save -o "$T/s.tar" nosuch; says "imgfs save: no such image: nosuch"
t_check_fails "  ... and no archive was left" test -e "$T/s.tar"

# containers in the wrong state
same rm up; says "You cannot remove a running container"
same kill ex; says "is not running"
same kill cr; says "is not running"
same exec ex true; says "is not running"
same exec cr true; says "is not running"
same top ex
same stop ex
same stop cr
for c in ex cr; do
    same stats --no-stream "$c"
    t_eq "  ... a row of zeros, as Docker's" "$c 0.00% 0B / 0B 0.00% 0B / 0B 0" \
        "$(awk 'NR == 2 {$1 = ""; print substr($0, 2)}' <<<"$i")"
done
same start up
t_eq "  ... and prints the name" "up" "$i"
same rename up up
same rename up ex; says "is already in use"
same logs cr
same port ex
same rmi busybox; says "conflict: unable to remove repository reference"
same create --network none --name cr busybox true; says "is already in use"
same create --network none --restart bogus busybox true
same create --network none --restart on-failure:x busybox true; says "maximum retry count must be an integer"
same run --rm --restart always busybox true; says "cannot specify both --restart and --rm"

# what the command did
same run --network none busybox sh -c 'exit 7'
same run --network none busybox nosuchcmd
same run --network none busybox /etc
same exec up sh -c 'exit 9'
same exec up /etc
same start -a ex
t_end
