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
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>

/* The container's monitor is a fresh process: `imgfs __build-step` exec'ed right after the fork
 * (build_exec_main). The build has threads (parallel stages) and the store open; a forked copy
 * that went on running our code could block forever on a lock another thread held at the fork
 * (OpenSSL's, the allocator's, LMDB's), and must not touch the store. Between fork and exec the
 * child makes only async-signal-safe calls. The step's parameters go in a memfd, as JSON. */

static json_t *strv_json(char *const *v)
{
    json_t *a = json_array();
    for (size_t i = 0; v && v[i]; i++)
        json_array_append_new(a, json_string(v[i]));
    return a;
}

static char **json_strv(json_t *a)
{
    char **v = xcalloc(json_array_size(a) + 1, sizeof *v);
    for (size_t i = 0; i < json_array_size(a); i++) {
        const char *s = json_string_value(json_array_get(a, i));
        v[i] = xstrdup(s ? s : "");
    }
    return v;
}

/* The build's holder of image's shared mount, made at the first RUN on it. The step's monitor
 * counts it as a user of the mount (ctr_image_hold), so the mount and its FUSE daemon stay from
 * that RUN to the build's end: every later RUN (and stage) on the image reads through the same
 * mount and its page cache instead of a new daemon's cold one. Only files are made here (a
 * threaded process must not fork into library code): the monitor mounts. */
static int build_hold(struct build *b, const struct digest *image, char *id, size_t size,
                      struct imgfs_err *err)
{
    int rc = 0;
    pthread_mutex_lock(&b->mu);
    struct build_hold *h = NULL;
    for (size_t i = 0; i < b->n_holds && !h; i++)
        if (digest_equal(&b->holds[i].image, image))
            h = &b->holds[i];
    if (!h) {
        char key[DIGEST_HEX_LEN + 1];
        digest_hex(image, key);
        struct ctr_mount_holder *mh;
        rc = ctr_mount_holder_new(b->o->run_dir, key, &mh, err);
        if (rc == 0) {
            b->holds = xrealloc(b->holds, (b->n_holds + 1) * sizeof *b->holds);
            h = &b->holds[b->n_holds++];
            *h = (struct build_hold){.image = *image, .holder = mh};
        }
    }
    if (h)
        snprintf(id, size, "%s", ctr_mount_holder_id(h->holder));
    pthread_mutex_unlock(&b->mu);
    return rc;
}

void build_holds_release(struct build *b)
{
    for (size_t i = 0; i < b->n_holds; i++) {
        struct imgfs_err ignored; /* best effort: a mount left behind is found dead later */
        ctr_mount_holder_free(b->holds[i].holder, &ignored);
    }
    free(b->holds);
    b->holds = NULL;
    b->n_holds = 0;
}

static int spec_fd(struct build *b, struct build_exec *ex, const char *work, struct imgfs_err *err)
{
    char ref[DIGEST_STR_SIZE], hold[65];
    digest_str(ex->image, ref);
    if (build_hold(b, ex->image, hold, sizeof hold, err) < 0)
        return -1;
    json_t *mounts = json_array();
    for (size_t i = 0; i < ex->n_mounts; i++) {
        const struct build_mount *m = &ex->mounts[i];
        json_array_append_new(
            mounts, json_pack("{s:s?, s:s, s:b, s:b, s:s?, s:s?, s:b, s:s?, s:s?}", "source",
                              m->source, "target", m->target, "readonly", m->readonly, "tmpfs",
                              m->tmpfs, "options", m->options, "image", m->image, "copy", m->copy,
                              "seed_image", m->seed_image, "seed_path", m->seed_path));
    }
    json_t *j =
        json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:o, s:o, s:s, s:s?, s:s, s:o, s:o}", "root",
                  b->o->root, "run_dir", b->o->run_dir, "image", ref, "hold", hold, "id", ex->id,
                  "upper", ex->upper, "work", work, "argv", strv_json(ex->argv), "env",
                  strv_json(ex->env), "workdir", ex->workdir, "user", ex->user, "network",
                  ex->network, "mounts", mounts, "lowers", strv_json(ex->lowers));
    if (!j)
        return err_set(err, EINVAL, "the build step's spec: a string that is not UTF-8");
    cleanup_free char *text = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    int fd = memfd_create("imgfs-build-step", MFD_CLOEXEC);
    if (fd < 0)
        return err_sys(err, errno, "memfd_create");
    if (write_full(fd, text, strlen(text)) < 0 || lseek(fd, 0, SEEK_SET) < 0) {
        int e = errno;
        close(fd);
        return err_sys(err, e, "writing the build step's spec");
    }
    return fd;
}

/* The tree of stored image `ref` as a directory: mounted for the step (released when the
 * monitor ends). */
static int image_dir(const char *root, const char *run_dir, const char *ref,
                     struct ctr_image **images, size_t *n_images, const char **dir,
                     struct imgfs_err *err)
{
    struct ctr_image *ci;
    if (ctr_image_open(root, ref, &ci, err) < 0)
        return -1;
    images[(*n_images)++] = ci;
    return ctr_image_acquire(run_dir, ci, dir, err);
}

/* A mount's source from its image, its copy, its cache seed (build_mount). */
static int mount_prepare(const char *root, const char *run_dir, const char *upper, size_t index,
                         json_t *m, struct ctr_mount *cm, struct ctr_image **images,
                         size_t *n_images, struct imgfs_err *err)
{
    const char *image = json_string_value(json_object_get(m, "image"));
    const char *seed_image = json_string_value(json_object_get(m, "seed_image"));
    if (image) {
        const char *dir;
        if (image_dir(root, run_dir, image, images, n_images, &dir, err) < 0)
            return -1;
        char *src = *cm->source ? xasprintf("%s/%s", dir, cm->source) : xstrdup(dir);
        free(cm->source);
        cm->source = src;
    }
    if (seed_image) {
        const char *dir, *path = json_string_value(json_object_get(m, "seed_path"));
        if (image_dir(root, run_dir, seed_image, images, n_images, &dir, err) < 0)
            return -1;
        cleanup_free char *from =
            path && *path ? xasprintf("%s/%s/.", dir, path) : xasprintf("%s/.", dir);
        if (ctr_copy_tree(from, cm->source, err) < 0)
            return err_ctx(err, "seeding the cache mount `%s`", cm->target);
    }
    if (json_is_true(json_object_get(m, "copy"))) {
        /* beside the step's upper directory: removed with it (build_exec_release) */
        char *copy = xasprintf("%s/../mount-%zu", upper, index);
        struct stat st;
        if (stat(cm->source, &st) < 0)
            return err_sys(err, errno, "--mount source `%s`", cm->source);
        if (S_ISDIR(st.st_mode) && mkdir(copy, st.st_mode & 07777) < 0) {
            err_sys(err, errno, "making `%s`", copy);
            free(copy);
            return -1;
        }
        cleanup_free char *from =
            S_ISDIR(st.st_mode) ? xasprintf("%s/.", cm->source) : xstrdup(cm->source);
        if (ctr_copy_tree(from, copy, err) < 0) {
            free(copy);
            return err_ctx(err, "copying the rw mount `%s`", cm->target);
        }
        free(cm->source);
        cm->source = copy;
        cm->readonly = false;
    }
    return 0;
}

int build_exec_main(int argc, char **argv)
{
    if (argc != 5)
        return CTR_EXIT_FAILED;
    int in = atoi(argv[2]), out_fd = atoi(argv[3]), err_fd = atoi(argv[4]);
    struct imgfs_err e = {0};
    struct buf text = {0};
    char chunk[65536];
    ssize_t n;
    while ((n = read(in, chunk, sizeof chunk)) > 0 || (n < 0 && errno == EINTR))
        if (n > 0)
            buf_append(&text, chunk, (size_t)n);
    close(in);
    json_error_t je;
    json_t *j = json_loadb((const char *)text.data, text.len, 0, &je);
    buf_free(&text);
    if (!json_is_object(j)) {
        dprintf(err_fd, "the build step's spec is not JSON: %s", je.text);
        return CTR_EXIT_FAILED;
    }
#define S(k) json_string_value(json_object_get(j, k))
    char **command = json_strv(json_object_get(j, "argv"));
    char **env = json_strv(json_object_get(j, "env"));
    char **lowers = json_strv(json_object_get(j, "lowers"));
    json_t *jm = json_object_get(j, "mounts");
    size_t n_mounts = json_array_size(jm);
    struct ctr_mount *mounts = xcalloc(n_mounts + 1, sizeof *mounts);
    struct ctr_image **images = xcalloc(2 * n_mounts + 1, sizeof *images);
    size_t n_images = 0;
    int ret = CTR_EXIT_FAILED;
    struct ctr_image *ci = NULL;
    for (size_t i = 0; i < n_mounts; i++) {
        json_t *m = json_array_get(jm, i);
        const char *src = json_string_value(json_object_get(m, "source"));
        const char *opt = json_string_value(json_object_get(m, "options"));
        const char *target = json_string_value(json_object_get(m, "target"));
        mounts[i] = (struct ctr_mount){
            .source = src ? xstrdup(src) : NULL,
            .target = xstrdup(target ? target : ""),
            .readonly = json_is_true(json_object_get(m, "readonly")),
            .tmpfs = json_is_true(json_object_get(m, "tmpfs")),
            .options = opt ? xstrdup(opt) : NULL,
        };
        if (mount_prepare(S("root"), S("run_dir"), S("upper"), i, m, &mounts[i], images, &n_images,
                          &e) < 0) {
            (void)!write(err_fd, e.msg, strlen(e.msg));
            goto out;
        }
    }
    if (ctr_image_open(S("root"), S("image"), &ci, &e) < 0 ||
        ctr_image_hold(S("run_dir"), ci, S("hold"), &e) < 0) {
        (void)!write(err_fd, e.msg, strlen(e.msg));
        goto out;
    }
    struct ctr_spec spec = {
        .image = S("image"),
        .command = command,
        .env = env,
        .workdir = S("workdir"),
        .user = S("user"),
        .mounts = mounts,
        .n_mounts = n_mounts,
        .network = S("network"),
        .run_dir = S("run_dir"),
        .hidden = true,
        /* imgfs-init as PID 1, as before `run` made the command PID 1: Ctrl-C on `imgfs build`
         * must end a RUN whose shell has no SIGINT handler, and its orphans are reaped */
        .init = true,
        .upper_dir = S("upper"),
        .work_dir = S("work"),
        .lowers = lowers[0] ? lowers : NULL,
        .redirect_output = true,
        .stdout_fd = out_fd,
        .stderr_fd = out_fd,
    };
    ctr_image_spec(ci, &spec);
    /* the image's config must not add its Cmd or Entrypoint: RUN's words are the command */
    spec.config = NULL;
    snprintf(spec.id, sizeof spec.id, "%s", S("id") ? S("id") : "");
#undef S
    int st = 0;
    if (ctr_run(&spec, &st, &e) < 0) {
        (void)!write(err_fd, e.msg, strlen(e.msg));
        goto out;
    }
    ret = st & 0xff;
out:
    ctr_image_free(ci);
    for (size_t i = 0; i < n_images; i++)
        ctr_image_free(images[i]);
    free(images);
    for (size_t i = 0; i < n_mounts; i++) {
        free(mounts[i].source);
        free(mounts[i].target);
        free(mounts[i].options);
    }
    free(mounts);
    strv_free(command);
    strv_free(env);
    strv_free(lowers);
    json_decref(j);
    return ret;
}

/* Close every descriptor from 3 up but fds[0..n) (distinct, each >= 3), which stay open across
 * exec. Async-signal-safe. */
static void keep_only(int *fds, int n)
{
    for (int i = 0; i < n; i++) /* sort: a handful */
        for (int k = i + 1; k < n; k++)
            if (fds[k] < fds[i]) {
                int t = fds[i];
                fds[i] = fds[k];
                fds[k] = t;
            }
    unsigned from = 3;
    for (int i = 0; i < n; i++) {
        if ((unsigned)fds[i] > from)
            close_range(from, (unsigned)fds[i] - 1, 0);
        fcntl(fds[i], F_SETFD, 0);
        from = (unsigned)fds[i] + 1;
    }
    close_range(from, ~0U, 0);
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

/* Remove DIR and everything below it, best effort, never crossing into a mount. */
void build_remove_tree(const char *dir)
{
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
}

int build_step_dir(struct build *b, char *dir, size_t size, int *lock_fd, struct imgfs_err *err)
{
    *lock_fd = -1;
    if ((size_t)snprintf(dir, size, "%s/tmp/build-step.XXXXXX", b->o->root) >= size)
        return err_set(err, ENAMETOOLONG, "the store's path is too long");
    if (!mkdtemp(dir))
        return err_sys(err, errno, "making a directory under `%s/tmp`", b->o->root);
    cleanup_free char *upper = xasprintf("%s/upper", dir);
    cleanup_free char *work = xasprintf("%s/work", dir);
    cleanup_free char *lock = xasprintf("%s/lock", dir);
    if (mkdir(upper, 0755) < 0 || mkdir(work, 0700) < 0) {
        err_sys(err, errno, "making the overlay directories in `%s`", dir);
        goto fail;
    }
    /* held while the step runs: build_sweep removes only directories nobody holds */
    *lock_fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (*lock_fd < 0 || flock(*lock_fd, LOCK_EX) < 0) {
        err_sys(err, errno, "locking `%s`", lock);
        goto fail;
    }
    return 0;
fail:
    build_remove_tree(dir);
    dir[0] = 0;
    if (*lock_fd >= 0)
        close(*lock_fd);
    *lock_fd = -1;
    return -1;
}

int build_exec(struct build *b, struct build_exec *ex, int *status, struct imgfs_err *err)
{
    if (build_step_dir(b, ex->dir, sizeof ex->dir, &ex->lock_fd, err) < 0)
        return -1;
    snprintf(ex->upper, sizeof ex->upper, "%s/upper", ex->dir);
    cleanup_free char *work = xasprintf("%s/work", ex->dir);
    ctr_new_id(ex->id);

    int spec = spec_fd(b, ex, work, err);
    if (spec < 0)
        return -1;
    int epipe[2], opipe[2];
    if (pipe2(epipe, O_CLOEXEC) < 0) {
        close(spec);
        return err_sys(err, errno, "pipe");
    }
    if (pipe2(opipe, O_CLOEXEC) < 0) {
        close(spec);
        close(epipe[0]);
        close(epipe[1]);
        return err_sys(err, errno, "pipe");
    }
    /* everything the child needs is made before the fork: after it, only syscalls */
    char a_spec[16], a_out[16], a_err[16];
    snprintf(a_spec, sizeof a_spec, "%d", spec);
    snprintf(a_out, sizeof a_out, "%d", opipe[1]);
    snprintf(a_err, sizeof a_err, "%d", epipe[1]);
    char *args[] = {"imgfs", "__build-step", a_spec, a_out, a_err, NULL};
    int fds[3] = {spec, opipe[1], epipe[1]};
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        close(spec);
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
        /* nothing of ours but these three: another stage's thread may have its step's pipes
         * open right now, and a copy held here would keep that step's reader from ever seeing
         * the end of its output */
        keep_only(fds, 3);
        /* Ctrl-C reaches the container's command through ctr_run, which passes it on (the
         * build's worker threads block it: the build's main thread handles it) */
        struct sigaction dfl = {.sa_handler = SIG_DFL};
        sigaction(SIGINT, &dfl, NULL);
        sigaction(SIGTERM, &dfl, NULL);
        sigset_t unblock;
        sigemptyset(&unblock);
        sigaddset(&unblock, SIGINT);
        sigaddset(&unblock, SIGTERM);
        sigprocmask(SIG_UNBLOCK, &unblock, NULL);
        execv("/proc/self/exe", args);
        _exit(CTR_EXIT_FAILED);
    }
    close(spec);
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

void build_exec_release(struct build *b, struct build_exec *ex)
{
    if (!ex->dir[0])
        return;
    /* our own directory: the overlay is gone with the container's mount namespace */
    build_discard(b, ex->dir);
    ex->dir[0] = 0;
    if (ex->lock_fd >= 0)
        close(ex->lock_fd);
    ex->lock_fd = -1;
}
