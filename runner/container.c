/* container.c — starting a container: the monitor (our process, or a detached child with -d) and
 * the container's init (PID 1 of its own namespaces). The shape and the reasons are in
 * docs/runner.md; the start path is kept to one clone and a handful of syscalls per mount. */
#include "ctr_internal.h"
#include "caps.h"
#include "cgroup.h"
#include "net.h"
#include "seccomp.h"
#include "../fs/image.h"

#include <fcntl.h>
#include <linux/capability.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <netinet/in.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>

void ctr_new_id(char id[65])
{
    uint8_t raw[32];
    if (getrandom(raw, sizeof raw, 0) != (ssize_t)sizeof raw) {
        /* getrandom on 32 bytes only fails before the pool is ready; fall back, ids need not be
         * secret */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        for (size_t i = 0; i < sizeof raw; i++)
            raw[i] = (uint8_t)((ts.tv_nsec >> (i % 8)) ^ (getpid() << (i % 5)) ^ i * 131);
    }
    for (size_t i = 0; i < 32; i++)
        snprintf(id + 2 * i, 3, "%02x", raw[i]);
}

/* ---- messages between the monitor and the init (SOCK_SEQPACKET: one message per send) ---- */

enum { MSG_GO = 'G', MSG_READY = 'R', MSG_ERROR = 'E', MSG_TTY = 'T' };

static int send_msg(int fd, char kind, const char *text, int pass_fd)
{
    char data[sizeof((struct imgfs_err *)0)->msg + 1];
    size_t len = 1;
    data[0] = kind;
    if (text) {
        size_t n = strnlen(text, sizeof data - 1);
        memcpy(data + 1, text, n);
        len += n;
    }
    struct iovec iov = {.iov_base = data, .iov_len = len};
    union {
        struct cmsghdr h;
        char buf[CMSG_SPACE(sizeof(int))];
    } control;
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
    if (pass_fd >= 0) {
        memset(&control, 0, sizeof control);
        msg.msg_control = control.buf;
        msg.msg_controllen = sizeof control.buf;
        struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &pass_fd, sizeof(int));
    }
    ssize_t r;
    do
        r = sendmsg(fd, &msg, MSG_NOSIGNAL);
    while (r < 0 && errno == EINTR);
    return r < 0 ? -1 : 0;
}

/* Returns the kind ('\0' at end of stream, -1 on error); text NUL-terminated. */
static int recv_msg(int fd, char *text, size_t text_len, int *got_fd)
{
    char data[sizeof((struct imgfs_err *)0)->msg + 1];
    struct iovec iov = {.iov_base = data, .iov_len = sizeof data};
    union {
        struct cmsghdr h;
        char buf[CMSG_SPACE(sizeof(int))];
    } control;
    struct msghdr msg = {.msg_iov = &iov,
                         .msg_iovlen = 1,
                         .msg_control = control.buf,
                         .msg_controllen = sizeof control.buf};
    ssize_t r;
    do
        r = recvmsg(fd, &msg, MSG_CMSG_CLOEXEC);
    while (r < 0 && errno == EINTR);
    if (r < 0)
        return -1;
    if (r == 0)
        return 0;
    if (got_fd) {
        *got_fd = -1;
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c))
            if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
                memcpy(got_fd, CMSG_DATA(c), sizeof(int));
    }
    if (text && text_len) {
        size_t n = (size_t)r - 1 < text_len - 1 ? (size_t)r - 1 : text_len - 1;
        memcpy(text, data + 1, n);
        text[n] = 0;
    }
    return (unsigned char)data[0];
}

/* ---- the init: PID 1 of the container ---- */

struct init_args {
    const struct ctr_spec *spec;
    struct ctr_rootfs rootfs;
    char **argv, **env;
    const char *hostname;
    uint64_t caps;
    struct ctr_seccomp *seccomp;
    int sync;
    int stdio[3];        /* -1: keep ours */
    bool born_in_cgroup; /* set by cgroup_clone before the clone: the init starts in its cgroup */
};

static volatile sig_atomic_t init_dummy;
static void init_note_signal(int sig)
{
    init_dummy = sig;
}

/* Ends the init with a message to the monitor. */
static __attribute__((noreturn)) void init_fail(int sync, struct imgfs_err *err)
{
    send_msg(sync, MSG_ERROR, err->msg, -1);
    _exit(CTR_EXIT_FAILED);
}

void ctr_proc_fail(int status, const struct imgfs_err *err)
{
    char line[sizeof err->msg + 32];
    int n = snprintf(line, sizeof line, "imgfs: %s\n", err->msg);
    if (n > 0)
        (void)!write(2, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
    _exit(status);
}

int ctr_proc_setup(const struct ctr_proc *p, const sigset_t *mask, struct imgfs_err *err)
{
    for (int s = 1; s < NSIG; s++)
        signal(s, SIG_DFL);
    if (mask)
        sigprocmask(SIG_SETMASK, mask, NULL);
    if (setsid() < 0)
        return err_sys(err, errno, "setsid");
    if (p->tty_slave >= 0) {
        if (ioctl(p->tty_slave, TIOCSCTTY, 0) < 0)
            return err_sys(err, errno, "making the pty the controlling terminal");
        for (int i = 0; i < 3; i++)
            if (dup2(p->tty_slave, i) < 0)
                return err_sys(err, errno, "dup2");
        if (p->tty_slave > 2)
            close(p->tty_slave);
    }
    if (p->workdir >= 0 && fchdir(p->workdir) < 0)
        return err_sys(err, errno, "entering the working directory");
    if (p->workdir >= 0)
        close(p->workdir);
    /* seccomp before the uid change when no_new_privs is off (needs CAP_SYS_ADMIN then, see
     * seccomp.h); after everything else when it is on */
    if (!p->no_new_privileges && seccomp_apply(p->seccomp, err) < 0)
        return -1;
    if (user_switch(&p->user, err) < 0)
        return -1;
    if (caps_apply(p->caps, p->user.uid == 0, err) < 0)
        return -1;
    if (p->no_new_privileges) {
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
            return err_sys(err, errno, "no_new_privs");
        if (seccomp_apply(p->seccomp, err) < 0)
            return -1;
    }
    return 0;
}

void ctr_proc_execve(const struct ctr_proc *p)
{
    struct imgfs_err err = {0};
    char path[4096];
    int status = user_find_executable(p->argv[0], p->env, path, sizeof path, &err);
    if (status == 0) {
        execve(path, p->argv, p->env);
        status = errno == ENOENT ? CTR_EXIT_NOT_FOUND : CTR_EXIT_NOT_EXECUTABLE;
        err_sys(&err, errno, "exec: `%s`", p->argv[0]);
    }
    ctr_proc_fail(status, &err);
}

void ctr_proc_exec(const struct ctr_proc *p, const sigset_t *mask)
{
    struct imgfs_err err = {0};
    if (ctr_proc_setup(p, mask, &err) < 0)
        ctr_proc_fail(CTR_EXIT_FAILED, &err);
    ctr_proc_execve(p);
}

static int init_tty(int sync, int *slave, struct imgfs_err *err)
{
    int master = open("/dev/pts/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (master < 0)
        return err_sys(err, errno, "opening /dev/pts/ptmx");
    int unlock = 0;
    if (ioctl(master, TIOCSPTLCK, &unlock) < 0) {
        close(master);
        return err_sys(err, errno, "unlocking the pty");
    }
    *slave = ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (*slave < 0) {
        close(master);
        return err_sys(err, errno, "opening the pty's peer");
    }
    char self[64];
    snprintf(self, sizeof self, "/proc/self/fd/%d", *slave);
    if (mount(self, "/dev/console", NULL, MS_BIND, NULL) < 0) {
        close(master);
        return err_sys(err, errno, "binding /dev/console");
    }
    int r = send_msg(sync, MSG_TTY, NULL, master);
    close(master);
    if (r < 0)
        return err_sys(err, errno, "passing the pty to the monitor");
    return 0;
}

static const struct {
    const char *name;
    int resource;
} ulimit_names[] = {
    {"as", RLIMIT_AS},           {"core", RLIMIT_CORE},         {"cpu", RLIMIT_CPU},
    {"data", RLIMIT_DATA},       {"fsize", RLIMIT_FSIZE},       {"locks", RLIMIT_LOCKS},
    {"memlock", RLIMIT_MEMLOCK}, {"msgqueue", RLIMIT_MSGQUEUE}, {"nice", RLIMIT_NICE},
    {"nofile", RLIMIT_NOFILE},   {"nproc", RLIMIT_NPROC},       {"rss", RLIMIT_RSS},
    {"rtprio", RLIMIT_RTPRIO},   {"rttime", RLIMIT_RTTIME},     {"sigpending", RLIMIT_SIGPENDING},
    {"stack", RLIMIT_STACK},
};

static const char *ulimit_name(int resource)
{
    for (size_t i = 0; i < sizeof ulimit_names / sizeof ulimit_names[0]; i++)
        if (ulimit_names[i].resource == resource)
            return ulimit_names[i].name;
    return "?";
}

static bool ulimit_value(const char *s, uint64_t *out)
{
    if (!strcmp(s, "-1")) {
        *out = RLIM_INFINITY;
        return true;
    }
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (end == s || *end || errno || *s == '-')
        return false;
    *out = v;
    return true;
}

int ctr_ulimit_parse(const char *s, struct ctr_ulimit *out, struct imgfs_err *err)
{
    const char *eq = strchr(s, '=');
    if (!eq)
        return err_set(err, EINVAL, "invalid ulimit argument: %s", s);
    size_t i, n = sizeof ulimit_names / sizeof ulimit_names[0];
    for (i = 0; i < n; i++)
        if (strlen(ulimit_names[i].name) == (size_t)(eq - s) &&
            !strncmp(ulimit_names[i].name, s, (size_t)(eq - s)))
            break;
    if (i == n)
        return err_set(err, EINVAL, "invalid ulimit type: %.*s", (int)(eq - s), s);
    out->resource = ulimit_names[i].resource;
    cleanup_free char *soft = xstrdup(eq + 1);
    char *hard = strchr(soft, ':');
    if (hard)
        *hard++ = 0;
    if (!ulimit_value(soft, &out->soft) || (hard && !ulimit_value(hard, &out->hard)))
        return err_set(err, EINVAL, "invalid ulimit argument: %s", s);
    if (!hard)
        out->hard = out->soft;
    if (out->soft > out->hard)
        return err_set(err, EINVAL,
                       "ulimit soft limit must be less than or equal to hard limit: %s > %s", soft,
                       hard);
    return 0;
}

static int init_main(void *arg)
{
    struct init_args *a = arg;
    struct imgfs_err err = {0};
    /* the container must not outlive its monitor; a monitor that died before this line is seen as
     * end of stream on sync below */
    prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    /* the init is imgfs's own image: without this, root in the container could reach the host's
     * binary through /proc/1/exe (CVE-2019-5736). The command's execve makes itself dumpable again.
     */
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);

    /* stdio, then nothing else of the monitor's: no descriptor of imgfs reaches the container */
    int sync = fcntl(a->sync, F_DUPFD_CLOEXEC, 64);
    for (int i = 0; i < 3; i++)
        if (a->stdio[i] >= 0 && a->stdio[i] != i && dup2(a->stdio[i], i) < 0)
            _exit(CTR_EXIT_FAILED);
    if (sync < 0 || dup3(sync, 3, O_CLOEXEC) < 0)
        _exit(CTR_EXIT_FAILED);
    sync = 3;
    close_range(4, ~0U, 0);

    /* cgroup v2: a cgroup namespace rooted at our own group, for the /sys/fs/cgroup view
     * (rootfs.c) and a /proc/self/cgroup of "0::/", as Docker's. An init that was moved in after
     * its clone (no clone3) could not know when it is inside: no namespace, no view then. */
    if (a->rootfs.cgroup2 && !a->born_in_cgroup)
        a->rootfs.cgroup2 = false;
    if (a->rootfs.cgroup2 && unshare(CLONE_NEWCGROUP) < 0) {
        err_sys(&err, errno, "creating the container's cgroup namespace");
        init_fail(sync, &err);
    }
    if (sethostname(a->hostname, strlen(a->hostname)) < 0) {
        err_sys(&err, errno, "sethostname");
        init_fail(sync, &err);
    }
    const struct ctr_spec *spec = a->spec;
    int *volume_fds = xcalloc(spec->n_mounts + 1, sizeof *volume_fds);
    for (size_t i = 0; i < spec->n_mounts; i++) {
        volume_fds[i] = -1;
        if (!spec->mounts[i].tmpfs &&
            (volume_fds[i] = rootfs_open_volume(&spec->mounts[i], &err)) < 0)
            init_fail(sync, &err);
    }
    a->rootfs.volume_fds = volume_fds;
    if (rootfs_setup(&a->rootfs, &err) < 0)
        init_fail(sync, &err);
    for (size_t i = 0; i < spec->n_mounts; i++)
        if (volume_fds[i] >= 0)
            close(volume_fds[i]);
    for (size_t i = 0; i < spec->n_ulimits; i++) {
        struct rlimit rl = {.rlim_cur = spec->ulimits[i].soft, .rlim_max = spec->ulimits[i].hard};
        if (setrlimit(spec->ulimits[i].resource, &rl) < 0) {
            err_sys(&err, errno, "--ulimit %s", ulimit_name(spec->ulimits[i].resource));
            init_fail(sync, &err);
        }
    }

    int tty_slave = -1;
    if (spec->tty && init_tty(sync, &tty_slave, &err) < 0)
        init_fail(sync, &err);

    cleanup_close int root = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
    struct ctr_user user;
    const char *user_spec = spec->user ? spec->user : spec->config ? spec->config->user : NULL;
    if (root < 0 || user_resolve(root, user_spec, &user, &err) < 0)
        init_fail(sync, &err);
    for (size_t i = 0; spec->group_add && spec->group_add[i]; i++)
        if (user_group_add(root, spec->group_add[i], &user, &err) < 0)
            init_fail(sync, &err);
    user_env_home(&a->env, user.home);
    const char *wd = spec->workdir ? spec->workdir
                     : spec->config && spec->config->working_dir && *spec->config->working_dir
                         ? spec->config->working_dir
                         : "/";
    int workdir = rootfs_open(root, wd, O_PATH | O_DIRECTORY, spec->read_only ? 0 : S_IFDIR, &err);
    if (workdir < 0) {
        err_ctx(&err, "working directory");
        init_fail(sync, &err);
    }

    /* /proc/1/cmdline is readable by everyone in the container: show a name, not our command line
     * (host paths of volumes, -e values). Last use of anything that points into argv (the spec's
     * option strings) is above this line. */
    proc_set_title("imgfs-init");

    /* PID 1 of a namespace gets only the signals it has handlers for: catch them all, then take
     * them synchronously */
    sigset_t all, old;
    sigfillset(&all);
    struct sigaction sa = {.sa_handler = init_note_signal};
    for (int s = 1; s < NSIG; s++)
        if (s != SIGKILL && s != SIGSTOP)
            sigaction(s, &sa, NULL);
    sigprocmask(SIG_BLOCK, &all, &old);

    char text[8];
    int kind = recv_msg(sync, text, sizeof text, NULL);
    if (kind != MSG_GO)
        _exit(CTR_EXIT_FAILED);

    struct ctr_proc proc = {
        .argv = a->argv,
        .env = a->env,
        .caps = a->caps,
        .seccomp = a->seccomp,
        .no_new_privileges = spec->no_new_privileges,
        .user = user,
        .workdir = workdir,
        .tty_slave = tty_slave,
    };
    if (!spec->init) {
        /* Without --init the command is PID 1 itself, as in Docker: this process becomes it. The
         * monitor waits for it (its exit status is the container's), signals it for stop/kill,
         * and put it in the cgroups before `go`. */
        if (ctr_proc_setup(&proc, &old, &err) < 0)
            init_fail(sync, &err);
        /* a uid or gid change clears the parent-death signal (prctl(2)): set it again. The monitor
         * holds the other end of `sync` while it lives, so a READY that cannot be sent means it
         * died before the line above could take effect. */
        prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
        if (send_msg(sync, MSG_READY, NULL, -1) < 0)
            _exit(CTR_EXIT_FAILED);
        close(sync);
        ctr_proc_execve(&proc);
    }

    /* The command's process waits on `go` until the init has given up everything but CAP_KILL and
     * carries the container's seccomp filter: with --cap-add SYS_PTRACE the container can ptrace
     * its PID 1, so no container code may ever run beside an init that is not confined as the
     * container is (Docker: every process of a container carries the filter). */
    int go[2];
    if (pipe2(go, O_CLOEXEC) < 0) {
        err_sys(&err, errno, "pipe");
        init_fail(sync, &err);
    }
    pid_t child = fork();
    if (child < 0) {
        err_sys(&err, errno, "fork");
        init_fail(sync, &err);
    }
    if (child == 0) {
        close(go[1]);
        char c;
        ssize_t n;
        do
            n = read(go[0], &c, 1);
        while (n < 0 && errno == EINTR);
        if (n != 1)
            _exit(CTR_EXIT_FAILED);
        close(go[0]);
        ctr_proc_exec(&proc, &old);
    }
    close(go[0]);
    close(workdir);
    if (tty_slave >= 0)
        close(tty_slave);
    close(root);
    root = -1;
    /* The init is root in the container's namespaces for the container's whole life; from here on
     * it only waits and passes signals on, which needs CAP_KILL alone (for a command of another
     * uid). Then no_new_privs (the init never execs; the command is forked already, so it does not
     * inherit it) so that the filter installs without CAP_SYS_ADMIN, and the container's filter:
     * what the init still calls (rt_sigtimedwait, kill, wait4, sendmsg, close, write, exit_group)
     * every profile that can run a container allows. */
    int confined = caps_apply(UINT64_C(1) << CAP_KILL, true, &err);
    if (confined == 0 && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
        confined = err_sys(&err, errno, "no_new_privs");
    if (confined == 0)
        confined = seccomp_apply(a->seccomp, &err);
    if (confined < 0) {
        err_ctx(&err, "confining the container's init");
        kill(child, SIGKILL);
        init_fail(sync, &err);
    }
    if (write(go[1], "g", 1) != 1) {
        err_sys(&err, errno, "starting the command");
        kill(child, SIGKILL);
        init_fail(sync, &err);
    }
    close(go[1]);
    send_msg(sync, MSG_READY, NULL, -1);
    close(sync);

    ctr_relay_until_exit(child, &all, false);
}

void ctr_relay_until_exit(pid_t child, const sigset_t *set, bool sent_only)
{
    for (;;) {
        siginfo_t si;
        int sig = sigwaitinfo(set, &si);
        if (sig < 0)
            continue;
        if (sig != SIGCHLD) {
            if (!sent_only || si.si_code <= 0)
                kill(child, sig);
            continue;
        }
        int st;
        pid_t p;
        while ((p = waitpid(-1, &st, WNOHANG)) > 0)
            if (p == child)
                _exit(WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
    }
}

/* ---- the monitor ---- */

static void append_lines(char **text, const char *prefix, char *const *words, const char *sep)
{
    if (!words || !words[0])
        return;
    struct buf b = {0};
    buf_append(&b, *text, strlen(*text));
    buf_append(&b, prefix, strlen(prefix));
    for (size_t i = 0; words[i]; i++) {
        if (i)
            buf_append(&b, sep, strlen(sep));
        buf_append(&b, words[i], strlen(words[i]));
    }
    buf_append(&b, "\n", 2);
    free(*text);
    *text = (char *)b.data;
}

static char *write_etc_files(const char *dir, const struct ctr_spec *spec, const char *hostname,
                             enum net_mode mode, struct imgfs_err *err)
{
    char *etc = xasprintf("%s/etc", dir);
    if (mkdir(etc, 0755) < 0 && errno != EEXIST) {
        err_sys(err, errno, "creating `%s`", etc);
        free(etc);
        return NULL;
    }
    cleanup_free char *hosts =
        xasprintf("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n%s\t%s\n",
                  mode == NET_PRIVATE ? "10.0.2.100" : "127.0.1.1", hostname);
    /* --add-host NAME:IP, as Docker writes it: "IP\tNAME" (validated by the caller) */
    for (size_t i = 0; spec->add_hosts && spec->add_hosts[i]; i++) {
        const char *colon = strchr(spec->add_hosts[i], ':');
        char *more = xasprintf("%s%s\t%.*s\n", hosts, colon + 1, (int)(colon - spec->add_hosts[i]),
                               spec->add_hosts[i]);
        free(hosts);
        hosts = more;
    }
    cleanup_free char *hn = xasprintf("%s\n", hostname);
    cleanup_free char *resolv = NULL;
    const char *ns = net_nameserver(mode);
    if (ns) {
        resolv = xasprintf("nameserver %s\n", ns);
    } else {
        struct buf b = {0};
        struct imgfs_err ignored;
        if (read_file("/etc/resolv.conf", 1 << 20, &b, &ignored) == 0) {
            buf_append(&b, "", 1);
            resolv = (char *)b.data;
        } else {
            buf_free(&b);
            resolv = xstrdup("");
        }
    }
    /* Docker: --dns servers replace the file's; --dns-search and --dns-option lines are added
     * (the resolver takes the last `search` line) */
    if (spec->dns && spec->dns[0]) {
        free(resolv);
        resolv = xstrdup("");
        append_lines(&resolv, "nameserver ", spec->dns, "\nnameserver ");
    }
    append_lines(&resolv, "search ", spec->dns_search, " ");
    append_lines(&resolv, "options ", spec->dns_options, " ");
    const char *names[] = {"hosts", "hostname", "resolv.conf"};
    const char *data[] = {hosts, hn, resolv};
    for (int i = 0; i < 3; i++) {
        cleanup_free char *p = xasprintf("%s/%s", etc, names[i]);
        cleanup_close int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0 || write_full(fd, data[i], strlen(data[i])) < 0) {
            err_sys(err, errno, "writing `%s`", p);
            free(etc);
            return NULL;
        }
    }
    return etc;
}

struct monitor {
    const struct ctr_spec *spec;
    char *dir;
    int lock;
    struct ctr_state state;
    struct ctr_cgroup *cgroup;
    struct net_handle *net;
    pid_t init;
    int master;          /* pty master, or -1 */
    struct ctr_log *log; /* every container but a hidden one has a log */
    int pipes[2];        /* the container's stdout and stderr (read ends), or -1 */
    int pipe_w[2];       /* their write ends, closed once the container has them */
    int notify;          /* -d: pipe to the `imgfs run` that waits for the start, or -1 */
    bool mounted;        /* holds a reference on the shared image mount */
    bool finished;       /* monitor_finish ran */
    bool detached; /* the monitor runs apart from the caller (-d, or handed off for --restart) */
    bool keep;     /* start: a container that fails to start again stays (exited, with why) */
    /* --restart: the signals `stop` sends us between two runs stay blocked in the monitor;
     * the container's init gets the mask from before that */
    bool restarts;
    sigset_t init_mask;
    /* config.json and spec.json are still to be written: by the first run, while its init builds
     * the rootfs (ctr_launch) */
    bool config_pending;
    /* the network helper failed after the command started (net_confirm, monitor_net_ready) */
    bool net_failed;
    struct imgfs_err net_err;
};

static int64_t now(void)
{
    return (int64_t)time(NULL);
}

static void notify_parent(struct monitor *m, const char *error)
{
    if (m->notify < 0)
        return;
    (void)!write(m->notify, error ? error : "", error ? strlen(error) : 0);
    close(m->notify);
    m->notify = -1;
}

/* The network helper's final word, heard while the command runs (net.h): a failure stops the
 * container. */
static int monitor_net_ready(void *arg)
{
    struct monitor *m = arg;
    if (net_confirm(m->net, &m->net_err) == 0)
        return 0;
    m->net_failed = true;
    return -1;
}

/* Wait for the init to end, forwarding signals and relaying the terminal. Returns its wait status.
 */
static int monitor_wait(struct monitor *m, int sigfd)
{
    const struct ctr_spec *spec = m->spec;
    bool attached = !m->detached;
    struct ctr_relay r = {
        .pid = m->init,
        .sigfd = sigfd,
        .in = m->master >= 0 && attached && spec->interactive ? 0 : -1,
        .master = m->master,
        .pipes = {m->pipes[0], m->pipes[1]},
        /* -a: a stream not attached goes to the log only */
        .to = {attached && !spec->mute_stdout ? 1 : -1, attached && !spec->mute_stderr ? 2 : -1},
        .log = m->log,
        .watch_fd = net_pending_fd(m->net),
        .watch = monitor_net_ready,
        .watch_arg = m,
    };
    struct termios saved;
    bool raw = r.in >= 0 && isatty(0) && pty_raw_begin(0, &saved, sizeof saved) == 0;
    int st = ctr_relay(&r);
    m->master = m->pipes[0] = m->pipes[1] = -1;
    if (raw)
        pty_raw_end(0, &saved);
    /* every record written before the state says "exited": `wait; logs` sees it all */
    ctr_log_flush(m->log);
    return st;
}

static void monitor_save(struct monitor *m);

/* What one run of the container holds outside its directory: its cgroup and network helper. */
static void monitor_end_run(struct monitor *m)
{
    struct imgfs_err ignored;
    if (m->net)
        net_detach(m->net);
    m->net = NULL;
    /* read before the group goes: it holds the kernel's count of OOM kills */
    if (m->cgroup && cgroup_oom_killed(m->cgroup) == 1)
        m->state.oom_killed = true;
    if (m->cgroup)
        cgroup_destroy(m->cgroup, &ignored);
    m->cgroup = NULL;
}

/* The container ended (or never started, `failed`): record it, free what it held outside its
 * directory, and remove it with --rm or when it never ran. */
static void monitor_finish(struct monitor *m, int exit_code, bool failed)
{
    struct imgfs_err ignored;
    m->state.status = CTR_EXITED;
    m->state.exit_code = exit_code;
    m->state.finished = now();
    monitor_end_run(m);
    if (m->spec->remove || m->spec->hidden || (failed && !m->keep)) {
        /* --rm takes the container's anonymous volumes with it, as Docker's; without mounts
         * (the image's VOLUMEs are among them, ctr_volumes_prepare) there is no config.json to
         * read for them */
        char **anonymous = m->spec->hidden || m->spec->n_mounts == 0
                               ? NULL
                               : ctr_anonymous_volumes(m->spec->run_dir, m->spec->id);
        ctr_remove_tree(m->dir, &ignored);
        ctr_anonymous_volumes_remove(m->spec->run_dir, anonymous);
        strv_free(anonymous);
    } else {
        monitor_save(m);
    }
    if (m->spec->mount_key && m->mounted)
        ctr_mount_release(m->spec->run_dir, m->spec->mount_key, m->spec->id, &ignored);
    m->mounted = false;
    m->finished = true;
}

/* The command (or, through a shell, a process of the container) died of SIGBUS: most likely a
 * file it had mmap'ed from the image could not be read. A chunk that fails its digest makes the
 * image's daemon log the file and the chunk (once per mount, fs/mount.c): quote those lines in the
 * container's log, where the user looks. */
static void note_bad_chunks(struct monitor *m)
{
    cleanup_free char *path =
        xasprintf("%s/images/%s/mount.log", m->spec->run_dir, m->spec->mount_key);
    struct buf b = {0};
    struct imgfs_err ignored;
    if (read_file(path, 1 << 20, &b, &ignored) < 0) {
        buf_free(&b);
        return;
    }
    buf_append(&b, "", 1);
    char *save = NULL;
    for (char *line = strtok_r((char *)b.data, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        const char *what = strstr(line, "imgfs mount: ");
        if (!what || !strstr(line, "reads of it fail with EIO"))
            continue;
        cleanup_free char *note = xasprintf("imgfs: the container got SIGBUS (exit code 135): a "
                                            "file mapped from the image could not "
                                            "be read; the image's daemon (%s) logged: %s",
                                            path, what + strlen("imgfs mount: "));
        ctr_log_note(m->spec->run_dir, m->spec->id, note);
        if (!m->detached && !m->spec->mute_stderr) {
            /* the foreground run's terminal, where the container's stderr went */
            cleanup_free char *text = xasprintf("%s\n", note);
            (void)!write_full(2, text, strlen(text));
        }
    }
    buf_free(&b);
}

/* One run of the container: from its cgroup to the end of its init. 0 with the exit code, or -1
 * when it could not be started. */
static int monitor_run_once(struct monitor *m, struct init_args *a, int *status,
                            struct imgfs_err *err)
{
    const struct ctr_spec *spec = m->spec;
    enum net_mode mode = NET_PRIVATE;
    unsigned net_flags = 0;
    if (spec->network && net_parse_mode(spec->network, &mode, &net_flags, err) < 0)
        return -1;
    size_t n_ports = strv_len(spec->publish);
    cleanup_free struct net_port *ports = xcalloc(n_ports + 1, sizeof *ports);
    for (size_t i = 0; i < n_ports; i++)
        if (net_parse_port(spec->publish[i], &ports[i], err) < 0)
            return -1;

    struct cgroup_limits limits = {.memory_bytes = spec->memory_bytes,
                                   .pids = spec->pids_limit,
                                   .cpus = spec->cpus,
                                   .allow_all_devices = spec->privileged,
                                   .device_rules =
                                       ctr_device_rules(spec->devices, spec->n_devices)};
    int created = cgroup_create(spec->id, &limits, &m->cgroup, err);
    strv_free(limits.device_rules);
    if (created < 0)
        return err_ctx(err, "creating the container's cgroup");
    a->rootfs.n_cgroups =
        cgroup_v1_view(m->cgroup, a->rootfs.cgroup_mounts, a->rootfs.cgroup_dirs,
                       sizeof a->rootfs.cgroup_mounts / sizeof a->rootfs.cgroup_mounts[0]);
    a->rootfs.cgroup2 = cgroup_v2(m->cgroup);

    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
        return err_sys(err, errno, "socketpair");
    cleanup_close int sync = sv[0];
    a->sync = sv[1];

    /* signals for the monitor arrive on a signalfd; the init restores its own */
    sigset_t set, old;
    sigemptyset(&set);
    int fwd[] = {SIGCHLD, SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH, SIGCONT};
    for (size_t i = 0; i < sizeof fwd / sizeof fwd[0]; i++) {
        sigaddset(&set, fwd[i]);
        /* an ignored signal is discarded, not queued for the signalfd: a shell starts background
         * jobs with SIGINT and SIGQUIT ignored, and we still want to pass them on */
        signal(fwd[i], SIG_DFL);
    }
    sigprocmask(SIG_BLOCK, &set, &old);
    cleanup_close int sigfd = signalfd(-1, &set, SFD_CLOEXEC);

    unsigned long flags = CLONE_NEWNS | CLONE_NEWUTS | SIGCHLD;
    if (!a->spec->pid_host) /* --pid host: the host's process table (and /proc) */
        flags |= CLONE_NEWPID;
    if (!a->spec->ipc_host) /* --ipc host: the host's System V IPC and POSIX queues */
        flags |= CLONE_NEWIPC;
    /* a namespace net_prepare made (ctr_launch): the init is born in it, as in its cgroup */
    int netns = net_netns_fd(m->net);
    cleanup_close int home_net = -1;
    if (mode != NET_HOST && netns < 0)
        flags |= CLONE_NEWNET;
    if (netns >= 0) {
        home_net = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
        if (home_net < 0 || setns(netns, CLONE_NEWNET) < 0) {
            sigprocmask(SIG_SETMASK, &old, NULL);
            return err_sys(err, errno, "entering the container's network namespace");
        }
    }
    /* The init is born in its cgroup: nothing is moved after the clone (on v1 such a move costs an
     * RCU grace period, cgroup.h). On v2 the init makes its own cgroup namespace once it is inside
     * (init_main), so that the namespace's root, and its /sys/fs/cgroup, is the container's group.
     */
    pid_t pid = cgroup_clone(m->cgroup, flags, &a->born_in_cgroup, err);
    if (pid == 0) {
        sigprocmask(SIG_SETMASK, m->restarts ? &m->init_mask : &old, NULL);
        _exit(init_main(a));
    }
    if (netns >= 0 && setns(home_net, CLONE_NEWNET) < 0)
        abort(); /* the monitor would go on in the container's network */
    close(a->sync);
    for (int i = 0; i < 2; i++)
        if (m->pipe_w[i] >= 0) {
            close(m->pipe_w[i]);
            m->pipe_w[i] = -1;
        }
    if (pid < 0) {
        sigprocmask(SIG_SETMASK, &old, NULL);
        return err_ctx(err, "creating the container's namespaces");
    }
    m->init = pid;

    if (m->net ? net_attach_prepared(m->net, pid, ports, n_ports, m->dir, err) < 0
               : net_attach(pid, mode, net_flags, ports, n_ports, m->dir, &m->net, err) < 0)
        goto kill_init;
    if (send_msg(sync, MSG_GO, NULL, -1) < 0) {
        err_sys(err, errno, "starting the container");
        goto kill_init;
    }
    if (m->config_pending) {
        m->config_pending = false;
        if (ctr_config_write(m->dir, spec, a->argv, a->env, err) < 0 ||
            ctr_spec_save(m->dir, spec, err) < 0)
            goto kill_init;
    }
    for (;;) {
        char text[sizeof err->msg];
        int fd = -1;
        int kind = recv_msg(sync, text, sizeof text, &fd);
        if (kind == MSG_TTY) {
            m->master = fd;
            continue;
        }
        if (kind == MSG_READY)
            break;
        if (kind == MSG_ERROR)
            err_set(err, EIO, "%s", text);
        else
            err_set(err, EIO, "the container's init ended before starting the command");
        goto kill_init;
    }
    /* `run -d` reports a started container only with its network up; in the foreground the
     * helper's last steps run beside the command (monitor_wait) */
    if (m->detached && net_confirm(m->net, err) < 0)
        goto kill_init;
    /* "running" (and so open to exec and kill) only once every process in the container is
     * confined as the container is: before READY, PID 1 may still be imgfs with all privileges */
    m->state.init_pid = pid;
    m->state.status = CTR_RUNNING;
    m->state.started = now();
    m->state.oom_killed = false; /* as Docker's: of the last run only */
    if (!spec->hidden && ctr_state_save(spec->run_dir, &m->state, err) < 0)
        goto kill_init;
    notify_parent(m, NULL);

    int st = monitor_wait(m, sigfd);
    sigprocmask(SIG_SETMASK, &old, NULL);
    if (m->net_failed) { /* the container was killed for it: its status says nothing */
        m->net_failed = false;
        *err = m->net_err;
        return -1;
    }
    int code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    if (code == 128 + SIGBUS && spec->mount_key)
        note_bad_chunks(m);
    /* killed because its image mount died (state.c): record that, not the SIGKILL */
    m->state.error = ctr_lost_reason(spec->run_dir, spec->id);
    if (m->state.error)
        code = CTR_EXIT_ROOTFS_LOST;
    *status = code;
    return 0;

kill_init:
    /* An init that failed on its own (a bad -w, a volume) said why before it ended; what failed
     * here (its network, the GO message: EPIPE) is only the symptom. Non-blocking: never waits. */
    if (fcntl(sync, F_SETFL, O_NONBLOCK) == 0) {
        char text[sizeof err->msg];
        if (recv_msg(sync, text, sizeof text, NULL) == MSG_ERROR)
            err_set(err, EIO, "%s", text);
    }
    kill(pid, SIGKILL);
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
        ;
    sigprocmask(SIG_SETMASK, &old, NULL);
    return -1;
}

static int open_stdio(struct monitor *m, int stdio[3], struct imgfs_err *err)
{
    const struct ctr_spec *spec = m->spec;
    stdio[0] = stdio[1] = stdio[2] = -1;
    if (spec->tty)
        return 0; /* the init puts the pty on 0, 1, 2 */
    if (m->detached || !spec->interactive) {
        stdio[0] = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (stdio[0] < 0)
            return err_sys(err, errno, "opening /dev/null");
    }
    if (spec->redirect_output) {
        stdio[1] = spec->stdout_fd;
        stdio[2] = spec->stderr_fd;
    } else if (m->log) {
        /* the monitor copies both streams to the log (and ours, in the foreground) */
        for (int i = 0; i < 2; i++) {
            int p[2];
            if (pipe2(p, O_CLOEXEC) < 0)
                return err_sys(err, errno, "pipe");
            m->pipes[i] = p[0];
            m->pipe_w[i] = stdio[1 + i] = p[1];
        }
    }
    return 0;
}

/* ---- restart policies (--restart) ----
 * The monitor is the restart manager, as dockerd's is: the first restart after 100 ms, each next
 * one waits twice as long (at most a minute), and a run of 10 s or more starts from 100 ms again.
 * Between two runs the container is "restarting": no init, the monitor holding the lock. */

static bool restart_due(const struct monitor *m, int code)
{
    const struct ctr_spec *spec = m->spec;
    if (spec->restart == CTR_RESTART_NO || m->state.error ||
        ctr_stopped_by_hand(spec->run_dir, spec->id))
        return false;
    if (spec->restart == CTR_RESTART_ON_FAILURE)
        return code != 0 && (spec->restart_max == 0 || m->state.restart_count < spec->restart_max);
    return true;
}

static int64_t monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const int stop_signals[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT};

/* Wait `ms` before the next run. False when the container was stopped meanwhile: `stop` leaves its
 * mark, then sends us SIGTERM; the mark is looked at every 100 ms in case the signal went to the
 * init that had just ended. */
static bool restart_wait(const struct monitor *m, int64_t ms)
{
    sigset_t set;
    sigemptyset(&set);
    for (size_t i = 0; i < sizeof stop_signals / sizeof stop_signals[0]; i++)
        sigaddset(&set, stop_signals[i]);
    int64_t end = monotonic_ms() + ms;
    for (;;) {
        if (ctr_stopped_by_hand(m->spec->run_dir, m->spec->id))
            return false;
        int64_t left = end - monotonic_ms();
        if (left <= 0)
            return true;
        if (left > 100)
            left = 100;
        struct timespec ts = {.tv_sec = 0, .tv_nsec = (long)left * 1000000};
        if (sigtimedwait(&set, NULL, &ts) > 0)
            return false;
    }
}

/* The state file, keeping a name `rename` wrote meanwhile. */
static void monitor_save(struct monitor *m)
{
    struct imgfs_err ignored;
    static char *renamed;
    free(renamed);
    renamed = ctr_state_name_now(m->spec->run_dir, m->spec->id);
    if (renamed)
        m->state.name = renamed;
    ctr_state_save(m->spec->run_dir, &m->state, &ignored);
}

/* A foreground container whose policy restarts it: `imgfs run` returns its exit status now, as
 * Docker's client does, and a monitor of its own (as with -d) carries on in the background. True
 * in that monitor; false in the caller, which must leave the container alone from here on. */
static bool monitor_hand_off(struct monitor *m)
{
    /* what the new monitor itself has to say goes to the log raw, as a -d monitor's */
    cleanup_free char *log = xasprintf("%s/ctr.log", m->dir);
    int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    pid_t pid = fd < 0 ? -1 : fork();
    if (pid != 0) {
        if (fd >= 0)
            close(fd);
        /* the caller: the lock, the cgroup and the image reference are the new monitor's */
        close(m->lock);
        m->lock = -1;
        m->mounted = false;
        m->finished = true;
        return false;
    }
    setsid();
    m->detached = true;
    int null = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null >= 0) {
        dup2(null, 0);
        dup2(null, 1);
        close(null);
    }
    dup2(fd, 2);
    close(fd);
    m->state.monitor_pid = getpid();
    return true;
}

/* Run the container until it ends for good: once, or as long as its restart policy says. -1 when
 * the first run could not start (nothing ran). */
static int monitor_start(struct monitor *m, struct init_args *a, int *status, struct imgfs_err *err)
{
    const struct ctr_spec *spec = m->spec;
    m->restarts = spec->restart != CTR_RESTART_NO;
    if (m->restarts) {
        sigset_t set;
        sigemptyset(&set);
        for (size_t i = 0; i < sizeof stop_signals / sizeof stop_signals[0]; i++)
            sigaddset(&set, stop_signals[i]);
        sigprocmask(SIG_BLOCK, &set, &m->init_mask);
    }
    int code;
    if (monitor_run_once(m, a, &code, err) < 0)
        return -1;
    int64_t delay = 0;
    while (restart_due(m, code)) {
        struct imgfs_err ignored;
        monitor_end_run(m); /* each run has a cgroup and network helper of its own */
        if (!m->detached && !monitor_hand_off(m)) {
            *status = code;
            return 0;
        }
        if (a->stdio[0] >= 0)
            close(a->stdio[0]);
        if (open_stdio(m, a->stdio, err) < 0)
            break;
        int64_t ran = m->state.started > 0 ? now() - m->state.started : 0;
        delay = ran >= 10 || delay == 0 ? 100 : delay * 2 > 60000 ? 60000 : delay * 2;
        m->state.status = CTR_RESTARTING;
        m->state.restart_count++; /* as Docker's: counted when the restart is decided */
        m->state.exit_code = code;
        m->state.finished = now();
        m->state.init_pid = 0;
        monitor_save(m);
        if (!restart_wait(m, delay))
            break;
        if (!spec->upper_dir) { /* a volatile overlay's work directory serves one mount */
            cleanup_free char *work = xasprintf("%s/work", m->dir);
            if (ctr_remove_tree(work, &ignored) < 0 || mkdir(work, 0755) < 0)
                break;
        }
        struct imgfs_err again = {0};
        if (monitor_run_once(m, a, &code, &again) < 0) {
            free(m->state.error);
            m->state.error = xstrdup(again.msg);
            code = CTR_EXIT_FAILED;
            break;
        }
    }
    *status = code;
    monitor_finish(m, code, false);
    return 0;
}

/* Set up the container's directory: made as .ID, locked, then renamed into place, so that a
 * container directory without a held lock always means a dead monitor. */
static int prepare_dir(struct monitor *m, struct imgfs_err *err)
{
    const struct ctr_spec *spec = m->spec;
    static const char *const sub[] = {"rootfs", "upper", "work"};
    if (spec->hidden) {
        /* never renamed into place: ps never sees it */
        m->lock = ctr_hidden_dir_create(spec->run_dir, spec->id, spec->mount_key, err);
        if (m->lock < 0)
            return -1;
        m->dir = ctr_hidden_dir(spec->run_dir, spec->id);
        for (size_t i = 0; i < (spec->upper_dir ? 1 : 3); i++) {
            cleanup_free char *p = xasprintf("%s/%s", m->dir, sub[i]);
            if (mkdir(p, 0755) < 0)
                return err_sys(err, errno, "creating `%s`", p);
        }
        return 0;
    }
    cleanup_free char *base = xasprintf("%s/containers", spec->run_dir);
    if (mkdir_p(base, 0700, err) < 0)
        return -1;
    cleanup_free char *tmp = xasprintf("%s/.%s", base, spec->id);
    m->dir = xasprintf("%s/%s", base, spec->id);
    if (mkdir(tmp, 0700) < 0)
        return err_sys(err, errno, "creating `%s`", tmp);
    cleanup_free char *lock = xasprintf("%s/lock", tmp);
    m->lock = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (m->lock < 0 || flock(m->lock, LOCK_EX) < 0)
        return err_sys(err, errno, "locking `%s`", lock);
    for (size_t i = 0; i < 3; i++) {
        cleanup_free char *p = xasprintf("%s/%s", tmp, sub[i]);
        if (mkdir(p, 0755) < 0)
            return err_sys(err, errno, "creating `%s`", p);
    }
    if (rename(tmp, m->dir) < 0)
        return err_sys(err, errno, "creating `%s`", m->dir);
    return 0;
}

static char *make_name(const char *id)
{
    static const char *const adj[] = {"brave", "calm",  "eager", "fancy", "gentle", "happy",
                                      "jolly", "keen",  "lucid", "merry", "nifty",  "proud",
                                      "quiet", "swift", "vivid", "witty"};
    static const char *const noun[] = {
        "babbage",  "curie",   "darwin", "euler",   "fermi",   "gauss",  "hopper", "kepler",
        "lovelace", "noether", "pascal", "ritchie", "shannon", "turing", "volta",  "wozniak"};
    unsigned a = (unsigned)strtoul((char[]){id[0], id[1], 0}, NULL, 16);
    return xasprintf("%s_%s_%.4s", adj[a & 15], noun[a >> 4], id + 2);
}

/* -P: a free host port (what the kernel gives a bind to port 0) for `proto` */
static int free_port(bool udp, struct imgfs_err *err)
{
    cleanup_close int fd = socket(AF_INET, (udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_ANY)};
    socklen_t len = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) < 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) < 0)
        return err_sys(err, errno, "-P: finding a free host port");
    return ntohs(a.sin_port);
}

/* The -p ports with a free host port where none was given, then with -P every port the image
 * EXPOSEs that -p does not publish already, on a free host port */
static char **publish_all(const struct ctr_spec *spec, struct imgfs_err *err)
{
    size_t n = strv_len(spec->publish), k = n;
    char *const *exposed = spec->config ? spec->config->exposed_ports : NULL;
    char **out = xcalloc(n + strv_len(exposed) + 1, sizeof *out);
    for (size_t i = 0; i < n; i++) {
        struct net_port p;
        if (net_parse_port(spec->publish[i], &p, err) < 0) {
            strv_free(out);
            return NULL;
        }
        int port = p.host_port ? 0 : free_port(p.udp, err);
        if (port < 0) {
            strv_free(out);
            return NULL;
        }
        out[i] = p.host_port ? xstrdup(spec->publish[i])
                             : xasprintf("%s%s%d:%u/%s", p.host_ip, p.host_ip[0] ? ":" : "", port,
                                         (unsigned)p.ctr_port, p.udp ? "udp" : "tcp");
    }
    for (size_t i = 0; spec->publish_all && exposed && exposed[i]; i++) {
        struct net_port want;
        cleanup_free char *as_spec = xasprintf("1:%s", exposed[i]);
        if (net_parse_port(as_spec, &want, err) < 0) {
            strv_free(out);
            return NULL;
        }
        bool given = false;
        for (size_t j = 0; j < n && !given; j++) {
            struct net_port p;
            struct imgfs_err ignored;
            given = net_parse_port(spec->publish[j], &p, &ignored) == 0 &&
                    p.ctr_port == want.ctr_port && p.udp == want.udp;
        }
        if (given)
            continue;
        int port = free_port(want.udp, err);
        if (port < 0) {
            strv_free(out);
            return NULL;
        }
        out[k++] = xasprintf("%d:%u/%s", port, (unsigned)want.ctr_port, want.udp ? "udp" : "tcp");
    }
    return out;
}

/* run = create + start (LAUNCH_RUN); create alone stops once the container is on disk; start
 * begins with an existing container whose lock the caller holds (`lock`), `prev` its state. */
enum launch { LAUNCH_RUN, LAUNCH_CREATE, LAUNCH_START };

static int ctr_launch(const struct ctr_spec *spec_in, enum launch how, int lock,
                      const struct ctr_state *prev, int *status, struct imgfs_err *err)
{
    struct ctr_spec spec = *spec_in;
    if (!spec.run_dir || !*spec.run_dir) /* every path below starts with it */
        return err_set(err, EINVAL, "no run directory given (the spec's run_dir is not set)");
    cleanup_free char *name = spec.name ? NULL : make_name(spec.id);
    if (!spec.name)
        spec.name = name;
    else if (!spec.hidden && how != LAUNCH_START && !ctr_name_valid(spec.name))
        return ctr_name_claim(spec.run_dir, spec.name, spec.id, err); /* says why */
    if ((spec.upper_dir != NULL) != (spec.work_dir != NULL))
        return err_set(err, EINVAL, "an upper directory needs a work directory, and back");
    if (spec.lowers && spec.read_only)
        return err_set(err, EINVAL, "extra lower layers need a writable rootfs");
    if (spec.restart != CTR_RESTART_NO && (spec.remove || spec.hidden))
        return err_set(err, EINVAL, "conflicting options: cannot specify both --restart and --rm");
    if (how == LAUNCH_CREATE && spec.hidden)
        return err_set(err, EINVAL, "a hidden container is run, not created");
    *status = 0;

    char **all_ports = NULL;
    /* -P, and -p without a host port: the free host ports are picked once, at create */
    if (how != LAUNCH_START && (spec.publish_all || strv_len(spec.publish)) &&
        !(all_ports = publish_all(&spec, err)))
        return -1;
    if (all_ports)
        spec.publish = all_ports;
    struct monitor m = {.spec = &spec,
                        .lock = -1,
                        .master = -1,
                        .notify = -1,
                        .keep = how == LAUNCH_START,
                        .pipes = {-1, -1},
                        .pipe_w = {-1, -1}};
    struct init_args a = {.spec = &spec, .sync = -1};
    cleanup_free char *lower = NULL, *etc = NULL, *upper = NULL, *work = NULL, *target = NULL;
    cleanup_free char *hostname = NULL, *log_path = NULL;
    cleanup_free char *cache = xasprintf("%s/seccomp", spec.run_dir);
    int r = -1;

    if (how == LAUNCH_START) {
        /* the container is there, its lock ours; what its last run left must not stay */
        m.lock = lock;
        m.dir = ctr_dir(spec.run_dir, spec.id);
        ctr_stopped_clear(spec.run_dir, spec.id);
        ctr_lost_clear(spec.run_dir, spec.id);
        cleanup_free char *old_work = xasprintf("%s/work", m.dir);
        if (ctr_remove_tree(old_work, err) < 0 || (mkdir(old_work, 0755) < 0 && errno != EEXIST)) {
            if (!err->msg[0])
                err_sys(err, errno, "creating `%s`", old_work);
            goto out;
        }
    } else if (prepare_dir(&m, err) < 0) {
        goto out;
    }
    /* claimed once our directory exists: a name whose holder's directory is gone is free */
    if (!spec.hidden && how != LAUNCH_START &&
        ctr_name_claim(spec.run_dir, spec.name, spec.id, err) < 0)
        goto out;
    /* Private networking starts now, beside the rest of the making (net.h). A detached run starts
     * it in its monitor, forked below: the helper is the monitor's child. */
    enum net_mode mode = NET_PRIVATE;
    unsigned net_flags = 0;
    if (spec.network && net_parse_mode(spec.network, &mode, &net_flags, err) < 0)
        goto out;
    if (how != LAUNCH_CREATE && !spec.detach &&
        net_prepare(mode, net_flags, m.dir, &m.net, err) < 0)
        goto out;
    if (spec.mount_key && how != LAUNCH_CREATE) {
        if (ctr_mount_acquire(spec.run_dir, spec.mount_key, spec.id, spec.do_mount, spec.mount_ctx,
                              &lower, err) < 0)
            goto out;
        m.mounted = true;
        spec.lower = lower;
    }
    if (!spec.hidden && ctr_volumes_populate(&spec, err) < 0)
        goto out;
    hostname = spec.hostname ? xstrdup(spec.hostname) : xasprintf("%.12s", spec.id);
    a.hostname = hostname;
    a.argv = user_command(spec.config, spec.entrypoint, spec.command, err);
    if (!a.argv)
        goto out;
    a.env = user_env(spec.config, spec.env, hostname, spec.tty);

    etc = write_etc_files(m.dir, &spec, hostname, mode, err);
    if (!etc)
        goto out;
    upper = spec.upper_dir ? xstrdup(spec.upper_dir) : xasprintf("%s/upper", m.dir);
    work = spec.work_dir ? xstrdup(spec.work_dir) : xasprintf("%s/work", m.dir);
    if (spec.lowers) {
        /* overlayfs takes "top:...:bottom"; its separators cannot be in a path here */
        struct buf b = {0};
        for (char **l = spec.lowers; *l; l++) {
            if (strpbrk(*l, ":,\\")) {
                err_set(err, EINVAL, "lower layer `%s`: a path with `:`, `,` or `\\`", *l);
                buf_free(&b);
                goto out;
            }
            buf_append(&b, *l, strlen(*l));
            buf_append(&b, ":", 1);
        }
        buf_append(&b, spec.lower, strlen(spec.lower) + 1);
        free(lower);
        lower = (char *)b.data;
        spec.lower = lower;
    }
    target = xasprintf("%s/rootfs", m.dir);
    a.rootfs = (struct ctr_rootfs){
        .lower = spec.lower,
        .upper = upper,
        .work = work,
        .target = target,
        .etc_dir = etc,
        .read_only = spec.read_only,
        .shm_bytes = spec.shm_bytes,
        .privileged = spec.privileged,
        .tty = spec.tty,
        .mounts = spec.mounts,
        .n_mounts = spec.n_mounts,
        .devices = spec.devices,
        .n_devices = spec.n_devices,
    };

    a.caps = spec.privileged ? caps_all() : caps_default();
    if (caps_adjust(&a.caps, spec.cap_add, spec.cap_drop, err) < 0)
        goto out;
    /* (security engineer) the state keeps what exec needs to get the filter run got: the effective
     * profile, a profile file by absolute path (exec runs from anywhere) */
    const char *profile = spec.privileged && !spec.seccomp ? "unconfined" : spec.seccomp;
    static char profile_abs[PATH_MAX];
    if (profile && strcmp(profile, "unconfined") && realpath(profile, profile_abs))
        profile = profile_abs;
    if (seccomp_prepare(profile, a.caps, cache, &a.seccomp, err) < 0)
        goto out;

    m.state = (struct ctr_state){
        .name = (char *)spec.name,
        .image = (char *)spec.image,
        .image_id = (char *)spec.image_id,
        .command = strv_join(a.argv, " "),
        .mount_key = (char *)spec.mount_key,
        .status = CTR_CREATED,
        .monitor_pid = getpid(),
        .remove = spec.remove,
        .tty = spec.tty,
        .env = a.env,
        .workdir = (char *)spec.workdir,
        .user = (char *)spec.user,
        .caps = a.caps,
        .seccomp = (char *)profile,
        .no_new_privileges = spec.no_new_privileges,
        .stop_signal = spec.stop_signal ? (char *)spec.stop_signal
                       : spec.config    ? spec.config->stop_signal
                                        : NULL,
        .stop_timeout = spec.has_stop_timeout ? spec.stop_timeout : -1,
        .restart = spec.restart,
        .restart_max = spec.restart_max,
    };
    if (prev) {
        m.state.created = prev->created;
        m.state.created_ns = prev->created_ns;
    } else {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        m.state.created = (int64_t)ts.tv_sec;
        m.state.created_ns = ts.tv_nsec;
    }
    memcpy(m.state.id, spec.id, sizeof m.state.id);
    if (!m.state.workdir && spec.config)
        m.state.workdir = spec.config->working_dir;
    if (!m.state.user && spec.config)
        m.state.user = spec.config->user;
    /* A run writes them after the clone, beside the init's mounts on the other CPU (~0.1 ms off
     * the start, docs/runner.md) — unless the container has volumes: config.json is what tells
     * `volume rm` that one is in use (volume.c), and it must say so before the init binds it. */
    m.config_pending = !spec.hidden && how == LAUNCH_RUN && spec.n_mounts == 0;
    if (!spec.hidden && how != LAUNCH_START && !m.config_pending &&
        (ctr_config_write(m.dir, &spec, a.argv, a.env, err) < 0 ||
         ctr_spec_save(m.dir, &spec, err) < 0))
        goto out;
    if (how == LAUNCH_CREATE) {
        /* created: on disk with its state, no monitor (the lock is free until a start takes it) */
        if (ctr_state_save(spec.run_dir, &m.state, err) < 0)
            goto out;
        r = 0;
        goto out;
    }

    log_path = xasprintf("%s/ctr.log", m.dir);
    if (!spec.hidden && ctr_log_open(log_path, &m.log, err) < 0)
        goto out;
    if (spec.detach) {
        int pipefd[2];
        if (pipe2(pipefd, O_CLOEXEC) < 0) {
            err_sys(err, errno, "pipe");
            goto out;
        }
        pid_t pid = fork();
        if (pid < 0) {
            err_sys(err, errno, "fork");
            close(pipefd[0]);
            close(pipefd[1]);
            goto out;
        }
        if (pid > 0) {
            /* `imgfs run -d`: wait until the monitor says the command runs (or why not) */
            close(pipefd[1]);
            char msg[sizeof err->msg];
            ssize_t n;
            do
                n = read(pipefd[0], msg, sizeof msg - 1);
            while (n < 0 && errno == EINTR);
            close(pipefd[0]);
            if (n > 0) {
                msg[n] = 0;
                err_set(err, EIO, "%s", msg);
                goto out_parent;
            }
            if (n < 0) {
                err_sys(err, errno, "waiting for the container to start");
                goto out_parent;
            }
            r = 0;
            goto out_parent;
        }
        /* the monitor: its own session, no terminal, nothing of the caller's stdio */
        m.detached = true;
        close(pipefd[0]);
        m.notify = pipefd[1];
        setsid();
        /* what the monitor itself has to say (sanitizers) goes to the log raw; `logs` shows such
         * lines on stderr */
        int null = open("/dev/null", O_RDWR | O_CLOEXEC);
        int raw = open(log_path, O_WRONLY | O_APPEND | O_CLOEXEC);
        if (null >= 0 && raw >= 0) {
            dup2(null, 0);
            dup2(null, 1);
            dup2(raw, 2);
        }
        if (null >= 0)
            close(null);
        if (raw >= 0)
            close(raw);
        m.state.monitor_pid = getpid();
        if (net_prepare(mode, net_flags, m.dir, &m.net, err) < 0)
            goto monitor_failed;
    }

    if (open_stdio(&m, a.stdio, err) < 0)
        goto monitor_failed;
    r = monitor_start(&m, &a, status, err);
    if (a.stdio[0] >= 0)
        close(a.stdio[0]);
    for (int i = 0; i < 2; i++)
        if (m.pipe_w[i] >= 0)
            close(m.pipe_w[i]);
    for (int i = 0; i < 2; i++)
        if (m.pipes[i] >= 0)
            close(m.pipes[i]);
    if (r < 0)
        goto monitor_failed;
    if (m.detached)
        _exit(0);
    goto out;

monitor_failed:
    if (m.keep) { /* start: the container stays, exited, with why it did not start */
        free(m.state.error);
        m.state.error = xstrdup(err->msg);
    }
    monitor_finish(&m, CTR_EXIT_FAILED, true);
    if (m.detached) {
        notify_parent(&m, err->msg);
        _exit(CTR_EXIT_FAILED);
    }
    r = -1;
    goto out;

out_parent:
    /* the monitor owns the container from here on: drop our copy of the lock without touching it */
    close(m.lock);
    m.lock = -1;
    goto release;

out:
    if (r < 0 && m.dir && !m.finished && how != LAUNCH_START)
        monitor_finish(&m, CTR_EXIT_FAILED, true); /* never started: leave nothing behind */
    net_detach(m.net); /* a start that failed before its monitor ran: its network, prepared */
    m.net = NULL;
    if (m.lock >= 0)
        close(m.lock);
release:
    strv_free(all_ports);
    free(m.state.command);
    free(m.state.error);
    strv_free(a.argv);
    strv_free(a.env);
    seccomp_free(a.seccomp);
    ctr_log_close(m.log);
    free(m.dir);
    return r;
}

int ctr_run(const struct ctr_spec *spec, int *status, struct imgfs_err *err)
{
    return ctr_launch(spec, LAUNCH_RUN, -1, NULL, status, err);
}

int ctr_create(const struct ctr_spec *spec, struct imgfs_err *err)
{
    int status;
    return ctr_launch(spec, LAUNCH_CREATE, -1, NULL, &status, err);
}

int ctr_start(const char *run_dir, const struct ctr_state *s, const struct ctr_start_options *o,
              int *status, struct imgfs_err *err)
{
    *status = -1;
    cleanup_free char *path = xasprintf("%s/containers/%s/lock", run_dir, s->id);
    int lock = open(path, O_RDWR | O_CLOEXEC);
    if (lock < 0)
        return err_sys(err, errno, "container %.12s: opening `%s`", s->id, path);
    if (flock(lock, LOCK_EX | LOCK_NB) < 0) {
        close(lock);
        if (errno == EWOULDBLOCK)
            return 0; /* running (or restarting): Docker's start of it succeeds */
        return err_sys(err, errno, "locking `%s`", path);
    }
    struct ctr_saved_spec saved;
    cleanup_free char *dir = ctr_dir(run_dir, s->id);
    if (ctr_spec_load(dir, &saved, err) < 0) {
        close(lock);
        return -1;
    }
    struct ctr_spec spec = saved.spec;
    memcpy(spec.id, s->id, sizeof spec.id);
    spec.name = s->name;
    spec.run_dir = run_dir;
    spec.detach = !o->attach;
    spec.interactive = o->attach && o->interactive;
    struct ctr_image *ci = NULL;
    int r = -1;
    if (spec.mount_key) {
        cleanup_free char *ref = xasprintf("sha256:%s", spec.mount_key);
        if (ctr_image_open(o->store_root, ref, &ci, err) < 0) {
            err_ctx(err, "container %.12s: its image %s", s->id, spec.image ? spec.image : ref);
            close(lock);
            goto out;
        }
        const char *image = spec.image;
        ctr_image_spec(ci, &spec);
        spec.image = image;
    }
    /* ctr_launch owns the lock from here: it closes it, or the monitor keeps it */
    r = ctr_launch(&spec, LAUNCH_START, lock, s, status, err);
out:
    ctr_image_free(ci);
    ctr_saved_spec_free(&saved);
    return r;
}

int ctr_restart(const char *run_dir, const struct ctr_state *s, int timeout,
                const struct ctr_start_options *o, struct imgfs_err *err)
{
    if (ctr_stop(run_dir, s, timeout, err) < 0)
        return -1;
    struct ctr_start_options detached = *o;
    detached.attach = false;
    int status;
    return ctr_start(run_dir, s, &detached, &status, err);
}
