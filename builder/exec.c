/* exec.c — a build step's command in a container: the parent image mounted (shared FUSE mount,
 * as `run`), an overlay over it, the runner's isolation, output to a pipe. Build containers live
 * under RUN_DIR/build, so `imgfs ps` never shows them; each is removed once its upper directory
 * became a layer. */
#include "../fs/mount.h"
#include "../runner/runner.h"
#include "builder.h"
#include "internal.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

struct mount_ctx {
    const char *root;
    const char *ref;
};

/* The FUSE daemon must hold none of our descriptors (a pipe end kept open would never see EOF). */
static int mount_in_child(const char *dir, void *p, struct imgfs_err *err)
{
    struct mount_ctx *ctx = p;
    int pipefd[2];
    if (pipe2(pipefd, O_CLOEXEC) < 0)
        return err_sys(err, errno, "pipe");
    pid_t pid = fork();
    if (pid < 0)
        return err_sys(err, errno, "fork");
    if (pid == 0) {
        if (dup3(pipefd[1], 3, 0) < 0)
            _exit(1);
        close_range(4, ~0U, 0);
        fcntl(3, F_SETFD, FD_CLOEXEC);
        struct mount_options o = {.allow_other = true};
        struct imgfs_err e = {0};
        if (mount_image(ctx->root, ctx->ref, dir, &o, &e) < 0) {
            (void)!write(3, e.msg, strlen(e.msg));
            _exit(1);
        }
        _exit(0);
    }
    close(pipefd[1]);
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    char msg[sizeof err->msg];
    fcntl(pipefd[0], F_SETFL, O_NONBLOCK);
    ssize_t n = read(pipefd[0], msg, sizeof msg - 1);
    close(pipefd[0]);
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
        return 0;
    msg[n > 0 ? n : 0] = 0;
    return err_set(err, EIO, "%s", n > 0 ? msg : "the mount helper failed");
}

char *build_run_dir(const struct build *b)
{
    return xasprintf("%s/build", b->o->run_dir);
}

int build_exec(struct build *b, struct build_exec *ex, int *status, struct imgfs_err *err)
{
    cleanup_free char *run_dir = build_run_dir(b);
    if (mkdir_p(run_dir, 0700, err) < 0)
        return -1;
    char ref[DIGEST_STR_SIZE], hex[DIGEST_HEX_LEN + 1];
    digest_str(ex->image, ref);
    digest_hex(ex->image, hex);
    ctr_new_id(ex->id);
    struct mount_ctx mctx = {.root = b->o->root, .ref = ref};
    struct ctr_spec spec = {
        .image = ref,
        .image_id = ref,
        .mount_key = hex,
        .do_mount = mount_in_child,
        .mount_ctx = &mctx,
        .command = ex->argv,
        .env = ex->env,
        .workdir = ex->workdir,
        .user = ex->user,
        .mounts = (struct ctr_mount *)ex->mounts,
        .n_mounts = ex->n_mounts,
        .network = ex->network,
        .run_dir = run_dir,
    };
    memcpy(spec.id, ex->id, sizeof spec.id);
    /* the runner gives the container our stdio: a child with a pipe as stdout and stderr, read
     * here (no thread: a fork with threads running can leave the child on a lock they held) */
    int epipe[2], opipe[2];
    if (pipe2(epipe, O_CLOEXEC) < 0)
        return err_sys(err, errno, "pipe");
    if (pipe2(opipe, O_CLOEXEC) < 0) {
        close(epipe[0]);
        close(epipe[1]);
        return err_sys(err, errno, "pipe");
    }
    pid_t pid = fork();
    if (pid < 0) {
        close(epipe[0]);
        close(epipe[1]);
        close(opipe[0]);
        close(opipe[1]);
        return err_sys(err, errno, "fork");
    }
    if (pid == 0) {
        close(epipe[0]);
        close(opipe[0]);
        int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (null < 0 || dup2(null, 0) < 0 || dup2(opipe[1], 1) < 0 || dup2(opipe[1], 2) < 0)
            _exit(CTR_EXIT_FAILED);
        /* a Ctrl-C reaches the container through our process group; the runner's init forwards */
        signal(SIGINT, SIG_DFL);
        struct imgfs_err e = {0};
        int st = 0;
        if (ctr_run(&spec, &st, &e) < 0) {
            (void)!write(epipe[1], e.msg, strlen(e.msg));
            _exit(CTR_EXIT_FAILED);
        }
        _exit(st & 0xff);
    }
    close(epipe[1]);
    close(opipe[1]);
    ex->pid = pid;
    char buf[8192];
    for (;;) {
        ssize_t n = read(opipe[0], buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        if (ex->output)
            ex->output(ex->output_ctx, buf, (size_t)n);
    }
    close(opipe[0]);
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
        build_exec_release(b, ex);
        return err_set(err, EIO, "%s", msg);
    }
    *status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    char *upper = ctr_upper_path(run_dir, ex->id);
    snprintf(ex->upper, sizeof ex->upper, "%s", upper);
    free(upper);
    return 0;
}

void build_exec_release(struct build *b, struct build_exec *ex)
{
    if (!ex->id[0])
        return;
    cleanup_free char *run_dir = build_run_dir(b);
    struct ctr_state s;
    struct imgfs_err e;
    if (ctr_find(run_dir, ex->id, &s, &e) == 0) {
        ctr_remove(run_dir, &s, true, &e);
        ctr_state_free(&s);
    }
    ex->id[0] = 0;
}
