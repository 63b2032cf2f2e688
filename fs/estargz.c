#include "estargz.h"
#include "chunker.h"
#include "image.h"
#include "layer.h"
#include "store.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <pthread.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <zlib.h>

/* Fixed so that the same layer always gives the same blob. The TOC is fetched whole before a
 * lazy mount can start, so its member gets the best compression: level 9 makes the Debian+golang
 * image's TOC 2.4% smaller than level 6, for 0.07 s more CPU in the push of its 6.7 MB of JSON. */
#define GZIP_LEVEL     6
#define TOC_GZIP_LEVEL 9
#define LANDMARK_BYTE  0x0f

/* ---- the gzip stream: members cut where eStargz wants them ---- */

struct gz_writer {
    z_stream z;
    gz_header hdr;
    bool open, has_input;
    estargz_sink_fn sink;
    void *sink_ctx;
    struct digest_ctx *blob_hash, *diff_hash;
    uint64_t coff, uoff;
    struct imgfs_err *err;
    bool failed;
    uint8_t out[65536];
};

static int gz_emit(struct gz_writer *g, const void *data, size_t len)
{
    if (!len)
        return 0;
    digest_ctx_update(g->blob_hash, data, len);
    g->coff += len;
    if (g->sink(g->sink_ctx, data, len, g->err) < 0) {
        g->failed = true;
        return -1;
    }
    return 0;
}

static int gz_run(struct gz_writer *g, int flush)
{
    int rc;
    do {
        g->z.next_out = g->out;
        g->z.avail_out = sizeof g->out;
        rc = deflate(&g->z, flush);
        if (rc == Z_STREAM_ERROR) {
            g->failed = true;
            return err_set(g->err, EIO, "compressing the layer: zlib stream error");
        }
        if (gz_emit(g, g->out, sizeof g->out - g->z.avail_out) < 0)
            return -1;
    } while (g->z.avail_out == 0 || (flush == Z_FINISH && rc != Z_STREAM_END));
    return 0;
}

static int gz_member_end(struct gz_writer *g)
{
    if (!g->open)
        return 0;
    g->open = false;
    g->z.next_in = NULL;
    g->z.avail_in = 0;
    return gz_run(g, Z_FINISH);
}

/* Start a new member here (ending the current one), unless the current one is still empty. */
static int gz_member_begin(struct gz_writer *g)
{
    if (g->open && !g->has_input)
        return 0;
    if (gz_member_end(g) < 0)
        return -1;
    deflateReset(&g->z);
    memset(&g->hdr, 0, sizeof g->hdr);
    g->hdr.os = 255; /* unknown, as Go's gzip writes it: no host-dependent byte */
    deflateSetHeader(&g->z, &g->hdr);
    g->open = true;
    g->has_input = false;
    return 0;
}

static int gz_feed(struct gz_writer *g, const void *data, size_t len)
{
    if (g->failed)
        return -1;
    if (!g->open && gz_member_begin(g) < 0)
        return -1;
    digest_ctx_update(g->diff_hash, data, len);
    g->uoff += len;
    g->has_input = g->has_input || len > 0;
    g->z.next_in = (Bytef *)data;
    g->z.avail_in = (uInt)len;
    return gz_run(g, Z_NO_FLUSH);
}

static ssize_t tar_to_gz(struct archive *a, void *ctx, const void *data, size_t len)
{
    (void)a;
    struct gz_writer *g = ctx;
    if (gz_feed(g, data, len) < 0)
        return -1;
    return (ssize_t)len;
}

/* ---- the TOC ---- */

static const char *toc_type(enum layer_kind k)
{
    switch (k) {
    case LAYER_DIR:
        return "dir";
    case LAYER_SYMLINK:
        return "symlink";
    case LAYER_HARDLINK:
        return "hardlink";
    case LAYER_CHAR:
        return "char";
    case LAYER_BLOCK:
        return "block";
    case LAYER_FIFO:
        return "fifo";
    default:
        return "reg";
    }
}

static uint32_t type_bits(enum layer_kind k)
{
    switch (k) {
    case LAYER_DIR:
        return S_IFDIR;
    case LAYER_SYMLINK:
        return S_IFLNK;
    case LAYER_CHAR:
        return S_IFCHR;
    case LAYER_BLOCK:
        return S_IFBLK;
    case LAYER_FIFO:
        return S_IFIFO;
    default:
        return S_IFREG;
    }
}

static json_t *json_digest(const struct digest *d)
{
    char s[DIGEST_STR_SIZE];
    digest_str(d, s);
    return json_string(s);
}

static void rfc3339(int64_t sec, uint32_t nsec, char *out, size_t size)
{
    time_t t = (time_t)sec;
    struct tm tm;
    if (!gmtime_r(&t, &tm)) {
        snprintf(out, size, "1970-01-01T00:00:00Z");
        return;
    }
    size_t n = strftime(out, size, "%Y-%m-%dT%H:%M:%S", &tm);
    if (nsec) {
        char frac[16];
        snprintf(frac, sizeof frac, ".%09u", nsec);
        for (size_t k = strlen(frac) - 1; frac[k] == '0'; k--)
            frac[k] = 0;
        snprintf(out + n, size - n, "%sZ", frac);
    } else {
        snprintf(out + n, size - n, "Z");
    }
}

/* JSON strings are UTF-8; tar names are bytes. A name that is not UTF-8 is written as eStargz
 * readers elsewhere see it (each invalid byte replaced by U+FFFD, as Go's encoder does) and, exact,
 * in base64 under KEY@base64, which imgfs's reader prefers. */
static size_t utf8_valid_prefix(const unsigned char *p, size_t n)
{
    if (n >= 2 && p[0] >= 0xc2 && p[0] <= 0xdf && (p[1] & 0xc0) == 0x80)
        return 2;
    if (n >= 3 && (p[0] & 0xf0) == 0xe0 && (p[1] & 0xc0) == 0x80 && (p[2] & 0xc0) == 0x80 &&
        !(p[0] == 0xe0 && p[1] < 0xa0) && !(p[0] == 0xed && p[1] > 0x9f))
        return 3;
    if (n >= 4 && p[0] >= 0xf0 && p[0] <= 0xf4 && (p[1] & 0xc0) == 0x80 && (p[2] & 0xc0) == 0x80 &&
        (p[3] & 0xc0) == 0x80 && !(p[0] == 0xf0 && p[1] < 0x90) && !(p[0] == 0xf4 && p[1] > 0x8f))
        return 4;
    return p[0] < 0x80 ? 1 : 0;
}

static char *b64_encode(const void *data, size_t len)
{
    char *out = xmalloc(4 * ((len + 2) / 3) + 1);
    EVP_EncodeBlock((unsigned char *)out, data, (int)len);
    return out;
}

static void set_text(json_t *o, const char *key, const char *text)
{
    json_t *v = json_string(text);
    if (v) {
        json_object_set_new(o, key, v);
        return;
    }
    struct buf lossy = {0};
    const unsigned char *p = (const unsigned char *)text;
    size_t n = strlen(text);
    while (n) {
        size_t k = utf8_valid_prefix(p, n);
        if (k) {
            buf_append(&lossy, p, k);
        } else {
            buf_append(&lossy, "\xef\xbf\xbd", 3);
            k = 1;
        }
        p += k;
        n -= k;
    }
    buf_append(&lossy, "", 1);
    json_object_set_new(o, key, json_string((const char *)lossy.data));
    buf_free(&lossy);
    cleanup_free char *b64 = b64_encode(text, strlen(text));
    cleanup_free char *k64 = xasprintf("%s@base64", key);
    json_object_set_new(o, k64, json_string(b64));
}

/* The name an entry has in the tar (and so in the TOC): what layer_entry_to_archive writes. */
static char *tar_name(const struct layer_entry *e)
{
    if (e->kind == LAYER_DIR)
        return *e->path ? xasprintf("%s/", e->path) : xstrdup("./");
    return xstrdup(e->path);
}

static json_t *toc_entry_new(const struct layer_entry *e)
{
    json_t *o = json_object();
    cleanup_free char *name = tar_name(e);
    set_text(o, "name", name);
    json_object_set_new(o, "type", json_string(toc_type(e->kind)));
    if (e->kind == LAYER_REG)
        json_object_set_new(o, "size", json_integer((json_int_t)e->size));
    char mt[64];
    rfc3339(e->mtime_sec, e->mtime_nsec, mt, sizeof mt);
    json_object_set_new(o, "modtime", json_string(mt));
    if (e->link)
        set_text(o, "linkName", e->link);
    json_object_set_new(o, "mode", json_integer(type_bits(e->kind) | (e->mode & 07777)));
    json_object_set_new(o, "uid", json_integer(e->uid));
    json_object_set_new(o, "gid", json_integer(e->gid));
    if (e->uname)
        set_text(o, "userName", e->uname);
    if (e->gname)
        set_text(o, "groupName", e->gname);
    if (e->kind == LAYER_CHAR || e->kind == LAYER_BLOCK) {
        json_object_set_new(o, "devMajor", json_integer(e->rdev_major));
        json_object_set_new(o, "devMinor", json_integer(e->rdev_minor));
    }
    if (e->n_xattrs) {
        json_t *x = json_object(), *raw = NULL;
        for (uint32_t i = 0; i < e->n_xattrs; i++) {
            cleanup_free char *b64 = b64_encode(e->xattrs[i].value, e->xattrs[i].len);
            if (json_object_set_new(x, e->xattrs[i].name, json_string(b64)) < 0) {
                /* a name that is not UTF-8: base64 name -> base64 value */
                if (!raw)
                    raw = json_object();
                cleanup_free char *n64 = b64_encode(e->xattrs[i].name, strlen(e->xattrs[i].name));
                json_object_set_new(raw, n64, json_string(b64));
            }
        }
        json_object_set_new(o, "xattrs", x);
        if (raw)
            json_object_set_new(o, "xattrs@base64", raw);
    }
    return o;
}

/* ---- writing a layer ---- */

struct estargz_writer {
    struct gz_writer g;
    struct archive *tar;
    struct archive_entry *ae;
    struct store_read *r;
    json_t *entries;
    struct imgfs_err *err;
};

static const uint8_t zeros[CHUNK_MAX];

/* A long hole is many full chunks of zeros: hash one once. */
static struct digest zero_digest;
static void zero_digest_init(void)
{
    digest_of(zeros, CHUNK_MAX, &zero_digest);
}
static const struct digest *zero_chunk_digest(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, zero_digest_init);
    return &zero_digest;
}

/* One chunk of file content: a gzip member of its own, and a TOC entry. */
static int write_chunk(struct estargz_writer *w, json_t *first, const char *name, uint64_t pos,
                       const void *data, size_t len, const struct digest *d, bool last)
{
    if (gz_member_begin(&w->g) < 0)
        return -1;
    json_t *o = first;
    if (pos) {
        o = json_object();
        set_text(o, "name", name);
        json_object_set_new(o, "type", json_string("chunk"));
    }
    json_object_set_new(o, "offset", json_integer((json_int_t)w->g.coff));
    json_object_set_new(o, "chunkOffset", json_integer((json_int_t)pos));
    /* the spec's rule: the last chunk (or the only one) says 0, meaning "to the end" */
    json_object_set_new(o, "chunkSize", json_integer(last ? 0 : (json_int_t)len));
    json_object_set_new(o, "chunkDigest", json_digest(d));
    if (pos)
        json_array_append_new(w->entries, o);
    if (archive_write_data(w->tar, data, len) != (la_ssize_t)len)
        return w->g.failed
                   ? -1
                   : err_set(w->err, EIO, "writing `%s`: %s", name, archive_error_string(w->tar));
    return 0;
}

static int write_header(struct estargz_writer *w, const struct layer_entry *e)
{
    layer_entry_to_archive(e, w->ae);
    /* eStargz readers know no sparse members: holes go out as zero chunks (write_entry) */
    archive_entry_sparse_clear(w->ae);
    if (archive_write_header(w->tar, w->ae) < ARCHIVE_WARN)
        return w->g.failed ? -1
                           : err_set(w->err, EIO, "writing the tar header of `%s`: %s", e->path,
                                     archive_error_string(w->tar));
    return 0;
}

/* Ends the entry: its padding goes into the member its data is in. */
static int finish_entry(struct estargz_writer *w)
{
    if (archive_write_finish_entry(w->tar) < ARCHIVE_WARN)
        return w->g.failed
                   ? -1
                   : err_set(w->err, EIO, "writing tar padding: %s", archive_error_string(w->tar));
    return 0;
}

static int write_entry(struct estargz_writer *w, const struct layer_entry *e)
{
    if (write_header(w, e) < 0)
        return -1;
    json_t *o = toc_entry_new(e);
    json_array_append_new(w->entries, o);
    if (e->kind != LAYER_REG || e->size == 0)
        return finish_entry(w);
    cleanup_free char *name = tar_name(e);
    uint64_t pos = 0;
    uint32_t i = 0;
    /* no whole-file `digest` (optional in eStargz; readers verify chunkDigest): a second SHA-256
     * per file cost 7% of the TOC, which a lazy mount fetches before it starts */
    while (pos < e->size) {
        const void *data;
        size_t len;
        struct digest d;
        if (i < e->n_extents && e->extents[i].offset <= pos) {
            const struct layer_extent *x = &e->extents[i++];
            if (x->offset < pos ||
                store_chunk_get(w->r, &x->chunk, true, &data, &len, w->err) < 0) {
                if (x->offset < pos)
                    err_set(w->err, EIO, "overlapping extents");
                return err_ctx(w->err, "reading `%s`", e->path);
            }
            if (len != x->length || pos + len > e->size)
                return err_set(w->err, EIO, "reading `%s`: chunk has %zu bytes, the table says %u",
                               e->path, len, x->length);
            d = x->chunk;
        } else {
            /* a hole: zeros, as in the canonical tar, in chunks of their own */
            uint64_t stop = i < e->n_extents ? e->extents[i].offset : e->size;
            len = stop - pos < CHUNK_MAX ? (size_t)(stop - pos) : CHUNK_MAX;
            data = zeros;
            if (len == CHUNK_MAX)
                d = *zero_chunk_digest();
            else
                digest_of(zeros, len, &d);
        }
        if (write_chunk(w, o, name, pos, data, len, &d, pos + len == e->size) < 0)
            return -1;
        pos += len;
    }
    return finish_entry(w);
}

static int write_landmark(struct estargz_writer *w, const char *name)
{
    static const uint8_t content = LANDMARK_BYTE;
    struct layer_entry e = {.path = name, .kind = LAYER_REG, .mode = 0644, .size = 1};
    if (write_header(w, &e) < 0)
        return -1;
    json_t *o = toc_entry_new(&e);
    json_array_append_new(w->entries, o);
    struct digest d;
    digest_of(&content, 1, &d);
    if (write_chunk(w, o, name, 0, &content, 1, &d, true) < 0)
        return -1;
    return finish_entry(w);
}

/* Where each entry of a table starts, so entries can be decoded again in another order. */
struct table_index {
    const uint8_t **start;
    const char **path;
    uint8_t *kind;
    size_t n;
    uint32_t *by_path; /* entry numbers sorted by path */
};

static int index_table(const void *table, size_t len, struct table_index *ix, struct imgfs_err *err)
{
    struct layer_reader rd;
    if (layer_reader_init(&rd, table, len, err) < 0)
        return -1;
    size_t cap = 0;
    memset(ix, 0, sizeof *ix);
    struct layer_entry e;
    int rc;
    for (;;) {
        const uint8_t *at = rd.p;
        if ((rc = layer_next(&rd, &e, err)) <= 0)
            break;
        if (ix->n == cap) {
            cap = cap ? cap * 2 : 256;
            ix->start = xrealloc(ix->start, cap * sizeof *ix->start);
            ix->path = xrealloc(ix->path, cap * sizeof *ix->path);
            ix->kind = xrealloc(ix->kind, cap);
        }
        ix->start[ix->n] = at;
        ix->path[ix->n] = e.path;
        ix->kind[ix->n] = (uint8_t)e.kind;
        ix->n++;
    }
    layer_reader_free(&rd);
    return rc < 0 ? -1 : 0;
}

/* qsort_r: layers are encoded by several threads at once (push) */
static int by_path_cmp(const void *a, const void *b, void *ctx)
{
    const struct table_index *sort_ix = ctx;
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    int c = strcmp(sort_ix->path[x], sort_ix->path[y]);
    return c ? c : (x < y ? -1 : x > y);
}

/* The entry of `path` when it is there exactly once; -1 otherwise (a path given twice keeps its
 * place: moving one would change which of them wins). */
static long find_unique(const struct table_index *ix, const char *path)
{
    size_t lo = 0, hi = ix->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(ix->path[ix->by_path[mid]], path) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo >= ix->n || strcmp(ix->path[ix->by_path[lo]], path))
        return -1;
    if (lo + 1 < ix->n && !strcmp(ix->path[ix->by_path[lo + 1]], path))
        return -1;
    return ix->by_path[lo];
}

static void index_free(struct table_index *ix)
{
    free(ix->start);
    free(ix->path);
    free(ix->kind);
    free(ix->by_path);
}

/* The order entries are written in: prefetched files (with their parent directories) first. */
static size_t write_order(const struct table_index *ix, const struct estargz_write_options *o,
                          uint32_t *order)
{
    uint8_t *done = xcalloc(ix->n ? ix->n : 1, 1);
    size_t n = 0;
    for (size_t i = 0; o && i < o->n_prefetch; i++) {
        long f = find_unique(ix, o->prefetch[i]);
        if (f < 0 || done[f] || ix->kind[f] != LAYER_REG)
            continue;
        /* parents, outermost first: "", "usr", "usr/bin" */
        const char *p = ix->path[f];
        for (const char *s = p;; s++) {
            if (*s == '/' || s == p) {
                cleanup_free char *parent = strndup(p, (size_t)(s - p));
                long d = find_unique(ix, parent);
                if (d >= 0 && !done[d] && ix->kind[d] == LAYER_DIR) {
                    done[d] = 1;
                    order[n++] = (uint32_t)d;
                }
            }
            if (!*s)
                break;
        }
        done[f] = 1;
        order[n++] = (uint32_t)f;
    }
    size_t prefetched = n;
    for (size_t i = 0; i < ix->n; i++)
        if (!done[i])
            order[n++] = (uint32_t)i;
    free(done);
    return prefetched;
}

int estargz_write(struct store_read *r, const void *table, size_t table_len,
                  const struct estargz_write_options *o, estargz_sink_fn sink, void *sink_ctx,
                  struct estargz_result *out, struct imgfs_err *err)
{
    struct table_index ix;
    if (index_table(table, table_len, &ix, err) < 0)
        return err_ctx(err, "writing eStargz");
    ix.by_path = xmalloc((ix.n ? ix.n : 1) * sizeof *ix.by_path);
    for (size_t i = 0; i < ix.n; i++)
        ix.by_path[i] = (uint32_t)i;
    qsort_r(ix.by_path, ix.n, sizeof *ix.by_path, by_path_cmp, &ix);
    uint32_t *order = xmalloc((ix.n ? ix.n : 1) * sizeof *order);
    size_t prefetched = write_order(&ix, o, order);

    struct estargz_writer w = {.r = r, .err = err, .entries = json_array()};
    w.g.sink = sink;
    w.g.sink_ctx = sink_ctx;
    w.g.err = err;
    w.g.blob_hash = digest_ctx_new();
    w.g.diff_hash = digest_ctx_new();
    int ret = -1;
    char *toc = NULL;
    if (deflateInit2(&w.g.z, GZIP_LEVEL, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        abort();
    w.tar = layer_tar_writer_new(&w.g, tar_to_gz);
    w.ae = archive_entry_new();
    struct layer_reader rd = {0};
    if (gz_member_begin(&w.g) < 0)
        goto out;
    if (!prefetched && write_landmark(&w, ESTARGZ_NOPREFETCH_NAME) < 0)
        goto out;
    for (size_t k = 0; k < ix.n; k++) {
        if (prefetched && k == prefetched && write_landmark(&w, ESTARGZ_PREFETCH_NAME) < 0)
            goto out;
        rd.p = ix.start[order[k]];
        rd.end = (const uint8_t *)table + table_len;
        rd.entries_left = 1;
        struct layer_entry e;
        if (layer_next(&rd, &e, err) <= 0 || write_entry(&w, &e) < 0)
            goto out;
    }
    if (prefetched && prefetched == ix.n && write_landmark(&w, ESTARGZ_PREFETCH_NAME) < 0)
        goto out;

    /* the TOC: a member of its own from its tar header to the end of the tar */
    json_t *root = json_object();
    json_object_set_new(root, "version", json_integer(1));
    json_object_set(root, "entries", w.entries);
    toc = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    if (!toc)
        abort();
    size_t toc_len = strlen(toc);
    digest_of(toc, toc_len, &out->toc_digest);
    if (gz_member_begin(&w.g) < 0)
        goto out;
    /* a fresh member with no input yet: the new level applies from its first byte */
    if (deflateParams(&w.g.z, TOC_GZIP_LEVEL, Z_DEFAULT_STRATEGY) != Z_OK)
        abort();
    out->toc_offset = w.g.coff;
    struct layer_entry te = {
        .path = ESTARGZ_TOC_NAME, .kind = LAYER_REG, .mode = 0644, .size = toc_len};
    if (write_header(&w, &te) < 0)
        goto out;
    if (archive_write_data(w.tar, toc, toc_len) != (la_ssize_t)toc_len) {
        if (!w.g.failed)
            err_set(err, EIO, "writing the TOC: %s", archive_error_string(w.tar));
        goto out;
    }
    if (archive_write_close(w.tar) != ARCHIVE_OK) {
        if (!w.g.failed)
            err_set(err, EIO, "finishing the tar: %s", archive_error_string(w.tar));
        goto out;
    }
    if (gz_member_end(&w.g) < 0)
        goto out;
    uint8_t footer[ESTARGZ_FOOTER_SIZE] = {0x1f, 0x8b, 8,  4, 0,   0,   0,  0,
                                           0,    0xff, 26, 0, 'S', 'G', 22, 0};
    char sub[23];
    snprintf(sub, sizeof sub, "%016llxSTARGZ", (unsigned long long)out->toc_offset);
    memcpy(footer + 16, sub, 22);
    static const uint8_t empty_block[5] = {1, 0, 0, 0xff, 0xff};
    memcpy(footer + 38, empty_block, 5); /* CRC32 and ISIZE of nothing: 8 zero bytes */
    if (gz_emit(&w.g, footer, sizeof footer) < 0)
        goto out;
    digest_ctx_final(w.g.blob_hash, &out->blob);
    digest_ctx_final(w.g.diff_hash, &out->diff_id);
    out->blob_size = w.g.coff;
    out->uncompressed_size = w.g.uoff;
    ret = 0;
out:
    if (ret < 0)
        err_ctx(err, "writing eStargz");
    free(toc);
    archive_write_free(w.tar);
    archive_entry_free(w.ae);
    layer_reader_free(&rd);
    json_decref(w.entries);
    deflateEnd(&w.g.z);
    digest_ctx_free(w.g.blob_hash);
    digest_ctx_free(w.g.diff_hash);
    free(order);
    index_free(&ix);
    return ret;
}

int estargz_image_json(const struct image *img, const struct estargz_result *layers, char **config,
                       size_t *config_len, char **manifest, size_t *manifest_len,
                       struct imgfs_err *err)
{
    json_error_t je;
    json_t *cfg = json_loadb(img->config_json, img->config_len, 0, &je);
    if (!json_is_object(cfg)) {
        json_decref(cfg);
        return err_set(err, EINVAL, "the image's config is not a JSON object: %s", je.text);
    }
    json_t *ids = json_array(), *descs = json_array();
    for (size_t i = 0; i < img->n_layers; i++) {
        const struct estargz_result *l = &layers[i];
        char size[24];
        snprintf(size, sizeof size, "%llu", (unsigned long long)l->uncompressed_size);
        json_array_append_new(ids, json_digest(&l->diff_id));
        json_t *ann = json_object();
        json_object_set_new(ann, ESTARGZ_ANNOTATION_TOC_DIGEST, json_digest(&l->toc_digest));
        json_object_set_new(ann, ESTARGZ_ANNOTATION_UNCOMPRESSED_SIZE, json_string(size));
        json_t *d = json_object();
        json_object_set_new(d, "mediaType", json_string(ESTARGZ_MT_LAYER));
        json_object_set_new(d, "digest", json_digest(&l->blob));
        json_object_set_new(d, "size", json_integer((json_int_t)l->blob_size));
        json_object_set_new(d, "annotations", ann);
        json_array_append_new(descs, d);
    }
    json_t *rootfs = json_object();
    json_object_set_new(rootfs, "type", json_string("layers"));
    json_object_set_new(rootfs, "diff_ids", ids);
    json_object_set_new(cfg, "rootfs", rootfs);
    char *c = json_dumps(cfg, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(cfg);
    if (!c) {
        json_decref(descs);
        return err_set(err, ENOMEM, "encoding the config");
    }
    struct digest cd;
    digest_of(c, strlen(c), &cd);
    json_t *cdesc = json_object();
    json_object_set_new(cdesc, "mediaType", json_string(ESTARGZ_MT_CONFIG));
    json_object_set_new(cdesc, "digest", json_digest(&cd));
    json_object_set_new(cdesc, "size", json_integer((json_int_t)strlen(c)));
    json_t *m = json_object();
    json_object_set_new(m, "schemaVersion", json_integer(2));
    json_object_set_new(m, "mediaType", json_string(ESTARGZ_MT_MANIFEST));
    json_object_set_new(m, "config", cdesc);
    json_object_set_new(m, "layers", descs);
    char *ms = json_dumps(m, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(m);
    if (!ms) {
        free(c);
        return err_set(err, ENOMEM, "encoding the manifest");
    }
    *config = c;
    *config_len = strlen(c);
    *manifest = ms;
    *manifest_len = strlen(ms);
    return 0;
}

/* ---- reading ---- */

int estargz_footer_parse(const void *footer, size_t len, uint64_t blob_size, uint64_t *toc_offset,
                         struct imgfs_err *err)
{
    const uint8_t *f = footer;
    if (len != ESTARGZ_FOOTER_SIZE || blob_size < ESTARGZ_FOOTER_SIZE)
        return err_set(err, EINVAL, "no eStargz footer: the blob is too short");
    if (f[0] != 0x1f || f[1] != 0x8b || f[2] != 8 || !(f[3] & 4) || f[10] != 26 || f[11] != 0 ||
        f[12] != 'S' || f[13] != 'G' || f[14] != 22 || f[15] != 0 ||
        memcmp(f + 32, "STARGZ", 6) != 0)
        return err_set(err, EINVAL, "no eStargz footer at the end of the blob");
    uint64_t off = 0;
    for (int i = 16; i < 32; i++) {
        int c = f[i], v = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (v < 0)
            return err_set(err, EINVAL, "eStargz footer: the TOC offset is not hex");
        off = off << 4 | (uint64_t)v;
    }
    if (off >= blob_size - ESTARGZ_FOOTER_SIZE)
        return err_set(err, EINVAL,
                       "eStargz footer: the TOC offset %llu is outside the blob (%llu bytes)",
                       (unsigned long long)off, (unsigned long long)blob_size);
    *toc_offset = off;
    return 0;
}

/* Read the TOC JSON out of its (compressed) tar member. */
static int toc_json(const void *data, size_t len, struct buf *out, struct imgfs_err *err)
{
    struct archive *a = archive_read_new();
    archive_read_support_filter_gzip(a);
    archive_read_support_format_tar(a);
    int ret = -1;
    struct archive_entry *ae;
    if (archive_read_open_memory(a, data, len) != ARCHIVE_OK ||
        archive_read_next_header(a, &ae) != ARCHIVE_OK) {
        err_set(err, EINVAL, "reading the TOC member: %s", archive_error_string(a));
        goto out;
    }
    const char *name = archive_entry_pathname(ae);
    if (!name || (strcmp(name, ESTARGZ_TOC_NAME) && strcmp(name, "./" ESTARGZ_TOC_NAME))) {
        err_set(err, EINVAL, "the TOC member holds `%s`, not %s", name ? name : "(no name)",
                ESTARGZ_TOC_NAME);
        goto out;
    }
    int64_t size = archive_entry_size(ae);
    if (size < 0 || (uint64_t)size > ESTARGZ_TOC_MAX) {
        err_set(err, EFBIG, "the TOC is %lld bytes, more than the %u MiB imgfs accepts",
                (long long)size, ESTARGZ_TOC_MAX >> 20);
        goto out;
    }
    buf_reserve(out, (size_t)size + 1);
    la_ssize_t n;
    while ((n = archive_read_data(a, out->data + out->len, out->cap - out->len)) > 0) {
        out->len += (size_t)n;
        if (out->len == out->cap)
            break;
    }
    if (n < 0 || out->len != (size_t)size) {
        err_set(err, EINVAL, "the TOC is truncated (%zu of %lld bytes): %s", out->len,
                (long long)size, n < 0 ? archive_error_string(a) : "short member");
        goto out;
    }
    ret = 0;
out:
    archive_read_free(a);
    return ret;
}

/* A TOC name as a layer path: "./usr/bin/" -> "usr/bin". `..` parts are refused. */
static int toc_path(json_t *v, const char *what, size_t idx, char **out, struct imgfs_err *err)
{
    const char *s = json_string_value(v);
    if (!s)
        return err_set(err, EINVAL, "TOC entry %zu: `%s` is not a string", idx, what);
    if (strlen(s) != json_string_length(v))
        return err_set(err, EINVAL, "TOC entry %zu: `%s` holds a NUL byte", idx, what);
    struct buf b = {0};
    const char *p = s;
    while (*p) {
        while (*p == '/')
            p++;
        const char *q = strchrnul(p, '/');
        size_t n = (size_t)(q - p);
        if (n == 2 && p[0] == '.' && p[1] == '.') {
            buf_free(&b);
            return err_set(err, EINVAL, "TOC entry %zu: `%s` `%s` has a `..` part", idx, what, s);
        }
        if (n && !(n == 1 && p[0] == '.')) {
            if (b.len)
                buf_append(&b, "/", 1);
            buf_append(&b, p, n);
        }
        p = q;
    }
    buf_append(&b, "", 1);
    *out = (char *)b.data;
    return 0;
}

static int get_uint(json_t *o, const char *key, uint64_t max, uint64_t *out, size_t idx,
                    struct imgfs_err *err)
{
    json_t *v = json_object_get(o, key);
    *out = 0;
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < 0 || (uint64_t)json_integer_value(v) > max)
        return err_set(err, EINVAL, "TOC entry %zu: `%s` is not an integer in 0..%llu", idx, key,
                       (unsigned long long)max);
    *out = (uint64_t)json_integer_value(v);
    return 0;
}

static const char *get_str(json_t *o, const char *key, size_t idx, struct imgfs_err *err, bool *bad)
{
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v))
        return NULL;
    const char *s = json_string_value(v);
    if (!s || strlen(s) != json_string_length(v)) {
        err_set(err, EINVAL, "TOC entry %zu: `%s` is not a string without NUL bytes", idx, key);
        *bad = true;
        return NULL;
    }
    return s;
}

/* RFC 3339 ("2019-08-20T10:30:43.123Z", "...+02:00"); an empty or absent time is 0. */
static int parse_time(const char *s, int64_t *sec, uint32_t *nsec)
{
    *sec = 0;
    *nsec = 0;
    if (!s || !*s)
        return 0;
    struct tm tm = {0};
    int consumed = 0;
    if (sscanf(s, "%d-%d-%dT%d:%d:%d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
               &tm.tm_min, &tm.tm_sec, &consumed) != 6)
        return -1;
    if (tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 ||
        tm.tm_min > 59 || tm.tm_sec > 60 || tm.tm_year < 0 || tm.tm_year > 9999)
        return -1;
    const char *p = s + consumed;
    if (*p == '.') {
        uint32_t scale = 100000000;
        for (p++; *p >= '0' && *p <= '9'; p++) {
            *nsec += (uint32_t)(*p - '0') * scale;
            scale /= 10;
        }
    }
    int64_t zone = 0;
    if (*p == '+' || *p == '-') {
        int h, m;
        if (sscanf(p + 1, "%2d:%2d", &h, &m) != 2 || strlen(p) != 6)
            return -1;
        zone = (*p == '-' ? -1 : 1) * (int64_t)(h * 3600 + m * 60);
    } else if (strcmp(p, "Z") != 0) {
        return -1;
    }
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    *sec = (int64_t)timegm(&tm) - zone;
    return 0;
}

static int kind_of(const char *type, enum layer_kind *k)
{
    static const struct {
        const char *name;
        enum layer_kind kind;
    } kinds[] = {{"dir", LAYER_DIR},           {"reg", LAYER_REG},   {"symlink", LAYER_SYMLINK},
                 {"hardlink", LAYER_HARDLINK}, {"char", LAYER_CHAR}, {"block", LAYER_BLOCK},
                 {"fifo", LAYER_FIFO}};
    for (size_t i = 0; i < sizeof kinds / sizeof *kinds; i++)
        if (!strcmp(type, kinds[i].name)) {
            *k = kinds[i].kind;
            return 0;
        }
    return -1;
}

/* The regular file whose chunks are being collected. */
struct pending_file {
    bool active;
    struct layer_entry e;
    char *path, *link;
    struct layer_extent *extents;
    uint32_t n_extents, cap;
    struct layer_xattr *xattrs;
    uint8_t **xattr_values;
    uint64_t pos; /* bytes covered by chunks so far */
    size_t idx;
    json_t *json; /* its TOC entry: e.uname, e.gname and the xattr names point into it */
};

struct toc_reader {
    struct estargz_toc *t;
    struct layer_writer w;
    struct pending_file f;
    size_t cap_chunks;
    uint64_t toc_offset;
};

static void pending_clear(struct pending_file *f)
{
    for (uint32_t i = 0; i < f->e.n_xattrs; i++)
        free(f->xattr_values[i]);
    free(f->xattr_values);
    free(f->xattrs);
    free(f->path);
    free(f->link);
    free(f->extents);
    json_decref(f->json);
    memset(f, 0, sizeof *f);
}

static int pending_flush(struct toc_reader *tr, struct imgfs_err *err)
{
    struct pending_file *f = &tr->f;
    if (!f->active)
        return 0;
    if (f->e.kind == LAYER_REG && f->pos != f->e.size) {
        err_set(err, EINVAL, "TOC entry %zu: `%s` has %llu bytes, its chunks cover %llu", f->idx,
                f->path, (unsigned long long)f->e.size, (unsigned long long)f->pos);
        pending_clear(f);
        return -1;
    }
    f->e.extents = f->extents;
    f->e.xattrs = f->xattrs;
    layer_writer_add(&tr->w, &f->e);
    pending_clear(f);
    return 0;
}

/* Add a chunk (a `reg`'s first, or a `chunk` entry) to the pending file. */
static int add_chunk(struct toc_reader *tr, json_t *o, size_t idx, struct imgfs_err *err)
{
    struct pending_file *f = &tr->f;
    uint64_t offset, chunk_offset, chunk_size, inner;
    if (get_uint(o, "offset", INT64_MAX, &offset, idx, err) < 0 ||
        get_uint(o, "chunkOffset", INT64_MAX, &chunk_offset, idx, err) < 0 ||
        get_uint(o, "chunkSize", INT64_MAX, &chunk_size, idx, err) < 0 ||
        get_uint(o, "innerOffset", INT64_MAX, &inner, idx, err) < 0)
        return -1;
    if (chunk_offset != f->pos)
        return err_set(err, EINVAL,
                       "TOC entry %zu: a chunk of `%s` starts at %llu, the one before ends at %llu",
                       idx, f->path, (unsigned long long)chunk_offset, (unsigned long long)f->pos);
    if (!chunk_size)
        chunk_size = f->e.size - f->pos;
    if (chunk_size == 0 || chunk_size > f->e.size - f->pos)
        return err_set(err, EINVAL, "TOC entry %zu: a chunk of `%s` lies outside the file", idx,
                       f->path);
    if (chunk_size > ESTARGZ_CHUNK_MAX)
        return err_set(err, EINVAL,
                       "TOC entry %zu: a chunk of `%s` has %llu bytes (at most %u MiB)", idx,
                       f->path, (unsigned long long)chunk_size, ESTARGZ_CHUNK_MAX >> 20);
    if (offset >= tr->toc_offset)
        return err_set(err, EINVAL,
                       "TOC entry %zu: a chunk of `%s` is at offset %llu, outside the blob's "
                       "content (which ends at %llu)",
                       idx, f->path, (unsigned long long)offset,
                       (unsigned long long)tr->toc_offset);
    json_t *dv = json_object_get(o, "chunkDigest");
    struct digest d;
    if (!dv)
        return err_set(err, ENOTSUP,
                       "TOC entry %zu: `%s` has no chunkDigest (a legacy stargz layer)", idx,
                       f->path);
    if (!json_is_string(dv) || digest_parse(json_string_value(dv), false, &d) < 0)
        return err_set(err, EINVAL, "TOC entry %zu: chunkDigest of `%s` is not a sha256 digest",
                       idx, f->path);
    if (f->n_extents == f->cap) {
        f->cap = f->cap ? f->cap * 2 : 4;
        f->extents = xrealloc(f->extents, f->cap * sizeof *f->extents);
    }
    f->extents[f->n_extents++] =
        (struct layer_extent){.offset = f->pos, .length = (uint32_t)chunk_size, .chunk = d};
    f->e.n_extents = f->n_extents;
    f->pos += chunk_size;
    struct estargz_toc *t = tr->t;
    if (t->n_chunks == tr->cap_chunks) {
        tr->cap_chunks = tr->cap_chunks ? tr->cap_chunks * 2 : 256;
        t->chunks = xrealloc(t->chunks, tr->cap_chunks * sizeof *t->chunks);
    }
    t->chunks[t->n_chunks++] = (struct estargz_chunk){
        .digest = d, .offset = offset, .inner = inner, .size = (uint32_t)chunk_size};
    t->content_bytes += chunk_size;
    return 0;
}

/* Decode base64 (standard, padded); -1 when it is not. */
static int b64_decode(const char *b64, uint8_t **out, size_t *len)
{
    size_t blen = strlen(b64);
    if (blen % 4 || blen > INT32_MAX)
        return -1;
    uint8_t *val = xmalloc(blen / 4 * 3 + 1);
    int got = EVP_DecodeBlock(val, (const unsigned char *)b64, (int)blen);
    if (got < 0) {
        free(val);
        return -1;
    }
    for (size_t pad = blen; pad > 0 && b64[pad - 1] == '='; pad--)
        got--;
    val[got] = 0;
    *out = val;
    *len = (size_t)got;
    return 0;
}

/* The exact bytes of names that are not UTF-8 (set_text): KEY@base64 replaces KEY. */
static int undo_base64(json_t *o, size_t idx, struct imgfs_err *err)
{
    static const char *const keys[] = {"name", "linkName", "userName", "groupName"};
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++) {
        char k64[32];
        snprintf(k64, sizeof k64, "%s@base64", keys[i]);
        json_t *v = json_object_get(o, k64);
        if (!v)
            continue;
        uint8_t *raw;
        size_t len;
        if (!json_is_string(v) || b64_decode(json_string_value(v), &raw, &len) < 0)
            return err_set(err, EINVAL, "TOC entry %zu: `%s` is not base64", idx, k64);
        json_object_set_new(o, keys[i], json_stringn_nocheck((const char *)raw, len));
        free(raw);
    }
    json_t *raw = json_object_get(o, "xattrs@base64");
    if (raw) {
        json_t *x = json_object_get(o, "xattrs");
        if (!json_is_object(raw) || (x && !json_is_object(x)))
            return err_set(err, EINVAL, "TOC entry %zu: xattrs@base64 is not an object", idx);
        if (!x) {
            x = json_object();
            json_object_set_new(o, "xattrs", x);
        }
        const char *n64;
        json_t *v;
        json_object_foreach(raw, n64, v)
        {
            uint8_t *name;
            size_t len;
            if (b64_decode(n64, &name, &len) < 0 || strlen((char *)name) != len || !len) {
                if (len)
                    free(name);
                return err_set(err, EINVAL, "TOC entry %zu: an xattr name is not base64", idx);
            }
            json_object_set_nocheck(x, (const char *)name, v);
            free(name);
        }
    }
    return 0;
}

static int toc_entry(struct toc_reader *tr, json_t *o, size_t idx, bool plain,
                     struct imgfs_err *err)
{
    if (!json_is_object(o))
        return err_set(err, EINVAL, "TOC entry %zu is not an object", idx);
    if (!plain && undo_base64(o, idx, err) < 0)
        return -1;
    bool bad = false;
    const char *type = get_str(o, "type", idx, err, &bad);
    if (bad)
        return -1;
    if (!type)
        return err_set(err, EINVAL, "TOC entry %zu has no type", idx);
    cleanup_free char *path = NULL;
    if (toc_path(json_object_get(o, "name"), "name", idx, &path, err) < 0)
        return -1;
    if (!strcmp(type, "chunk")) {
        if (!tr->f.active || tr->f.e.kind != LAYER_REG || strcmp(tr->f.path, path))
            return err_set(err, EINVAL, "TOC entry %zu: a chunk of `%s` follows no such file", idx,
                           path);
        return add_chunk(tr, o, idx, err);
    }
    if (pending_flush(tr, err) < 0)
        return -1;
    enum layer_kind kind;
    if (kind_of(type, &kind) < 0)
        return err_set(err, EINVAL, "TOC entry %zu: unknown type `%s`", idx, type);
    if (!strcmp(path, ESTARGZ_TOC_NAME))
        return 0; /* not a file of the image */
    uint64_t offset;
    if (!strcmp(path, ESTARGZ_PREFETCH_NAME) || !strcmp(path, ESTARGZ_NOPREFETCH_NAME)) {
        if (get_uint(o, "offset", INT64_MAX, &offset, idx, err) < 0)
            return -1;
        if (!strcmp(path, ESTARGZ_PREFETCH_NAME) && offset < tr->toc_offset)
            tr->t->prefetch_end = offset;
        return 0;
    }
    if (!*path && kind != LAYER_DIR)
        return err_set(err, EINVAL, "TOC entry %zu: the root is a `%s`, not a directory", idx,
                       type);
    struct pending_file *f = &tr->f;
    f->active = true;
    f->idx = idx;
    f->path = get_and_reset(&path);
    f->e.path = f->path;
    f->json = json_incref(o);
    f->e.kind = kind;
    uint64_t mode, uid, gid, size, major, minor;
    if (get_uint(o, "mode", UINT32_MAX, &mode, idx, err) < 0 ||
        get_uint(o, "uid", UINT32_MAX, &uid, idx, err) < 0 ||
        get_uint(o, "gid", UINT32_MAX, &gid, idx, err) < 0 ||
        get_uint(o, "size", INT64_MAX, &size, idx, err) < 0 ||
        get_uint(o, "devMajor", UINT32_MAX, &major, idx, err) < 0 ||
        get_uint(o, "devMinor", UINT32_MAX, &minor, idx, err) < 0)
        return -1;
    f->e.mode = (uint32_t)mode & 07777;
    f->e.uid = (uint32_t)uid;
    f->e.gid = (uint32_t)gid;
    f->e.size = kind == LAYER_REG ? size : 0;
    f->e.rdev_major = (uint32_t)major;
    f->e.rdev_minor = (uint32_t)minor;
    const char *mt = get_str(o, "modtime", idx, err, &bad);
    f->e.uname = get_str(o, "userName", idx, err, &bad);
    f->e.gname = get_str(o, "groupName", idx, err, &bad);
    if (bad)
        return -1;
    if (parse_time(mt, &f->e.mtime_sec, &f->e.mtime_nsec) < 0)
        return err_set(err, EINVAL, "TOC entry %zu: modtime `%s` is not an RFC 3339 time", idx, mt);
    if (kind == LAYER_SYMLINK) {
        const char *l = get_str(o, "linkName", idx, err, &bad);
        if (bad)
            return -1;
        if (!l || !*l)
            return err_set(err, EINVAL, "TOC entry %zu: symlink `%s` has no linkName", idx,
                           f->path);
        f->link = xstrdup(l);
    } else if (kind == LAYER_HARDLINK) {
        if (toc_path(json_object_get(o, "linkName"), "linkName", idx, &f->link, err) < 0)
            return -1;
    }
    f->e.link = f->link;
    json_t *xs = json_object_get(o, "xattrs");
    if (xs && !json_is_null(xs)) {
        if (!json_is_object(xs))
            return err_set(err, EINVAL, "TOC entry %zu: xattrs is not an object", idx);
        size_t n = json_object_size(xs), k = 0;
        f->xattrs = xcalloc(n ? n : 1, sizeof *f->xattrs);
        f->xattr_values = xcalloc(n ? n : 1, sizeof *f->xattr_values);
        const char *name;
        json_t *v;
        json_object_foreach(xs, name, v)
        {
            const char *b64 = json_string_value(v);
            uint8_t *val;
            size_t got;
            if (!b64 || b64_decode(b64, &val, &got) < 0)
                return err_set(err, EINVAL, "TOC entry %zu: xattr `%s` is not base64", idx, name);
            f->xattr_values[k] = val;
            f->xattrs[k] = (struct layer_xattr){.name = name, .value = val, .len = (uint32_t)got};
            f->e.n_xattrs = (uint32_t)++k;
        }
    }
    if (kind == LAYER_REG && size > 0)
        return add_chunk(tr, o, idx, err);
    return 0;
}

static int chunk_by_offset(const void *a, const void *b)
{
    const struct estargz_chunk *x = a, *y = b;
    if (x->offset != y->offset)
        return x->offset < y->offset ? -1 : 1;
    return x->inner < y->inner ? -1 : x->inner > y->inner;
}

static int chunk_by_digest(const void *a, const void *b)
{
    const struct estargz_chunk *x = a, *y = b;
    int c = memcmp(x->digest.b, y->digest.b, DIGEST_LEN);
    if (c)
        return c;
    return chunk_by_offset(a, b);
}

/* Each chunk's member range ends where the next member with content starts (or at the TOC);
 * a digest seen twice is fetched from its first place only. */
static void finish_chunks(struct estargz_toc *t)
{
    if (!t->n_chunks)
        return;
    qsort(t->chunks, t->n_chunks, sizeof *t->chunks, chunk_by_offset);
    for (size_t i = t->n_chunks; i-- > 0;) {
        size_t j = i + 1;
        while (j < t->n_chunks && t->chunks[j].offset == t->chunks[i].offset)
            j++;
        t->chunks[i].end = j < t->n_chunks ? t->chunks[j].offset : t->toc_offset;
    }
    qsort(t->chunks, t->n_chunks, sizeof *t->chunks, chunk_by_digest);
    size_t n = 0;
    for (size_t i = 0; i < t->n_chunks; i++)
        if (!n || !digest_equal(&t->chunks[n - 1].digest, &t->chunks[i].digest))
            t->chunks[n++] = t->chunks[i];
    t->n_chunks = n;
    qsort(t->chunks, t->n_chunks, sizeof *t->chunks, chunk_by_offset);
}

/* ---- the TOC's JSON, one entry at a time ----
 * jansson parsing the whole TOC at once (json_loadb) made a tree of every entry (26,227 objects,
 * 7.3 MB of JSON for the Debian+golang layer) and freed it afterwards, on the path to a lazy start.
 * So the TOC is read one value at a time: toc_walk steps over the top-level object and the
 * `entries` array (whitespace, `{ } [ ] , :` and the extent of a key) and jansson parses every key
 * and value (json_loadb, JSON_REJECT_DUPLICATES, no JSON_ALLOW_NUL: its grammar and checks, as
 * before), each entry into an object of its own that toc_entry reads and that is freed before the
 * next. Untrusted input: tests/fuzz/fuzz_estargz.c. */

#define JP_FLAGS (JSON_REJECT_DUPLICATES | JSON_DECODE_ANY)

struct jp {
    const char *p;
    size_t len, i;
    struct imgfs_err *err;
};

static void jp_ws(struct jp *j)
{
    while (j->i < j->len &&
           (j->p[j->i] == ' ' || j->p[j->i] == '\t' || j->p[j->i] == '\n' || j->p[j->i] == '\r'))
        j->i++;
}

static json_t *jp_fail(struct jp *j, const char *what)
{
    err_set(j->err, EINVAL, "the TOC is not a JSON object: %s at byte %zu", what, j->i);
    return NULL;
}

/* After a member or an element: 1 at a `,` (another follows), 0 at `close` (the end), -1 and the
 * error otherwise. */
static int jp_next(struct jp *j, char close)
{
    jp_ws(j);
    if (j->i < j->len && j->p[j->i] == ',') {
        j->i++;
        return 1;
    }
    if (j->i < j->len && j->p[j->i] == close) {
        j->i++;
        return 0;
    }
    jp_fail(j, close == ']' ? "`,` or `]` expected" : "`,` or `}` expected");
    return -1;
}

/* The value at j->i, parsed by jansson. An object or an array ends where jansson stops reading
 * (JSON_DISABLE_EOF_CHECK: error.position is the bytes it read, exact after a `}` or `]`); a
 * string ends at its closing quote, any other scalar at the next structural character or
 * whitespace, and jansson parses exactly that span. */
static json_t *jp_value(struct jp *j)
{
    json_error_t je;
    const char *at = j->p + j->i;
    size_t left = j->len - j->i, n = 0;
    json_t *v;
    if (left && (*at == '{' || *at == '[')) {
        v = json_loadb(at, left, JP_FLAGS | JSON_DISABLE_EOF_CHECK, &je);
        n = v ? (size_t)je.position : 0;
    } else {
        if (left && *at == '"') {
            for (n = 1; n < left && at[n] != '"'; n++)
                if (at[n] == '\\')
                    n++;
            n = n < left ? n + 1 : left;
        } else
            while (n < left && !strchr(",:{}[] \t\r\n\"", at[n]) && at[n])
                n++;
        v = json_loadb(at, n, JP_FLAGS, &je);
    }
    if (!v) {
        err_set(j->err, EINVAL, "the TOC is not a JSON object: %s at byte %zu", je.text,
                j->i + (je.position > 0 ? (size_t)je.position : 0));
        return NULL;
    }
    j->i += n;
    return v;
}

/* `{"version":1,"entries":[...]}` (members in any order, others allowed), each entry handed to
 * toc_entry as it is parsed. */
static int toc_walk(const char *p, size_t len, struct toc_reader *tr, struct imgfs_err *err)
{
    struct jp j = {.p = p, .len = len, .err = err};
    int ret = -1;
    json_t *seen = json_object(); /* the top-level keys: a duplicate is refused */
    bool have_version = false, have_entries = false;
    jp_ws(&j);
    if (j.i >= len || p[j.i] != '{') {
        err_set(err, EINVAL, "the TOC is not a JSON object");
        goto out;
    }
    j.i++;
    jp_ws(&j);
    if (j.i < len && p[j.i] == '}')
        j.i++;
    else
        for (;;) {
            jp_ws(&j);
            if (j.i >= len || p[j.i] != '"') {
                jp_fail(&j, "a key expected");
                goto out;
            }
            json_t *k = jp_value(&j);
            if (!k)
                goto out;
            const char *key = json_string_value(k);
            size_t klen = json_string_length(k);
            bool dup = json_object_getn(seen, key, klen) != NULL;
            if (!dup)
                json_object_setn_new_nocheck(seen, key, klen, json_true());
            bool entries = klen == 7 && !memcmp(key, "entries", 7),
                 version = klen == 7 && !memcmp(key, "version", 7);
            json_decref(k);
            if (dup) {
                jp_fail(&j, "a duplicate key");
                goto out;
            }
            jp_ws(&j);
            if (j.i >= len || p[j.i] != ':') {
                jp_fail(&j, "`:` expected");
                goto out;
            }
            j.i++;
            jp_ws(&j);
            if (entries && j.i < len && p[j.i] == '[') {
                have_entries = true;
                j.i++;
                jp_ws(&j);
                if (j.i < len && p[j.i] == ']')
                    j.i++;
                else
                    for (size_t idx = 0;; idx++) {
                        if (idx >= ESTARGZ_ENTRIES_MAX) {
                            err_set(err, EFBIG,
                                    "the TOC has more than the %u entries imgfs accepts",
                                    ESTARGZ_ENTRIES_MAX);
                            goto out;
                        }
                        jp_ws(&j);
                        size_t from = j.i;
                        json_t *o = jp_value(&j);
                        if (!o)
                            goto out;
                        /* names that are not UTF-8 come as KEY@base64 (undo_base64): an entry
                         * without `base64` or an escape has none, and skips those look-ups */
                        bool plain = !memmem(p + from, j.i - from, "base64", 6) &&
                                     !memchr(p + from, '\\', j.i - from);
                        int rc = toc_entry(tr, o, idx, plain, err);
                        json_decref(o);
                        if (rc < 0)
                            goto out;
                        int more = jp_next(&j, ']');
                        if (more < 0)
                            goto out;
                        if (!more)
                            break;
                    }
            } else {
                json_t *v = jp_value(&j);
                if (!v)
                    goto out;
                bool bad_version = version && (!json_is_integer(v) || json_integer_value(v) != 1);
                have_version |= version;
                json_decref(v);
                if (bad_version) {
                    err_set(err, EINVAL, "the TOC's version is not 1");
                    goto out;
                }
                if (entries) {
                    err_set(err, EINVAL, "the TOC has no entries array");
                    goto out;
                }
            }
            int more = jp_next(&j, '}');
            if (more < 0)
                goto out;
            if (!more)
                break;
        }
    jp_ws(&j);
    if (j.i != len) {
        jp_fail(&j, "data after it");
        goto out;
    }
    if (!have_version) {
        err_set(err, EINVAL, "the TOC's version is not 1");
        goto out;
    }
    if (!have_entries) {
        err_set(err, EINVAL, "the TOC has no entries array");
        goto out;
    }
    ret = 0;
out:
    json_decref(seen);
    return ret;
}

int estargz_toc_parse(const void *data, size_t len, uint64_t toc_offset,
                      const struct digest *expect, struct estargz_toc *out, struct imgfs_err *err)
{
    memset(out, 0, sizeof *out);
    out->toc_offset = toc_offset;
    struct buf js = {0};
    struct toc_reader tr = {.t = out, .toc_offset = toc_offset};
    layer_writer_init(&tr.w);
    int ret = -1;
    if (toc_json(data, len, &js, err) < 0)
        goto out;
    digest_of(js.data, js.len, &out->toc_digest);
    if (expect && !digest_equal(expect, &out->toc_digest)) {
        char want[DIGEST_STR_SIZE], got[DIGEST_STR_SIZE];
        digest_str(expect, want);
        digest_str(&out->toc_digest, got);
        err_set(err, EINVAL, "the TOC's digest is %s, the layer's annotation says %s", got, want);
        goto out;
    }
    if (toc_walk((const char *)js.data, js.len, &tr, err) < 0)
        goto out;
    if (pending_flush(&tr, err) < 0)
        goto out;
    layer_writer_finish(&tr.w);
    out->table = tr.w.out;
    tr.w.out = (struct buf){0};
    finish_chunks(out);
    ret = 0;
out:
    if (ret < 0) {
        err_ctx(err, "reading the eStargz TOC");
        estargz_toc_free(out);
    }
    pending_clear(&tr.f);
    buf_free(&tr.w.out);
    buf_free(&js);
    return ret;
}

void estargz_toc_free(struct estargz_toc *t)
{
    buf_free(&t->table);
    free(t->chunks);
    t->chunks = NULL;
    t->n_chunks = 0;
}

int estargz_chunk_extract(const void *data, size_t len, const struct estargz_chunk *c, void *out,
                          struct imgfs_err *err)
{
    z_stream z = {0};
    if (inflateInit2(&z, 15 + 16) != Z_OK)
        return err_set(err, ENOMEM, "starting gzip decompression");
    z.next_in = (Bytef *)data;
    z.avail_in = len > UINT32_MAX ? UINT32_MAX : (uInt)len;
    uint64_t skip = c->inner, got = 0;
    uint8_t scratch[16384];
    int ret = -1;
    while (got < c->size) {
        bool skipping = skip > 0;
        z.next_out = skipping ? scratch : (Bytef *)out + got;
        uint64_t want = skipping ? (skip < sizeof scratch ? skip : sizeof scratch) : c->size - got;
        z.avail_out = (uInt)want;
        int rc = inflate(&z, Z_NO_FLUSH);
        uint64_t n = want - z.avail_out;
        if (skipping)
            skip -= n;
        else
            got += n;
        if (rc == Z_STREAM_END) {
            if (z.avail_in == 0)
                break;
            inflateReset(&z); /* the next member */
            continue;
        }
        if (rc != Z_OK) {
            err_set(err, EIO, "decompressing: %s", z.msg ? z.msg : "corrupt gzip data");
            goto out;
        }
        if (n == 0 && z.avail_in == 0)
            break;
    }
    if (got != c->size) {
        err_set(err, EIO, "the blob range holds %llu of the chunk's %u bytes",
                (unsigned long long)got, c->size);
        goto out;
    }
    struct digest d;
    digest_of(out, c->size, &d);
    if (!digest_equal(&d, &c->digest)) {
        char want[DIGEST_STR_SIZE], have[DIGEST_STR_SIZE];
        digest_str(&c->digest, want);
        digest_str(&d, have);
        err_set(err, EIO, "chunk %s: the registry's bytes hash to %s", want, have);
        goto out;
    }
    ret = 0;
out:
    inflateEnd(&z);
    return ret;
}
