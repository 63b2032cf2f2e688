# 60_security.bash — helpers the security and limits tests (60_*, 61_*) source after tests/lib.sh.
# (Not a test itself: tests/run.sh runs only *.sh.)

# sec_probe_image NAME: import busybox.tar plus /bin/sysprobe (60_sysprobe.c, built static) as NAME.
sec_probe_image() {
    local name=$1 src
    src=$(dirname "${BASH_SOURCE[0]}")/60_sysprobe.c
    t_need_fixture busybox.tar
    command -v cc >/dev/null || t_skip "no C compiler for the probe helper"
    cc -static -O2 -o "$T/sysprobe" "$src" || t_skip "cannot build a static probe (libc.a missing?)"
    python3 - "$FIXTURES/busybox.tar" "$T/sysprobe" "$T/probe.tar" <<'PY'
import sys, tarfile
src, probe, out = sys.argv[1:]
with tarfile.open(src) as i, tarfile.open(out, "w") as o:
    for m in i.getmembers():
        o.addfile(m, i.extractfile(m) if m.isreg() else None)
    o.add(probe, arcname="./bin/sysprobe")
PY
    "$IMGFS" import -q -t "$name" "$T/probe.tar"
}

# sec_status_field IMAGE FIELD [run options...]: FIELD's value from /proc/self/status in a container.
sec_status_field() {
    local image=$1 field=$2
    shift 2
    "$IMGFS" run --rm "$@" "$image" grep "^$field:" /proc/self/status | awk '{print $2}'
}

# sec_cgroup_dir CONTROLLER ID: the v1 cgroup directory of container ID (empty when none).
sec_cgroup_dir() {
    find "/sys/fs/cgroup/$1" -maxdepth 6 -type d -path "*/imgfs/$2" 2>/dev/null | head -n 1
}

# sec_ctr_id NAME: the full id of a container, from `imgfs ps -a --json`.
sec_ctr_id() {
    "$IMGFS" ps -a --json | jq -r --arg n "$1" '
        (if type == "array" then . else [.] end) | .[]
        | select((.name // .Name // .Names // "") | tostring | ltrimstr("/") == $n)
        | (.id // .Id // .ID)' | head -n 1
}
