/* gofast.c — `imgfs build --go PACKAGE`: the Go fast path, as ko does it. `go build` runs on the
 * host (CGO_ENABLED=0, -trimpath, the user's own warm build cache), and the binary becomes one
 * layer on a small base: /app/NAME, the image's entrypoint. No container, no Dockerfile, no build
 * context is copied. Contract: builder.h (build_go); reasons: docs/builder.md. */
#include "builder.h"
#include "../fs/image.h"
#include "../fs/layerbuild.h"
#include "../fs/store.h"

#include <dirent.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

/* Is `go` on PATH? (a clear error before anything is forked) */
static bool have_go(void)
{
    const char *path = getenv("PATH");
    if (!path || !*path)
        path = "/usr/local/bin:/usr/bin:/bin";
    cleanup_free char *copy = xstrdup(path);
    char *save = NULL;
    for (char *d = strtok_r(copy, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
        cleanup_free char *p = xasprintf("%s/go", *d ? d : ".");
        if (access(p, X_OK) == 0)
            return true;
    }
    return false;
}

/* Run `go build` with its output (compiler errors) going to the progress display; returns the
 * exit status, or -1 with err set when it could not be run. */
static int go_build(const struct build_go_options *o, const char *outdir, int step,
                    struct imgfs_err *err)
{
    cleanup_free char *out_arg = xasprintf("%s/", outdir); /* a directory: go names the binary */
    const char *argv[] = {"go", "build", "-trimpath", "-buildvcs=false",
                          "-o", out_arg, o->package,  NULL};
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0)
        return err_sys(err, errno, "pipe");
    pid_t pid = fork();
    if (pid < 0) {
        close(p[0]);
        close(p[1]);
        return err_sys(err, errno, "fork");
    }
    if (pid == 0) {
        int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (null < 0 || dup2(null, 0) < 0 || dup2(p[1], 1) < 0 || dup2(p[1], 2) < 0)
            _exit(127);
        if (o->dir && chdir(o->dir) < 0) {
            dprintf(2, "imgfs: cd %s: %s\n", o->dir, strerror(errno));
            _exit(127);
        }
        /* a static binary for the image's platform, whatever the host's settings */
        setenv("CGO_ENABLED", "0", 1);
        setenv("GOOS", "linux", 1);
        setenv("GOARCH", "amd64", 1);
        signal(SIGPIPE, SIG_DFL);
        execvp("go", (char **)argv);
        dprintf(2, "imgfs: exec go: %s\n", strerror(errno));
        _exit(127);
    }
    close(p[1]);
    char buf[8192];
    for (;;) {
        ssize_t n = read(p[0], buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        if (o->progress && o->progress->step_output)
            o->progress->step_output(o->progress->ctx, step, buf, (size_t)n);
    }
    close(p[0]);
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
            return err_sys(err, errno, "waiting for go build");
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* The one file go build wrote into outdir (its name is the binary's). */
static char *built_binary(const char *outdir, struct imgfs_err *err)
{
    DIR *d = opendir(outdir);
    if (!d) {
        err_sys(err, errno, "reading `%s`", outdir);
        return NULL;
    }
    char *name = NULL;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.') {
            n++;
            free(name);
            name = xstrdup(e->d_name);
        }
    closedir(d);
    if (n != 1) {
        free(name);
        if (n)
            err_set(err, EINVAL, "go build made %d files: PACKAGE must be one main package", n);
        else
            err_set(err, EINVAL,
                    "go build made no binary: not a main package (package main, "
                    "func main)");
        return NULL;
    }
    return name;
}

/* The base's config with the binary as its entrypoint (Cmd cleared, as a Dockerfile ENTRYPOINT
 * does), `created` and a history entry at `when`. */
static int go_config(const struct image *base, const char *name, const char *package, int64_t when,
                     char **out, size_t *out_len, struct imgfs_err *err)
{
    json_error_t je;
    json_t *root = json_loadb(base->config_json, base->config_len, 0, &je);
    if (!json_is_object(root)) {
        json_decref(root);
        return err_set(err, EINVAL, "the base image's config is not a JSON object: %s", je.text);
    }
    json_t *c = json_object_get(root, "config");
    if (!json_is_object(c)) {
        c = json_object();
        json_object_set_new(root, "config", c);
    }
    cleanup_free char *entry = xasprintf("/app/%s", name);
    json_object_set_new(c, "Entrypoint", json_pack("[s]", entry));
    json_object_del(c, "Cmd");
    cleanup_free char *edited = json_dumps(root, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(root);
    if (!edited)
        return err_set(err, ENOMEM, "encoding the config");
    cleanup_free char *by = xasprintf("imgfs build --go %s", package);
    struct image_history h = {.created = when, .created_by = by, .comment = "Go fast path"};
    return image_config_add_history(edited, strlen(edited), &h, out, out_len, err);
}

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void remove_outdir(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (e->d_name[0] != '.' || (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))) {
            cleanup_free char *p = xasprintf("%s/%s", dir, e->d_name);
            unlink(p);
        }
    if (d)
        closedir(d);
    rmdir(dir);
}

int build_go(const struct build_go_options *o, struct build_result *out, struct imgfs_err *err)
{
    memset(out, 0, sizeof *out);
    const char *base_ref = o->base ? o->base : BUILD_GO_DEFAULT_BASE;
    int64_t when = o->source_date_epoch >= 0 ? o->source_date_epoch : 0;
    if (!have_go())
        return err_set(err, ENOENT,
                       "no Go toolchain: `go` is not on PATH (Debian: apt-get "
                       "install golang-go)");
    struct store *s = NULL;
    struct store_batch *b = NULL;
    struct store_read *r = NULL;
    struct image base;
    bool have_base = false;
    struct layer_builder *lb = NULL;
    struct layer_build_result res = {0};
    cleanup_free char *config = NULL, *name = NULL, *bin = NULL, *title = NULL, *path = NULL;
    cleanup_free char *what = NULL;
    cleanup_close int fd = -1;
    double t0 = now_seconds();
    size_t config_len = 0;
    int ret = -1;
    const char *tmp = getenv("TMPDIR");
    char *outdir = xasprintf("%s/imgfs-go.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    bool made_outdir = mkdtemp(outdir) != NULL;
    if (!made_outdir) {
        err_sys(err, errno, "creating `%s`", outdir);
        goto out;
    }

    /* the base first: a missing one is found before a minute of compiling */
    if (store_open(o->root, 0, &s, err) < 0 || store_batch_begin(s, &b, err) < 0 ||
        store_read_begin(s, &r, err) < 0)
        goto out;
    if (image_load_ref(r, base_ref, &base, err) < 0) {
        if (err->code == ENOENT)
            err_set(err, ENOENT,
                    "base image `%s` not found (make the offline bases with tools/mkbase.sh, or "
                    "give --base IMAGE)",
                    base_ref);
        goto out;
    }
    have_base = true;

    int step = 1;
    title = xasprintf("[go 1/2] go build -trimpath %s", o->package);
    if (o->progress && o->progress->step_start)
        o->progress->step_start(o->progress->ctx, step, title);
    int st = go_build(o, outdir, step, err);
    if (st < 0)
        goto out;
    if (st != 0) {
        err_set(err, ECHILD, "go build %s failed (exit status %d)", o->package, st);
        goto out;
    }
    if (!(name = built_binary(outdir, err)))
        goto out;
    if (o->progress && o->progress->step_done)
        o->progress->step_done(o->progress->ctx, step, false, now_seconds() - t0);

    step = 2;
    t0 = now_seconds();
    free(title);
    title = xasprintf("[go 2/2] /app/%s on %s", name, base_ref);
    if (o->progress && o->progress->step_start)
        o->progress->step_start(o->progress->ctx, step, title);
    bin = xasprintf("%s/%s", outdir, name);
    fd = open(bin, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    struct stat sb;
    if (fd < 0 || fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode)) {
        err_sys(err, errno ? errno : EINVAL, "the binary `%s`", bin);
        goto out;
    }
    path = xasprintf("app/%s", name);
    struct layer_entry dir = {.path = "app", .kind = LAYER_DIR, .mode = 0755, .mtime_sec = when};
    struct layer_entry file = {.path = path,
                               .kind = LAYER_REG,
                               .mode = 0755,
                               .mtime_sec = when,
                               .size = (uint64_t)sb.st_size};
    what = xasprintf("the Go binary of %s", o->package);
    if (layer_builder_open(b, what, &lb, err) < 0 || layer_builder_add(lb, &dir, err) < 0 ||
        layer_builder_add_fd(lb, &file, fd, err) < 0 || layer_builder_finish(lb, &res, err) < 0)
        goto out;
    if (go_config(&base, name, o->package, when, &config, &config_len, err) < 0)
        goto out;
    struct image_layer layer = {.diff_id = res.diff_id,
                                .size = res.size,
                                .table = res.table.data,
                                .table_len = res.table.len};
    const char *first = o->tags && o->tags[0] ? o->tags[0] : NULL;
    if (image_commit_on(b, r, &base, config, config_len, &layer, 1, first, &out->image, err) < 0)
        goto out;
    for (size_t i = 1; first && o->tags[i]; i++)
        store_batch_tag(b, o->tags[i], &out->image);
    store_read_end(r);
    r = NULL;
    ret = store_batch_commit(b, err);
    b = NULL;
    if (ret == 0 && o->progress && o->progress->step_done)
        o->progress->step_done(o->progress->ctx, step, false, now_seconds() - t0);
    out->steps = 2;
out:
    if (r)
        store_read_end(r);
    if (b)
        store_batch_abort(b);
    if (s)
        store_close(s);
    layer_builder_free(lb);
    buf_free(&res.table);
    if (have_base)
        image_free(&base);
    if (made_outdir)
        remove_outdir(outdir);
    free(outdir);
    if (ret < 0)
        err_ctx(err, "build --go %s", o->package);
    return ret;
}
