/* seccomp.c — the container's system-call filter.
 *
 * A profile is a default action plus rules, each a list of syscall names with an action, optional
 * argument conditions and conditions on the container (capabilities it holds, architecture, kernel
 * version) — the shape of Docker's JSON profiles, so that Docker's default profile is one table
 * below and `--security-opt seccomp=FILE` is the same table read from JSON. A profile is compiled
 * with libseccomp into classic BPF and cached by the digest of everything that went into it; a
 * cache hit costs one file read and seccomp(2). */
#include "seccomp.h"

#include <fcntl.h>
#include <jansson.h>
#include <linux/capability.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <link.h>
#include <seccomp.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>

#include "../fs/digest.h"
#include "caps.h"

#define SC_MAX_ARGS 6

struct sc_cond {
    unsigned index;
    enum scmp_compare op;
    uint64_t value, value_two; /* MASKED_EQ: value is the mask, value_two the datum, as in Docker */
};

struct sc_rule {
    const char *const *names; /* NULL-terminated */
    uint32_t action;          /* a libseccomp action, SCMP_ACT_ERRNO(n) included */
    unsigned n_args;
    struct sc_cond args[SC_MAX_ARGS];
    /* When the rule applies, as Docker decides it: every capability of caps_all_of is held, none of
     * caps_none_of; the native architecture (Go's name: amd64, arm64...) is in arches_in (NULL =
     * any) and not in arches_out; the kernel is at least min_kernel_in and below min_kernel_out
     * (major << 16 | minor, 0 = no condition). `never` marks a rule naming a capability we don't
     * know: it can't be held, so the rule never applies. */
    uint64_t caps_all_of, caps_none_of;
    const char *const *arches_in, *const *arches_out;
    unsigned min_kernel_in, min_kernel_out;
    bool never;
};

struct sc_profile {
    uint32_t default_action;
    const char *const
        *arches; /* libseccomp names ("x86_64", "x86"...), NULL-terminated; NULL = native */
    const struct sc_rule *rules;
    size_t n_rules;
};

#define LIST(...)            ((const char *const[]){__VA_ARGS__, NULL})
#define CAP(c)               (UINT64_C(1) << (c))
#define KERNEL(major, minor) ((unsigned)(major) << 16 | (unsigned)(minor))

/* CLONE_NEWNS | NEWCGROUP | NEWUTS | NEWIPC | NEWUSER | NEWPID | NEWNET: clone may not create
 * namespaces without CAP_SYS_ADMIN. */
#define CLONE_NAMESPACE_FLAGS UINT64_C(0x7E020000)

/* Docker's default profile (moby/profiles seccomp/default.json), rule for rule. Keep it in step
 * with ../shared/conformance/docker/seccomp-default.json: tests/unit/test_seccomp.c compares the
 * two. */
static const struct sc_rule default_rules[] = {
    {.action = SCMP_ACT_ALLOW,
     .names = LIST(
         "accept", "accept4", "access", "adjtimex", "alarm", "bind", "brk", "cachestat", "capget",
         "capset", "chdir", "chmod", "chown", "chown32", "clock_adjtime", "clock_adjtime64",
         "clock_getres", "clock_getres_time64", "clock_gettime", "clock_gettime64",
         "clock_nanosleep", "clock_nanosleep_time64", "close", "close_range", "connect",
         "copy_file_range", "creat", "dup", "dup2", "dup3", "epoll_create", "epoll_create1",
         "epoll_ctl", "epoll_ctl_old", "epoll_pwait", "epoll_pwait2", "epoll_wait",
         "epoll_wait_old", "eventfd", "eventfd2", "execve", "execveat", "exit", "exit_group",
         "faccessat", "faccessat2", "fadvise64", "fadvise64_64", "fallocate", "fanotify_mark",
         "fchdir", "fchmod", "fchmodat", "fchmodat2", "fchown", "fchown32", "fchownat", "fcntl",
         "fcntl64", "fdatasync", "fgetxattr", "flistxattr", "flock", "fork", "fremovexattr",
         "fsetxattr", "fstat", "fstat64", "fstatat64", "fstatfs", "fstatfs64", "fsync", "ftruncate",
         "ftruncate64", "futex", "futex_requeue", "futex_time64", "futex_wait", "futex_waitv",
         "futex_wake", "futimesat", "getcpu", "getcwd", "getdents", "getdents64", "getegid",
         "getegid32", "geteuid", "geteuid32", "getgid", "getgid32", "getgroups", "getgroups32",
         "getitimer", "getpeername", "getpgid", "getpgrp", "getpid", "getppid", "getpriority",
         "getrandom", "getresgid", "getresgid32", "getresuid", "getresuid32", "getrlimit",
         "get_robust_list", "getrusage", "getsid", "getsockname", "getsockopt", "get_thread_area",
         "gettid", "gettimeofday", "getuid", "getuid32", "getxattr", "getxattrat",
         "inotify_add_watch", "inotify_init", "inotify_init1", "inotify_rm_watch", "io_cancel",
         "ioctl", "io_destroy", "io_getevents", "io_pgetevents", "io_pgetevents_time64",
         "ioprio_get", "ioprio_set", "io_setup", "io_submit", "ipc", "kill", "landlock_add_rule",
         "landlock_create_ruleset", "landlock_restrict_self", "lchown", "lchown32", "lgetxattr",
         "link", "linkat", "listen", "listmount", "listxattr", "listxattrat", "llistxattr",
         "_llseek", "lremovexattr", "lseek", "lsetxattr", "lstat", "lstat64", "madvise",
         "map_shadow_stack", "membarrier", "memfd_create", "memfd_secret", "mincore", "mkdir",
         "mkdirat", "mknod", "mknodat", "mlock", "mlock2", "mlockall", "mmap", "mmap2", "mprotect",
         "mq_getsetattr", "mq_notify", "mq_open", "mq_timedreceive", "mq_timedreceive_time64",
         "mq_timedsend", "mq_timedsend_time64", "mq_unlink", "mremap", "mseal", "msgctl", "msgget",
         "msgrcv", "msgsnd", "msync", "munlock", "munlockall", "munmap", "name_to_handle_at",
         "nanosleep", "newfstatat", "_newselect", "open", "openat", "openat2", "pause",
         "pidfd_open", "pidfd_send_signal", "pipe", "pipe2", "pkey_alloc", "pkey_free",
         "pkey_mprotect", "poll", "ppoll", "ppoll_time64", "prctl", "pread64", "preadv", "preadv2",
         "prlimit64", "process_mrelease", "pselect6", "pselect6_time64", "pwrite64", "pwritev",
         "pwritev2", "read", "readahead", "readlink", "readlinkat", "readv", "recv", "recvfrom",
         "recvmmsg", "recvmmsg_time64", "recvmsg", "remap_file_pages", "removexattr",
         "removexattrat", "rename", "renameat", "renameat2", "restart_syscall", "riscv_hwprobe",
         "rmdir", "rseq", "rt_sigaction", "rt_sigpending", "rt_sigprocmask", "rt_sigqueueinfo",
         "rt_sigreturn", "rt_sigsuspend", "rt_sigtimedwait", "rt_sigtimedwait_time64",
         "rt_tgsigqueueinfo", "sched_getaffinity", "sched_getattr", "sched_getparam",
         "sched_get_priority_max", "sched_get_priority_min", "sched_getscheduler",
         "sched_rr_get_interval", "sched_rr_get_interval_time64", "sched_setaffinity",
         "sched_setattr", "sched_setparam", "sched_setscheduler", "sched_yield", "seccomp",
         "select", "semctl", "semget", "semop", "semtimedop", "semtimedop_time64", "send",
         "sendfile", "sendfile64", "sendmmsg", "sendmsg", "sendto", "setfsgid", "setfsgid32",
         "setfsuid", "setfsuid32", "setgid", "setgid32", "setgroups", "setgroups32", "setitimer",
         "setpgid", "setpriority", "setregid", "setregid32", "setresgid", "setresgid32",
         "setresuid", "setresuid32", "setreuid", "setreuid32", "setrlimit", "set_robust_list",
         "setsid", "setsockopt", "set_thread_area", "set_tid_address", "setuid", "setuid32",
         "setxattr", "setxattrat", "shmat", "shmctl", "shmdt", "shmget", "shutdown", "sigaltstack",
         "signalfd", "signalfd4", "sigprocmask", "sigreturn", "socketcall", "socketpair", "splice",
         "stat", "stat64", "statfs", "statfs64", "statmount", "statx", "symlink", "symlinkat",
         "sync", "sync_file_range", "syncfs", "sysinfo", "tee", "tgkill", "time", "timer_create",
         "timer_delete", "timer_getoverrun", "timer_gettime", "timer_gettime64", "timer_settime",
         "timer_settime64", "timerfd_create", "timerfd_gettime", "timerfd_gettime64",
         "timerfd_settime", "timerfd_settime64", "times", "tkill", "truncate", "truncate64",
         "ugetrlimit", "umask", "uname", "unlink", "unlinkat", "uretprobe", "utime", "utimensat",
         "utimensat_time64", "utimes", "vfork", "vmsplice", "wait4", "waitid", "waitpid", "write",
         "writev")},
    {.action = SCMP_ACT_ALLOW,
     .names = LIST("process_vm_readv", "process_vm_writev", "ptrace"),
     .min_kernel_in = KERNEL(4, 8)},
    /* socket: every address family but AF_ALG (38) and AF_VSOCK (40) */
    {.action = SCMP_ACT_ALLOW,
     .names = LIST("socket"),
     .n_args = 1,
     .args = {{0, SCMP_CMP_LT, 38, 0}}},
    {.action = SCMP_ACT_ALLOW,
     .names = LIST("socket"),
     .n_args = 1,
     .args = {{0, SCMP_CMP_EQ, 39, 0}}},
    {.action = SCMP_ACT_ALLOW,
     .names = LIST("socket"),
     .n_args = 1,
     .args = {{0, SCMP_CMP_GT, 40, 0}}},
    /* personality: PER_LINUX, PER_LINUX32, UNAME26, UNAME26|PER_LINUX32, the 0xffffffff query */
    {.action = SCMP_ACT_ALLOW,
     .names = LIST("personality"),
     .n_args = 1,
     .args = {{0, SCMP_CMP_EQ, 0x0, 0}}},
    {.action = SCMP_ACT_ALLOW,
     .names = LIST("personality"),
     .n_args = 1,
     .args = {{0, SCMP_CMP_EQ, 0x8, 0}}},
    {.action = SCMP_ACT_ALLOW,
     .names = LIST("personality"),
     .n_args = 1,
     .args = {{0, SCMP_CMP_EQ, 0x20000, 0}}},
    {.action = SCMP_ACT_ALLOW,
     .names = LIST("personality"),
     .n_args = 1,
     .args = {{0, SCMP_CMP_EQ, 0x20008, 0}}},
    {.action = SCMP_ACT_ALLOW,
     .names = LIST("personality"),
     .n_args = 1,
     .args = {{0, SCMP_CMP_EQ, 0xffffffff, 0}}},
    {.action = SCMP_ACT_ALLOW,
     .names = LIST("sync_file_range2", "swapcontext"),
     .arches_in = LIST("ppc64le")},
    {.action = SCMP_ACT_ALLOW,
     .names = LIST("arm_fadvise64_64", "arm_sync_file_range", "sync_file_range2", "breakpoint",
                   "cacheflush", "set_tls"),
     .arches_in = LIST("arm", "arm64")},
    {.action = SCMP_ACT_ALLOW, .names = LIST("arch_prctl"), .arches_in = LIST("amd64", "x32")},
    {.action = SCMP_ACT_ALLOW,
     .names = LIST("modify_ldt"),
     .arches_in = LIST("amd64", "x32", "x86")},
    {.action = SCMP_ACT_ALLOW,
     .names = LIST("s390_pci_mmio_read", "s390_pci_mmio_write", "s390_runtime_instr"),
     .arches_in = LIST("s390", "s390x")},
    {.action = SCMP_ACT_ALLOW, .names = LIST("riscv_flush_icache"), .arches_in = LIST("riscv64")},
    {.action = SCMP_ACT_ALLOW,
     .names = LIST("open_by_handle_at"),
     .caps_all_of = CAP(CAP_DAC_READ_SEARCH)},
    {.action = SCMP_ACT_ALLOW,
     .names = LIST("bpf", "clone", "clone3", "fanotify_init", "fsconfig", "fsmount", "fsopen",
                   "fspick", "lookup_dcookie", "lsm_get_self_attr", "lsm_list_modules",
                   "lsm_set_self_attr", "mount", "mount_setattr", "move_mount", "open_tree",
                   "perf_event_open", "quotactl", "quotactl_fd", "setdomainname", "sethostname",
                   "setns", "syslog", "umount", "umount2", "unshare"),
     .caps_all_of = CAP(CAP_SYS_ADMIN)},
    /* clone without namespace flags; on s390 the flags are the second argument */
    {.action = SCMP_ACT_ALLOW,
     .names = LIST("clone"),
     .n_args = 1,
     .args = {{0, SCMP_CMP_MASKED_EQ, CLONE_NAMESPACE_FLAGS, 0}},
     .caps_none_of = CAP(CAP_SYS_ADMIN),
     .arches_out = LIST("s390", "s390x")},
    {.action = SCMP_ACT_ALLOW,
     .names = LIST("clone"),
     .n_args = 1,
     .args = {{1, SCMP_CMP_MASKED_EQ, CLONE_NAMESPACE_FLAGS, 0}},
     .caps_none_of = CAP(CAP_SYS_ADMIN),
     .arches_in = LIST("s390", "s390x")},
    /* clone3 passes its flags in memory a filter can't read: answer ENOSYS so libc falls back to
     * clone, whose flags the rule above checks. */
    {.action = SCMP_ACT_ERRNO(ENOSYS), .names = LIST("clone3"), .caps_none_of = CAP(CAP_SYS_ADMIN)},
    {.action = SCMP_ACT_ALLOW, .names = LIST("reboot"), .caps_all_of = CAP(CAP_SYS_BOOT)},
    {.action = SCMP_ACT_ALLOW, .names = LIST("chroot"), .caps_all_of = CAP(CAP_SYS_CHROOT)},
    {.action = SCMP_ACT_ALLOW,
     .names = LIST("delete_module", "init_module", "finit_module"),
     .caps_all_of = CAP(CAP_SYS_MODULE)},
    {.action = SCMP_ACT_ALLOW, .names = LIST("acct"), .caps_all_of = CAP(CAP_SYS_PACCT)},
    {.action = SCMP_ACT_ALLOW,
     .names = LIST("kcmp", "pidfd_getfd", "process_madvise", "process_vm_readv",
                   "process_vm_writev", "ptrace"),
     .caps_all_of = CAP(CAP_SYS_PTRACE)},
    {.action = SCMP_ACT_ALLOW, .names = LIST("iopl", "ioperm"), .caps_all_of = CAP(CAP_SYS_RAWIO)},
    {.action = SCMP_ACT_ALLOW,
     .names = LIST("settimeofday", "stime", "clock_settime", "clock_settime64"),
     .caps_all_of = CAP(CAP_SYS_TIME)},
    {.action = SCMP_ACT_ALLOW, .names = LIST("vhangup"), .caps_all_of = CAP(CAP_SYS_TTY_CONFIG)},
    {.action = SCMP_ACT_ALLOW,
     .names = LIST("get_mempolicy", "mbind", "set_mempolicy", "set_mempolicy_home_node"),
     .caps_all_of = CAP(CAP_SYS_NICE)},
    {.action = SCMP_ACT_ALLOW, .names = LIST("syslog"), .caps_all_of = CAP(CAP_SYSLOG)},
    {.action = SCMP_ACT_ALLOW, .names = LIST("bpf"), .caps_all_of = CAP(CAP_BPF)},
    {.action = SCMP_ACT_ALLOW, .names = LIST("perf_event_open"), .caps_all_of = CAP(CAP_PERFMON)},
};

static const struct sc_profile default_profile = {
    .default_action = SCMP_ACT_ERRNO(EPERM),
    .arches = NULL, /* the host's: native + its 32-bit sub-architectures (host_probe) */
    .rules = default_rules,
    .n_rules = sizeof default_rules / sizeof default_rules[0],
};

/* ---- the host ------------------------------------------------------------------------------ */

struct sc_host {
    const char *goarch;            /* the native architecture in Docker's (Go's) naming */
    uint32_t native;               /* SCMP_ARCH_* */
    const char *const *sub_arches; /* libseccomp names of the 32-bit ABIs the native one can run */
    unsigned kernel;               /* KERNEL(major, minor) */
    char machine[65];
};

static const char *const sub_arches_x86_64[] = {"x86", "x32", NULL};
static const char *const sub_arches_aarch64[] = {"arm", NULL};
static const char *const sub_arches_s390x[] = {"s390", NULL};

static void host_probe(struct sc_host *h)
{
    struct utsname u;
    memset(h, 0, sizeof *h);
    h->native = seccomp_arch_native();
    if (uname(&u) == 0) {
        unsigned major = 0, minor = 0;
        sscanf(u.release, "%u.%u", &major, &minor);
        h->kernel = KERNEL(major, minor);
        snprintf(h->machine, sizeof h->machine, "%s", u.machine);
    }
    /* Docker's archMap: which sub-architectures ride along with each native one */
    switch (h->native) {
    case SCMP_ARCH_X86_64:
        h->goarch = "amd64", h->sub_arches = sub_arches_x86_64;
        break;
    case SCMP_ARCH_AARCH64:
        h->goarch = "arm64", h->sub_arches = sub_arches_aarch64;
        break;
    case SCMP_ARCH_X86:
        h->goarch = "386";
        break;
    case SCMP_ARCH_ARM:
        h->goarch = "arm";
        break;
    case SCMP_ARCH_PPC64LE:
        h->goarch = "ppc64le";
        break;
    case SCMP_ARCH_S390X:
        h->goarch = "s390x", h->sub_arches = sub_arches_s390x;
        break;
    case SCMP_ARCH_RISCV64:
        h->goarch = "riscv64";
        break;
    default:
        h->goarch = "unknown";
        break;
    }
}

static bool in_list(const char *const *list, const char *s)
{
    for (; list && *list; list++)
        if (strcmp(*list, s) == 0)
            return true;
    return false;
}

static bool rule_applies(const struct sc_rule *r, uint64_t caps, const struct sc_host *h)
{
    if (r->never || (r->caps_all_of & caps) != r->caps_all_of || (r->caps_none_of & caps))
        return false;
    if ((r->arches_in && !in_list(r->arches_in, h->goarch)) || in_list(r->arches_out, h->goarch))
        return false;
    if (r->min_kernel_in && h->kernel < r->min_kernel_in)
        return false;
    if (r->min_kernel_out && h->kernel >= r->min_kernel_out)
        return false;
    return true;
}

/* Syscalls newer than the libseccomp we build against. Since Linux 5.1 new syscalls share one
 * number on every architecture (x32 adds its marker bit, which is why these go to the native filter
 * only). */
static int newer_syscall_nr(const char *name, const struct sc_host *h)
{
    static const struct {
        const char *name;
        int nr;
    } generic[] = {
        {"cachestat", 451},
        {"fchmodat2", 452},
        {"futex_wake", 454},
        {"futex_wait", 455},
        {"futex_requeue", 456},
        {"statmount", 457},
        {"listmount", 458},
        {"lsm_get_self_attr", 459},
        {"lsm_set_self_attr", 460},
        {"lsm_list_modules", 461},
        {"mseal", 462},
        {"setxattrat", 463},
        {"getxattrat", 464},
        {"listxattrat", 465},
        {"removexattrat", 466},
    };
    for (size_t i = 0; i < sizeof generic / sizeof generic[0]; i++)
        if (strcmp(name, generic[i].name) == 0)
            return generic[i].nr;
    if (h->native == SCMP_ARCH_X86_64) {
        if (strcmp(name, "map_shadow_stack") == 0)
            return 453;
        if (strcmp(name, "uretprobe") == 0)
            return 335;
    }
    return -1;
}

/* ---- compiling ----------------------------------------------------------------------------- */

static int rule_add(scmp_filter_ctx ctx, uint32_t action, int nr, const struct sc_rule *r)
{
    struct scmp_arg_cmp cmp[SC_MAX_ARGS];
    bool same_index = false;
    for (unsigned i = 0; i < r->n_args; i++) {
        cmp[i] = (struct scmp_arg_cmp){r->args[i].index, r->args[i].op, r->args[i].value,
                                       r->args[i].value_two};
        for (unsigned j = 0; j < i; j++)
            same_index |= r->args[j].index == r->args[i].index;
    }
    /* libseccomp can't AND two conditions on one argument; runc then adds one rule per condition
     * (so they OR), and profiles written for Docker rely on that. */
    if (!same_index)
        return seccomp_rule_add_array(ctx, action, nr, r->n_args, cmp);
    for (unsigned i = 0; i < r->n_args; i++) {
        int rc = seccomp_rule_add_array(ctx, action, nr, 1, &cmp[i]);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int export_bpf(scmp_filter_ctx ctx, struct buf *out, struct imgfs_err *err)
{
    cleanup_close int fd = memfd_create("imgfs-seccomp", MFD_CLOEXEC);
    if (fd < 0)
        return err_sys(err, errno, "memfd_create");
    int rc = seccomp_export_bpf(ctx, fd);
    if (rc < 0)
        return err_sys(err, -rc, "exporting the seccomp filter");
    struct stat st;
    if (fstat(fd, &st) < 0 || lseek(fd, 0, SEEK_SET) < 0)
        return err_sys(err, errno, "reading the exported seccomp filter");
    buf_reserve(out, (size_t)st.st_size);
    ssize_t n = read_full(fd, out->data, (size_t)st.st_size);
    if (n != st.st_size)
        return err_sys(err, n < 0 ? errno : EIO, "reading the exported seccomp filter");
    out->len = (size_t)n;
    return 0;
}

/* The highest syscall number known on an ABI: to libseccomp, or for the native one to us too. */
static uint32_t highest_known_nr(uint32_t scmp_arch, uint32_t base, bool native)
{
    uint32_t max = 0;
    for (uint32_t n = 0; n < 1024; n++) {
        char *name = seccomp_syscall_resolve_num_arch(scmp_arch, (int)(base + n));
        if (name)
            max = n;
        free(name);
    }
    if (native && max < 466) /* newer_syscall_nr's last */
        max = 466;
    return base + max;
}

/* A syscall newer than everything the profile could know about must answer ENOSYS, not the default
 * EPERM: libc then falls back to an older call, as it does on an older kernel. libseccomp can't
 * express "number above N", so, like runc (libcontainer/seccomp/patchbpf), we put a stub in front
 * of the exported program: for each ABI in the filter, nr > highest known -> ERRNO(ENOSYS);
 * everything else falls through to libseccomp's program, which starts by loading what it needs
 * itself. */
static int prepend_enosys_stub(const uint32_t *arches, size_t n_arches, const struct sc_host *h,
                               struct buf *bpf)
{
    struct range {
        uint32_t audit_arch, lo, hi, max;
    } r[8];
    size_t n = 0;
    for (size_t i = 0; i < n_arches && n < 8; i++) {
        uint32_t a = arches[i];
        bool native = a == h->native;
        if (a == SCMP_ARCH_X32) /* x32 calls arrive as x86_64 ones with bit 30 set */
            r[n++] = (struct range){AUDIT_ARCH_X86_64, 0x40000000, UINT32_MAX,
                                    highest_known_nr(a, 0x40000000, native)};
        else if (a == SCMP_ARCH_X86_64)
            r[n++] = (struct range){a, 0, 0x3fffffff, highest_known_nr(a, 0, native)};
        else
            r[n++] = (struct range){a, 0, UINT32_MAX, highest_known_nr(a, 0, native)};
    }
    struct sock_filter stub[8 * 6 + 2];
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        /* every jump out of this block goes to its end: patched below; `to ENOSYS` likewise */
        size_t start = k, len = 4 + (r[i].lo > 0) + (r[i].hi < UINT32_MAX);
        size_t end = start + len;
        stub[k++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, 4); /* arch */
        stub[k] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, r[i].audit_arch, 0,
                                               (uint8_t)(end - k - 1));
        k++;
        stub[k++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, 0); /* nr */
        if (r[i].lo > 0) {
            stub[k] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, r[i].lo, 0,
                                                   (uint8_t)(end - k - 1));
            k++;
        }
        if (r[i].hi < UINT32_MAX) {
            stub[k] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JGT | BPF_K, r[i].hi,
                                                   (uint8_t)(end - k - 1), 0);
            k++;
        }
        stub[k] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JGT | BPF_K, r[i].max, 0, 0);
        k++; /* jt patched once the ENOSYS return's place is known */
    }
    stub[k++] = (struct sock_filter)BPF_STMT(BPF_JMP | BPF_JA, 1); /* past the ENOSYS return */
    size_t enosys = k;
    stub[k++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS);
    /* patch each block's last jump (`nr > max`) to the ENOSYS return */
    for (size_t i = 0, at = 0; i < n; i++) {
        at += 4 + (r[i].lo > 0) + (r[i].hi < UINT32_MAX);
        stub[at - 1].jt = (uint8_t)(enosys - at);
    }
    struct buf out = {0};
    buf_append(&out, stub, k * sizeof stub[0]);
    buf_append(&out, bpf->data, bpf->len);
    buf_free(bpf);
    *bpf = out;
    return 0;
}

static int profile_compile(const struct sc_profile *p, uint64_t caps, const struct sc_host *h,
                           struct buf *bpf, struct imgfs_err *err)
{
    int ret = -1, rc;
    scmp_filter_ctx native = seccomp_init(p->default_action), sub = NULL;
    if (!native)
        return err_set(err, ENOMEM, "seccomp_init");
    /* The native ABI gets its own filter so syscalls newer than libseccomp can go in by number;
     * the 32-bit ABIs share a second one, merged in at the end. */
    uint32_t in_filter[8] = {h->native};
    size_t n_in_filter = 1;
    const char *const *arches = p->arches ? p->arches : h->sub_arches;
    for (; arches && *arches; arches++) {
        uint32_t a = seccomp_arch_resolve_name(*arches);
        if (!a || a == h->native)
            continue; /* an architecture this libseccomp does not know can't run here either */
        if (n_in_filter < 8)
            in_filter[n_in_filter++] = a;
        if (!sub) {
            sub = seccomp_init(p->default_action);
            if (!sub || seccomp_arch_remove(sub, SCMP_ARCH_NATIVE) < 0) {
                err_set(err, ENOMEM, "seccomp_init");
                goto out;
            }
        }
        rc = seccomp_arch_add(sub, a);
        if (rc < 0 && rc != -EEXIST) {
            err_sys(err, -rc, "adding architecture %s", *arches);
            goto out;
        }
    }

    for (size_t i = 0; i < p->n_rules; i++) {
        const struct sc_rule *r = &p->rules[i];
        /* libseccomp refuses rules whose action is the default one; they change nothing anyway */
        if (!rule_applies(r, caps, h) || r->action == p->default_action)
            continue;
        for (const char *const *name = r->names; *name; name++) {
            int nr = seccomp_syscall_resolve_name(*name);
            if (nr == __NR_SCMP_ERROR) {
                nr = newer_syscall_nr(*name, h);
                if (nr >= 0 && (rc = rule_add(native, r->action, nr, r)) < 0) {
                    err_sys(err, -rc, "adding the rule for `%s`", *name);
                    goto out;
                }
                continue; /* unknown everywhere: as Docker, skip it */
            }
            if ((rc = rule_add(native, r->action, nr, r)) < 0) {
                err_sys(err, -rc, "adding the rule for `%s`", *name);
                goto out;
            }
            /* a syscall the 32-bit ABI lacks is simply not added there */
            if (sub && (rc = rule_add(sub, r->action, nr, r)) < 0 && rc != -EDOM && rc != -EFAULT) {
                err_sys(err, -rc, "adding the 32-bit rule for `%s`", *name);
                goto out;
            }
        }
    }
    if (sub) {
        if ((rc = seccomp_merge(native, sub)) < 0) {
            err_sys(err, -rc, "merging the seccomp filters");
            goto out;
        }
        sub = NULL; /* merge released it */
    }
    ret = export_bpf(native, bpf, err);
    /* as runc: not for permissive profiles, nor when the default already is ENOSYS */
    if (ret == 0 && p->default_action != SCMP_ACT_ALLOW && p->default_action != SCMP_ACT_LOG &&
        p->default_action != SCMP_ACT_ERRNO(ENOSYS))
        ret = prepend_enosys_stub(in_filter, n_in_filter, h, bpf);
out:
    seccomp_release(native);
    if (sub)
        seccomp_release(sub);
    return ret;
}

/* ---- Docker-format JSON profiles ------------------------------------------------------------ */

struct json_profile {
    struct sc_profile p;
    json_t *root; /* the strings the rules point at live here */
    struct sc_rule *rules;
    const char **arches;
};

static void json_profile_free(struct json_profile *jp)
{
    for (size_t i = 0; jp->rules && i < jp->p.n_rules; i++) {
        free((void *)jp->rules[i].names);
        free((void *)jp->rules[i].arches_in);
        free((void *)jp->rules[i].arches_out);
    }
    free(jp->rules);
    free(jp->arches);
    json_decref(jp->root);
}

static int parse_action(const char *s, json_t *errno_ret, int default_errno, uint32_t *out,
                        struct imgfs_err *err)
{
    int e = json_is_integer(errno_ret) ? (int)json_integer_value(errno_ret) : default_errno;
    if (!s)
        return err_set(err, EINVAL, "missing action");
    if (strcmp(s, "SCMP_ACT_ALLOW") == 0)
        *out = SCMP_ACT_ALLOW;
    else if (strcmp(s, "SCMP_ACT_ERRNO") == 0)
        *out = SCMP_ACT_ERRNO((uint32_t)e);
    else if (strcmp(s, "SCMP_ACT_KILL") == 0 || strcmp(s, "SCMP_ACT_KILL_THREAD") == 0)
        *out = SCMP_ACT_KILL;
    else if (strcmp(s, "SCMP_ACT_KILL_PROCESS") == 0)
        *out = SCMP_ACT_KILL_PROCESS;
    else if (strcmp(s, "SCMP_ACT_TRAP") == 0)
        *out = SCMP_ACT_TRAP;
    else if (strcmp(s, "SCMP_ACT_TRACE") == 0)
        *out = SCMP_ACT_TRACE((uint32_t)e);
    else if (strcmp(s, "SCMP_ACT_LOG") == 0)
        *out = SCMP_ACT_LOG;
    else
        return err_set(err, EINVAL, "unsupported action `%s`", s);
    return 0;
}

static int parse_op(const char *s, enum scmp_compare *out)
{
    static const struct {
        const char *name;
        enum scmp_compare op;
    } ops[] = {{"SCMP_CMP_NE", SCMP_CMP_NE},
               {"SCMP_CMP_LT", SCMP_CMP_LT},
               {"SCMP_CMP_LE", SCMP_CMP_LE},
               {"SCMP_CMP_EQ", SCMP_CMP_EQ},
               {"SCMP_CMP_GE", SCMP_CMP_GE},
               {"SCMP_CMP_GT", SCMP_CMP_GT},
               {"SCMP_CMP_MASKED_EQ", SCMP_CMP_MASKED_EQ}};
    for (size_t i = 0; s && i < sizeof ops / sizeof ops[0]; i++)
        if (strcmp(s, ops[i].name) == 0) {
            *out = ops[i].op;
            return 0;
        }
    return -1;
}

/* A JSON array of strings as a NULL-terminated list pointing into the JSON; NULL when absent. */
static int string_list(json_t *a, const char *what, const char *const **out, struct imgfs_err *err)
{
    *out = NULL;
    if (!a || json_is_null(a))
        return 0;
    if (!json_is_array(a))
        return err_set(err, EINVAL, "`%s` is not a list", what);
    const char **l = xcalloc(json_array_size(a) + 1, sizeof *l);
    size_t i;
    json_t *v;
    json_array_foreach(a, i, v)
    {
        if (!json_is_string(v)) {
            free(l);
            return err_set(err, EINVAL, "`%s` holds something other than a string", what);
        }
        l[i] = json_string_value(v);
    }
    *out = l;
    return 0;
}

/* includes.caps: rule needs all (an unknown capability can't be held: never applies);
 * excludes.caps: rule is skipped when any is held (an unknown one is never held). */
static int parse_caps(json_t *a, bool include, struct sc_rule *r, struct imgfs_err *err)
{
    size_t i;
    json_t *v;
    if (a && !json_is_array(a))
        return err_set(err, EINVAL, "`caps` is not a list");
    json_array_foreach(a, i, v)
    {
        int c = json_is_string(v) ? caps_from_name(json_string_value(v)) : -1;
        if (c < 0) {
            r->never |= include;
            continue;
        }
        if (include)
            r->caps_all_of |= CAP(c);
        else
            r->caps_none_of |= CAP(c);
    }
    return 0;
}

static unsigned parse_kernel(json_t *v)
{
    unsigned major = 0, minor = 0;
    if (json_is_string(v))
        sscanf(json_string_value(v), "%u.%u", &major, &minor);
    return KERNEL(major, minor);
}

/* "SCMP_ARCH_X86_64" -> "x86_64" (libseccomp's name); the result points into a static table. */
static const char *arch_name(const char *s)
{
    static const char *const known[] = {
        "x86",    "x86_64",   "x32",       "arm",         "aarch64", "mips",       "mipsel",
        "mips64", "mipsel64", "mips64n32", "mipsel64n32", "ppc",     "ppc64",      "ppc64le",
        "s390",   "s390x",    "parisc",    "parisc64",    "riscv64", "loongarch64"};
    if (strncmp(s, "SCMP_ARCH_", 10) == 0)
        s += 10;
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (strcasecmp(s, known[i]) == 0)
            return known[i];
    return NULL;
}

static int parse_rule(json_t *o, int default_errno, struct sc_rule *r, struct imgfs_err *err)
{
    if (!json_is_object(o))
        return err_set(err, EINVAL, "a rule is not an object");
    json_t *names = json_object_get(o, "names"), *name = json_object_get(o, "name");
    if (names) {
        if (string_list(names, "names", &r->names, err) < 0)
            return -1;
    } else if (json_is_string(name)) {
        const char **l = xcalloc(2, sizeof *l);
        l[0] = json_string_value(name);
        r->names = l;
    } else {
        return err_set(err, EINVAL, "a rule without `names`");
    }
    if (!r->names)
        r->names = xcalloc(1, sizeof *r->names);
    if (parse_action(json_string_value(json_object_get(o, "action")),
                     json_object_get(o, "errnoRet"), default_errno, &r->action, err) < 0)
        return -1;

    json_t *args = json_object_get(o, "args"), *a;
    size_t i;
    if (args && !json_is_null(args)) {
        if (!json_is_array(args) || json_array_size(args) > SC_MAX_ARGS)
            return err_set(err, EINVAL, "`args` must be a list of at most %d conditions",
                           SC_MAX_ARGS);
        json_array_foreach(args, i, a)
        {
            struct sc_cond *c = &r->args[i];
            json_t *index = json_object_get(a, "index");
            if (!json_is_integer(index) || json_integer_value(index) < 0 ||
                json_integer_value(index) > 5 ||
                parse_op(json_string_value(json_object_get(a, "op")), &c->op) < 0)
                return err_set(err, EINVAL, "bad argument condition %zu", i);
            c->index = (unsigned)json_integer_value(index);
            /* values up to 2^64-1 exceed json_int_t; jansson then reads them as reals */
            json_t *v = json_object_get(a, "value"), *v2 = json_object_get(a, "valueTwo");
            c->value =
                json_is_real(v) ? (uint64_t)json_real_value(v) : (uint64_t)json_integer_value(v);
            c->value_two =
                json_is_real(v2) ? (uint64_t)json_real_value(v2) : (uint64_t)json_integer_value(v2);
            r->n_args++;
        }
    }
    json_t *inc = json_object_get(o, "includes"), *exc = json_object_get(o, "excludes");
    if ((inc && (parse_caps(json_object_get(inc, "caps"), true, r, err) < 0 ||
                 string_list(json_object_get(inc, "arches"), "arches", &r->arches_in, err) < 0)) ||
        (exc && (parse_caps(json_object_get(exc, "caps"), false, r, err) < 0 ||
                 string_list(json_object_get(exc, "arches"), "arches", &r->arches_out, err) < 0)))
        return -1;
    if (inc && json_object_get(inc, "minKernel"))
        r->min_kernel_in = parse_kernel(json_object_get(inc, "minKernel"));
    if (exc && json_object_get(exc, "minKernel"))
        r->min_kernel_out = parse_kernel(json_object_get(exc, "minKernel"));
    /* an empty arches list means "any", as in Docker */
    if (r->arches_in && !r->arches_in[0]) {
        free((void *)r->arches_in);
        r->arches_in = NULL;
    }
    return 0;
}

static int json_profile_parse(const char *text, size_t len, const struct sc_host *h,
                              struct json_profile *jp, struct imgfs_err *err)
{
    json_error_t je;
    memset(jp, 0, sizeof *jp);
    jp->root = json_loadb(text, len, 0, &je);
    if (!jp->root)
        return err_set(err, EINVAL, "line %d: %s", je.line, je.text);
    if (!json_is_object(jp->root))
        return err_set(err, EINVAL, "not a JSON object");
    json_t *def_errno = json_object_get(jp->root, "defaultErrnoRet");
    if (parse_action(json_string_value(json_object_get(jp->root, "defaultAction")), def_errno,
                     EPERM, &jp->p.default_action, err) < 0)
        return err_ctx(err, "defaultAction");

    /* Architectures: Docker resolves archMap to the native entry and its sub-architectures; a plain
     * `architectures` list is taken as it is. */
    size_t i;
    json_t *v;
    json_t *arch_map = json_object_get(jp->root, "archMap");
    json_t *arch_list = json_object_get(jp->root, "architectures");
    jp->arches = xcalloc(32, sizeof *jp->arches);
    size_t n_arches = 0;
    if (json_is_array(arch_map)) {
        json_array_foreach(arch_map, i, v)
        {
            const char *a = arch_name(json_string_value(json_object_get(v, "architecture")) ?: "");
            if (!a || seccomp_arch_resolve_name(a) != h->native)
                continue;
            size_t j;
            json_t *s;
            json_array_foreach(json_object_get(v, "subArchitectures"), j, s)
            {
                const char *sa = json_is_string(s) ? arch_name(json_string_value(s)) : NULL;
                if (sa && n_arches < 31)
                    jp->arches[n_arches++] = sa;
            }
        }
    } else if (json_is_array(arch_list)) {
        json_array_foreach(arch_list, i, v)
        {
            const char *a = json_is_string(v) ? arch_name(json_string_value(v)) : NULL;
            if (a && n_arches < 31)
                jp->arches[n_arches++] = a;
        }
    }
    jp->p.arches = jp->arches;

    json_t *rules = json_object_get(jp->root, "syscalls");
    if (rules && !json_is_array(rules))
        return err_set(err, EINVAL, "`syscalls` is not a list");
    jp->rules = xcalloc(json_array_size(rules) + 1, sizeof *jp->rules);
    jp->p.rules = jp->rules;
    json_array_foreach(rules, i, v)
    {
        jp->p.n_rules = i + 1;
        if (parse_rule(v, EPERM, &jp->rules[i], err) < 0)
            return err_ctx(err, "syscalls[%zu]", i);
    }
    return 0;
}

/* ---- the cache and the public interface ----------------------------------------------------- */

struct ctr_seccomp {
    bool unconfined;
    struct sock_fprog prog;
};

/* Everything the compiled program depends on goes into the digest, the default table included, so
 * an edit of the table or a new kernel never meets a stale cached program. */
static void key_rules(struct digest_ctx *d, const struct sc_profile *p)
{
    digest_ctx_update(d, &p->default_action, sizeof p->default_action);
    for (size_t i = 0; i < p->n_rules; i++) {
        const struct sc_rule *r = &p->rules[i];
        for (const char *const *n = r->names; *n; n++)
            digest_ctx_update(d, *n, strlen(*n) + 1);
        uint64_t fields[] = {r->action,        r->n_args,         r->caps_all_of, r->caps_none_of,
                             r->min_kernel_in, r->min_kernel_out, r->never};
        digest_ctx_update(d, fields, sizeof fields);
        for (unsigned a = 0; a < r->n_args; a++) {
            uint64_t c[] = {r->args[a].index, r->args[a].op, r->args[a].value,
                            r->args[a].value_two};
            digest_ctx_update(d, c, sizeof c);
        }
        for (const char *const *a = r->arches_in; a && *a; a++)
            digest_ctx_update(d, *a, strlen(*a) + 1);
        digest_ctx_update(d, "|", 1);
        for (const char *const *a = r->arches_out; a && *a; a++)
            digest_ctx_update(d, *a, strlen(*a) + 1);
    }
}

static void cache_key(const char *profile_text, size_t profile_len, uint64_t caps,
                      const struct sc_host *h, char hex[DIGEST_HEX_LEN + 1])
{
    struct digest_ctx *d = digest_ctx_new();
    const struct scmp_version *v = seccomp_version();
    char head[256];
    int n = snprintf(head, sizeof head, "imgfs-seccomp-2 %s %u %u.%u.%u %016llx %s", h->machine,
                     h->kernel, v->major, v->minor, v->micro, (unsigned long long)caps,
                     profile_text ? "json" : "default");
    digest_ctx_update(d, head, (size_t)n);
    if (profile_text)
        digest_ctx_update(d, profile_text, profile_len);
    else
        key_rules(d, &default_profile);
    struct digest out;
    digest_ctx_final(d, &out);
    digest_ctx_free(d);
    digest_hex(&out, hex);
}

/* The linker's build id of the running program (NT_GNU_BUILD_ID, hex), "" without one. The default
 * table is compiled into the program, so its build id names the table: the cache of the default
 * profile needs no digest of it — the one SHA-256 of a `run`, whose first use costs OpenSSL's
 * provider setup (~0.7 ms of CPU, more than the rest of the CLI's own code: docs/runner.md). */
static int build_id_of_program(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    char *hex = data;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_NOTE)
            continue;
        size_t align = ph->p_align == 8 ? 8 : 4;
        const char *p = (const char *)(info->dlpi_addr + ph->p_vaddr), *end = p + ph->p_memsz;
        while ((size_t)(end - p) >= sizeof(ElfW(Nhdr))) {
            const ElfW(Nhdr) *n = (const void *)p;
            const char *name = p + sizeof *n;
            const unsigned char *desc =
                (const unsigned char *)name + ((n->n_namesz + align - 1) & ~(align - 1));
            if ((const char *)desc + n->n_descsz > end)
                break;
            if (n->n_type == NT_GNU_BUILD_ID && n->n_namesz == 4 && memcmp(name, "GNU", 4) == 0 &&
                n->n_descsz >= 8 && n->n_descsz <= 64) {
                for (unsigned k = 0; k < n->n_descsz; k++)
                    sprintf(hex + 2 * k, "%02x", desc[k]);
                return 1;
            }
            p = (const char *)desc + ((n->n_descsz + align - 1) & ~(align - 1));
        }
    }
    return 1; /* the first object is the program; the libraries are not asked */
}

/* Where the compiled program for this profile, capability set and host is kept. */
static char *cache_path(const char *cache_dir, const char *profile_text, size_t profile_len,
                        uint64_t caps, const struct sc_host *h)
{
    char build_id[2 * 64 + 1] = "";
    if (!profile_text)
        dl_iterate_phdr(build_id_of_program, build_id);
    if (!build_id[0]) {
        char hex[DIGEST_HEX_LEN + 1];
        cache_key(profile_text, profile_len, caps, h, hex);
        return xasprintf("%s/%s.bpf", cache_dir, hex);
    }
    const struct scmp_version *v = seccomp_version();
    return xasprintf("%s/default-%s-%s-%u-%u.%u.%u-%016llx.bpf", cache_dir, build_id, h->machine,
                     h->kernel, v->major, v->minor, v->micro, (unsigned long long)caps);
}

static int bpf_check(const struct buf *b)
{
    return b->len && b->len % sizeof(struct sock_filter) == 0 &&
                   b->len / sizeof(struct sock_filter) <= BPF_MAXINSNS
               ? 0
               : -1;
}

static int seccomp_prepare_inner(const char *profile, uint64_t caps, const char *cache_dir,
                                 struct buf *bpf, struct imgfs_err *err)
{
    struct sc_host h;
    host_probe(&h);
    struct buf text = {0};
    if (profile && read_file(profile, 16 << 20, &text, err) < 0)
        return err_ctx(err, "reading the seccomp profile");

    cleanup_free char *cached = NULL;
    int ret = -1;
    if (cache_dir) {
        cached = cache_path(cache_dir, (const char *)text.data, text.len, caps, &h);
        struct imgfs_err ignored;
        if (read_file(cached, BPF_MAXINSNS * sizeof(struct sock_filter), bpf, &ignored) == 0 &&
            bpf_check(bpf) == 0) {
            ret = 0;
            goto out;
        }
        bpf->len = 0; /* missing or damaged: compile again */
    }

    if (profile) {
        struct json_profile jp;
        int rc = json_profile_parse((const char *)text.data, text.len, &h, &jp, err);
        if (rc == 0)
            rc = profile_compile(&jp.p, caps, &h, bpf, err);
        json_profile_free(&jp);
        if (rc < 0) {
            err_ctx(err, "seccomp profile `%s`", profile);
            goto out;
        }
    } else if (profile_compile(&default_profile, caps, &h, bpf, err) < 0) {
        err_ctx(err, "the default seccomp profile");
        goto out;
    }
    if (bpf_check(bpf) < 0) {
        err_set(err, E2BIG, "the compiled seccomp filter has %zu bytes", bpf->len);
        goto out;
    }
    /* a cache we can't write only costs the next start a compile */
    if (cached) {
        struct imgfs_err ignored;
        if (mkdir_p(cache_dir, 0700, &ignored) == 0)
            write_file_atomic(cached, bpf->data, bpf->len, 0600, &ignored);
    }
    ret = 0;
out:
    buf_free(&text);
    return ret;
}

int seccomp_prepare(const char *profile, uint64_t caps, const char *cache_dir,
                    struct ctr_seccomp **out, struct imgfs_err *err)
{
    struct ctr_seccomp *s = xcalloc(1, sizeof *s);
    if (profile && strcmp(profile, "unconfined") == 0) {
        s->unconfined = true;
        *out = s;
        return 0;
    }
    struct buf bpf = {0};
    if (seccomp_prepare_inner(profile, caps, cache_dir, &bpf, err) < 0) {
        buf_free(&bpf);
        free(s);
        return -1;
    }
    s->prog.len = (unsigned short)(bpf.len / sizeof(struct sock_filter));
    s->prog.filter = (struct sock_filter *)bpf.data;
    *out = s;
    return 0;
}

int seccomp_apply(const struct ctr_seccomp *s, struct imgfs_err *err)
{
    if (!s || s->unconfined)
        return 0;
    if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &s->prog) == 0)
        return 0;
    if (errno == ENOSYS && prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &s->prog, 0, 0) == 0)
        return 0;
    return err_sys(err, errno, "installing the seccomp filter");
}

void seccomp_free(struct ctr_seccomp *s)
{
    if (!s)
        return;
    free(s->prog.filter);
    free(s);
}

const void *seccomp_program(const struct ctr_seccomp *s, size_t *n)
{
    *n = s && !s->unconfined ? s->prog.len : 0;
    return *n ? s->prog.filter : NULL;
}
