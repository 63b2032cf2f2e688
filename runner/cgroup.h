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
