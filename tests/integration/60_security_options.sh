#!/bin/bash
# --cap-add, --cap-drop, --privileged, --security-opt no-new-privileges, seccomp=unconfined and
# seccomp=PROFILE.json (Docker's format) change exactly what they say.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/60_security.bash"
t_begin security_options
sec_probe_image probe

run() { "$IMGFS" run --rm "$@"; }
probe() { "$IMGFS" run --rm "$@" 2>&1 || true; }

# --cap-add / --cap-drop
t_eq "--cap-add NET_ADMIN" 00000000a80435fb "$(sec_status_field probe CapEff --cap-add NET_ADMIN)"
t_eq "--cap-add CAP_SYS_PTRACE (prefixed)" 00000000a80c25fb "$(sec_status_field probe CapEff --cap-add CAP_SYS_PTRACE)"
t_eq "--cap-drop CHOWN" 00000000a80425fa "$(sec_status_field probe CapEff --cap-drop CHOWN)"
t_eq "--cap-drop ALL" 0000000000000000 "$(sec_status_field probe CapEff --cap-drop ALL)"
t_eq "--cap-drop ALL bounding set" 0000000000000000 "$(sec_status_field probe CapBnd --cap-drop ALL)"
t_eq "--cap-drop ALL --cap-add KILL" 0000000000000020 "$(sec_status_field probe CapEff --cap-drop ALL --cap-add KILL)"
t_check_fails "chown fails without CAP_CHOWN" run --cap-drop CHOWN probe chown 1000 /tmp
t_check "chown works by default" run probe sh -c 'touch /tmp/f && chown 1000 /tmp/f'
out=$("$IMGFS" run --rm --cap-add NOPE probe true 2>&1) && rc=0 || rc=$?
t_eq "an unknown capability is imgfs's error" 125 "$rc"
t_check "the error names it" grep -q NOPE <<<"$out"

# CAP_SYS_ADMIN unlocks the seccomp rules that depend on it (mount, unshare), as in Docker
t_eq "--cap-add SYS_ADMIN allows mount" "mount ok" "$(probe --cap-add SYS_ADMIN probe sysprobe mount)"
t_eq "--cap-add SYS_ADMIN allows unshare(CLONE_NEWNS)" "unshare-ns ok" \
    "$(probe --cap-add SYS_ADMIN probe sysprobe unshare-ns)"
t_eq "--cap-add SYS_ADMIN: clone3 is a real call again" "clone3 ok" \
    "$(probe --cap-add SYS_ADMIN probe sysprobe clone3)"
t_check "a mount inside stays inside" bash -c "! grep -qE '^none /tmp tmpfs' /proc/mounts"
t_eq "--cap-add SYS_PTRACE: ptrace calls pass the filter (ESRCH, not EPERM)" "ptrace ESRCH" \
    "$(probe --cap-add SYS_PTRACE probe sysprobe ptrace 99999)"

# --privileged: every capability we have, no seccomp filter
host_bnd=$(awk '/^CapBnd:/ {print $2}' /proc/self/status)
t_eq "--privileged: CapEff is every capability" "$host_bnd" "$(sec_status_field probe CapEff --privileged)"
t_eq "--privileged: no seccomp" 0 "$(sec_status_field probe Seccomp --privileged)"
t_eq "--privileged: mount works" "mount ok" "$(probe --privileged probe sysprobe mount)"

# --security-opt
t_eq "default: no_new_privs off" 0 "$(sec_status_field probe NoNewPrivs)"
t_eq "no-new-privileges sets no_new_privs" 1 "$(sec_status_field probe NoNewPrivs --security-opt no-new-privileges)"
t_eq "no-new-privileges keeps the filter" 2 "$(sec_status_field probe Seccomp --security-opt no-new-privileges)"
t_eq "no-new-privileges, non-root user: still filtered" 2 \
    "$(sec_status_field probe Seccomp --security-opt no-new-privileges -u 1000)"
t_eq "seccomp=unconfined: no filter" 0 "$(sec_status_field probe Seccomp --security-opt seccomp=unconfined)"
t_eq "seccomp=unconfined: keyctl reaches the kernel" "keyctl ok" \
    "$(probe --security-opt seccomp=unconfined probe sysprobe keyctl)"
t_eq "seccomp=unconfined: the capabilities still stop mount" "mount EPERM" \
    "$(probe --security-opt seccomp=unconfined probe sysprobe mount)"

# A Docker-format profile: allow everything except mkdir/mkdirat (EACCES) and chmod to 0777
cat >"$T/profile.json" <<'JSON'
{
  "defaultAction": "SCMP_ACT_ALLOW",
  "archMap": [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]}],
  "syscalls": [
    {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
    {"names": ["chmod", "fchmodat"], "action": "SCMP_ACT_ERRNO",
     "args": [{"index": 1, "value": 511, "op": "SCMP_CMP_EQ"}]},
    {"names": ["fchmodat"], "action": "SCMP_ACT_ERRNO",
     "args": [{"index": 2, "value": 511, "op": "SCMP_CMP_EQ"}]}
  ]
}
JSON
prof=(--security-opt "seccomp=$T/profile.json")
out=$("$IMGFS" run --rm "${prof[@]}" probe mkdir /tmp/d 2>&1) && rc=0 || rc=$?
t_check "profile: mkdir fails" test "$rc" != 0
t_check "profile: with EACCES" grep -qi "permission denied" <<<"$out"
t_check "profile: other calls work" run "${prof[@]}" probe sh -c 'touch /tmp/f && chmod 755 /tmp/f'
t_check_fails "profile: chmod 777 refused" run "${prof[@]}" probe sh -c 'touch /tmp/f && chmod 777 /tmp/f'
t_eq "profile: a filter is installed" 2 "$(sec_status_field probe Seccomp "${prof[@]}")"
t_check "without the profile mkdir works" run probe mkdir /tmp/d

# exec gets what run got: no filter in a privileged container, the same profile file (given by a
# relative path, exec'd from elsewhere)
"$IMGFS" run -d --name priv --privileged probe sleep 100000 >/dev/null
t_cleanup "\"$IMGFS\" rm -f priv"
t_eq "exec into --privileged: no seccomp" 0 \
    "$("$IMGFS" exec priv grep ^Seccomp: /proc/self/status | awk '{print $2}')"
t_eq "exec into --privileged: every capability" "$host_bnd" \
    "$("$IMGFS" exec priv grep ^CapEff: /proc/self/status | awk '{print $2}')"
"$IMGFS" rm -f priv >/dev/null
(cd "$T" && "$IMGFS" run -d --name prof --security-opt seccomp=profile.json probe sleep 100000 >/dev/null)
t_cleanup "\"$IMGFS\" rm -f prof"
out=$(cd / && "$IMGFS" exec prof mkdir /tmp/d2 2>&1) && rc=0 || rc=$?
t_check "exec under a profile: mkdir refused as in run ($rc)" test "$rc" != 0
t_check "exec under a profile: with the profile's EACCES" grep -qi "permission denied" <<<"$out"
"$IMGFS" rm -f prof >/dev/null

# Docker's own default profile file gives what our built-in one gives
# (tests/data/docker/seccomp-default.json: moby/profiles, provenance in its README.md)
docker_profile=$TOP/tests/data/docker/seccomp-default.json
t_check "Docker's profile is in the repository" test -r "$docker_profile"
for op in mount unshare-ns keyctl bpf clone3 chroot; do
    t_eq "Docker's profile file: $op as built-in" "$(probe probe sysprobe $op)" \
        "$(probe --security-opt "seccomp=$docker_profile" probe sysprobe $op)"
done

# Bad profiles are imgfs's errors (125), with the file named
echo '{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [' >"$T/broken.json"
out=$("$IMGFS" run --rm --security-opt "seccomp=$T/broken.json" probe true 2>&1) && rc=0 || rc=$?
t_eq "a broken profile fails with 125" 125 "$rc"
t_check "the error names the file" grep -q broken.json <<<"$out"
out=$("$IMGFS" run --rm --security-opt "seccomp=$T/missing.json" probe true 2>&1) && rc=0 || rc=$?
t_eq "a missing profile fails with 125" 125 "$rc"
t_end
