/* cgroup.h — a container's control group and its resource limits (--memory, --pids-limit, --cpus),
 * on cgroup v2 (unified hierarchy at /sys/fs/cgroup) or v1 (controllers memory, pids, cpu mounted
 * under /sys/fs/cgroup/<controller>, as on hybrid hosts). The group is imgfs/<id> below the cgroup
 * of the process that creates it (v1) or below the root (v2, whose no-internal-process rule forbids
 * nesting under a populated group). */
#ifndef IMGFS_RUNNER_CGROUP_H
#define IMGFS_RUNNER_CGROUP_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "../fs/util.h"

/* 0 = no limit. memory_bytes also caps memory+swap where the host accounts swap (so a hog is killed
 * at --memory instead of swapping; Docker would allow as much swap again). cpus: e.g. 1.5 = 150 ms
 * of CPU time every 100 ms. Devices: on cgroup v1 the devices controller allows, like Docker, only
 * mknod of any device and read/write of null, zero, full, random, urandom, tty, console, ptmx,
 * pts/N and net/tun — so a container with CAP_MKNOD can't mknod and open the host's disks.
 * allow_all_devices (--privileged) lifts that. On cgroup v2 the same allowlist is a
 * BPF_PROG_TYPE_CGROUP_DEVICE program attached to the container's cgroup. */
struct cgroup_limits {
    int64_t memory_bytes;
    int64_t pids;
    double cpus;
    bool allow_all_devices;
    char **device_rules; /* --device: more v1 rules ("c 10:229 rwm"), NULL-terminated, or NULL */
};

struct ctr_cgroup;

/* Create the container's cgroup and set the limits. id: the container id ([A-Za-z0-9_.-], no '/').
 * A controller the host lacks is an error only when a limit needs it (ENOTSUP). */
int cgroup_create(const char *id, const struct cgroup_limits *l, struct ctr_cgroup **out,
                  struct imgfs_err *err);
/* Move pid (and so its future children) into the cgroup. */
int cgroup_enter(const struct ctr_cgroup *c, pid_t pid, struct imgfs_err *err);
/* Start a process inside the cgroup instead of moving it there afterwards: cgroup_enter_self moves
 * the calling thread in, the caller forks or clones (the child is born inside), and
 * cgroup_leave_self moves the thread back to the cgroup it was in at cgroup_create.
 * Why: moving another process (cgroup_enter) takes the kernel's global threadgroup lock for
 * writing, and the first writer after a quiet spell waits for an RCU grace period — 6 to 15 ms on
 * this project's test host, on the critical path of every container start. A thread that writes "0"
 * (itself) to a v1 hierarchy's `tasks` file is moved without that lock (~0.1 ms).
 * While the thread is inside, the pids limit is lifted (the clone would count the caller too, and
 * --pids-limit 1 must still start); cgroup_leave_self puts it back. Between the two calls only the
 * fork/clone may run: the thread is subject to the container's limits and device rules meanwhile.
 * cgroup_enter_self returns 1 when the thread moved, 0 when this host has no such move (v2, whose
 * per-thread moves need threaded groups: use cgroup_enter after the clone), -1 on error (the
 * thread is back where it was). cgroup_leave_self returns 0 or -1; after -1 the caller must not
 * start the container. */
int cgroup_enter_self(struct ctr_cgroup *c, struct imgfs_err *err);
int cgroup_leave_self(struct ctr_cgroup *c, struct imgfs_err *err);
/* A fork-like clone (no new stack: the child returns 0 on a copy of the caller's stack) with
 * `flags` (CLONE_NEW* | exit signal) whose child is born in the cgroup: v1 through
 * cgroup_enter_self/cgroup_leave_self around the clone, v2 with clone3(CLONE_INTO_CGROUP). Where
 * clone3 is refused (ENOSYS: an old kernel, or a seccomp profile such as Docker's when imgfs itself
 * runs in a container) the child is moved in after the clone (cgroup_enter). *born_inside is set
 * before the clone, so the child reads it too: true when it starts inside. Returns the child's pid
 * in the caller, 0 in the child, -1 on error (no child left behind). */
pid_t cgroup_clone(struct ctr_cgroup *c, unsigned long flags, bool *born_inside,
                   struct imgfs_err *err);
/* The container's /sys/fs/cgroup on v2: a cgroup2 mount made inside its own cgroup namespace. */
bool cgroup_v2(const struct ctr_cgroup *c);
bool cgroup_is_v2(void);
/* Kill whatever is left in the cgroup, wait for it to empty, remove the directories and free c
 * (also on failure). c may be NULL. */
int cgroup_destroy(struct ctr_cgroup *c, struct imgfs_err *err);
/* The same for the cgroup of a container found dead by id (no handle). Not existing is success. */
int cgroup_remove_by_id(const char *id, struct imgfs_err *err);
/* The container's v1 cgroup directories on the host, for its read-only /sys/fs/cgroup view:
 * mounts[i] is the hierarchy's directory name under /sys/fs/cgroup ("memory", "cpu,cpuacct"),
 * dirs[i] the container's directory in it. Returns how many (at most max); 0 on v2. The strings
 * live as long as c. */
size_t cgroup_v1_view(const struct ctr_cgroup *c, const char **mounts, const char **dirs,
                      size_t max);
/* 1 when the memory limit killed something in this cgroup, 0 when not, -1 when unknown. */
int cgroup_oom_killed(const struct ctr_cgroup *c);

#endif
