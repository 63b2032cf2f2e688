/* layerbuild.c — entries in, chunks + file table + diff_id out (contract: layerbuild.h). */
#include "layerbuild.h"
#include "chunker.h"
#include "image.h"
#include "store.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/sysmacros.h>
#include <stdatomic.h>
#include <sys/xattr.h>

/* ---- paths ---- */

/* Normalise a path in place: strip leading "/" and "./", collapse "//" and "/./", drop a trailing
 * "/". Returns -1 for a path with a ".." part (it would escape the root). */
static int normalize_path(char *p)
{
    char *out = p;
    const char *s = p;
    while (*s) {
        while (*s == '/')
            s++;
        const char *end = strchr(s, '/');
        size_t n = end ? (size_t)(end - s) : strlen(s);
        if (n == 0)
            break;
        if (n == 1 && s[0] == '.') {
            s += n;
            continue;
        }
        if (n == 2 && s[0] == '.' && s[1] == '.')
            return -1;
        if (out != p)
            *out++ = '/';
        memmove(out, s, n);
        out += n;
        s += n;
    }
    *out = 0;
    return 0;
}

static size_t longest_component(const char *p)
{
    size_t longest = 0;
    while (*p) {
        size_t n = strcspn(p, "/");
        if (n > longest)
            longest = n;
        p += n;
        p += *p == '/';
    }
    return longest;
}

/* A set of strings (the non-directory paths seen in this layer, for hardlink targets). */
struct pathset {
    char **slots;
    size_t cap, n;
};

static uint64_t str_hash(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 1099511628211ull;
    return h;
}

static bool pathset_has(const struct pathset *ps, const char *p)
{
    if (!ps->cap)
        return false;
    for (size_t i = str_hash(p) & (ps->cap - 1); ps->slots[i]; i = (i + 1) & (ps->cap - 1))
        if (!strcmp(ps->slots[i], p))
            return true;
    return false;
}

static void pathset_add(struct pathset *ps, const char *p)
{
    if ((ps->n + 1) * 2 > ps->cap) {
        struct pathset old = *ps;
        ps->cap = old.cap ? old.cap * 2 : 1024;
        ps->slots = xcalloc(ps->cap, sizeof *ps->slots);
        ps->n = 0;
        for (size_t i = 0; i < old.cap; i++)
            if (old.slots[i])
                pathset_add(ps, old.slots[i]), free(old.slots[i]);
        free(old.slots);
    }
    size_t i = str_hash(p) & (ps->cap - 1);
    for (; ps->slots[i]; i = (i + 1) & (ps->cap - 1))
        if (!strcmp(ps->slots[i], p))
            return;
    ps->slots[i] = xstrdup(p);
    ps->n++;
}

static void pathset_free(struct pathset *ps)
{
    for (size_t i = 0; i < ps->cap; i++)
        free(ps->slots[i]);
    free(ps->slots);
}

/* ---- the builder ---- */

struct layer_builder {
    struct store_batch *b;
    char *what;
    struct archive *hash_out; /* canonical tar writer feeding the diff_id digest */
    struct digest_ctx *diff;
    struct archive_entry *canon;
    uint64_t tar_size;
    /* chunker buffer */
    uint8_t *cbuf;
    size_t cstart, clen, ccap;
    uint64_t cpos; /* file offset of cbuf[cstart] */
    /* extents of the current file */
    struct layer_extent *ext;
    size_t n_ext, ext_cap;
    /* data runs the current file declares */
    struct layer_run *runs;
    size_t n_runs, runs_cap;
    struct layer_writer w;
    struct pathset seen; /* hardlink targets: paths of non-directory entries */
    uint64_t files, bytes;
    bool failed;
};

static ssize_t hash_write(struct archive *a, void *ctx, const void *data, size_t len)
{
    (void)a;
    struct layer_builder *lb = ctx;
    digest_ctx_update(lb->diff, data, len);
    lb->tar_size += len;
    return (ssize_t)len;
}

/* One chunker buffer kept for the next builder: a layer per small input (a fuzz target, a build of
 * many small steps) would otherwise map, fault in and unmap 512 KiB each time (ASan puts every
 * block that big in a mapping of its own). Builders of parallel jobs take their own. */
static _Atomic(uint8_t *) spare_cbuf;

static void cbuf_release(uint8_t *cbuf)
{
    free(atomic_exchange(&spare_cbuf, cbuf));
}

int layer_builder_open(struct store_batch *b, const char *what, struct layer_builder **out,
                       struct imgfs_err *err)
{
    (void)err;
    struct layer_builder *lb = xcalloc(1, sizeof *lb);
    lb->b = b;
    lb->what = xstrdup(what);
    lb->diff = digest_ctx_new();
    lb->ccap = 2 * CHUNK_MAX;
    lb->cbuf = atomic_exchange(&spare_cbuf, NULL);
    if (!lb->cbuf)
        lb->cbuf = xmalloc(lb->ccap);
    lb->hash_out = layer_tar_writer_new(lb, hash_write);
    lb->canon = archive_entry_new();
    layer_writer_init(&lb->w);
    *out = lb;
    return 0;
}

void layer_builder_free(struct layer_builder *lb)
{
    if (!lb)
        return;
    buf_free(&lb->w.out);
    archive_write_free(lb->hash_out);
    archive_entry_free(lb->canon);
    digest_ctx_free(lb->diff);
    pathset_free(&lb->seen);
    cbuf_release(lb->cbuf);
    free(lb->ext);
    free(lb->runs);
    free(lb->what);
    free(lb);
}

static int emit_chunk(struct layer_builder *lb, size_t len, const char *path, struct imgfs_err *err)
{
    const uint8_t *data = lb->cbuf + lb->cstart;
    struct layer_extent x = {.offset = lb->cpos, .length = (uint32_t)len};
    digest_of(data, len, &x.chunk);
    if (store_batch_put(lb->b, STORE_CHUNK, &x.chunk, data, len, err) < 0)
        return err_ctx(err, "storing `%s`", path);
    if (lb->n_ext == lb->ext_cap) {
        lb->ext_cap = lb->ext_cap ? lb->ext_cap * 2 : 16;
        lb->ext = xrealloc(lb->ext, lb->ext_cap * sizeof *lb->ext);
    }
    lb->ext[lb->n_ext++] = x;
    lb->cstart += len;
    lb->clen -= len;
    lb->cpos += len;
    return 0;
}

/* Cut chunks while a full window is buffered (or everything, at the end of a run of data). */
static int drain(struct layer_builder *lb, bool end, const char *path, struct imgfs_err *err)
{
    while (lb->clen >= CHUNK_MAX || (end && lb->clen)) {
        size_t n = chunker_cut(lb->cbuf + lb->cstart, lb->clen);
        if (emit_chunk(lb, n, path, err) < 0)
            return -1;
    }
    if (lb->cstart && lb->clen)
        memmove(lb->cbuf, lb->cbuf + lb->cstart, lb->clen);
    lb->cstart = 0;
    return 0;
}

static int feed(struct layer_builder *lb, const uint8_t *data, size_t len, const char *path,
                struct imgfs_err *err)
{
    while (len) {
        size_t room = lb->ccap - lb->clen - lb->cstart;
        if (!room) {
            if (drain(lb, false, path, err) < 0)
                return -1;
            continue;
        }
        size_t n = len < room ? len : room;
        memcpy(lb->cbuf + lb->cstart + lb->clen, data, n);
        lb->clen += n;
        data += n;
        len -= n;
    }
    return 0;
}

/* `len` zero bytes as file data (a gap in undeclared content): hashed and chunked. */
static int feed_zeros(struct layer_builder *lb, uint64_t len, const char *path,
                      struct imgfs_err *err)
{
    static const uint8_t zeros[65536];
    while (len) {
        size_t n = len < sizeof zeros ? (size_t)len : sizeof zeros;
        if (archive_write_data(lb->hash_out, zeros, n) < 0)
            return err_set(err, EIO, "hashing layer: %s", archive_error_string(lb->hash_out));
        if (feed(lb, zeros, n, path, err) < 0 || drain(lb, false, path, err) < 0)
            return -1;
        lb->bytes += n;
        len -= n;
    }
    return 0;
}

/* The runs of the current file: `runs` checked and merged, or (NULL) the whole file. */
static int set_runs(struct layer_builder *lb, const struct layer_entry *e,
                    const struct layer_run *runs, size_t n, struct imgfs_err *err)
{
    struct layer_run whole = {0, e->size};
    if (!runs) {
        runs = &whole;
        n = 1;
    }
    lb->n_runs = 0;
    uint64_t end = 0;
    for (size_t i = 0; i < n; i++) {
        const struct layer_run *r = &runs[i];
        if (!r->length)
            continue;
        if (r->offset < end || r->offset > e->size || r->length > e->size - r->offset)
            return err_set(err, EINVAL,
                           "%s: `%s`: its sparse map is out of order or goes past "
                           "its size",
                           lb->what, e->path);
        if (lb->n_runs && end == r->offset) {
            lb->runs[lb->n_runs - 1].length += r->length;
        } else {
            if (lb->n_runs == lb->runs_cap) {
                lb->runs_cap = lb->runs_cap ? lb->runs_cap * 2 : 8;
                lb->runs = xrealloc(lb->runs, lb->runs_cap * sizeof *lb->runs);
            }
            lb->runs[lb->n_runs++] = *r;
        }
        end = r->offset + r->length;
    }
    return 0;
}

/* Read a regular file's content into chunks. With declared runs (`strict`), the data must be
 * exactly them and the holes between are skipped (layer_tar_write_hole: nothing read or hashed);
 * without, gaps are zeros stored as data. */
static int read_content(struct layer_builder *lb, struct layer_entry *e, bool strict,
                        layer_data_fn next, void *ctx, struct imgfs_err *err)
{
    lb->n_ext = 0;
    lb->cstart = lb->clen = 0;
    lb->cpos = 0;
    uint64_t pos = 0;  /* logical position written to the canonical stream */
    size_t run = 0;    /* the declared run the data is in */
    uint64_t done = 0; /* bytes of it read so far */
    for (;;) {
        const void *block;
        size_t len;
        uint64_t off;
        int rc = next(ctx, &block, &len, &off, err);
        if (rc == 0)
            break;
        if (rc < 0)
            return err_ctx(err, "%s: reading `%s`", lb->what, e->path);
        if (!len)
            continue;
        if (off < pos || off > e->size || len > e->size - off)
            return err_set(err, EIO, "%s: `%s`: data beyond the size in its header", lb->what,
                           e->path);
        if (strict) {
            if (run < lb->n_runs && done == lb->runs[run].length) {
                run++;
                done = 0;
            }
            if (run == lb->n_runs || off != lb->runs[run].offset + done ||
                len > lb->runs[run].length - done)
                return err_set(err, EIO, "%s: `%s`: its data does not match its sparse map",
                               lb->what, e->path);
            done += len;
            if (off > pos) { /* a hole: end the current run of chunks */
                if (drain(lb, true, e->path, err) < 0 ||
                    layer_tar_write_hole(lb->hash_out, off - pos, err) < 0)
                    return -1;
                lb->cpos = off;
            }
        } else if (off > pos && feed_zeros(lb, off - pos, e->path, err) < 0) {
            return -1;
        }
        if (archive_write_data(lb->hash_out, block, len) < 0)
            return err_set(err, EIO, "hashing layer: %s", archive_error_string(lb->hash_out));
        if (feed(lb, block, len, e->path, err) < 0 || drain(lb, false, e->path, err) < 0)
            return -1;
        pos = off + len;
        lb->bytes += len;
    }
    if (strict && lb->n_runs && (run != lb->n_runs - 1 || done != lb->runs[run].length))
        return err_set(err, EIO,
                       "%s: `%s`: less data than its sparse map declares (did it change "
                       "while it was read?)",
                       lb->what, e->path);
    if (pos < e->size && !strict && feed_zeros(lb, e->size - pos, e->path, err) < 0)
        return -1;
    if (drain(lb, true, e->path, err) < 0)
        return -1;
    if (pos < e->size && strict && layer_tar_write_hole(lb->hash_out, e->size - pos, err) < 0)
        return -1; /* a trailing hole */
    e->extents = lb->ext;
    e->n_extents = (uint32_t)lb->n_ext;
    return 0;
}

static int add_entry(struct layer_builder *lb, const struct layer_entry *in,
                     const struct layer_run *runs, size_t n_runs, layer_data_fn next, void *ctx,
                     struct imgfs_err *err)
{
    if (lb->failed)
        return err_set(err, EINVAL, "%s: the layer builder failed earlier", lb->what);
    lb->failed = true; /* until this entry is in */
    const char *what = lb->what;
    if (strlen(in->path) >= PATH_MAX)
        return err_set(err, ENAMETOOLONG, "%s: a path of %zu bytes is longer than PATH_MAX", what,
                       strlen(in->path));
    cleanup_free char *path = xstrdup(in->path);
    if (normalize_path(path) < 0)
        return err_set(err, EINVAL, "%s: `%s` has a `..` part (it would land outside the root)",
                       what, in->path);
    size_t longest = longest_component(path);
    if (longest > NAME_MAX)
        return err_set(err, ENAMETOOLONG,
                       "%s: `%.80s...` has a name part of %zu bytes (the limit is %d)", what,
                       in->path, longest, NAME_MAX);
    struct layer_entry e = *in;
    e.path = path;
    e.extents = NULL;
    e.n_extents = 0;
    if (e.kind < LAYER_REG || e.kind > LAYER_SOCKET)
        return err_set(err, EINVAL, "%s: `%s` has an unknown file type", what, in->path);
    if (e.kind != LAYER_REG)
        e.size = 0;
    cleanup_free char *link = NULL;
    if (e.kind == LAYER_HARDLINK) {
        link = xstrdup(e.link ? e.link : "");
        if (normalize_path(link) < 0 || !pathset_has(&lb->seen, link))
            return err_set(err, EINVAL,
                           "%s: hardlink `%s` points to `%s`, which is not an earlier "
                           "file of the layer",
                           what, in->path, e.link ? e.link : "");
        e.link = link;
    } else if (e.kind == LAYER_SYMLINK) {
        if (!e.link)
            e.link = "";
        if (strlen(e.link) >= PATH_MAX)
            return err_set(err, ENAMETOOLONG,
                           "%s: symlink `%s` has a target of %zu bytes (the limit is %d)", what,
                           in->path, strlen(e.link), PATH_MAX - 1);
    } else {
        e.link = NULL;
    }
    if (e.kind == LAYER_REG && e.size && !next)
        return err_set(err, EINVAL, "%s: `%s`: a regular file of %llu bytes without content", what,
                       in->path, (unsigned long long)e.size);

    layer_entry_to_archive(&e, lb->canon);
    if (e.kind == LAYER_REG && next) {
        if (set_runs(lb, &e, runs, n_runs, err) < 0)
            return -1;
        layer_archive_set_runs(lb->canon, lb->runs, lb->n_runs);
    }
    if (archive_write_header(lb->hash_out, lb->canon) < ARCHIVE_WARN)
        return err_set(err, EIO, "%s: `%s`: %s", what, in->path,
                       archive_error_string(lb->hash_out));
    if (e.kind == LAYER_REG && next && read_content(lb, &e, runs != NULL, next, ctx, err) < 0)
        return -1;
    layer_writer_add(&lb->w, &e);
    if (e.kind != LAYER_DIR)
        pathset_add(&lb->seen, path);
    lb->files++;
    lb->failed = false;
    return 0;
}

int layer_builder_add(struct layer_builder *lb, const struct layer_entry *e, struct imgfs_err *err)
{
    return add_entry(lb, e, NULL, 0, NULL, NULL, err);
}

int layer_builder_add_data(struct layer_builder *lb, const struct layer_entry *e,
                           layer_data_fn next, void *ctx, struct imgfs_err *err)
{
    if (e->kind != LAYER_REG)
        return err_set(err, EINVAL, "%s: `%s` has content but is not a regular file", lb->what,
                       e->path);
    return add_entry(lb, e, NULL, 0, next, ctx, err);
}

int layer_builder_add_runs(struct layer_builder *lb, const struct layer_entry *e,
                           const struct layer_run *runs, size_t n_runs, layer_data_fn next,
                           void *ctx, struct imgfs_err *err)
{
    static const struct layer_run none;
    if (e->kind != LAYER_REG)
        return err_set(err, EINVAL, "%s: `%s` has content but is not a regular file", lb->what,
                       e->path);
    return add_entry(lb, e, runs ? runs : &none, runs ? n_runs : 0, next, ctx, err);
}

/* Content from a descriptor: data segments (SEEK_DATA/SEEK_HOLE) read with pread. */
struct fd_source {
    int fd;
    uint64_t size, pos, seg_end;
    bool no_seek_data;
    uint8_t buf[1 << 20];
};

static int fd_next(void *ctx, const void **data, size_t *len, uint64_t *offset,
                   struct imgfs_err *err)
{
    struct fd_source *s = ctx;
    if (s->pos >= s->size)
        return 0;
    if (s->pos >= s->seg_end) {
        if (s->no_seek_data) {
            s->seg_end = s->size;
        } else {
            off_t d = lseek(s->fd, (off_t)s->pos, SEEK_DATA);
            if (d < 0 && errno == ENXIO)
                return 0; /* only a hole is left */
            if (d < 0 && (errno == EINVAL || errno == EOPNOTSUPP)) {
                s->no_seek_data = true;
                s->seg_end = s->size;
            } else if (d < 0) {
                return err_sys(err, errno, "lseek");
            } else {
                if ((uint64_t)d >= s->size)
                    return 0;
                off_t h = lseek(s->fd, d, SEEK_HOLE);
                if (h < 0)
                    return err_sys(err, errno, "lseek");
                s->pos = (uint64_t)d;
                s->seg_end = (uint64_t)h < s->size ? (uint64_t)h : s->size;
            }
        }
    }
    size_t want =
        s->seg_end - s->pos < sizeof s->buf ? (size_t)(s->seg_end - s->pos) : sizeof s->buf;
    ssize_t n;
    do
        n = pread(s->fd, s->buf, want, (off_t)s->pos);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return err_sys(err, errno, "read");
    if (n == 0) { /* the file shrank: the rest reads as a hole */
        s->size = s->pos;
        return 0;
    }
    *data = s->buf;
    *len = (size_t)n;
    *offset = s->pos;
    s->pos += (uint64_t)n;
    return 1;
}

int layer_builder_add_fd(struct layer_builder *lb, const struct layer_entry *e, int fd,
                         struct imgfs_err *err)
{
    /* the data segments first (no reading), for the canonical header's sparse map */
    cleanup_free struct layer_run *runs = NULL;
    size_t n = 0, cap = 0;
    bool whole = false;
    for (uint64_t pos = 0; pos < e->size;) {
        off_t d = lseek(fd, (off_t)pos, SEEK_DATA);
        if (d < 0 && errno == ENXIO)
            break; /* only a hole is left */
        if (d < 0 && (errno == EINVAL || errno == EOPNOTSUPP)) {
            whole = true;
            break;
        }
        if (d < 0)
            return err_sys(err, errno, "%s: `%s`: lseek", lb->what, e->path);
        if ((uint64_t)d >= e->size)
            break;
        off_t h = lseek(fd, d, SEEK_HOLE);
        if (h < 0)
            return err_sys(err, errno, "%s: `%s`: lseek", lb->what, e->path);
        uint64_t end = (uint64_t)h < e->size ? (uint64_t)h : e->size;
        if (n == cap) {
            cap = cap ? cap * 2 : 8;
            runs = xrealloc(runs, cap * sizeof *runs);
        }
        runs[n++] = (struct layer_run){(uint64_t)d, end - (uint64_t)d};
        pos = end;
    }
    struct fd_source *s = xmalloc(sizeof *s);
    s->fd = fd;
    s->size = e->size;
    s->pos = s->seg_end = 0;
    s->no_seek_data = whole;
    struct layer_run all = {0, e->size};
    int r = layer_builder_add_runs(lb, e, whole ? &all : runs, whole ? 1 : n, fd_next, s, err);
    free(s);
    return r;
}

/* A marker file: an empty regular file with the attributes of `attrs` (its path ignored). */
static int add_marker(struct layer_builder *lb, const char *dir, const char *base,
                      const struct layer_entry *attrs, struct imgfs_err *err)
{
    cleanup_free char *path = *dir ? xasprintf("%s/%s", dir, base) : xstrdup(base);
    struct layer_entry e = {.path = path,
                            .kind = LAYER_REG,
                            .mode = attrs->mode,
                            .uid = attrs->uid,
                            .gid = attrs->gid,
                            .mtime_sec = attrs->mtime_sec,
                            .mtime_nsec = attrs->mtime_nsec};
    return layer_builder_add(lb, &e, err);
}

int layer_builder_add_whiteout(struct layer_builder *lb, const char *path, struct imgfs_err *err)
{
    cleanup_free char *p = xstrdup(path);
    if (normalize_path(p) < 0 || !*p)
        return err_set(err, EINVAL, "%s: cannot delete `%s`", lb->what, path);
    char *slash = strrchr(p, '/');
    cleanup_free char *base = xasprintf("%s%s", LAYER_WHITEOUT_PREFIX, slash ? slash + 1 : p);
    if (slash)
        *slash = 0;
    /* Docker's mode for a whiteout; no owner, no time (a digest should not depend on when) */
    static const struct layer_entry attrs = {.mode = 0600};
    return add_marker(lb, slash ? p : "", base, &attrs, err);
}

int layer_builder_add_opaque(struct layer_builder *lb, const struct layer_entry *dir,
                             struct imgfs_err *err)
{
    cleanup_free char *p = xstrdup(dir->path);
    if (normalize_path(p) < 0)
        return err_set(err, EINVAL, "%s: `%s` has a `..` part", lb->what, dir->path);
    struct layer_entry attrs = *dir;
    attrs.mode &= 0777;
    return add_marker(lb, p, LAYER_OPAQUE_NAME, &attrs, err);
}

int layer_builder_finish(struct layer_builder *lb, struct layer_build_result *out,
                         struct imgfs_err *err)
{
    memset(out, 0, sizeof *out);
    if (lb->failed)
        return err_set(err, EINVAL, "%s: the layer builder failed earlier", lb->what);
    if (archive_write_close(lb->hash_out) != ARCHIVE_OK)
        return err_set(err, EIO, "%s: finishing layer digest: %s", lb->what,
                       archive_error_string(lb->hash_out));
    lb->failed = true; /* the tar is closed: nothing more can go in */
    layer_writer_finish(&lb->w);
    digest_ctx_final(lb->diff, &out->diff_id);
    out->size = lb->tar_size;
    out->bytes = lb->bytes;
    out->files = lb->files;
    if (store_batch_put(lb->b, STORE_LAYER, &out->diff_id, lb->w.out.data, lb->w.out.len, err) < 0)
        return err_ctx(err, "%s: storing the layer table", lb->what);
    out->table = lb->w.out;
    lb->w.out = (struct buf){0};
    return 0;
}

/* ---- directory trees ---- */

enum layer_kind layer_kind_from_mode(mode_t mode)
{
    switch (mode & S_IFMT) {
    case S_IFREG:
        return LAYER_REG;
    case S_IFDIR:
        return LAYER_DIR;
    case S_IFLNK:
        return LAYER_SYMLINK;
    case S_IFCHR:
        return LAYER_CHAR;
    case S_IFBLK:
        return LAYER_BLOCK;
    case S_IFIFO:
        return LAYER_FIFO;
    case S_IFSOCK:
        return LAYER_SOCKET;
    default:
        return 0;
    }
}

int layer_entry_from_stat(const struct stat *st, struct layer_entry *e, struct imgfs_err *err)
{
    memset(e, 0, sizeof *e);
    e->kind = layer_kind_from_mode(st->st_mode);
    if (!e->kind)
        return err_set(err, EINVAL, "unknown file type %o", st->st_mode & S_IFMT);
    if (e->kind == LAYER_REG)
        e->size = (uint64_t)st->st_size;
    e->mode = st->st_mode & 07777;
    e->uid = st->st_uid;
    e->gid = st->st_gid;
    e->mtime_sec = st->st_mtim.tv_sec;
    e->mtime_nsec = (uint32_t)st->st_mtim.tv_nsec;
    if (e->kind == LAYER_CHAR || e->kind == LAYER_BLOCK) {
        e->rdev_major = major(st->st_rdev);
        e->rdev_minor = minor(st->st_rdev);
    }
    return 0;
}

/* (dev, ino) -> the layer path of the first link added, for files linked more than once. */
struct inode_map {
    struct inode_slot {
        dev_t dev;
        ino_t ino;
        char *path;
    } * slots;
    size_t cap, n;
};

static size_t inode_hash(dev_t dev, ino_t ino, size_t cap)
{
    return (size_t)(((uint64_t)ino * 0x9e3779b97f4a7c15ull) ^ (uint64_t)dev) & (cap - 1);
}

static const char *inode_find(const struct inode_map *m, dev_t dev, ino_t ino)
{
    if (!m->cap)
        return NULL;
    for (size_t i = inode_hash(dev, ino, m->cap); m->slots[i].path; i = (i + 1) & (m->cap - 1))
        if (m->slots[i].dev == dev && m->slots[i].ino == ino)
            return m->slots[i].path;
    return NULL;
}

static void inode_add(struct inode_map *m, dev_t dev, ino_t ino, const char *path)
{
    if ((m->n + 1) * 2 > m->cap) {
        struct inode_map old = *m;
        m->cap = old.cap ? old.cap * 2 : 256;
        m->slots = xcalloc(m->cap, sizeof *m->slots);
        m->n = 0;
        for (size_t i = 0; i < old.cap; i++)
            if (old.slots[i].path) {
                size_t j = inode_hash(old.slots[i].dev, old.slots[i].ino, m->cap);
                while (m->slots[j].path)
                    j = (j + 1) & (m->cap - 1);
                m->slots[j] = old.slots[i];
                m->n++;
            }
        free(old.slots);
    }
    size_t i = inode_hash(dev, ino, m->cap);
    while (m->slots[i].path)
        i = (i + 1) & (m->cap - 1);
    m->slots[i] = (struct inode_slot){.dev = dev, .ino = ino, .path = xstrdup(path)};
    m->n++;
}

static void inode_map_free(struct inode_map *m)
{
    for (size_t i = 0; i < m->cap; i++)
        free(m->slots[i].path);
    free(m->slots);
}

struct tree_walk {
    struct layer_builder *lb;
    const struct layer_dir_options *o;
    struct inode_map links;
};

/* The xattrs of one file, sorted by name (listxattr's order is the file system's), overlay's own
 * left out and noted in `opaque` / `whiteout`. */
struct xattr_set {
    struct layer_xattr *x;
    uint32_t n;
    char *names;
    uint8_t *values;
    bool opaque, whiteout;
    char **escaped; /* the unescaped names */
    size_t n_escaped;
};

static void xattr_set_free(struct xattr_set *s)
{
    for (size_t i = 0; i < s->n_escaped; i++)
        free(s->escaped[i]);
    free(s->escaped);
    free(s->x);
    free(s->names);
    free(s->values);
    memset(s, 0, sizeof *s);
}

static int xattr_name_cmp(const void *a, const void *b)
{
    return strcmp(((const struct layer_xattr *)a)->name, ((const struct layer_xattr *)b)->name);
}

/* The overlay's own xattr namespace: trusted.overlay. (the runner's mounts), or user.overlay. for
 * an overlay mounted with userxattr. NULL: not an overlay upper. */
static const char *overlay_prefix(const struct layer_dir_options *o)
{
    if (!o->overlay_upper)
        return NULL;
    return o->overlay_userxattr ? "user.overlay." : "trusted.overlay.";
}

/* `proc` is /proc/self/fd/N of an O_PATH descriptor of the file: the magic link reaches the file
 * itself (a symlink too) without resolving any path in the tree again. */
static int read_xattrs(const char *proc, const char *rel, const char *ovp, struct xattr_set *s,
                       struct imgfs_err *err)
{
    memset(s, 0, sizeof *s);
    ssize_t len;
    for (;;) {
        len = listxattr(proc, NULL, 0);
        if (len < 0 && (errno == ENOTSUP || errno == EOPNOTSUPP))
            return 0;
        if (len < 0)
            return err_sys(err, errno, "listing the xattrs of `%s`", rel);
        if (len == 0)
            return 0;
        free(s->names);
        s->names = xmalloc((size_t)len);
        ssize_t got = listxattr(proc, s->names, (size_t)len);
        if (got >= 0) {
            len = got;
            break;
        }
        if (errno != ERANGE)
            return err_sys(err, errno, "listing the xattrs of `%s`", rel);
    }
    size_t cap = 0;
    struct buf values = {0};
    size_t *offsets = NULL;
    for (char *name = s->names; name < s->names + len; name += strlen(name) + 1) {
        /* the overlay's own xattrs; "PREFIX.overlay.X" is how overlayfs stores a file's own
         * "PREFIX.X" (escaped), which is the file's and kept under its real name */
        size_t ovl = ovp ? strlen(ovp) : 0;
        const char *ov = ovp && !strncmp(name, ovp, ovl) ? name + ovl : NULL;
        const char *keep_as = name;
        if (ov && !strncmp(ov, "overlay.", 8)) {
            s->escaped = xrealloc(s->escaped, (s->n_escaped + 1) * sizeof *s->escaped);
            keep_as = s->escaped[s->n_escaped++] = xasprintf("%s%s", ovp, ov + 8);
            ov = NULL;
        }
        ssize_t vlen = 0;
        uint8_t small[256];
        uint8_t *v = small;
        cleanup_free uint8_t *big = NULL;
        for (;;) {
            vlen = getxattr(proc, name, v, v == small ? sizeof small : (size_t)vlen);
            if (vlen >= 0)
                break;
            if (errno == ENODATA)
                break; /* removed while we read */
            if (errno != ERANGE) {
                free(offsets);
                buf_free(&values);
                return err_sys(err, errno, "reading xattr `%s` of `%s`", name, rel);
            }
            vlen = getxattr(proc, name, NULL, 0);
            if (vlen < 0) {
                free(offsets);
                buf_free(&values);
                return err_sys(err, errno, "reading xattr `%s` of `%s`", name, rel);
            }
            free(big);
            v = big = xmalloc((size_t)vlen + 1);
        }
        if (vlen < 0)
            continue;
        if (ov) {
            if (!strcmp(ov, "opaque") && vlen == 1 && v[0] == 'y')
                s->opaque = true;
            else if (!strcmp(ov, "whiteout"))
                s->whiteout = true;
            else if (!strcmp(ov, "redirect") || !strcmp(ov, "metacopy")) {
                free(offsets);
                buf_free(&values);
                return err_set(err, ENOTSUP,
                               "`%s` has the overlayfs xattr `%s` (redirect_dir or metacopy): its "
                               "content is not all in the upper directory",
                               rel, name);
            }
            continue;
        }
        if (s->n == cap) {
            cap = cap ? 2 * cap : 8;
            s->x = xrealloc(s->x, cap * sizeof *s->x);
            offsets = xrealloc(offsets, cap * sizeof *offsets);
        }
        offsets[s->n] = values.len;
        buf_append(&values, v, (size_t)vlen);
        s->x[s->n++] = (struct layer_xattr){.name = keep_as, .len = (uint32_t)vlen};
    }
    s->values = values.data;
    for (uint32_t i = 0; i < s->n; i++)
        s->x[i].value = s->values + offsets[i];
    free(offsets);
    if (s->n > 1)
        qsort(s->x, s->n, sizeof *s->x, xattr_name_cmp);
    return 0;
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The names in a directory (but . and ..), sorted. */
static int list_dir(int dirfd, const char *rel, char ***out, size_t *n, struct imgfs_err *err)
{
    *out = NULL;
    *n = 0;
    int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d = fd < 0 ? NULL : fdopendir(fd);
    if (!d) {
        if (fd >= 0)
            close(fd);
        return err_sys(err, errno, "reading directory `%s`", *rel ? rel : ".");
    }
    size_t cap = 0;
    struct dirent *de;
    errno = 0;
    while ((de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        if (*n == cap) {
            cap = cap ? 2 * cap : 32;
            *out = xrealloc(*out, cap * sizeof **out);
        }
        (*out)[(*n)++] = xstrdup(de->d_name);
    }
    int e = errno;
    closedir(d);
    if (e) {
        for (size_t i = 0; i < *n; i++)
            free((*out)[i]);
        free(*out);
        *out = NULL;
        *n = 0;
        return err_sys(err, e, "reading directory `%s`", *rel ? rel : ".");
    }
    if (*n > 1)
        qsort(*out, *n, sizeof **out, name_cmp);
    return 0;
}

static char *join(const char *a, const char *b)
{
    if (!a || !*a)
        return xstrdup(b);
    if (!*b)
        return xstrdup(a);
    return xasprintf("%s/%s", a, b);
}

static int walk_dir(struct tree_walk *t, int dirfd, const char *rel, struct imgfs_err *err);

/* An empty file or directory at one of the runner's mount points. */
static bool is_placeholder(const struct layer_dir_options *o, const char *rel, int pfd,
                           const struct stat *st)
{
    bool listed = false;
    for (const char *const *m = o->mount_points; m && *m && !listed; m++)
        listed = !strcmp(*m, rel);
    if (!listed)
        return false;
    if (S_ISREG(st->st_mode))
        return st->st_size == 0;
    if (!S_ISDIR(st->st_mode))
        return false;
    char proc[64];
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", pfd);
    int fd = open(proc, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d = fd < 0 ? NULL : fdopendir(fd);
    if (!d) {
        if (fd >= 0)
            close(fd);
        return false;
    }
    bool empty = true;
    struct dirent *de;
    while (empty && (de = readdir(d)))
        empty = !strcmp(de->d_name, ".") || !strcmp(de->d_name, "..");
    closedir(d);
    return empty;
}

/* One file of the tree, given by an O_PATH descriptor. */
static int walk_one(struct tree_walk *t, int pfd, const char *rel, struct imgfs_err *err)
{
    const struct layer_dir_options *o = t->o;
    struct layer_builder *lb = t->lb;
    struct stat st;
    if (fstat(pfd, &st) < 0)
        return err_sys(err, errno, "%s: `%s`", lb->what, rel);
    cleanup_free char *path = *rel ? join(o->prefix, rel) : xstrdup(o->prefix ? o->prefix : "");
    if (o->overlay_upper && S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0))
        return layer_builder_add_whiteout(lb, path, err);
    char proc[64];
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", pfd);
    if (is_placeholder(o, rel, pfd, &st))
        return 0;
    struct xattr_set xs;
    if (read_xattrs(proc, *rel ? rel : ".", overlay_prefix(o), &xs, err) < 0) {
        xattr_set_free(&xs);
        return err_ctx(err, "%s", lb->what);
    }
    int ret = -1;
    cleanup_free char *target = NULL;
    cleanup_close int fd = -1;
    struct layer_entry e;
    if (xs.whiteout && S_ISREG(st.st_mode)) {
        ret = layer_builder_add_whiteout(lb, path, err);
        goto out;
    }
    if (layer_entry_from_stat(&st, &e, err) < 0) {
        err_ctx(err, "%s: `%s`", lb->what, rel);
        goto out;
    }
    e.path = path;
    e.xattrs = xs.x;
    e.n_xattrs = xs.n;
    if (o->mtime_clamp >= 0 && e.mtime_sec > o->mtime_clamp) {
        e.mtime_sec = o->mtime_clamp;
        e.mtime_nsec = 0;
    }
    if (S_ISLNK(st.st_mode)) {
        target = xmalloc(PATH_MAX + 1);
        ssize_t n = readlinkat(pfd, "", target, PATH_MAX + 1);
        if (n < 0) {
            err_sys(err, errno, "%s: reading symlink `%s`", lb->what, rel);
            goto out;
        }
        if (n > PATH_MAX) {
            err_set(err, ENAMETOOLONG, "%s: symlink `%s` has a target longer than PATH_MAX",
                    lb->what, rel);
            goto out;
        }
        target[n] = 0;
        e.link = target;
    }
    const char *first = NULL;
    if (!S_ISDIR(st.st_mode) && st.st_nlink > 1 &&
        (first = inode_find(&t->links, st.st_dev, st.st_ino))) {
        e.kind = LAYER_HARDLINK;
        e.link = first;
        e.size = 0;
    }
    if (o->edit) {
        int r = o->edit(o->edit_ctx, rel, &e, err);
        if (r < 0)
            goto out;
        if (r > 0) {
            ret = 0;
            goto out;
        }
    }
    if (e.kind == LAYER_REG) {
        fd = open(proc, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0) {
            err_sys(err, errno, "%s: opening `%s`", lb->what, rel);
            goto out;
        }
        if (layer_builder_add_fd(lb, &e, fd, err) < 0)
            goto out;
    } else if (layer_builder_add(lb, &e, err) < 0) {
        goto out;
    }
    if (!S_ISDIR(st.st_mode) && st.st_nlink > 1 && !first)
        inode_add(&t->links, st.st_dev, st.st_ino, e.path);
    if (S_ISDIR(st.st_mode)) {
        if (xs.opaque && layer_builder_add_opaque(lb, &e, err) < 0)
            goto out;
        fd = open(proc, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0) {
            err_sys(err, errno, "%s: opening directory `%s`", lb->what, rel);
            goto out;
        }
        if (walk_dir(t, fd, rel, err) < 0)
            goto out;
    }
    ret = 0;
out:
    xattr_set_free(&xs);
    return ret;
}

static int walk_dir(struct tree_walk *t, int dirfd, const char *rel, struct imgfs_err *err)
{
    char **names;
    size_t n;
    if (list_dir(dirfd, rel, &names, &n, err) < 0)
        return err_ctx(err, "%s", t->lb->what);
    int ret = 0;
    for (size_t i = 0; i < n && ret == 0; i++) {
        cleanup_free char *child = join(rel, names[i]);
        cleanup_close int pfd = openat(dirfd, names[i], O_PATH | O_NOFOLLOW | O_CLOEXEC);
        if (pfd < 0)
            ret = err_sys(err, errno, "%s: opening `%s`", t->lb->what, child);
        else
            ret = walk_one(t, pfd, child, err);
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return ret;
}

int layer_builder_add_tree(struct layer_builder *lb, int dirfd, const struct layer_dir_options *o,
                           struct imgfs_err *err)
{
    struct tree_walk t = {.lb = lb, .o = o};
    int ret;
    if (o->include_root && o->prefix && *o->prefix) {
        cleanup_close int pfd = openat(dirfd, ".", O_PATH | O_CLOEXEC);
        if (pfd < 0)
            return err_sys(err, errno, "%s: opening the tree", lb->what);
        ret = walk_one(&t, pfd, "", err);
    } else {
        if (o->overlay_upper) {
            /* an opaque root (an upper made over an emptied lower) hides the whole lower */
            char proc[64];
            snprintf(proc, sizeof proc, "/proc/self/fd/%d", dirfd);
            struct xattr_set xs;
            if (read_xattrs(proc, ".", overlay_prefix(o), &xs, err) < 0) {
                xattr_set_free(&xs);
                return err_ctx(err, "%s", lb->what);
            }
            bool opaque = xs.opaque;
            xattr_set_free(&xs);
            struct stat st;
            struct layer_entry root;
            if (opaque && fstat(dirfd, &st) < 0)
                return err_sys(err, errno, "%s: the tree's root", lb->what);
            if (opaque && layer_entry_from_stat(&st, &root, err) < 0)
                return -1;
            root.path = o->prefix ? o->prefix : "";
            if (opaque && layer_builder_add_opaque(lb, &root, err) < 0)
                return -1;
        }
        ret = walk_dir(&t, dirfd, "", err);
    }
    inode_map_free(&t.links);
    return ret;
}

int layer_from_upper(struct store_batch *b, const char *upper, int64_t mtime_clamp,
                     const char *const *mount_points, struct layer_build_result *out,
                     struct imgfs_err *err)
{
    memset(out, 0, sizeof *out);
    cleanup_close int fd = open(upper, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return err_sys(err, errno, "opening the upper directory `%s`", upper);
    cleanup_free char *what = xasprintf("upper directory `%s`", upper);
    struct layer_builder *lb;
    if (layer_builder_open(b, what, &lb, err) < 0)
        return -1;
    struct layer_dir_options o = {
        .overlay_upper = true, .mtime_clamp = mtime_clamp, .mount_points = mount_points};
    int ret = layer_builder_add_tree(lb, fd, &o, err);
    if (ret == 0)
        ret = layer_builder_finish(lb, out, err);
    layer_builder_free(lb);
    return ret;
}

int image_from_upper(struct store *s, const char *upper, const struct image_from_upper_options *o,
                     struct digest *out, struct imgfs_err *err)
{
    struct store_batch *b = NULL;
    struct store_read *r = NULL;
    struct image parent;
    bool have_parent = false;
    struct layer_build_result res = {0};
    cleanup_free char *edited = NULL, *config = NULL;
    size_t edited_len = 0, config_len = 0;
    int ret = -1;

    /* the batch first: from here on gc waits for us, so the parent found below stays whole */
    if (store_batch_begin(s, &b, err) < 0 || store_read_begin(s, &r, err) < 0)
        goto out;
    if (o->parent) {
        if (image_load_ref(r, o->parent, &parent, err) < 0)
            goto out;
        have_parent = true;
    }
    const char *base = have_parent ? parent.config_json : NULL;
    size_t base_len = have_parent ? parent.config_len : 0;
    if (image_config_edit(base, base_len, o->changes, &edited, &edited_len, err) < 0)
        goto out;
    struct image_history h = {.created = o->created,
                              .created_by = o->created_by,
                              .comment = o->comment,
                              .author = o->author};
    if (image_config_add_history(edited, edited_len, &h, &config, &config_len, err) < 0)
        goto out;
    if (layer_from_upper(b, upper, o->mtime_clamp, o->mount_points, &res, err) < 0)
        goto out;
    struct image_layer layer = {.diff_id = res.diff_id,
                                .size = res.size,
                                .table = res.table.data,
                                .table_len = res.table.len};
    if (image_commit_on(b, r, have_parent ? &parent : NULL, config, config_len, &layer, 1, o->name,
                        out, err) < 0)
        goto out;
    store_read_end(r);
    r = NULL;
    ret = store_batch_commit(b, err);
    b = NULL;
out:
    if (r)
        store_read_end(r);
    if (b)
        store_batch_abort(b);
    if (have_parent)
        image_free(&parent);
    buf_free(&res.table);
    return ret;
}
