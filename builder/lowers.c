/* lowers.c — the tree a RUN runs on, without committing it as an image first.
 *
 * A RUN's container gets an overlay whose read-only part is (bottom up) the newest image already
 * stored under the state — the FROM image, mounted once and shared with every container and
 * build of it — and, stacked above it as overlay lower directories, the layers the build added
 * since: the upper directories of this build's earlier RUNs, kept until the build ends, and
 * small layers (COPY, ADD, WORKDIR, a RUN taken from the cache) written out from their file
 * tables. Committing the parent as an unnamed image per RUN (its merged view of the whole tree
 * built and stored, then a new FUSE daemon with a cold page cache for it) is what this avoids;
 * it stays the fallback for what cannot be stacked (a big layer from the cache, too many
 * layers): those go into an image of the bottom layers, the rest is stacked on it.
 *
 * A layer written out must look through the overlay exactly as it does in the image's view: a
 * directory the layer does not list but needs for its entries (COPY's parents) takes the
 * attributes it has below (a lower directory, else the mounted image's view), OCI whiteouts
 * become overlayfs ones (a 0/0 character device, the `opaque` xattr). */
#include "../fs/layer.h"
#include "../fs/store.h"
#include "../runner/runner.h"
#include "builder.h"
#include "internal.h"

#include <fcntl.h>
#include <ftw.h>
#include <linux/openat2.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

/* A layer bigger than this (its canonical tar) is not written out: an image of it is cheaper. */
#define LOWERS_MAX_EXTRACT (64ULL << 20)
/* overlayfs takes the lower directories in one mount option string of at most a page */
#define LOWERS_MAX       24
#define LOWERS_MAX_CHARS 3000

void build_lowers_free(struct build *b)
{
    for (size_t i = 0; i < b->n_dirs; i++) {
        build_discard(b, b->dirs[i].dir);
        free(b->dirs[i].dir);
        if (b->dirs[i].lock_fd >= 0)
            close(b->dirs[i].lock_fd);
    }
    free(b->dirs);
    b->dirs = NULL;
    b->n_dirs = 0;
}

/* The directory of `layer` (a copy, the caller frees it), or NULL. Stages build in threads: the
 * list is under b->mu. */
static char *layer_dir(struct build *b, const struct digest *layer)
{
    char *found = NULL;
    pthread_mutex_lock(&b->mu);
    for (size_t i = 0; i < b->n_dirs && !found; i++)
        if (digest_equal(&b->dirs[i].layer, layer))
            found = xstrdup(b->dirs[i].upper);
    pthread_mutex_unlock(&b->mu);
    return found;
}

static void add_dir(struct build *b, const struct digest *layer, const char *dir, int lock_fd)
{
    pthread_mutex_lock(&b->mu);
    b->dirs = xrealloc(b->dirs, (b->n_dirs + 1) * sizeof *b->dirs);
    struct build_layer_dir *d = &b->dirs[b->n_dirs++];
    d->layer = *layer;
    d->dir = xstrdup(dir);
    snprintf(d->upper, sizeof d->upper, "%s/upper", dir);
    d->lock_fd = lock_fd;
    pthread_mutex_unlock(&b->mu);
}

static int clamp_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw);
static __thread int64_t clamp_to; /* nftw has no context argument */
static int clamp_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)flag;
    (void)ftw;
    if (st->st_mtime > clamp_to) {
        struct timespec ts[2] = {{.tv_nsec = UTIME_OMIT}, {.tv_sec = clamp_to}};
        utimensat(AT_FDCWD, path, ts, AT_SYMLINK_NOFOLLOW);
    }
    return 0;
}

void build_keep_upper(struct build *b, struct build_exec *ex, const struct digest *layer)
{
    /* what layer_from_upper left out must not show below the next RUN either: the runner's
     * mount points it made (an empty file or directory) */
    for (const char *const *m = ctr_mount_points; *m; m++) {
        cleanup_free char *p = xasprintf("%s/%s", ex->upper, *m);
        struct stat st;
        if (lstat(p, &st) < 0)
            continue;
        if (S_ISDIR(st.st_mode))
            rmdir(p); /* fails when not empty: then it is the command's */
        else if (S_ISREG(st.st_mode) && st.st_size == 0)
            unlink(p);
    }
    /* the next RUN must see the times the layer has (SOURCE_DATE_EPOCH clamps them) */
    if (b->o->source_date_epoch >= 0) {
        clamp_to = b->o->source_date_epoch;
        nftw(ex->upper, clamp_entry, 16, FTW_PHYS | FTW_DEPTH);
    }
    add_dir(b, layer, ex->dir, ex->lock_fd);
    ex->dir[0] = 0;
    ex->lock_fd = -1;
}

/* ---- writing a layer out ---- */

struct extract {
    struct build *b;
    struct store_read *r;
    int root;
    const char *const *below; /* lower directories under this one, top first */
    size_t n_below;
    const struct view *view; /* the mounted image's, or NULL */
    /* directories whose attributes are set last (their entries change their mtime) */
    struct {
        char *path;
        struct layer_entry e;
    } * dirs;
    size_t n_dirs;
};

static int open_beneath(int root, const char *path, int flags)
{
    struct open_how how = {.flags = (uint64_t)flags | O_CLOEXEC,
                           .resolve =
                               RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS};
    int fd;
    do
        fd = (int)syscall(SYS_openat2, root, *path ? path : ".", &how, sizeof how);
    while (fd < 0 && errno == EINTR);
    return fd;
}

/* The attributes directory `path` has under this layer: in a lower directory, else in the view;
 * 0755 root when nothing below has it (as view_build makes a parent no layer lists). */
static void attrs_below(struct extract *x, const char *path, struct stat *out)
{
    memset(out, 0, sizeof *out);
    out->st_mode = S_IFDIR | 0755;
    for (size_t i = 0; i < x->n_below; i++) {
        cleanup_free char *p = xasprintf("%s/%s", x->below[i], path);
        struct stat st;
        if (lstat(p, &st) < 0)
            continue;
        if (S_ISDIR(st.st_mode))
            *out = st;
        return; /* a whiteout or a file there hides what is further down */
    }
    if (!x->view)
        return;
    cleanup_free char *abs = xasprintf("/%s", path);
    uint32_t ino = view_lookup_path(x->view, abs);
    const struct view_inode *vi = ino ? view_inode(x->view, ino) : NULL;
    if (vi && S_ISDIR(vi->mode)) {
        out->st_mode = vi->mode;
        out->st_uid = vi->uid;
        out->st_gid = vi->gid;
        out->st_mtim.tv_sec = vi->mtime_sec;
        out->st_mtim.tv_nsec = vi->mtime_nsec;
    }
}

static int set_attrs(int dirfd, const char *name, const struct stat *st, struct imgfs_err *err)
{
    struct timespec ts[2] = {{.tv_nsec = UTIME_OMIT}, st->st_mtim};
    if (fchownat(dirfd, name, st->st_uid, st->st_gid, AT_SYMLINK_NOFOLLOW) < 0 ||
        (!S_ISLNK(st->st_mode) && fchmodat(dirfd, name, st->st_mode & 07777, 0) < 0) ||
        utimensat(dirfd, name, ts, AT_SYMLINK_NOFOLLOW) < 0)
        return err_sys(err, errno, "setting the attributes of `%s`", name);
    return 0;
}

/* The directory that holds `path` (made, with the attributes it has below, when the layer does
 * not list it); *base points at the last component. */
static int parent_of(struct extract *x, const char *path, const char **base, struct imgfs_err *err)
{
    const char *sl = strrchr(path, '/');
    *base = sl ? sl + 1 : path;
    if (!sl)
        return fcntl(x->root, F_DUPFD_CLOEXEC, 0);
    cleanup_free char *dir = strndup(path, (size_t)(sl - path));
    int fd = open_beneath(x->root, dir, O_PATH | O_DIRECTORY);
    if (fd >= 0 || errno != ENOENT) {
        if (fd < 0)
            err_sys(err, errno, "opening `%s`", dir);
        return fd;
    }
    const char *pbase;
    cleanup_close int pfd = parent_of(x, dir, &pbase, err);
    if (pfd < 0)
        return -1;
    struct stat st;
    attrs_below(x, dir, &st);
    if (mkdirat(pfd, pbase, 0700) < 0)
        return err_sys(err, errno, "making `%s`", dir);
    x->dirs = xrealloc(x->dirs, (x->n_dirs + 1) * sizeof *x->dirs);
    x->dirs[x->n_dirs].path = xstrdup(dir);
    x->dirs[x->n_dirs].e = (struct layer_entry){.kind = LAYER_DIR,
                                                .mode = st.st_mode & 07777,
                                                .uid = st.st_uid,
                                                .gid = st.st_gid,
                                                .mtime_sec = st.st_mtim.tv_sec,
                                                .mtime_nsec = (uint32_t)st.st_mtim.tv_nsec};
    x->n_dirs++;
    fd = open_beneath(x->root, dir, O_PATH | O_DIRECTORY);
    if (fd < 0)
        err_sys(err, errno, "opening `%s`", dir);
    return fd;
}

static int write_content(struct extract *x, int fd, const struct layer_entry *e,
                         struct imgfs_err *err)
{
    for (uint32_t i = 0; i < e->n_extents; i++) {
        const struct layer_extent *ext = &e->extents[i];
        const void *data;
        size_t n;
        if (store_chunk_get(x->r, &ext->chunk, true, &data, &n, err) < 0)
            return err_ctx(err, "reading `%s`", e->path);
        if (n != ext->length)
            return err_set(err, EIO, "reading `%s`: chunk has %zu bytes, table says %u", e->path, n,
                           ext->length);
        for (size_t done = 0; done < n;) {
            ssize_t w =
                pwrite(fd, (const char *)data + done, n - done, (off_t)(ext->offset + done));
            if (w < 0 && errno == EINTR)
                continue;
            if (w < 0)
                return err_sys(err, errno, "writing `%s`", e->path);
            done += (size_t)w;
        }
    }
    if (ftruncate(fd, (off_t)e->size) < 0)
        return err_sys(err, errno, "writing `%s`", e->path);
    return 0;
}

static int extract_entry(struct extract *x, const struct layer_entry *e, struct imgfs_err *err)
{
    struct stat st = {.st_mode = e->mode, .st_uid = e->uid, .st_gid = e->gid};
    st.st_mtim.tv_sec = e->mtime_sec;
    st.st_mtim.tv_nsec = e->mtime_nsec;
    for (uint32_t i = 0; i < e->n_xattrs; i++)
        if (!strncmp(e->xattrs[i].name, "trusted.overlay.", 16))
            return err_set(err, ENOTSUP, "`%s` has an overlayfs xattr", e->path);
    if (!*e->path) { /* the layer's root: the tree's root directory */
        x->dirs = xrealloc(x->dirs, (x->n_dirs + 1) * sizeof *x->dirs);
        x->dirs[x->n_dirs].path = xstrdup("");
        x->dirs[x->n_dirs++].e = *e;
        return 0;
    }
    const char *base;
    cleanup_close int dfd = parent_of(x, e->path, &base, err);
    if (dfd < 0)
        return -1;
    if (!strcmp(base, LAYER_OPAQUE_NAME)) {
        /* O_PATH descriptors take no xattrs: through the /proc link */
        char p[64];
        snprintf(p, sizeof p, "/proc/self/fd/%d", dfd);
        if (setxattr(p, "trusted.overlay.opaque", "y", 1, 0) < 0)
            return err_sys(err, errno, "marking `%s` opaque", e->path);
        return 0;
    }
    if (!strncmp(base, LAYER_WHITEOUT_PREFIX, strlen(LAYER_WHITEOUT_PREFIX))) {
        if (mknodat(dfd, base + strlen(LAYER_WHITEOUT_PREFIX), S_IFCHR | 0600, makedev(0, 0)) < 0)
            return err_sys(err, errno, "writing the whiteout `%s`", e->path);
        return 0;
    }
    switch (e->kind) {
    case LAYER_DIR:
        if (mkdirat(dfd, base, 0700) < 0) {
            if (errno != EEXIST)
                return err_sys(err, errno, "making `%s`", e->path);
            /* made for an entry below it that came first: the layer's own attributes win */
            for (size_t i = 0; i < x->n_dirs; i++)
                if (!strcmp(x->dirs[i].path, e->path)) {
                    x->dirs[i].e = *e;
                    return 0;
                }
            return err_set(err, EEXIST, "`%s` is in the layer twice", e->path);
        }
        x->dirs = xrealloc(x->dirs, (x->n_dirs + 1) * sizeof *x->dirs);
        x->dirs[x->n_dirs].path = xstrdup(e->path);
        x->dirs[x->n_dirs++].e = *e;
        return 0; /* attributes at the end */
    case LAYER_REG: {
        cleanup_close int fd = openat(dfd, base, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0)
            return err_sys(err, errno, "creating `%s`", e->path);
        if (write_content(x, fd, e, err) < 0)
            return -1;
        break;
    }
    case LAYER_SYMLINK:
        st.st_mode |= S_IFLNK;
        if (symlinkat(e->link, dfd, base) < 0)
            return err_sys(err, errno, "making the symlink `%s`", e->path);
        break;
    case LAYER_HARDLINK: {
        const char *tbase;
        cleanup_close int tfd = parent_of(x, e->link, &tbase, err);
        if (tfd < 0)
            return -1;
        if (linkat(tfd, tbase, dfd, base, 0) < 0)
            return err_sys(err, errno, "linking `%s` to `%s`", e->path, e->link);
        return 0; /* the target's attributes */
    }
    case LAYER_CHAR:
    case LAYER_BLOCK:
    case LAYER_FIFO:
    case LAYER_SOCKET: {
        mode_t type = e->kind == LAYER_CHAR    ? S_IFCHR
                      : e->kind == LAYER_BLOCK ? S_IFBLK
                      : e->kind == LAYER_FIFO  ? S_IFIFO
                                               : S_IFSOCK;
        if (mknodat(dfd, base, type | 0600, makedev(e->rdev_major, e->rdev_minor)) < 0)
            return err_sys(err, errno, "making `%s`", e->path);
        break;
    }
    default:
        return err_set(err, ENOTSUP, "`%s`: an entry of unknown kind", e->path);
    }
    for (uint32_t i = 0; i < e->n_xattrs; i++) {
        char p[64];
        snprintf(p, sizeof p, "/proc/self/fd/%d", dfd);
        cleanup_free char *full = xasprintf("%s/%s", p, base);
        if (lsetxattr(full, e->xattrs[i].name, e->xattrs[i].value, e->xattrs[i].len, 0) < 0)
            return err_sys(err, errno, "setting xattr %s on `%s`", e->xattrs[i].name, e->path);
    }
    return set_attrs(dfd, base, &st, err);
}

/* Write layer `layer` out as a lower directory above `below` (top first). */
static int extract_layer(struct build *b, struct store_read *r, const struct digest *layer,
                         char *const *below, size_t n_below, const struct view *view,
                         struct imgfs_err *err)
{
    const void *table;
    size_t len;
    if (store_get(r, STORE_LAYER, layer, &table, &len, err) < 0)
        return -1;
    char dir[4096];
    int lock_fd;
    if (build_step_dir(b, dir, sizeof dir, &lock_fd, err) < 0)
        return -1;
    cleanup_free char *upper = xasprintf("%s/upper", dir);
    struct extract x = {.b = b,
                        .r = r,
                        .root = open(upper, O_PATH | O_DIRECTORY | O_CLOEXEC),
                        .below = (const char *const *)below,
                        .n_below = n_below,
                        .view = view};
    struct layer_reader rd;
    struct layer_entry e;
    int rc = x.root < 0 ? err_sys(err, errno, "opening `%s`", upper)
                        : layer_reader_init(&rd, table, len, err);
    if (rc == 0) {
        while ((rc = layer_next(&rd, &e, err)) > 0)
            if (extract_entry(&x, &e, err) < 0) {
                rc = -1;
                break;
            }
        layer_reader_free(&rd);
    }
    /* directories last, deepest first: what went into them changed their mtime */
    for (size_t i = x.n_dirs; rc == 0 && i-- > 0;) {
        const struct layer_entry *de = &x.dirs[i].e;
        struct stat st = {.st_mode = S_IFDIR | de->mode, .st_uid = de->uid, .st_gid = de->gid};
        st.st_mtim.tv_sec = de->mtime_sec;
        st.st_mtim.tv_nsec = de->mtime_nsec;
        const char *base = "";
        cleanup_close int dfd = *x.dirs[i].path ? parent_of(&x, x.dirs[i].path, &base, err)
                                                : fcntl(x.root, F_DUPFD_CLOEXEC, 0);
        if (dfd < 0 || set_attrs(dfd, *base ? base : ".", &st, err) < 0)
            rc = -1;
    }
    for (size_t i = 0; i < x.n_dirs; i++)
        free(x.dirs[i].path);
    free(x.dirs);
    if (x.root >= 0)
        close(x.root);
    if (rc < 0) {
        build_discard(b, dir);
        close(lock_fd);
        return -1;
    }
    add_dir(b, layer, dir, lock_fd);
    return 0;
}

/* ---- choosing the stack ---- */

int build_lowers(struct build *b, struct bstate *st, struct digest *image, char ***lowers,
                 struct imgfs_err *err)
{
    *lowers = NULL;
    /* the bottom: the state's stored image, when it is one */
    size_t k = st->has_lower_image ? st->lower_layers : 0;
    /* the top layers that can be stacked: kept, or small enough to write out */
    size_t first = st->n_layers, chars = 0;
    while (first > k) {
        cleanup_free char *have = layer_dir(b, &st->layers[first - 1]);
        if (!have && st->sizes[first - 1] > LOWERS_MAX_EXTRACT)
            break;
        chars += strlen(b->o->root) + 40;
        if (st->n_layers - first + 1 > LOWERS_MAX || chars > LOWERS_MAX_CHARS)
            break;
        first--;
    }
    /* everything below `first` must be one image: the stored one, or a commit of those layers */
    if (first == k && st->has_lower_image)
        *image = st->lower_image;
    else if (state_commit_layers(b, st, first, image, err) < 0)
        return -1;
    struct store_read *r;
    if (store_read_begin(b->s, &r, err) < 0)
        return -1;
    /* the view of the bottom image, for parents a written-out layer does not list */
    cleanup_free void *view_copy = NULL;
    struct view view;
    const struct view *vp = NULL;
    const void *data;
    size_t len;
    struct imgfs_err ignored;
    if (store_get(r, STORE_VIEW, image, &data, &len, &ignored) == 0 &&
        view_open_copy(data, len, &view_copy, &view, &ignored) == 0)
        vp = &view;
    char **below = NULL; /* top first */
    size_t n = 0;
    for (size_t i = first; i < st->n_layers; i++) {
        const struct digest *l = &st->layers[i];
        char *have = layer_dir(b, l);
        if (!have && extract_layer(b, r, l, below, n, vp, err) < 0) {
            /* a layer that cannot be written out as it is (an overlayfs xattr of its own, a
             * kind overlayfs cannot hold): the image path for all up to it, which is always
             * right */
            strv_free(below);
            below = NULL;
            n = 0;
            store_read_end(r);
            r = NULL;
            if (state_commit_layers(b, st, i + 1, image, err) < 0)
                return -1;
            if (store_read_begin(b->s, &r, err) < 0)
                return -1;
            vp = NULL;
            free(view_copy);
            view_copy = NULL;
            if (store_get(r, STORE_VIEW, image, &data, &len, &ignored) == 0 &&
                view_open_copy(data, len, &view_copy, &view, &ignored) == 0)
                vp = &view;
            continue;
        }
        if (!have)
            have = layer_dir(b, l);
        below = xrealloc(below, (n + 2) * sizeof *below);
        memmove(below + 1, below, n * sizeof *below);
        below[0] = have;
        below[++n] = NULL;
    }
    if (r)
        store_read_end(r);
    *lowers = below;
    return 0;
}
