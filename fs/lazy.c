#include "lazy.h"

#include "estargz.h"
#include "image.h"
#include "layer.h"
#include "pull.h"
#include "reference.h"
#include "store.h"
#include "view.h"

#include <archive.h>
#include <archive_entry.h>
#include <jansson.h>

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#define SOURCE_MAX 1024
/* readahead windows (compressed bytes): the first, and the most a stream grows to */
#define RA_MIN (64u << 10)
#define RA_MAX (1u << 20)

/* One registry repository chunks come from, with its client (opened at first use). */
struct source {
    char *name; /* "host[:port]/repository" */
    struct registry_client *client;
    char *ca_file, *auth_file; /* remembered for its registry (lazy_registry_remember) */
    struct source *next;
};

/* A chunk being fetched by some thread. */
struct flight {
    struct digest d;
    struct flight *next;
};

/* Readahead in a blob. A member of the blob's index: where a remote chunk of the view lies, and
 * whether it is the first or the last chunk of its file. */
struct ra_member {
    uint64_t offset, end;
    struct digest d;
    uint32_t blob; /* into lazy.ra_blobs */
    bool file_start, file_end;
    uint64_t ino;          /* for the trace (IMGFS_LAZY_TRACE) */
    uint32_t index, count; /* the chunk's place in its file */
};

/* A stream of fetches that follow each other in one blob: where the last one ended and the
 * readahead it was given. */
struct ra_stream {
    uint32_t blob;
    uint64_t end;
    uint32_t window;
};

#define RA_STREAMS 4

/* A file read in pieces (the page faults of a mapped binary): after a second read of it that
 * misses, the rest of its remote members are fetched at once, up to RA_FILE_MAX compressed
 * bytes. RA_FILES files are remembered (under mu). */
#define RA_FILES    8
#define RA_FILE_MAX (32u << 20)
struct ra_file {
    uint32_t blob;
    uint64_t start; /* 0 = unused slot; else 1 + the offset of the file's first remote member */
};

struct lazy {
    struct store *s;
    struct lazy_options o;
    char *image;
    pthread_mutex_t mu;
    pthread_cond_t landed; /* a fetch ended: waiters look again */
    struct flight *flights;
    struct source *sources;
    atomic_uint foreground; /* reads fetching right now: the background yields to them */
    atomic_uint_least64_t requests, bytes, chunks, chunk_bytes, failures;
    /* background prefetch */
    pthread_t bg;
    bool bg_running;
    atomic_bool stop;
    const struct view *bg_view;
    enum lazy_prefetch bg_what;
    uint64_t progress_total; /* lazy_complete: the remote bytes it set out to fetch */
    /* readahead (lazy_readahead_index): the remote members of the view in blob order, and the
     * recent streams (under mu) */
    struct ra_member *ra;
    size_t n_ra;
    struct digest *ra_blobs;
    size_t n_ra_blobs;
    struct ra_stream streams[RA_STREAMS];
    size_t next_stream;
    struct ra_file files[RA_FILES];
    size_t next_file;
    FILE *trace;
    int trace_fd; /* IMGFS_LAZY_TRACE: one line per fetched chunk and per request, or -1 */
    uint64_t t0;  /* lazy_attach's time, for the trace */
};

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* IMGFS_LAZY_TRACE: a line to the trace file (one write: O_APPEND keeps threads' lines whole) */
static void trace(struct lazy *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void trace(struct lazy *l, const char *fmt, ...)
{
    if (l->trace_fd < 0)
        return;
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    int len = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (len > 0 && (size_t)len < sizeof line && write(l->trace_fd, line, (size_t)len) < 0)
        return;
}

static struct flight *flight_find(struct lazy *l, const struct digest *d)
{
    for (struct flight *f = l->flights; f; f = f->next)
        if (digest_equal(&f->d, d))
            return f;
    return NULL;
}

static void flight_remove(struct lazy *l, const struct digest *d)
{
    for (struct flight **p = &l->flights; *p; p = &(*p)->next)
        if (digest_equal(&(*p)->d, d)) {
            struct flight *f = *p;
            *p = f->next;
            free(f);
            return;
        }
}

/* ---- what a lazy pull was told about a registry's TLS ---- */

static char *remembered_path(const char *root, const char *host)
{
    return xasprintf("%s/registries/%s.json", root, host);
}

int lazy_registry_remember(const char *root, const char *host, const struct registry_options *o,
                           struct imgfs_err *err)
{
    if (!*host || strchr(host, '/') || host[0] == '.')
        return err_set(err, EINVAL, "`%s` is not a registry host", host);
    int tls = o->tls_verify;
    if (tls == REGISTRY_TLS_AUTO && registry_host_insecure(host))
        tls = REGISTRY_TLS_NO_VERIFY; /* insecure then: the same later, whatever the config */
    cleanup_free char *path = remembered_path(root, host);
    if (tls == REGISTRY_TLS_AUTO && !o->ca_file && !o->auth_file) {
        if (unlink(path) < 0 && errno != ENOENT)
            return err_sys(err, errno, "removing `%s`", path);
        return 0;
    }
    cleanup_free char *dir = xasprintf("%s/registries", root);
    if (mkdir_p(dir, 0700, err) < 0)
        return -1;
    json_t *j = json_pack("{s:s}", "tls-verify",
                          tls == REGISTRY_TLS_AUTO     ? "auto"
                          : tls == REGISTRY_TLS_VERIFY ? "true"
                                                       : "false");
    if (o->ca_file)
        json_object_set_new(j, "ca-file", json_string(o->ca_file));
    if (o->auth_file)
        json_object_set_new(j, "auth-file", json_string(o->auth_file));
    char *text = json_dumps(j, JSON_SORT_KEYS);
    json_decref(j);
    int rc = write_file_atomic(path, text, strlen(text), 0600, err);
    free(text);
    return rc < 0 ? err_ctx(err, "remembering the settings of %s", host) : 0;
}

/* What lazy_registry_remember kept for `host`, applied to `ro` where it says nothing (TLS: no
 * --tls-verify and no --ca-file; credentials: no --authfile). The strings go to *ca_file and
 * *auth_file (allocated; they must outlive the client). Nothing kept, or unreadable: the
 * defaults. */
static void registry_recall(const char *root, const char *host, struct registry_options *ro,
                            char **ca_file, char **auth_file)
{
    cleanup_free char *path = remembered_path(root, host);
    struct buf b = {0};
    struct imgfs_err ignored;
    if (read_file(path, 64 << 10, &b, &ignored) < 0)
        return;
    json_error_t je;
    json_t *j = json_loadb((const char *)b.data, b.len, 0, &je);
    buf_free(&b);
    const char *tls = json_string_value(json_object_get(j, "tls-verify"));
    const char *ca = json_string_value(json_object_get(j, "ca-file"));
    const char *auth = json_string_value(json_object_get(j, "auth-file"));
    if (tls && ro->tls_verify == REGISTRY_TLS_AUTO && !ro->ca_file) {
        ro->tls_verify = !strcmp(tls, "true")    ? REGISTRY_TLS_VERIFY
                         : !strcmp(tls, "false") ? REGISTRY_TLS_NO_VERIFY
                                                 : REGISTRY_TLS_AUTO;
        if (ca && *ca)
            ro->ca_file = *ca_file = xstrdup(ca);
    }
    if (auth && *auth && !ro->auth_file)
        ro->auth_file = *auth_file = xstrdup(auth);
    json_decref(j);
}

/* The client for a source, opened once and shared (registry clients are thread-safe). */
static int source_client(struct lazy *l, const char *name, struct registry_client **out,
                         struct imgfs_err *err)
{
    pthread_mutex_lock(&l->mu);
    struct source *src = l->sources;
    while (src && strcmp(src->name, name))
        src = src->next;
    if (!src) {
        src = xcalloc(1, sizeof *src);
        src->name = xstrdup(name);
        src->next = l->sources;
        l->sources = src;
    }
    if (!src->client) {
        struct ref ref;
        if (ref_parse(name, &ref, err) < 0) {
            pthread_mutex_unlock(&l->mu);
            return err_ctx(err, "the registry repository `%s`", name);
        }
        struct registry_options ro = l->o.registry;
        registry_recall(store_root(l->s), ref.domain, &ro, &src->ca_file, &src->auth_file);
        int rc = registry_open(&ref, &ro, &src->client, err);
        ref_free(&ref);
        if (rc < 0) {
            pthread_mutex_unlock(&l->mu);
            return -1;
        }
    }
    *out = src->client;
    pthread_mutex_unlock(&l->mu);
    return 0;
}

struct want {
    struct digest d;
    struct store_remote loc;
    char source[SOURCE_MAX];
    bool extra; /* readahead: claimed here, nobody asked for it */
};

static int want_cmp(const void *a, const void *b)
{
    const struct want *x = a, *y = b;
    int c = strcmp(x->source, y->source);
    if (!c)
        c = memcmp(x->loc.blob.b, y->loc.blob.b, DIGEST_LEN);
    if (!c)
        c = x->loc.offset < y->loc.offset ? -1 : x->loc.offset > y->loc.offset;
    if (!c)
        c = x->loc.inner < y->loc.inner ? -1 : x->loc.inner > y->loc.inner;
    return c;
}

/* A run: wants[0..n) of one blob, adjacent members, fetched as one range. */
struct run {
    struct want *w;
    size_t n;
    uint64_t start, end;
    uint8_t *buf;
};

/* Decompress, verify and store the chunks of a fetched run. */
static int store_run(struct lazy *l, const struct run *run, struct imgfs_err *err)
{
    struct want *w = run->w;
    size_t n = run->n;
    int ret = -1;
    uint64_t total = 0;
    size_t k = 0; /* chunks in in[] */
    struct store_chunk_in *in = xcalloc(n, sizeof *in);
    for (size_t i = 0; i < n; i++) {
        struct estargz_chunk ch = {.digest = w[i].d,
                                   .offset = w[i].loc.offset,
                                   .end = w[i].loc.end,
                                   .inner = w[i].loc.inner,
                                   .size = w[i].loc.size};
        void *data = xmalloc(ch.size ? ch.size : 1);
        in[k] = (struct store_chunk_in){.digest = w[i].d, .data = data, .len = ch.size};
        struct imgfs_err e2 = {0};
        if (estargz_chunk_extract(run->buf + (ch.offset - run->start), (size_t)(ch.end - ch.offset),
                                  &ch, data, w[i].extra ? &e2 : err) < 0) {
            if (w[i].extra) {
                /* readahead nobody waits for: not stored; a read of it fetches it again and
                 * fails then, with the reason */
                free(data);
                continue;
            }
            err_ctx(err, "blob from %s", w[i].source);
            k++;
            goto out;
        }
        k++;
        total += ch.size;
    }
    if (store_chunks_put(l->s, in, k, err) < 0)
        goto out;
    atomic_fetch_add(&l->chunks, k);
    atomic_fetch_add(&l->chunk_bytes, total);
    ret = 0;
out:
    for (size_t i = 0; i < k; i++)
        free((void *)in[i].data);
    free(in);
    return ret;
}

/* Fetch runs[0..n) of one blob in one request (a multi-range one when n > 1: the registry
 * client falls back to one range at a time for a registry that answers those badly), then store
 * each run. */
static int fetch_runs(struct lazy *l, struct run *runs, size_t n, uint64_t deadline,
                      struct imgfs_err *err)
{
    struct want *w0 = runs[0].w;
    struct registry_client *c = NULL;
    if (source_client(l, w0->source, &c, err) < 0)
        return -1;
    uint64_t now = now_ms();
    if (now >= deadline)
        return err_set(err, ETIMEDOUT, "the fetch budget ran out");
    struct registry_range *ranges = xcalloc(n, sizeof *ranges);
    uint64_t bytes = 0;
    for (size_t i = 0; i < n; i++) {
        size_t len = (size_t)(runs[i].end - runs[i].start);
        runs[i].buf = xmalloc(len);
        ranges[i] =
            (struct registry_range){.offset = runs[i].start, .len = len, .buf = runs[i].buf};
        bytes += len;
    }
    atomic_fetch_add(&l->requests, 1);
    int ret = -1;
    uint64_t t_req = now_ms();
    if (registry_get_ranges(c, &w0->loc.blob, ranges, n, (unsigned)(deadline - now), err) < 0) {
        char bs[DIGEST_STR_SIZE];
        digest_str(&w0->loc.blob, bs);
        if (n == 1)
            err_ctx(err, "fetching bytes %llu-%llu of blob %s from %s",
                    (unsigned long long)runs[0].start, (unsigned long long)runs[0].end - 1, bs,
                    w0->source);
        else
            err_ctx(err, "fetching %zu ranges (bytes %llu-%llu) of blob %s from %s", n,
                    (unsigned long long)runs[0].start, (unsigned long long)runs[n - 1].end - 1, bs,
                    w0->source);
        goto out;
    }
    atomic_fetch_add(&l->bytes, bytes);
    uint64_t t_got = now_ms();
    ret = 0;
    for (size_t i = 0; i < n && ret == 0; i++)
        ret = store_run(l, &runs[i], err);
    trace(l, "R %llu %llu %llu ranges=%zu bytes=%llu\n", (unsigned long long)(t_req - l->t0),
          (unsigned long long)(t_got - l->t0), (unsigned long long)(now_ms() - l->t0), n,
          (unsigned long long)bytes);
out:
    for (size_t i = 0; i < n; i++) {
        free(runs[i].buf);
        runs[i].buf = NULL;
    }
    free(ranges);
    return ret;
}

/* ---- readahead in a blob ---- */

static int ra_member_cmp(const void *a, const void *b)
{
    const struct ra_member *x = a, *y = b;
    if (x->blob != y->blob)
        return x->blob < y->blob ? -1 : 1;
    if (x->offset != y->offset)
        return x->offset < y->offset ? -1 : 1;
    return memcmp(x->d.b, y->d.b, DIGEST_LEN);
}

static uint32_t ra_blob(struct lazy *l, const struct digest *blob, bool add)
{
    for (size_t i = 0; i < l->n_ra_blobs; i++)
        if (digest_equal(&l->ra_blobs[i], blob))
            return (uint32_t)i;
    if (!add)
        return UINT32_MAX;
    l->ra_blobs = xrealloc(l->ra_blobs, (l->n_ra_blobs + 1) * sizeof *l->ra_blobs);
    l->ra_blobs[l->n_ra_blobs] = *blob;
    return (uint32_t)l->n_ra_blobs++;
}

int lazy_readahead_index(struct lazy *l, const struct view *v, struct imgfs_err *err)
{
    struct store_read *r;
    if (store_read_begin(l->s, &r, err) < 0)
        return -1;
    size_t cap = 0;
    for (uint64_t ino = 1; ino <= v->hdr->n_inodes; ino++) {
        const struct view_inode *in = view_inode(v, ino);
        if (!S_ISREG(in->mode))
            continue;
        for (uint32_t i = 0; i < in->count; i++) {
            const struct digest *d = &v->extents[in->first + i].chunk;
            struct store_remote loc;
            char src[SOURCE_MAX];
            struct imgfs_err ignored;
            if (store_chunk_present(r, d) ||
                store_remote_get(r, d, &loc, src, sizeof src, &ignored) < 0)
                continue;
            if (l->n_ra == cap) {
                cap = cap ? cap * 2 : 1024;
                l->ra = xrealloc(l->ra, cap * sizeof *l->ra);
            }
            l->ra[l->n_ra++] = (struct ra_member){.offset = loc.offset,
                                                  .end = loc.end,
                                                  .d = *d,
                                                  .blob = ra_blob(l, &loc.blob, true),
                                                  .file_start = i == 0,
                                                  .file_end = i + 1 == in->count,
                                                  .ino = ino,
                                                  .index = i,
                                                  .count = in->count};
        }
    }
    store_read_end(r);
    if (l->n_ra)
        qsort(l->ra, l->n_ra, sizeof *l->ra, ra_member_cmp);
    /* a chunk two files share is one member (it starts or ends a file if it does either's) */
    size_t k = 0;
    for (size_t i = 0; i < l->n_ra; i++) {
        if (k && !ra_member_cmp(&l->ra[k - 1], &l->ra[i])) {
            l->ra[k - 1].file_start |= l->ra[i].file_start;
            l->ra[k - 1].file_end |= l->ra[i].file_end;
            continue;
        }
        l->ra[k++] = l->ra[i];
    }
    l->n_ra = k;
    return 0;
}

/* The first member of blob `blob` at or after `offset`. */
static size_t ra_find(const struct lazy *l, uint32_t blob, uint64_t offset)
{
    size_t lo = 0, hi = l->n_ra;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const struct ra_member *m = &l->ra[mid];
        if (m->blob < blob || (m->blob == blob && m->offset < offset))
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Claim member x of `blob` for this fetch (under mu) as readahead: false when it is present, in
 * flight, asked for already, or comes from another source or blob. */
static bool ra_take(struct lazy *l, struct store_read *r, const struct ra_member *x,
                    const struct digest *blob, const char *source, struct want **wp, size_t *k,
                    size_t *cap)
{
    if (store_chunk_present(r, &x->d) || flight_find(l, &x->d))
        return false;
    for (size_t q = 0; q < *k; q++)
        if (digest_equal(&(*wp)[q].d, &x->d))
            return false;
    struct want nw = {.d = x->d, .extra = true};
    struct imgfs_err ignored;
    if (store_remote_get(r, &x->d, &nw.loc, nw.source, sizeof nw.source, &ignored) < 0 ||
        strcmp(nw.source, source) || !digest_equal(&nw.loc.blob, blob))
        return false;
    struct flight *f = xmalloc(sizeof *f);
    f->d = x->d;
    f->next = l->flights;
    l->flights = f;
    if (*k == *cap) {
        *cap *= 2;
        *wp = xrealloc(*wp, *cap * sizeof **wp);
    }
    (*wp)[(*k)++] = nw;
    return true;
}

static bool ra_adjacent(const struct ra_member *a, const struct ra_member *b)
{
    return a->blob == b->blob && (b->offset == a->end || b->offset == a->offset);
}

/* A run that is part of a file, not all of it (from the member at `start` to the one
 * at `last`): the page faults of a mapped binary come one 4 KiB page at a time, in no order, and
 * each that lands in an absent chunk was one round trip (`go version`: about 130 in a row, most
 * of its start-up). The first such read of a file is remembered; at the second, the file's other
 * remote members (the adjacent ones around the run, up to RA_FILE_MAX) are claimed too, and
 * fetched with it in a few large requests. A file read once in part (a header looked at) fetches
 * nothing more. */
static void ra_file_rest(struct lazy *l, struct store_read *r, uint32_t b, uint64_t start,
                         uint64_t last, const struct digest *blob, const char *source,
                         struct want **wp, size_t *k, size_t *cap)
{
    size_t lo = ra_find(l, b, start), hi = ra_find(l, b, last);
    if (lo >= l->n_ra || l->ra[lo].blob != b || l->ra[lo].offset != start || hi >= l->n_ra ||
        l->ra[hi].blob != b || l->ra[hi].offset != last)
        return;
    while (lo > 0 && !l->ra[lo].file_start && !l->ra[lo - 1].file_end &&
           ra_adjacent(&l->ra[lo - 1], &l->ra[lo]))
        lo--;
    while (!l->ra[hi].file_end && hi + 1 < l->n_ra && ra_adjacent(&l->ra[hi], &l->ra[hi + 1]))
        hi++;
    uint64_t key = l->ra[lo].offset + 1;
    struct ra_file *seen = NULL;
    for (size_t q = 0; q < RA_FILES && !seen; q++)
        if (l->files[q].start == key && l->files[q].blob == b)
            seen = &l->files[q];
    if (!seen) {
        l->files[l->next_file++ % RA_FILES] = (struct ra_file){.blob = b, .start = key};
        return;
    }
    seen->start = 0;
    uint64_t bytes = 0;
    for (size_t q = lo; q <= hi && bytes < RA_FILE_MAX; q++)
        if (ra_take(l, r, &l->ra[q], blob, source, wp, k, cap))
            bytes += l->ra[q].end - l->ra[q].offset;
}

/* Readahead for the runs of w[0..*k) (sorted by place): a run that is a whole file (it starts with
 * a file's first chunk and ends with a file's last) and continues a stream (it starts where one of
 * the last RA_STREAMS fetches ended in its blob: the file before it in the layer was read just
 * before) takes the members that follow it in the blob, up to the stream's window, which doubles
 * from RA_MIN to RA_MAX while the stream goes on. A program that reads the files of a directory
 * one after the other (the go command hashing a package's sources, the compiler its imports) then
 * makes one request per window instead of one per file; the page faults of a mapped binary, and
 * one large file read to its end, take no window (a file read in parts gets ra_file_rest). The
 * members added (extra: claimed here, under the single flight, and released by the caller) go to
 * w[*k..). */
static void readahead(struct lazy *l, struct store_read *r, struct want **wp, size_t *k,
                      size_t *cap)
{
    size_t n = *k;
    for (size_t i = 0; i < n;) {
        struct want *w = *wp;
        size_t j = i + 1;
        uint64_t end = w[i].loc.end;
        while (j < n && digest_equal(&w[j].loc.blob, &w[i].loc.blob) &&
               (w[j].loc.offset == end || w[j].loc.offset == w[j - 1].loc.offset)) {
            if (w[j].loc.end > end)
                end = w[j].loc.end;
            j++;
        }
        uint64_t start = w[i].loc.offset, last = w[j - 1].loc.offset;
        struct digest blob = w[i].loc.blob;
        char source[SOURCE_MAX];
        snprintf(source, sizeof source, "%s", w[i].source);
        i = j;
        uint32_t b = ra_blob(l, &blob, false);
        if (b == UINT32_MAX)
            continue;
        bool file_start = false, file_end = false;
        for (size_t q = ra_find(l, b, start);
             q < l->n_ra && l->ra[q].blob == b && l->ra[q].offset == start; q++)
            file_start |= l->ra[q].file_start;
        size_t m = ra_find(l, b, last);
        for (; m < l->n_ra && l->ra[m].blob == b && l->ra[m].offset == last; m++)
            file_end |= l->ra[m].file_end;
        pthread_mutex_lock(&l->mu);
        struct ra_stream *s = NULL;
        for (size_t q = 0; q < RA_STREAMS && !s; q++)
            if (l->streams[q].end && l->streams[q].blob == b && l->streams[q].end == start)
                s = &l->streams[q];
        uint32_t window = 0;
        if (s && file_start && file_end)
            window = s->window * 2 < RA_MIN   ? RA_MIN
                     : s->window * 2 > RA_MAX ? RA_MAX
                                              : s->window * 2;
        uint64_t reach = end;
        if (!(file_start && file_end))
            ra_file_rest(l, r, b, start, last, &blob, source, wp, k, cap);
        for (; window && m < l->n_ra && l->ra[m].blob == b && l->ra[m].end - end <= window; m++) {
            const struct ra_member *x = &l->ra[m];
            if (x->offset != reach && x->offset != l->ra[m - 1].offset)
                break; /* not adjacent: a member in between is present */
            if (!ra_take(l, r, x, &blob, source, wp, k, cap))
                break;
            if (x->end > reach)
                reach = x->end;
        }
        if (!s)
            s = &l->streams[l->next_stream++ % RA_STREAMS];
        *s = (struct ra_stream){.blob = b, .end = reach, .window = reach > end ? window : 0};
        pthread_mutex_unlock(&l->mu);
    }
}

/* Fetch chunks this thread claimed: look up their places, group them into runs, fetch each.
 * With `ahead`, a run may take the members that follow it (readahead). */
static int fetch_claimed(struct lazy *l, const struct digest *chunks, size_t n, bool ahead,
                         uint64_t deadline, struct imgfs_err *err)
{
    size_t cap = n ? n : 1;
    struct want *w = xcalloc(cap, sizeof *w);
    struct run *runs = NULL;
    struct store_read *r;
    int ret = -1;
    size_t k = 0;
    if (store_read_begin(l->s, &r, err) < 0)
        goto out;
    for (size_t i = 0; i < n; i++) {
        w[k].d = chunks[i];
        if (store_chunk_present(r, &chunks[i]))
            continue; /* stored since it was found absent */
        if (store_remote_get(r, &chunks[i], &w[k].loc, w[k].source, sizeof w[k].source, err) < 0) {
            store_read_end(r);
            goto out;
        }
        if (w[k].loc.size > ESTARGZ_CHUNK_MAX ||
            w[k].loc.end - w[k].loc.offset > LAZY_RUN_MAX * 4) {
            store_read_end(r);
            err_set(err, EIO, "a remote record is out of bounds");
            goto out;
        }
        k++;
    }
    qsort(w, k, sizeof *w, want_cmp);
    if (ahead && l->n_ra) {
        size_t asked = k;
        readahead(l, r, &w, &k, &cap);
        if (k > asked)
            qsort(w, k, sizeof *w, want_cmp);
    }
    store_read_end(r);
    if (l->trace_fd >= 0)
        for (size_t i = 0; i < k; i++) {
            uint32_t b = ra_blob(l, &w[i].loc.blob, false);
            size_t q = b == UINT32_MAX ? l->n_ra : ra_find(l, b, w[i].loc.offset);
            bool in = q < l->n_ra && l->ra[q].blob == b && l->ra[q].offset == w[i].loc.offset;
            trace(l, "C %llu %s b=%u %llu %llu ino=%llu %u/%u\n",
                  (unsigned long long)(now_ms() - l->t0), w[i].extra ? "extra" : "asked", b,
                  (unsigned long long)w[i].loc.offset, (unsigned long long)w[i].loc.end,
                  in ? (unsigned long long)l->ra[q].ino : 0ull, in ? l->ra[q].index : 0,
                  in ? l->ra[q].count : 0);
        }
    /* runs of adjacent members (the next starts where this one ends, or is the same member) */
    runs = xcalloc(k + 1, sizeof *runs);
    size_t n_runs = 0;
    for (size_t i = 0; i < k;) {
        size_t j = i + 1;
        uint64_t end = w[i].loc.end;
        while (j < k && !strcmp(w[j].source, w[i].source) &&
               digest_equal(&w[j].loc.blob, &w[i].loc.blob) &&
               (w[j].loc.offset == end || w[j].loc.offset == w[j - 1].loc.offset) &&
               w[j].loc.end - w[i].loc.offset <= LAZY_RUN_MAX) {
            if (w[j].loc.end > end)
                end = w[j].loc.end;
            j++;
        }
        runs[n_runs++] = (struct run){.w = w + i, .n = j - i, .start = w[i].loc.offset, .end = end};
        i = j;
    }
    /* runs of one blob, up to LAZY_RANGES_MAX of them and LAZY_RUN_MAX bytes, in one request */
    ret = 0;
    for (size_t i = 0; i < n_runs && ret == 0;) {
        size_t j = i + 1;
        uint64_t bytes = runs[i].end - runs[i].start;
        while (j < n_runs && j - i < LAZY_RANGES_MAX &&
               !strcmp(runs[j].w->source, runs[i].w->source) &&
               digest_equal(&runs[j].w->loc.blob, &runs[i].w->loc.blob) &&
               bytes + (runs[j].end - runs[j].start) <= LAZY_RUN_MAX) {
            bytes += runs[j].end - runs[j].start;
            j++;
        }
        ret = fetch_runs(l, runs + i, j - i, deadline, err);
        i = j;
    }
out:
    /* the readahead this call claimed: landed, or given up */
    pthread_mutex_lock(&l->mu);
    bool any = false;
    for (size_t i = 0; i < k; i++)
        if (w[i].extra) {
            flight_remove(l, &w[i].d);
            any = true;
        }
    if (any)
        pthread_cond_broadcast(&l->landed);
    pthread_mutex_unlock(&l->mu);
    free(runs);
    free(w);
    return ret;
}

/* The fetch hook: make chunks[0..n) present, fetching what nobody else is fetching, waiting for
 * the rest, all within the budget. */
static int lazy_fetch(struct lazy *l, const struct digest *chunks, size_t n, bool ahead,
                      uint64_t deadline, struct imgfs_err *err)
{
    struct digest *mine = xmalloc(n * sizeof *mine), *theirs = xmalloc(n * sizeof *theirs);
    int ret = 0;
    for (int round = 0;; round++) {
        size_t n_mine = 0, n_theirs = 0;
        struct store_read *r;
        if (store_read_begin(l->s, &r, err) < 0) {
            ret = -1;
            break;
        }
        pthread_mutex_lock(&l->mu);
        for (size_t i = 0; i < n; i++) {
            if (store_chunk_present(r, &chunks[i]))
                continue;
            if (flight_find(l, &chunks[i])) {
                theirs[n_theirs++] = chunks[i];
                continue;
            }
            bool dup = false;
            for (size_t k = 0; k < n_mine && !dup; k++)
                dup = digest_equal(&mine[k], &chunks[i]);
            if (dup)
                continue;
            struct flight *f = xmalloc(sizeof *f);
            f->d = chunks[i];
            f->next = l->flights;
            l->flights = f;
            mine[n_mine++] = chunks[i];
        }
        pthread_mutex_unlock(&l->mu);
        store_read_end(r);
        if (!n_mine && !n_theirs)
            break; /* all present */
        if (n_mine) {
            ret = fetch_claimed(l, mine, n_mine, ahead, deadline, err);
            pthread_mutex_lock(&l->mu);
            for (size_t i = 0; i < n_mine; i++)
                flight_remove(l, &mine[i]);
            pthread_cond_broadcast(&l->landed);
            pthread_mutex_unlock(&l->mu);
            if (ret < 0)
                break;
        }
        if (n_theirs) {
            /* wait until none of theirs is in flight any more, or the budget ends */
            pthread_mutex_lock(&l->mu);
            for (;;) {
                bool busy = false;
                for (size_t i = 0; i < n_theirs && !busy; i++)
                    busy = flight_find(l, &theirs[i]) != NULL;
                if (!busy)
                    break;
                uint64_t now = now_ms();
                if (now >= deadline) {
                    pthread_mutex_unlock(&l->mu);
                    ret = err_set(err, ETIMEDOUT,
                                  "the fetch budget ran out waiting for another reader's fetch");
                    goto done;
                }
                struct timespec ts;
                clock_gettime(CLOCK_REALTIME, &ts);
                uint64_t wait = deadline - now < 200 ? deadline - now : 200;
                ts.tv_nsec += (long)(wait % 1000) * 1000000;
                ts.tv_sec += (time_t)(wait / 1000) + ts.tv_nsec / 1000000000;
                ts.tv_nsec %= 1000000000;
                pthread_cond_timedwait(&l->landed, &l->mu, &ts);
            }
            pthread_mutex_unlock(&l->mu);
        }
        if (now_ms() >= deadline) {
            /* another reader's fetch failed and the budget is gone: say so */
            struct store_read *r2;
            if (store_read_begin(l->s, &r2, err) == 0) {
                bool all = true;
                for (size_t i = 0; i < n && all; i++)
                    all = store_chunk_present(r2, &chunks[i]);
                store_read_end(r2);
                if (all)
                    break;
            }
            ret = err_set(err, ETIMEDOUT, "the fetch budget ran out");
            break;
        }
    }
done:
    free(mine);
    free(theirs);
    return ret;
}

static int fetch_hook(void *ctx, struct store *s, const struct digest *chunks, size_t n,
                      struct imgfs_err *err)
{
    (void)s;
    struct lazy *l = ctx;
    unsigned budget = l->o.fetch_timeout_ms ? l->o.fetch_timeout_ms : LAZY_DEFAULT_TIMEOUT_MS;
    atomic_fetch_add(&l->foreground, 1);
    uint64_t t = now_ms();
    int rc = lazy_fetch(l, chunks, n, true, t + budget, err);
    atomic_fetch_sub(&l->foreground, 1);
    trace(l, "H %llu %llu n=%zu rc=%d\n", (unsigned long long)(t - l->t0),
          (unsigned long long)(now_ms() - l->t0), n, rc);
    if (rc < 0) {
        atomic_fetch_add(&l->failures, 1);
        /* every failure becomes EIO for the reader; the message keeps the registry's words */
        err->code = EIO;
    }
    return rc;
}

int lazy_attach(struct store *s, const struct lazy_options *o, struct lazy **out,
                struct imgfs_err *err)
{
    (void)err;
    struct lazy *l = xcalloc(1, sizeof *l);
    l->s = s;
    l->o = *o;
    l->image = xstrdup(o->image ? o->image : "");
    l->o.image = l->image;
    pthread_mutex_init(&l->mu, NULL);
    pthread_cond_init(&l->landed, NULL);
    l->t0 = now_ms();
    const char *tr = getenv("IMGFS_LAZY_TRACE");
    l->trace = tr && *tr ? fopen(tr, "ae") : NULL; /* O_APPEND: one write() per line */
    l->trace_fd = l->trace ? fileno(l->trace) : -1;
    if (l->trace_fd >= 0) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        trace(l, "A %lld.%03ld\n", (long long)ts.tv_sec, ts.tv_nsec / 1000000);
    }
    store_set_fetcher(s, fetch_hook, l);
    *out = l;
    return 0;
}

void lazy_detach(struct lazy *l)
{
    if (!l)
        return;
    if (l->bg_running) {
        atomic_store(&l->stop, true);
        pthread_join(l->bg, NULL);
    }
    store_set_fetcher(l->s, NULL, NULL);
    while (l->sources) {
        struct source *src = l->sources;
        l->sources = src->next;
        registry_close(src->client);
        free(src->name);
        free(src->ca_file);
        free(src->auth_file);
        free(src);
    }
    while (l->flights)
        flight_remove(l, &l->flights->d);
    free(l->ra);
    free(l->ra_blobs);
    if (l->trace)
        fclose(l->trace);
    pthread_cond_destroy(&l->landed);
    pthread_mutex_destroy(&l->mu);
    free(l->image);
    free(l);
}

void lazy_get_stats(struct lazy *l, struct lazy_stats *out)
{
    out->requests = atomic_load(&l->requests);
    out->bytes_fetched = atomic_load(&l->bytes);
    out->chunks_fetched = atomic_load(&l->chunks);
    out->chunk_bytes = atomic_load(&l->chunk_bytes);
    out->failures = atomic_load(&l->failures);
}

/* ---- completing an image ---- */

struct absent {
    struct digest d;
    struct digest blob;
    uint64_t offset;
};

static int absent_cmp(const void *a, const void *b)
{
    const struct absent *x = a, *y = b;
    int c = memcmp(x->blob.b, y->blob.b, DIGEST_LEN);
    if (c)
        return c;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

/* The view's absent chunks that have a remote record (and, for LANDMARK, lie before their
 * layer's landmark), in blob order: the order that makes large requests. */
static int collect_absent(struct store *s, const struct view *v, enum lazy_prefetch what,
                          struct absent **out, size_t *n_out, struct imgfs_err *err)
{
    struct store_read *r;
    if (store_read_begin(s, &r, err) < 0)
        return -1;
    size_t n = 0, cap = 0;
    struct absent *a = NULL;
    for (uint32_t i = 0; i < v->hdr->n_extents; i++) {
        const struct digest *d = &v->extents[i].chunk;
        if (store_chunk_present(r, d))
            continue;
        struct store_remote loc;
        char src[SOURCE_MAX];
        struct imgfs_err ignored;
        if (store_remote_get(r, d, &loc, src, sizeof src, &ignored) < 0)
            continue;
        if (what == LAZY_PREFETCH_LANDMARK && !(loc.flags & STORE_REMOTE_PREFETCH))
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 256;
            a = xrealloc(a, cap * sizeof *a);
        }
        a[n++] = (struct absent){.d = *d, .blob = loc.blob, .offset = loc.offset};
    }
    store_read_end(r);
    if (n)
        qsort(a, n, sizeof *a, absent_cmp);
    /* the same chunk twice (two files share it) is one entry */
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        bool dup = false;
        for (size_t j = k; j-- > 0 && j + 8 > k && !dup;)
            dup = digest_equal(&a[j].d, &a[i].d);
        if (!dup)
            a[k++] = a[i];
    }
    *out = a;
    *n_out = k;
    return 0;
}

/* Fetch the list in groups of about LAZY_RUN_MAX bytes of one blob. */
static int fetch_list(struct lazy *l, struct absent *a, size_t n, bool background,
                      struct imgfs_err *err)
{
    unsigned budget = l->o.fetch_timeout_ms ? l->o.fetch_timeout_ms : LAZY_DEFAULT_TIMEOUT_MS;
    struct digest group[256];
    for (size_t i = 0; i < n;) {
        if (background) {
            if (atomic_load(&l->stop))
                return 0;
            /* behind reads: wait while any read is fetching */
            while (atomic_load(&l->foreground) && !atomic_load(&l->stop)) {
                struct timespec ts = {0, 20 * 1000000};
                nanosleep(&ts, NULL);
            }
        }
        size_t k = 0;
        size_t j = i;
        while (j < n && k < 256 && digest_equal(&a[j].blob, &a[i].blob) &&
               a[j].offset - a[i].offset < LAZY_RUN_MAX)
            group[k++] = a[j++].d;
        /* a larger budget for a larger request: 4 MiB at the pace of a slow link */
        int rc = lazy_fetch(l, group, k, false, now_ms() + budget * 4, err);
        if (l->o.progress && rc == 0)
            l->o.progress(l->o.progress_ctx, atomic_load(&l->chunk_bytes), l->progress_total);
        if (rc < 0) {
            atomic_fetch_add(&l->failures, 1);
            if (!background)
                return -1;
            /* the background gives up on this group; a read will fetch it when needed */
        }
        i = j;
    }
    return 0;
}

static void *prefetch_main(void *arg)
{
    struct lazy *l = arg;
    struct imgfs_err err = {0};
    struct absent *a = NULL;
    size_t n = 0;
    /* low priority: the CPU for reads first */
    if (nice(10) < 0) {
        /* not fatal */
    }
    if (collect_absent(l->s, l->bg_view, l->bg_what, &a, &n, &err) == 0)
        fetch_list(l, a, n, true, &err);
    free(a);
    return NULL;
}

int lazy_prefetch_start(struct lazy *l, const struct view *v, enum lazy_prefetch what,
                        struct imgfs_err *err)
{
    if (what == LAZY_PREFETCH_NONE || l->bg_running)
        return 0;
    if (!store_has_remote(l->s))
        return 0; /* nothing was pulled lazily into this store */
    l->bg_view = v;
    l->bg_what = what;
    int rc = pthread_create(&l->bg, NULL, prefetch_main, l);
    if (rc)
        return err_sys(err, rc, "starting the prefetch thread");
    l->bg_running = true;
    return 0;
}

int lazy_fetch_all(struct lazy *l, const struct view *v, struct imgfs_err *err)
{
    struct absent *a = NULL;
    size_t n = 0;
    if (collect_absent(l->s, v, LAZY_PREFETCH_ALL, &a, &n, err) < 0)
        return -1;
    int rc = fetch_list(l, a, n, false, err);
    free(a);
    return rc;
}

int lazy_usage(struct store *s, const struct view *v, struct lazy_usage *out, struct imgfs_err *err)
{
    memset(out, 0, sizeof *out);
    struct store_read *r;
    if (store_read_begin(s, &r, err) < 0)
        return -1;
    /* distinct chunks: a file's extents may repeat a chunk, and files share chunks */
    size_t cap = 1024;
    while (cap < (size_t)v->hdr->n_extents * 2)
        cap *= 2;
    struct digest *seen = xcalloc(cap, sizeof *seen);
    uint8_t *used = xcalloc(cap, 1);
    for (uint32_t i = 0; i < v->hdr->n_extents; i++) {
        const struct view_extent *e = &v->extents[i];
        size_t h;
        memcpy(&h, e->chunk.b, sizeof h);
        bool dup = false;
        for (h &= cap - 1; used[h]; h = (h + 1) & (cap - 1))
            if (digest_equal(&seen[h], &e->chunk)) {
                dup = true;
                break;
            }
        if (dup)
            continue;
        used[h] = 1;
        seen[h] = e->chunk;
        if (store_chunk_present(r, &e->chunk)) {
            out->present_bytes += e->length;
            out->present_chunks++;
            continue;
        }
        struct store_remote loc;
        char src[SOURCE_MAX];
        struct imgfs_err ignored;
        if (store_remote_get(r, &e->chunk, &loc, src, sizeof src, &ignored) == 0) {
            out->remote_bytes += e->length;
            out->remote_chunks++;
        } else {
            out->missing_bytes += e->length;
            out->missing_chunks++;
        }
    }
    free(seen);
    free(used);
    store_read_end(r);
    return 0;
}

/* ---- lazy pulls ---- */

/* Bytes of the first request for a layer: the footer and the TOC of a layer of a few hundred
 * files. More would be bytes fetched for nothing (a smaller layer is fetched whole, a larger TOC
 * needs its second request anyway); a larger TOC costs one more round trip, not more bytes. */
#define TAIL_GUESS (64u << 10)
/* A compressed TOC larger than this is refused before it is fetched. */
#define TOC_COMPRESSED_MAX (128u << 20)

static la_ssize_t count_cb(struct archive *a, void *ctx, const void *data, size_t len)
{
    (void)a, (void)data;
    *(uint64_t *)ctx += len;
    return (la_ssize_t)len;
}

/* The size of the canonical tar of a table, without its content: headers and padding are what
 * layer_entry_to_archive makes; content is counted, not read. */
static int canonical_size(const void *table, size_t len, uint64_t *out, struct imgfs_err *err)
{
    struct layer_reader rd;
    if (layer_reader_init(&rd, table, len, err) < 0)
        return -1;
    uint64_t headers = 0, content = 0;
    struct archive *a = layer_tar_writer_new(&headers, count_cb);
    struct archive_entry *ae = archive_entry_new();
    struct layer_entry e;
    int rc;
    while ((rc = layer_next(&rd, &e, err)) > 0) {
        layer_entry_to_archive(&e, ae);
        /* the header as written, then the content as if written: size rounded up to a block */
        archive_entry_set_size(ae, 0);
        if (archive_write_header(a, ae) < ARCHIVE_WARN) {
            rc = err_set(err, EIO, "sizing `%s`: %s", e.path, archive_error_string(a));
            break;
        }
        if (e.kind == LAYER_REG)
            content += (e.size + 511) / 512 * 512;
    }
    archive_write_close(a);
    archive_write_free(a);
    archive_entry_free(ae);
    layer_reader_free(&rd);
    if (rc < 0)
        return -1;
    *out = headers + content;
    return 0;
}

struct toc_job {
    struct pull_plan *plan;
    size_t index;
    struct estargz_toc toc;
    bool have_toc; /* parsed */
    bool reused;   /* the store has this layer's table already */
    bool whole;    /* not lazily readable (err says why): pulled whole */
    int rc;
    struct imgfs_err err;
};

struct toc_jobs {
    struct toc_job *jobs;
    size_t n;
    atomic_size_t next;
    struct store *s;
};

static bool is_gzip_layer(const char *mt)
{
    size_t n = strlen(mt);
    return (n >= 5 && !strcmp(mt + n - 5, "+gzip")) || (n >= 5 && !strcmp(mt + n - 5, ".gzip"));
}

/* Footer and TOC of one layer: one Range request for the blob's tail, a second one only when the
 * TOC starts before it. */
static int fetch_toc(struct toc_job *j)
{
    struct pull_plan *p = j->plan;
    const struct registry_descriptor *d = &p->image.layers[j->index];
    struct imgfs_err *err = &j->err;
    const char *ann = registry_descriptor_annotation(d, ESTARGZ_ANNOTATION_TOC_DIGEST);
    struct digest want;
    if (!ann || digest_parse(ann, false, &want) < 0)
        return err_set(err, ENOTSUP, "layer %zu has no valid %s annotation", j->index + 1,
                       ESTARGZ_ANNOTATION_TOC_DIGEST);
    if (d->size < ESTARGZ_FOOTER_SIZE + 20)
        return err_set(err, ENOTSUP, "layer %zu is too small for eStargz", j->index + 1);
    size_t tail = d->size < TAIL_GUESS ? (size_t)d->size : TAIL_GUESS;
    uint64_t tail_start = d->size - tail;
    uint8_t *buf = xmalloc(tail);
    uint8_t *toc = NULL;
    int ret = -1;
    if (registry_get_range(p->client, &d->digest, (int64_t)tail_start, tail, buf, NULL, 0, err) <
        0) {
        err_ctx(err, "layer %zu: fetching its eStargz footer", j->index + 1);
        goto out;
    }
    uint64_t toc_off;
    if (estargz_footer_parse(buf + tail - ESTARGZ_FOOTER_SIZE, ESTARGZ_FOOTER_SIZE, d->size,
                             &toc_off, err) < 0) {
        err_ctx(err, "layer %zu", j->index + 1);
        err->code = ENOTSUP; /* a gzip layer that is not eStargz: pulled whole */
        goto out;
    }
    uint64_t toc_len = d->size - ESTARGZ_FOOTER_SIZE - toc_off;
    const uint8_t *at;
    if (toc_off >= tail_start) {
        at = buf + (toc_off - tail_start);
    } else {
        if (toc_len > TOC_COMPRESSED_MAX) {
            err_set(err, EFBIG, "layer %zu: its TOC is %llu compressed bytes (at most %u MiB)",
                    j->index + 1, (unsigned long long)toc_len, TOC_COMPRESSED_MAX >> 20);
            goto out;
        }
        /* only the part before the tail: the rest of the TOC came with it */
        uint64_t head = tail_start - toc_off;
        toc = xmalloc(toc_len);
        if (registry_get_range(p->client, &d->digest, (int64_t)toc_off, (size_t)head, toc, NULL, 0,
                               err) < 0) {
            err_ctx(err, "layer %zu: fetching its eStargz TOC", j->index + 1);
            goto out;
        }
        memcpy(toc + head, buf, (size_t)(toc_len - head));
        at = toc;
    }
    if (estargz_toc_parse(at, toc_len, toc_off, &want, &j->toc, err) < 0) {
        char ds[DIGEST_STR_SIZE];
        digest_str(&d->digest, ds);
        err_ctx(err, "layer %zu (%s)", j->index + 1, ds);
        goto out;
    }
    j->have_toc = true;
    ret = 0;
out:
    free(buf);
    free(toc);
    return ret;
}

static void *toc_worker(void *arg)
{
    struct toc_jobs *js = arg;
    for (;;) {
        size_t i = atomic_fetch_add(&js->next, 1);
        if (i >= js->n)
            return NULL;
        struct toc_job *j = &js->jobs[i];
        j->rc = j->reused || j->whole ? 0 : fetch_toc(j);
        if (j->rc < 0 && j->err.code == ENOTSUP) {
            j->whole = true;
            j->rc = 0;
        }
    }
}

int lazy_pull(struct store *s, const char *ref, const struct pull_options *o, struct digest *out,
              char **name, bool *whole, struct imgfs_err *err)
{
    *whole = false;
    struct pull_plan plan;
    if (pull_resolve(ref, o, &plan, err) < 0)
        return -1;
    size_t n = plan.image.n_layers;
    const struct digest *top =
        plan.image.index.body.len ? &plan.image.index.digest : &plan.image.manifest.digest;
    if (o->event) {
        struct pull_event e = {.kind = PULL_RESOLVED, .n_layers = n, .digest = top};
        o->event(o->event_ctx, &e);
    }
    int ret = -1;
    struct toc_job *jobs = xcalloc(n ? n : 1, sizeof *jobs);
    struct image_layer *layers = xcalloc(n ? n : 1, sizeof *layers);
    struct buf *whole_tables = xcalloc(n ? n : 1, sizeof *whole_tables);
    struct store_batch *b = NULL;
    struct store_read *r = NULL;
    char *source = xasprintf("%s/%s", plan.ref.domain, plan.ref.path);
    for (size_t i = 0; i < n; i++) {
        jobs[i].plan = &plan;
        jobs[i].index = i;
        if (!is_gzip_layer(plan.image.layers[i].media_type)) {
            jobs[i].whole = true;
            err_set(&jobs[i].err, ENOTSUP, "layer %zu is %s, not gzip: no eStargz TOC", i + 1,
                    plan.image.layers[i].media_type);
        }
    }
    /* layers this store has from an earlier lazy pull need nothing from the registry */
    if (store_read_begin(s, &r, err) < 0)
        goto out;
    for (size_t i = 0; i < n; i++) {
        const void *t;
        size_t tl;
        struct imgfs_err ignored;
        jobs[i].reused =
            !jobs[i].whole && store_get(r, STORE_LAYER, &plan.diff_ids[i], &t, &tl, &ignored) == 0;
    }
    store_read_end(r);
    r = NULL;
    struct toc_jobs js = {.jobs = jobs, .n = n, .s = s};
    size_t workers = n < 4 ? n : 4;
    pthread_t th[4];
    size_t started = 0;
    for (; started < workers; started++)
        if (pthread_create(&th[started], NULL, toc_worker, &js))
            break;
    if (!started)
        toc_worker(&js);
    for (size_t i = 0; i < started; i++)
        pthread_join(th[i], NULL);
    size_t n_whole = 0;
    for (size_t i = 0; i < n; i++) {
        if (jobs[i].rc < 0) {
            *err = jobs[i].err;
            goto out;
        }
        n_whole += jobs[i].whole;
    }
    if (n && n_whole == n) {
        /* nothing to read lazily: the caller's plain pull streams every layer */
        *whole = true;
        *err = jobs[0].err;
        goto out;
    }

    /* from here to the commit, against gc: the layers pulled whole are committed unnamed */
    if (store_batch_begin(s, &b, err) < 0)
        goto out;
    if (n_whole) {
        /* the layers that cannot be read lazily are pulled whole; the others stay remote */
        for (size_t i = 0; i < n; i++) {
            if (!jobs[i].whole || !o->event)
                continue;
            struct pull_event e = {.kind = PULL_LAYER_WHOLE,
                                   .layer = i,
                                   .n_layers = n,
                                   .digest = &plan.image.layers[i].digest,
                                   .note = jobs[i].err.msg};
            o->event(o->event_ctx, &e);
        }
        bool *want = xcalloc(n, sizeof *want);
        for (size_t i = 0; i < n; i++)
            want[i] = jobs[i].whole;
        int rc = pull_layers(s, o, &plan, want, layers, whole_tables, err);
        free(want);
        if (rc < 0)
            goto out;
    }
    if (store_read_begin(s, &r, err) < 0)
        goto out;
    for (size_t i = 0; i < n; i++) {
        struct toc_job *j = &jobs[i];
        const void *table;
        size_t table_len;
        if (j->whole)
            continue; /* layers[i] is the whole pull's */
        if (j->reused) {
            if (store_get(r, STORE_LAYER, &plan.diff_ids[i], &table, &table_len, err) < 0)
                goto out;
        } else {
            table = j->toc.table.data;
            table_len = j->toc.table.len;
            if (store_batch_put(b, STORE_LAYER, &plan.diff_ids[i], table, table_len, err) < 0)
                goto out;
            for (size_t k = 0; k < j->toc.n_chunks; k++) {
                const struct estargz_chunk *c = &j->toc.chunks[k];
                if (store_chunk_present(r, &c->digest))
                    continue; /* held from another image: never fetched */
                struct store_remote loc = {
                    .blob = plan.image.layers[i].digest,
                    .offset = c->offset,
                    .end = c->end,
                    .inner = c->inner,
                    .size = c->size,
                    .flags = c->offset < j->toc.prefetch_end ? STORE_REMOTE_PREFETCH : 0,
                    .source = source,
                };
                if (store_batch_put_remote(b, &c->digest, &loc, err) < 0)
                    goto out;
            }
        }
        layers[i].diff_id = plan.diff_ids[i];
        layers[i].table = table;
        layers[i].table_len = table_len;
        if (canonical_size(table, table_len, &layers[i].size, err) < 0)
            goto out;
    }
    /* the fetches that come later (the mount daemon's) talk to the registry as this pull did */
    if (lazy_registry_remember(store_root(s), plan.ref.domain, &o->registry, err) < 0 ||
        pull_commit(b, &plan, layers, out, err) < 0)
        goto out;
    store_read_end(r);
    r = NULL;
    ret = store_batch_commit(b, err);
    b = NULL;
    if (ret == 0 && name)
        *name = xstrdup(plan.name);
    if (ret == 0 && o->event) {
        struct pull_event e = {.kind = PULL_DONE, .n_layers = n, .digest = top};
        o->event(o->event_ctx, &e);
    }
out:
    if (ret < 0 && !*whole)
        err_ctx(err, "lazily pulling %s", ref);
    store_read_end(r);
    if (b)
        store_batch_abort(b);
    for (size_t i = 0; i < n; i++)
        if (jobs[i].have_toc)
            estargz_toc_free(&jobs[i].toc);
    free(jobs);
    free(layers);
    for (size_t i = 0; i < n; i++)
        buf_free(&whole_tables[i]);
    free(whole_tables);
    free(source);
    pull_plan_free(&plan);
    return ret;
}

/* A copy of image `manifest`'s view (free *copy): it outlives the read it came from. */
static int image_view(struct store *s, const struct digest *manifest, void **copy, struct view *v,
                      struct imgfs_err *err)
{
    *copy = NULL;
    struct store_read *r;
    if (store_read_begin(s, &r, err) < 0)
        return -1;
    const void *blob;
    size_t len;
    int rc = store_get(r, STORE_VIEW, manifest, &blob, &len, err);
    if (rc == 0)
        rc = view_open_copy(blob, len, copy, v, err);
    store_read_end(r);
    return rc;
}

int lazy_image_usage(struct store *s, const struct digest *manifest, struct lazy_usage *out,
                     struct imgfs_err *err)
{
    memset(out, 0, sizeof *out);
    void *copy;
    struct view v;
    int rc = image_view(s, manifest, &copy, &v, err);
    if (rc == 0)
        rc = lazy_usage(s, &v, out, err);
    free(copy);
    return rc;
}

int lazy_complete(struct store *s, const struct digest *manifest, const struct lazy_options *o,
                  struct lazy_usage *before, struct imgfs_err *err)
{
    memset(before, 0, sizeof *before);
    if (!store_has_remote(s))
        return 0;
    void *copy;
    struct view v;
    if (image_view(s, manifest, &copy, &v, err) < 0) {
        free(copy);
        return -1;
    }
    struct lazy *l = NULL;
    int rc = lazy_usage(s, &v, before, err);
    if (rc == 0 && before->remote_chunks) {
        rc = lazy_attach(s, o, &l, err);
        if (rc == 0) {
            l->progress_total = before->remote_bytes;
            rc = lazy_fetch_all(l, &v, err);
        }
        lazy_detach(l);
    }
    free(copy);
    return rc;
}

/* ---- recorded start-ups ---- */

static char *trace_path(const char *root, const struct digest *manifest)
{
    char hex[DIGEST_HEX_LEN + 1];
    digest_hex(manifest, hex);
    return xasprintf("%s/traces/%s", root, hex);
}

int lazy_trace_save(const char *root, const struct digest *manifest, const char *const *paths,
                    size_t n, struct imgfs_err *err)
{
    cleanup_free char *dir = xasprintf("%s/traces", root);
    if (mkdir_p(dir, 0700, err) < 0)
        return -1;
    struct buf b = {0};
    for (size_t i = 0; i < n; i++) {
        buf_append(&b, paths[i], strlen(paths[i]));
        buf_append(&b, "\n", 1);
    }
    cleanup_free char *path = trace_path(root, manifest);
    int rc = write_file_atomic(path, b.data ? b.data : (uint8_t *)"", b.len, 0600, err);
    buf_free(&b);
    return rc;
}

int lazy_trace_load(const char *root, const struct digest *manifest, char ***paths, size_t *n,
                    struct imgfs_err *err)
{
    *paths = NULL;
    *n = 0;
    cleanup_free char *path = trace_path(root, manifest);
    struct buf b = {0};
    if (read_file(path, 64u << 20, &b, err) < 0) {
        if (err->code == ENOENT) {
            err_clear(err);
            return 0;
        }
        return -1;
    }
    size_t cap = 0;
    for (size_t i = 0; i < b.len;) {
        const uint8_t *nl = memchr(b.data + i, '\n', b.len - i);
        size_t end = nl ? (size_t)(nl - b.data) : b.len;
        if (end > i && !memchr(b.data + i, 0, end - i)) {
            if (*n == cap) {
                cap = cap ? cap * 2 : 64;
                *paths = xrealloc(*paths, cap * sizeof **paths);
            }
            (*paths)[(*n)++] = strndup((const char *)b.data + i, end - i);
        }
        i = end + 1;
    }
    buf_free(&b);
    return 0;
}

int lazy_trace_record(const char *root, const struct digest *manifest, const char *trace_file,
                      size_t *n_out, struct imgfs_err *err)
{
    *n_out = 0;
    struct buf b = {0};
    if (read_file(trace_file, 64u << 20, &b, err) < 0) {
        if (err->code != ENOENT)
            return -1;
        err_clear(err); /* nothing was read: an empty trace */
    }
    /* one path per line, "/usr/bin/go": layer paths have no leading slash */
    char **paths = NULL;
    size_t n = 0;
    for (size_t i = 0; i < b.len;) {
        const uint8_t *nl = memchr(b.data + i, '\n', b.len - i);
        size_t end = nl ? (size_t)(nl - b.data) : b.len;
        size_t start = i;
        while (start < end && b.data[start] == '/')
            start++;
        if (end > start) {
            paths = xrealloc(paths, (n + 1) * sizeof *paths);
            paths[n++] = strndup((const char *)b.data + start, end - start);
        }
        i = end + 1;
    }
    buf_free(&b);
    int rc = lazy_trace_save(root, manifest, (const char *const *)paths, n, err);
    for (size_t i = 0; i < n; i++)
        free(paths[i]);
    free(paths);
    if (rc == 0)
        *n_out = n;
    return rc;
}
