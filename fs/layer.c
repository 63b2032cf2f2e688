#include "layer.h"
#include "store.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#define LAYER_MAGIC "IMGFSLY1"
#define HEADER_LEN  16 /* magic + entry count (u64 LE) */

enum { HAS_LINK = 1, HAS_UNAME = 2, HAS_GNAME = 4 };

static void put_varint(struct buf *b, uint64_t v)
{
    uint8_t tmp[10];
    int n = 0;
    do {
        tmp[n] = v & 0x7f;
        v >>= 7;
        if (v)
            tmp[n] |= 0x80;
        n++;
    } while (v);
    buf_append(b, tmp, n);
}

static void put_cstr(struct buf *b, const char *s)
{
    buf_append(b, s, strlen(s) + 1);
}

void layer_writer_init(struct layer_writer *w)
{
    memset(w, 0, sizeof *w);
    buf_append(&w->out, LAYER_MAGIC, 8);
    uint64_t zero = 0;
    buf_append(&w->out, &zero, 8);
}

void layer_writer_add(struct layer_writer *w, const struct layer_entry *e)
{
    struct buf *b = &w->out;
    put_cstr(b, e->path);
    uint8_t kind = e->kind;
    buf_append(b, &kind, 1);
    put_varint(b, e->mode);
    put_varint(b, e->uid);
    put_varint(b, e->gid);
    put_varint(b, ((uint64_t)e->mtime_sec << 1) ^ (uint64_t)(e->mtime_sec >> 63)); /* zigzag */
    put_varint(b, e->mtime_nsec);
    put_varint(b, e->size);
    put_varint(b, e->rdev_major);
    put_varint(b, e->rdev_minor);
    uint8_t flags = (e->link ? HAS_LINK : 0) | (e->uname ? HAS_UNAME : 0) |
                    (e->gname ? HAS_GNAME : 0);
    buf_append(b, &flags, 1);
    if (e->link)
        put_cstr(b, e->link);
    if (e->uname)
        put_cstr(b, e->uname);
    if (e->gname)
        put_cstr(b, e->gname);
    put_varint(b, e->n_xattrs);
    for (uint32_t i = 0; i < e->n_xattrs; i++) {
        put_cstr(b, e->xattrs[i].name);
        put_varint(b, e->xattrs[i].len);
        buf_append(b, e->xattrs[i].value, e->xattrs[i].len);
    }
    put_varint(b, e->n_extents);
    for (uint32_t i = 0; i < e->n_extents; i++) {
        put_varint(b, e->extents[i].offset);
        put_varint(b, e->extents[i].length);
        buf_append(b, e->extents[i].chunk.b, DIGEST_LEN);
    }
    w->entries++;
}

void layer_writer_finish(struct layer_writer *w)
{
    memcpy(w->out.data + 8, &w->entries, 8);
}

int layer_reader_init(struct layer_reader *r, const void *table, size_t len,
                      struct imgfs_err *err)
{
    memset(r, 0, sizeof *r);
    if (len < HEADER_LEN || memcmp(table, LAYER_MAGIC, 8))
        return err_set(err, EIO, "not a layer table (bad header)");
    r->p = (const uint8_t *)table + HEADER_LEN;
    r->end = (const uint8_t *)table + len;
    memcpy(&r->entries_left, (const uint8_t *)table + 8, 8);
    return 0;
}

static int get_varint(struct layer_reader *r, uint64_t *v)
{
    uint64_t x = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (r->p >= r->end)
            return -1;
        uint8_t c = *r->p++;
        x |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80)) {
            *v = x;
            return 0;
        }
    }
    return -1;
}

static int get_u32(struct layer_reader *r, uint32_t *v)
{
    uint64_t x;
    if (get_varint(r, &x) < 0 || x > UINT32_MAX)
        return -1;
    *v = (uint32_t)x;
    return 0;
}

static int get_cstr(struct layer_reader *r, const char **s)
{
    const uint8_t *nul = memchr(r->p, 0, r->end - r->p);
    if (!nul)
        return -1;
    *s = (const char *)r->p;
    r->p = nul + 1;
    return 0;
}

int layer_next(struct layer_reader *r, struct layer_entry *e, struct imgfs_err *err)
{
    if (!r->entries_left)
        return 0;
    memset(e, 0, sizeof *e);
    uint64_t mt, size;
    uint8_t flags;
    if (get_cstr(r, &e->path) < 0 || r->p >= r->end)
        goto bad;
    e->kind = *r->p++;
    if (get_u32(r, &e->mode) < 0 || get_u32(r, &e->uid) < 0 || get_u32(r, &e->gid) < 0 ||
        get_varint(r, &mt) < 0 || get_u32(r, &e->mtime_nsec) < 0 || get_varint(r, &size) < 0 ||
        get_u32(r, &e->rdev_major) < 0 || get_u32(r, &e->rdev_minor) < 0 || r->p >= r->end)
        goto bad;
    e->mtime_sec = (int64_t)(mt >> 1) ^ -(int64_t)(mt & 1);
    e->size = size;
    flags = *r->p++;
    if ((flags & HAS_LINK) && get_cstr(r, &e->link) < 0)
        goto bad;
    if ((flags & HAS_UNAME) && get_cstr(r, &e->uname) < 0)
        goto bad;
    if ((flags & HAS_GNAME) && get_cstr(r, &e->gname) < 0)
        goto bad;
    if (get_u32(r, &e->n_xattrs) < 0 || e->n_xattrs > (size_t)(r->end - r->p))
        goto bad;
    if (e->n_xattrs > r->xattrs_cap) {
        r->xattrs = xrealloc(r->xattrs, e->n_xattrs * sizeof *r->xattrs);
        r->xattrs_cap = e->n_xattrs;
    }
    for (uint32_t i = 0; i < e->n_xattrs; i++) {
        struct layer_xattr *x = &r->xattrs[i];
        if (get_cstr(r, &x->name) < 0 || get_u32(r, &x->len) < 0 ||
            x->len > (size_t)(r->end - r->p))
            goto bad;
        x->value = r->p;
        r->p += x->len;
    }
    e->xattrs = r->xattrs;
    if (get_u32(r, &e->n_extents) < 0 || e->n_extents > (size_t)(r->end - r->p) / 34)
        goto bad;
    if (e->n_extents > r->extents_cap) {
        r->extents = xrealloc(r->extents, e->n_extents * sizeof *r->extents);
        r->extents_cap = e->n_extents;
    }
    for (uint32_t i = 0; i < e->n_extents; i++) {
        struct layer_extent *x = &r->extents[i];
        if (get_varint(r, &x->offset) < 0 || get_u32(r, &x->length) < 0 ||
            (size_t)(r->end - r->p) < DIGEST_LEN)
            goto bad;
        memcpy(x->chunk.b, r->p, DIGEST_LEN);
        r->p += DIGEST_LEN;
    }
    e->extents = r->extents;
    if (e->kind < LAYER_REG || e->kind > LAYER_SOCKET ||
        ((e->kind == LAYER_HARDLINK || e->kind == LAYER_SYMLINK) && !e->link))
        goto bad;
    r->entries_left--;
    return 1;
bad:
    return err_set(err, EIO, "layer table is corrupt near entry `%s`",
                   e->path ? e->path : "(start)");
}

void layer_reader_free(struct layer_reader *r)
{
    free(r->xattrs);
    free(r->extents);
    memset(r, 0, sizeof *r);
}

/* ---- tar ---- */

static mode_t kind_to_type(enum layer_kind k)
{
    switch (k) {
    case LAYER_DIR: return AE_IFDIR;
    case LAYER_SYMLINK: return AE_IFLNK;
    case LAYER_CHAR: return AE_IFCHR;
    case LAYER_BLOCK: return AE_IFBLK;
    case LAYER_FIFO: return AE_IFIFO;
    case LAYER_SOCKET: return AE_IFSOCK;
    default: return AE_IFREG;
    }
}

/* Is [0, size) covered by the runs without a gap? Empty runs do not count. */
static bool covers_all(uint64_t size, const struct layer_run *runs, size_t n)
{
    uint64_t pos = 0;
    for (size_t i = 0; i < n; i++) {
        if (!runs[i].length)
            continue;
        if (runs[i].offset != pos)
            return false;
        pos += runs[i].length;
    }
    return pos == size;
}

/* libarchive merges adjacent entries itself; a file with no data at all still needs one entry, or
 * the writer would take it for a plain file and write every zero. */
static void add_runs(struct archive_entry *ae, const struct layer_run *runs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (runs[i].length)
            archive_entry_sparse_add_entry(ae, (la_int64_t)runs[i].offset,
                                           (la_int64_t)runs[i].length);
    if (archive_entry_sparse_count(ae) == 0)
        archive_entry_sparse_add_entry(ae, archive_entry_size(ae), 0);
}

void layer_archive_set_runs(struct archive_entry *ae, const struct layer_run *runs, size_t n)
{
    archive_entry_sparse_clear(ae);
    if (!covers_all((uint64_t)archive_entry_size(ae), runs, n))
        add_runs(ae, runs, n);
}

static void set_sparse_from_extents(struct archive_entry *ae, const struct layer_entry *e)
{
    struct layer_run *runs = xmalloc((e->n_extents + 1) * sizeof *runs);
    for (uint32_t i = 0; i < e->n_extents; i++)
        runs[i] = (struct layer_run){e->extents[i].offset, e->extents[i].length};
    layer_archive_set_runs(ae, runs, e->n_extents);
    free(runs);
}

void layer_entry_to_archive(const struct layer_entry *e, struct archive_entry *ae)
{
    archive_entry_clear(ae);
    /* Directories carry the conventional trailing slash; the root is "./". */
    if (e->kind == LAYER_DIR) {
        cleanup_free char *p = *e->path ? xasprintf("%s/", e->path) : xstrdup("./");
        archive_entry_copy_pathname(ae, p);
    } else {
        archive_entry_copy_pathname(ae, e->path);
    }
    archive_entry_set_filetype(ae, kind_to_type(e->kind));
    archive_entry_set_perm(ae, e->mode & 07777);
    archive_entry_set_uid(ae, e->uid);
    archive_entry_set_gid(ae, e->gid);
    if (e->uname)
        archive_entry_copy_uname(ae, e->uname);
    if (e->gname)
        archive_entry_copy_gname(ae, e->gname);
    archive_entry_set_mtime(ae, e->mtime_sec, e->mtime_nsec);
    if (e->kind == LAYER_HARDLINK) {
        archive_entry_copy_hardlink(ae, e->link);
        archive_entry_set_size(ae, 0);
    } else if (e->kind == LAYER_SYMLINK) {
        archive_entry_copy_symlink(ae, e->link);
    } else if (e->kind == LAYER_REG) {
        archive_entry_set_size(ae, e->size);
        set_sparse_from_extents(ae, e);
    }
    if (e->kind == LAYER_CHAR || e->kind == LAYER_BLOCK) {
        archive_entry_set_rdevmajor(ae, e->rdev_major);
        archive_entry_set_rdevminor(ae, e->rdev_minor);
    }
    for (uint32_t i = 0; i < e->n_xattrs; i++)
        archive_entry_xattr_add_entry(ae, e->xattrs[i].name, e->xattrs[i].value,
                                      e->xattrs[i].len);
}

struct archive *layer_tar_writer_new(void *ctx,
                                     ssize_t (*write_fn)(struct archive *, void *, const void *,
                                                         size_t))
{
    struct archive *a = archive_write_new();
    if (!a)
        abort();
    archive_write_set_format_pax(a);
    archive_write_add_filter_none(a);
    /* no padding of the last record: the canonical tar ends with the two zero blocks */
    archive_write_set_bytes_per_block(a, 0);
    if (archive_write_open(a, ctx, NULL, write_fn, NULL) != ARCHIVE_OK)
        abort();
    return a;
}

/* A read-only mapping of zero pages, never touched by the writer when it skips a hole but valid
 * memory all the same (and zeros, were it ever read). */
#define HOLE_PIECE (1u << 30)
static const void *hole_zeros;
static pthread_once_t hole_once = PTHREAD_ONCE_INIT;

static void hole_map(void)
{
    void *p = mmap(NULL, HOLE_PIECE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    hole_zeros = p == MAP_FAILED ? NULL : p;
}

int layer_tar_write_hole(struct archive *out, uint64_t len, struct imgfs_err *err)
{
    pthread_once(&hole_once, hole_map);
    if (!hole_zeros)
        return err_sys(err, errno, "mapping zero pages for a hole");
    while (len) {
        size_t n = len < HOLE_PIECE ? (size_t)len : HOLE_PIECE;
        la_ssize_t w = archive_write_data(out, hole_zeros, n);
        if (w <= 0)
            return err_set(err, EIO, "writing tar: %s",
                           w < 0 ? archive_error_string(out) : "the writer took no bytes");
        len -= (uint64_t)w;
    }
    return 0;
}

int layer_tar_write(struct store_read *r, const void *table, size_t len, struct archive *out,
                    struct imgfs_err *err)
{
    struct layer_reader rd;
    if (layer_reader_init(&rd, table, len, err) < 0)
        return -1;
    struct archive_entry *ae = archive_entry_new();
    struct layer_entry e;
    int rc, ret = -1;
    while ((rc = layer_next(&rd, &e, err)) > 0) {
        layer_entry_to_archive(&e, ae);
        if (archive_write_header(out, ae) < ARCHIVE_WARN) {
            err_set(err, EIO, "writing tar header for `%s`: %s", e.path, archive_error_string(out));
            goto out;
        }
        if (e.kind != LAYER_REG)
            continue;
        uint64_t pos = 0;
        for (uint32_t i = 0; i < e.n_extents; i++) {
            const struct layer_extent *x = &e.extents[i];
            const void *data;
            size_t n;
            if (x->offset > pos && layer_tar_write_hole(out, x->offset - pos, err) < 0)
                goto out;
            if (store_chunk_get(r, &x->chunk, true, &data, &n, err) < 0) {
                err_ctx(err, "reading `%s`", e.path);
                goto out;
            }
            if (n != x->length) {
                err_set(err, EIO, "reading `%s`: chunk has %zu bytes, table says %u", e.path, n,
                        x->length);
                goto out;
            }
            if (archive_write_data(out, data, n) < 0) {
                err_set(err, EIO, "writing tar data of `%s`: %s", e.path,
                        archive_error_string(out));
                goto out;
            }
            pos = x->offset + n;
        }
        if (e.size > pos && layer_tar_write_hole(out, e.size - pos, err) < 0)
            goto out;
    }
    if (rc == 0)
        ret = 0;
out:
    archive_entry_free(ae);
    layer_reader_free(&rd);
    return ret;
}
