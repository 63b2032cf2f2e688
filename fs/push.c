/* push.c — store → registry. Contract: push.h; reasons: docs/registry.md. */
#include "push.h"
#include "lazy.h"
#include "image.h"
#include "layer.h"
#include "store.h"

#include <archive.h>
#include <fcntl.h>
#include <jansson.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <pthread.h>
#include <sys/file.h>
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

/* ---- holes ----
 *
 * A pushed layer is read as plain tar+gzip by every runtime and as eStargz by lazy readers;
 * neither has holes (Docker's and containerd's tar readers accept sparse members but write the
 * zeros out; eStargz TOCs cannot say "hole", stargz-snapshotter's own converter writes zeros), so
 * the holes of sparse files go out as zeros (estargz_write). A 1 PiB sparse file would never
 * finish: push refuses an image whose holes add up to more than the limit before it encodes
 * anything. */

/* The bytes of holes in a layer, and the file with the most of them. */
static int layer_holes(const void *table, size_t len, uint64_t *total, uint64_t *biggest,
                       char **biggest_path, struct imgfs_err *err)
{
    struct layer_reader rd;
    if (layer_reader_init(&rd, table, len, err) < 0)
        return -1;
    struct layer_entry e;
    int rc;
    *total = *biggest = 0;
    while ((rc = layer_next(&rd, &e, err)) == 1) {
        if (e.kind != LAYER_REG)
            continue;
        uint64_t data = 0;
        for (uint32_t i = 0; i < e.n_extents; i++)
            data += e.extents[i].length;
        uint64_t holes = e.size > data ? e.size - data : 0;
        *total += holes;
        if (holes > *biggest) {
            *biggest = holes;
            free(*biggest_path);
            *biggest_path = xstrdup(e.path);
        }
    }
    layer_reader_free(&rd);
    return rc;
}

static int check_holes(struct store_read *r, const struct image *img, uint64_t limit,
                       struct imgfs_err *err)
{
    uint64_t total = 0, worst = 0;
    size_t worst_layer = 0;
    cleanup_free char *worst_path = NULL;
    for (size_t i = 0; i < img->n_layers; i++) {
        const void *table;
        size_t len;
        uint64_t holes, biggest;
        char *path = NULL;
        if (store_get(r, STORE_LAYER, &img->layers[i], &table, &len, err) < 0 ||
            layer_holes(table, len, &holes, &biggest, &path, err) < 0) {
            free(path);
            return err_ctx(err, "layer %zu", i + 1);
        }
        total += holes;
        if (biggest > worst) {
            worst = biggest;
            worst_layer = i;
            free(worst_path);
            worst_path = path;
        } else {
            free(path);
        }
    }
    if (total <= limit)
        return 0;
    return err_set(err, EFBIG,
                   "the image's sparse files have %llu bytes of holes (layer %zu, `%s`: %llu), "
                   "more than the %llu the push writes out as zeros (pushed layers are plain "
                   "tar+gzip and eStargz, which have no holes); raise it with --sparse-limit",
                   (unsigned long long)total, worst_layer + 1, worst_path ? worst_path : "?",
                   (unsigned long long)worst, (unsigned long long)limit);
}

/* ---- where imgfs pushed blobs before (for cross-repository mounts) ----
 *
 * ROOT/pushed-blobs: lines "sha256:<hex> HOST/REPO", the most recently used last, at most
 * PUSHED_MAX of them (the oldest are dropped: it is a cache of hints, not a record). Only a hint
 * in the other direction too: a registry may have lost the blob (deleted, garbage-collected), so
 * a mount the registry refuses is an ordinary upload and its line is dropped. Changed under
 * flock(ROOT/pushed-blobs.lock) and replaced atomically, so parallel uploads and concurrent pushes
 * lose no line and a reader never sees half a file. */

#define PUSHED_MAX 4096

static char *pushed_path(struct store *s)
{
    return xasprintf("%s/pushed-blobs", store_root(s));
}

/* Rewrite the list: without the line `line` (without its newline), and with it last when `add`.
 * Best effort: a hint that cannot be written costs a mount later, nothing else. */
static void pushed_update(struct store *s, const char *line, bool add)
{
    cleanup_free char *path = pushed_path(s);
    cleanup_free char *lock_path = xasprintf("%s.lock", path);
    cleanup_close int lock = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (lock < 0)
        return;
    while (flock(lock, LOCK_EX) < 0)
        if (errno != EINTR)
            return;
    struct buf old = {0}, out = {0};
    struct imgfs_err ignored;
    if (read_file(path, 64u << 20, &old, &ignored) < 0 && ignored.code != ENOENT)
        goto out;
    /* keep the newest PUSHED_MAX - add lines of the others: count them first */
    size_t ll = strlen(line), keep = 0, skip;
    const char *p, *end = (const char *)old.data + old.len, *nl;
    for (p = (const char *)old.data; p && p < end; p = nl ? nl + 1 : NULL) {
        nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        keep += n && !(n == ll && !memcmp(p, line, ll));
    }
    size_t room = PUSHED_MAX - (add ? 1 : 0);
    skip = keep > room ? keep - room : 0;
    for (p = (const char *)old.data; p && p < end; p = nl ? nl + 1 : NULL) {
        nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        if (!n || (n == ll && !memcmp(p, line, ll)))
            continue;
        if (skip) {
            skip--;
            continue;
        }
        buf_append(&out, p, n);
        buf_append(&out, "\n", 1);
    }
    if (add) {
        buf_append(&out, line, ll);
        buf_append(&out, "\n", 1);
    }
    (void)write_file_atomic(path, out.data ? (const char *)out.data : "", out.len, 0600, &ignored);
out:
    buf_free(&old);
    buf_free(&out);
}

static char *pushed_line(const struct digest *d, const char *host, const char *repo)
{
    char ds[DIGEST_STR_SIZE];
    digest_str(d, ds);
    return xasprintf("%s %s/%s", ds, host, repo);
}

static void pushed_record(struct store *s, const struct digest *d, const char *host,
                          const char *repo)
{
    cleanup_free char *line = pushed_line(d, host, repo);
    pushed_update(s, line, true);
}

static void pushed_forget(struct store *s, const struct digest *d, const char *host,
                          const char *repo)
{
    cleanup_free char *line = pushed_line(d, host, repo);
    pushed_update(s, line, false);
}

/* The repository on `host` imgfs pushed blob d to most recently, other than `repo`, or NULL.
 * Caller frees. */
static char *pushed_elsewhere(struct store *s, const struct digest *d, const char *host,
                              const char *repo)
{
    cleanup_free char *path = pushed_path(s);
    FILE *f = fopen(path, "re");
    if (!f)
        return NULL;
    char ds[DIGEST_STR_SIZE];
    digest_str(d, ds);
    size_t hl = strlen(host), dl = strlen(ds);
    char *line = NULL, *found = NULL;
    size_t cap = 0;
    ssize_t n;
    while ((n = getline(&line, &cap, f)) > 0) {
        if (line[n - 1] == '\n')
            line[--n] = 0;
        if ((size_t)n <= dl || line[dl] != ' ' || strncmp(line, ds, dl))
            continue;
        const char *loc = line + dl + 1;
        if (strncmp(loc, host, hl) || loc[hl] != '/' || !strcmp(loc + hl + 1, repo))
            continue;
        free(found);
        found = xstrdup(loc + hl + 1);
    }
    free(line);
    fclose(f);
    return found;
}

/* ---- the push ---- */

#define DEFAULT_JOBS 3

struct push {
    struct store *s;
    const struct push_options *o;
    struct registry_client *client;
    const struct ref *target;
    const struct image *img;
    const struct estargz_write_options *eo; /* NULL: no recorded start-up */
    struct estargz_result *blobs;
    int *fds;
    size_t n;
    bool *repeated;     /* the same layer as an earlier one: done once, as that one */
    pthread_mutex_t mu; /* events (one at a time), and the fields below */
    size_t next;        /* the next layer a worker takes */
    bool failed;        /* stop taking layers */
    struct imgfs_err err;
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
    pthread_mutex_lock(&p->mu);
    p->o->event(p->o->event_ctx, &e);
    pthread_mutex_unlock(&p->mu);
}

/* The registry client reports bytes for the blob pointer upload_blob gave it: &p->blobs[i].blob
 * (other workers may be writing other layers' results meanwhile: nothing is compared). */
static void on_progress(void *ctx, const struct digest *blob, uint64_t done, uint64_t total)
{
    (void)total;
    struct push *p = ctx;
    const struct estargz_result *res =
        (const struct estargz_result *)((const char *)blob - offsetof(struct estargz_result, blob));
    size_t i = (size_t)(res - p->blobs);
    if (i < p->n)
        emit(p, PUSH_LAYER_PROGRESS, i, blob, done, res->blob_size, NULL);
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

static int upload_blob(struct push *p, size_t index, struct imgfs_err *err)
{
    struct registry_client *c = p->client;
    const struct ref *target = p->target;
    const struct digest *d = &p->blobs[index].blob;
    uint64_t size = p->blobs[index].blob_size;
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
    emit(p, PUSH_LAYER_START, index, d, 0, size, NULL);
    if (registry_put_blob(c, d, p->fds[index], size, from, p->o->chunk_size, &mounted, 0, err) < 0)
        return -1;
    if (from && !mounted) /* the registry no longer has it there */
        pushed_forget(p->s, d, target->domain, from);
    emit(p, mounted ? PUSH_LAYER_MOUNTED : PUSH_LAYER_DONE, index, d, size, size, from);
    pushed_record(p->s, d, target->domain, target->path);
    return 0;
}

/* Encode layer i into its temporary file (a read snapshot of its own: LMDB read transactions
 * are per thread here). */
static int encode_layer(struct push *p, size_t i, struct imgfs_err *err)
{
    struct store_read *r;
    if (store_read_begin(p->s, &r, err) < 0)
        return -1;
    const void *table;
    size_t len;
    int rc = -1;
    if (store_get(r, STORE_LAYER, &p->img->layers[i], &table, &len, err) == 0 &&
        (p->fds[i] = tmp_file(p->s, err)) >= 0)
        rc = push_encode_layer(r, table, len, p->eo, p->fds[i], &p->blobs[i], err);
    store_read_end(r);
    return rc;
}

/* A worker: takes the next layer, encodes it and uploads it, until none is left or one failed. */
static void *layer_main(void *arg)
{
    struct push *p = arg;
    for (;;) {
        pthread_mutex_lock(&p->mu);
        size_t i = p->next;
        while (i < p->n && p->repeated[i])
            i++;
        p->next = i + 1;
        bool stop = p->failed || i >= p->n;
        pthread_mutex_unlock(&p->mu);
        if (stop)
            return NULL;
        struct imgfs_err e = {0};
        emit(p, PUSH_LAYER_PREPARING, i, &p->img->layers[i], 0, 0, NULL);
        if (encode_layer(p, i, &e) < 0 || upload_blob(p, i, &e) < 0) {
            pthread_mutex_lock(&p->mu);
            if (!p->failed) { /* the first failure is the one reported */
                char ds[DIGEST_STR_SIZE];
                digest_str(&p->img->layers[i], ds);
                p->failed = true;
                p->err = e;
                err_ctx(&p->err, "layer %zu (%s)", i + 1, ds);
            }
            pthread_mutex_unlock(&p->mu);
        }
    }
}

/* Encode and upload every layer, `jobs` at a time (Docker's pushes overlap too): each layer is
 * independent (its eStargz encoding, then HEAD, mount or POST/PATCH/PUT); the config and the
 * manifest that name them are made after all of them. A layer twice in the image is done once. */
static int push_layers(struct push *p, unsigned jobs, struct imgfs_err *err)
{
    if (!jobs)
        jobs = DEFAULT_JOBS;
    if (jobs > p->n)
        jobs = (unsigned)p->n;
    pthread_t *threads = xcalloc(jobs + 1, sizeof *threads);
    unsigned started = 0;
    for (; started < jobs; started++)
        if (pthread_create(&threads[started], NULL, layer_main, p) != 0)
            break;
    if (!started)
        layer_main(p);
    for (unsigned t = 0; t < started; t++)
        pthread_join(threads[t], NULL);
    free(threads);
    if (p->failed) {
        *err = p->err;
        return -1;
    }
    return 0;
}

struct local_tags {
    const char *repo; /* familiar */
    char **tags;
    size_t n, cap;
};

static int add_local_tag(void *ctx, const struct store_image_entry *e)
{
    struct local_tags *lt = ctx;
    cleanup_free char *repo = NULL;
    const char *rest;
    bool by_digest;
    if (!ref_split_name(e->name, &repo, &rest, &by_digest) || by_digest || strcmp(repo, lt->repo))
        return 0;
    if (lt->n == lt->cap) {
        lt->cap = lt->cap ? 2 * lt->cap : 16;
        lt->tags = xrealloc(lt->tags, lt->cap * sizeof *lt->tags);
    }
    lt->tags[lt->n++] = xstrdup(rest);
    return 0;
}

int push_local_tags(struct store *s, const char *repo, char ***tags, size_t *n,
                    struct imgfs_err *err)
{
    *tags = NULL;
    *n = 0;
    struct ref r;
    if (ref_parse(repo, &r, err) < 0)
        return -1;
    cleanup_free char *familiar = ref_familiar_repository(&r);
    ref_free(&r);
    struct store_read *rd;
    if (store_read_begin(s, &rd, err) < 0)
        return -1;
    struct local_tags lt = {.repo = familiar};
    int rc = store_image_foreach(rd, add_local_tag, &lt);
    store_read_end(rd);
    if (rc != 0) {
        for (size_t i = 0; i < lt.n; i++)
            free(lt.tags[i]);
        free(lt.tags);
        return err_set(err, EIO, "listing the store's names");
    }
    *tags = lt.tags;
    *n = lt.n;
    return 0;
}

int push_image(struct store *s, const char *image, const char *ref_arg,
               const struct push_options *o, struct digest *out, struct imgfs_err *err)
{
    struct push p = {.s = s, .o = o};
    pthread_mutex_init(&p.mu, NULL);
    struct image img = {0};
    struct ref target = {0};
    cleanup_free char *repository = NULL; /* "HOST/PATH", for the progress output */
    struct registry_client *c = NULL;
    int *fds = NULL;
    char *config = NULL, *manifest = NULL;
    char **trace = NULL;
    size_t n_trace = 0;
    int ret = -1;
    struct store_read *r;
    if (store_read_begin(s, &r, err) < 0)
        return -1;
    if (image_load_ref(r, image, &img, err) < 0) {
        store_read_end(r);
        return -1;
    }
    if (ref_parse(ref_arg ? ref_arg : image, &target, err) < 0 ||
        check_holes(r, &img, o->sparse_limit ? o->sparse_limit : PUSH_SPARSE_LIMIT_DEFAULT, err) <
            0)
        goto out;
    p.n = img.n_layers;
    p.img = &img;
    p.blobs = xcalloc(p.n + 1, sizeof *p.blobs);
    fds = xcalloc(p.n + 1, sizeof *fds);
    for (size_t i = 0; i < p.n; i++)
        fds[i] = -1;
    p.fds = fds;
    p.repeated = xcalloc(p.n + 1, sizeof *p.repeated);
    for (size_t i = 0; i < p.n; i++)
        for (size_t k = 0; k < i && !p.repeated[i]; k++)
            p.repeated[i] = digest_equal(&img.layers[k], &img.layers[i]);
    store_read_end(r);
    r = NULL;
    /* a recorded start-up (imgfs optimize): its files first, before the prefetch landmark */
    if (lazy_trace_load(store_root(s), &img.digest, &trace, &n_trace, err) < 0)
        goto out;
    struct estargz_write_options eo = {.prefetch = (const char *const *)trace,
                                       .n_prefetch = n_trace};
    p.eo = n_trace ? &eo : NULL;
    struct registry_options ro = o->registry;
    ro.progress = on_progress;
    ro.push = true;
    ro.progress_ctx = &p;
    if (registry_open(&target, &ro, &c, err) < 0)
        goto out;
    p.client = c;
    p.target = &target;
    repository = ref_repository(&target);
    emit(&p, PUSH_PREPARED, 0, &img.digest, 0, 0, repository);
    if (push_layers(&p, o->jobs, err) < 0)
        goto out;
    for (size_t i = 0; i < p.n; i++)
        for (size_t k = 0; k < i && p.repeated[i]; k++)
            if (digest_equal(&img.layers[k], &img.layers[i])) {
                p.blobs[i] = p.blobs[k]; /* the same table makes the same blob */
                break;
            }

    size_t config_len, manifest_len;
    if (estargz_image_json(&img, p.blobs, &config, &config_len, &manifest, &manifest_len, err) < 0)
        goto out;
    struct digest config_digest, manifest_digest;
    digest_of(config, config_len, &config_digest);
    digest_of(manifest, manifest_len, &manifest_digest);
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
    emit(&p, PUSH_DONE, 0, &manifest_digest, manifest_len, manifest_len, reference);
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
    for (size_t k = 0; k < n_trace; k++)
        free(trace[k]);
    free(trace);
    free(p.repeated);
    free(p.blobs);
    pthread_mutex_destroy(&p.mu);
    free(config);
    free(manifest);
    ref_free(&target);
    image_free(&img);
    return ret;
}
