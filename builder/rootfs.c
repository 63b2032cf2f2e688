/* rootfs.c — paths and files inside an image, from its merged view: nothing in an image is
 * trusted, so symlinks are resolved here under the image's root and never on the host. */
#include "../fs/store.h"
#include "internal.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#define MAX_LINKS 40

/* The components still to walk, as one string consumed from the front. */
struct walk {
    char *rest;     /* remaining path, components separated by '/' */
    char **parts;   /* resolved components so far */
    uint32_t *inos; /* inode of each (0 once missing) */
    size_t n, cap;
};

static void walk_push(struct walk *w, const char *name, size_t len, uint32_t ino)
{
    if (w->n == w->cap) {
        w->cap = w->cap ? w->cap * 2 : 16;
        w->parts = xrealloc(w->parts, w->cap * sizeof *w->parts);
        w->inos = xrealloc(w->inos, w->cap * sizeof *w->inos);
    }
    w->parts[w->n] = strndup(name, len);
    w->inos[w->n++] = ino;
}

static void walk_pop(struct walk *w)
{
    if (w->n)
        free(w->parts[--w->n]);
}

static void walk_free(struct walk *w)
{
    while (w->n)
        walk_pop(w);
    free(w->parts);
    free(w->inos);
    free(w->rest);
}

int rootfs_resolve(const struct view *v, const char *path, bool follow_last, char **out,
                   uint32_t *ino_out, struct imgfs_err *err)
{
    struct walk w = {.rest = xstrdup(path)};
    int links = 0, ret = -1;
    size_t off = 0;
    for (;;) {
        char *s = w.rest + off;
        while (*s == '/')
            s++;
        if (!*s)
            break;
        size_t len = strcspn(s, "/");
        bool last = s[len] == 0 || !s[len + strspn(s + len, "/")];
        off = (size_t)(s - w.rest) + len;
        if (len == 1 && s[0] == '.')
            continue;
        if (len == 2 && s[0] == '.' && s[1] == '.') {
            walk_pop(&w);
            continue;
        }
        uint32_t dir = w.n ? w.inos[w.n - 1] : 1;
        uint32_t ino = dir ? view_lookup(v, dir, s, len) : 0;
        const struct view_inode *in = ino ? view_inode(v, ino) : NULL;
        if (dir && !ino) {
            const struct view_inode *d = view_inode(v, dir);
            if (d && !S_ISDIR(d->mode)) {
                err_set(err, ENOTDIR, "`/%.*s` in the image is not a directory", (int)(off - len),
                        w.rest);
                goto out;
            }
        }
        if (in && S_ISLNK(in->mode) && (!last || follow_last)) {
            if (++links > MAX_LINKS) {
                err_set(err, ELOOP, "too many symlinks resolving `%s` in the image", path);
                goto out;
            }
            const char *target = view_string(v, in->first);
            size_t tlen = (size_t)in->size;
            /* replace what was walked of this component by the target */
            char *next = xasprintf("%.*s/%s", (int)tlen, target, w.rest + off);
            free(w.rest);
            w.rest = next;
            off = 0;
            if (tlen && target[0] == '/')
                while (w.n)
                    walk_pop(&w);
            continue;
        }
        walk_push(&w, s, len, ino);
    }
    struct buf b = {0};
    for (size_t i = 0; i < w.n; i++) {
        if (i)
            buf_append(&b, "/", 1);
        buf_append(&b, w.parts[i], strlen(w.parts[i]));
    }
    buf_append(&b, "", 1);
    *out = (char *)b.data;
    *ino_out = w.n ? w.inos[w.n - 1] : 1;
    ret = 0;
out:
    walk_free(&w);
    return ret;
}

int rootfs_read_file(struct store_read *r, const struct view *v, const char *path, size_t limit,
                     struct buf *out, struct imgfs_err *err)
{
    cleanup_free char *resolved = NULL;
    uint32_t ino;
    if (rootfs_resolve(v, path, true, &resolved, &ino, err) < 0)
        return -1;
    const struct view_inode *in = ino ? view_inode(v, ino) : NULL;
    if (!in)
        return err_set(err, ENOENT, "`%s` is not in the image", path);
    if (!S_ISREG(in->mode))
        return err_set(err, EINVAL, "`%s` in the image is not a regular file", path);
    if (in->size > limit)
        return err_set(err, EFBIG, "`%s` in the image is larger than %zu bytes", path, limit);
    buf_reserve(out, (size_t)in->size);
    memset(out->data + out->len, 0, (size_t)in->size);
    for (uint32_t i = 0; i < in->count; i++) {
        const struct view_extent *x = &v->extents[in->first + i];
        const void *data;
        size_t len;
        if (store_chunk_get(r, &x->chunk, false, &data, &len, err) < 0)
            return err_ctx(err, "reading `%s` in the image", path);
        if (x->offset + len > in->size || len != x->length)
            return err_set(err, EIO, "`%s` in the image has a bad extent", path);
        memcpy(out->data + out->len + x->offset, data, len);
    }
    out->len += (size_t)in->size;
    return 0;
}

static bool all_digits(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if (!isdigit((unsigned char)*s))
            return false;
    return true;
}

/* Find `name` in a passwd- or group-style file: field 0 is the name, field 2 the id; for passwd
 * field 3 (the primary group) goes to *gid. */
static bool db_lookup(const struct buf *file, const char *name, uint32_t *id, uint32_t *gid)
{
    const char *p = (const char *)file->data, *end = p + file->len;
    size_t nlen = strlen(name);
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        if ((size_t)(le - p) > nlen && !memcmp(p, name, nlen) && p[nlen] == ':') {
            char line[1024];
            snprintf(line, sizeof line, "%.*s", (int)(le - p), p);
            char *f[5] = {0};
            char *save = line;
            for (int i = 0; i < 5; i++)
                f[i] = strsep(&save, ":");
            if (f[2] && all_digits(f[2])) {
                *id = (uint32_t)strtoul(f[2], NULL, 10);
                if (gid)
                    *gid = f[3] && all_digits(f[3]) ? (uint32_t)strtoul(f[3], NULL, 10) : *id;
                return true;
            }
        }
        p = le + 1;
    }
    return false;
}

int rootfs_resolve_owner(struct store_read *r, const struct view *v, const char *spec,
                         uint32_t *uid, uint32_t *gid, struct imgfs_err *err)
{
    cleanup_free char *copy = xstrdup(spec);
    char *group = strchr(copy, ':');
    if (group)
        *group++ = 0;
    const char *user = copy;
    if (!*user)
        return err_set(err, EINVAL, "bad owner `%s`: no user", spec);
    struct buf passwd = {0}, groups = {0};
    struct imgfs_err ignored;
    int ret = -1;
    if (all_digits(user)) {
        *uid = (uint32_t)strtoul(user, NULL, 10);
        *gid = *uid;
    } else {
        if (rootfs_read_file(r, v, "/etc/passwd", 4 << 20, &passwd, &ignored) < 0 ||
            !db_lookup(&passwd, user, uid, gid)) {
            err_set(err, ENOENT, "unable to find user %s: no matching entries in passwd file",
                    user);
            goto out;
        }
    }
    if (group && *group) {
        if (all_digits(group)) {
            *gid = (uint32_t)strtoul(group, NULL, 10);
        } else if (rootfs_read_file(r, v, "/etc/group", 4 << 20, &groups, &ignored) < 0 ||
                   !db_lookup(&groups, group, gid, NULL)) {
            err_set(err, ENOENT, "unable to find group %s: no matching entries in group file",
                    group);
            goto out;
        }
    }
    ret = 0;
out:
    buf_free(&passwd);
    buf_free(&groups);
    return ret;
}
