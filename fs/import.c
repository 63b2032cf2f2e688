#include "import.h"
#include "layer.h"
#include "layerbuild.h"
#include "oci.h"
#include "store.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

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

/* ---- decompression in a second thread ---- */

struct import_stream {
    pthread_t thread;
    bool started;
    int fds[2]; /* pipe: decompressor writes [1], the tar reader reads [0] */
    struct archive *src;
    struct archive *tar;
    struct imgfs_err err;           /* the decompressor's, when err.code != 0 */
    struct digest_ctx *hash;        /* of the uncompressed bytes, when asked for */
    struct store_batch *idle_batch; /* flushed while the tar reader waits for input */
    struct imgfs_err idle_err;
    uint8_t *rbuf;
};

#define TAR_READ_BYTES (1 << 20)
#define IDLE_MS        100

/* The tar reader's input: the decompressor's pipe. When nothing comes for IDLE_MS, the batch
 * commits what it has, so a stalled source holds no LMDB write transaction while it waits. */
static la_ssize_t tar_pipe_read(struct archive *a, void *ctx, const void **buf)
{
    struct import_stream *st = ctx;
    if (st->idle_batch) {
        struct pollfd p = {.fd = st->fds[0], .events = POLLIN};
        int n;
        do
            n = poll(&p, 1, IDLE_MS);
        while (n < 0 && errno == EINTR);
        if (n == 0 && store_batch_flush(st->idle_batch, &st->idle_err) < 0) {
            archive_set_error(a, st->idle_err.code, "%s", st->idle_err.msg);
            return -1;
        }
    }
    ssize_t n;
    do
        n = read(st->fds[0], st->rbuf, TAR_READ_BYTES);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        archive_set_error(a, errno, "reading the decompressed stream: %s", strerror(errno));
    *buf = st->rbuf;
    return n;
}

void import_stream_flush_when_idle(struct import_stream *s, struct store_batch *b)
{
    s->idle_batch = b;
}

/* Hand uncompressed bytes to the tar reader (hashing them when asked). */
static int emit_uncompressed(struct import_stream *st, const void *data, size_t len)
{
    if (st->hash)
        digest_ctx_update(st->hash, data, len);
    return write_full(st->fds[1], data, len);
}

/* The raw (still compressed) bytes of the source, the first block pushed back once. */
struct raw_source {
    struct archive *src;
    const void *first;
    la_ssize_t first_len;
};

static la_ssize_t raw_next(struct raw_source *r, const void **buf)
{
    if (r->first) {
        *buf = r->first;
        r->first = NULL;
        return r->first_len;
    }
    size_t len;
    la_int64_t off;
    int rc = archive_read_data_block(r->src, buf, &len, &off);
    if (rc == ARCHIVE_EOF)
        return 0;
    if (rc < ARCHIVE_WARN)
        return -1;
    return (la_ssize_t)len;
}

static la_ssize_t raw_read_cb(struct archive *a, void *ctx, const void **buf)
{
    struct raw_source *r = ctx;
    la_ssize_t n = raw_next(r, buf);
    if (n < 0)
        archive_set_error(a, EIO, "%s", archive_error_string(r->src));
    return n;
}

/* gzip through zlib itself: libarchive's gzip reader does not check the CRC-32 in the trailer, and
 * a corrupt deflate stream can decode into plausible but wrong file contents. Concatenated members
 * (as pigz and `cat a.gz b.gz` make) are read one after another. */
static int gunzip(struct import_stream *st, struct raw_source *raw, char *out, size_t out_len)
{
    z_stream z = {0};
    if (inflateInit2(&z, 15 + 16) != Z_OK)
        return err_set(&st->err, ENOMEM, "starting gzip decompression");
    int ret = -1;
    bool in_member = true;
    for (;;) {
        if (z.avail_in == 0) {
            const void *buf;
            la_ssize_t n = raw_next(raw, &buf);
            if (n < 0) {
                err_set(&st->err, EIO, "%s", archive_error_string(st->src));
                goto out;
            }
            if (n == 0) {
                if (in_member) {
                    err_set(&st->err, EINVAL, "truncated gzip input (it ends inside a member)");
                    goto out;
                }
                break;
            }
            z.next_in = (Bytef *)buf;
            z.avail_in = (uInt)n;
        }
        if (!in_member) {
            inflateReset(&z);
            in_member = true;
        }
        z.next_out = (Bytef *)out;
        z.avail_out = (uInt)out_len;
        int rc = inflate(&z, Z_NO_FLUSH);
        if (rc != Z_OK && rc != Z_STREAM_END && rc != Z_BUF_ERROR) {
            err_set(&st->err, EINVAL, "corrupt gzip data: %s (after %lu bytes of input)",
                    z.msg ? z.msg : "inflate failed", (unsigned long)z.total_in);
            goto out;
        }
        size_t n = out_len - z.avail_out;
        if (n && emit_uncompressed(st, out, n) < 0) {
            ret = 0; /* the tar reader is done with the stream */
            goto out;
        }
        if (rc == Z_STREAM_END)
            in_member = false;
    }
    ret = 0;
out:
    inflateEnd(&z);
    return ret;
}

static void *decompress_main(void *arg)
{
    struct import_stream *st = arg;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE); /* a reader that stopped early gives EPIPE, not a signal */
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    /* on the heap: a __thread array is in every thread's TLS block, which ld.so zeroes (faults
     * in) at every exec of imgfs, also when nothing is imported */
    const size_t buf_len = 1 << 20;
    char *buf = xmalloc(buf_len);
    struct raw_source raw = {.src = st->src};
    struct archive_entry *ae;
    int rc = archive_read_next_header(st->src, &ae);
    if (rc == ARCHIVE_EOF)
        goto done;
    if (rc < ARCHIVE_WARN) {
        err_set(&st->err, EINVAL, "%s", archive_error_string(st->src));
        goto done;
    }
    raw.first_len = raw_next(&raw, &raw.first);
    if (raw.first_len < 0) {
        err_set(&st->err, EIO, "%s", archive_error_string(st->src));
        goto done;
    }
    if (raw.first_len >= 2 && ((const uint8_t *)raw.first)[0] == 0x1f &&
        ((const uint8_t *)raw.first)[1] == 0x8b) {
        gunzip(st, &raw, buf, buf_len);
        goto done;
    }
    /* every other compression (and none) through libarchive's filters */
    struct archive *dec = archive_read_new();
    archive_read_support_filter_all(dec);
    archive_read_support_format_raw(dec);
    archive_read_support_format_empty(dec);
    if (archive_read_open(dec, &raw, NULL, raw_read_cb, NULL) != ARCHIVE_OK ||
        ((rc = archive_read_next_header(dec, &ae)) < ARCHIVE_WARN && rc != ARCHIVE_EOF)) {
        err_set(&st->err, EINVAL, "%s", archive_error_string(dec));
    } else if (rc != ARCHIVE_EOF) {
        for (;;) {
            la_ssize_t n = archive_read_data(dec, buf, buf_len);
            if (n < 0) {
                err_set(&st->err, EINVAL, "%s", archive_error_string(dec));
                break;
            }
            if (n == 0 || emit_uncompressed(st, buf, (size_t)n) < 0)
                break;
        }
    }
    archive_read_free(dec);
done:
    free(buf);
    close(st->fds[1]);
    st->fds[1] = -1;
    return NULL;
}

static int stream_start(struct import_stream *st, struct import_stream **out, struct archive **tar,
                        struct imgfs_err *err)
{
    if (pipe2(st->fds, O_CLOEXEC) < 0) {
        err_sys(err, errno, "creating a pipe");
        goto fail;
    }
    fcntl(st->fds[1], F_SETPIPE_SZ, 1 << 20); /* fewer wake-ups; best effort */
    if (pthread_create(&st->thread, NULL, decompress_main, st) != 0) {
        err_set(err, EAGAIN, "starting the decompression thread");
        goto fail;
    }
    st->started = true;
    st->tar = archive_read_new();
    archive_read_support_filter_none(st->tar);
    archive_read_support_format_tar(st->tar);
    archive_read_support_format_gnutar(st->tar);
    st->rbuf = xmalloc(TAR_READ_BYTES);
    if (archive_read_open(st->tar, st, NULL, tar_pipe_read, NULL) != ARCHIVE_OK) {
        struct imgfs_err ignored;
        err_set(err, EINVAL, "%s", archive_error_string(st->tar));
        import_stream_close(st, true, &ignored);
        if (ignored.code)
            *err = ignored;
        return -1;
    }
    *out = st;
    *tar = st->tar;
    return 0;
fail:
    import_stream_close(st, false, &(struct imgfs_err){0});
    return -1;
}

static struct import_stream *stream_new(void)
{
    struct import_stream *st = xcalloc(1, sizeof *st);
    st->fds[0] = st->fds[1] = -1;
    st->src = archive_read_new();
    archive_read_support_filter_none(st->src);
    archive_read_support_format_raw(st->src);
    archive_read_support_format_empty(st->src);
    return st;
}

int import_stream_open_file(const char *path, struct import_stream **out, struct archive **tar,
                            struct imgfs_err *err)
{
    struct import_stream *st = stream_new();
    if (archive_read_open_filename(st->src, path, 1 << 20) != ARCHIVE_OK) {
        err_set(err, EINVAL, "`%s`: %s", path, archive_error_string(st->src));
        import_stream_close(st, false, &(struct imgfs_err){0});
        return -1;
    }
    return stream_start(st, out, tar, err);
}

int import_stream_open_cb(void *ctx,
                          ssize_t (*read_fn)(struct archive *, void *ctx, const void **buf),
                          struct import_stream **out, struct archive **tar, struct imgfs_err *err)
{
    struct import_stream *st = stream_new();
    if (archive_read_open(st->src, ctx, NULL, read_fn, NULL) != ARCHIVE_OK) {
        err_set(err, EINVAL, "%s", archive_error_string(st->src));
        import_stream_close(st, false, &(struct imgfs_err){0});
        return -1;
    }
    return stream_start(st, out, tar, err);
}

int import_stream_open_cb_hashed(void *ctx,
                                 ssize_t (*read_fn)(struct archive *, void *ctx, const void **buf),
                                 struct import_stream **out, struct archive **tar,
                                 struct imgfs_err *err)
{
    struct import_stream *st = stream_new();
    st->hash = digest_ctx_new();
    if (archive_read_open(st->src, ctx, NULL, read_fn, NULL) != ARCHIVE_OK) {
        err_set(err, EINVAL, "%s", archive_error_string(st->src));
        import_stream_close(st, false, &(struct imgfs_err){0});
        return -1;
    }
    return stream_start(st, out, tar, err);
}

/* read what the decompressor still writes, to its end */
static void drain(int fd)
{
    char sink[1 << 16];
    while (read(fd, sink, sizeof sink) > 0)
        ;
}

int import_stream_finish(struct import_stream *st, struct digest *uncompressed,
                         struct imgfs_err *err)
{
    /* the tar reader is done: read what it left, so the decompressor runs to the end of the
     * stream (the hash covers all of it, and a gzip trailer's CRC is checked) */
    if (st->tar) {
        archive_read_free(st->tar);
        st->tar = NULL;
    }
    if (st->started && st->fds[0] >= 0)
        drain(st->fds[0]);
    if (st->started)
        pthread_join(st->thread, NULL);
    st->started = false;
    if (st->hash)
        digest_ctx_final(st->hash, uncompressed);
    return import_stream_close(st, false, err);
}

int import_stream_close(struct import_stream *st, bool tar_failed, struct imgfs_err *err)
{
    if (!st)
        return 0;
    if (st->tar)
        archive_read_free(st->tar);
    if (tar_failed && st->started && st->fds[0] >= 0)
        drain(st->fds[0]);
    if (st->fds[0] >= 0)
        close(st->fds[0]); /* unblocks a decompressor still writing */
    if (st->started)
        pthread_join(st->thread, NULL);
    if (st->fds[1] >= 0)
        close(st->fds[1]);
    if (st->hash)
        digest_ctx_free(st->hash);
    archive_read_free(st->src);
    int ret = 0;
    if (st->err.code) {
        *err = st->err;
        ret = -1;
    }
    free(st->rbuf);
    free(st);
    return ret;
}

/* ---- the layer reader: tar members into the layer builder ---- */

static enum layer_kind kind_of(mode_t type)
{
    switch (type) {
    case AE_IFDIR:
        return LAYER_DIR;
    case AE_IFLNK:
        return LAYER_SYMLINK;
    case AE_IFCHR:
        return LAYER_CHAR;
    case AE_IFBLK:
        return LAYER_BLOCK;
    case AE_IFIFO:
        return LAYER_FIFO;
    case AE_IFSOCK:
        return LAYER_SOCKET;
    case AE_IFREG:
        return LAYER_REG;
    default:
        return 0;
    }
}

/* A member's data blocks (sparse files: one block per extent, holes between them). */
static int tar_data_next(void *ctx, const void **data, size_t *len, uint64_t *offset,
                         struct imgfs_err *err)
{
    struct archive *in = ctx;
    la_int64_t off;
    int rc = archive_read_data_block(in, data, len, &off);
    if (rc == ARCHIVE_EOF)
        return 0;
    if (rc < ARCHIVE_WARN)
        return err_set(err, EIO, "%s", archive_error_string(in));
    if (off < 0)
        return err_set(err, EIO, "a data block at a negative offset");
    *offset = (uint64_t)off;
    return 1;
}

/* The data runs a member declares: its sparse map, or (none) the whole member. */
static void declared_runs(struct archive_entry *ae, uint64_t size, struct layer_run **runs,
                          size_t *n, size_t *cap)
{
    *n = 0;
    if (archive_entry_sparse_reset(ae) == 0) {
        *runs = *cap ? *runs : xmalloc(sizeof **runs);
        *cap = *cap ? *cap : 1;
        (*runs)[(*n)++] = (struct layer_run){0, size};
        return;
    }
    la_int64_t off, len;
    while (archive_entry_sparse_next(ae, &off, &len) == ARCHIVE_OK) {
        if (off < 0 || len <= 0)
            continue;
        if (*n == *cap) {
            *cap = *cap ? *cap * 2 : 8;
            *runs = xrealloc(*runs, *cap * sizeof **runs);
        }
        (*runs)[(*n)++] = (struct layer_run){(uint64_t)off, (uint64_t)len};
    }
}

static int read_layer(struct store_batch *b, struct archive *in, const char *what,
                      const char *const *skip, struct import_limits *limits,
                      struct layer_build_result *out, struct imgfs_err *err);

void import_limits_init(struct import_limits *l)
{
    *l = (struct import_limits){.max_bytes = IMPORT_DEFAULT_MAX_BYTES,
                                .max_files = IMPORT_DEFAULT_MAX_FILES};
}

int import_layer(struct store_batch *b, struct archive *in, const char *what,
                 struct layer_build_result *out, struct imgfs_err *err)
{
    struct import_limits limits;
    import_limits_init(&limits);
    return read_layer(b, in, what, NULL, &limits, out, err);
}

int import_layer_skip(struct store_batch *b, struct archive *in, const char *what,
                      const char *const *skip, struct layer_build_result *out,
                      struct imgfs_err *err)
{
    struct import_limits limits;
    import_limits_init(&limits);
    return read_layer(b, in, what, skip, &limits, out, err);
}

int import_layer_limited(struct store_batch *b, struct archive *in, const char *what,
                         struct import_limits *limits, struct layer_build_result *out,
                         struct imgfs_err *err)
{
    return read_layer(b, in, what, NULL, limits, out, err);
}

static bool skipped_at_root(const char *raw, const char *const *skip)
{
    if (!skip)
        return false;
    while (*raw == '/' || (raw[0] == '.' && raw[1] == '/'))
        raw += raw[0] == '/' ? 1 : 2;
    for (; *skip; skip++)
        if (!strcmp(raw, *skip))
            return true;
    return false;
}

static int read_layer(struct store_batch *b, struct archive *in, const char *what,
                      const char *const *skip, struct import_limits *limits,
                      struct layer_build_result *out, struct imgfs_err *err)
{
    memset(out, 0, sizeof *out);
    struct layer_run *runs = NULL;
    size_t n_runs = 0, runs_cap = 0;
    struct layer_builder *lb;
    if (layer_builder_open(b, what, &lb, err) < 0)
        return -1;
    struct layer_xattr *xattrs = NULL;
    size_t xattrs_cap = 0;
    uint64_t members = 0;
    int ret = -1;

    for (;;) {
        struct archive_entry *ae;
        int rc = archive_read_next_header(in, &ae);
        if (rc == ARCHIVE_EOF)
            break;
        if (rc < ARCHIVE_WARN) {
            err_set(err, EINVAL, "%s: %s (after %llu members)", what, archive_error_string(in),
                    (unsigned long long)members);
            goto out;
        }
        const char *raw = archive_entry_pathname(ae);
        if (!raw) {
            err_set(err, EINVAL, "%s: a member has no name (after %llu members)", what,
                    (unsigned long long)members);
            goto out;
        }
        if (skipped_at_root(raw, skip))
            continue;
        struct layer_entry e = {
            .path = raw,
            .mode = archive_entry_perm(ae),
            .uid = (uint32_t)archive_entry_uid(ae),
            .gid = (uint32_t)archive_entry_gid(ae),
            .mtime_sec = archive_entry_mtime(ae),
            .mtime_nsec = (uint32_t)archive_entry_mtime_nsec(ae),
            .uname = archive_entry_uname(ae),
            .gname = archive_entry_gname(ae),
        };
        const char *hard = archive_entry_hardlink(ae);
        if (hard) {
            e.kind = LAYER_HARDLINK;
            e.link = hard;
        } else {
            e.kind = kind_of(archive_entry_filetype(ae));
            if (!e.kind) {
                err_set(err, EINVAL, "%s: member `%s` has an unknown file type", what, raw);
                goto out;
            }
            if (e.kind == LAYER_SYMLINK)
                e.link = archive_entry_symlink(ae);
            if (e.kind == LAYER_CHAR || e.kind == LAYER_BLOCK) {
                e.rdev_major = archive_entry_rdevmajor(ae);
                e.rdev_minor = archive_entry_rdevminor(ae);
            }
            if (e.kind == LAYER_REG)
                e.size = archive_entry_size(ae);
        }
        uint32_t n_xattrs = (uint32_t)archive_entry_xattr_reset(ae);
        if (n_xattrs > xattrs_cap) {
            xattrs_cap = n_xattrs;
            xattrs = xrealloc(xattrs, xattrs_cap * sizeof *xattrs);
        }
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
        if (limits->max_files && limits->files >= limits->max_files) {
            err_set(err, EFBIG, "%s: more than %llu entries (the import's limit)", what,
                    (unsigned long long)limits->max_files);
            goto out;
        }
        limits->files++;
        if (e.kind == LAYER_REG) {
            /* the limit is checked against what the header declares, before any data is read;
             * holes are not content */
            declared_runs(ae, e.size, &runs, &n_runs, &runs_cap);
            uint64_t data = 0;
            for (size_t i = 0; i < n_runs; i++)
                data += runs[i].length < e.size ? runs[i].length : e.size;
            if (limits->max_bytes &&
                (data > limits->max_bytes || limits->bytes > limits->max_bytes - data)) {
                err_set(err, EFBIG,
                        "%s: `%s` brings the content to %llu bytes, more than the "
                        "import's limit of %llu",
                        what, raw, (unsigned long long)(limits->bytes + data),
                        (unsigned long long)limits->max_bytes);
                goto out;
            }
            limits->bytes += data;
        }
        if ((e.kind == LAYER_REG
                 ? layer_builder_add_runs(lb, &e, runs, n_runs, tar_data_next, in, err)
                 : layer_builder_add(lb, &e, err)) < 0)
            goto out;
        members++;
    }
    ret = layer_builder_finish(lb, out, err);
out:
    layer_builder_free(lb);
    free(xattrs);
    free(runs);
    return ret;
}

/* ---- sources ---- */

/* ---- standard input ---- */

/* A stream (stdin, or a FIFO or character device named as the source, as `docker load -i FIFO`
 * reads one) is read once. A rootfs tar is imported as it streams in (so a long import commits as
 * it goes); an image archive (OCI layout or docker save) is read twice by oci_import, so it is
 * spooled to the store's tmp dir first. Which of the two it is shows in its first member names,
 * which the first megabyte (peeked) holds. */
#define PEEK_BYTES (1u << 20)

struct stdin_source {
    int fd;
    const char *what; /* "standard input" or the source's path, for errors */
    uint8_t *peek;
    size_t peek_len, peek_pos;
    bool eof;
    uint8_t buf[1 << 16];
};

static int peek_stdin(struct stdin_source *in, struct imgfs_err *err)
{
    in->peek = xmalloc(PEEK_BYTES);
    while (in->peek_len < PEEK_BYTES) {
        ssize_t n = read(in->fd, in->peek + in->peek_len, PEEK_BYTES - in->peek_len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return err_sys(err, errno, "reading %s", in->what);
        if (n == 0) {
            in->eof = true;
            break;
        }
        in->peek_len += (size_t)n;
    }
    return 0;
}

static ssize_t stdin_read_cb(struct archive *a, void *ctx, const void **out)
{
    struct stdin_source *in = ctx;
    if (in->peek_pos < in->peek_len) {
        *out = in->peek + in->peek_pos;
        size_t n = in->peek_len - in->peek_pos;
        in->peek_pos = in->peek_len;
        return (ssize_t)n;
    }
    if (in->eof)
        return 0;
    for (;;) {
        ssize_t n = read(in->fd, in->buf, sizeof in->buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            archive_set_error(a, errno, "reading %s: %s", in->what, strerror(errno));
        *out = in->buf;
        return n;
    }
}

/* Do the first members in the peeked bytes all look like an image archive's? */
static bool peek_is_image_archive(const struct stdin_source *in)
{
    struct archive *a = import_tar_reader_new();
    bool maybe = false;
    if (archive_read_open_memory(a, in->peek, in->peek_len) == ARCHIVE_OK) {
        struct archive_entry *ae;
        int rc;
        while ((rc = archive_read_next_header(a, &ae)) == ARCHIVE_OK || rc == ARCHIVE_WARN) {
            const char *n = archive_entry_pathname(ae);
            if (!n || !oci_member_name_is_image_archive(n)) {
                maybe = false;
                break;
            }
            maybe = true;
        }
    }
    archive_read_free(a);
    return maybe;
}

static int spool_stdin(struct store *s, struct stdin_source *in, char **path, struct imgfs_err *err)
{
    char *p = xasprintf("%s/tmp/stream.XXXXXX", store_root(s));
    int fd = mkostemp(p, O_CLOEXEC);
    if (fd < 0) {
        err_sys(err, errno, "creating `%s`", p);
        free(p);
        return -1;
    }
    const void *data;
    ssize_t n;
    struct archive *dummy = archive_read_new(); /* only for error strings */
    while ((n = stdin_read_cb(dummy, in, &data)) > 0)
        if (write_full(fd, data, (size_t)n) < 0)
            break;
    int e = errno;
    archive_read_free(dummy);
    if (n != 0 || close(fd) < 0) {
        if (n < 0)
            err_sys(err, e, "reading %s", in->what);
        else
            err_sys(err, e, "writing `%s`", p);
        unlink(p);
        free(p);
        return -1;
    }
    *path = p;
    return 0;
}

/* Import one rootfs layer from an opened stream, then commit it as an image. */
/* The member at the top of a layer that makes an archive an image archive (docker save, OCI
 * layout, go-containerregistry tarball), or NULL. */
static const char *image_archive_marker(const struct buf *table)
{
    static const char *const markers[] = {"manifest.json", "index.json", "oci-layout"};
    struct layer_reader rd;
    struct layer_entry e;
    struct imgfs_err ignored;
    const char *found = NULL;
    if (layer_reader_init(&rd, table->data, table->len, &ignored) < 0)
        return NULL;
    while (!found && layer_next(&rd, &e, &ignored) > 0)
        for (size_t i = 0; i < sizeof markers / sizeof *markers && !found; i++)
            if (e.kind == LAYER_REG && !strcmp(e.path, markers[i]))
                found = markers[i];
    layer_reader_free(&rd);
    return found;
}

/* `*marker` is set (and -1 returned) when the tar turns out to be an image archive that detection
 * took for a rootfs: one whose member names fit no known writer, say. */
static int import_rootfs(struct store_batch *b, struct import_stream *st, struct archive *a,
                         const char *name, char *const *changes, struct import_limits *limits,
                         struct digest *out, const char **marker, struct imgfs_err *err)
{
    cleanup_free char *config = NULL;
    size_t config_len = 0;
    struct layer_build_result res = {0};
    int ret = -1;
    int rc = 0;
    if (changes && *changes)
        rc = image_config_edit(NULL, 0, changes, &config, &config_len, err);
    if (rc == 0)
        rc = import_layer_limited(b, a, "rootfs tar", limits, &res, err);
    struct imgfs_err derr = {0};
    if (import_stream_close(st, rc < 0, &derr) < 0) {
        /* the decompressor's error is the cause; the tar reader only saw the stream end early */
        *err = derr;
        rc = -1;
    }
    if (rc < 0)
        goto out;
    if (res.files == 0) {
        err_set(err, EINVAL, "no files in it (is it a tar archive?)");
        goto out;
    }
    if ((*marker = image_archive_marker(&res.table))) {
        err_set(err, EINVAL, "it has `%s` at its top, so it is an image archive, not a rootfs",
                *marker);
        goto out;
    }
    struct image_layer layer = {.diff_id = res.diff_id,
                                .size = res.size,
                                .table = res.table.data,
                                .table_len = res.table.len};
    ret = image_commit(b, config, config_len, &layer, 1, name, out, err);
out:
    buf_free(&res.table);
    return ret;
}

void import_images_free(struct import_images *l)
{
    for (size_t i = 0; i < l->n; i++) {
        for (size_t k = 0; k < l->v[i].n_names; k++)
            free(l->v[i].names[k]);
        free(l->v[i].names);
    }
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

int import_source(struct store *s, const char *source, const char *name, char *const *changes,
                  struct import_limits *limits, struct digest *out, struct import_images *images,
                  struct imgfs_err *err)
{
    struct import_limits defaults;
    if (!limits) {
        import_limits_init(&defaults);
        limits = &defaults;
    }
    cleanup_free char *spooled = NULL;
    const char *path = source;
    struct stdin_source *in = NULL;
    struct store_batch *b = NULL;
    struct import_stream *st = NULL;
    struct archive *a;
    enum oci_source_kind kind = OCI_SOURCE_ROOTFS;
    int ret = -1;
    int stream_fd = -1;
    bool from_stdin = !strcmp(source, "-");
    bool stream = from_stdin;

    if (!from_stdin) {
        struct stat st_;
        if (stat(path, &st_) < 0) {
            err_sys(err, errno, "`%s`", source);
            goto out;
        }
        if (!S_ISDIR(st_.st_mode) && !S_ISREG(st_.st_mode) && !S_ISFIFO(st_.st_mode) &&
            !S_ISCHR(st_.st_mode)) {
            err_set(err, EINVAL, "`%s` is a %s, neither a file nor a directory", source,
                    file_type_name(st_.st_mode));
            goto out;
        }
        /* A FIFO or a device can be read only once: a stream like stdin. The open waits for a
         * writer, as `cat` and `docker load -i` do: the user named it to be read. */
        if (S_ISFIFO(st_.st_mode) || S_ISCHR(st_.st_mode)) {
            stream = true;
            stream_fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
            if (stream_fd < 0) {
                err_sys(err, errno, "opening `%s`", source);
                goto out;
            }
        } else if (oci_detect(path, &kind, err) < 0) {
            goto out;
        }
        if (S_ISDIR(st_.st_mode) && kind == OCI_SOURCE_ROOTFS) {
            err_set(err, EINVAL,
                    "`%s` is a directory but not an OCI image layout (no oci-layout "
                    "file); to import a directory tree, tar it: tar -C DIR -c . | imgfs import -",
                    source);
            goto out;
        }
    }
    if (stream) {
        in = xcalloc(1, sizeof *in);
        in->fd = from_stdin ? 0 : stream_fd;
        in->what = from_stdin ? "standard input" : source;
        if (peek_stdin(in, err) < 0)
            goto out;
        if (in->peek_len == 0) {
            err_set(err, EINVAL, "%s is empty", from_stdin ? "standard input" : "the stream");
            goto out;
        }
        if (peek_is_image_archive(in)) {
            if (spool_stdin(s, in, &spooled, err) < 0)
                goto out;
            path = spooled;
            if (oci_detect(path, &kind, err) < 0)
                goto out;
        }
    }
    if (kind != OCI_SOURCE_ROOTFS && changes && *changes) {
        err_set(err, EINVAL,
                "--change applies to rootfs tarballs; `%s` is an image archive with "
                "a config of its own",
                source);
        goto out;
    }
    if (store_batch_begin(s, &b, err) < 0)
        goto out;
    if (kind != OCI_SOURCE_ROOTFS) {
        ret = oci_import(b, path, kind, name, limits, out, images, err);
    } else {
        if (stream && !spooled)
            ret = import_stream_open_cb(in, stdin_read_cb, &st, &a, err);
        else
            ret = import_stream_open_file(path, &st, &a, err);
        const char *marker = NULL;
        if (ret == 0) {
            import_stream_flush_when_idle(st, b);
            ret = import_rootfs(b, st, a, name, changes, limits, out, &marker, err);
        }
        if (ret < 0 && marker && !(stream && !spooled)) {
            /* an image archive after all: read it as one (it is a file, so it can be read again);
             * if it is not a valid one, that is the error, not a junk rootfs image */
            store_batch_abort(b);
            b = NULL;
            kind = strcmp(marker, "manifest.json") ? OCI_SOURCE_OCI_TAR : OCI_SOURCE_DOCKER_TAR;
            if (changes && *changes)
                err_set(err, EINVAL,
                        "--change applies to rootfs tarballs; `%s` is an image "
                        "archive (it has `%s`)",
                        source, marker);
            else if (store_batch_begin(s, &b, err) == 0)
                ret = oci_import(b, path, kind, name, limits, out, images, err);
            if (ret < 0)
                err_ctx(err,
                        "it has `%s` at its top, so it is an image archive, but not a valid "
                        "one",
                        marker);
        } else if (ret < 0 && marker) {
            err_ctx(err, "its first MiB did not show it; write it to a file and import that");
        }
    }
    if (ret < 0) {
        if (b)
            store_batch_abort(b);
        goto out;
    }
    ret = store_batch_commit(b, err);
out:
    if (spooled)
        unlink(spooled);
    if (stream_fd >= 0)
        close(stream_fd);
    if (in) {
        free(in->peek);
        free(in);
    }
    if (ret < 0 && from_stdin)
        err_ctx(err, "importing standard input");
    else if (ret < 0)
        err_ctx(err, "importing `%s`", source);
    return ret;
}
