/* push.c — store → registry. Contract: push.h; reasons: docs/registry.md. */
#include "push.h"
#include "lazy.h"
#include "image.h"
#include "layer.h"
#include "store.h"

#include <archive.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

/* ---- the layer blob ---- */

static int fd_sink(void *ctx, const void *data, size_t len, struct imgfs_err *err)
{
    int fd = *(int *)ctx;
    if (write_full(fd, data, len) < 0)
        return err_sys(err, errno, "writing the layer blob");
    return 0;
}

int push_encode_layer(struct store_read *r, const void *table, size_t table_len,
                      const struct estargz_write_options *o, int fd, struct estargz_result *out,
                      struct imgfs_err *err)
{
    return estargz_write(r, table, table_len, o, fd_sink, &fd, out, err);
}

/* ---- where imgfs pushed blobs before (for cross-repository mounts) ----
 *
 * ROOT/pushed-blobs: one line "sha256:<hex> HOST/REPO" per blob pushed, appended (a line is one
 * write, so concurrent pushes do not interleave within a line). Only a hint: a mount the registry
 * refuses is an ordinary upload. */

static char *pushed_path(struct store *s)
{
    return xasprintf("%s/pushed-blobs", store_root(s));
}

static void pushed_record(struct store *s, const struct digest *d, const char *host,
                          const char *repo)
{
    cleanup_free char *path = pushed_path(s);
    char ds[DIGEST_STR_SIZE];
    digest_str(d, ds);
    cleanup_free char *line = xasprintf("%s %s/%s\n", ds, host, repo);
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return;
    (void)write_full(fd, line, strlen(line));
    close(fd);
}

/* Another repository on `host` that has blob d, or NULL. Caller frees. */
static char *pushed_elsewhere(struct store *s, const struct digest *d, const char *host,
                              const char *repo)
{
    cleanup_free char *path = pushed_path(s);
    FILE *f = fopen(path, "re");
    if (!f)
        return NULL;
    char ds[DIGEST_STR_SIZE];
    digest_str(d, ds);
    size_t hl = strlen(host);
    char *line = NULL, *found = NULL;
    size_t cap = 0;
    ssize_t n;
    while (!found && (n = getline(&line, &cap, f)) > 0) {
        if (line[n - 1] == '\n')
            line[--n] = 0;
        char *sp = strchr(line, ' ');
        if (!sp || (size_t)(sp - line) != strlen(ds) || strncmp(line, ds, strlen(ds)))
            continue;
        const char *loc = sp + 1;
        if (strncmp(loc, host, hl) || loc[hl] != '/' || !strcmp(loc + hl + 1, repo))
            continue;
        found = xstrdup(loc + hl + 1);
    }
    free(line);
    fclose(f);
    return found;
}

/* ---- the push ---- */

struct push {
    struct store *s;
    const struct push_options *o;
    struct estargz_result *blobs;
    size_t n;
    size_t current; /* the blob being uploaded, for progress */
};

static void emit(struct push *p, enum push_event_kind kind, size_t layer, const struct digest *d,
                 uint64_t done, uint64_t total, const char *from)
{
    if (!p->o->event)
        return;
    struct push_event e = {.kind = kind,
                           .layer = layer,
                           .n_layers = p->n,
                           .digest = d,
                           .done = done,
                           .total = total,
                           .from = from};
    p->o->event(p->o->event_ctx, &e);
}

static void on_progress(void *ctx, const struct digest *blob, uint64_t done, uint64_t total)
{
    (void)total;
    struct push *p = ctx;
    if (p->current < p->n)
        emit(p, PUSH_LAYER_PROGRESS, p->current, blob, done, p->blobs[p->current].blob_size, NULL);
}

static int tmp_file(struct store *s, struct imgfs_err *err)
{
    cleanup_free char *dir = xasprintf("%s/tmp", store_root(s));
    if (mkdir_p(dir, 0700, err) < 0)
        return -1;
    int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd < 0)
        return err_sys(err, errno, "creating a temporary file in `%s`", dir);
    return fd;
}

static int upload_blob(struct push *p, struct registry_client *c, const struct ref *target,
                       size_t index, const struct digest *d, int fd, uint64_t size,
                       struct imgfs_err *err)
{
    int have = registry_blob_exists(c, d, NULL, 0, err);
    if (have < 0)
        return -1;
    if (have) {
        emit(p, PUSH_LAYER_EXISTS, index, d, size, size, NULL);
        pushed_record(p->s, d, target->domain, target->path);
        return 0;
    }
    cleanup_free char *from = pushed_elsewhere(p->s, d, target->domain, target->path);
    bool mounted = false;
    p->current = index;
    emit(p, PUSH_LAYER_START, index, d, 0, size, NULL);
    if (registry_put_blob(c, d, fd, size, from, p->o->chunk_size, &mounted, 0, err) < 0)
        return -1;
    p->current = SIZE_MAX;
    emit(p, mounted ? PUSH_LAYER_MOUNTED : PUSH_LAYER_DONE, index, d, size, size, from);
    pushed_record(p->s, d, target->domain, target->path);
    return 0;
}

int push_image(struct store *s, const char *image, const char *ref_arg,
               const struct push_options *o, struct digest *out, struct imgfs_err *err)
{
    struct push p = {.s = s, .o = o, .current = SIZE_MAX};
    struct image img = {0};
    struct ref target = {0};
    struct registry_client *c = NULL;
    int *fds = NULL;
    char *config = NULL, *manifest = NULL;
    int ret = -1;
    struct store_read *r;
    if (store_read_begin(s, &r, err) < 0)
        return -1;
    if (image_load_ref(r, image, &img, err) < 0) {
        store_read_end(r);
        return -1;
    }
    if (ref_parse(ref_arg ? ref_arg : image, &target, err) < 0)
        goto out;
    p.n = img.n_layers;
    p.blobs = xcalloc(p.n + 1, sizeof *p.blobs);
    fds = xcalloc(p.n + 1, sizeof *fds);
    for (size_t i = 0; i < p.n; i++)
        fds[i] = -1;
    /* a recorded start-up (imgfs optimize): its files first, before the prefetch landmark */
    char **trace = NULL;
    size_t n_trace = 0;
    if (lazy_trace_load(store_root(s), &img.digest, &trace, &n_trace, err) < 0)
        goto out;
    struct estargz_write_options eo = {.prefetch = (const char *const *)trace,
                                       .n_prefetch = n_trace};
    for (size_t i = 0; i < p.n; i++) {
        const void *table;
        size_t len;
        char ds[DIGEST_STR_SIZE];
        digest_str(&img.layers[i], ds);
        if (store_get(r, STORE_LAYER, &img.layers[i], &table, &len, err) < 0 ||
            (fds[i] = tmp_file(s, err)) < 0 ||
            push_encode_layer(r, table, len, n_trace ? &eo : NULL, fds[i], &p.blobs[i], err) <
                0) {
            for (size_t k = 0; k < n_trace; k++)
                free(trace[k]);
            free(trace);
            err_ctx(err, "layer %zu (%s)", i + 1, ds);
            goto out;
        }
    }
    for (size_t k = 0; k < n_trace; k++)
        free(trace[k]);
    free(trace);
    store_read_end(r);
    r = NULL;
    emit(&p, PUSH_PREPARED, 0, &img.digest, 0, 0, NULL);

    size_t config_len, manifest_len;
    if (estargz_image_json(&img, p.blobs, &config, &config_len, &manifest, &manifest_len, err) < 0)
        goto out;
    struct digest config_digest, manifest_digest;
    digest_of(config, config_len, &config_digest);
    digest_of(manifest, manifest_len, &manifest_digest);

    struct registry_options ro = o->registry;
    ro.progress = on_progress;
    ro.push = true;
    ro.progress_ctx = &p;
    if (registry_open(&target, &ro, &c, err) < 0)
        goto out;
    for (size_t i = 0; i < p.n; i++) {
        bool repeated = false;
        for (size_t k = 0; k < i; k++)
            repeated |= digest_equal(&p.blobs[k].blob, &p.blobs[i].blob);
        if (!repeated &&
            upload_blob(&p, c, &target, i, &p.blobs[i].blob, fds[i], p.blobs[i].blob_size, err) < 0)
            goto out;
    }
    /* the config, from memory through a temporary file like the layers */
    int cfd = tmp_file(s, err);
    if (cfd < 0)
        goto out;
    int rc = write_full(cfd, config, config_len);
    if (rc < 0) {
        err_sys(err, errno, "writing the config");
    } else {
        struct imgfs_err e = {0};
        int have = registry_blob_exists(c, &config_digest, NULL, 0, &e);
        rc = have < 0 ? (*err = e, -1)
             : have   ? 0
                    : registry_put_blob(c, &config_digest, cfd, config_len, NULL, 0, NULL, 0, err);
        if (rc < 0)
            err_ctx(err, "uploading the config");
    }
    close(cfd);
    if (rc < 0)
        goto out;
    char dbuf[DIGEST_STR_SIZE];
    const char *reference = ref_registry_reference(&target, dbuf);
    if (target.has_digest && !digest_equal(&target.digest, &manifest_digest)) {
        err_set(err, EINVAL, "the image's manifest has digest %s, not the reference's", dbuf);
        goto out;
    }
    if (registry_put_manifest(c, reference, MT_OCI_MANIFEST, manifest, manifest_len, 0, err) < 0)
        goto out;
    emit(&p, PUSH_DONE, 0, &manifest_digest, 0, 0, NULL);
    /* REPO@digest names the image locally (what `images --digests` shows); best effort: the
     * push itself succeeded */
    struct store_batch *b;
    struct imgfs_err ignored;
    if (store_batch_begin(s, &b, &ignored) == 0) {
        cleanup_free char *repo = ref_familiar_repository(&target);
        char ds[DIGEST_STR_SIZE];
        digest_str(&manifest_digest, ds);
        cleanup_free char *name = xasprintf("%s@%s", repo, ds);
        store_batch_tag(b, name, &img.digest);
        (void)store_batch_commit(b, &ignored);
    }
    if (out)
        *out = manifest_digest;
    ret = 0;
out:
    if (ret < 0)
        err_ctx(err, "pushing %s", ref_arg ? ref_arg : image);
    if (r)
        store_read_end(r);
    registry_close(c);
    for (size_t i = 0; fds && i < p.n; i++) {
        if (fds[i] >= 0)
            close(fds[i]);
    }
    free(fds);
    free(p.blobs);
    free(config);
    free(manifest);
    ref_free(&target);
    image_free(&img);
    return ret;
}
