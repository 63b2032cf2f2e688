/* exec.c — a build step's command in a container: the parent image mounted (the runner's shared
 * mount, ctr_image_*), an overlay over it whose upper directory we keep, the runner's isolation,
 * output to a pipe. The container is hidden (never in `imgfs ps`, no state file) and gone when
 * ctr_run returns; the upper directory is removed by build_exec_release once it is a layer. */
#include "../runner/runner.h"
#include "builder.h"
#include "internal.h"

#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/wait.h>

/* The container runs in a child: ctr_run takes signals through a signalfd in its thread and forks
 * itself, and our process has the store open (LMDB must not cross a fork into code that might use
 * it). The child's output goes to a pipe read here, in the parent's one thread. */
static void child(struct build *b, struct build_exec *ex, const char *upper, const char *work,
                  int out_fd, int err_fd)
{
    char ref[DIGEST_STR_SIZE];
    digest_str(ex->image, ref);
    struct imgfs_err e = {0};
    struct ctr_image *ci = NULL;
    if (ctr_image_open(b->o->root, ref, &ci, &e) < 0) {
        (void)!write(err_fd, e.msg, strlen(e.msg));
        _exit(CTR_EXIT_FAILED);
    }
    struct ctr_spec spec = {
        .image = ref,
        .command = ex->argv,
        .env = ex->env,
        .workdir = ex->workdir,
        .user = ex->user,
        .mounts = (struct ctr_mount *)ex->mounts,
        .n_mounts = ex->n_mounts,
        .network = ex->network,
        .run_dir = b->o->run_dir,
        .hidden = true,
        .upper_dir = upper,
        .work_dir = work,
        .redirect_output = true,
        .stdout_fd = out_fd,
        .stderr_fd = out_fd,
    };
    ctr_image_spec(ci, &spec);
    /* the image's config must not add its Cmd or Entrypoint: RUN's words are the command */
    spec.config = NULL;
    memcpy(spec.id, ex->id, sizeof spec.id);
    int st = 0;
    if (ctr_run(&spec, &st, &e) < 0) {
        (void)!write(err_fd, e.msg, strlen(e.msg));
        _exit(CTR_EXIT_FAILED);
    }
    ctr_image_free(ci);
    _exit(st & 0xff);
}

/* Close every descriptor from 3 up but a and b. */
static void keep_only(int a, int b)
{
    int lo = a < b ? a : b, hi = a < b ? b : a;
    if (lo > 3)
        close_range(3, (unsigned)lo - 1, 0);
    if (hi > lo + 1)
        close_range((unsigned)lo + 1, (unsigned)hi - 1, 0);
    close_range((unsigned)hi + 1, ~0U, 0);
}

int build_exec(struct build *b, struct build_exec *ex, int *status, struct imgfs_err *err)
{
    char tmpl[PATH_MAX];
    snprintf(tmpl, sizeof tmpl, "%s/tmp/build-step.XXXXXX", b->o->root);
    if (!mkdtemp(tmpl))
        return err_sys(err, errno, "making a directory under `%s/tmp`", b->o->root);
    snprintf(ex->dir, sizeof ex->dir, "%s", tmpl);
    snprintf(ex->upper, sizeof ex->upper, "%s/upper", tmpl);
    cleanup_free char *work = xasprintf("%s/work", tmpl);
    cleanup_free char *lock = xasprintf("%s/lock", tmpl);
    if (mkdir(ex->upper, 0755) < 0 || mkdir(work, 0700) < 0)
        return err_sys(err, errno, "making the overlay directories in `%s`", tmpl);
    /* held while the step runs: build_exec_sweep removes only directories nobody holds */
    ex->lock_fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (ex->lock_fd < 0 || flock(ex->lock_fd, LOCK_EX) < 0)
        return err_sys(err, errno, "locking `%s`", lock);
    ctr_new_id(ex->id);

    int epipe[2], opipe[2];
    if (pipe2(epipe, O_CLOEXEC) < 0)
        return err_sys(err, errno, "pipe");
    if (pipe2(opipe, O_CLOEXEC) < 0) {
        close(epipe[0]);
        close(epipe[1]);
        return err_sys(err, errno, "pipe");
    }
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        close(epipe[0]);
        close(epipe[1]);
        close(opipe[0]);
        close(opipe[1]);
        return err_sys(err, errno, "fork");
    }
    if (pid == 0) {
        /* the monitor dies with the build (a SIGKILL of imgfs build), and the container's init
         * with its monitor (the runner's rule): nothing runs on after the build is gone */
        prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
        if (getppid() != parent)
            _exit(CTR_EXIT_FAILED);
        close(epipe[0]);
        close(opipe[0]);
        /* nothing of ours but the two pipes: another stage's thread may have its step's pipes
         * open right now, and a copy held here would keep that step's reader from ever seeing
         * the end of its output */
        keep_only(opipe[1], epipe[1]);
        /* Ctrl-C reaches the container's command through ctr_run, which passes it on (the
         * build's worker threads block it: the build's main thread handles it) */
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        sigset_t unblock;
        sigemptyset(&unblock);
        sigaddset(&unblock, SIGINT);
        sigaddset(&unblock, SIGTERM);
        sigprocmask(SIG_UNBLOCK, &unblock, NULL);
        child(b, ex, ex->upper, work, opipe[1], epipe[1]);
    }
    close(epipe[1]);
    close(opipe[1]);
    ex->pid = pid;
    /* a stop of the build (Ctrl-C in its main thread, another stage failing) kills it */
    build_monitor_add(b, pid);
    char buf[8192];
    for (;;) {
        ssize_t n = read(opipe[0], buf, sizeof buf);
        if (n < 0 && errno == EINTR) {
            /* Ctrl-C: the monitor goes, its container's init with it (PDEATHSIG), and the
             * namespace's every process with the init; the pipe then ends */
            if (b->o->interrupted && *b->o->interrupted)
                kill(pid, SIGKILL);
            continue;
        }
        if (n <= 0)
            break;
        if (ex->output)
            ex->output(ex->output_ctx, buf, (size_t)n);
    }
    close(opipe[0]);
    build_monitor_remove(b, pid); /* before it is reaped: its pid is never reused under a kill */
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR) {
            close(epipe[0]);
            return err_sys(err, errno, "waiting for the build container");
        }
    ex->pid = 0;
    char msg[sizeof err->msg];
    ssize_t n = read(epipe[0], msg, sizeof msg - 1);
    close(epipe[0]);
    if (n > 0) {
        msg[n] = 0;
        return err_set(err, EIO, "%s", msg);
    }
    *status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    return 0;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    if (flag == FTW_DP)
        rmdir(path);
    else
        unlink(path);
    return 0;
}

void build_exec_release(struct build *b, struct build_exec *ex)
{
    (void)b;
    if (!ex->dir[0])
        return;
    /* our own directory: the overlay is gone with the container's mount namespace */
    nftw(ex->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
    ex->dir[0] = 0;
    if (ex->lock_fd >= 0)
        close(ex->lock_fd);
    ex->lock_fd = -1;
}

void build_exec_sweep(const char *root)
{
    cleanup_free char *tmp = xasprintf("%s/tmp", root);
    DIR *d = opendir(tmp);
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (strncmp(de->d_name, "build-step.", 11))
            continue;
        cleanup_free char *dir = xasprintf("%s/%s", tmp, de->d_name);
        cleanup_free char *lock = xasprintf("%s/lock", dir);
        int fd = open(lock, O_RDWR | O_CLOEXEC);
        /* a build killed before or during its step: nobody holds the lock any more */
        if (fd < 0 || flock(fd, LOCK_EX | LOCK_NB) == 0)
            nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
        if (fd >= 0)
            close(fd);
    }
    closedir(d);
}
