/* exec.c — a new process in a running container: every namespace of its init, its cgroups, and
 * the same user, capabilities and seccomp filter the container's command got. */
#include "ctr_internal.h"
#include "seccomp.h"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>

/* Open, in every hierarchy the init is in, the file through which the exec helper moves itself
 * into the container's cgroup: `tasks` on v1 (one per controller line), where a thread writing "0"
 * moves itself without the kernel's global threadgroup lock, whose first writer after a quiet spell
 * waits for an RCU grace period (6-15 ms here; runner/cgroup.h); cgroup.procs on v2 ("0::").
 * Opened before we enter the container's mount namespace, where /sys/fs/cgroup is not the host's.
 */
static int open_cgroup_procs(pid_t pid, int *fds, size_t max, size_t *n, struct imgfs_err *err)
{
    *n = 0;
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/cgroup", (int)pid);
    struct buf b = {0};
    if (read_file(path, 1 << 20, &b, err) < 0)
        return -1;
    buf_append(&b, "", 1);
    char *save = NULL;
    for (char *line = strtok_r((char *)b.data, "\n", &save); line && *n < max;
         line = strtok_r(NULL, "\n", &save)) {
        char *c1 = strchr(line, ':');
        char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (!c2)
            continue;
        *c2 = 0;
        const char *ctrl = c1 + 1, *cg = c2 + 1;
        if (!strcmp(cg, "/"))
            continue; /* the root group: nothing to join */
        cleanup_free char *procs = NULL;
        if (!*ctrl)
            procs = xasprintf("/sys/fs/cgroup%s/cgroup.procs", cg);
        else {
            /* "name=systemd" is mounted as "systemd"; "cpu,cpuacct" may be a joint mount */
            const char *dir = !strncmp(ctrl, "name=", 5) ? ctrl + 5 : ctrl;
            procs = xasprintf("/sys/fs/cgroup/%s%s/tasks", dir, cg);
        }
        int fd = open(procs, O_WRONLY | O_CLOEXEC);
        if (fd >= 0)
            fds[(*n)++] = fd;
    }
    buf_free(&b);
    return 0;
}

/* Join every namespace of the container but its pid namespace, whose descriptor goes to *pid_ns:
 * the process that sets the command up must stay invisible to the container until it is confined
 * (see ctr_exec). */
static int join_namespaces(pid_t pid, int *pid_ns, struct imgfs_err *err)
{
    /* mnt last: after it, /proc is the container's */
    static const char *const names[] = {"cgroup", "ipc", "uts", "net", "pid", "mnt"};
    int fds[6];
    for (size_t i = 0; i < 6; i++) {
        char path[64];
        snprintf(path, sizeof path, "/proc/%d/ns/%s", (int)pid, names[i]);
        fds[i] = open(path, O_RDONLY | O_CLOEXEC);
        if (fds[i] < 0) {
            int e = errno;
            while (i--)
                close(fds[i]);
            return err_sys(err, e, "opening `%s`", path);
        }
    }
    int r = 0;
    for (size_t i = 0; i < 6; i++) {
        if (!strcmp(names[i], "pid")) {
            *pid_ns = fds[i];
            continue;
        }
        /* joining a namespace we are already in is harmless (host cgroup ns on v1) */
        if (r == 0 && setns(fds[i], 0) < 0)
            r = err_sys(err, errno, "joining the container's %s namespace", names[i]);
        close(fds[i]);
    }
    return r;
}

int ctr_exec(const char *run_dir, const struct ctr_state *s, const struct ctr_exec_spec *e,
             int *status, struct imgfs_err *err)
{
    if (s->status != CTR_RUNNING || !ctr_is_live(run_dir, s->id) || s->init_pid <= 0)
        return err_set(err, ESRCH, "Container %s is not running", s->id);
    if (!e->argv || !e->argv[0])
        return err_set(err, EINVAL, "no command given");

    struct ctr_seccomp *seccomp = NULL;
    cleanup_free char *cache = xasprintf("%s/seccomp", run_dir);
    if (seccomp_prepare(s->seccomp, s->caps, cache, &seccomp, err) < 0)
        return -1;

    int cg[16];
    size_t n_cg = 0;
    int r = -1, master = -1, tty_slave = -1, root = -1, workdir = -1, sync[2] = {-1, -1};
    char **env = strv_dup(s->env);
    pid_t child = -1;
    int ctr_pid_ns = -1, own_mnt_ns = -1;
    if (!env)
        env = xcalloc(1, sizeof *env);
    if (open_cgroup_procs(s->init_pid, cg, 16, &n_cg, err) < 0)
        goto out;
    /* (security engineer) to go back to our own mount namespace after the fork */
    own_mnt_ns = open("/proc/self/ns/mnt", O_RDONLY | O_CLOEXEC);
    if (join_namespaces(s->init_pid, &ctr_pid_ns, err) < 0)
        goto out;

    /* from here our root is the container's */
    root = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (root < 0) {
        err_sys(err, errno, "opening the container's root");
        goto out;
    }
    struct ctr_proc proc = {.caps = s->caps,
                            .seccomp = seccomp,
                            .no_new_privileges = s->no_new_privileges,
                            .workdir = -1,
                            .tty_slave = -1};
    const char *user = e->user ? e->user : s->user;
    if (user_resolve(root, user, &proc.user, err) < 0)
        goto out;
    for (size_t i = 0; e->env && e->env[i]; i++) {
        if (strchr(e->env[i], '=')) {
            size_t k = strcspn(e->env[i], "=");
            size_t j = 0;
            for (; env[j]; j++)
                if (!strncmp(env[j], e->env[i], k) && env[j][k] == '=')
                    break;
            if (env[j]) {
                free(env[j]);
                env[j] = xstrdup(e->env[i]);
            } else {
                env = strv_append(env, e->env[i]);
            }
        } else if (getenv(e->env[i])) {
            cleanup_free char *kv = xasprintf("%s=%s", e->env[i], getenv(e->env[i]));
            env = strv_append(env, kv);
        }
    }
    user_env_home(&env, proc.user.home);
    const char *wd = e->workdir ? e->workdir : s->workdir && *s->workdir ? s->workdir : "/";
    workdir = rootfs_open(root, wd, O_PATH | O_DIRECTORY, 0, err);
    if (workdir < 0) {
        err_ctx(err, "working directory");
        goto out;
    }
    if (e->tty) {
        master = rootfs_open(root, "/dev/pts/ptmx", O_RDWR | O_NOCTTY, 0, err);
        int unlock = 0;
        if (master < 0 || ioctl(master, TIOCSPTLCK, &unlock) < 0 ||
            (tty_slave = ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC)) < 0) {
            if (master >= 0)
                err_sys(err, errno, "allocating a pty in the container");
            goto out;
        }
    }
    if (pipe2(sync, O_CLOEXEC) < 0) {
        err_sys(err, errno, "pipe");
        goto out;
    }
    proc.argv = e->argv;
    proc.env = env;
    proc.workdir = workdir;
    proc.tty_slave = tty_slave;

    sigset_t set, old;
    sigemptyset(&set);
    int fwd[] = {SIGCHLD, SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH};
    for (size_t i = 0; i < sizeof fwd / sizeof fwd[0]; i++) {
        sigaddset(&set, fwd[i]);
        signal(fwd[i], SIG_DFL); /* see monitor_start: ignored signals never reach a signalfd */
    }
    sigprocmask(SIG_BLOCK, &set, &old);
    /* Until its execve the process is an image of imgfs (/proc/PID/exe) holding every capability.
     * A container with --cap-add SYS_PTRACE could attach to it (non-dumpable or not) the moment it
     * appears in its pid namespace and use those capabilities. So the child (C1) stays in OUR pid
     * namespace, where the container cannot see it: it waits until it is in the container's
     * cgroups, confines itself exactly as the command will be (user, capabilities, seccomp), and
     * only then forks the command's process (C2) into the container's pid namespace. C1 passes
     * signals on to C2 and exits with its status, as an exec'd process would. */
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    child = fork();
    if (child == 0) {
        close(sync[1]);
        char c;
        /* wait until our parent is back in its own mount namespace, then move into the
         * container's cgroups (ourselves: see open_cgroup_procs) */
        if (read(sync[0], &c, 1) != 1)
            _exit(CTR_EXIT_FAILED);
        close(sync[0]);
        for (size_t i = 0; i < n_cg; i++)
            (void)!write(cg[i], "0", 1);
        /* (security engineer) descriptors `imgfs exec` inherited from its caller must not reach the
         * container (a directory fd would be a way out of the root); CLOEXEC, not close, because
         * ctr_proc_exec still uses its own until execve. tests/integration/60_security_default.sh
         */
        close_range(3, ~0U, CLOSE_RANGE_CLOEXEC);
        if (!e->interactive && !e->tty) {
            int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
            if (null >= 0)
                dup2(null, 0);
        }
        struct imgfs_err ce = {0};
        sigset_t all;
        sigfillset(&all);
        sigprocmask(SIG_BLOCK, &all, NULL);
        if (setns(ctr_pid_ns, CLONE_NEWPID) < 0) {
            err_sys(&ce, errno, "joining the container's pid namespace");
            ctr_proc_fail(CTR_EXIT_FAILED, &ce);
        }
        if (ctr_proc_setup(&proc, NULL, &ce) < 0)
            ctr_proc_fail(CTR_EXIT_FAILED, &ce);
        pid_t cmd = fork();
        if (cmd < 0) {
            err_sys(&ce, errno, "fork");
            ctr_proc_fail(CTR_EXIT_FAILED, &ce);
        }
        if (cmd == 0) {
            sigprocmask(SIG_SETMASK, &old, NULL);
            ctr_proc_execve(&proc);
        }
        /* what imgfs exec passes on (kill); the terminal's own signals reach the command's
         * process group without us */
        ctr_relay_until_exit(cmd, &all, true);
    }
    if (child < 0) {
        sigprocmask(SIG_SETMASK, &old, NULL);
        err_sys(err, errno, "fork");
        goto out;
    }
    /* Only the command belongs in the container: from here we just relay its I/O with descriptors
     * we hold. Back in our own mount namespace, what we fork later is ours and /proc shows us —
     * the ASan build's leak checker forks a tracer at exit that reads /proc/PID/task and ptraces
     * our threads; inside the container's mount namespace it hangs or dies. */
    if (own_mnt_ns >= 0 && setns(own_mnt_ns, CLONE_NEWNS) < 0) {
        err_sys(err, errno, "returning to our own namespaces");
        goto out;
    }
    close(sync[0]);
    sync[0] = -1;
    (void)!write(sync[1], "g", 1);
    close(sync[1]);
    sync[1] = -1;
    if (tty_slave >= 0) {
        close(tty_slave);
        tty_slave = -1;
    }

    int sigfd = signalfd(-1, &set, SFD_CLOEXEC);
    struct termios saved;
    bool raw = master >= 0 && isatty(0) && pty_raw_begin(0, &saved, sizeof saved) == 0;
    int st = pty_relay(master, child, sigfd, master >= 0 && e->interactive ? 0 : -1, 1);
    master = -1; /* closed by pty_relay */
    if (raw)
        pty_raw_end(0, &saved);
    close(sigfd);
    sigprocmask(SIG_SETMASK, &old, NULL);
    *status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    r = 0;
out:
    if (ctr_pid_ns >= 0)
        close(ctr_pid_ns);
    if (own_mnt_ns >= 0)
        close(own_mnt_ns);
    for (size_t i = 0; i < n_cg; i++)
        close(cg[i]);
    for (int i = 0; i < 2; i++)
        if (sync[i] >= 0)
            close(sync[i]);
    if (master >= 0)
        close(master);
    if (tty_slave >= 0)
        close(tty_slave);
    if (root >= 0)
        close(root);
    if (workdir >= 0)
        close(workdir);
    strv_free(env);
    seccomp_free(seccomp);
    return r;
}
