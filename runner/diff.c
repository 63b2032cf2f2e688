/* diff.c — a container's changes to its image (`docker diff`): its writable layer (the overlay's
 * upper directory) walked against the image's stored view, which says what the image has. */
#include "ctr_internal.h"
#include "../fs/store.h"
#include "../fs/view.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>

struct diff_walk {
    const struct view *v;
    char **lines; /* "K /path", in walk order; NULL: a slot left for a directory */
    size_t n;
    struct imgfs_err *err;
};

static void add(struct diff_walk *w, char *line)
{
    w->lines = xrealloc(w->lines, (w->n + 1) * sizeof *w->lines);
    w->lines[w->n++] = line;
}

static bool runner_mount_point(const char *rel)
{
    for (size_t i = 0; ctr_mount_points[i]; i++)
        if (!strcmp(rel, ctr_mount_points[i]))
            return true;
    return false;
}

/* overlayfs marks a directory made where the lower had one (`rm -rf d; mkdir d`) opaque: the
 * image's entries below it are hidden, and the upper holds no whiteouts for them */
static bool opaque_dir(int fd)
{
    char v;
    return (fgetxattr(fd, "trusted.overlay.opaque", &v, 1) == 1 && v == 'y') ||
           (fgetxattr(fd, "user.overlay.opaque", &v, 1) == 1 && v == 'y');
}

struct diff_name {
    char *name;
    bool gone; /* in the image, hidden by an opaque directory */
};

static int cmp_names(const void *a, const void *b)
{
    return strcmp(((const struct diff_name *)a)->name, ((const struct diff_name *)b)->name);
}

/* The entries of directory `fd` (its path `path`, "" for the root), sorted as Go's Walk sorts.
 * `hidden`: the image's entries here are hidden (this directory or one above it is opaque), so
 * those the upper lacks are deletions, as Docker lists them. */
static int walk(struct diff_walk *w, int fd, const char *path, bool hidden)
{
    int dup_fd = dup(fd);
    DIR *d = dup_fd >= 0 ? fdopendir(dup_fd) : NULL;
    if (!d) {
        if (dup_fd >= 0)
            close(dup_fd);
        return err_sys(w->err, errno, "reading the writable layer at `%s/`", path);
    }
    struct diff_name *names = NULL;
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        names = xrealloc(names, (n + 1) * sizeof *names);
        names[n++] = (struct diff_name){xstrdup(e->d_name), false};
    }
    closedir(d);
    uint32_t image_dir = hidden ? view_lookup_path(w->v, *path ? path : "/") : 0;
    const struct view_inode *di = image_dir ? view_inode(w->v, image_dir) : NULL;
    if (di && S_ISDIR(di->mode)) {
        size_t in_upper = n;
        const struct view_dirent *de;
        for (uint32_t k = 0; (de = view_dirent_at(w->v, image_dir, k)); k++) {
            char *name = strndup(view_string(w->v, de->name_off), de->name_len);
            bool found = false;
            for (size_t j = 0; j < in_upper && !found; j++)
                found = !strcmp(names[j].name, name);
            if (found || (!*path && runner_mount_point(name))) {
                free(name);
                continue;
            }
            names = xrealloc(names, (n + 1) * sizeof *names);
            names[n++] = (struct diff_name){name, true};
        }
    }
    if (n) /* an empty directory: names is NULL, which qsort must not get */
        qsort(names, n, sizeof *names, cmp_names);
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        cleanup_free char *child = xasprintf("%s/%s", path, names[i].name);
        if (names[i].gone) {
            add(w, xasprintf("D %s", child));
            continue;
        }
        struct stat st;
        if (fstatat(fd, names[i].name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
            rc = err_sys(w->err, errno, "writable layer `%s`", child);
            break;
        }
        /* overlayfs's whiteout: a character device 0:0 where the image had something */
        if (S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0)) {
            add(w, xasprintf("D %s", child));
            continue;
        }
        bool in_image = view_lookup_path(w->v, child) != 0;
        if (!in_image && runner_mount_point(child + 1))
            continue; /* made for a mount (/etc/hosts ...), not by the container */
        if (!S_ISDIR(st.st_mode)) {
            add(w, xasprintf("%c %s", in_image ? 'C' : 'A', child));
            continue;
        }
        /* a directory of the image is in the upper when something below it changed (or its own
         * metadata did); one that holds only mount points is no change, as in Docker, whose
         * mount points are in a layer of their own */
        size_t slot = w->n;
        add(w, in_image ? NULL : xasprintf("A %s", child));
        int sub = openat(fd, names[i].name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (sub < 0) {
            rc = err_sys(w->err, errno, "writable layer `%s`", child);
            break;
        }
        bool sub_hidden = hidden || opaque_dir(sub);
        rc = walk(w, sub, child, sub_hidden);
        close(sub);
        if (in_image && (w->n > slot + 1 || sub_hidden != hidden))
            w->lines[slot] = xasprintf("C %s", child);
    }
    for (size_t i = 0; i < n; i++)
        free(names[i].name);
    free(names);
    return rc;
}

int ctr_diff(const char *store_root, const char *run_dir, const struct ctr_state *s,
             int (*fn)(void *ctx, const char *line), void *ctx, struct imgfs_err *err)
{
    struct digest manifest;
    cleanup_free char *key = xasprintf("sha256:%s", s->mount_key ? s->mount_key : "");
    if (!s->mount_key || digest_parse(key, false, &manifest) < 0)
        return err_set(err, EINVAL, "container %.12s was not run from a stored image", s->id);
    cleanup_free char *upper = ctr_upper_path(run_dir, s->id);
    cleanup_close int fd = open(upper, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return err_sys(err, errno, "the writable layer of container %.12s", s->id);
    struct store *st;
    if (store_open(store_root, STORE_READONLY, &st, err) < 0)
        return -1;
    struct store_read *r;
    if (store_read_begin(st, &r, err) < 0) {
        store_close(st);
        return -1;
    }
    const void *data;
    size_t len;
    void *copy = NULL;
    struct view v;
    int rc = store_get(r, STORE_VIEW, &manifest, &data, &len, err);
    if (rc == 0)
        rc = view_open_copy(data, len, &copy, &v, err);
    store_read_end(r);
    store_close(st);
    if (rc < 0)
        return err_ctx(err, "the image of container %.12s", s->id);
    struct diff_walk w = {.v = &v, .err = err};
    rc = walk(&w, fd, "", opaque_dir(fd));
    for (size_t i = 0; i < w.n; i++) {
        if (rc == 0 && w.lines[i])
            rc = fn(ctx, w.lines[i]);
        free(w.lines[i]);
    }
    free(w.lines);
    free(copy);
    return rc;
}
