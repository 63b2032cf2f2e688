/* stats.c — a running container's resource use, read from its cgroups (v1 or v2: the paths come
 * from /proc/INIT/cgroup) and its network namespace (/proc/INIT/net/dev). */
#include "cgroup.h"
#include "ctr_internal.h"

#include <stdio.h>
#include <string.h>

static bool read_u64(const char *path, uint64_t *out)
{
    FILE *f = fopen(path, "re");
    if (!f)
        return false;
    char buf[64] = "";
    bool ok = fgets(buf, sizeof buf, f) != NULL;
    fclose(f);
    if (!ok)
        return false;
    if (!strncmp(buf, "max", 3)) {
        *out = UINT64_MAX;
        return true;
    }
    char *end;
    *out = strtoull(buf, &end, 10);
    return end != buf;
}

/* "KEY VALUE" lines (cpu.stat, memory.stat) */
static bool read_key(const char *path, const char *key, uint64_t *out)
{
    FILE *f = fopen(path, "re");
    if (!f)
        return false;
    char line[256];
    bool found = false;
    size_t kl = strlen(key);
    while (!found && fgets(line, sizeof line, f))
        if (!strncmp(line, key, kl) && line[kl] == ' ') {
            *out = strtoull(line + kl + 1, NULL, 10);
            found = true;
        }
    fclose(f);
    return found;
}

/* Without a cpuacct cgroup of its own (v1 with cpu and cpuacct mounted apart, and only cpu
 * joined): the CPU time of the container's processes, and of the children they reaped. */
static void procs_cpu(const char *run_dir, const struct ctr_state *s, struct ctr_stats *st)
{
    pid_t *pids;
    size_t n;
    struct imgfs_err ignored;
    if (ctr_pids(run_dir, s, &pids, &n, &ignored) < 0)
        return;
    long hz = sysconf(_SC_CLK_TCK);
    uint64_t ticks = 0;
    for (size_t i = 0; i < n; i++) {
        char path[64], buf[1024];
        snprintf(path, sizeof path, "/proc/%d/stat", (int)pids[i]);
        FILE *f = fopen(path, "re");
        if (!f)
            continue;
        size_t len = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[len] = 0;
        char *p = strrchr(buf, ')'); /* the command may hold spaces and parentheses */
        unsigned long long ut, stime, cut, cst;
        if (p && sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %llu %llu",
                        &ut, &stime, &cut, &cst) == 4)
            ticks += ut + stime + cut + cst;
    }
    free(pids);
    st->cpu_ns = hz > 0 ? ticks * (1000000000ull / (uint64_t)hz) : 0;
}

int ctr_stats(const char *run_dir, const struct ctr_state *s, struct ctr_stats *st,
              struct imgfs_err *err)
{
    memset(st, 0, sizeof *st);
    /* Docker's stats of a stopped container: a row of zeros, no error */
    if (s->status != CTR_RUNNING || s->init_pid <= 0 || !ctr_is_live(run_dir, s->id))
        return 0;
    cleanup_free char *cg = xasprintf("/proc/%d/cgroup", (int)s->init_pid);
    FILE *f = fopen(cg, "re");
    if (!f)
        return err_sys(err, errno, "reading `%s`", cg);
    char line[1024];
    char mem[512] = "", cpu[512] = "", pids[512] = "", unified[512] = "";
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = 0;
        char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (!c2)
            continue;
        *c2 = 0;
        const char *ctrls = c1 + 1, *path = c2 + 1;
        if (!*ctrls)
            snprintf(unified, sizeof unified, "/sys/fs/cgroup%s", path);
        else if (strstr(ctrls, "memory"))
            snprintf(mem, sizeof mem, "/sys/fs/cgroup/memory%s", path);
        else if (strstr(ctrls, "cpuacct") && strcmp(path, "/")) /* "/": not the container's */
            snprintf(cpu, sizeof cpu, "/sys/fs/cgroup/%s%s", ctrls, path);
        else if (!strcmp(ctrls, "pids"))
            snprintf(pids, sizeof pids, "/sys/fs/cgroup/pids%s", path);
    }
    fclose(f);
    char p[600];
    /* the layout the container's cgroup was made in: a process on a v2 host can still be in v1
     * hierarchies mounted elsewhere (or not at all), which are not the container's */
    bool v2 = cgroup_is_v2();
    if (!v2 && *mem) {
        snprintf(p, sizeof p, "%s/memory.usage_in_bytes", mem);
        read_u64(p, &st->mem_usage);
        uint64_t cache = 0;
        snprintf(p, sizeof p, "%s/memory.stat", mem);
        if (read_key(p, "total_inactive_file", &cache) && cache < st->mem_usage)
            st->mem_usage -= cache; /* as docker stats shows it */
        snprintf(p, sizeof p, "%s/memory.limit_in_bytes", mem);
        read_u64(p, &st->mem_limit);
        snprintf(p, sizeof p, "%s/cpuacct.usage", cpu);
        if (!*cpu || !read_u64(p, &st->cpu_ns))
            procs_cpu(run_dir, s, st);
        snprintf(p, sizeof p, "%s/pids.current", pids);
        read_u64(p, &st->pids);
    } else if (v2 && *unified) {
        snprintf(p, sizeof p, "%s/memory.current", unified);
        read_u64(p, &st->mem_usage);
        uint64_t cache = 0;
        snprintf(p, sizeof p, "%s/memory.stat", unified);
        if (read_key(p, "inactive_file", &cache) && cache < st->mem_usage)
            st->mem_usage -= cache;
        snprintf(p, sizeof p, "%s/memory.max", unified);
        read_u64(p, &st->mem_limit);
        uint64_t usec = 0;
        snprintf(p, sizeof p, "%s/cpu.stat", unified);
        if (read_key(p, "usage_usec", &usec))
            st->cpu_ns = usec * 1000;
        snprintf(p, sizeof p, "%s/pids.current", unified);
        read_u64(p, &st->pids);
    } else {
        return err_set(err, ENOENT, "container %.12s has no cgroup", s->id);
    }
    /* no limit (v1's huge number, v2's "max"): the host's memory, as Docker shows */
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    uint64_t host = pages > 0 && page > 0 ? (uint64_t)pages * (uint64_t)page : 0;
    if (!st->mem_limit || st->mem_limit > host)
        st->mem_limit = host;
    cleanup_free char *net = xasprintf("/proc/%d/net/dev", (int)s->init_pid);
    if ((f = fopen(net, "re"))) {
        while (fgets(line, sizeof line, f)) {
            char name[64];
            unsigned long long rx, tx, skip;
            if (sscanf(line, " %63[^:]: %llu %llu %llu %llu %llu %llu %llu %llu %llu", name, &rx,
                       &skip, &skip, &skip, &skip, &skip, &skip, &skip, &tx) == 10 &&
                strcmp(name, "lo")) {
                st->net_rx += rx;
                st->net_tx += tx;
            }
        }
        fclose(f);
    }
    if (!ctr_is_live(run_dir, s->id))
        return err_set(err, EINVAL, "container %.12s ended", s->id);
    return 0;
}
