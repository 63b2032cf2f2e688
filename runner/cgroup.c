/* cgroup.c — a container's control group on cgroup v2 or v1.
 *
 * v1 (hybrid hosts, this project's test machine): one directory per controller (memory, pids, cpu,
 * devices) at <mount>/<our own cgroup>/imgfs/<id>, so a container stays inside whatever limits the
 * caller itself runs under. v2: <root>/imgfs/<id> with the memory, pids and cpu controllers enabled
 * on the way down (v2 forbids enabling controllers below a cgroup that has processes, so nesting
 * under our own cgroup would not work). */
#include "cgroup.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>

#ifndef CGROUP2_SUPER_MAGIC
#define CGROUP2_SUPER_MAGIC 0x63677270
#endif

#define CGROUP_ROOT "/sys/fs/cgroup"

/* Where the v2 hierarchy is: /sys/fs/cgroup, or IMGFS_CGROUP2_ROOT — a test hook that lets the unit
 * test drive the v2 code on a hybrid host through its /sys/fs/cgroup/unified. */
static const char *v2_root(void)
{
    const char *r = getenv("IMGFS_CGROUP2_ROOT");
    return r && *r ? r : CGROUP_ROOT;
}

enum { V1_MEMORY, V1_PIDS, V1_CPU, V1_DEVICES, V1_COUNT };
static const char *const v1_names[V1_COUNT] = {"memory", "pids", "cpu", "devices"};
/* where each v1 controller may be mounted; the first that exists wins */
static const char *const v1_mounts[V1_COUNT][3] = {
    {CGROUP_ROOT "/memory", NULL},
    {CGROUP_ROOT "/pids", NULL},
    {CGROUP_ROOT "/cpu", CGROUP_ROOT "/cpu,cpuacct", NULL},
    {CGROUP_ROOT "/devices", NULL},
};

struct ctr_cgroup {
    bool v2;
    char *dir[V1_COUNT]; /* v2: dir[0] only; v1: one per controller, NULL when the host lacks it */
    /* v1: the hierarchy's mount each dir is in (v1_mounts), found once at create */
    const char *mount[V1_COUNT];
    int64_t pids; /* the pids limit, put back by cgroup_leave_self */
};

bool cgroup_is_v2(void)
{
    struct statfs s;
    return statfs(v2_root(), &s) == 0 && s.f_type == CGROUP2_SUPER_MAGIC;
}

static int id_check(const char *id, struct imgfs_err *err)
{
    size_t n = strlen(id);
    if (n == 0 || n > 128 || strcmp(id, ".") == 0 || strcmp(id, "..") == 0 ||
        strspn(id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") != n)
        return err_set(err, EINVAL, "bad container id `%s` for a cgroup", id);
    return 0;
}

static int write_str(const char *dir, const char *file, const char *value, struct imgfs_err *err)
{
    cleanup_free char *path = xasprintf("%s/%s", dir, file);
    cleanup_close int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return err_sys(err, errno, "opening `%s`", path);
    /* one write() per value: cgroup files take one value per write */
    ssize_t n;
    do
        n = write(fd, value, strlen(value));
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return err_sys(err, errno, "writing `%s` to `%s`", value, path);
    return 0;
}

/* Our own path in each v1 hierarchy we use, from /proc/self/cgroup ("4:memory:/a/b"); "" for the
 * root. One read for all controllers: this is on every container start. */
static void v1_own_paths(char *own[V1_COUNT])
{
    struct buf b = {0};
    struct imgfs_err ignored;
    memset(own, 0, sizeof(char *) * V1_COUNT);
    if (read_file("/proc/self/cgroup", 1 << 20, &b, &ignored) == 0) {
        buf_append(&b, "", 1);
        for (char *save = NULL, *line = strtok_r((char *)b.data, "\n", &save); line;
             line = strtok_r(NULL, "\n", &save)) {
            char *list = strchr(line, ':'), *path = list ? strchr(list + 1, ':') : NULL;
            if (!path)
                continue;
            *path++ = 0;
            list++;
            for (char *s2 = NULL, *c = strtok_r(list, ",", &s2); c; c = strtok_r(NULL, ",", &s2))
                for (int i = 0; i < V1_COUNT; i++)
                    if (!own[i] && strcmp(c, v1_names[i]) == 0)
                        own[i] = xstrdup(strcmp(path, "/") == 0 ? "" : path);
        }
    }
    buf_free(&b);
    for (int i = 0; i < V1_COUNT; i++)
        if (!own[i])
            own[i] = xstrdup("");
}

static const char *v1_mount(int c)
{
    for (int i = 0; v1_mounts[c][i]; i++) {
        struct statfs s;
        if (statfs(v1_mounts[c][i], &s) == 0 && s.f_type != CGROUP2_SUPER_MAGIC &&
            access(v1_mounts[c][i], W_OK) == 0) {
            cleanup_free char *procs = xasprintf("%s/cgroup.procs", v1_mounts[c][i]);
            if (access(procs, F_OK) == 0)
                return v1_mounts[c][i];
        }
    }
    return NULL;
}

/* The directories a container's cgroup has (or would have). own = below our own cgroup, else
 * below the hierarchy's root (where a process in another cgroup looks when cleaning up). v1: the
 * mount each is in goes to mount[] (NULL: not wanted). */
static void cgroup_dirs(const char *id, bool v2, bool own, char *dir[V1_COUNT],
                        const char *mount[V1_COUNT])
{
    memset(dir, 0, sizeof(char *) * V1_COUNT);
    if (v2) {
        dir[0] = xasprintf("%s/imgfs/%s", v2_root(), id);
        return;
    }
    char *self[V1_COUNT] = {0};
    if (own)
        v1_own_paths(self);
    for (int c = 0; c < V1_COUNT; c++) {
        const char *m = v1_mount(c);
        if (m)
            dir[c] = xasprintf("%s%s/imgfs/%s", m, self[c] ? self[c] : "", id);
        if (mount)
            mount[c] = m;
        free(self[c]);
    }
}

/* v2: enable the controllers for the children of dir (ignoring ones the host lacks). */
static void v2_enable(const char *dir);

/* mkdir a container's group and its imgfs/ parent. Another container's teardown removes that parent
 * when it looks empty, possibly between our two mkdirs (containers starting and ending at once):
 * then make it again. */
static int make_group(const char *dir, bool v2, struct imgfs_err *err)
{
    cleanup_free char *parent = xstrdup(dir);
    *strrchr(parent, '/') = 0;
    for (int tries = 0;; tries++) {
        if (mkdir(parent, 0755) < 0 && errno != EEXIST)
            return err_sys(err, errno, "creating cgroup directory `%s`", parent);
        if (v2)
            v2_enable(parent);
        if (mkdir(dir, 0755) == 0 || errno == EEXIST)
            return 0;
        if (errno != ENOENT || tries >= 100)
            return err_sys(err, errno, "creating cgroup directory `%s`", dir);
    }
}

static void v2_enable(const char *dir)
{
    static const char *const ctl[] = {"+memory", "+pids", "+cpu"};
    for (size_t i = 0; i < sizeof ctl / sizeof ctl[0]; i++) {
        struct imgfs_err ignored;
        write_str(dir, "cgroup.subtree_control", ctl[i], &ignored);
    }
}

/* Whether a v2 controller is available in dir (listed in its cgroup.controllers, i.e. enabled in
 * its parent's subtree_control). */
static bool v2_has_controller(const char *dir, const char *name)
{
    cleanup_free char *path = xasprintf("%s/cgroup.controllers", dir);
    struct buf b = {0};
    struct imgfs_err ignored;
    bool found = false;
    if (read_file(path, 1 << 16, &b, &ignored) == 0) {
        buf_append(&b, "", 1);
        for (char *save = NULL, *t = strtok_r((char *)b.data, " \n", &save); t && !found;
             t = strtok_r(NULL, " \n", &save))
            found = strcmp(t, name) == 0;
    }
    buf_free(&b);
    return found;
}

/* A limit on v2: a missing controller is said as such (its files would just be missing), e.g. on
 * a host that left it bound to a v1 hierarchy or did not delegate it. */
static int v2_limit(const char *dir, const char *flag, const char *controller, const char *file,
                    const char *value, struct imgfs_err *err)
{
    if (!v2_has_controller(dir, controller))
        return err_set(err, ENOTSUP,
                       "%s: the host's cgroup v2 hierarchy has no %s controller for `%s` (not in "
                       "its cgroup.controllers)",
                       flag, controller, dir);
    return write_str(dir, file, value, err);
}

static int set_v2(const char *dir, const struct cgroup_limits *l, struct imgfs_err *err)
{
    char v[64];
    if (l->memory_bytes > 0) {
        snprintf(v, sizeof v, "%lld", (long long)l->memory_bytes);
        if (v2_limit(dir, "--memory", "memory", "memory.max", v, err) < 0)
            return -1;
        struct imgfs_err ignored; /* no swap accounting on this host: nothing to cap */
        write_str(dir, "memory.swap.max", "0", &ignored);
    }
    if (l->pids > 0) {
        snprintf(v, sizeof v, "%lld", (long long)l->pids);
        if (v2_limit(dir, "--pids-limit", "pids", "pids.max", v, err) < 0)
            return -1;
    }
    if (l->cpus > 0) {
        snprintf(v, sizeof v, "%lld 100000", (long long)(l->cpus * 100000 + 0.5));
        if (v2_limit(dir, "--cpus", "cpu", "cpu.max", v, err) < 0)
            return -1;
    }
    return 0;
}

/* Docker's default device allowlist (runc's AllowedDevices), as v1 rules: the v1 devices controller
 * takes them as written, the v2 program (below) is built from the same text. */
static const char *const allowed_devices[] = {
    "c *:* m",   "b *:* m",   "c 1:3 rwm", "c 1:5 rwm", "c 1:7 rwm",   "c 1:8 rwm",
    "c 1:9 rwm", "c 5:0 rwm", "c 5:1 rwm", "c 5:2 rwm", "c 136:* rwm", "c 10:200 rwm",
};
#define N_ALLOWED_DEVICES (sizeof allowed_devices / sizeof allowed_devices[0])

/* One v1 rule ("c 10:229 rw", "b 8:* m", "a *:* rwm") as the v2 program matches it. */
struct dev_rule {
    int32_t type;         /* BPF_DEVCG_DEV_CHAR or _BLOCK; 0 = any ('a') */
    int64_t major, minor; /* -1 = any ('*') */
    uint32_t access;      /* BPF_DEVCG_ACC_* bits allowed */
};

static int dev_number_parse(const char *s, const char **end, int64_t *out)
{
    if (*s == '*') {
        *out = -1;
        *end = s + 1;
        return 0;
    }
    char *e;
    errno = 0;
    long long v = strtoll(s, &e, 10);
    if (e == s || errno || v < 0 || v > INT32_MAX)
        return -1;
    *out = v;
    *end = e;
    return 0;
}

static int dev_rule_parse(const char *s, struct dev_rule *r, struct imgfs_err *err)
{
    const char *p = s + 2;
    memset(r, 0, sizeof *r);
    if (!s[0] || s[1] != ' ' || !strchr("cba", s[0]) || dev_number_parse(p, &p, &r->major) < 0 ||
        *p++ != ':' || dev_number_parse(p, &p, &r->minor) < 0 || *p++ != ' ' || !*p ||
        strspn(p, "rwm") != strlen(p))
        return err_set(err, EINVAL, "bad device rule `%s`", s);
    r->type = s[0] == 'c' ? BPF_DEVCG_DEV_CHAR : s[0] == 'b' ? BPF_DEVCG_DEV_BLOCK : 0;
    r->access = (strchr(p, 'r') ? BPF_DEVCG_ACC_READ : 0) |
                (strchr(p, 'w') ? BPF_DEVCG_ACC_WRITE : 0) |
                (strchr(p, 'm') ? BPF_DEVCG_ACC_MKNOD : 0);
    return 0;
}

#define INSN(c, d, s, o, i)                                                                        \
    ((struct bpf_insn){.code = (c), .dst_reg = (d), .src_reg = (s), .off = (o), .imm = (i)})
#define ACC_ALL (BPF_DEVCG_ACC_MKNOD | BPF_DEVCG_ACC_READ | BPF_DEVCG_ACC_WRITE)

/* cgroup v2 has no devices controller: access to device nodes is decided by a
 * BPF_PROG_TYPE_CGROUP_DEVICE program attached to the cgroup, run on every mknod and open of a
 * device node (what runc's libcontainer/cgroups/devices/devicefilter.go and crun generate): allow
 * when one rule matches, else deny. Per rule: type, then the access asked for within the rule's
 * (JSET: any bit outside them skips the rule), then major and minor; a field that is any is not
 * tested. Returns the number of instructions written to p, which has room for 8 + 6 per rule. */
static size_t v2_device_program(const struct dev_rule *rules, size_t n_rules, struct bpf_insn *p)
{
    size_t n = 0;
    /* r2 = access (high 16 bits of access_type), r3 = type (low 16), r4 = major, r5 = minor */
    p[n++] =
        INSN(BPF_LDX | BPF_MEM | BPF_W, 2, 1, offsetof(struct bpf_cgroup_dev_ctx, access_type), 0);
    p[n++] = INSN(BPF_ALU64 | BPF_MOV | BPF_X, 3, 2, 0, 0);
    p[n++] = INSN(BPF_ALU64 | BPF_AND | BPF_K, 3, 0, 0, 0xffff);
    p[n++] = INSN(BPF_ALU64 | BPF_RSH | BPF_K, 2, 0, 0, 16);
    p[n++] = INSN(BPF_LDX | BPF_MEM | BPF_W, 4, 1, offsetof(struct bpf_cgroup_dev_ctx, major), 0);
    p[n++] = INSN(BPF_LDX | BPF_MEM | BPF_W, 5, 1, offsetof(struct bpf_cgroup_dev_ctx, minor), 0);
    for (size_t i = 0; i < n_rules; i++) {
        const struct dev_rule *r = &rules[i];
        size_t tests[4], n_tests = 0; /* each jumps past this rule when it does not match */
        if (r->type) {
            tests[n_tests++] = n;
            p[n++] = INSN(BPF_JMP | BPF_JNE | BPF_K, 3, 0, 0, r->type);
        }
        if ((r->access & ACC_ALL) != ACC_ALL) {
            tests[n_tests++] = n;
            p[n++] = INSN(BPF_JMP | BPF_JSET | BPF_K, 2, 0, 0, (int32_t)(~r->access & ACC_ALL));
        }
        if (r->major >= 0) {
            tests[n_tests++] = n;
            p[n++] = INSN(BPF_JMP | BPF_JNE | BPF_K, 4, 0, 0, (int32_t)r->major);
        }
        if (r->minor >= 0) {
            tests[n_tests++] = n;
            p[n++] = INSN(BPF_JMP | BPF_JNE | BPF_K, 5, 0, 0, (int32_t)r->minor);
        }
        p[n++] = INSN(BPF_ALU64 | BPF_MOV | BPF_K, 0, 0, 0, 1);
        p[n++] = INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0);
        for (size_t t = 0; t < n_tests; t++)
            p[tests[t]].off = (int16_t)(n - tests[t] - 1);
    }
    p[n++] = INSN(BPF_ALU64 | BPF_MOV | BPF_K, 0, 0, 0, 0);
    p[n++] = INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0);
    return n;
}

/* Docker's allowlist and the --device rules (v1 text) as a device program on dir. */
static int v2_restrict_devices(const char *dir, char *const *extra, struct imgfs_err *err)
{
    size_t n_extra = 0;
    while (extra && extra[n_extra])
        n_extra++;
    size_t n_rules = N_ALLOWED_DEVICES + n_extra;
    cleanup_free struct dev_rule *rules = xcalloc(n_rules, sizeof *rules);
    for (size_t i = 0; i < n_rules; i++) {
        const char *text =
            i < N_ALLOWED_DEVICES ? allowed_devices[i] : extra[i - N_ALLOWED_DEVICES];
        if (dev_rule_parse(text, &rules[i], err) < 0)
            return err_ctx(err, "--device");
    }
    cleanup_free struct bpf_insn *prog = xcalloc(8 + 6 * n_rules, sizeof *prog);
    size_t n = v2_device_program(rules, n_rules, prog);
    union bpf_attr load = {0};
    load.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
    load.insns = (uint64_t)(uintptr_t)prog;
    load.insn_cnt = (uint32_t)n;
    load.license = (uint64_t)(uintptr_t) "Apache-2.0";
    cleanup_close int prog_fd = (int)syscall(SYS_bpf, BPF_PROG_LOAD, &load, sizeof load);
    if (prog_fd < 0) {
        /* once more with the verifier's log, to say why */
        int e = errno;
        char log[8192] = "";
        load.log_buf = (uint64_t)(uintptr_t)log;
        load.log_size = sizeof log;
        load.log_level = 1;
        prog_fd = (int)syscall(SYS_bpf, BPF_PROG_LOAD, &load, sizeof load);
        return err_sys(err, e,
                       "loading the device-access BPF program (cgroup v2 has no other way to "
                       "restrict devices)%s%.300s",
                       log[0] ? ": " : "", log);
    }
    cleanup_close int dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir_fd < 0)
        return err_sys(err, errno, "opening `%s`", dir);
    union bpf_attr attach = {0};
    attach.target_fd = (uint32_t)dir_fd;
    attach.attach_bpf_fd = (uint32_t)prog_fd;
    attach.attach_type = BPF_CGROUP_DEVICE;
    attach.attach_flags = BPF_F_ALLOW_MULTI; /* runs alongside whatever the parents enforce */
    if (syscall(SYS_bpf, BPF_PROG_ATTACH, &attach, sizeof attach) < 0)
        return err_sys(err, errno, "attaching the device-access program to `%s`", dir);
    return 0; /* the cgroup holds the program now; our descriptors can go */
}

static int set_v1(char *dir[V1_COUNT], const struct cgroup_limits *l, struct imgfs_err *err)
{
    char v[64];
    if (l->memory_bytes > 0) {
        if (!dir[V1_MEMORY])
            return err_set(err, ENOTSUP, "--memory: the host has no memory cgroup");
        snprintf(v, sizeof v, "%lld", (long long)l->memory_bytes);
        if (write_str(dir[V1_MEMORY], "memory.limit_in_bytes", v, err) < 0)
            return -1;
        cleanup_free char *memsw = xasprintf("%s/memory.memsw.limit_in_bytes", dir[V1_MEMORY]);
        if (access(memsw, F_OK) == 0 &&
            write_str(dir[V1_MEMORY], "memory.memsw.limit_in_bytes", v, err) < 0)
            return -1;
    }
    if (l->pids > 0) {
        if (!dir[V1_PIDS])
            return err_set(err, ENOTSUP, "--pids-limit: the host has no pids cgroup");
        snprintf(v, sizeof v, "%lld", (long long)l->pids);
        if (write_str(dir[V1_PIDS], "pids.max", v, err) < 0)
            return -1;
    }
    if (l->cpus > 0) {
        if (!dir[V1_CPU])
            return err_set(err, ENOTSUP, "--cpus: the host has no cpu cgroup");
        if (write_str(dir[V1_CPU], "cpu.cfs_period_us", "100000", err) < 0)
            return -1;
        snprintf(v, sizeof v, "%lld", (long long)(l->cpus * 100000 + 0.5));
        if (write_str(dir[V1_CPU], "cpu.cfs_quota_us", v, err) < 0)
            return -1;
    }
    if (dir[V1_DEVICES] && !l->allow_all_devices) {
        if (write_str(dir[V1_DEVICES], "devices.deny", "a", err) < 0)
            return -1;
        /* one open for the whole list: the file takes one rule per write() */
        cleanup_free char *path = xasprintf("%s/devices.allow", dir[V1_DEVICES]);
        cleanup_close int fd = open(path, O_WRONLY | O_CLOEXEC);
        if (fd < 0)
            return err_sys(err, errno, "opening `%s`", path);
        for (size_t i = 0; i < N_ALLOWED_DEVICES; i++) {
            ssize_t n;
            do
                n = write(fd, allowed_devices[i], strlen(allowed_devices[i]));
            while (n < 0 && errno == EINTR);
            if (n < 0)
                return err_sys(err, errno, "writing `%s` to `%s`", allowed_devices[i], path);
        }
        for (size_t i = 0; l->device_rules && l->device_rules[i]; i++) {
            const char *rule = l->device_rules[i];
            ssize_t n;
            do
                n = write(fd, rule, strlen(rule));
            while (n < 0 && errno == EINTR);
            if (n < 0)
                return err_sys(err, errno, "--device: writing `%s` to `%s`", rule, path);
        }
    } else if (!dir[V1_DEVICES] && l->device_rules && !l->allow_all_devices) {
        return err_set(err, ENOTSUP, "--device: the host has no devices cgroup");
    }
    return 0;
}

int cgroup_create(const char *id, const struct cgroup_limits *l, struct ctr_cgroup **out,
                  struct imgfs_err *err)
{
    if (id_check(id, err) < 0)
        return -1;
    struct ctr_cgroup *c = xcalloc(1, sizeof *c);
    c->v2 = cgroup_is_v2();
    c->pids = l->pids;
    cgroup_dirs(id, c->v2, true, c->dir, c->mount);
    if (c->v2) {
        v2_enable(v2_root());
        if (make_group(c->dir[0], true, err) < 0 || set_v2(c->dir[0], l, err) < 0)
            goto fail;
        if (!l->allow_all_devices && v2_restrict_devices(c->dir[0], l->device_rules, err) < 0)
            goto fail;
    } else {
        for (int i = 0; i < V1_COUNT; i++)
            if (c->dir[i] && make_group(c->dir[i], false, err) < 0)
                goto fail;
        if (set_v1(c->dir, l, err) < 0)
            goto fail;
    }
    *out = c;
    return 0;
fail:
    err_ctx(err, "creating the cgroup of container %s", id);
    struct imgfs_err ignored;
    cgroup_destroy(c, &ignored);
    return -1;
}

size_t cgroup_v1_view(const struct ctr_cgroup *c, const char **mounts, const char **dirs,
                      size_t max)
{
    static const size_t root_len = sizeof CGROUP_ROOT; /* with its '/' */
    size_t n = 0;
    for (int i = 0; !c->v2 && i < V1_COUNT && n < max; i++) {
        /* dir = /sys/fs/cgroup/<mount>/<path> */
        const char *m = c->mount[i];
        if (!c->dir[i] || !m || strlen(m) <= root_len)
            continue;
        mounts[n] = m + root_len;
        dirs[n++] = c->dir[i];
    }
    return n;
}

int cgroup_enter(const struct ctr_cgroup *c, pid_t pid, struct imgfs_err *err)
{
    char v[32];
    snprintf(v, sizeof v, "%d", (int)pid);
    for (int i = 0; i < V1_COUNT; i++)
        if (c->dir[i] && write_str(c->dir[i], "cgroup.procs", v, err) < 0)
            return err_ctx(err, "moving process %d into its cgroup", (int)pid);
    return 0;
}

int cgroup_enter_self(struct ctr_cgroup *c, struct imgfs_err *err)
{
    if (c->v2)
        return 0;
    if (c->pids > 0 && c->dir[V1_PIDS] && write_str(c->dir[V1_PIDS], "pids.max", "max", err) < 0)
        return -1;
    for (int i = 0; i < V1_COUNT; i++)
        if (c->dir[i] && write_str(c->dir[i], "tasks", "0", err) < 0) {
            struct imgfs_err ignored;
            cgroup_leave_self(c, &ignored);
            return err_ctx(err, "moving into the container's cgroup");
        }
    return 1;
}

int cgroup_leave_self(struct ctr_cgroup *c, struct imgfs_err *err)
{
    int ret = 0;
    for (int i = 0; i < V1_COUNT && !c->v2; i++) {
        if (!c->dir[i])
            continue;
        /* dir is <mount><our cgroup at create>/imgfs/<id> */
        cleanup_free char *home = xstrdup(c->dir[i]);
        *strrchr(home, '/') = 0;
        *strrchr(home, '/') = 0;
        if (write_str(home, "tasks", "0", err) < 0)
            ret = err_ctx(err, "moving back out of the container's cgroup");
    }
    if (ret == 0 && c->pids > 0 && c->dir[V1_PIDS]) {
        char v[32];
        snprintf(v, sizeof v, "%lld", (long long)c->pids);
        ret = write_str(c->dir[V1_PIDS], "pids.max", v, err);
    }
    return ret;
}

bool cgroup_v2(const struct ctr_cgroup *c)
{
    return c->v2;
}

static void reap(pid_t pid)
{
    kill(pid, SIGKILL);
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
        ;
}

pid_t cgroup_clone(struct ctr_cgroup *c, unsigned long flags, bool *born_inside,
                   struct imgfs_err *err)
{
    pid_t pid;
    *born_inside = true;
    if (!c->v2) {
        if (cgroup_enter_self(c, err) < 0)
            return -1;
        pid = (pid_t)syscall(SYS_clone, flags, NULL, NULL, NULL, NULL);
        if (pid == 0)
            return 0;
        int clone_errno = errno;
        if (cgroup_leave_self(c, err) < 0) {
            if (pid > 0)
                reap(pid);
            return -1;
        }
        return pid > 0 ? pid : err_sys(err, clone_errno, "clone");
    }
    cleanup_close int dir = open(c->dir[0], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir < 0)
        return err_sys(err, errno, "opening `%s`", c->dir[0]);
    struct clone_args ca = {.flags = (flags & ~(unsigned long)CSIGNAL) | CLONE_INTO_CGROUP,
                            .exit_signal = flags & CSIGNAL,
                            .cgroup = (uint64_t)dir};
    pid = (pid_t)syscall(SYS_clone3, &ca, sizeof ca);
    if (pid >= 0)
        return pid;
    if (errno != ENOSYS)
        return err_sys(err, errno, "clone3 into `%s`", c->dir[0]);
    *born_inside = false;
    pid = (pid_t)syscall(SYS_clone, flags, NULL, NULL, NULL, NULL);
    if (pid <= 0)
        return pid == 0 ? 0 : err_sys(err, errno, "clone");
    if (cgroup_enter(c, pid, err) < 0) {
        reap(pid);
        return -1;
    }
    return pid;
}

/* SIGKILL everything listed in dir/cgroup.procs; returns how many were listed, -1 when the
 * directory is gone. */
static int kill_listed(const char *dir)
{
    cleanup_free char *path = xasprintf("%s/cgroup.procs", dir);
    struct buf b = {0};
    struct imgfs_err ignored;
    if (read_file(path, 16 << 20, &b, &ignored) < 0)
        return -1;
    buf_append(&b, "", 1);
    int n = 0;
    for (char *save = NULL, *t = strtok_r((char *)b.data, "\n", &save); t;
         t = strtok_r(NULL, "\n", &save)) {
        pid_t p = (pid_t)atoi(t);
        /* never ourselves: a thread of ours left inside by a failed cgroup_leave_self */
        if (p > 0 && p != getpid()) {
            kill(p, SIGKILL);
            n++;
        }
    }
    buf_free(&b);
    return n;
}

/* Kill what is left in dir and remove it. A dying process stays listed until its exit finishes, so
 * retry (bounded) until the kernel lets the directory go. */
static int kill_and_remove(const char *dir, struct imgfs_err *err)
{
    cleanup_free char *kill_file = xasprintf("%s/cgroup.kill", dir);
    if (access(kill_file, F_OK) == 0) {
        struct imgfs_err ignored;
        write_str(dir, "cgroup.kill", "1", &ignored);
    }
    for (int tries = 0;; tries++) {
        int left = kill_listed(dir);
        if (rmdir(dir) == 0 || errno == ENOENT)
            return 0;
        if (errno != EBUSY ||
            tries >= 2000) /* 10 s of 5 ms steps: something unkillable (D state) */
            return err_sys(err, errno, "removing cgroup `%s` (%d processes left)", dir, left);
        nanosleep(&(struct timespec){0, 5 * 1000 * 1000}, NULL);
    }
}

/* Remove dir, killing what is left in it, and, when empty, its imgfs/ parent. The plain rmdir comes
 * first: the kernel refuses it (EBUSY) while any process is inside, and on the common path — the
 * init reaped, nothing left — it is all that is needed, where looking first cost five syscalls per
 * hierarchy (two probes, cgroup.procs opened and read) at every container's end. */
static int remove_dir(const char *dir, struct imgfs_err *err)
{
    if (!dir)
        return 0;
    if (rmdir(dir) < 0 && errno != ENOENT) {
        if (errno != EBUSY)
            return err_sys(err, errno, "removing cgroup `%s`", dir);
        if (kill_and_remove(dir, err) < 0)
            return -1;
    }
    char *parent = xstrdup(dir);
    *strrchr(parent, '/') = 0;
    rmdir(parent); /* fails while another container uses it: fine */
    free(parent);
    return 0;
}

int cgroup_destroy(struct ctr_cgroup *c, struct imgfs_err *err)
{
    if (!c)
        return 0;
    int ret = 0;
    for (int i = 0; i < V1_COUNT; i++) {
        if (remove_dir(c->dir[i], err) < 0)
            ret = -1;
        free(c->dir[i]);
    }
    free(c);
    return ret;
}

int cgroup_remove_by_id(const char *id, struct imgfs_err *err)
{
    if (id_check(id, err) < 0)
        return -1;
    int ret = 0;
    bool v2 = cgroup_is_v2();
    for (int own = 1; own >= 0; own--) {
        char *dir[V1_COUNT];
        cgroup_dirs(id, v2, own, dir, NULL);
        for (int i = 0; i < V1_COUNT; i++) {
            if (remove_dir(dir[i], err) < 0)
                ret = -1;
            free(dir[i]);
        }
        if (v2)
            break;
    }
    return ret;
}

/* The number after `key` in a "key value" per line file (memory.events, memory.oom_control). */
static long long read_key(const char *dir, const char *file, const char *key)
{
    cleanup_free char *path = xasprintf("%s/%s", dir, file);
    struct buf b = {0};
    struct imgfs_err ignored;
    long long v = -1;
    if (read_file(path, 1 << 16, &b, &ignored) < 0)
        return -1;
    buf_append(&b, "", 1);
    size_t kl = strlen(key);
    for (char *save = NULL, *t = strtok_r((char *)b.data, "\n", &save); t;
         t = strtok_r(NULL, "\n", &save))
        if (strncmp(t, key, kl) == 0 && t[kl] == ' ')
            v = atoll(t + kl + 1);
    buf_free(&b);
    return v;
}

int cgroup_oom_killed(const struct ctr_cgroup *c)
{
    long long n;
    if (c->v2)
        n = read_key(c->dir[0], "memory.events", "oom_kill");
    else if (c->dir[V1_MEMORY])
        n = read_key(c->dir[V1_MEMORY], "memory.oom_control", "oom_kill");
    else
        n = -1;
    return n < 0 ? -1 : n > 0;
}
