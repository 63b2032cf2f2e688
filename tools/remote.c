/* A remote reference given to mount or run: lazily pulled when it is not in the store
 * (docs/lazy.md), as `docker run` pulls an image it does not have. */
#include "../fs/lazy.h"
#include "../fs/mount.h"
#include "../fs/pull.h"
#include "../fs/image.h"
#include "../fs/store.h"
#include "cli.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Does `ref` name a registry explicitly (a first part with a dot or a port, or localhost)? Plain
 * names ("busybox") stay local: a typo must not become a pull from docker.io. */
static bool names_a_registry(const char *ref)
{
    const char *slash = strchr(ref, '/');
    if (!slash)
        return false;
    size_t n = (size_t)(slash - ref);
    return memchr(ref, '.', n) || memchr(ref, ':', n) || (n == 9 && !strncmp(ref, "localhost", 9));
}

static void note_whole_layers(void *ctx, const struct pull_event *e)
{
    if (e->kind == PULL_LAYER_WHOLE)
        fprintf(stderr, "imgfs %s: note: %s: pulling this layer whole\n", (const char *)ctx,
                e->note);
}

int cli_lazy_ensure(const struct cli *cli, const char *ref, const struct registry_options *ro,
                    const char *verb)
{
    if (!names_a_registry(ref))
        return 0;
    struct imgfs_err err = {0};
    /* --tls-verify, --ca-file, --authfile given for an image pulled before: its fetches use them
     * from now */
    struct ref parsed;
    if ((ro->tls_verify != REGISTRY_TLS_AUTO || ro->ca_file || ro->auth_file) &&
        ref_parse(ref, &parsed, &err) == 0) {
        int rc = lazy_registry_remember(cli->root, parsed.domain, ro, &err);
        ref_free(&parsed);
        if (rc < 0) {
            cli_report(verb, &err);
            return -1;
        }
    }
    err_clear(&err);
    struct store *s;
    if (store_open(cli->root, STORE_READONLY, &s, &err) == 0) {
        struct store_read *r;
        struct digest d;
        bool local = false;
        if (store_read_begin(s, &r, &err) == 0) {
            local = image_resolve(r, ref, &d, &err) == 0;
            store_read_end(r);
        }
        store_close(s);
        if (local)
            return 0;
    }
    s = cli_store_open(cli, verb, false);
    if (!s)
        return -1;
    fprintf(stderr, "Unable to find image '%s' locally; pulling it lazily\n", ref);
    struct pull_options o = {
        .registry = *ro, .event = note_whole_layers, .event_ctx = (void *)verb};
    bool whole = false;
    struct digest d;
    int rc = lazy_pull(s, ref, &o, &d, NULL, &whole, &err);
    if (rc < 0 && whole) {
        fprintf(stderr, "imgfs %s: note: %s: pulling the image whole\n", verb, err.msg);
        err_clear(&err);
        rc = pull_image(s, ref, &o, &d, NULL, &err);
    }
    store_close(s);
    if (rc < 0) {
        cli_report(verb, &err);
        return -1;
    }
    return 0;
}

struct complete_progress {
    bool tty;
    const char *verb;
};

static void complete_progress(void *ctx, uint64_t done, uint64_t total)
{
    struct complete_progress *cp = ctx;
    if (!cp->tty)
        return;
    char d[32], t[32];
    cli_human_size(done, d, sizeof d);
    cli_human_size(total, t, sizeof t);
    fprintf(stderr, "\r\033[Kimgfs %s: fetched %s of %s", cp->verb, d, t);
}

int cli_lazy_complete(const struct cli *cli, const char *image, const char *verb)
{
    struct imgfs_err err = {0};
    struct store *s;
    struct lazy_usage u = {0};
    struct digest d;
    if (store_open(cli->root, STORE_READONLY, &s, &err) < 0)
        return 0; /* the verb opens the store itself and says why it cannot */
    bool remote = false;
    if (store_has_remote(s)) {
        struct store_read *r;
        if (store_read_begin(s, &r, &err) == 0) {
            remote = image_resolve(r, image, &d, &err) == 0;
            store_read_end(r);
        }
        remote = remote && lazy_image_usage(s, &d, &u, &err) == 0 && u.remote_chunks;
    }
    store_close(s);
    if (!remote)
        return 0; /* complete, or not there: the verb's own lookup reports that */
    s = cli_store_open(cli, verb, false);
    if (!s)
        return -1;
    char human[32];
    cli_human_size(u.remote_bytes, human, sizeof human);
    /* on stderr: the verb may be writing an archive to stdout */
    fprintf(stderr,
            "imgfs %s: %s was pulled lazily: fetching the %s (%llu chunks) still in the "
            "registry\n",
            verb, image, human, (unsigned long long)u.remote_chunks);
    struct complete_progress cp = {.tty = isatty(STDERR_FILENO), .verb = verb};
    struct lazy_options o = {.image = image, .progress = complete_progress, .progress_ctx = &cp};
    struct lazy_usage before;
    int rc = lazy_complete(s, &d, &o, &before, &err);
    if (cp.tty)
        fputc('\n', stderr);
    store_close(s);
    if (rc < 0) {
        err_ctx(&err, "%s was pulled lazily and %s needs all of its content", image, verb);
        cli_report(verb, &err);
        return -1;
    }
    return 0;
}

int cli_parse_fetch_timeout(const char *verb, const char *arg, unsigned *ms)
{
    char *end;
    double v = strtod(arg, &end);
    double scale = !strcmp(end, "ms")           ? 1
                   : !strcmp(end, "s") || !*end ? 1000
                   : !strcmp(end, "m")          ? 60000
                                                : -1;
    if (end == arg || scale < 0 || v <= 0 || v * scale > 3600000) {
        cli_error(verb, "--fetch-timeout wants a duration such as 500ms, 5s or 1m, not `%s`", arg);
        return -1;
    }
    *ms = (unsigned)(v * scale);
    return 0;
}

int cli_parse_prefetch(const char *verb, const char *arg, int *what)
{
    /* "trace" is run's name for it: the recorded start-up's range, up to the landmark */
    if (!strcmp(arg, "landmark") || !strcmp(arg, "trace"))
        *what = LAZY_PREFETCH_LANDMARK;
    else if (!strcmp(arg, "all"))
        *what = LAZY_PREFETCH_ALL;
    else if (!strcmp(arg, "none"))
        *what = LAZY_PREFETCH_NONE;
    else {
        cli_error(verb, "--prefetch wants trace (or landmark), all or none, not `%s`", arg);
        return -1;
    }
    return 0;
}

int cli_trace_mount(const struct cli *cli, const char *image, unsigned fetch_timeout_ms,
                    int prefetch, struct cli_trace *t, struct imgfs_err *err)
{
    memset(t, 0, sizeof *t);
    if (mkdir_p(cli->run_dir, 0700, err) < 0)
        return -1;
    t->dir = xasprintf("%s/trace.XXXXXX", cli->run_dir);
    if (!mkdtemp(t->dir)) {
        err_sys(err, errno, "creating `%s`", t->dir);
        free(get_and_reset(&t->dir));
        return -1;
    }
    /* absolute: the daemon and the overlay mount do not run in our working directory */
    char *abs = realpath(t->dir, NULL);
    if (abs) {
        free(t->dir);
        t->dir = abs;
    }
    t->rootfs = xasprintf("%s/rootfs", t->dir);
    t->file = xasprintf("%s/trace", t->dir);
    if (mkdir(t->rootfs, 0755) < 0) {
        err_sys(err, errno, "creating `%s`", t->rootfs);
        cli_trace_end(t);
        return -1;
    }
    /* as the shared mount of runner/image.c: the containers' user ids get in, setuid works */
    struct mount_options o = {.allow_other = geteuid() == 0,
                              .suid = geteuid() == 0,
                              .trace_path = t->file,
                              .fetch_timeout_ms = fetch_timeout_ms,
                              .prefetch = prefetch};
    if (mount_image(cli->root, image, t->rootfs, &o, err) < 0) {
        cli_trace_end(t);
        return -1;
    }
    t->mounted = true;
    return 0;
}

int cli_trace_finish(const struct cli *cli, struct cli_trace *t, const struct digest *manifest,
                     size_t *n, struct imgfs_err *err)
{
    if (mount_unmount(cli->root, t->rootfs, false, err) < 0)
        return -1;
    t->mounted = false;
    return lazy_trace_record(cli->root, manifest, t->file, n, err);
}

void cli_trace_end(struct cli_trace *t)
{
    struct imgfs_err ignored;
    if (t->mounted)
        mount_unmount(NULL, t->rootfs, true, &ignored);
    if (t->file)
        unlink(t->file);
    if (t->rootfs)
        rmdir(t->rootfs);
    if (t->dir)
        rmdir(t->dir);
    free(t->file);
    free(t->rootfs);
    free(t->dir);
    memset(t, 0, sizeof *t);
}
