#include "import.h"
#include "chunker.h"
#include "layer.h"
#include "oci.h"
#include "store.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

struct archive *import_tar_reader_new(void)
{
    struct archive *a = archive_read_new();
    if (!a)
        abort();
    archive_read_support_filter_all(a);
    archive_read_support_format_tar(a);
    archive_read_support_format_gnutar(a);
    return a;
}

/* ---- names ---- */

/* Normalise a member name in place: strip leading "/" and "./", collapse "//" and "/./", drop a
 * trailing "/". Returns -1 for a name with a ".." part (it would escape the root). */
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

/* A set of the paths seen in this layer, for checking hardlink targets. */
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

/* ---- the layer reader ---- */

struct importer {
    struct store_batch *b;
    const char *what;
    struct archive *hash_out; /* canonical tar writer feeding the diff_id digest */
    struct digest_ctx *diff;
    uint64_t tar_size;
    /* chunker buffer */
    uint8_t *cbuf;
    size_t cstart, clen, ccap;
    uint64_t cpos; /* file offset of cbuf[cstart] */
    /* extents of the current file */
    struct layer_extent *ext;
    size_t n_ext, ext_cap;
    uint64_t bytes;
};

static ssize_t hash_write(struct archive *a, void *ctx, const void *data, size_t len)
{
    (void)a;
    struct importer *im = ctx;
    digest_ctx_update(im->diff, data, len);
    im->tar_size += len;
    return len;
}

static int emit_chunk(struct importer *im, size_t len, const char *path, struct imgfs_err *err)
{
    const uint8_t *data = im->cbuf + im->cstart;
    struct layer_extent x = {.offset = im->cpos, .length = (uint32_t)len};
    digest_of(data, len, &x.chunk);
    if (store_batch_put(im->b, STORE_CHUNK, &x.chunk, data, len, err) < 0)
        return err_ctx(err, "storing `%s`", path);
    if (im->n_ext == im->ext_cap) {
        im->ext_cap = im->ext_cap ? im->ext_cap * 2 : 16;
        im->ext = xrealloc(im->ext, im->ext_cap * sizeof *im->ext);
    }
    im->ext[im->n_ext++] = x;
    im->cstart += len;
    im->clen -= len;
    im->cpos += len;
    return 0;
}

/* Cut chunks while a full window is buffered (or everything, at the end of a run of data). */
static int drain(struct importer *im, bool end, const char *path, struct imgfs_err *err)
{
    while (im->clen >= CHUNK_MAX || (end && im->clen)) {
        size_t n = chunker_cut(im->cbuf + im->cstart, im->clen);
        if (emit_chunk(im, n, path, err) < 0)
            return -1;
    }
    if (im->cstart && im->clen)
        memmove(im->cbuf, im->cbuf + im->cstart, im->clen);
    im->cstart = 0;
    return 0;
}

static int feed(struct importer *im, const uint8_t *data, size_t len, const char *path,
                struct imgfs_err *err)
{
    while (len) {
        size_t room = im->ccap - im->clen - im->cstart;
        if (!room) {
            if (drain(im, false, path, err) < 0)
                return -1;
            continue;
        }
        size_t n = len < room ? len : room;
        memcpy(im->cbuf + im->cstart + im->clen, data, n);
        im->clen += n;
        data += n;
        len -= n;
    }
    return 0;
}

static int read_file_data(struct importer *im, struct archive *in, struct layer_entry *e,
                          struct imgfs_err *err)
{
    im->n_ext = 0;
    im->cstart = im->clen = 0;
    im->cpos = 0;
    uint64_t pos = 0; /* logical position written to the canonical stream */
    for (;;) {
        const void *block;
        size_t len;
        la_int64_t off;
        int rc = archive_read_data_block(in, &block, &len, &off);
        if (rc == ARCHIVE_EOF)
            break;
        if (rc < ARCHIVE_WARN)
            return err_set(err, EIO, "%s: reading `%s`: %s", im->what, e->path,
                           archive_error_string(in));
        if (off < 0 || (uint64_t)off < pos || (uint64_t)off + len > e->size)
            return err_set(err, EIO, "%s: `%s`: data beyond the size in its header", im->what,
                           e->path);
        if ((uint64_t)off > pos) {
            /* a hole: end the current run of chunks; the canonical tar carries zeros */
            if (drain(im, true, e->path, err) < 0)
                return -1;
            for (uint64_t z = pos; z < (uint64_t)off;) {
                static const uint8_t zeros[65536];
                size_t n = (uint64_t)off - z < sizeof zeros ? (size_t)((uint64_t)off - z)
                                                             : sizeof zeros;
                if (archive_write_data(im->hash_out, zeros, n) < 0)
                    return err_set(err, EIO, "hashing layer: %s",
                                   archive_error_string(im->hash_out));
                z += n;
            }
            im->cpos = off;
        }
        if (len && archive_write_data(im->hash_out, block, len) < 0)
            return err_set(err, EIO, "hashing layer: %s", archive_error_string(im->hash_out));
        if (feed(im, block, len, e->path, err) < 0 || drain(im, false, e->path, err) < 0)
            return -1;
        pos = off + len;
        im->bytes += len;
    }
    if (drain(im, true, e->path, err) < 0)
        return -1;
    if (pos < e->size) {
        /* a trailing hole (sparse file ending in a hole) */
        static const uint8_t zeros[65536];
        for (uint64_t z = pos; z < e->size;) {
            size_t n = e->size - z < sizeof zeros ? (size_t)(e->size - z) : sizeof zeros;
            if (archive_write_data(im->hash_out, zeros, n) < 0)
                return err_set(err, EIO, "hashing layer: %s", archive_error_string(im->hash_out));
            z += n;
        }
    }
    e->extents = im->ext;
    e->n_extents = im->n_ext;
    return 0;
}

static enum layer_kind kind_of(mode_t type)
{
    switch (type) {
    case AE_IFDIR: return LAYER_DIR;
    case AE_IFLNK: return LAYER_SYMLINK;
    case AE_IFCHR: return LAYER_CHAR;
    case AE_IFBLK: return LAYER_BLOCK;
    case AE_IFIFO: return LAYER_FIFO;
    case AE_IFSOCK: return LAYER_SOCKET;
    case AE_IFREG: return LAYER_REG;
    default: return 0;
    }
}

int import_layer(struct store_batch *b, struct archive *in, const char *what,
                 struct import_layer_result *out, struct imgfs_err *err)
{
    memset(out, 0, sizeof *out);
    struct importer im = {.b = b, .what = what, .diff = digest_ctx_new()};
    im.ccap = 2 * CHUNK_MAX;
    im.cbuf = xmalloc(im.ccap);
    im.hash_out = layer_tar_writer_new(&im, hash_write);
    struct layer_writer w;
    layer_writer_init(&w);
    struct pathset seen = {0};
    struct archive_entry *canon = archive_entry_new();
    struct layer_xattr *xattrs = NULL;
    size_t xattrs_cap = 0;
    int ret = -1;

    for (;;) {
        struct archive_entry *ae;
        int rc = archive_read_next_header(in, &ae);
        if (rc == ARCHIVE_EOF)
            break;
        if (rc < ARCHIVE_WARN) {
            err_set(err, EINVAL, "%s: %s (after %llu members)", what, archive_error_string(in),
                    (unsigned long long)out->files);
            goto out;
        }
        const char *raw = archive_entry_pathname(ae);
        if (!raw) {
            err_set(err, EINVAL, "%s: a member has no name (after %llu members)", what,
                    (unsigned long long)out->files);
            goto out;
        }
        if (strlen(raw) >= PATH_MAX) {
            err_set(err, ENAMETOOLONG, "%s: member name of %zu bytes is longer than PATH_MAX",
                    what, strlen(raw));
            goto out;
        }
        cleanup_free char *path = xstrdup(raw);
        if (normalize_path(path) < 0) {
            err_set(err, EINVAL, "%s: member `%s` has a `..` part (it would land outside the root)",
                    what, raw);
            goto out;
        }
        struct layer_entry e = {
            .path = path,
            .mode = archive_entry_perm(ae),
            .uid = (uint32_t)archive_entry_uid(ae),
            .gid = (uint32_t)archive_entry_gid(ae),
            .mtime_sec = archive_entry_mtime(ae),
            .mtime_nsec = (uint32_t)archive_entry_mtime_nsec(ae),
            .uname = archive_entry_uname(ae),
            .gname = archive_entry_gname(ae),
        };
        cleanup_free char *link = NULL;
        const char *hard = archive_entry_hardlink(ae);
        if (hard) {
            e.kind = LAYER_HARDLINK;
            link = xstrdup(hard);
            if (normalize_path(link) < 0 || !pathset_has(&seen, link)) {
                err_set(err, EINVAL, "%s: hardlink `%s` points to `%s`, which is not an earlier "
                        "member of the layer", what, raw, hard);
                goto out;
            }
            e.link = link;
        } else {
            e.kind = kind_of(archive_entry_filetype(ae));
            if (!e.kind) {
                err_set(err, EINVAL, "%s: member `%s` has an unknown file type", what, raw);
                goto out;
            }
            if (e.kind == LAYER_SYMLINK) {
                const char *t = archive_entry_symlink(ae);
                e.link = t ? t : "";
            }
            if (e.kind == LAYER_CHAR || e.kind == LAYER_BLOCK) {
                e.rdev_major = archive_entry_rdevmajor(ae);
                e.rdev_minor = archive_entry_rdevminor(ae);
            }
            if (e.kind == LAYER_REG)
                e.size = archive_entry_size(ae);
        }
        /* xattrs */
        uint32_t n_xattrs = (uint32_t)archive_entry_xattr_reset(ae);
        if (n_xattrs > xattrs_cap) {
            xattrs_cap = n_xattrs;
            xattrs = xrealloc(xattrs, xattrs_cap * sizeof *xattrs);
        }
        e.n_xattrs = 0;
        for (uint32_t i = 0; i < n_xattrs; i++) {
            const char *name;
            const void *value;
            size_t size;
            archive_entry_xattr_next(ae, &name, &value, &size);
            /* libarchive writes a binary xattr twice (LIBARCHIVE.xattr and SCHILY.xattr) and
             * reads both back: keep one, or a canonical tar would not import to itself */
            bool dup = false;
            for (uint32_t k = 0; k < e.n_xattrs && !dup; k++)
                dup = !strcmp(xattrs[k].name, name);
            if (!dup)
                xattrs[e.n_xattrs++] =
                    (struct layer_xattr){.name = name, .value = value, .len = (uint32_t)size};
        }
        e.xattrs = xattrs;

        layer_entry_to_archive(&e, canon);
        if (archive_write_header(im.hash_out, canon) < ARCHIVE_WARN) {
            err_set(err, EIO, "%s: member `%s`: %s", what, raw, archive_error_string(im.hash_out));
            goto out;
        }
        if (e.kind == LAYER_REG && read_file_data(&im, in, &e, err) < 0)
            goto out;
        layer_writer_add(&w, &e);
        pathset_add(&seen, path);
        out->files++;
    }
    if (archive_write_close(im.hash_out) != ARCHIVE_OK) {
        err_set(err, EIO, "%s: finishing layer digest: %s", what,
                archive_error_string(im.hash_out));
        goto out;
    }
    layer_writer_finish(&w);
    digest_ctx_final(im.diff, &out->diff_id);
    out->size = im.tar_size;
    out->bytes = im.bytes;
    if (store_batch_put(b, STORE_LAYER, &out->diff_id, w.out.data, w.out.len, err) < 0) {
        err_ctx(err, "%s: storing the layer table", what);
        goto out;
    }
    out->table = w.out;
    w.out = (struct buf){0};
    ret = 0;
out:
    buf_free(&w.out);
    archive_write_free(im.hash_out);
    archive_entry_free(canon);
    digest_ctx_free(im.diff);
    pathset_free(&seen);
    free(im.cbuf);
    free(im.ext);
    free(xattrs);
    return ret;
}

/* ---- sources ---- */

/* stdin can be read once only, and telling an OCI tar from a rootfs needs a look first: spool it
 * into the store's tmp dir (same filesystem, removed at once; gc clears leftovers of killed runs). */
static int spool_stdin(struct store *s, char **path, struct imgfs_err *err)
{
    char *p = xasprintf("%s/tmp/stdin.XXXXXX", store_root(s));
    int fd = mkostemp(p, O_CLOEXEC);
    if (fd < 0) {
        err_sys(err, errno, "creating `%s`", p);
        free(p);
        return -1;
    }
    static char buf[1 << 16];
    for (;;) {
        ssize_t n = read(0, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 || (n > 0 && write_full(fd, buf, n) < 0)) {
            err_sys(err, errno, n < 0 ? "reading standard input" : "writing `%s`", p);
            close(fd);
            unlink(p);
            free(p);
            return -1;
        }
        if (n == 0)
            break;
    }
    close(fd);
    *path = p;
    return 0;
}

static int import_rootfs(struct store_batch *b, const char *path, const char *name,
                         struct digest *out, struct imgfs_err *err)
{
    struct archive *a = import_tar_reader_new();
    int ret = -1;
    struct import_layer_result res = {0};
    cleanup_free char *what = xasprintf("`%s`", path);
    if (archive_read_open_filename(a, path, 1 << 20) != ARCHIVE_OK) {
        err_set(err, EINVAL, "`%s`: %s", path, archive_error_string(a));
        goto out;
    }
    if (import_layer(b, a, what, &res, err) < 0)
        goto out;
    if (res.files == 0) {
        err_set(err, EINVAL, "`%s` holds no files (is it a tar archive?)", path);
        goto out;
    }
    struct image_layer layer = {
        .diff_id = res.diff_id, .size = res.size, .table = res.table.data, .table_len = res.table.len};
    ret = image_commit(b, NULL, 0, &layer, 1, name, out, err);
out:
    buf_free(&res.table);
    archive_read_free(a);
    return ret;
}

int import_source(struct store *s, const char *source, const char *name, struct digest *out,
                  struct imgfs_err *err)
{
    cleanup_free char *spooled = NULL;
    const char *path = source;
    if (!strcmp(source, "-")) {
        if (spool_stdin(s, &spooled, err) < 0)
            return -1;
        path = spooled;
    }
    int ret = -1;
    struct store_batch *b = NULL;
    enum oci_source_kind kind;
    struct stat st;
    if (stat(path, &st) < 0) {
        err_sys(err, errno, "`%s`", source);
        goto out;
    }
    if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode) && !S_ISFIFO(st.st_mode) &&
        !S_ISCHR(st.st_mode)) {
        err_set(err, EINVAL, "`%s` is neither a file nor a directory", source);
        goto out;
    }
    if (oci_detect(path, &kind, err) < 0)
        goto out;
    if (S_ISDIR(st.st_mode) && kind == OCI_SOURCE_ROOTFS) {
        err_set(err, EINVAL, "`%s` is a directory but not an OCI image layout (no oci-layout "
                "file); to import a directory tree, tar it: tar -C DIR -c . | imgfs import -", source);
        goto out;
    }
    if (store_batch_begin(s, &b, err) < 0)
        goto out;
    if (kind == OCI_SOURCE_ROOTFS)
        ret = import_rootfs(b, path, name, out, err);
    else
        ret = oci_import(b, path, kind, name, out, err);
    if (ret < 0) {
        store_batch_abort(b);
        goto out;
    }
    ret = store_batch_commit(b, err);
out:
    if (spooled)
        unlink(spooled);
    if (ret < 0 && spooled)
        err_ctx(err, "importing standard input");
    else if (ret < 0)
        err_ctx(err, "importing `%s`", source);
    return ret;
}
