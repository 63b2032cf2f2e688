/* pull.c — registry → store. Contract: pull.h; reasons: docs/registry.md. */
#include "pull.h"
#include "estargz.h"
#include "image.h"
#include "import.h"
#include "layerbuild.h"
#include "store.h"

#include <archive.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define DEFAULT_JOBS 3
#define CONFIG_LIMIT (16u << 20)
#define PIPE_BLOCK   (256u << 10)

void pull_plan_free(struct pull_plan *p)
{
    ref_free(&p->ref);
    free(p->name);
    free(p->registry_name);
    registry_close(p->client);
    registry_image_free(&p->image);
    buf_free(&p->config);
    free(p->diff_ids);
    memset(p, 0, sizeof *p);
}

static int config_diff_ids(struct pull_plan *p, struct imgfs_err *err)
{
    json_error_t je;
    json_t *j = json_loadb((const char *)p->config.data, p->config.len, 0, &je);
    json_t *ids = json_object_get(json_object_get(j, "rootfs"), "diff_ids");
    int ret = 0;
    if (!json_is_object(j)) {
        ret = err_set(err, EPROTO, "the image config is not a JSON object: %s", je.text);
    } else if (!json_is_array(ids) || json_array_size(ids) != p->image.n_layers) {
        ret = err_set(err, EPROTO,
                      "the image config lists %zu diff_ids for the manifest's %zu layers",
                      json_is_array(ids) ? json_array_size(ids) : 0, p->image.n_layers);
    } else {
        p->diff_ids = xcalloc(p->image.n_layers + 1, sizeof *p->diff_ids);
        for (size_t i = 0; i < p->image.n_layers && !ret; i++) {
            const char *s = json_string_value(json_array_get(ids, i));
            if (!s || digest_parse(s, false, &p->diff_ids[i]) < 0)
                ret = err_set(err, EPROTO, "diff_id %zu of the image config is not sha256:<hex>",
                              i + 1);
        }
    }
    json_decref(j);
    return ret;
}

static char *registry_name_of(const struct pull_plan *p)
{
    cleanup_free char *repo = ref_familiar_repository(&p->ref);
    const struct digest *top =
        p->image.index.body.len ? &p->image.index.digest : &p->image.manifest.digest;
    char ds[DIGEST_STR_SIZE];
    digest_str(top, ds);
    return xasprintf("%s@%s", repo, ds);
}

int pull_resolve(const char *ref, const struct pull_options *o, struct pull_plan *out,
                 struct imgfs_err *err)
{
    memset(out, 0, sizeof *out);
    if (ref_parse(ref, &out->ref, err) < 0)
        return -1;
    out->name = ref_store_name(&out->ref);
    if (registry_open(&out->ref, &o->registry, &out->client, err) < 0)
        goto fail;
    char buf[DIGEST_STR_SIZE];
    if (registry_resolve(out->client, ref_registry_reference(&out->ref, buf), o->platform, 0,
                         &out->image, err) < 0)
        goto fail;
    if (registry_get_document(out->client, &out->image.config.digest, CONFIG_LIMIT, 0, &out->config,
                              err) < 0) {
        err_ctx(err, "getting the image config");
        goto fail;
    }
    if (out->image.config.size != out->config.len) {
        err_set(err, EBADMSG, "the config is %zu bytes, the manifest says %llu", out->config.len,
                (unsigned long long)out->image.config.size);
        goto fail;
    }
    if (config_diff_ids(out, err) < 0)
        goto fail;
    out->registry_name = registry_name_of(out);
    return 0;
fail:
    err_ctx(err, "%s", ref);
    pull_plan_free(out);
    return -1;
}

int pull_list_tags(const char *repo, const struct pull_options *o, char ***tags, size_t *n,
                   struct imgfs_err *err)
{
    struct ref r;
    if (ref_parse(repo, &r, err) < 0)
        return -1;
    struct registry_client *c = NULL;
    int ret = registry_open(&r, &o->registry, &c, err);
    if (ret == 0)
        ret = registry_list_tags(c, 0, tags, n, err);
    registry_close(c);
    ref_free(&r);
    return ret < 0 ? err_ctx(err, "%s", repo) : 0;
}

int pull_commit(struct store_batch *b, const struct pull_plan *p, const struct image_layer *layers,
                struct digest *out, struct imgfs_err *err)
{
    const struct registry_image *img = &p->image;
    struct image_source src = {
        .manifest = img->manifest.digest,
        .config = img->config.digest,
        .index = img->index.digest,
        .has_index = img->index.body.len > 0,
    };
    if (store_batch_put(b, STORE_BLOB, &src.manifest, img->manifest.body.data,
                        img->manifest.body.len, err) < 0 ||
        store_batch_put(b, STORE_BLOB, &src.config, p->config.data, p->config.len, err) < 0 ||
        (src.has_index && store_batch_put(b, STORE_BLOB, &src.index, img->index.body.data,
                                          img->index.body.len, err) < 0))
        return -1;
    if (image_commit_source(b, (const char *)p->config.data, p->config.len, layers, img->n_layers,
                            &src, p->name, out, err) < 0)
        return -1;
    if (strcmp(p->name, p->registry_name))
        store_batch_tag(b, p->registry_name, out);
    return 0;
}

/* ---- the layers ---- */

struct pull;

struct layer_job {
    struct pull *p;
    size_t index;
    /* the download, in its own thread, into a pipe the import reads */
    int fds[2];
    pthread_t downloader;
    struct digest_ctx *hash;
    uint64_t received;
    /* ROOT/tmp/pull-<hex>: the blob's bytes received so far, for a later pull to resume from */
    char *partial_path;
    int partial_fd;
    uint64_t resumed_from; /* bytes replayed from it, UINT64_MAX: the import stopped first */
    bool partial_kept;     /* the transfer broke: the file stays for the next pull */
    struct imgfs_err download_err;
    int download_rc;
    uint8_t *block;
    /* results */
    bool reused;
    struct image_layer layer;
    struct buf table;
    struct imgfs_err err;
    int rc;
};

struct pull {
    struct store *s;
    const struct pull_options *o;
    struct pull_plan *plan;
    struct layer_job *jobs;
    size_t next;
    bool failed; /* stop the other layers */
    pthread_mutex_t mu;
};

static void emit(struct pull *p, enum pull_event_kind kind, size_t layer, const struct digest *d,
                 uint64_t done, uint64_t total)
{
    if (!p->o->event)
        return;
    struct pull_event e = {.kind = kind,
                           .layer = layer,
                           .n_layers = p->plan->image.n_layers,
                           .digest = d,
                           .done = done,
                           .total = total};
    pthread_mutex_lock(&p->mu);
    p->o->event(p->o->event_ctx, &e);
    pthread_mutex_unlock(&p->mu);
}

static bool pull_failed(struct pull *p)
{
    pthread_mutex_lock(&p->mu);
    bool f = p->failed;
    pthread_mutex_unlock(&p->mu);
    return f;
}

/* Bytes of the blob, in order, from the partial file or the registry: hashed, imported. */
static int download_consume(struct layer_job *j, const void *data, size_t len)
{
    digest_ctx_update(j->hash, data, len);
    j->received += len;
    if (write_full(j->fds[1], data, len) < 0)
        return 1; /* the import stopped reading: it has its own error */
    const struct registry_descriptor *d = &j->p->plan->image.layers[j->index];
    emit(j->p, PULL_LAYER_PROGRESS, j->index, &d->digest, j->received, d->size);
    return 0;
}

static void partial_drop(struct layer_job *j)
{
    if (j->partial_fd < 0)
        return;
    unlink(j->partial_path);
    close(j->partial_fd);
    j->partial_fd = -1;
}

static int download_sink(void *ctx, const void *data, size_t len)
{
    struct layer_job *j = ctx;
    if (pull_failed(j->p))
        return 1;
    /* the file must hold exactly the bytes hashed so far: one that cannot be written is no file */
    if (j->partial_fd >= 0 && write_full(j->partial_fd, data, len) < 0)
        partial_drop(j);
    return download_consume(j, data, len);
}

/* A pull that broke mid-layer (the registry gone, the pull killed) left the bytes it had in
 * ROOT/tmp/pull-<hex>: replay them into the hash and the import, and return where the registry
 * must go on from. The file is locked for the download's life (a pull of the same blob beside
 * this one downloads without it); whatever it holds is checked with the rest against the blob's
 * digest, and a file that is not a prefix of the blob is unlinked when that check fails. gc
 * empties ROOT/tmp. */
static uint64_t partial_resume(struct layer_job *j, const struct registry_descriptor *d)
{
    char hex[DIGEST_STR_SIZE];
    digest_str(&d->digest, hex);
    j->partial_path = xasprintf("%s/tmp/pull-%s", store_root(j->p->s), strchr(hex, ':') + 1);
    j->partial_fd = open(j->partial_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (j->partial_fd < 0)
        return 0;
    struct stat st;
    if (flock(j->partial_fd, LOCK_EX | LOCK_NB) < 0 || fstat(j->partial_fd, &st) < 0) {
        close(j->partial_fd);
        j->partial_fd = -1;
        return 0;
    }
    uint64_t have = (uint64_t)st.st_size;
    if (have >= d->size) { /* no prefix of this blob: start again */
        if (ftruncate(j->partial_fd, 0) < 0)
            partial_drop(j);
        return 0;
    }
    cleanup_free uint8_t *block = xmalloc(PIPE_BLOCK);
    uint64_t done = 0;
    while (done < have) {
        size_t want = have - done < PIPE_BLOCK ? (size_t)(have - done) : PIPE_BLOCK;
        ssize_t n = pread(j->partial_fd, block, want, (off_t)done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        if (pull_failed(j->p) || download_consume(j, block, (size_t)n) != 0)
            return UINT64_MAX; /* the import stopped: nothing more to send */
        done += (uint64_t)n;
    }
    /* the next bytes go after the ones replayed (a short read: the rest is fetched again) */
    if (done < have && ftruncate(j->partial_fd, (off_t)done) < 0)
        partial_drop(j);
    else if (j->partial_fd >= 0 && lseek(j->partial_fd, (off_t)done, SEEK_SET) < 0)
        partial_drop(j);
    return done;
}

static void *download_main(void *arg)
{
    struct layer_job *j = arg;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    const struct registry_descriptor *d = &j->p->plan->image.layers[j->index];
    uint64_t from = partial_resume(j, d);
    j->resumed_from = from;
    if (from == UINT64_MAX)
        j->download_rc = err_set(&j->download_err, ECANCELED, "the import stopped");
    else
        j->download_rc = registry_get_blob(j->p->plan->client, &d->digest, from, d->size,
                                           download_sink, j, 0, &j->download_err);
    close(j->fds[1]);
    j->fds[1] = -1;
    return NULL;
}

static ssize_t pipe_read_cb(struct archive *a, void *ctx, const void **buf)
{
    struct layer_job *j = ctx;
    ssize_t n;
    do
        n = read(j->fds[0], j->block, PIPE_BLOCK);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        archive_set_error(a, errno, "reading the download");
    *buf = j->block;
    return n;
}

/* Stream layer j: download ‖ decompress ‖ import. */
static int layer_stream(struct layer_job *j, struct store_batch *b, struct imgfs_err *err)
{
    struct pull *p = j->p;
    const struct registry_descriptor *d = &p->plan->image.layers[j->index];
    char ds[DIGEST_STR_SIZE];
    digest_str(&d->digest, ds);
    if (pipe2(j->fds, O_CLOEXEC) < 0)
        return err_sys(err, errno, "creating a pipe");
    fcntl(j->fds[1], F_SETPIPE_SZ, 1 << 20);
    j->hash = digest_ctx_new();
    j->block = xmalloc(PIPE_BLOCK);
    if (pthread_create(&j->downloader, NULL, download_main, j) != 0) {
        close(j->fds[0]);
        close(j->fds[1]);
        return err_set(err, EAGAIN, "starting a download thread");
    }
    emit(p, PULL_LAYER_START, j->index, &d->digest, 0, d->size);
    struct import_stream *st;
    struct archive *tar;
    struct layer_build_result res = {0};
    struct imgfs_err import_err = {0}, stream_err = {0};
    int rc = import_stream_open_cb_hashed(j, pipe_read_cb, &st, &tar, &import_err);
    struct digest uncompressed = {{0}};
    if (rc == 0) {
        cleanup_free char *what = xasprintf("layer %zu (%s)", j->index + 1, ds);
        /* an eStargz layer's TOC and landmark are members of its tar, not files of the image
         * (a lazy pull's table from the TOC has neither): the same canonical layer either way */
        static const char *const estargz_members[] = {ESTARGZ_TOC_NAME, ESTARGZ_PREFETCH_NAME,
                                                      ESTARGZ_NOPREFETCH_NAME, NULL};
        bool estargz = registry_descriptor_annotation(d, ESTARGZ_ANNOTATION_TOC_DIGEST) != NULL;
        rc = import_layer_skip(b, tar, what, estargz ? estargz_members : NULL, &res, &import_err);
        if (import_stream_finish(st, &uncompressed, &stream_err) < 0)
            rc = -1;
    }
    /* let the download end (it may still be writing), then judge in order: the download's
     * error explains the others (a truncated stream, a tar that ends early) */
    for (;;) {
        ssize_t n = read(j->fds[0], j->block, PIPE_BLOCK);
        if (n > 0 || (n < 0 && errno == EINTR))
            continue;
        break;
    }
    close(j->fds[0]);
    pthread_join(j->downloader, NULL);
    struct digest got;
    digest_ctx_final(j->hash, &got);
    digest_ctx_free(j->hash);
    free(j->block);
    int ret = 0;
    if (j->download_rc < 0 && !(j->download_err.code == ECANCELED && rc < 0)) {
        *err = j->download_err;
        ret = -1;
    } else if (j->download_rc == 0 && j->received != d->size) {
        /* a short blob explains the truncated tar or gzip stream the import saw */
        ret =
            err_set(err, EBADMSG, "layer %zu (%s): %llu bytes served, the manifest says %llu",
                    j->index + 1, ds, (unsigned long long)j->received, (unsigned long long)d->size);
    } else if (stream_err.code) {
        ret = err_set(err, stream_err.code, "layer %zu (%s): %s", j->index + 1, ds, stream_err.msg);
    } else if (rc < 0) {
        *err = import_err;
        ret = -1;
    } else if (!digest_equal(&got, &d->digest)) {
        char gs[DIGEST_STR_SIZE];
        digest_str(&got, gs);
        ret = err_set(err, EBADMSG, "layer %zu: the blob served as %s has digest %s", j->index + 1,
                      ds, gs);
    } else if (!digest_equal(&uncompressed, &p->plan->diff_ids[j->index])) {
        char gs[DIGEST_STR_SIZE], want[DIGEST_STR_SIZE];
        digest_str(&uncompressed, gs);
        digest_str(&p->plan->diff_ids[j->index], want);
        ret = err_set(err, EBADMSG,
                      "layer %zu (%s): its uncompressed stream has digest %s, the config says %s",
                      j->index + 1, ds, gs, want);
    }
    /* only a transfer that broke is worth resuming: bytes that are all there, or that failed a
     * check, would fail the same way again */
    bool broke = j->download_rc < 0 && (j->download_err.code != ECANCELED || pull_failed(p));
    j->partial_kept = ret < 0 && broke && j->partial_fd >= 0;
    if (j->partial_kept) {
        close(j->partial_fd);
        j->partial_fd = -1;
    }
    partial_drop(j);
    free(j->partial_path);
    j->partial_path = NULL;
    if (ret == 0) {
        j->layer = (struct image_layer){.diff_id = res.diff_id, .size = res.size};
        j->table = res.table;
    } else {
        buf_free(&res.table);
    }
    return ret;
}

static int layer_pull(struct layer_job *j)
{
    for (bool again = true;; again = false) {
        struct store_batch *b;
        if (store_batch_begin(j->p->s, &b, &j->err) < 0)
            return -1;
        if (layer_stream(j, b, &j->err) == 0)
            /* the content is committed unnamed; the pull's own batch, open until the end, keeps
             * gc away until the image that references it is named */
            return store_batch_commit(b, &j->err);
        store_batch_abort(b);
        /* resumed from kept bytes that turned out not to be the blob's (a crash left garbage,
         * the blob changed): they are dropped; download it all, once */
        if (!again || j->resumed_from == 0 || j->partial_kept || pull_failed(j->p))
            return -1;
        j->received = 0;
        j->download_rc = 0;
        err_clear(&j->download_err);
        err_clear(&j->err);
    }
}

static void *worker_main(void *arg)
{
    struct pull *p = arg;
    for (;;) {
        pthread_mutex_lock(&p->mu);
        size_t i = p->next;
        while (i < p->plan->image.n_layers && p->jobs[i].reused)
            i++;
        p->next = i + 1;
        bool stop = p->failed || i >= p->plan->image.n_layers;
        pthread_mutex_unlock(&p->mu);
        if (stop)
            return NULL;
        struct layer_job *j = &p->jobs[i];
        j->rc = layer_pull(j);
        if (j->rc < 0) {
            pthread_mutex_lock(&p->mu);
            p->failed = true;
            pthread_mutex_unlock(&p->mu);
        } else {
            emit(p, PULL_LAYER_DONE, i, &p->plan->image.layers[i].digest,
                 p->plan->image.layers[i].size, p->plan->image.layers[i].size);
        }
    }
}

/* Layers pulled before (by any image): a stored source manifest lists the same blob digest, and
 * the canonical layer it became is still in the store. */
struct reuse_scan {
    struct store_read *r;
    struct pull *p;
};

static int reuse_scan_image(void *ctx, const struct store_image_entry *e)
{
    struct reuse_scan *rs = ctx;
    struct image img;
    struct imgfs_err ignored;
    if (image_load(rs->r, &e->manifest, &img, &ignored) < 0)
        return 0;
    const void *data;
    size_t len;
    struct registry_image served = {0};
    if (img.has_source &&
        store_get(rs->r, STORE_BLOB, &img.source.manifest, &data, &len, &ignored) == 0 &&
        registry_parse_manifest(data, len, &served, &ignored) == 0 &&
        served.n_layers == img.n_layers) {
        struct pull *p = rs->p;
        for (size_t i = 0; i < p->plan->image.n_layers; i++) {
            struct layer_job *j = &p->jobs[i];
            if (j->reused)
                continue;
            for (size_t k = 0; k < served.n_layers; k++) {
                if (!digest_equal(&served.layers[k].digest, &p->plan->image.layers[i].digest))
                    continue;
                const void *table;
                size_t tlen;
                if (store_get(rs->r, STORE_LAYER, &img.layers[k], &table, &tlen, &ignored) < 0)
                    continue;
                j->reused = true;
                j->layer =
                    (struct image_layer){.diff_id = img.layers[k], .size = img.layer_sizes[k]};
                buf_append(&j->table, table, tlen);
                break;
            }
        }
    }
    registry_image_free(&served);
    image_free(&img);
    return 0;
}

static int find_reusable(struct pull *p, struct store_read *r)
{
    struct reuse_scan rs = {.r = r, .p = p};
    return store_image_foreach(r, reuse_scan_image, &rs);
}

/* Pull the layers of p->jobs not marked reused, `jobs` threads at a time. */
static int run_layers(struct pull *p, const char *ref, struct imgfs_err *err)
{
    size_t n = p->plan->image.n_layers;
    unsigned jobs = p->o->jobs ? p->o->jobs : DEFAULT_JOBS;
    if (jobs > n)
        jobs = (unsigned)n;
    pthread_t *threads = xcalloc(jobs + 1, sizeof *threads);
    unsigned started = 0;
    for (; started < jobs; started++)
        if (pthread_create(&threads[started], NULL, worker_main, p) != 0)
            break;
    if (!started && n)
        worker_main(p);
    for (unsigned t = 0; t < started; t++)
        pthread_join(threads[t], NULL);
    free(threads);
    for (size_t i = 0; i < n; i++) {
        if (!p->jobs[i].reused && p->jobs[i].rc < 0 && p->jobs[i].err.code) {
            *err = p->jobs[i].err;
            return err_ctx(err, "%s", ref);
        }
    }
    if (p->failed)
        return err_set(err, EIO, "%s: a layer failed", ref);
    return 0;
}

static void pull_init(struct pull *p, struct store *s, const struct pull_options *o,
                      struct pull_plan *plan)
{
    *p = (struct pull){.s = s, .o = o, .plan = plan};
    pthread_mutex_init(&p->mu, NULL);
    size_t n = plan->image.n_layers;
    p->jobs = xcalloc(n + 1, sizeof *p->jobs);
    for (size_t i = 0; i < n; i++)
        p->jobs[i] = (struct layer_job){.p = p, .index = i, .fds = {-1, -1}, .partial_fd = -1};
}

static void pull_fini(struct pull *p)
{
    for (size_t i = 0; i < p->plan->image.n_layers; i++)
        buf_free(&p->jobs[i].table);
    free(p->jobs);
    pthread_mutex_destroy(&p->mu);
}

int pull_layers(struct store *s, const struct pull_options *o, struct pull_plan *plan,
                const bool *want, struct image_layer *layers, struct buf *tables,
                struct imgfs_err *err)
{
    struct pull p;
    pull_init(&p, s, o, plan);
    size_t n = plan->image.n_layers;
    for (size_t i = 0; i < n; i++)
        p.jobs[i].reused = !want[i];
    struct store_read *r;
    int ret = -1;
    if (store_read_begin(s, &r, err) < 0)
        goto out;
    find_reusable(&p, r); /* a blob pulled whole before, by any image */
    store_read_end(r);
    for (size_t i = 0; i < n; i++)
        if (want[i] && p.jobs[i].reused)
            emit(&p, PULL_LAYER_EXISTS, i, &plan->image.layers[i].digest,
                 plan->image.layers[i].size, plan->image.layers[i].size);
    const char *ref = plan->name;
    if (run_layers(&p, ref, err) < 0)
        goto out;
    for (size_t i = 0; i < n; i++) {
        if (!want[i])
            continue;
        layers[i] = p.jobs[i].layer;
        tables[i] = p.jobs[i].table;
        p.jobs[i].table = (struct buf){0};
        layers[i].table = tables[i].data;
        layers[i].table_len = tables[i].len;
    }
    ret = 0;
out:
    pull_fini(&p);
    return ret;
}

int pull_image(struct store *s, const char *ref, const struct pull_options *o, struct digest *out,
               char **name, struct imgfs_err *err)
{
    struct pull_plan plan;
    if (pull_resolve(ref, o, &plan, err) < 0)
        return -1;
    struct pull p;
    pull_init(&p, s, o, &plan);
    const struct registry_image *img = &plan.image;
    const struct digest *top = img->index.body.len ? &img->index.digest : &img->manifest.digest;
    emit(&p, PULL_RESOLVED, 0, top, 0, 0);
    /* The pull's own batch: open from here to the end, it holds the store's shared lock, so gc
     * cannot free the layers committed meanwhile. */
    struct store_batch *b = NULL;
    int ret = -1;
    size_t n = img->n_layers;
    if (store_batch_begin(s, &b, err) < 0)
        goto out;
    struct store_read *r;
    if (store_read_begin(s, &r, err) < 0)
        goto out;
    struct digest have;
    struct imgfs_err ignored;
    /* up to date: the registry digest names an image made from this very manifest (an index's
     * digest names the platform pulled last) */
    bool up_to_date = false;
    struct image had;
    if (store_image_resolve(r, plan.registry_name, &have, &ignored) == 0 &&
        image_load(r, &have, &had, &ignored) == 0) {
        up_to_date = had.has_source && digest_equal(&had.source.manifest, &img->manifest.digest);
        image_free(&had);
    }
    if (!up_to_date)
        find_reusable(&p, r);
    store_read_end(r);
    if (up_to_date) {
        emit(&p, PULL_UP_TO_DATE, 0, top, 0, 0);
        store_batch_tag(b, plan.name, &have);
        if (store_batch_commit(b, err) < 0) {
            b = NULL;
            goto out;
        }
        b = NULL;
        if (out)
            *out = have;
        ret = 0;
        goto done;
    }
    for (size_t i = 0; i < n; i++)
        if (p.jobs[i].reused)
            emit(&p, PULL_LAYER_EXISTS, i, &img->layers[i].digest, img->layers[i].size,
                 img->layers[i].size);
    if (run_layers(&p, ref, err) < 0)
        goto out;
    struct image_layer *layers = xcalloc(n + 1, sizeof *layers);
    for (size_t i = 0; i < n; i++) {
        layers[i] = p.jobs[i].layer;
        layers[i].table = p.jobs[i].table.data;
        layers[i].table_len = p.jobs[i].table.len;
    }
    struct digest d;
    int rc = pull_commit(b, &plan, layers, &d, err);
    free(layers);
    if (rc < 0)
        goto out;
    rc = store_batch_commit(b, err);
    b = NULL;
    if (rc < 0)
        goto out;
    if (out)
        *out = d;
    ret = 0;
done:
    emit(&p, PULL_DONE, 0, top, 0, 0);
    if (name)
        *name = xstrdup(plan.name);
out:
    if (b)
        store_batch_abort(b);
    pull_fini(&p);
    pull_plan_free(&plan);
    return ret;
}
