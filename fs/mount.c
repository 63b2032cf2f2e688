/* mount.c — `imgfs mount`: an image's merged view served read-only through the libfuse3 low-level
 * API. Design notes: docs/mount.md.
 *
 * The daemon loads the image's view record once into its own memory and answers every metadata
 * request from it; file reads point straight into the LMDB map (fuse_reply_iov) inside a read
 * transaction held until the reply is written. Nothing here changes after the mount, so the kernel
 * is told to cache entries, attributes, pages, directories and symlinks "forever". */
#define FUSE_USE_VERSION 314

#include "mount.h"

#include "image.h"
#include "store.h"
#include "verified.h"
#include "lazy.h"
#include "view.h"

#include <dirent.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <linux/fuse.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <sys/vfs.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <syslog.h>
#include <time.h>

/* The image never changes: entries and attributes stay valid for as long as the kernel likes. */
#define CACHE_FOREVER (3600.0 * 24 * 365)
/* The largest read the kernel may send: libfuse derives max_pages from max_write and caps it at
 * its own buffer size (FUSE_MAX_MAX_PAGES = 256 pages). */
#define MAX_READ (1u << 20)
/* writev (and the kernel's fuse_dev_write) take at most UIO_MAXIOV segments; libfuse adds one for
 * the header. Past this a read is copied into one buffer instead. */
#define MAX_IOV 1000

static const char zero_page[MAX_READ];

/* ---- a concurrent set of chunk digests ----
 * Sharded by the digest's first byte, each shard an open-addressing table under its own mutex.
 * Digests are uniformly distributed, so their bytes are the hash. The all-zero digest marks an
 * empty slot (no chunk has it: it would be a SHA-256 preimage). */
#define SET_SHARDS 64

struct digest_shard {
    pthread_mutex_t lock;
    struct digest *slots;
    size_t cap, n; /* cap a power of two or 0 */
};
struct digest_set {
    struct digest_shard shards[SET_SHARDS];
};

static void digest_set_init(struct digest_set *s)
{
    for (size_t i = 0; i < SET_SHARDS; i++) {
        pthread_mutex_init(&s->shards[i].lock, NULL);
        s->shards[i].slots = NULL;
        s->shards[i].cap = s->shards[i].n = 0;
    }
}

static void digest_set_free(struct digest_set *s)
{
    for (size_t i = 0; i < SET_SHARDS; i++) {
        pthread_mutex_destroy(&s->shards[i].lock);
        free(s->shards[i].slots);
    }
}

static size_t digest_slot_hash(const struct digest *d)
{
    uint64_t h;
    memcpy(&h, d->b + 1, sizeof h);
    return (size_t)h;
}

static bool digest_is_zero(const struct digest *d)
{
    static const struct digest zero;
    return digest_equal(d, &zero);
}

/* The slot holding d, or the empty slot where it belongs. cap > 0. */
static struct digest *shard_find(struct digest_shard *sh, const struct digest *d)
{
    size_t mask = sh->cap - 1;
    for (size_t i = digest_slot_hash(d) & mask;; i = (i + 1) & mask) {
        struct digest *slot = &sh->slots[i];
        if (digest_is_zero(slot) || digest_equal(slot, d))
            return slot;
    }
}

static bool digest_set_contains(struct digest_set *s, const struct digest *d)
{
    struct digest_shard *sh = &s->shards[d->b[0] % SET_SHARDS];
    pthread_mutex_lock(&sh->lock);
    bool found = sh->cap && !digest_is_zero(shard_find(sh, d));
    pthread_mutex_unlock(&sh->lock);
    return found;
}

/* Returns true when d was not in the set before. */
static bool digest_set_add(struct digest_set *s, const struct digest *d)
{
    if (digest_is_zero(d))
        return false;
    struct digest_shard *sh = &s->shards[d->b[0] % SET_SHARDS];
    pthread_mutex_lock(&sh->lock);
    if ((sh->n + 1) * 2 > sh->cap) {
        struct digest_shard grown = {.cap = sh->cap ? sh->cap * 2 : 64};
        grown.slots = xcalloc(grown.cap, sizeof *grown.slots);
        for (size_t i = 0; i < sh->cap; i++)
            if (!digest_is_zero(&sh->slots[i]))
                *shard_find(&grown, &sh->slots[i]) = sh->slots[i];
        free(sh->slots);
        sh->slots = grown.slots;
        sh->cap = grown.cap;
    }
    struct digest *slot = shard_find(sh, d);
    bool added = digest_is_zero(slot);
    if (added) {
        *slot = *d;
        sh->n++;
    }
    pthread_mutex_unlock(&sh->lock);
    return added;
}

/* ---- the daemon's state ---- */
struct mount_ctx {
    struct store *store;
    void *view_blob; /* the view record, copied out of the map once */
    struct view view;
    char ref[256];
    atomic_bool no_open; /* the kernel accepts ENOSYS from open: it keeps pages by itself */
    atomic_bool no_opendir;
    atomic_bool readahead_set;
    const char *dir;              /* the mount point (absolute) */
    const char *root;             /* the store (absolute) */
    struct digest_set verified;   /* chunks whose SHA-256 this daemon has checked... */
    struct verified *checked;     /* ...or this boot has (verified.h), when the table opens */
    _Atomic uint64_t *prefetched; /* one bit per inode: its chunks' pages were asked for */
    struct digest_set reported;   /* bad chunks already logged */
    struct lazy *lazy;            /* the fetcher of a lazily pulled image's chunks (fs/lazy.h) */
    bool remote;                  /* some of the image's chunks are still in a registry */
    int trace_fd;                 /* --record-trace: each file's path at its first READ, or -1 */
    _Atomic uint64_t *traced;     /* one bit per inode: already in the trace */
};

static bool log_to_syslog;
/* Until the mount is live, libfuse's messages only become the error returned to the caller (which
 * prints it): echoing them too would print them twice. */
static bool log_capture_only;
static pthread_mutex_t last_log_lock = PTHREAD_MUTEX_INITIALIZER;
static char last_log[512]; /* libfuse's last message, for errors before the mount is live */

static int log_fd = -1; /* mount_options.log_path */

static void mount_vlog(int priority, const char *fmt, va_list ap)
{
    if (log_fd >= 0) {
        /* one write per line: the keeper and the daemon share the file */
        char line[2048];
        time_t now = time(NULL);
        struct tm tm;
        gmtime_r(&now, &tm);
        size_t n = strftime(line, sizeof line, "%Y-%m-%dT%H:%M:%SZ imgfs mount: ", &tm);
        va_list copy;
        va_copy(copy, ap);
        int k = vsnprintf(line + n, sizeof line - n - 1, fmt, copy);
        va_end(copy);
        n = k < 0 ? n : n + (size_t)k < sizeof line - 1 ? n + (size_t)k : sizeof line - 2;
        line[n++] = '\n';
        (void)!write(log_fd, line, n);
    }
    if (log_to_syslog) {
        vsyslog(priority, fmt, ap);
    } else {
        fputs("imgfs mount: ", stderr);
        vfprintf(stderr, fmt, ap);
        fputc('\n', stderr);
    }
}

static void mount_log(int priority, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void mount_log(int priority, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    mount_vlog(priority, fmt, ap);
    va_end(ap);
}

/* libfuse reports mount failures ("fuse: mountpoint is not empty") through its log; keep the last
 * message so the caller gets it in its error, and pass the rest on. */
static void fuse_log_capture(enum fuse_log_level level, const char *fmt, va_list ap)
{
    va_list copy;
    va_copy(copy, ap);
    pthread_mutex_lock(&last_log_lock);
    vsnprintf(last_log, sizeof last_log, fmt, copy);
    size_t n = strlen(last_log);
    while (n && last_log[n - 1] == '\n')
        last_log[--n] = 0;
    pthread_mutex_unlock(&last_log_lock);
    va_end(copy);
    if (!log_capture_only && (level <= FUSE_LOG_NOTICE || !log_to_syslog))
        mount_vlog(level <= FUSE_LOG_ERR ? LOG_ERR : LOG_INFO, fmt, ap);
}

/* The path of an inode, for log messages only: O(size of the view), used when a chunk is bad. */
static void view_path_of(const struct view *v, uint64_t ino, char *out, size_t size)
{
    const char *parts[64];
    size_t lens[64], n = 0;
    for (uint64_t cur = ino; cur != 1 && n < 64;) {
        uint64_t parent = 0;
        const struct view_inode *in = view_inode(v, cur);
        if (in && S_ISDIR(in->mode)) {
            parent = in->parent;
        } else {
            /* a file has no parent link: find the directory whose entries include it */
            for (uint64_t d = 1; d <= v->hdr->n_inodes && !parent; d++) {
                const struct view_inode *di = view_inode(v, d);
                for (uint32_t k = 0; di && S_ISDIR(di->mode) && k < di->count; k++) {
                    const struct view_dirent *e = view_dirent_at(v, d, k);
                    if (e && e->ino == cur) {
                        parent = d;
                        break;
                    }
                }
            }
        }
        const struct view_inode *pi = view_inode(v, parent);
        const struct view_dirent *found = NULL;
        for (uint32_t k = 0; pi && S_ISDIR(pi->mode) && k < pi->count && !found; k++) {
            const struct view_dirent *e = view_dirent_at(v, parent, k);
            if (e && e->ino == cur)
                found = e;
        }
        if (!found || parent == cur)
            break;
        parts[n] = view_string(v, found->name_off);
        lens[n++] = found->name_len;
        cur = parent;
    }
    size_t used = 0;
    out[0] = 0;
    for (size_t i = n; i-- > 0 && used + 1 < size;) {
        int w = snprintf(out + used, size - used, "/%.*s", (int)lens[i], parts[i]);
        if (w < 0 || (size_t)w >= size - used)
            break; /* truncated: enough for a log line */
        used += (size_t)w;
    }
    if (!n)
        snprintf(out, size, ino == 1 ? "/" : "?");
}

static struct mount_ctx *ctx_of(fuse_req_t req)
{
    return fuse_req_userdata(req);
}

static uint64_t inode_blocks(const struct view *v, const struct view_inode *in)
{
    if (!S_ISREG(in->mode))
        return 0;
    uint64_t bytes = 0;
    for (uint32_t i = 0; i < in->count; i++)
        bytes += v->extents[in->first + i].length;
    return (bytes + 511) / 512;
}

static void inode_stat(const struct view *v, uint64_t ino, const struct view_inode *in,
                       struct stat *st)
{
    memset(st, 0, sizeof *st);
    st->st_ino = ino;
    st->st_mode = in->mode;
    st->st_nlink = in->nlink ? in->nlink : 1;
    st->st_uid = in->uid;
    st->st_gid = in->gid;
    st->st_rdev = makedev(in->rdev_major, in->rdev_minor);
    /* a directory's `size` in the view counts entries; report what ext4 does for a small one */
    st->st_size = S_ISDIR(in->mode) ? 4096 : (off_t)in->size;
    st->st_blocks = S_ISDIR(in->mode) ? 8 : (blkcnt_t)inode_blocks(v, in);
    st->st_blksize = 4096;
    st->st_mtim.tv_sec = in->mtime_sec;
    st->st_mtim.tv_nsec = in->mtime_nsec < 1000000000u ? in->mtime_nsec : 0;
    /* there is no other time in an image: ctime and atime follow mtime, as after `tar -x` */
    st->st_atim = st->st_mtim;
    st->st_ctim = st->st_mtim;
}

static void fill_entry(const struct view *v, uint64_t ino, const struct view_inode *in,
                       struct fuse_entry_param *e)
{
    memset(e, 0, sizeof *e);
    e->ino = ino;
    e->generation = 1;
    e->entry_timeout = CACHE_FOREVER;
    e->attr_timeout = CACHE_FOREVER;
    inode_stat(v, ino, in, &e->attr);
}

static char *mount_type_at(const char *dir, char **dev, struct imgfs_err *err);

/* The kernel caps FUSE readahead at 128 KiB (the default bdi window it offers in INIT, and sets
 * again when INIT is answered), whatever max_pages allows; reading large binaries at 1 MiB a
 * request takes an eighth of the round trips (a partly remote image: none, see below). The window
 * belongs to the mount's bdi and is set through sysfs (root only: best effort), once INIT is done:
 * on the first lookup or getattr, one of which comes before any file is opened (open files keep the
 * window they started with). The device comes from mountinfo: stat'ing our own mount from a request
 * handler could deadlock. */
static void set_readahead(struct mount_ctx *m)
{
    if (atomic_load_explicit(&m->readahead_set, memory_order_relaxed) ||
        atomic_exchange(&m->readahead_set, true))
        return;
    /* a lazily pulled image: every byte read ahead is a chunk fetched. No readahead at all: a
     * page fault of a mapped binary then asks for its page, not 128 KiB around it, and a read()
     * for what it reads (go version fetched 11.5 MB of chunks with the kernel's 128 KiB, 10.5 MB
     * with none; a go build 5.3% of the image instead of 4.1%, in the same time: docs/lazy.md) */
    const char *ra = m->remote ? "0" : "1024";
    const char *dir = m->dir;
    struct imgfs_err ignored;
    cleanup_free char *dev = NULL;
    cleanup_free char *type = mount_type_at(dir, &dev, &ignored);
    if (!type || strcmp(type, "fuse.imgfs") || !dev)
        return;
    cleanup_free char *path = xasprintf("/sys/class/bdi/%s/read_ahead_kb", dev);
    cleanup_close int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd >= 0 && write_full(fd, ra, strlen(ra)) < 0) {
        /* keep the kernel's default */
    }
}

/* ---- metadata ---- */

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
    struct mount_ctx *m = userdata;
    unsigned want = FUSE_CAP_READDIRPLUS | FUSE_CAP_CACHE_SYMLINKS | FUSE_CAP_PARALLEL_DIROPS |
                    FUSE_CAP_ASYNC_READ | FUSE_CAP_EXPORT_SUPPORT;
    conn->want |= conn->capable & want;
    /* readdirplus on every readdir: `ls -l` costs one round trip, and the result is cached */
    conn->want &= ~(unsigned)FUSE_CAP_READDIRPLUS_AUTO;
    /* nothing changes behind the kernel's back: no need to re-check pages on attribute changes */
    conn->want &= ~(unsigned)FUSE_CAP_AUTO_INVAL_DATA;
    m->no_open = conn->capable & FUSE_CAP_NO_OPEN_SUPPORT;
    m->no_opendir = conn->capable & FUSE_CAP_NO_OPENDIR_SUPPORT;
    conn->max_write = MAX_READ; /* libfuse turns this into max_pages, which bounds reads too */
    conn->max_read = 0;         /* no limit beyond max_pages */
    conn->time_gran = 1;
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    struct mount_ctx *m = ctx_of(req);
    set_readahead(m);
    const struct view_inode *dir = view_inode(&m->view, parent);
    if (!dir) {
        fuse_reply_err(req, ESTALE);
        return;
    }
    if (!S_ISDIR(dir->mode)) {
        fuse_reply_err(req, ENOTDIR);
        return;
    }
    uint64_t ino;
    /* with FUSE_CAP_EXPORT_SUPPORT the kernel may ask for "." and ".." (NFS export, overlayfs) */
    if (!strcmp(name, "."))
        ino = parent;
    else if (!strcmp(name, ".."))
        ino = dir->parent ? dir->parent : 1;
    else
        ino = view_lookup(&m->view, parent, name, strlen(name));
    struct fuse_entry_param e;
    const struct view_inode *in = ino ? view_inode(&m->view, ino) : NULL;
    if (!in) {
        /* a negative entry with a timeout: the kernel remembers that the name does not exist */
        memset(&e, 0, sizeof e);
        e.entry_timeout = CACHE_FOREVER;
        fuse_reply_entry(req, &e);
        return;
    }
    fill_entry(&m->view, ino, in, &e);
    fuse_reply_entry(req, &e);
}

/* No per-inode state: every inode lives as long as the view. */
static void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
    (void)ino, (void)nlookup;
    fuse_reply_none(req);
}

static void op_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
    (void)count, (void)forgets;
    fuse_reply_none(req);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    (void)fi;
    struct mount_ctx *m = ctx_of(req);
    set_readahead(m);
    const struct view_inode *in = view_inode(&m->view, ino);
    if (!in) {
        fuse_reply_err(req, ESTALE);
        return;
    }
    struct stat st;
    inode_stat(&m->view, ino, in, &st);
    fuse_reply_attr(req, &st, CACHE_FOREVER);
}

static void op_readlink(fuse_req_t req, fuse_ino_t ino)
{
    struct mount_ctx *m = ctx_of(req);
    const struct view_inode *in = view_inode(&m->view, ino);
    if (!in) {
        fuse_reply_err(req, ESTALE);
        return;
    }
    if (!S_ISLNK(in->mode)) {
        fuse_reply_err(req, EINVAL);
        return;
    }
    if (in->size >= PATH_MAX) {
        fuse_reply_err(req, ENAMETOOLONG);
        return;
    }
    /* the pool's strings are length-delimited; libfuse wants a C string */
    char target[PATH_MAX];
    memcpy(target, view_string(&m->view, in->first), in->size);
    target[in->size] = 0;
    fuse_reply_readlink(req, target);
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    struct mount_ctx *m = ctx_of(req);
    const struct view_inode *in = view_inode(&m->view, ino);
    if (!in) {
        fuse_reply_err(req, ESTALE);
        return;
    }
    if ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC)) {
        fuse_reply_err(req, EROFS);
        return;
    }
    if (S_ISDIR(in->mode)) {
        fuse_reply_err(req, EISDIR);
        return;
    }
    if (m->no_open) {
        /* ENOSYS tells the kernel to stop sending opens and keep pages across them */
        fuse_reply_err(req, ENOSYS);
        return;
    }
    fi->keep_cache = 1;
    fi->noflush = 1;
    fuse_reply_open(req, fi);
}

static void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    struct mount_ctx *m = ctx_of(req);
    const struct view_inode *in = view_inode(&m->view, ino);
    if (!in) {
        fuse_reply_err(req, ESTALE);
        return;
    }
    if (!S_ISDIR(in->mode)) {
        fuse_reply_err(req, ENOTDIR);
        return;
    }
    if (m->no_opendir) {
        /* ENOSYS here means: never open directories again, and cache their entries */
        fuse_reply_err(req, ENOSYS);
        return;
    }
    fi->keep_cache = 1;
    fi->cache_readdir = 1;
    fuse_reply_open(req, fi);
}

static void op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    (void)ino, (void)fi;
    fuse_reply_err(req, 0);
}

/* Offsets: 0 is the start, entry k of the listing (".", "..", then the view's entries) has k + 1
 * as the offset of the entry after it. */
static void do_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, bool plus)
{
    struct mount_ctx *m = ctx_of(req);
    const struct view *v = &m->view;
    const struct view_inode *dir = view_inode(v, ino);
    if (!dir) {
        fuse_reply_err(req, ESTALE);
        return;
    }
    if (!S_ISDIR(dir->mode)) {
        fuse_reply_err(req, ENOTDIR);
        return;
    }
    if (off < 0) {
        fuse_reply_err(req, EINVAL);
        return;
    }
    cleanup_free char *buf = xmalloc(size ? size : 1);
    size_t used = 0;
    uint64_t total = (uint64_t)dir->count + 2;
    for (uint64_t k = (uint64_t)off; k < total; k++) {
        char name[NAME_MAX + 1];
        uint64_t child;
        if (k == 0) {
            strcpy(name, ".");
            child = ino;
        } else if (k == 1) {
            strcpy(name, "..");
            child = dir->parent ? dir->parent : 1;
        } else {
            const struct view_dirent *d = view_dirent_at(v, ino, (uint32_t)(k - 2));
            if (!d)
                break;
            /* longer names cannot be looked up through the kernel anyway */
            if (d->name_len == 0 || d->name_len > NAME_MAX)
                continue;
            memcpy(name, view_string(v, d->name_off), d->name_len);
            name[d->name_len] = 0;
            child = d->ino;
        }
        const struct view_inode *in = view_inode(v, child);
        if (!in)
            continue;
        size_t n;
        if (plus) {
            struct fuse_entry_param e;
            fill_entry(v, child, in, &e);
            n = fuse_add_direntry_plus(req, buf + used, size - used, name, &e, (off_t)(k + 1));
        } else {
            struct stat st = {.st_ino = child, .st_mode = in->mode};
            n = fuse_add_direntry(req, buf + used, size - used, name, &st, (off_t)(k + 1));
        }
        if (n > size - used)
            break;
        used += n;
    }
    fuse_reply_buf(req, buf, used);
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                       struct fuse_file_info *fi)
{
    (void)fi;
    do_readdir(req, ino, size, off, false);
}

static void op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                           struct fuse_file_info *fi)
{
    (void)fi;
    do_readdir(req, ino, size, off, true);
}

static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
    (void)ino;
    struct mount_ctx *m = ctx_of(req);
    struct statvfs s = {
        .f_bsize = 4096,
        .f_frsize = 4096,
        .f_blocks = (m->view.hdr->total_size + 4095) / 4096,
        .f_files = m->view.hdr->n_inodes,
        .f_namemax = NAME_MAX,
        .f_flag = ST_RDONLY,
    };
    fuse_reply_statfs(req, &s);
}

static const struct view_xattr *xattr_find(const struct view *v, const struct view_inode *in,
                                           const char *name)
{
    size_t len = strlen(name);
    for (uint32_t i = 0; i < in->xattr_count; i++) {
        const struct view_xattr *x = &v->xattrs[in->xattr_first + i];
        if (x->name_len == len && !memcmp(view_string(v, x->name_off), name, len))
            return x;
    }
    return NULL;
}

static void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
    struct mount_ctx *m = ctx_of(req);
    const struct view_inode *in = view_inode(&m->view, ino);
    if (!in) {
        fuse_reply_err(req, ESTALE);
        return;
    }
    if (m->view.hdr->n_xattrs == 0) {
        /* An image without xattrs: ENOSYS makes the kernel stop asking (it answers EOPNOTSUPP
         * itself), which saves a round trip per exec (security.capability) and per `ls -l` entry
         * (ACLs). */
        fuse_reply_err(req, ENOSYS);
        return;
    }
    const struct view_xattr *x = xattr_find(&m->view, in, name);
    if (!x)
        fuse_reply_err(req, ENODATA);
    else if (size == 0)
        fuse_reply_xattr(req, x->value_len);
    else if (size < x->value_len)
        fuse_reply_err(req, ERANGE);
    else
        fuse_reply_buf(req, view_string(&m->view, x->value_off), x->value_len);
}

static void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
    struct mount_ctx *m = ctx_of(req);
    const struct view *v = &m->view;
    const struct view_inode *in = view_inode(v, ino);
    if (!in) {
        fuse_reply_err(req, ESTALE);
        return;
    }
    size_t total = 0;
    for (uint32_t i = 0; i < in->xattr_count; i++)
        total += v->xattrs[in->xattr_first + i].name_len + 1;
    if (size == 0) {
        fuse_reply_xattr(req, total);
        return;
    }
    if (size < total) {
        fuse_reply_err(req, ERANGE);
        return;
    }
    cleanup_free char *list = xmalloc(total ? total : 1);
    size_t used = 0;
    for (uint32_t i = 0; i < in->xattr_count; i++) {
        const struct view_xattr *x = &v->xattrs[in->xattr_first + i];
        memcpy(list + used, view_string(v, x->name_off), x->name_len);
        used += x->name_len;
        list[used++] = 0;
    }
    fuse_reply_buf(req, list, used);
}

/* ---- reading file content ---- */

struct read_plan {
    struct iovec stack[64];
    struct iovec *iov;
    size_t n, cap;
};

static void plan_add(struct read_plan *p, const void *data, size_t len)
{
    if (!len)
        return;
    if (p->n == p->cap) {
        p->cap *= 2;
        if (p->iov == p->stack) {
            p->iov = xmalloc(p->cap * sizeof *p->iov);
            memcpy(p->iov, p->stack, sizeof p->stack);
        } else {
            p->iov = xrealloc(p->iov, p->cap * sizeof *p->iov);
        }
    }
    p->iov[p->n++] = (struct iovec){.iov_base = (void *)data, .iov_len = len};
}

static void plan_add_zeros(struct read_plan *p, uint64_t len)
{
    while (len) {
        size_t n = len < sizeof zero_page ? (size_t)len : sizeof zero_page;
        plan_add(p, zero_page, n);
        len -= n;
    }
}

/* Log a bad chunk once per daemon; reads of it keep failing with EIO. */
static void report_bad_chunk(struct mount_ctx *m, uint64_t ino, const struct digest *d,
                             const struct imgfs_err *err)
{
    if (!digest_set_add(&m->reported, d))
        return;
    char path[1024], hex[DIGEST_STR_SIZE];
    view_path_of(&m->view, ino, path, sizeof path);
    digest_str(d, hex);
    /* the store's message usually names the chunk already */
    bool named = strstr(err->msg, hex) != NULL;
    mount_log(LOG_ERR, "%s: reading `%s` (inode %llu): %s%s%s%s; reads of it fail with EIO", m->ref,
              path, (unsigned long long)ino, named ? "" : "chunk ", named ? "" : hex,
              named ? "" : ": ", err->msg);
}

static bool chunk_checked(struct mount_ctx *m, const struct digest *d)
{
    return m->checked ? verified_contains(m->checked, d) : digest_set_contains(&m->verified, d);
}

static void chunk_mark_checked(struct mount_ctx *m, const struct digest *d)
{
    if (m->checked)
        verified_add(m->checked, d);
    else
        digest_set_add(&m->verified, d);
}

/* The first extent of `in` that ends after `off` (binary search: extents are sorted by offset). */
static uint32_t extent_at(const struct view *v, const struct view_inode *in, uint64_t off)
{
    uint32_t lo = 0, hi = in->count;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        const struct view_extent *e = &v->extents[in->first + mid];
        if (e->offset + e->length <= off)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* A file's first READ: ask the kernel to read the map pages of the rest of its chunks now, in
 * large asynchronous requests, instead of one synchronous 128 KiB read-around per page fault while
 * later READs copy them out. A file's chunks were stored in file order by its import, so they are
 * mostly contiguous in data.mdb: ranges closer than PREFETCH_GAP are merged. Best effort (a chunk
 * the store does not have is left to the READ that needs it). */
#define PREFETCH_GAP (256u << 10)

static bool first_read(struct mount_ctx *m, uint64_t ino)
{
    uint64_t bit = 1ull << (ino % 64);
    if (atomic_load_explicit(&m->prefetched[ino / 64], memory_order_relaxed) & bit)
        return false;
    return !(atomic_fetch_or(&m->prefetched[ino / 64], bit) & bit);
}

static void prefetch_range(uintptr_t start, uintptr_t end)
{
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    start &= ~(page - 1);
    if (end > start && madvise((void *)start, end - start, MADV_WILLNEED) < 0) {
        /* only a hint */
    }
}

static void prefetch_file(struct store_read *r, const struct view *v, const struct view_inode *in,
                          uint64_t from)
{
    uintptr_t run_start = 0, run_end = 0;
    for (uint32_t i = extent_at(v, in, from); i < in->count; i++) {
        const struct view_extent *e = &v->extents[in->first + i];
        const void *data;
        size_t len;
        struct imgfs_err ignored;
        if (store_get(r, STORE_CHUNK, &e->chunk, &data, &len, &ignored) < 0)
            continue;
        uintptr_t s = (uintptr_t)data, end = s + len;
        if (run_end && s >= run_start && s <= run_end + PREFETCH_GAP) {
            if (end > run_end)
                run_end = end;
            continue;
        }
        prefetch_range(run_start, run_end);
        run_start = s;
        run_end = end;
    }
    prefetch_range(run_start, run_end);
}

/* A lazily pulled image: fetch the absent chunks of [pos, end) together (one request per run of
 * adjacent ones) before the read's snapshot begins, so the reply's pointers all come from it. */
static int ensure_chunks(struct mount_ctx *m, uint64_t ino, const struct view_inode *in,
                         uint64_t pos, uint64_t end, struct imgfs_err *err)
{
    (void)ino;
    const struct view *v = &m->view;
    struct digest stack[64], *list = stack;
    size_t n = 0, cap = 64;
    for (uint32_t i = extent_at(v, in, pos); i < in->count; i++) {
        const struct view_extent *e = &v->extents[in->first + i];
        if (e->offset >= end)
            break;
        if (n == cap) {
            cap *= 2;
            if (list == stack) {
                list = xmalloc(cap * sizeof *list);
                memcpy(list, stack, sizeof stack);
            } else {
                list = xrealloc(list, cap * sizeof *list);
            }
        }
        list[n++] = e->chunk;
    }
    int rc = store_chunks_ensure(m->store, list, n, err);
    if (list != stack)
        free(list);
    return rc;
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                    struct fuse_file_info *fi)
{
    (void)fi;
    struct mount_ctx *m = ctx_of(req);
    const struct view *v = &m->view;
    const struct view_inode *in = view_inode(v, ino);
    if (!in) {
        fuse_reply_err(req, ESTALE);
        return;
    }
    if (!S_ISREG(in->mode)) {
        fuse_reply_err(req, S_ISDIR(in->mode) ? EISDIR : EINVAL);
        return;
    }
    if (off < 0) {
        fuse_reply_err(req, EINVAL);
        return;
    }
    uint64_t pos = (uint64_t)off;
    if (pos >= in->size || size == 0) {
        fuse_reply_buf(req, NULL, 0);
        return;
    }
    uint64_t end = in->size - pos < size ? in->size : pos + size;

    struct imgfs_err err = {0};
    if (store_has_fetcher(m->store) && ensure_chunks(m, ino, in, pos, end, &err) < 0) {
        char path[1024];
        view_path_of(v, ino, path, sizeof path);
        mount_log(LOG_ERR, "%s: reading `%s`: %s", m->ref, path, err.msg);
        fuse_reply_err(req, EIO);
        return;
    }
    struct store_read *r;
    if (store_read_begin(m->store, &r, &err) < 0) {
        mount_log(LOG_ERR, "%s: reading inode %llu: %s", m->ref, (unsigned long long)ino, err.msg);
        fuse_reply_err(req, err.code == ENOMEM ? ENOMEM : EIO);
        return;
    }
    if (m->trace_fd >= 0 && ino / 64 <= v->hdr->n_inodes / 64 &&
        !(atomic_fetch_or(&m->traced[ino / 64], 1ull << (ino % 64)) & (1ull << (ino % 64)))) {
        char path[PATH_MAX + 1];
        view_path_of(v, ino, path, sizeof path - 1);
        size_t n = strlen(path);
        path[n++] = '\n';
        /* one write of a line to an O_APPEND file: lines of concurrent READs do not mix */
        if (write(m->trace_fd, path, n) < 0) {
            /* a trace is best effort */
        }
    }
    /* what this READ needs faults in right below; the rest of a large file is asked for once
     * this READ is answered (asking submits the I/O, which would delay the answer) */
    bool prefetch = in->size > end && first_read(m, ino);
    struct read_plan p = {.n = 0, .cap = 64};
    p.iov = p.stack;
    int rc = 0;
    for (uint32_t i = extent_at(v, in, pos); i < in->count && pos < end; i++) {
        const struct view_extent *e = &v->extents[in->first + i];
        if (e->offset >= end)
            break;
        if (e->offset + e->length <= pos)
            continue; /* overlaps an earlier extent: a bad view, but not worth failing */
        if (e->offset > pos) {
            plan_add_zeros(&p, e->offset - pos); /* a hole */
            pos = e->offset;
        }
        bool verify = !chunk_checked(m, &e->chunk);
        const void *data;
        size_t len;
        if (store_chunk_get(r, &e->chunk, verify, &data, &len, &err) < 0) {
            report_bad_chunk(m, ino, &e->chunk, &err);
            rc = EIO;
            break;
        }
        if (len != e->length) {
            err_set(&err, EIO, "the chunk has %zu bytes, the file's extent %u", len, e->length);
            report_bad_chunk(m, ino, &e->chunk, &err);
            rc = EIO;
            break;
        }
        if (verify)
            chunk_mark_checked(m, &e->chunk);
        uint64_t stop = e->offset + e->length < end ? e->offset + e->length : end;
        plan_add(&p, (const char *)data + (pos - e->offset), stop - pos);
        pos = stop;
    }
    if (!rc) {
        plan_add_zeros(&p, end - pos); /* past the last extent: a hole up to the size */
        if (p.n <= MAX_IOV) {
            fuse_reply_iov(req, p.iov, (int)p.n);
        } else {
            /* a file of many tiny extents: one copy beats failing the read */
            cleanup_free char *flat = xmalloc(end - (uint64_t)off);
            size_t used = 0;
            for (size_t k = 0; k < p.n; k++) {
                memcpy(flat + used, p.iov[k].iov_base, p.iov[k].iov_len);
                used += p.iov[k].iov_len;
            }
            fuse_reply_buf(req, flat, used);
        }
    } else {
        fuse_reply_err(req, rc);
    }
    if (prefetch && !rc)
        prefetch_file(r, v, in, end);
    /* only now: the reply pointed into the map */
    store_read_end(r);
    if (p.iov != p.stack)
        free(p.iov);
}

/* ---- writes: a read-only filesystem (the `ro` mount flag already stops most of them) ---- */

static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
                       struct fuse_file_info *fi)
{
    (void)ino, (void)attr, (void)to_set, (void)fi;
    fuse_reply_err(req, EROFS);
}
static void op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
    (void)parent, (void)name, (void)mode, (void)rdev;
    fuse_reply_err(req, EROFS);
}
static void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
    (void)parent, (void)name, (void)mode;
    fuse_reply_err(req, EROFS);
}
static void op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    (void)parent, (void)name;
    fuse_reply_err(req, EROFS);
}
static void op_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
    (void)link, (void)parent, (void)name;
    fuse_reply_err(req, EROFS);
}
static void op_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
                      const char *newname, unsigned int flags)
{
    (void)parent, (void)name, (void)newparent, (void)newname, (void)flags;
    fuse_reply_err(req, EROFS);
}
static void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
    (void)ino, (void)newparent, (void)newname;
    fuse_reply_err(req, EROFS);
}
static void op_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
                     struct fuse_file_info *fi)
{
    (void)ino, (void)buf, (void)size, (void)off, (void)fi;
    fuse_reply_err(req, EROFS);
}
static void op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
                      struct fuse_file_info *fi)
{
    (void)parent, (void)name, (void)mode, (void)fi;
    fuse_reply_err(req, EROFS);
}
static void op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
                        size_t size, int flags)
{
    (void)ino, (void)name, (void)value, (void)size, (void)flags;
    fuse_reply_err(req, EROFS);
}
static void op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
    (void)ino, (void)name;
    fuse_reply_err(req, EROFS);
}

static const struct fuse_lowlevel_ops mount_ops = {
    .init = op_init,
    .lookup = op_lookup,
    .forget = op_forget,
    .forget_multi = op_forget_multi,
    .getattr = op_getattr,
    .readlink = op_readlink,
    .open = op_open,
    .read = op_read,
    .opendir = op_opendir,
    .readdir = op_readdir,
    .readdirplus = op_readdirplus,
    .releasedir = op_releasedir,
    .statfs = op_statfs,
    .getxattr = op_getxattr,
    .listxattr = op_listxattr,
    .setattr = op_setattr,
    .mknod = op_mknod,
    .mkdir = op_mkdir,
    .unlink = op_unlink,
    .rmdir = op_unlink,
    .symlink = op_symlink,
    .rename = op_rename,
    .link = op_link,
    .write = op_write,
    .create = op_create,
    .setxattr = op_setxattr,
    .removexattr = op_removexattr,
};

/* ---- lifecycle ---- */

static void ctx_free(struct mount_ctx *m)
{
    if (!m)
        return;
    digest_set_free(&m->verified);
    digest_set_free(&m->reported);
    free(m->prefetched);
    free(m->traced);
    if (m->trace_fd >= 0)
        close(m->trace_fd);
    verified_close(m->checked);
    lazy_detach(m->lazy);
    if (m->store)
        store_close(m->store);
    free(m->view_blob);
    free(m);
}

/* Open the store, find the image and copy its view into our memory. */
static int ctx_load(const char *root, const char *ref, struct mount_ctx **out,
                    struct digest *manifest, struct imgfs_err *err)
{
    struct mount_ctx *m = xcalloc(1, sizeof *m);
    m->trace_fd = -1;
    digest_set_init(&m->verified);
    digest_set_init(&m->reported);
    snprintf(m->ref, sizeof m->ref, "%s", ref);
    if (store_open(root, STORE_READONLY, &m->store, err) < 0)
        goto fail;
    struct store_read *r;
    if (store_read_begin(m->store, &r, err) < 0)
        goto fail;
    const void *blob;
    size_t len;
    if (image_resolve(r, ref, manifest, err) < 0 ||
        store_get(r, STORE_VIEW, manifest, &blob, &len, err) < 0) {
        store_read_end(r);
        goto fail;
    }
    int rc = view_open_copy(blob, len, &m->view_blob, &m->view, err);
    store_read_end(r);
    if (rc < 0) {
        err_ctx(err, "image `%s`", ref);
        goto fail;
    }
    m->prefetched = xcalloc(m->view.hdr->n_inodes / 64 + 1, sizeof *m->prefetched);
    m->traced = xcalloc(m->view.hdr->n_inodes / 64 + 1, sizeof *m->traced);
    /* shared with the daemons a keeper forks (MAP_SHARED) and with every later mount */
    struct imgfs_err ignored;
    if (verified_open(root, &m->checked, &ignored) < 0)
        m->checked = NULL; /* a store we cannot write: this daemon's own set */
    *out = m;
    return 0;
fail:
    ctx_free(m);
    return -1;
}

static int check_mount_dir(const char *dir, struct imgfs_err *err)
{
    struct statx stx;
    if (statx(AT_FDCWD, dir, 0, STATX_TYPE, &stx) < 0)
        return err_sys(err, errno, "mount point `%s`", dir);
    if (!S_ISDIR(stx.stx_mode))
        return err_set(err, ENOTDIR, "mount point `%s` is not a directory", dir);
    if ((stx.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT) &&
        (stx.stx_attributes & STATX_ATTR_MOUNT_ROOT))
        return err_set(err, EBUSY, "`%s` is already a mount point (imgfs umount it first)", dir);
    return 0;
}

static char *fuse_opts_string(const struct mount_ctx *m, const struct mount_options *o)
{
    /* fsname shows up in /proc/mounts and df; commas would split the option string */
    char name[sizeof m->ref];
    snprintf(name, sizeof name, "%s", m->ref);
    for (char *c = name; *c; c++)
        if (*c == ',' || *c == '\\' || *c == ' ' || *c == '\t' || *c == '\n')
            *c = '_';
    /* an image is untrusted: its setuid binaries count only where the caller asks (the runner's
     * shared lower, in a 0700 directory: containers honour setuid bits, as Docker's do); devices
     * never do: a container gets its own /dev (docs/mount.md, "Mount options") */
    return xasprintf("ro,default_permissions,nodev%s%s,fsname=imgfs:%s,subtype=imgfs",
                     o->suid && geteuid() == 0 ? ",suid" : ",nosuid",
                     o->allow_other ? ",allow_other" : "", name);
}

/* Tell the waiting parent how the mount went: a whole struct imgfs_err, code 0 when it is live. */
static void notify_parent(int *fd, const struct imgfs_err *err)
{
    if (*fd < 0)
        return;
    struct imgfs_err ok = {0};
    if (write_full(*fd, err ? err : &ok, sizeof ok) < 0) {
        /* the parent is gone; nobody to tell */
    }
    close(*fd);
    *fd = -1;
}

static void detach_stdio(void)
{
    int fd = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return;
    dup2(fd, STDIN_FILENO);
    dup2(fd, STDOUT_FILENO);
    dup2(fd, STDERR_FILENO);
    if (fd > STDERR_FILENO)
        close(fd);
}

/* ---- the keeper and the daemon ----
 *
 * A daemonized mount is two processes. The keeper mounts, answers the kernel's INIT and then only
 * holds the /dev/fuse connection and forks the daemon, which serves every other request. When the
 * daemon dies, however it dies, the keeper forks a new one: it inherits the connection and the
 * session as INIT left it (libfuse keeps that state in memory; a fork copies it, a fresh process
 * could not rebuild it), opens the store again and serves the same connection. Inode numbers come
 * from the view, which never changes, so the kernel's dentries, inodes and pages stay valid.
 *
 * Requests the dead daemon had read but not answered sit in the kernel's processing queue of the
 * device file. FUSE_NOTIFY_RESEND (Linux 6.9, protocol 7.40) puts them back in the input queue, so
 * the new daemon answers them and the reader never notices. On an older kernel the notification
 * fails with EINVAL; the daemon then reads through cloned device files (FUSE_DEV_IOC_CLONE), which
 * die with it, and the kernel ends what they held with ECONNABORTED: one failed system call per
 * lost request, never a hang. Every request here is idempotent, so answering one twice is fine. */

/* linux/fuse.h: enum fuse_notify_code (7.40) */
#define NOTIFY_RESEND 7
/* A daemon that dies within QUICK_DEATH seconds of its start, QUICK_DEATHS_MAX times in a row, is
 * taken for one that a request kills every time (the resend would replay it forever): the keeper
 * then gives up and the mount dies for good. Restarts after quick deaths back off (50 ms doubling,
 * at most 1 s), so giving up takes a few seconds. */
#define QUICK_DEATH      1.0
#define QUICK_DEATHS_MAX 10

static bool conn_alive(int fd)
{
    struct pollfd p = {.fd = fd, .events = 0};
    int n;
    while ((n = poll(&p, 1, 0)) < 0 && errno == EINTR)
        ;
    return !(n > 0 && (p.revents & (POLLERR | POLLHUP | POLLNVAL)));
}

static bool conn_resend(int fd)
{
    struct fuse_out_header h = {.len = sizeof h, .error = NOTIFY_RESEND, .unique = 0};
    ssize_t n;
    while ((n = write(fd, &h, sizeof h)) < 0 && errno == EINTR)
        ;
    return n == (ssize_t)sizeof h;
}

static double monotonic_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void title_of(const struct mount_ctx *m, const char *role, char *out, size_t size)
{
    snprintf(out, size, "%s %s %s", role, m->dir, m->ref);
}

static void loop_serve(struct mount_ctx *m, struct fuse_session *se, const struct mount_options *o,
                       bool clone_fd)
{
    struct fuse_loop_config *loop = fuse_loop_cfg_create();
    if (o->threads > 0) {
        fuse_loop_cfg_set_max_threads(loop, (unsigned)o->threads);
        fuse_loop_cfg_set_idle_threads(loop, (unsigned)o->threads);
    }
    fuse_loop_cfg_set_clone_fd(loop, clone_fd);
    int rc = fuse_session_loop_mt(se, loop);
    if (rc < 0 && rc != -EINTR) {
        /* the mount is gone or broken; report it where the daemon's logs go */
        mount_log(LOG_ERR, "%s: serving `%s`: %s", m->ref, m->dir, strerror(-rc));
    }
    fuse_loop_cfg_destroy(loop);
}

/* The serving daemon's store: writable, so that a lazily pulled image's fetched chunks can be
 * stored (read-only when the store cannot be written: absent chunks then fail with EIO), with the
 * lazy fetcher installed and the background prefetch started (fs/lazy.h). */
static int daemon_open_store(struct mount_ctx *m, const struct mount_options *o,
                             struct imgfs_err *err)
{
    if (store_open(m->root, 0, &m->store, err) < 0 &&
        store_open(m->root, STORE_READONLY, &m->store, err) < 0)
        return -1;
    if (o->trace_path && m->trace_fd < 0) {
        m->trace_fd = open(o->trace_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
        if (m->trace_fd < 0)
            return err_sys(err, errno, "opening the trace file `%s`", o->trace_path);
    }
    /* only an image with chunks still in a registry needs the fetcher: reads of a local image
     * stay exactly as they were (no presence pass) */
    struct lazy_usage u;
    struct imgfs_err ignored;
    m->remote = store_has_remote(m->store) && lazy_usage(m->store, &m->view, &u, &ignored) == 0 &&
                u.remote_chunks > 0;
    if (!m->remote)
        return 0;
    struct lazy_options lo = {.fetch_timeout_ms = o->fetch_timeout_ms, .image = m->ref};
    if (lazy_attach(m->store, &lo, &m->lazy, err) < 0)
        return -1;
    if (lazy_readahead_index(m->lazy, &m->view, err) < 0)
        mount_log(LOG_WARNING, "%s: no readahead: %s", m->ref, err->msg);
    if (lazy_prefetch_start(m->lazy, &m->view, o->prefetch, err) < 0)
        mount_log(LOG_WARNING, "%s: %s", m->ref, err->msg);
    return 0;
}

/* The daemon: a child of the keeper, on the keeper's connection. Never returns. */
static __attribute__((noreturn)) void daemon_main(struct mount_ctx *m, struct fuse_session *se,
                                                  const struct mount_options *o,
                                                  const sigset_t *old_mask)
{
    /* any signal ends the daemon; the keeper decides what happens next */
    signal(SIGTERM, SIG_DFL);
    signal(SIGINT, SIG_DFL);
    signal(SIGHUP, SIG_DFL);
    signal(SIGCHLD, SIG_DFL);
    /* nothing blocked either: a mask the mounting process had (inherited through fork and exec)
     * would make the daemon deaf to the signals meant to end it */
    (void)old_mask;
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    char title[PATH_MAX];
    title_of(m, "imgfs-mountd", title, sizeof title);
    proc_set_title(title);
    struct imgfs_err err = {0};
    if (daemon_open_store(m, o, &err) < 0) {
        mount_log(LOG_ERR, "%s: the daemon cannot open the store: %s", m->ref, err.msg);
        _exit(1);
    }
    /* IMGFS_MOUNT_NO_RESEND=1: behave as on a kernel without FUSE_NOTIFY_RESEND (tests of the
     * fallback run on kernels that have it) */
    const char *no_resend = getenv("IMGFS_MOUNT_NO_RESEND");
    bool resend = !(no_resend && !strcmp(no_resend, "1")) && conn_resend(fuse_session_fd(se));
    loop_serve(m, se, o, !resend);
    /* the connection ended (unmounted): the keeper sees it too */
    _exit(0);
}

/* Describe a wait status for the log. */
static void status_str(int st, char *out, size_t size)
{
    if (WIFSIGNALED(st))
        snprintf(out, size, "killed by signal %d (%s)", WTERMSIG(st), strsignal(WTERMSIG(st)));
    else
        snprintf(out, size, "exited with status %d", WEXITSTATUS(st));
}

static char *mount_type_at(const char *dir, char **dev, struct imgfs_err *err);
static bool mount_dev_present(const char *dev);
static bool mount_dev_in_use(const char *dev);
static bool mount_overlay_over(const char *dir);
static bool mount_is_ours_at(const char *dir, const char *dev);

/* The keeper's life after the mount is live: answer INIT, then run daemons until the connection
 * ends (unmounted), a signal asks us to stop (unmount), the mount was detached from outside and
 * no process uses it any more, or daemons keep dying (give up). */
static void keeper_run(struct mount_ctx *m, struct fuse_session *se, const struct mount_options *o,
                       struct store_lease *lease)
{
    char title[PATH_MAX];
    title_of(m, "imgfs-keeper", title, sizeof title);
    proc_set_title(title);
    sigset_t set, old;
    sigemptyset(&set);
    static const int sigs[] = {SIGTERM, SIGINT, SIGHUP, SIGCHLD};
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
        /* an ignored signal (inherited from the caller) would never reach the signalfd */
        signal(sigs[i], SIG_DFL);
        sigaddset(&set, sigs[i]);
    }
    sigprocmask(SIG_BLOCK, &set, &old);
    cleanup_close int sigfd = signalfd(-1, &set, SFD_CLOEXEC);
    if (sigfd < 0) {
        mount_log(LOG_ERR, "%s: keeper: signalfd: %s", m->ref, strerror(errno));
        return;
    }

    /* INIT is the first request on a new connection; after it the session is what every daemon
     * inherits */
    struct fuse_buf buf = {0};
    int r = fuse_session_receive_buf(se, &buf);
    if (r > 0)
        fuse_session_process_buf(se, &buf);
    free(buf.mem);
    if (r <= 0 || fuse_session_exited(se)) {
        mount_log(LOG_ERR, "%s: `%s`: the kernel's INIT failed (%s)", m->ref, m->dir,
                  r < 0 ? strerror(-r) : "no request");
        return;
    }

    /* Our mount, by its device. Once no mount of this namespace has it, it was detached from
     * outside (umount -l, or its directory removed in another namespace). The kernel keeps the
     * connection while anything holds the detached mount: a process working in it (umount -l
     * lets it finish: served on), but also a mere copy of the mount in another mount namespace
     * (one made by `unshare -m` while we were mounted, say) that no process uses, possibly for as
     * long as that namespace lives. So after a detach the keeper serves while some process still
     * has a file, a working directory, a root or a mapping on the mount (looked at again every
     * second) and then ends the connection. Changes of the mount table wake poll() on mountinfo
     * (POLLPRI). */
    struct imgfs_err ignored;
    cleanup_free char *dev = NULL;
    cleanup_free char *type = mount_type_at(m->dir, &dev, &ignored);
    cleanup_close int mounts = open("/proc/self/mountinfo", O_RDONLY | O_CLOEXEC);
    if (!type || strcmp(type, "fuse.imgfs")) {
        free(dev);
        dev = NULL; /* not found (cannot happen: we just mounted it): no detection */
    }

    int fd = fuse_session_fd(se);
    unsigned quick = 0;
    bool unmount = false, detached = false, said_in_use = false;
    for (;;) {
        double started = monotonic_now();
        pid_t pid = fork();
        if (pid < 0) {
            mount_log(LOG_ERR, "%s: keeper: forking the daemon: %s", m->ref, strerror(errno));
            unmount = true;
            break;
        }
        if (pid == 0)
            daemon_main(m, se, o, &old);
        int st = 0;
        bool stop = false;
        while (!stop) {
            struct pollfd p[2] = {{.fd = sigfd, .events = POLLIN},
                                  {.fd = dev && !detached ? mounts : -1, .events = POLLPRI}};
            int n_ready = poll(p, 2, detached ? 1000 : -1);
            if (n_ready < 0) {
                if (errno == EINTR)
                    continue;
                stop = true;
                break;
            }
            if (p[1].revents && !mount_dev_present(dev)) {
                mount_log(LOG_NOTICE, "%s: `%s` was detached from outside", m->ref, m->dir);
                detached = true;
            }
            if (detached && !(p[0].revents & POLLIN) && !mount_dev_in_use(dev) &&
                !mount_overlay_over(m->dir)) {
                mount_log(LOG_NOTICE, "%s: the detached `%s` is no longer used; ending it", m->ref,
                          m->dir);
                stop = true;
                break;
            }
            if (detached && !(p[0].revents & POLLIN) && !said_in_use) {
                /* served on (umount -l of a busy mount): the lease no longer names the device,
                 * so the umount that waits for it (mount_unmount) returns now */
                cleanup_free char *note = xasprintf("%s detached, in use", dev);
                if (store_lease_note(lease, note, &ignored) < 0)
                    mount_log(LOG_WARNING, "%s: %s", m->ref, ignored.msg);
                said_in_use = true;
            }
            if (!(p[0].revents & POLLIN))
                continue;
            struct signalfd_siginfo si;
            ssize_t n = read(sigfd, &si, sizeof si);
            if (n < 0 && (errno == EINTR || errno == EAGAIN))
                continue;
            if (n != (ssize_t)sizeof si || si.ssi_signo != SIGCHLD)
                stop = true;
            else if (waitpid(pid, &st, WNOHANG) == pid)
                break;
        }
        if (stop) {
            /* detach first, so that nothing new arrives — unless what is mounted on the directory
             * now is not ours (ours was detached, maybe something else mounted there since) —
             * then end the daemon. SIGKILL: it holds nothing to clean up, and no signal mask can
             * keep it alive. */
            if (!detached && dev && mount_is_ours_at(m->dir, dev))
                fuse_session_unmount(se);
            kill(pid, SIGKILL);
            while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
                ;
            return;
        }
        if (!conn_alive(fd))
            return; /* unmounted: the daemon saw ENODEV and ended */
        char how[128];
        status_str(st, how, sizeof how);
        quick = monotonic_now() - started < QUICK_DEATH ? quick + 1 : 0;
        if (quick > QUICK_DEATHS_MAX) {
            mount_log(LOG_ERR,
                      "%s: `%s`: the daemon (pid %d) %s, the %u. time in a row within %.0f s of "
                      "its start; giving up: the mount is dead until it is mounted again",
                      m->ref, m->dir, (int)pid, how, quick, QUICK_DEATH);
            return;
        }
        mount_log(LOG_WARNING, "%s: `%s`: the daemon (pid %d) %s; starting a new one", m->ref,
                  m->dir, (int)pid, how);
        if (quick) {
            unsigned ms = quick >= 5 ? 1000 : 50u << (quick - 1);
            poll(NULL, 0, (int)ms);
        }
    }
    if (unmount)
        fuse_session_unmount(se);
}

/* Load, mount, tell `*notify_fd` (when >= 0) and serve until unmounted: in this process
 * (foreground), or as the keeper of a daemon (notify_fd >= 0, forked by mount_image). Errors
 * before the mount is live are returned; the caller reports them. */
static int mount_serve(const char *root, const char *ref, const char *dir,
                       const struct mount_options *o, int *notify_fd, struct imgfs_err *err)
{
    struct mount_ctx *m = NULL;
    struct digest manifest;
    struct store_lease *lease = NULL;
    struct fuse_session *se = NULL;
    bool mounted = false, signals = false, keeper = *notify_fd >= 0;
    char *opts = NULL, *type = NULL, *dev = NULL;
    int rc = -1;

    if (ctx_load(root, ref, &m, &manifest, err) < 0)
        goto out;
    m->dir = dir;
    m->root = root;
    if (store_lease_take(m->store, &manifest, &lease, err) < 0) {
        err_ctx(err, "image `%s`", ref);
        goto out;
    }
    opts = fuse_opts_string(m, o);
    char *argv[] = {"imgfs", "-o", opts, o->debug ? "-d" : NULL, NULL};
    struct fuse_args args = FUSE_ARGS_INIT(o->debug ? 4 : 3, argv);
    fuse_set_log_func(fuse_log_capture);
    last_log[0] = 0;
    log_capture_only = !o->debug;
    se = fuse_session_new(&args, &mount_ops, sizeof mount_ops, m);
    fuse_opt_free_args(&args);
    if (!se) {
        err_set(err, EINVAL, "setting up the FUSE session: %s", last_log[0] ? last_log : "failed");
        goto out;
    }
    if (!keeper) {
        if (fuse_set_signal_handlers(se) < 0) {
            err_set(err, EIO, "installing signal handlers");
            goto out;
        }
        signals = true;
    }
    if (fuse_session_mount(se, dir) < 0) {
        err_set(err, EIO, "mounting on `%s`: %s", dir, last_log[0] ? last_log : "failed");
        goto out;
    }
    mounted = true;
    log_capture_only = false;
    /* a keeper's lease names the mount's device, so that `imgfs umount` can wait for it to go (a
     * foreground server has no keeper to say when it serves on after an unmount, for an overlay
     * using it as a lower directory: not waited for) */
    if (keeper) {
        type = mount_type_at(dir, &dev, err);
        if (!type || (dev && store_lease_note(lease, dev, err) < 0))
            goto out;
    }

    if (keeper) {
        /* the daemons open the store themselves: LMDB environments must not cross fork() */
        store_close(m->store);
        m->store = NULL;
        notify_parent(notify_fd, NULL);
        log_to_syslog = true;
        openlog("imgfs", LOG_PID, LOG_DAEMON);
        detach_stdio();
        if (o->log_path)
            log_fd = open(o->log_path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
        if (chdir("/") < 0) {
            /* harmless: every path we use is absolute */
        }
        keeper_run(m, se, o, lease);
        mounted = false; /* the keeper unmounted, or the mount ended or is dead: leave it */
    } else {
        store_close(m->store);
        m->store = NULL;
        if (daemon_open_store(m, o, err) < 0)
            goto out;
        loop_serve(m, se, o, false);
    }
    rc = 0;

out:
    if (mounted)
        fuse_session_unmount(se);
    if (signals)
        fuse_remove_signal_handlers(se);
    if (se)
        fuse_session_destroy(se);
    if (lease)
        store_lease_release(lease);
    ctx_free(m);
    free(opts);
    free(type);
    free(dev);
    return rc;
}

/* An absolute path for `dir` whose last part is not resolved: the daemon chdirs to "/", and a
 * dead mount point cannot be stat'ed. */
static char *absolute_dir(const char *dir, struct imgfs_err *err)
{
    cleanup_free char *copy = xstrdup(dir);
    size_t n = strlen(copy);
    while (n > 1 && copy[n - 1] == '/')
        copy[--n] = 0;
    char *slash = strrchr(copy, '/');
    const char *base = slash ? slash + 1 : copy;
    cleanup_free char *parent = NULL;
    if (!slash)
        parent = xstrdup(".");
    else if (slash == copy)
        parent = xstrdup("/");
    else
        parent = strndup(copy, (size_t)(slash - copy));
    if (!strcmp(base, ".") || !strcmp(base, "..") || !*base) {
        char *full = realpath(copy, NULL);
        if (!full)
            err_sys(err, errno, "`%s`", dir);
        return full;
    }
    cleanup_free char *real_parent = realpath(parent, NULL);
    if (!real_parent) {
        err_sys(err, errno, "`%s`", dir);
        return NULL;
    }
    return xasprintf("%s/%s", strcmp(real_parent, "/") ? real_parent : "", base);
}

int mount_image(const char *root, const char *ref, const char *dir, const struct mount_options *o,
                struct imgfs_err *err)
{
    cleanup_free char *abs_dir = absolute_dir(dir, err);
    if (!abs_dir)
        return -1;
    /* a mount whose keeper and daemon are gone: detach it and mount again */
    if (mount_is_dead(abs_dir) && mount_unmount(NULL, abs_dir, true, err) < 0)
        return err_ctx(err, "detaching the dead mount on `%s`", dir);
    if (check_mount_dir(abs_dir, err) < 0)
        return -1;
    /* the daemon leaves the caller's directory: a relative root must not depend on it */
    cleanup_free char *abs_root = realpath(root, NULL);
    if (!abs_root)
        abs_root = xstrdup(root);

    int none = -1;
    if (o->foreground || o->debug)
        return mount_serve(abs_root, ref, abs_dir, o, &none, err);

    int pipefd[2];
    if (pipe2(pipefd, O_CLOEXEC) < 0)
        return err_sys(err, errno, "creating a pipe");
    cleanup_close int rd = pipefd[0];
    int wr = pipefd[1];
    fflush(NULL);
    pid_t child = fork();
    if (child < 0) {
        close(wr);
        return err_sys(err, errno, "forking the mount daemon");
    }
    if (child == 0) {
        /* the daemon is a grandchild, adopted by init: the caller never has to reap it */
        close(rd);
        if (setsid() < 0) {
            /* already a group leader: fine */
        }
        pid_t daemon = fork();
        if (daemon != 0)
            _exit(daemon < 0 ? 1 : 0);
        /* Hold none of the caller's descriptors: a daemon keeping, say, the write end of the
         * caller's own status pipe would make the caller wait for an EOF that never comes. */
        if (wr > 3)
            close_range(3, (unsigned)wr - 1, 0);
        close_range((unsigned)(wr > 2 ? wr : 2) + 1, ~0U, 0);
        struct imgfs_err e = {0};
        signal(SIGPIPE, SIG_IGN);
        int rc = mount_serve(abs_root, ref, abs_dir, o, &wr, &e);
        if (rc < 0)
            notify_parent(&wr, &e);
        _exit(rc < 0 ? 1 : 0);
    }
    close(wr);
    int status;
    while (waitpid(child, &status, 0) < 0 && errno == EINTR)
        ;
    struct imgfs_err reply;
    ssize_t n = read_full(rd, &reply, sizeof reply);
    if (n != (ssize_t)sizeof reply)
        return err_set(err, EIO, "the mount daemon for `%s` exited before the mount was live", dir);
    if (reply.code) {
        reply.msg[sizeof reply.msg - 1] = 0;
        *err = reply;
        return -1;
    }
    return 0;
}

/* ---- unmounting ---- */

/* /proc/self/mountinfo escapes space, tab, newline and backslash as \ooo. */
static void unescape_octal(char *s)
{
    char *w = s;
    for (char *r = s; *r;) {
        if (r[0] == '\\' && r[1] >= '0' && r[1] <= '7' && r[2] >= '0' && r[2] <= '7' &&
            r[3] >= '0' && r[3] <= '7') {
            *w++ = (char)((r[1] - '0') * 64 + (r[2] - '0') * 8 + (r[3] - '0'));
            r += 4;
        } else {
            *w++ = *r++;
        }
    }
    *w = 0;
}

/* The file system type of the top-most mount on `dir` (absolute), or NULL when none is; its device
 * ("major:minor") goes to *dev when dev is not NULL. */
static char *mount_type_at(const char *dir, char **dev, struct imgfs_err *err)
{
    FILE *f = fopen("/proc/self/mountinfo", "re");
    if (!f) {
        err_sys(err, errno, "reading /proc/self/mountinfo");
        return NULL;
    }
    char *line = NULL, *type = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, f) > 0) {
        /* id parent major:minor root MOUNT_POINT options... - TYPE source super-options */
        char *save, *fields[5] = {0};
        char *tok = strtok_r(line, " ", &save);
        for (int i = 0; tok && i < 5; i++, tok = strtok_r(NULL, " ", &save))
            fields[i] = tok;
        if (!fields[4])
            continue;
        char *sep = tok;
        while (sep && strcmp(sep, "-"))
            sep = strtok_r(NULL, " ", &save);
        char *fstype = sep ? strtok_r(NULL, " ", &save) : NULL;
        if (!fstype)
            continue;
        unescape_octal(fields[4]);
        if (!strcmp(fields[4], dir)) {
            free(type);
            type = xstrdup(fstype); /* later lines are mounted on top of earlier ones */
            if (dev) {
                free(*dev);
                *dev = xstrdup(fields[2]);
            }
        }
    }
    free(line);
    fclose(f);
    if (!type)
        err_set(err, EINVAL, "`%s` is not a mount point", dir);
    return type;
}

/* Whether any mount of this namespace has the device `dev` ("major:minor"). */
static bool mount_dev_present(const char *dev)
{
    FILE *f = fopen("/proc/self/mountinfo", "re");
    if (!f)
        return true; /* cannot tell: assume it is there */
    char *line = NULL;
    size_t cap = 0, n = strlen(dev);
    bool found = false;
    while (!found && getline(&line, &cap, f) > 0) {
        /* id parent major:minor ... */
        char *p = strchr(line, ' ');
        p = p ? strchr(p + 1, ' ') : NULL;
        found = p && !strncmp(p + 1, dev, n) && p[1 + n] == ' ';
    }
    free(line);
    fclose(f);
    return found;
}

static bool dev_parse(const char *s, const char *sep, int base, unsigned *major, unsigned *minor)
{
    char *end;
    errno = 0;
    unsigned long a = strtoul(s, &end, base);
    if (errno || end == s || strncmp(end, sep, strlen(sep)))
        return false;
    const char *b = end + strlen(sep);
    unsigned long c = strtoul(b, &end, base);
    if (errno || end == b)
        return false;
    *major = (unsigned)a;
    *minor = (unsigned)c;
    return true;
}

/* Whether `path` (a /proc magic link) is on device major:minor. AT_STATX_DONT_SYNC: answered from
 * what the kernel has, so that a file on a hung network or FUSE file system cannot hang us. */
static bool path_on_dev(const char *path, unsigned major, unsigned minor)
{
    struct statx sx;
    return statx(AT_FDCWD, path, AT_STATX_DONT_SYNC, 0, &sx) == 0 && sx.stx_dev_major == major &&
           sx.stx_dev_minor == minor;
}

/* Whether a process has a working directory, a root, a descriptor or a mapping on device `dev`
 * ("major:minor" as in mountinfo). Processes we may not look at count as not using it. */
static bool mount_dev_in_use(const char *dev)
{
    unsigned major, minor;
    if (!dev_parse(dev, ":", 10, &major, &minor))
        return true; /* cannot tell: keep serving */
    DIR *proc = opendir("/proc");
    if (!proc)
        return true;
    bool used = false;
    struct dirent *e;
    char path[96];
    while (!used && (e = readdir(proc))) {
        if (e->d_name[0] < '1' || e->d_name[0] > '9' || strlen(e->d_name) > 16)
            continue;
        snprintf(path, sizeof path, "/proc/%.16s/cwd", e->d_name);
        used = path_on_dev(path, major, minor);
        snprintf(path, sizeof path, "/proc/%.16s/root", e->d_name);
        used = used || path_on_dev(path, major, minor);
        snprintf(path, sizeof path, "/proc/%.16s/fd", e->d_name);
        DIR *fds = used ? NULL : opendir(path);
        struct dirent *f;
        while (fds && !used && (f = readdir(fds))) {
            if (f->d_name[0] == '.')
                continue;
            snprintf(path, sizeof path, "/proc/%.16s/fd/%.20s", e->d_name, f->d_name);
            used = path_on_dev(path, major, minor);
        }
        if (fds)
            closedir(fds);
        /* mappings: "start-end perms offset MAJ:MIN inode path" (hex device numbers) */
        snprintf(path, sizeof path, "/proc/%.16s/maps", e->d_name);
        FILE *maps = used ? NULL : fopen(path, "re");
        char *line = NULL;
        size_t cap = 0;
        while (maps && !used && getline(&line, &cap, maps) > 0) {
            char *d = line;
            for (int field = 0; field < 3 && d; field++)
                d = strchr(d + 1, ' ');
            unsigned a, b;
            used = d && dev_parse(d + 1, ":", 16, &a, &b) && a == major && b == minor;
        }
        free(line);
        if (maps)
            fclose(maps);
    }
    closedir(proc);
    return used;
}

/* Whether `opts` (an overlay's super options, as mountinfo shows them) has a lower directory that
 * is `dir` or below it. mountinfo escapes ',' inside a value as \054; overlayfs escapes ':' in a
 * path as "\:". */
static bool overlay_opts_use(char *opts, const char *dir)
{
    size_t n = strlen(dir);
    char *save;
    for (char *o = strtok_r(opts, ",", &save); o; o = strtok_r(NULL, ",", &save)) {
        if (strncmp(o, "lowerdir=", 9))
            continue;
        unescape_octal(o);
        for (char *l = o + 9; *l;) {
            char *end = l;
            while (*end && !(*end == ':' && (end == l || end[-1] != '\\')))
                end++;
            bool last = !*end;
            *end = 0;
            if (!strncmp(l, dir, n) && (l[n] == 0 || l[n] == '/'))
                return true;
            if (last)
                break;
            l = end + 1;
        }
    }
    return false;
}

/* Whether an overlay mount, in any mount namespace a process is in, has a lower directory on `dir`
 * (where our mount was). The overlay holds the FUSE superblock without any process having a
 * file on it, so mount_dev_in_use cannot see it; its reads would fail once we ended. */
static bool mount_overlay_over(const char *dir)
{
    DIR *proc = opendir("/proc");
    if (!proc)
        return true; /* cannot tell: keep serving */
    ino_t seen[64];
    size_t n_seen = 0;
    bool used = false;
    struct dirent *e;
    char path[64];
    char *line = NULL;
    size_t cap = 0;
    while (!used && (e = readdir(proc))) {
        if (e->d_name[0] < '1' || e->d_name[0] > '9' || strlen(e->d_name) > 16)
            continue;
        struct stat st;
        snprintf(path, sizeof path, "/proc/%.16s/ns/mnt", e->d_name);
        if (stat(path, &st) < 0)
            continue;
        bool known = false;
        for (size_t i = 0; i < n_seen && !known; i++)
            known = seen[i] == st.st_ino;
        if (known)
            continue;
        if (n_seen < sizeof seen / sizeof seen[0])
            seen[n_seen++] = st.st_ino;
        snprintf(path, sizeof path, "/proc/%.16s/mountinfo", e->d_name);
        FILE *f = fopen(path, "re");
        while (f && !used && getline(&line, &cap, f) > 0) {
            /* ... - TYPE SOURCE SUPER-OPTIONS */
            char *sep = strstr(line, " - overlay ");
            if (!sep)
                continue;
            char *src = sep + strlen(" - overlay ");
            char *opts = strchr(src, ' ');
            if (!opts)
                continue;
            opts++;
            opts[strcspn(opts, "\n")] = 0;
            used = overlay_opts_use(opts, dir);
        }
        if (f)
            fclose(f);
    }
    free(line);
    closedir(proc);
    return used;
}

/* Whether the top-most mount on `dir` is the one with device `dev`. */
static bool mount_is_ours_at(const char *dir, const char *dev)
{
    struct imgfs_err ignored;
    cleanup_free char *top = NULL;
    cleanup_free char *type = mount_type_at(dir, &top, &ignored);
    return type && top && !strcmp(top, dev);
}

bool mount_is_dead(const char *dir)
{
    /* statfs always asks the daemon (nothing caches it); a dead connection answers ENOTCONN at
     * once. A live one whose daemon is being restarted answers once the new daemon runs. */
    struct statfs sf;
    if (statfs(dir, &sf) == 0 || errno != ENOTCONN)
        return false;
    struct imgfs_err ignored;
    cleanup_free char *abs_dir = absolute_dir(dir, &ignored);
    cleanup_free char *type = abs_dir ? mount_type_at(abs_dir, NULL, &ignored) : NULL;
    return type && !strcmp(type, "fuse.imgfs");
}

/* After an unmount: the kernel ends the connection when it frees the superblock, the daemon sees
 * ENODEV and the keeper ends, releasing its lease — a moment after umount2 returned (the
 * superblock may even outlive it briefly: ustat(2) found it still answering). The keeper decides
 * for itself whether it ends: it does once its mount is gone from its namespace and no process
 * uses it; one that serves on (a busy mount detached with -l) changes its lease's note. So wait
 * while a live lease names the device, at most UNMOUNT_WAIT_MS. */
#define UNMOUNT_WAIT_MS 10000
static void unmount_wait_lease(const char *root, const char *dev)
{
    double deadline = monotonic_now() + UNMOUNT_WAIT_MS / 1000.0;
    while (store_lease_held(root, dev) && monotonic_now() < deadline)
        poll(NULL, 0, 5);
}

int mount_unmount(const char *root, const char *dir, bool lazy, struct imgfs_err *err)
{
    cleanup_free char *abs_dir = absolute_dir(dir, err);
    if (!abs_dir)
        return -1;
    cleanup_free char *dev = NULL;
    cleanup_free char *type = mount_type_at(abs_dir, &dev, err);
    if (!type)
        return -1;
    if (strcmp(type, "fuse.imgfs"))
        return err_set(err, EINVAL, "`%s` is not an imgfs mount (it is %s)", dir, type);
    if (geteuid() == 0) {
        if (umount2(abs_dir, lazy ? MNT_DETACH : 0) < 0) {
            if (errno == EBUSY)
                return err_set(err, EBUSY, "`%s` is busy (umount -l detaches it anyway)", dir);
            return err_sys(err, errno, "unmounting `%s`", dir);
        }
        if (root && dev)
            unmount_wait_lease(root, dev);
        return 0;
    }
    /* without privileges the setuid fusermount3 does it, as for every FUSE mount */
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        return err_sys(err, errno, "running fusermount3");
    if (pid == 0) {
        if (lazy)
            execlp("fusermount3", "fusermount3", "-u", "-z", "--", abs_dir, (char *)NULL);
        else
            execlp("fusermount3", "fusermount3", "-u", "--", abs_dir, (char *)NULL);
        _exit(127);
    }
    int status;
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR)
            return err_sys(err, errno, "waiting for fusermount3");
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return err_set(err, EIO, "unmounting `%s`: fusermount3 failed (status %d)", dir,
                       WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
    if (root && dev)
        unmount_wait_lease(root, dev);
    return 0;
}
