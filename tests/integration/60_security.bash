# 60_security.bash — helpers the security and limits tests (60_*, 61_*) source after tests/lib.sh.
# (Not a test itself: tests/run.sh runs only *.sh.)

# sec_build_probe: build 60_sysprobe.c (static) as $T/sysprobe, once.
sec_build_probe() {
    [[ -x $T/sysprobe ]] && return 0
    command -v cc >/dev/null || t_skip "no C compiler for the probe helper"
    cc -static -O2 -o "$T/sysprobe" "$(dirname "${BASH_SOURCE[0]}")/60_sysprobe.c" ||
        t_skip "cannot build a static probe (libc.a missing?)"
}

# sec_probe_image NAME: import busybox.tar plus /bin/sysprobe (60_sysprobe.c, built static) as NAME.
sec_probe_image() {
    sec_image "$1" --probe
}

# sec_image NAME [--probe] [--workdir DIR] [ENTRY...]: busybox.tar with entries changed, imported as
# NAME (a docker-save archive, so the config can set WorkingDir). An ENTRY replaces whatever busybox
# had at PATH (and below it):
#   PATH=TARGET    a symlink to TARGET
#   PATH:fifo      a FIFO
#   PATH<FILE      a regular file with the content of host file FILE
# --probe adds /bin/sysprobe.
sec_image() {
    local name=$1 probe="" workdir=/
    shift
    while (($#)); do
        case $1 in
        --probe) sec_build_probe; probe=$T/sysprobe ;;
        --workdir) workdir=$2; shift ;;
        *) break ;;
        esac
        shift
    done
    t_need_fixture busybox.tar
    python3 - "$FIXTURES/busybox.tar" "$T/$name.tar" "$name" "$workdir" "$probe" "$@" <<'PY'
import hashlib, io, json, re, sys, tarfile
src, out, name, workdir, probe, *entries = sys.argv[1:]
changes = {}
for e in entries:
    path, kind, arg = re.match(r"([^=:<]+)(=|:fifo|<)(.*)", e).groups()
    changes[path.strip("/")] = (kind, arg)
layer = io.BytesIO()
with tarfile.open(src) as i, tarfile.open(fileobj=layer, mode="w") as o:
    for m in i.getmembers():
        path = m.name.lstrip("./")
        if any(path == c or path.startswith(c + "/") for c in changes):
            continue
        o.addfile(m, i.extractfile(m) if m.isreg() else None)
    if probe:
        o.add(probe, arcname="./bin/sysprobe")
    for path, (kind, arg) in changes.items():
        if kind == "<":
            o.add(arg, arcname="./" + path)
            continue
        t = tarfile.TarInfo("./" + path)
        if kind == "=":
            t.type, t.linkname, t.mode = tarfile.SYMTYPE, arg, 0o777
        else:
            t.type, t.mode = tarfile.FIFOTYPE, 0o644
        o.addfile(t)
data = layer.getvalue()
diff_id = "sha256:" + hashlib.sha256(data).hexdigest()
config = json.dumps({"architecture": "amd64", "os": "linux",
    "config": {"Env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"], "WorkingDir": workdir, "Cmd": ["sh"]},
    "rootfs": {"type": "layers", "diff_ids": [diff_id]}}).encode()
cfg_name = hashlib.sha256(config).hexdigest() + ".json"
layer_name = diff_id[7:] + "/layer.tar"
manifest = json.dumps([{"Config": cfg_name, "RepoTags": [name + ":latest"],
                        "Layers": [layer_name]}]).encode()
with tarfile.open(out, "w") as o:
    for n, b in ((cfg_name, config), (layer_name, data), ("manifest.json", manifest)):
        t = tarfile.TarInfo(n)
        t.size = len(b)
        o.addfile(t, io.BytesIO(b))
PY
    "$IMGFS" import -q -t "$name" "$T/$name.tar"
    rm -f "$T/$name.tar"
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

# sec_other_container IMAGE: a container named `other` that sleeps (removed at exit); its id in
# $other_id. What a view of one container must not show.
sec_other_container() {
    "$IMGFS" run -d --name other --network none "$1" sleep 100000 >/dev/null
    t_cleanup "'$IMGFS' rm -f other"
    other_id=$(sec_ctr_id other)
    t_check "another container runs ($other_id)" test -n "$other_id"
}
