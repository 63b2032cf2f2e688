/* seccomp.h — the container's system-call filter: Docker's default profile (our own table,
 * equivalent to moby's seccomp-default.json), "unconfined", or a Docker-format JSON profile.
 *
 * The filter is compiled with libseccomp once per (profile, capability set, architecture) and the
 * BPF program cached under cache_dir; later starts only read the cached program (no libseccomp on
 * the hot path) and install it with seccomp(2). */
#ifndef IMGFS_RUNNER_SECCOMP_H
#define IMGFS_RUNNER_SECCOMP_H

#include <stddef.h>
#include <stdint.h>

#include "../fs/util.h"

struct ctr_seccomp;

/* Build (or load from the cache) the filter for a container.
 * profile: NULL = the default profile, "unconfined" = no filter (*out is still set; seccomp_apply
 * is then a no-op), anything else a path to a Docker-format JSON profile (defaultAction,
 *          defaultErrnoRet, architectures/archMap, syscalls[].names/action/errnoRet/args/includes/
 *          excludes with caps, arches, minKernel).
 * caps:    the container's capability set (rules like "mount needs CAP_SYS_ADMIN" depend on it).
 * cache_dir: where compiled programs are kept (created if missing); NULL = no cache.
 * Runs in the parent, before clone. *out is freed with seccomp_free. */
int seccomp_prepare(const char *profile, uint64_t caps, const char *cache_dir,
                    struct ctr_seccomp **out, struct imgfs_err *err);

/* Install the filter in the calling process (and so in everything it execs). Call it in the
 * container's init / exec'd process as one of the last steps before execve. Does not allocate.
 * The kernel only lets a process install a filter when no_new_privs is set or CAP_SYS_ADMIN is in
 * its effective set: when the container runs without no_new_privs, call it BEFORE
 * setuid()/caps_apply() (as runc does; every syscall those need — setgroups, setresgid, setresuid,
 * capset, prctl, execve — is allowed by the default profile), otherwise after them. Fails with
 * EACCES when neither holds. */
int seccomp_apply(const struct ctr_seccomp *s, struct imgfs_err *err);

void seccomp_free(struct ctr_seccomp *s);

/* The compiled classic-BPF program (struct sock_filter[*n]); NULL for "unconfined". For tests and
 * debugging. */
const void *seccomp_program(const struct ctr_seccomp *s, size_t *n);

#endif
