/* copy.c — COPY and ADD: files straight from the context directory (or another stage, an image,
 * a heredoc, a local tar, an http URL) into a new layer, entry by entry (fs/layerbuild.h).
 *
 * Two passes over the same list of items: the first hashes what the layer will hold (paths,
 * kinds, modes, owners, content; never mtimes) into the step's cache key; the second, only on a
 * cache miss, feeds the items to a layer builder. Sources are opened beneath the context with
 * openat2(RESOLVE_BENEATH): `..` or a symlink out of the context is refused. Destinations are
 * resolved in the image's merged tree (rootfs.c), so a symlink in the image never leads out of
 * its root. */
#include "../fs/curl.h"
#include "../fs/image.h"
#include "../fs/import.h"
#include "../fs/layerbuild.h"
#include "../fs/store.h"
#include "builder.h"
#include "dockerfile.h"
#include "internal.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>

enum src_kind { SRC_CONTEXT, SRC_VIEW, SRC_BYTES, SRC_TAR };

struct item {
    enum src_kind kind;
    char *src;         /* SRC_CONTEXT: path under the context root; SRC_TAR: the archive's path */
    uint32_t ino;      /* SRC_VIEW */
    struct buf *bytes; /* SRC_BYTES (shared, not owned) */
    char *dst;         /* path in the layer (resolved, relative to the root) */
    struct layer_entry e;
    char *link;
};

struct copy {
    struct build *b;
    struct stage *sg;
    const struct df_instruction *ins;
    bool add, have_owner, have_mode, parents;
    bool link; /* --link: the layer as if copied onto an empty tree */
    /* a context walk for a bind (context_bind): did it leave something out (.dockerignore) or
     * see an owner that is not 0:0, so that the host tree is not what BuildKit would send */
    bool skipped, host_owner;
    uint32_t uid, gid, mode;
    struct df_ignore *exclude; /* --exclude patterns, relative to each source */
    int64_t clamp;
    /* --from: the source's tree */
    struct store_read *from_r;
    const struct view *from_v;
    void *from_copy;
    struct view from_view;
    /* the destination image */
    struct store_read *r;
    const struct view *v;
    struct item *items;
    size_t n_items;
    struct buf **blobs; /* heredoc and URL contents */
    size_t n_blobs;
    char **tmpfiles;
};

static int sys_openat2(int dirfd, const char *path, int flags, uint64_t resolve)
{
    struct open_how how = {.flags = (uint64_t)flags | O_CLOEXEC, .resolve = resolve};
    int fd;
    do
        fd = (int)syscall(SYS_openat2, dirfd, path, &how, sizeof how);
    while (fd < 0 && errno == EINTR);
    return fd;
}

static int fail(struct copy *c, struct imgfs_err *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail(struct copy *c, struct imgfs_err *err, int code, const char *fmt, ...)
{
    char msg[1536];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return df_error_at(c->b->file, c->ins->start_line, c->ins->end_line, err, code, "%s", msg);
}

static void add_item(struct copy *c, const struct item *it)
{
    c->items = xrealloc(c->items, (c->n_items + 1) * sizeof *c->items);
    c->items[c->n_items++] = *it;
}

static bool has_glob(const char *s)
{
    return strpbrk(s, "*?[") != NULL;
}

/* Clean a context path lexically ("./a//b/../c" -> "a/c"); -1 when it climbs out of the root. */
static int clean_rel(const char *in, char **out)
{
    char **parts = NULL;
    size_t n = 0;
    cleanup_free char *copy = xstrdup(in);
    char *save = NULL;
    int ret = 0;
    for (char *w = strtok_r(copy, "/", &save); w; w = strtok_r(NULL, "/", &save)) {
        if (!strcmp(w, "."))
            continue;
        if (!strcmp(w, "..")) {
            if (!n) {
                ret = -1;
                break;
            }
            n--;
            continue;
        }
        parts = xrealloc(parts, (n + 1) * sizeof *parts);
        parts[n++] = w;
    }
    struct buf b = {0};
    for (size_t i = 0; i < n && ret == 0; i++) {
        if (i)
            buf_append(&b, "/", 1);
        buf_append(&b, parts[i], strlen(parts[i]));
    }
    buf_append(&b, "", 1);
    free(parts);
    *out = (char *)b.data;
    return ret;
}

static char *join(const char *a, const char *b)
{
    if (!*a)
        return xstrdup(b);
    if (!*b)
        return xstrdup(a);
    return xasprintf("%s/%s", a, b);
}

static const char *base_name(const char *p)
{
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

/* ---- the destination ---- */

/* Where `path` (absolute in the image) lands, its parents' symlinks resolved in the image's
 * root, the last component followed only when `follow`. */
static int resolve_dst(struct copy *c, const char *path, bool follow, char **out, uint32_t *ino,
                       struct imgfs_err *err)
{
    if (rootfs_resolve(c->v, path, follow, out, ino, err) < 0)
        return fail(c, err, err->code, "destination `%s`: %s", path, err->msg);
    return 0;
}

static bool dst_is_dir(struct copy *c, uint32_t ino)
{
    const struct view_inode *in = ino ? view_inode(c->v, ino) : NULL;
    return in && S_ISDIR(in->mode);
}

/* ---- items from the context ---- */

static void entry_from_stat(struct copy *c, const struct stat *st, struct layer_entry *e)
{
    memset(e, 0, sizeof *e);
    struct imgfs_err ignored;
    layer_entry_from_stat(st, e, &ignored);
    e->uid = c->have_owner ? c->uid : 0;
    e->gid = c->have_owner ? c->gid : 0;
    c->host_owner = c->host_owner || st->st_uid || st->st_gid;
    if (c->have_mode)
        e->mode = c->mode;
    if (c->clamp >= 0 && e->mtime_sec > c->clamp) {
        e->mtime_sec = c->clamp;
        e->mtime_nsec = 0;
    }
}

static bool ctx_excluded(struct copy *c, const char *rel, const char *rel_to_src)
{
    if (df_ignore_excluded(c->b->ignore, rel))
        return true;
    return c->exclude && *rel_to_src && df_ignore_excluded(c->exclude, rel_to_src);
}

/* Walk a context directory (fd, `rel` under the context) into items under `dst`. */
static int walk_context(struct copy *c, int dirfd, const char *rel, const char *srcroot,
                        const char *dst, struct imgfs_err *err)
{
    int fd2 = dup(dirfd);
    if (fd2 < 0)
        return err_sys(err, errno, "dup");
    DIR *d = fdopendir(fd2);
    if (!d) {
        close(fd2);
        return err_sys(err, errno, "reading `%s` in the context", rel);
    }
    char **names = NULL;
    size_t n = 0;
    struct dirent *de;
    while ((errno = 0, de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        names = xrealloc(names, (n + 1) * sizeof *names);
        names[n++] = xstrdup(de->d_name);
    }
    closedir(d);
    /* bytewise order: the same tree gives the same layer */
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0 && strcmp(names[j - 1], names[j]) > 0; j--) {
            char *t = names[j];
            names[j] = names[j - 1];
            names[j - 1] = t;
        }
    int ret = 0;
    for (size_t i = 0; i < n && !ret; i++) {
        cleanup_free char *r = join(rel, names[i]);
        const char *rs = r + strlen(srcroot) + (*srcroot ? 1 : 0);
        struct stat st;
        if (fstatat(dirfd, names[i], &st, AT_SYMLINK_NOFOLLOW) < 0) {
            ret = err_sys(err, errno, "`%s` in the context", r);
            break;
        }
        bool excluded = ctx_excluded(c, r, rs);
        c->skipped = c->skipped || excluded;
        if (excluded &&
            !(S_ISDIR(st.st_mode) && c->b->ignore && df_ignore_must_walk(c->b->ignore, r)))
            continue;
        struct item it = {.kind = SRC_CONTEXT, .src = xstrdup(r), .dst = join(dst, names[i])};
        entry_from_stat(c, &st, &it.e);
        if (S_ISLNK(st.st_mode)) {
            char target[PATH_MAX];
            ssize_t tl = readlinkat(dirfd, names[i], target, sizeof target - 1);
            if (tl < 0) {
                ret = err_sys(err, errno, "`%s` in the context", r);
                free(it.src);
                free(it.dst);
                break;
            }
            target[tl] = 0;
            it.link = xstrdup(target);
            if (c->have_mode)
                it.e.mode = 0777;
        }
        size_t at = c->n_items;
        add_item(c, &it);
        if (S_ISDIR(st.st_mode)) {
            int sub = sys_openat2(dirfd, names[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW,
                                  RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS);
            if (sub < 0) {
                ret = err_sys(err, errno, "`%s` in the context", r);
                break;
            }
            ret = walk_context(c, sub, r, srcroot, c->items[at].dst, err);
            close(sub);
            /* an excluded directory walked for its exceptions stays only if one matched */
            if (!ret && excluded && c->n_items == at + 1) {
                free(c->items[at].src);
                free(c->items[at].dst);
                c->n_items--;
            }
        }
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return ret;
}

/* One top-level context source (no wildcards left): `rel` (cleaned) into `dst` (resolved); with
 * `into_dir` a file goes to dst/NAME. */
static int source_context(struct copy *c, const char *rel, const char *dst, bool into_dir,
                          struct imgfs_err *err)
{
    if (c->b->context_fd < 0)
        return fail(c, err, ENOENT, "no build context: `%s` can not be copied", rel);
    /* a symlink given as the source is followed, but only beneath the context */
    int fd =
        *rel ? sys_openat2(c->b->context_fd, rel, O_PATH, RESOLVE_BENEATH) : dup(c->b->context_fd);
    if (fd < 0) {
        if (errno == EXDEV || errno == ELOOP)
            return fail(c, err, EPERM, "forbidden path outside the build context: %s", rel);
        if (errno == ENOENT || errno == ENOTDIR)
            return fail(c, err, ENOENT,
                        "failed to compute cache key: failed to calculate checksum: \"/%s\": "
                        "not found",
                        rel);
        return err_sys(err, errno, "`%s` in the context", rel);
    }
    struct stat st;
    if (fstat(fd, &st) < 0) {
        close(fd);
        return err_sys(err, errno, "`%s` in the context", rel);
    }
    /* where the source really is, for the ignore rules and the walk */
    char link[64], real[PATH_MAX], ctxreal[PATH_MAX];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t rl = readlink(link, real, sizeof real - 1);
    snprintf(link, sizeof link, "/proc/self/fd/%d", c->b->context_fd);
    ssize_t cl = readlink(link, ctxreal, sizeof ctxreal - 1);
    if (rl < 0 || cl < 0) {
        close(fd);
        return err_sys(err, errno, "resolving `%s` in the context", rel);
    }
    real[rl] = ctxreal[cl] = 0;
    const char *srel = real + cl;
    if (strncmp(real, ctxreal, (size_t)cl) || (*srel && *srel != '/')) {
        close(fd);
        return fail(c, err, EPERM, "forbidden path outside the build context: %s", rel);
    }
    if (cl == 1) /* the context is "/" */
        srel = real;
    while (*srel == '/')
        srel++;
    if (*srel && df_ignore_excluded(c->b->ignore, srel) &&
        !(S_ISDIR(st.st_mode) && df_ignore_must_walk(c->b->ignore, srel))) {
        close(fd);
        return fail(c, err, ENOENT,
                    "failed to compute cache key: failed to calculate checksum: \"/%s\": not "
                    "found (excluded by .dockerignore)",
                    rel);
    }
    int ret = 0;
    if (S_ISDIR(st.st_mode)) {
        int dfd = sys_openat2(c->b->context_fd, *srel ? srel : ".", O_RDONLY | O_DIRECTORY,
                              RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS);
        close(fd);
        if (dfd < 0)
            return err_sys(err, errno, "`%s` in the context", rel);
        /* the directory itself: only when it makes the destination */
        uint32_t ino;
        cleanup_free char *resolved = NULL;
        cleanup_free char *abs = xasprintf("/%s", dst);
        struct imgfs_err e2;
        if (rootfs_resolve(c->v, abs, true, &resolved, &ino, &e2) == 0 && !dst_is_dir(c, ino)) {
            struct item it = {.kind = SRC_CONTEXT, .src = xstrdup(srel), .dst = xstrdup(dst)};
            entry_from_stat(c, &st, &it.e);
            if (*dst)
                add_item(c, &it);
            else {
                free(it.src);
                free(it.dst);
            }
        }
        ret = walk_context(c, dfd, srel, srel, dst, err);
        close(dfd);
        return ret;
    }
    close(fd);
    struct item it = {.kind = SRC_CONTEXT, .src = xstrdup(srel)};
    it.dst = into_dir ? join(dst, base_name(srel)) : xstrdup(dst);
    entry_from_stat(c, &st, &it.e);
    if (!S_ISREG(st.st_mode)) {
        free(it.src);
        free(it.dst);
        return fail(c, err, EINVAL, "`%s` in the context is not a regular file or directory", rel);
    }
    add_item(c, &it);
    return 0;
}

/* Expand a pattern over the context: every path whose components match (Go's filepath.Match per
 * component, as BuildKit), in order. */
static int glob_context(struct copy *c, int dirfd, const char *rel, const char *pattern,
                        char ***out, struct imgfs_err *err)
{
    size_t plen = strcspn(pattern, "/");
    cleanup_free char *part = strndup(pattern, plen);
    const char *rest = pattern[plen] ? pattern + plen + 1 : NULL;
    while (rest && *rest == '/')
        rest++;
    if (rest && !*rest)
        rest = NULL;
    int fd2 = dup(dirfd);
    DIR *d = fd2 >= 0 ? fdopendir(fd2) : NULL;
    if (!d) {
        if (fd2 >= 0)
            close(fd2);
        return 0;
    }
    char **names = NULL;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        if (fnmatch(part, de->d_name, 0) == 0)
            names = strv_append(names, de->d_name);
    }
    closedir(d);
    size_t n = strv_len(names);
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0 && strcmp(names[j - 1], names[j]) > 0; j--) {
            char *t = names[j];
            names[j] = names[j - 1];
            names[j - 1] = t;
        }
    int ret = 0;
    for (size_t i = 0; i < n && !ret; i++) {
        cleanup_free char *r = join(rel, names[i]);
        if (df_ignore_excluded(c->b->ignore, r))
            continue;
        if (!rest) {
            *out = strv_append(*out, r);
            continue;
        }
        int sub = sys_openat2(dirfd, names[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW,
                              RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS);
        if (sub < 0)
            continue;
        ret = glob_context(c, sub, r, rest, out, err);
        close(sub);
    }
    strv_free(names);
    return ret;
}

/* ---- items from another stage or image (its merged view) ---- */

static void entry_from_view(struct copy *c, const struct view_inode *in, struct layer_entry *e)
{
    memset(e, 0, sizeof *e);
    e->kind = layer_kind_from_mode(in->mode);
    if (!e->kind)
        e->kind = LAYER_REG; /* views hold only the types layers hold; never reached */
    e->mode = in->mode & 07777;
    e->uid = c->have_owner ? c->uid : in->uid;
    e->gid = c->have_owner ? c->gid : in->gid;
    if (c->have_mode && e->kind != LAYER_SYMLINK)
        e->mode = c->mode;
    e->mtime_sec = in->mtime_sec;
    e->mtime_nsec = in->mtime_nsec;
    if (c->clamp >= 0 && e->mtime_sec > c->clamp) {
        e->mtime_sec = c->clamp;
        e->mtime_nsec = 0;
    }
    e->size = e->kind == LAYER_REG ? in->size : 0;
    e->rdev_major = in->rdev_major;
    e->rdev_minor = in->rdev_minor;
}

static void walk_view(struct copy *c, uint32_t dir, const char *dst)
{
    for (uint32_t i = 0;; i++) {
        const struct view_dirent *de = view_dirent_at(c->from_v, dir, i);
        if (!de)
            break;
        const struct view_inode *in = view_inode(c->from_v, de->ino);
        if (!in)
            continue;
        cleanup_free char *name = strndup(view_string(c->from_v, de->name_off), de->name_len);
        struct item it = {.kind = SRC_VIEW, .ino = de->ino, .dst = join(dst, name)};
        entry_from_view(c, in, &it.e);
        if (S_ISLNK(in->mode))
            it.link = strndup(view_string(c->from_v, in->first), (size_t)in->size);
        add_item(c, &it);
        if (S_ISDIR(in->mode))
            walk_view(c, de->ino, it.dst);
    }
}

static void glob_view(struct copy *c, uint32_t dir, const char *rel, const char *pattern,
                      char ***out)
{
    size_t plen = strcspn(pattern, "/");
    cleanup_free char *part = strndup(pattern, plen);
    const char *rest = pattern[plen] ? pattern + plen + 1 : NULL;
    if (rest && !*rest)
        rest = NULL;
    for (uint32_t i = 0;; i++) {
        const struct view_dirent *de = view_dirent_at(c->from_v, dir, i);
        if (!de)
            break;
        cleanup_free char *name = strndup(view_string(c->from_v, de->name_off), de->name_len);
        if (fnmatch(part, name, 0))
            continue;
        cleanup_free char *r = join(rel, name);
        if (!rest)
            *out = strv_append(*out, r);
        else
            glob_view(c, de->ino, r, rest, out);
    }
}

static int source_view(struct copy *c, const char *rel, const char *dst, bool into_dir,
                       struct imgfs_err *err)
{
    cleanup_free char *abs = xasprintf("/%s", rel), *resolved = NULL;
    uint32_t ino;
    if (rootfs_resolve(c->from_v, abs, true, &resolved, &ino, err) < 0 || !ino)
        return fail(c, err, ENOENT,
                    "failed to compute cache key: failed to calculate checksum: \"/%s\": not "
                    "found",
                    rel);
    const struct view_inode *in = view_inode(c->from_v, ino);
    if (S_ISDIR(in->mode)) {
        cleanup_free char *dabs = xasprintf("/%s", dst), *dres = NULL;
        uint32_t dino;
        struct imgfs_err e2;
        if (*dst && rootfs_resolve(c->v, dabs, true, &dres, &dino, &e2) == 0 &&
            !dst_is_dir(c, dino)) {
            struct item it = {.kind = SRC_VIEW, .ino = ino, .dst = xstrdup(dst)};
            entry_from_view(c, in, &it.e);
            add_item(c, &it);
        }
        walk_view(c, ino, dst);
        return 0;
    }
    struct item it = {.kind = SRC_VIEW, .ino = ino};
    it.dst = into_dir ? join(dst, base_name(resolved)) : xstrdup(dst);
    entry_from_view(c, in, &it.e);
    add_item(c, &it);
    return 0;
}

/* ---- ADD: tars and URLs ---- */

/* Is the context file an archive libarchive can read (tar, any compression)? */
static bool is_archive(int fd)
{
    struct archive *a = archive_read_new();
    archive_read_support_filter_all(a);
    archive_read_support_format_tar(a);
    archive_read_support_format_gnutar(a);
    struct archive_entry *ae;
    bool ok = archive_read_open_fd(a, fd, 65536) == ARCHIVE_OK &&
              archive_read_next_header(a, &ae) == ARCHIVE_OK;
    archive_read_free(a);
    lseek(fd, 0, SEEK_SET);
    return ok;
}

static size_t curl_write(char *p, size_t sz, size_t n, void *ctx)
{
    struct buf *b = ctx;
    if (b->len + sz * n > (size_t)2 << 30)
        return 0;
    buf_append(b, p, sz * n);
    return sz * n;
}

static int fetch_url(struct copy *c, const char *url, struct buf *out, int64_t *mtime,
                     struct imgfs_err *err)
{
    CURL *h = curl_easy_init();
    if (!h)
        return fail(c, err, ENOMEM, "ADD %s: curl_easy_init failed", url);
    char ebuf[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(h, CURLOPT_FAILONERROR, 1L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, curl_write);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, out);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, ebuf);
    curl_easy_setopt(h, CURLOPT_FILETIME, 1L);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    CURLcode rc = curl_easy_perform(h);
    long ft = -1;
    curl_easy_getinfo(h, CURLINFO_FILETIME, &ft);
    curl_easy_cleanup(h);
    if (rc != CURLE_OK)
        return fail(c, err, EIO, "failed to load %s: %s", url,
                    *ebuf ? ebuf : curl_easy_strerror(rc));
    *mtime = ft > 0 ? ft : 0;
    return 0;
}

static int source_url(struct copy *c, const char *url, const char *dst, bool into_dir,
                      struct imgfs_err *err)
{
    struct buf *b = xcalloc(1, sizeof *b);
    c->blobs = xrealloc(c->blobs, (c->n_blobs + 1) * sizeof *c->blobs);
    c->blobs[c->n_blobs++] = b;
    int64_t mtime = 0;
    if (fetch_url(c, url, b, &mtime, err) < 0)
        return -1;
    const struct df_flag *ck = df_flag_find(c->ins, "checksum");
    if (ck && ck->value) {
        struct digest want, got;
        if (digest_parse(ck->value, false, &want) < 0)
            return fail(c, err, EINVAL, "invalid checksum digest format: %s", ck->value);
        digest_of(b->data, b->len, &got);
        if (!digest_equal(&want, &got)) {
            char gs[DIGEST_STR_SIZE];
            digest_str(&got, gs);
            return fail(c, err, EINVAL, "digest mismatch %s: %s", gs, ck->value);
        }
    }
    /* the file name: the URL's last path component */
    cleanup_free char *path = xstrdup(url);
    char *q = strpbrk(path + strcspn(path, "/") + 2, "?#");
    if (q)
        *q = 0;
    const char *name = base_name(path);
    if (into_dir && !*name)
        return fail(c, err, EINVAL, "cannot determine filename from url: %s", url);
    struct item it = {.kind = SRC_BYTES, .bytes = b};
    it.dst = into_dir ? join(dst, name) : xstrdup(dst);
    it.e.kind = LAYER_REG;
    it.e.mode = c->have_mode ? c->mode : 0600;
    it.e.uid = c->have_owner ? c->uid : 0;
    it.e.gid = c->have_owner ? c->gid : 0;
    it.e.mtime_sec = c->clamp >= 0 && mtime > c->clamp ? c->clamp : mtime;
    it.e.size = b->len;
    add_item(c, &it);
    return 0;
}

/* ---- the cache key ---- */

static int hash_content(struct copy *c, const struct item *it, struct digest_ctx *k,
                        struct imgfs_err *err)
{
    if (it->e.kind != LAYER_REG)
        return 0;
    struct digest_ctx *h = digest_ctx_new();
    int ret = 0;
    if (it->kind == SRC_CONTEXT || it->kind == SRC_TAR) {
        int fd =
            sys_openat2(c->b->context_fd, it->src, O_RDONLY, RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS);
        if (fd < 0) {
            ret = err_sys(err, errno, "`%s` in the context", it->src);
        } else {
            char buf[1 << 16];
            ssize_t n;
            while ((n = read(fd, buf, sizeof buf)) > 0)
                digest_ctx_update(h, buf, (size_t)n);
            if (n < 0)
                ret = err_sys(err, errno, "reading `%s` in the context", it->src);
            close(fd);
        }
    } else if (it->kind == SRC_VIEW) {
        /* the chunk digests name the content */
        const struct view_inode *in = view_inode(c->from_v, it->ino);
        for (uint32_t i = 0; in && i < in->count; i++) {
            const struct view_extent *x = &c->from_v->extents[in->first + i];
            digest_ctx_update(h, &x->offset, sizeof x->offset);
            digest_ctx_update(h, x->chunk.b, DIGEST_LEN);
        }
    } else {
        digest_ctx_update(h, it->bytes->data, it->bytes->len);
    }
    struct digest d;
    digest_ctx_final(h, &d);
    digest_ctx_free(h);
    key_digest(k, &d);
    return ret;
}

/* Every item into the key: path, kind, mode, owner, symlink target, content (never mtimes). */
static int key_items(struct copy *c, struct digest_ctx *k, struct imgfs_err *err)
{
    for (size_t i = 0; i < c->n_items; i++) {
        const struct item *it = &c->items[i];
        key_str(k, it->dst);
        uint32_t meta[4] = {it->e.kind | (it->kind == SRC_TAR ? 0x100u : 0), it->e.mode, it->e.uid,
                            it->e.gid};
        digest_ctx_update(k, meta, sizeof meta);
        key_str(k, it->link);
        if ((build_stopping(c->b) && build_stop_error(c->b, err) < 0) ||
            hash_content(c, it, k, err) < 0)
            return -1;
    }
    return 0;
}

/* ---- emitting ---- */

struct view_data {
    struct copy *c;
    const struct view_inode *in;
    uint32_t next;
};

static int view_data_next(void *ctx, const void **data, size_t *len, uint64_t *offset,
                          struct imgfs_err *err)
{
    struct view_data *vd = ctx;
    if (vd->next >= vd->in->count)
        return 0;
    const struct view_extent *x = &vd->c->from_v->extents[vd->in->first + vd->next++];
    if (store_chunk_get(vd->c->from_r, &x->chunk, false, data, len, err) < 0)
        return -1;
    *offset = x->offset;
    return 1;
}

/* A file of a lazily pulled image: its absent chunks fetched together (adjacent ones in one
 * request) before view_data_next reads them, not one request per chunk. */
static int view_data_ensure(struct copy *c, const struct view_inode *in, struct imgfs_err *err)
{
    enum { GROUP = 256 }; /* ~16 MiB of chunks per fetch, well within its time budget */
    struct digest chunks[GROUP];
    for (uint32_t i = 0; i < in->count;) {
        size_t n = 0;
        for (; n < GROUP && i < in->count; i++)
            chunks[n++] = c->from_v->extents[in->first + i].chunk;
        if (store_chunks_ensure(c->b->s, chunks, n, err) < 0)
            return -1;
    }
    return 0;
}

struct bytes_data {
    struct buf *b;
    bool done;
};

static int bytes_next(void *ctx, const void **data, size_t *len, uint64_t *offset,
                      struct imgfs_err *err)
{
    (void)err;
    struct bytes_data *bd = ctx;
    if (bd->done || !bd->b->len)
        return 0;
    bd->done = true;
    *data = bd->b->data;
    *len = bd->b->len;
    *offset = 0;
    return 1;
}

struct tar_data {
    struct archive *a;
};

static int tar_next(void *ctx, const void **data, size_t *len, uint64_t *offset,
                    struct imgfs_err *err)
{
    struct tar_data *td = ctx;
    la_int64_t off;
    int rc = archive_read_data_block(td->a, data, len, &off);
    if (rc == ARCHIVE_EOF)
        return 0;
    if (rc != ARCHIVE_OK)
        return err_set(err, EIO, "reading the archive: %s", archive_error_string(td->a));
    *offset = (uint64_t)off;
    return 1;
}

/* ADD of a local archive: its entries under dst (owners as in the archive unless --chown). */
static int emit_tar(struct copy *c, struct layer_builder *lb, const struct item *it,
                    struct imgfs_err *err)
{
    int fd =
        sys_openat2(c->b->context_fd, it->src, O_RDONLY, RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS);
    if (fd < 0)
        return err_sys(err, errno, "`%s` in the context", it->src);
    struct archive *a = archive_read_new();
    archive_read_support_filter_all(a);
    archive_read_support_format_tar(a);
    archive_read_support_format_gnutar(a);
    int ret = 0;
    if (archive_read_open_fd(a, fd, 1 << 16) != ARCHIVE_OK) {
        ret = err_set(err, EIO, "`%s`: %s", it->src, archive_error_string(a));
        goto out;
    }
    struct archive_entry *ae;
    int rc;
    while ((rc = archive_read_next_header(a, &ae)) == ARCHIVE_OK) {
        cleanup_free char *name = NULL;
        if (clean_rel(archive_entry_pathname(ae), &name) < 0) {
            ret = fail(c, err, EINVAL, "`%s`: member `%s` escapes the destination", it->src,
                       archive_entry_pathname(ae));
            goto out;
        }
        cleanup_free char *path = join(it->dst, name);
        struct layer_entry e = {0};
        const struct stat *st = archive_entry_stat(ae);
        struct imgfs_err e2;
        const char *hl = archive_entry_hardlink(ae);
        cleanup_free char *hlpath = NULL;
        if (layer_entry_from_stat(st, &e, &e2) < 0 && !hl)
            continue;
        e.path = path;
        if (hl) {
            cleanup_free char *t = NULL;
            if (clean_rel(hl, &t) < 0) {
                ret = fail(c, err, EINVAL, "`%s`: link `%s` escapes", it->src, hl);
                goto out;
            }
            hlpath = join(it->dst, t);
            e.kind = LAYER_HARDLINK;
            e.link = hlpath;
            e.size = 0;
        } else if (e.kind == LAYER_SYMLINK) {
            e.link = archive_entry_symlink(ae);
        }
        if (c->have_owner) {
            e.uid = c->uid;
            e.gid = c->gid;
        }
        if (c->clamp >= 0 && e.mtime_sec > c->clamp)
            e.mtime_sec = c->clamp;
        struct tar_data td = {.a = a};
        if (e.kind == LAYER_REG && e.size)
            ret = layer_builder_add_data(lb, &e, tar_next, &td, err);
        else
            ret = layer_builder_add(lb, &e, err);
        if (ret < 0)
            goto out;
    }
    if (rc != ARCHIVE_EOF)
        ret = err_set(err, EIO, "`%s`: %s", it->src, archive_error_string(a));
out:
    archive_read_free(a);
    close(fd);
    return ret;
}

static int emit(struct copy *c, struct layer_builder *lb, const struct item *it,
                struct imgfs_err *err)
{
    struct layer_entry e = it->e;
    e.path = it->dst;
    e.link = it->link;
    if (it->kind == SRC_TAR)
        return emit_tar(c, lb, it, err);
    if (e.kind != LAYER_REG || !e.size)
        return layer_builder_add(lb, &e, err);
    if (it->kind == SRC_CONTEXT) {
        int fd =
            sys_openat2(c->b->context_fd, it->src, O_RDONLY, RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS);
        if (fd < 0)
            return err_sys(err, errno, "`%s` in the context", it->src);
        int rc = layer_builder_add_fd(lb, &e, fd, err);
        close(fd);
        return rc;
    }
    if (it->kind == SRC_VIEW) {
        struct view_data vd = {.c = c, .in = view_inode(c->from_v, it->ino)};
        if (view_data_ensure(c, vd.in, err) < 0)
            return -1;
        return layer_builder_add_data(lb, &e, view_data_next, &vd, err);
    }
    struct bytes_data bd = {.b = it->bytes};
    return layer_builder_add_data(lb, &e, bytes_next, &bd, err);
}

/* ---- the step ---- */

static int parse_flags(struct copy *c, struct imgfs_err *err)
{
    struct bstate *st = &c->sg->st;
    for (size_t i = 0; i < c->ins->n_flags; i++) {
        const struct df_flag *f = &c->ins->flags[i];
        if (!strcmp(f->name, "exclude") && f->value) {
            cleanup_free char *v = NULL;
            if (build_expand(c->b, st, c->ins, f->value, &v, err) < 0)
                return -1;
            if (!c->exclude && df_ignore_parse("--exclude", "", 0, &c->exclude, err) < 0)
                return -1;
            if (df_ignore_add(c->exclude, v, err) < 0)
                return -1;
        }
    }
    const struct df_flag *f = df_flag_find(c->ins, "chmod");
    if (f && f->value && *f->value) {
        cleanup_free char *v = NULL;
        if (build_expand(c->b, st, c->ins, f->value, &v, err) < 0)
            return -1;
        char *end;
        unsigned long m = strtoul(v, &end, 8);
        if (*end || !*v || m > 07777)
            return fail(c, err, EINVAL, "invalid chmod parameter: %s (want an octal mode)", v);
        c->have_mode = true;
        c->mode = (uint32_t)m;
    }
    f = df_flag_find(c->ins, "parents");
    c->parents = f && (!f->value || !strcmp(f->value, "true"));
    f = df_flag_find(c->ins, "link");
    c->link = f && (!f->value || !strcmp(f->value, "true"));
    return 0;
}

static int resolve_owner(struct copy *c, struct imgfs_err *err)
{
    const struct df_flag *f = df_flag_find(c->ins, "chown");
    if (!f || !f->value || !*f->value)
        return 0;
    cleanup_free char *v = NULL;
    if (build_expand(c->b, &c->sg->st, c->ins, f->value, &v, err) < 0)
        return -1;
    if (rootfs_resolve_owner(c->r, c->v, v, &c->uid, &c->gid, err) < 0)
        return fail(c, err, err->code, "--chown=%s: %s", v, err->msg);
    c->have_owner = true;
    return 0;
}

/* Missing parents of the destination: directories owned by the --chown owner (or root). */
static void add_parents(struct copy *c, const char *dst, struct item **out, size_t *n)
{
    cleanup_free char *p = xstrdup(dst);
    size_t len = strlen(p);
    for (size_t i = 0; i <= len; i++) {
        if (p[i] != '/' && p[i])
            continue;
        char saved = p[i];
        p[i] = 0;
        if (*p) {
            cleanup_free char *abs = xasprintf("/%s", p), *res = NULL;
            uint32_t ino;
            struct imgfs_err e2;
            if (rootfs_resolve(c->v, abs, true, &res, &ino, &e2) == 0 && !ino) {
                *out = xrealloc(*out, (*n + 1) * sizeof **out);
                struct item it = {.kind = SRC_BYTES, .dst = xstrdup(p)};
                it.e.kind = LAYER_DIR;
                it.e.mode = 0755;
                it.e.uid = c->have_owner ? c->uid : 0;
                it.e.gid = c->have_owner ? c->gid : 0;
                it.e.mtime_sec = c->b->now;
                (*out)[(*n)++] = it;
            }
        }
        p[i] = saved;
    }
}

static void copy_free(struct copy *c)
{
    for (size_t i = 0; i < c->n_items; i++) {
        free(c->items[i].src);
        free(c->items[i].dst);
        free(c->items[i].link);
    }
    free(c->items);
    for (size_t i = 0; i < c->n_blobs; i++) {
        buf_free(c->blobs[i]);
        free(c->blobs[i]);
    }
    free(c->blobs);
    df_ignore_free(c->exclude);
    free(c->from_copy);
    if (c->from_r && c->from_r != c->r)
        store_read_end(c->from_r);
    if (c->r)
        store_read_end(c->r);
}

/* After a --link step the filesystem is the parent's and the layer: the next step's chain names
 * both (the key named only the layer). */
static void link_chain(struct bstate *st, const struct digest *parent, const struct digest *key)
{
    struct digest_ctx *k = digest_ctx_new();
    key_str(k, "link-chain");
    key_digest(k, parent);
    key_digest(k, key);
    digest_ctx_final(k, &st->chain);
    digest_ctx_free(k);
}

/* --from: a stage (built first) or an image in the store. */
static int open_from(struct copy *c, const char *ref, struct imgfs_err *err)
{
    struct stage *dep = build_find_stage(c->b, ref);
    if (dep && dep != c->sg) {
        if (build_stage(c->b, dep, err) < 0)
            return -1;
        /* a snapshot that has the stage's layers */
        if (store_read_begin(c->b->s, &c->from_r, err) < 0)
            return -1;
        const struct view *v;
        if (stage_view(c->b, dep, c->from_r, &v, err) < 0)
            return -1;
        c->from_v = v;
        return 0;
    }
    if (dep == c->sg)
        return fail(c, err, EINVAL, "circular dependency detected on stage: %s", ref);
    /* an image: in the store, or pulled as FROM pulls */
    struct image img;
    if (build_load_image(c->b, ref, c->ins, &img, err) < 0) {
        if (err->code == ENOENT)
            return fail(c, err, ENOENT, "--from=%s: no such stage, or image in the store", ref);
        return -1;
    }
    if (store_read_begin(c->b->s, &c->from_r, err) < 0) {
        image_free(&img);
        return -1;
    }
    const void *data;
    size_t len;
    int rc = store_get(c->from_r, STORE_VIEW, &img.digest, &data, &len, err);
    image_free(&img);
    if (rc < 0 || view_open_copy(data, len, &c->from_copy, &c->from_view, err) < 0)
        return -1;
    c->from_v = &c->from_view;
    return 0;
}

int copy_step(struct build *b, struct stage *sg, const struct df_instruction *ins,
              struct imgfs_err *err)
{
    struct copy c = {.b = b, .sg = sg, .ins = ins, .add = ins->keyword == DF_ADD};
    struct bstate *st = &sg->st;
    c.clamp = b->o->source_date_epoch;
    struct item *parents = NULL;
    size_t n_parents = 0;
    char **words = NULL;
    struct store_batch *bt = NULL;
    struct layer_builder *lb = NULL;
    struct layer_build_result res = {0};
    struct view empty_view; /* --link: where the destination is resolved */
    struct buf empty = {0};
    char **sources = NULL;
    char *from_ref = NULL, *dest = NULL, *abs = NULL, *dst = NULL, *created_by = NULL;
    char *what = NULL;
    int ret = -1;
    const char *kw = df_keyword_name(ins->keyword);

    if (ins->n_args < 2) {
        fail(&c, err, EINVAL,
             "%s requires at least two arguments, but only one was provided. "
             "Destination could not be determined",
             kw);
        goto out;
    }
    if (store_read_begin(b->s, &c.r, err) < 0 || state_view(b, st, c.r, &c.v, err) < 0)
        goto out;
    if (parse_flags(&c, err) < 0 || resolve_owner(&c, err) < 0)
        goto out;
    /* --link (BuildKit): the files are copied as onto an empty tree — the destination resolved
     * there (no symlink or directory of the parent counts), every parent directory in the layer
     * — so the layer is the same whatever the parent holds; only --chown names were read from
     * the parent, above */
    if (c.link) {
        if (view_build(NULL, 0, &empty, err) < 0 ||
            view_open(empty.data, empty.len, &empty_view, err) < 0)
            goto out;
        c.v = &empty_view;
    }
    const struct df_flag *from = df_flag_find(ins, "from");
    if (from && from->value) {
        if (build_expand(b, st, ins, from->value, &from_ref, err) < 0 ||
            open_from(&c, from_ref, err) < 0)
            goto out;
    }

    /* destination: relative to WORKDIR; a trailing slash (or ".") means a directory */
    if (build_expand(b, st, ins, ins->args[ins->n_args - 1].s, &dest, err) < 0)
        goto out;
    const char *wd =
        json_string_value(json_object_get(json_object_get(st->config, "config"), "WorkingDir"));
    bool slash = !*dest || dest[strlen(dest) - 1] == '/' || !strcmp(dest, ".") ||
                 (strlen(dest) >= 2 && !strcmp(dest + strlen(dest) - 2, "/."));
    abs = dest[0] == '/' ? xstrdup(dest) : xasprintf("%s/%s", wd && *wd ? wd : "", dest);
    uint32_t dino;
    if (resolve_dst(&c, abs, true, &dst, &dino, err) < 0)
        goto out;
    bool into_dir = slash || dst_is_dir(&c, dino);

    /* sources: expanded words, wildcards matched */
    size_t n_src = ins->n_args - 1;
    bool many = n_src > 1;
    for (size_t i = 0; i < n_src; i++) {
        const char *w = ins->args[i].s;
        const struct df_heredoc *hd = NULL;
        for (size_t k = 0; k < ins->n_heredocs && !ins->json; k++)
            if (w[0] == '<' && w[1] == '<' && strstr(w, ins->heredocs[k].name))
                hd = &ins->heredocs[k];
        if (hd) {
            struct buf *bb = xcalloc(1, sizeof *bb);
            c.blobs = xrealloc(c.blobs, (c.n_blobs + 1) * sizeof *c.blobs);
            c.blobs[c.n_blobs++] = bb;
            if (hd->expand) {
                cleanup_free char *x = NULL;
                char **env = state_expand_env(st);
                struct df_vars used = {0};
                int rc = df_expand_word(hd->content, b->file->escape,
                                        DF_EXPAND_NO_QUOTES | DF_EXPAND_SKIP_UNSET, df_lookup_envv,
                                        env, &x, &used, err);
                strv_free(env);
                df_vars_free(&used);
                if (rc < 0)
                    goto out;
                buf_append(bb, x, strlen(x));
            } else {
                buf_append(bb, hd->content, strlen(hd->content));
            }
            struct item it = {.kind = SRC_BYTES, .bytes = bb};
            it.dst = into_dir ? join(dst, hd->name) : xstrdup(dst);
            it.e.kind = LAYER_REG;
            it.e.mode = c.have_mode ? c.mode : 0644;
            it.e.uid = c.have_owner ? c.uid : 0;
            it.e.gid = c.have_owner ? c.gid : 0;
            it.e.mtime_sec = b->now;
            it.e.size = bb->len;
            add_item(&c, &it);
            continue;
        }
        cleanup_free char *x = NULL;
        if (build_expand(b, st, ins, w, &x, err) < 0)
            goto out;
        if (c.add && !from_ref && (!strncmp(x, "http://", 7) || !strncmp(x, "https://", 8))) {
            if (many && !slash) {
                fail(&c, err, EINVAL,
                     "When using %s with more than one source file, the "
                     "destination must be a directory and end with a /",
                     kw);
                goto out;
            }
            if (source_url(&c, x, dst, into_dir, err) < 0)
                goto out;
            continue;
        }
        if (!strncmp(x, "git@", 4) || strstr(x, ".git#")) {
            fail(&c, err, ENOTSUP, "%s of a git repository is not supported", kw);
            goto out;
        }
        cleanup_free char *rel = NULL;
        if (clean_rel(x, &rel) < 0) {
            fail(&c, err, EPERM, "forbidden path outside the build context: %s", x);
            goto out;
        }
        strv_free(sources);
        sources = NULL;
        if (has_glob(rel)) {
            many = true;
            if (c.from_v)
                glob_view(&c, 1, "", rel, &sources);
            else if (b->context_fd >= 0 &&
                     glob_context(&c, b->context_fd, "", rel, &sources, err) < 0)
                goto out;
        } else {
            sources = strv_append(NULL, rel);
        }
        if (many && !slash && (n_src > 1 || strv_len(sources) > 1) && !dst_is_dir(&c, dino)) {
            fail(&c, err, EINVAL,
                 "When using %s with more than one source file, the "
                 "destination must be a directory and end with a /",
                 kw);
            goto out;
        }
        for (size_t k = 0; sources && sources[k]; k++) {
            bool dir_dst = into_dir || many;
            cleanup_free char *d = c.parents ? join(dst, sources[k]) : xstrdup(dst);
            if (c.parents) {
                /* --parents: the source's path is kept; its last part is the name */
                char *sl = strrchr(d, '/');
                if (sl && strcmp(d, dst))
                    *sl = 0;
                else if (!sl) {
                    free(d);
                    d = xstrdup(dst);
                }
            }
            int rc;
            if (c.from_v) {
                rc = source_view(&c, sources[k], d, dir_dst || c.parents, err);
            } else if (c.add) {
                /* a local archive is extracted; anything else copied */
                int fd = b->context_fd >= 0 && *sources[k]
                             ? sys_openat2(b->context_fd, sources[k], O_RDONLY, RESOLVE_BENEATH)
                             : -1;
                struct stat sst;
                if (fd >= 0 && fstat(fd, &sst) == 0 && S_ISREG(sst.st_mode) && is_archive(fd)) {
                    close(fd);
                    struct item it = {
                        .kind = SRC_TAR, .src = xstrdup(sources[k]), .dst = xstrdup(d)};
                    it.e.kind = LAYER_REG; /* hashed as a file for the cache key */
                    it.e.size = (uint64_t)sst.st_size;
                    add_item(&c, &it);
                    rc = 0;
                } else {
                    if (fd >= 0)
                        close(fd);
                    rc = source_context(&c, sources[k], d, dir_dst || c.parents, err);
                }
            } else {
                rc = source_context(&c, sources[k], d, dir_dst || c.parents, err);
            }
            if (rc < 0)
                goto out;
        }
    }

    /* the key: parent chain + instruction + every item (no mtimes) */
    /* --link: the parent is not in the key, the layer is reused on any parent */
    struct digest key, parent_chain = st->chain;
    struct digest_ctx *k = digest_ctx_new();
    key_str(k, c.link ? "copy-link-v1" : "copy-v1");
    if (!c.link)
        key_digest(k, &st->chain);
    key_str(k, kw);
    key_str(k, dst);
    key_str(k, c.have_owner ? "owner" : "");
    if (key_items(&c, k, err) < 0) {
        digest_ctx_free(k);
        goto out;
    }
    digest_ctx_final(k, &key);
    digest_ctx_free(k);

    /* history text, as BuildKit writes it */
    created_by = xasprintf("%s %s # buildkit", kw, ins->original + strlen(ins->keyword_text) + 1);
    bool hit;
    if (cache_lookup(b, st, &key, &hit, err) < 0)
        goto out;
    if (hit) {
        if (c.link)
            link_chain(st, &parent_chain, &key);
        state_history(st, created_by, false, st->time);
        ret = 0;
        goto out;
    }
    add_parents(&c, dst, &parents, &n_parents);
    if (store_batch_begin(b->s, &bt, err) < 0)
        goto out;
    what = xasprintf("%s:%u", b->file->name, ins->start_line);
    if (layer_builder_open(bt, what, &lb, err) < 0)
        goto out;
    for (size_t i = 0; i < n_parents; i++)
        if (emit(&c, lb, &parents[i], err) < 0)
            goto out;
    for (size_t i = 0; i < c.n_items; i++)
        if (emit(&c, lb, &c.items[i], err) < 0) {
            err_ctx(err, "%s:%u: %s", b->file->name, ins->start_line, kw);
            goto out;
        }
    if (layer_builder_finish(lb, &res, err) < 0)
        goto out;
    if (cache_record(b, bt, st, &key, &res.diff_id, res.size, err) < 0)
        goto out;
    if (c.link)
        link_chain(st, &parent_chain, &key);
    ret = store_batch_commit(bt, err);
    bt = NULL;
    if (ret == 0)
        state_history(st, created_by, false, st->time);
out:
    buf_free(&empty);
    layer_builder_free(lb);
    store_batch_abort(bt);
    buf_free(&res.table);
    for (size_t i = 0; i < n_parents; i++)
        free(parents[i].dst);
    free(parents);
    strv_free(sources);
    df_words_free(words);
    copy_free(&c);
    free(from_ref);
    free(dest);
    free(abs);
    free(dst);
    free(created_by);
    free(what);
    return ret;
}

/* The items of a context walk written under directory fd `dfd` (at their dst paths) as the
 * context is sent: owners 0:0 (the items'), modes and times kept, symlinks as symlinks; devices
 * and fifos left out, as the rw copy leaves them. Directories get their times last, once their
 * entries are written. */
static int items_write(struct copy *c, int dfd, struct imgfs_err *err)
{
    for (size_t i = 0; i < c->n_items; i++) {
        const struct item *it = &c->items[i];
        const char *p = it->dst;
        if (it->e.kind == LAYER_DIR) {
            if (mkdirat(dfd, p, 0700) < 0)
                return err_sys(err, errno, "making `%s`", p);
        } else if (it->e.kind == LAYER_SYMLINK) {
            if (symlinkat(it->link, dfd, p) < 0)
                return err_sys(err, errno, "making the symlink `%s`", p);
        } else if (it->e.kind == LAYER_REG) {
            cleanup_close int in = sys_openat2(c->b->context_fd, it->src, O_RDONLY,
                                               RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS);
            if (in < 0)
                return err_sys(err, errno, "`%s` in the context", it->src);
            cleanup_close int out =
                openat(dfd, p, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
            if (out < 0)
                return err_sys(err, errno, "creating `%s`", p);
            for (;;) {
                ssize_t n = sendfile(out, in, NULL, 1 << 20);
                if (n < 0 && errno == EINTR)
                    continue;
                if (n < 0)
                    return err_sys(err, errno, "copying `%s` of the context", it->src);
                if (n == 0)
                    break;
            }
        } else {
            continue;
        }
        if (fchownat(dfd, p, it->e.uid, it->e.gid, AT_SYMLINK_NOFOLLOW) < 0 ||
            (it->e.kind != LAYER_SYMLINK && fchmodat(dfd, p, it->e.mode & 07777, 0) < 0))
            return err_sys(err, errno, "setting the owner and mode of `%s`", p);
    }
    for (size_t i = c->n_items; i-- > 0;) {
        const struct item *it = &c->items[i];
        if (it->e.kind != LAYER_DIR && it->e.kind != LAYER_REG && it->e.kind != LAYER_SYMLINK)
            continue;
        struct timespec ts[2] = {{.tv_sec = it->e.mtime_sec, .tv_nsec = it->e.mtime_nsec},
                                 {.tv_sec = it->e.mtime_sec, .tv_nsec = it->e.mtime_nsec}};
        if (utimensat(dfd, it->dst, ts, AT_SYMLINK_NOFOLLOW) < 0)
            return err_sys(err, errno, "setting the times of `%s`", it->dst);
    }
    return 0;
}

int context_bind(struct build *b, struct stage *sg, const struct df_instruction *ins,
                 const char *rel, struct digest *out, char *dir, size_t dir_size, int *lock_fd,
                 struct imgfs_err *err)
{
    struct copy c = {.b = b, .sg = sg, .ins = ins, .clamp = -1};
    struct buf empty = {0};
    struct view empty_view; /* "src" (the source's own entry) resolves to nothing there */
    int ret = -1;
    dir[0] = 0;
    *lock_fd = -1;
    struct digest_ctx *k = digest_ctx_new();
    key_str(k, "context-v2");
    if (view_build(NULL, 0, &empty, err) < 0 ||
        view_open(empty.data, empty.len, &empty_view, err) < 0)
        goto out;
    c.v = &empty_view;
    if (source_context(&c, rel, "src", false, err) < 0 || key_items(&c, k, err) < 0)
        goto out;
    digest_ctx_final(k, out);
    if (c.skipped || c.host_owner) {
        /* the tree BuildKit would send, in a step directory of its own (swept after a crash) */
        if (build_step_dir(b, dir, dir_size, lock_fd, err) < 0)
            goto out;
        /* the source's own entry is the first item, "src": a directory or the file */
        cleanup_close int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
            err_sys(err, errno, "`%s`", dir);
        else if (items_write(&c, dfd, err) == 0)
            ret = 0;
        goto out;
    }
    ret = 0;
out:
    digest_ctx_free(k);
    buf_free(&empty);
    copy_free(&c);
    return ret;
}

/* WORKDIR: the directory is made (with the USER's owner, as BuildKit) when the image lacks it. */
int workdir_step(struct build *b, struct stage *sg, const struct df_instruction *ins,
                 const char *dir, struct imgfs_err *err)
{
    struct bstate *st = &sg->st;
    struct copy c = {.b = b, .sg = sg, .ins = ins};
    struct store_batch *bt = NULL;
    struct layer_builder *lb = NULL;
    struct layer_build_result res = {0};
    struct item *parents = NULL;
    size_t n_parents = 0;
    int ret = -1;
    cleanup_free char *created_by = xasprintf("WORKDIR %s", dir);
    cleanup_free char *res_path = NULL;
    const char *user =
        json_string_value(json_object_get(json_object_get(st->config, "config"), "User"));
    /* the key needs no tree: the chain names it, and with it where `dir` leads and who USER is;
     * so a cached WORKDIR (made or found) costs no merge of the layers */
    struct digest key;
    struct digest_ctx *k = digest_ctx_new();
    key_str(k, "workdir-v2");
    key_digest(k, &st->chain);
    key_str(k, dir);
    key_str(k, user && *user ? user : "");
    digest_ctx_final(k, &key);
    digest_ctx_free(k);
    bool hit;
    if (cache_lookup(b, st, &key, &hit, err) < 0)
        goto out;
    if (hit) {
        state_history(st, created_by, st->step_empty, st->time);
        ret = 0;
        goto out;
    }
    if (store_read_begin(b->s, &c.r, err) < 0 || state_view(b, st, c.r, &c.v, err) < 0)
        goto out;
    uint32_t ino;
    if (resolve_dst(&c, dir, true, &res_path, &ino, err) < 0)
        goto out;
    if (ino && !dst_is_dir(&c, ino)) {
        fail(&c, err, ENOTDIR, "WORKDIR %s: not a directory in the image", dir);
        goto out;
    }
    if (!ino && user && *user) {
        if (rootfs_resolve_owner(c.r, c.v, user, &c.uid, &c.gid, err) < 0) {
            fail(&c, err, err->code, "WORKDIR %s: %s", dir, err->msg);
            goto out;
        }
        c.have_owner = true;
    }
    if (store_batch_begin(b->s, &bt, err) < 0)
        goto out;
    if (ino) {
        /* there already: no layer, and the cache says so next time */
        if (cache_record(b, bt, st, &key, NULL, 0, err) < 0)
            goto out;
    } else {
        add_parents(&c, res_path, &parents, &n_parents);
        if (layer_builder_open(bt, created_by, &lb, err) < 0)
            goto out;
        for (size_t i = 0; i < n_parents; i++)
            if (emit(&c, lb, &parents[i], err) < 0)
                goto out;
        if (layer_builder_finish(lb, &res, err) < 0 ||
            cache_record(b, bt, st, &key, &res.diff_id, res.size, err) < 0)
            goto out;
    }
    int rc = store_batch_commit(bt, err);
    bt = NULL;
    if (rc < 0)
        goto out;
    state_history(st, created_by, ino != 0, st->time);
    ret = 0;
out:
    layer_builder_free(lb);
    store_batch_abort(bt);
    buf_free(&res.table);
    for (size_t i = 0; i < n_parents; i++)
        free(parents[i].dst);
    free(parents);
    copy_free(&c);
    return ret;
}
