/* cp.c — copy files between the host and a running container's root (docker cp). The container's
 * root is reached through /proc/PID/root of its init (its own mount namespace: the overlay, with
 * its volumes), taken while the monitor's lock shows the container alive. Every path inside it is
 * resolved with rootfs_open (openat2 RESOLVE_IN_ROOT), and the tree below is walked by descriptor
 * with O_NOFOLLOW: a symlink in the container is copied as a symlink, never followed out. */
#include "ctr_internal.h"

#include <dirent.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/stat.h>

static int copy_entry(int sdir, const char *sname, int ddir, const char *dname, int depth,
                      unsigned flags, struct imgfs_err *err);

/* -a: the owner and times of the source (the mode is always kept) */
static int keep_owner_times(int ddir, const char *dname, const struct stat *st, unsigned flags,
                            struct imgfs_err *err)
{
    if (!(flags & CTR_COPY_ARCHIVE))
        return 0;
    if (fchownat(ddir, dname, st->st_uid, st->st_gid, AT_SYMLINK_NOFOLLOW) < 0)
        return err_sys(err, errno, "setting the owner of `%s`", dname);
    if (!S_ISLNK(st->st_mode) && fchmodat(ddir, dname, st->st_mode & 07777, 0) < 0)
        return err_sys(err, errno, "setting the mode of `%s`", dname); /* chown drops setuid */
    struct timespec times[2] = {st->st_atim, st->st_mtim};
    if (utimensat(ddir, dname, times, AT_SYMLINK_NOFOLLOW) < 0)
        return err_sys(err, errno, "setting the times of `%s`", dname);
    return 0;
}

static int copy_file(int sdir, const char *sname, int ddir, const char *dname,
                     const struct stat *st, struct imgfs_err *err)
{
    cleanup_close int in = openat(sdir, sname, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (in < 0)
        return err_sys(err, errno, "opening `%s`", sname);
    struct stat dst;
    if (fstatat(ddir, dname, &dst, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISREG(dst.st_mode)) {
        if (S_ISDIR(dst.st_mode))
            return err_set(err, EISDIR, "cannot overwrite directory `%s` with a file", dname);
        if (unlinkat(ddir, dname, 0) < 0)
            return err_sys(err, errno, "replacing `%s`", dname);
    }
    cleanup_close int out =
        openat(ddir, dname, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (out < 0)
        return err_sys(err, errno, "creating `%s`", dname);
    for (;;) {
        ssize_t n = sendfile(out, in, NULL, 1 << 20);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return err_sys(err, errno, "copying `%s`", sname);
        if (n == 0)
            break;
    }
    if (fchmod(out, st->st_mode & 07777) < 0)
        return err_sys(err, errno, "setting the mode of `%s`", dname);
    return 0;
}

static int copy_dir(int sdir, const char *sname, int ddir, const char *dname, const struct stat *st,
                    int depth, unsigned flags, struct imgfs_err *err)
{
    if (depth > 256)
        return err_set(err, ELOOP, "`%s`: directories nested too deep", sname);
    if (mkdirat(ddir, dname, 0700) < 0 && errno != EEXIST)
        return err_sys(err, errno, "creating `%s`", dname);
    cleanup_close int s = openat(sdir, sname, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    cleanup_close int d = openat(ddir, dname, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (s < 0 || d < 0)
        return err_sys(err, errno, "opening directory `%s`", s < 0 ? sname : dname);
    int sd = dup(s);
    DIR *dir = sd >= 0 ? fdopendir(sd) : NULL;
    if (!dir) {
        if (sd >= 0)
            close(sd);
        return err_sys(err, errno, "reading `%s`", sname);
    }
    int r = 0;
    struct dirent *e;
    while (r == 0 && (e = readdir(dir)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            r = copy_entry(s, e->d_name, d, e->d_name, depth + 1, flags, err);
    closedir(dir);
    if (r == 0 && fchmod(d, st->st_mode & 07777) < 0)
        return err_sys(err, errno, "setting the mode of `%s`", dname);
    return r < 0 ? r : keep_owner_times(ddir, dname, st, flags, err);
}

static int copy_entry(int sdir, const char *sname, int ddir, const char *dname, int depth,
                      unsigned flags, struct imgfs_err *err)
{
    struct stat st;
    if (fstatat(sdir, sname, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return err_sys(err, errno, "`%s`", sname);
    if (S_ISDIR(st.st_mode))
        return copy_dir(sdir, sname, ddir, dname, &st, depth, flags, err);
    if (S_ISREG(st.st_mode))
        return copy_file(sdir, sname, ddir, dname, &st, err) < 0
                   ? -1
                   : keep_owner_times(ddir, dname, &st, flags, err);
    struct stat dst;
    if (fstatat(ddir, dname, &dst, AT_SYMLINK_NOFOLLOW) == 0) {
        if (S_ISDIR(dst.st_mode))
            return err_set(err, EISDIR, "cannot overwrite directory `%s` with a non-directory",
                           dname);
        unlinkat(ddir, dname, 0);
    }
    if (S_ISLNK(st.st_mode)) {
        char target[4096];
        ssize_t n = readlinkat(sdir, sname, target, sizeof target - 1);
        if (n < 0)
            return err_sys(err, errno, "reading the link `%s`", sname);
        target[n] = 0;
        if (symlinkat(target, ddir, dname) < 0)
            return err_sys(err, errno, "creating the link `%s`", dname);
        return keep_owner_times(ddir, dname, &st, flags, err);
    }
    if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode) || S_ISFIFO(st.st_mode)) {
        if (mknodat(ddir, dname, st.st_mode, st.st_rdev) < 0)
            return err_sys(err, errno, "creating `%s`", dname);
        return keep_owner_times(ddir, dname, &st, flags, err);
    }
    return 0; /* sockets: not copied (as tar does not) */
}

int ctr_copy_contents(int from, int to, unsigned flags, struct imgfs_err *err)
{
    int fd = openat(from, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (!d) {
        if (fd >= 0)
            close(fd);
        return err_sys(err, errno, "reading a directory");
    }
    int r = 0;
    struct dirent *e;
    while (r == 0 && (e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            r = copy_entry(from, e->d_name, to, e->d_name, 1, flags & ~CTR_COPY_FOLLOW, err);
    closedir(d);
    return r;
}

/* Where a copy goes (docker cp's rules): into DEST when it is a directory (under the source's
 * name), else as DEST itself, whose parent must exist. *dir is a directory descriptor and *name
 * the entry in it (caller frees). `in_root`: DEST is resolved under that root descriptor. */
static int target(int in_root, const char *dest, const char *src_name, int *dir, char **name,
                  struct imgfs_err *err)
{
    struct imgfs_err ignored;
    int fd = in_root >= 0
                 ? rootfs_open(in_root, dest, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0, &ignored)
                 : open(dest, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        *dir = fd;
        *name = xstrdup(src_name);
        return 0;
    }
    size_t len = strlen(dest);
    if (len && dest[len - 1] == '/')
        return err_set(err, ENOENT, "destination directory `%s` does not exist", dest);
    cleanup_free char *a = xstrdup(dest), *b = xstrdup(dest);
    const char *parent = dirname(a), *base = basename(b);
    fd = in_root >= 0 ? rootfs_open(in_root, parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0, err)
                      : open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return in_root >= 0 ? -1 : err_sys(err, errno, "destination `%s`", parent);
    *dir = fd;
    *name = xstrdup(base);
    return 0;
}

static int open_root(const char *run_dir, const struct ctr_state *s, struct imgfs_err *err)
{
    if (s->status != CTR_RUNNING || s->init_pid <= 0 || !ctr_is_live(run_dir, s->id))
        return err_set(err, EINVAL,
                       "container %.12s is not running: imgfs cp copies to and from running "
                       "containers only (docs/cli.md)",
                       s->id);
    cleanup_free char *p = xasprintf("/proc/%d/root", (int)s->init_pid);
    int fd = open(p, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return err_sys(err, errno, "opening `%s`", p);
    if (!ctr_is_live(run_dir, s->id)) { /* the pid may have been reused since */
        close(fd);
        return err_set(err, EINVAL, "container %.12s ended", s->id);
    }
    return fd;
}

/* "dir/." copies the directory's contents; otherwise the entry under its own name */
static void split_source(const char *path, char **parent, char **name)
{
    cleanup_free char *a = xstrdup(path), *b = xstrdup(path);
    size_t n = strlen(path);
    bool contents = n >= 2 && !strcmp(path + n - 2, "/.");
    *parent = xstrdup(contents ? path : dirname(a));
    *name = xstrdup(contents ? "." : basename(b));
}

int ctr_copy(const char *store_root, const char *run_dir, const struct ctr_state *s,
             const char *src, const char *dest, bool to_container, unsigned flags,
             struct imgfs_err *err)
{
    (void)store_root;
    cleanup_close int root = open_root(run_dir, s, err);
    if (root < 0)
        return -1;
    cleanup_free char *sparent = NULL, *sname = NULL;
    split_source(src, &sparent, &sname);
    cleanup_close int sdir =
        to_container ? open(sparent, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
                     : rootfs_open(root, sparent, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0, err);
    if (sdir < 0)
        return to_container ? err_sys(err, errno, "source `%s`", sparent)
                            : err_ctx(err, "source `%s`", src);
    struct stat st;
    if (fstatat(sdir, sname, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return err_sys(err, errno, "Could not find the file %s%s", src,
                       to_container ? "" : " in the container");
    const char *label = !strcmp(sname, ".") ? "." : sname;
    cleanup_close int ddir = -1;
    cleanup_free char *dname = NULL;
    if (target(to_container ? root : -1, dest, label, &ddir, &dname, err) < 0)
        return -1;
    if (!strcmp(dname, ".")) { /* dir/. into an existing directory: its entries */
        int r = 0;
        int sd = openat(sdir, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        DIR *d = sd >= 0 ? fdopendir(sd) : NULL;
        if (!d)
            return err_sys(err, errno, "reading `%s`", src);
        struct dirent *e;
        while (r == 0 && (e = readdir(d)))
            if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
                r = copy_entry(sdir, e->d_name, ddir, e->d_name, 1, flags, err);
        closedir(d);
        return r;
    }
    return copy_entry(sdir, sname, ddir, dname, 0, flags, err);
}
