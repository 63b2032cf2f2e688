/* test_cgroup.c — a container cgroup for real: limits written, a process moved in, a memory hog
 * OOM-killed and reported, a fork loop stopped at the pids limit, leftovers killed on destroy.
 * Needs root and a writable cgroup hierarchy; skips otherwise. */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>

#include "../../runner/cgroup.h"
#include "unit.h"

/* The line of /proc/PID/cgroup for a controller ("memory"; "" = the v2 line). */
static bool in_cgroup(pid_t pid, const char *controller, const char *suffix)
{
    char path[64], line[512];
    snprintf(path, sizeof path, "/proc/%d/cgroup", (int)pid);
    FILE *f = fopen(path, "re");
    bool found = false;
    while (f && fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = 0;
        char *list = strchr(line, ':'), *p = list ? strchr(list + 1, ':') : NULL;
        if (!p)
            continue;
        *p++ = 0;
        size_t n = strlen(p), sn = strlen(suffix);
        if ((strcmp(list + 1, controller) == 0) && n >= sn && strcmp(p + n - sn, suffix) == 0)
            found = true;
    }
    if (f)
        fclose(f);
    return found;
}

/* A child that waits on a pipe (so the parent can move it first), then runs fn. */
static pid_t spawn(int (*fn)(void), int *go)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0)
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        char c;
        close(p[1]);
        if (read(p[0], &c, 1) != 1)
            _exit(99);
        _exit(fn());
    }
    close(p[0]);
    *go = p[1];
    return pid;
}

static int memory_hog(void)
{
    /* 64 MiB touched page by page under a 16 MiB limit */
    size_t n = 64 << 20;
    char *m = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED)
        return 2;
    for (size_t i = 0; i < n; i += 4096)
        m[i] = 1;
    return 0;
}

static int fork_loop(void)
{
    /* under pids.max = 8 the 8th process can't be made: fork must fail with EAGAIN */
    for (int i = 0; i < 64; i++) {
        pid_t p = fork();
        if (p < 0)
            return errno == EAGAIN ? 0 : 3;
        if (p == 0) {
            pause();
            _exit(0);
        }
    }
    return 4; /* never limited */
}

static int sleeper(void)
{
    if (fork() == 0)
        pause(); /* a grandchild too, which destroy must kill */
    pause();
    return 0;
}

/* The devices allowlist: mknod of anything is allowed, opening only the standard nodes. */
static int device_check(void)
{
    char dir[] = "/tmp/imgfs-test-dev.XXXXXX", node[64];
    if (!mkdtemp(dir))
        return 5;
    snprintf(node, sizeof node, "%s/disk", dir);
    int rc = 0;
    if (mknod(node, S_IFBLK | 0600, makedev(7, 0)) < 0) /* loop0 */
        rc = 6;
    else if (open(node, O_RDONLY | O_CLOEXEC) >= 0 || errno != EPERM)
        rc = 7;
    if (open("/dev/null", O_RDWR | O_CLOEXEC) < 0)
        rc = 8;
    unlink(node);
    rmdir(dir);
    return rc;
}

/* With every device allowed, a loop device node opens (ENXIO without a backing file is fine: the
 * cgroup let the open reach the driver). */
static int device_open_ok(void)
{
    char dir[] = "/tmp/imgfs-test-dev.XXXXXX", node[64];
    if (!mkdtemp(dir))
        return 5;
    snprintf(node, sizeof node, "%s/disk", dir);
    int rc = 0;
    if (mknod(node, S_IFBLK | 0600, makedev(7, 0)) < 0)
        rc = 6;
    else {
        int fd = open(node, O_RDONLY | O_CLOEXEC);
        if (fd < 0 && errno == EPERM)
            rc = 7;
        if (fd >= 0)
            close(fd);
    }
    unlink(node);
    rmdir(dir);
    return rc;
}

/* With "b 7:0 r" allowed (--device /dev/loop0:/dev/loop0:r): the node opens for reading (ENXIO
 * without a backing file is fine: the cgroup let it reach the driver), not for writing; loop1 not
 * at all. */
static int device_read_only(void)
{
    char dir[] = "/tmp/imgfs-test-dev.XXXXXX", node[64], other[64];
    if (!mkdtemp(dir))
        return 5;
    snprintf(node, sizeof node, "%s/loop0", dir);
    snprintf(other, sizeof other, "%s/loop1", dir);
    int rc = 0, fd;
    if (mknod(node, S_IFBLK | 0600, makedev(7, 0)) < 0 ||
        mknod(other, S_IFBLK | 0600, makedev(7, 1)) < 0)
        rc = 6;
    else if ((fd = open(node, O_RDONLY | O_CLOEXEC)) < 0 && errno == EPERM)
        rc = 7;
    else if ((fd >= 0 && close(fd) < 0) || open(node, O_WRONLY | O_CLOEXEC) >= 0 || errno != EPERM)
        rc = 8;
    else if (open(other, O_RDONLY | O_CLOEXEC) >= 0 || errno != EPERM)
        rc = 9;
    else if (open("/dev/null", O_RDWR | O_CLOEXEC) < 0)
        rc = 10;
    unlink(node);
    unlink(other);
    rmdir(dir);
    return rc;
}

static int run_in(struct ctr_cgroup *c, int (*fn)(void), int *status)
{
    struct imgfs_err err = {0};
    int go;
    pid_t pid = spawn(fn, &go);
    if (pid < 0)
        return -1;
    int rc = cgroup_enter(c, pid, &err);
    CHECK(rc == 0, "cgroup_enter: %s", err.msg);
    if (write(go, "x", 1) != 1)
        rc = -1;
    close(go);
    if (status) {
        waitpid(pid, status, 0);
        return rc;
    }
    return rc < 0 ? -1 : pid;
}

static bool exists(const char *p)
{
    return access(p, F_OK) == 0;
}

int main(void)
{
    if (geteuid() != 0 || access("/sys/fs/cgroup", W_OK) != 0) {
        printf("SKIP cgroup tests need root and a writable /sys/fs/cgroup\n0 passed, 0 failed\n");
        return 0;
    }
    struct imgfs_err err = {0};
    struct ctr_cgroup *c = NULL;
    char id[64];
    snprintf(id, sizeof id, "unit-test-%d", (int)getpid());
    bool v2 = cgroup_is_v2();
    printf("  cgroup v%d\n", v2 ? 2 : 1);

    CHECK(cgroup_create("../x", &(struct cgroup_limits){0}, &c, &err) < 0 && err.code == EINVAL,
          "bad id");

    struct cgroup_limits l = {.memory_bytes = 16 << 20, .pids = 8, .cpus = 0.5};
    CHECK(cgroup_create(id, &l, &c, &err) == 0, "cgroup_create: %s", err.msg);
    if (!c)
        goto out;

    /* the process lands in the cgroup */
    int go;
    pid_t p = spawn(sleeper, &go);
    CHECK(cgroup_enter(c, p, &err) == 0, "%s", err.msg);
    char suffix[128];
    snprintf(suffix, sizeof suffix, "/imgfs/%s", id);
    CHECK(in_cgroup(p, v2 ? "" : "memory", suffix), "pid %d not in the memory cgroup", (int)p);
    if (!v2) {
        CHECK(in_cgroup(p, "pids", suffix), "not in the pids cgroup");
        CHECK(in_cgroup(p, "cpu", suffix), "not in the cpu cgroup");
        CHECK(in_cgroup(p, "devices", suffix), "not in the devices cgroup");
    }
    if (write(go, "x", 1) != 1)
        CHECK(0, "starting the sleeper");
    close(go);

    CHECK(cgroup_oom_killed(c) == 0, "no OOM kill yet");
    int st = 0;
    run_in(c, memory_hog, &st);
    CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "memory hog: status %x", st);
    CHECK(cgroup_oom_killed(c) == 1, "OOM kill reported: %d", cgroup_oom_killed(c));

    run_in(c, fork_loop, &st);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "fork loop stopped by pids.max: status %x", st);

    if (!v2) {
        run_in(c, device_check, &st);
        CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "device allowlist: status %x", st);
    }

    if (!v2) {
        /* a child forked while our thread is inside starts there; we are back out after, and the
         * pids limit (1: the fork counts us too while we are inside) is put back */
        struct ctr_cgroup *born = NULL;
        char bid[80];
        snprintf(bid, sizeof bid, "%s-born", id);
        CHECK(cgroup_create(bid, &(struct cgroup_limits){.pids = 1}, &born, &err) == 0, "%s",
              err.msg);
        CHECK(born && cgroup_enter_self(born, &err) == 1, "cgroup_enter_self: %s", err.msg);
        pid_t kid = fork();
        if (kid == 0) {
            pause();
            _exit(0);
        }
        CHECK(cgroup_leave_self(born, &err) == 0, "cgroup_leave_self: %s", err.msg);
        CHECK(kid > 0, "fork inside the cgroup under a pids limit of 1");
        snprintf(suffix, sizeof suffix, "/imgfs/%s", bid);
        static const char *const ctls[] = {"memory", "pids", "cpu", "devices"};
        for (size_t i = 0; i < 4; i++) {
            CHECK(kid > 0 && in_cgroup(kid, ctls[i], suffix), "%s: the child was born inside",
                  ctls[i]);
            CHECK(!in_cgroup(getpid(), ctls[i], suffix), "%s: we are back out", ctls[i]);
        }
        char limit[64] = "";
        FILE *f = NULL;
        if (kid > 0) {
            char line[512], pmax[600];
            snprintf(line, sizeof line, "/proc/%d/cgroup", (int)kid);
            f = fopen(line, "re");
            while (f && fgets(line, sizeof line, f))
                if (strncmp(strchr(line, ':') ? strchr(line, ':') : "", ":pids:", 6) == 0) {
                    line[strcspn(line, "\n")] = 0;
                    snprintf(pmax, sizeof pmax, "/sys/fs/cgroup/pids%s/pids.max",
                             strchr(line, ':') + 6);
                    FILE *m = fopen(pmax, "re");
                    if (m && fgets(limit, sizeof limit, m))
                        limit[strcspn(limit, "\n")] = 0;
                    if (m)
                        fclose(m);
                }
            if (f)
                fclose(f);
        }
        CHECK(strcmp(limit, "1") == 0, "pids.max is 1 again: `%s`", limit);
        CHECK(cgroup_destroy(born, &err) == 0, "destroy: %s", err.msg);
        if (kid > 0)
            waitpid(kid, &st, 0);
    }

    /* destroy kills the sleeper, its grandchild and the fork loop's pause()d children */
    CHECK(cgroup_destroy(c, &err) == 0, "cgroup_destroy: %s", err.msg);
    c = NULL;
    CHECK(waitpid(p, &st, 0) == p && WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL,
          "sleeper killed: %x", st);
    char path[256];
    snprintf(path, sizeof path, "/sys/fs/cgroup/%s/imgfs/%s", v2 ? "" : "pids", id);
    CHECK(!exists(path), "%s removed", path);
    /* the unlimited case and remove_by_id of a group we have no handle for */
    CHECK(cgroup_create(id, &(struct cgroup_limits){0}, &c, &err) == 0, "%s", err.msg);
    struct ctr_cgroup *leak = get_and_reset(&c);
    (void)leak; /* pretend the monitor died: only the id is known */
    pid_t q = run_in(leak, sleeper, NULL);
    CHECK(cgroup_remove_by_id(id, &err) == 0, "remove_by_id: %s", err.msg);
    CHECK(q > 0 && waitpid(q, &st, 0) == q && WIFSIGNALED(st), "sleeper killed by remove_by_id");
    CHECK(!exists(path), "%s removed by id", path);
    CHECK(cgroup_remove_by_id(id, &err) == 0, "removing a missing cgroup is fine");
    CHECK(cgroup_destroy(leak, &err) == 0, "destroying a removed cgroup: %s", err.msg);

    /* Containers starting and ending at once: one's teardown removes the shared imgfs/ parent while
     * another is between its two mkdirs. Every create must still succeed. */
    pid_t workers[4];
    for (int w = 0; w < 4; w++) {
        workers[w] = fork();
        if (workers[w] == 0) {
            for (int i = 0; i < 40; i++) {
                char wid[96];
                struct ctr_cgroup *wc = NULL;
                snprintf(wid, sizeof wid, "%s-w%d-%d", id, w, i);
                if (cgroup_create(wid, &(struct cgroup_limits){.pids = 10}, &wc, &err) < 0) {
                    printf("  worker %d: %s\n", w, err.msg);
                    _exit(1);
                }
                if (cgroup_destroy(wc, &err) < 0)
                    _exit(2);
            }
            _exit(0);
        }
    }
    int worker_failures = 0;
    for (int w = 0; w < 4; w++)
        if (workers[w] < 0 || waitpid(workers[w], &st, 0) != workers[w] || !WIFEXITED(st) ||
            WEXITSTATUS(st) != 0)
            worker_failures++;
    CHECK(worker_failures == 0, "%d of 4 concurrent create/destroy workers failed",
          worker_failures);

    /* The v2 code on this host's unified hierarchy when it is hybrid: limits need controllers v1
     * holds, but the device program works on any cgroup2 directory. */
    struct statfs sf;
    if (!v2 && statfs("/sys/fs/cgroup/unified", &sf) == 0 && sf.f_type == 0x63677270) {
        setenv("IMGFS_CGROUP2_ROOT", "/sys/fs/cgroup/unified", 1);
        CHECK(cgroup_is_v2(), "the test hook selects v2");
        CHECK(cgroup_create(id, &(struct cgroup_limits){0}, &c, &err) == 0, "v2 create: %s",
              err.msg);
        if (c) {
            run_in(c, device_check, &st);
            CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "v2 device program: status %x", st);
            snprintf(path, sizeof path, "/sys/fs/cgroup/unified/imgfs/%s", id);
            CHECK(exists(path), "%s exists", path);
            q = run_in(c, sleeper, NULL);
            CHECK(cgroup_destroy(c, &err) == 0, "v2 destroy: %s", err.msg);
            c = NULL;
            CHECK(q > 0 && waitpid(q, &st, 0) == q && WIFSIGNALED(st), "v2: sleeper killed");
            CHECK(!exists(path), "%s removed", path);
        }
        /* --device rules in the program: read-only loop0, nothing else beyond Docker's list */
        char *rules[] = {"b 7:0 r", NULL};
        CHECK(cgroup_create(id, &(struct cgroup_limits){.device_rules = rules}, &c, &err) == 0,
              "v2 --device: %s", err.msg);
        if (c) {
            run_in(c, device_read_only, &st);
            CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "v2 --device b 7:0 r: status %x", st);
            CHECK(cgroup_destroy(c, &err) == 0, "%s", err.msg);
            c = NULL;
        }
        char *bad[] = {"b 7:x r", NULL};
        CHECK(cgroup_create(id, &(struct cgroup_limits){.device_rules = bad}, &c, &err) < 0 &&
                  err.code == EINVAL && !exists(path),
              "a bad rule is refused and leaves no group: %s", err.msg);
        /* --privileged: no program, the disk node opens */
        CHECK(cgroup_create(id, &(struct cgroup_limits){.allow_all_devices = true}, &c, &err) == 0,
              "%s", err.msg);
        if (c) {
            run_in(c, device_open_ok, &st);
            CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "v2 allow_all_devices: status %x", st);
            CHECK(cgroup_destroy(c, &err) == 0, "%s", err.msg);
            c = NULL;
        }
        unsetenv("IMGFS_CGROUP2_ROOT");
    }
out:
    while (waitpid(-1, NULL, WNOHANG) > 0)
        ;
    return unit_summary();
}
