/* 60_sysprobe.c — a static helper the security and limits tests (60_*, 61_*) put into a test image:
 * tries one privileged operation per call from inside a container and reports what happened.
 *
 *   sysprobe OP [ARG]   prints "OP ok" (exit 0) or "OP ERRNAME" (exit 1); usage errors exit 2
 *
 * OPs: mount (tmpfs on /tmp), unshare-ns, unshare-user, unshare-net, clone-newns, clone3, keyctl,
 * bpf, ptrace PID, sethostname, personality, future (syscall 1000), chroot, hog MIB (touch MIB of
 * memory), forks N (fork N children that wait; "forks K EAGAIN" when the Kth failed), fds (list
 * open descriptors other than 0-2; "fds none"), mknod-read (mknod a block device for loop0, open it),
 * kernelfs (every directory on procfs or sysfs outside /proc and /sys, the root and `/..` included:
 * "kernelfs PATH..." exit 1, or "kernelfs none"; with "core_pattern ro" when
 * /proc/sys/kernel/core_pattern cannot be opened for writing — nothing is written to it).
 * inject PID keyctl|unshare-user|getpid (ptrace PID, make it run that syscall, restore it:
 * "inject OP ok RESULT" or "inject OP ERRNAME"; x86_64 only).
 * euid ("euid UID EUID": what a setuid copy of the probe runs as), catch-new N (attach with ptrace
 * to every process that appears in the pid namespace, as early as it can be seen, and print
 * "caught PID CapEff=HEX Seccomp=N" while it is stopped, "gone PID" when it ended first; ends after
 * N, or when /tmp/stop-catch exists).
 * Built by the tests with `cc -static`. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdbool.h>
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <linux/magic.h>
#include <linux/bpf.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/personality.h>
#include <sys/ptrace.h>
#include <sys/user.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

static int kernelfs_found;

static bool on_kernelfs(const char *path)
{
    struct statfs s;
    return statfs(path, &s) == 0 && (s.f_type == PROC_SUPER_MAGIC || s.f_type == SYSFS_MAGIC);
}

static int kernelfs_visit(const char *path, const struct stat *st, int type, struct FTW *f)
{
    (void)st;
    (void)f;
    if (type != FTW_D)
        return FTW_CONTINUE;
    if (!strcmp(path, "/proc") || !strcmp(path, "/sys"))
        return FTW_SKIP_SUBTREE;
    if (on_kernelfs(path)) {
        printf(" %s", path);
        kernelfs_found = 1;
        return FTW_SKIP_SUBTREE;
    }
    return FTW_CONTINUE;
}

#ifdef __x86_64__
/* Make a stopped-in-a-syscall tracee run syscall `nr`: re-run the `syscall` instruction it is
 * blocked behind with other registers, single-step, read the result, put everything back. */
static long inject(pid_t pid, long nr, long a1, long a2)
{
    if (ptrace(PTRACE_SEIZE, pid, NULL, NULL) < 0 || ptrace(PTRACE_INTERRUPT, pid, NULL, NULL) < 0)
        return -errno;
    int st;
    if (waitpid(pid, &st, __WALL) < 0)
        return -errno;
    struct user_regs_struct saved, r;
    if (ptrace(PTRACE_GETREGS, pid, NULL, &saved) < 0)
        return -errno;
    errno = 0;
    long text = ptrace(PTRACE_PEEKTEXT, pid, (void *)(saved.rip - 2), NULL);
    if (errno || (text & 0xffff) != 0x050f) { /* not just after a `syscall` */
        ptrace(PTRACE_DETACH, pid, NULL, NULL);
        return -ENOEXEC;
    }
    r = saved;
    r.rip = saved.rip - 2;
    r.rax = (unsigned long long)nr;
    r.orig_rax = (unsigned long long)-1; /* no syscall restart on the way back to user space */
    r.rdi = (unsigned long long)a1;
    r.rsi = (unsigned long long)a2;
    r.rdx = r.r10 = r.r8 = r.r9 = 0;
    long rc = -EIO;
    if (ptrace(PTRACE_SETREGS, pid, NULL, &r) == 0 &&
        ptrace(PTRACE_SINGLESTEP, pid, NULL, NULL) == 0 && waitpid(pid, &st, __WALL) == pid &&
        ptrace(PTRACE_GETREGS, pid, NULL, &r) == 0)
        rc = (long)r.rax;
    ptrace(PTRACE_SETREGS, pid, NULL, &saved);
    ptrace(PTRACE_DETACH, pid, NULL, NULL);
    return rc;
}
#endif

static int report(const char *op, long rc)
{
    if (rc >= 0) {
        printf("%s ok\n", op);
        return 0;
    }
    printf("%s %s\n", op, strerrorname_np(errno) ? strerrorname_np(errno) : "?");
    return 1;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return 2;
    const char *op = argv[1];
    const char *arg = argc > 2 ? argv[2] : "0";
    setvbuf(stdout, NULL, _IONBF, 0);

    if (!strcmp(op, "mount"))
        return report(op, mount("none", "/tmp", "tmpfs", 0, NULL));
    if (!strcmp(op, "unshare-ns"))
        return report(op, unshare(CLONE_NEWNS));
    if (!strcmp(op, "unshare-user"))
        return report(op, unshare(CLONE_NEWUSER));
    if (!strcmp(op, "unshare-net"))
        return report(op, unshare(CLONE_NEWNET));
    if (!strcmp(op, "clone-newns")) {
        long pid = syscall(SYS_clone, CLONE_NEWNS | SIGCHLD, NULL, NULL, NULL, NULL);
        if (pid == 0)
            _exit(0);
        if (pid > 0)
            waitpid((pid_t)pid, NULL, 0);
        return report(op, pid);
    }
    if (!strcmp(op, "clone3")) {
        struct clone_args ca = {.exit_signal = SIGCHLD};
        long pid = syscall(SYS_clone3, &ca, sizeof ca);
        if (pid == 0)
            _exit(0);
        if (pid > 0)
            waitpid((pid_t)pid, NULL, 0);
        return report(op, pid);
    }
    if (!strcmp(op, "keyctl")) /* KEYCTL_JOIN_SESSION_KEYRING */
        return report(op, syscall(SYS_keyctl, 1, "imgfs-test", 0, 0, 0));
    if (!strcmp(op, "bpf")) {
        union bpf_attr a = {.map_type = BPF_MAP_TYPE_ARRAY, .key_size = 4, .value_size = 4, .max_entries = 1};
        return report(op, syscall(SYS_bpf, BPF_MAP_CREATE, &a, sizeof a));
    }
    if (!strcmp(op, "ptrace"))
        return report(op, ptrace(PTRACE_ATTACH, (pid_t)atoi(arg), NULL, NULL));
    if (!strcmp(op, "sethostname"))
        return report(op, sethostname("escaped", 7));
    if (!strcmp(op, "personality"))
        return report(op, personality(ADDR_NO_RANDOMIZE) == -1 ? -1 : 0);
    if (!strcmp(op, "future")) /* a syscall number no kernel has yet */
        return report(op, syscall(1000));
    if (!strcmp(op, "chroot"))
        return report(op, chroot("/"));
    if (!strcmp(op, "hog")) {
        size_t n = (size_t)atol(arg) << 20;
        char *m = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (m == MAP_FAILED)
            return report(op, -1);
        for (size_t i = 0; i < n; i += 4096)
            m[i] = 1;
        return report(op, 0);
    }
    if (!strcmp(op, "forks")) {
        int n = atoi(arg), made = 0, rc = 0;
        pid_t *kids = calloc((size_t)n + 1, sizeof *kids);
        for (int i = 1; kids && i <= n; i++) {
            pid_t p = fork();
            if (p < 0) {
                printf("forks %d %s\n", i, strerrorname_np(errno));
                rc = 1;
                break;
            }
            if (p == 0) {
                pause();
                _exit(0);
            }
            kids[made++] = p;
        }
        if (!rc)
            printf("forks ok\n");
        for (int i = 0; i < made; i++) {
            kill(kids[i], SIGKILL);
            waitpid(kids[i], NULL, 0);
        }
        return rc;
    }
    if (!strcmp(op, "fds")) {
        DIR *d = opendir("/proc/self/fd");
        struct dirent *e;
        int found = 0;
        printf("fds");
        while (d && (e = readdir(d))) {
            int fd = atoi(e->d_name);
            if (e->d_name[0] == '.' || fd <= 2 || fd == dirfd(d))
                continue;
            char link[256] = "", path[64];
            snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
            ssize_t k = readlink(path, link, sizeof link - 1);
            link[k > 0 ? k : 0] = 0;
            printf(" %d=%s", fd, link);
            found = 1;
        }
        printf(found ? "\n" : " none\n");
        return found;
    }
    if (!strcmp(op, "mknod-read")) {
        unlink("/tmp/probe-disk");
        if (mknod("/tmp/probe-disk", S_IFBLK | 0600, makedev(7, 0)) < 0)
            return report("mknod", -1);
        int fd = open("/tmp/probe-disk", O_RDONLY);
        unlink("/tmp/probe-disk");
        return report(op, fd);
    }
    if (!strcmp(op, "inject") && argc > 3) {
#ifdef __x86_64__
        const char *what = argv[3];
        pid_t pid = atoi(arg);
        long rc = !strcmp(what, "keyctl")         ? inject(pid, SYS_keyctl, 1, 0)
                  : !strcmp(what, "unshare-user") ? inject(pid, SYS_unshare, CLONE_NEWUSER, 0)
                  : !strcmp(what, "getpid")       ? inject(pid, SYS_getpid, 0, 0)
                                                  : -EINVAL;
        if (rc < 0 && rc > -4096) {
            printf("inject %s %s\n", what, strerrorname_np((int)-rc) ? strerrorname_np((int)-rc) : "?");
            return 1;
        }
        printf("inject %s ok %ld\n", what, rc);
        return 0;
#else
        printf("inject unsupported\n");
        return 2;
#endif
    }
    if (!strcmp(op, "catch-new")) {
        int want = atoi(arg), got = 0;
        static char seen[1 << 16];
        DIR *d = opendir("/proc");
        struct dirent *e;
        while (d && (e = readdir(d)))
            if (atoi(e->d_name) > 0 && atoi(e->d_name) < (1 << 16))
                seen[atoi(e->d_name)] = 1;
        seen[getpid()] = 1;
        printf("catch-new ready\n");
        while (got < want && access("/tmp/stop-catch", F_OK) != 0) {
            rewinddir(d);
            while ((e = readdir(d))) {
                int pid = atoi(e->d_name);
                if (pid <= 0 || pid >= (1 << 16) || seen[pid])
                    continue;
                seen[pid] = 1;
                if (ptrace(PTRACE_SEIZE, pid, NULL, NULL) < 0)
                    continue;
                ptrace(PTRACE_INTERRUPT, pid, NULL, NULL);
                int st;
                waitpid(pid, &st, __WALL);
                char path[64], line[256], caps[32] = "?", sec[8] = "?";
                snprintf(path, sizeof path, "/proc/%d/status", pid);
                FILE *f = fopen(path, "r");
                while (f && fgets(line, sizeof line, f)) {
                    sscanf(line, "CapEff: %31s", caps);
                    sscanf(line, "Seccomp: %7s", sec);
                }
                if (f)
                    fclose(f);
                ptrace(PTRACE_DETACH, pid, NULL, NULL);
                if (!strcmp(caps, "?")) /* it ended before we could read it */
                    printf("gone %d\n", pid);
                else
                    printf("caught %d CapEff=%s Seccomp=%s\n", pid, caps, sec);
                got++;
            }
        }
        return 0;
    }
    if (!strcmp(op, "euid")) {
        printf("euid %d %d\n", (int)getuid(), (int)geteuid());
        return 0;
    }
    if (!strcmp(op, "kernelfs")) {
        printf("kernelfs");
        static const char *const roots[] = {"/..", "/../..", "/."};
        for (size_t i = 0; i < sizeof roots / sizeof roots[0]; i++)
            if (on_kernelfs(roots[i])) {
                printf(" %s", roots[i]);
                kernelfs_found = 1;
            }
        nftw("/", kernelfs_visit, 32, FTW_PHYS | FTW_ACTIONRETVAL);
        printf(kernelfs_found ? "\n" : " none\n");
        int fd = open("/proc/sys/kernel/core_pattern", O_WRONLY | O_CLOEXEC);
        if (fd >= 0)
            close(fd);
        printf("core_pattern %s\n", fd >= 0 ? "WRITABLE" : errno == EROFS ? "ro" : strerrorname_np(errno));
        return kernelfs_found || fd >= 0;
    }
    fprintf(stderr, "sysprobe: unknown op %s\n", op);
    return 2;
}
