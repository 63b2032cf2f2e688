/* cp.c — copy files between the host and a running container's root (docker cp). The container's
 * root is reached through /proc/PID/root of its init (its own mount namespace: the overlay, with
 * its volumes), taken while the monitor's lock shows the container alive. Every path inside it is
 * resolved with rootfs_open (openat2 RESOLVE_IN_ROOT), and the tree below is walked by descriptor
 * with O_NOFOLLOW: a symlink in the container is copied as a symlink, never followed out. */
#include "ctr_internal.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <fcntl.h>
#include <jansson.h>
#include <libgen.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static int copy_entry(int sdir, const char *sname, int ddir, const char *dname, int depth,
                      unsigned flags, struct imgfs_err *err);

/* times only (CTR_COPY_ARCHIVE: owners and times) */
#define COPY_TIMES 0x100

/* The owner (CTR_COPY_ARCHIVE) and times (COPY_TIMES too) of the source; the mode is always
 * kept. */
static int keep_owner_times(int ddir, const char *dname, const struct stat *st, unsigned flags,
                            struct imgfs_err *err)
{
    if (!(flags & (CTR_COPY_ARCHIVE | COPY_TIMES)))
        return 0;
    if ((flags & CTR_COPY_ARCHIVE) &&
        fchownat(ddir, dname, st->st_uid, st->st_gid, AT_SYMLINK_NOFOLLOW) < 0)
        return err_sys(err, errno, "setting the owner of `%s`", dname);
    if ((flags & CTR_COPY_ARCHIVE) && !S_ISLNK(st->st_mode) &&
        fchmodat(ddir, dname, st->st_mode & 07777, 0) < 0)
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

/* "dir/." copies the directory's contents; otherwise the entry under its own name */
static void split_source(const char *path, char **parent, char **name)
{
    cleanup_free char *a = xstrdup(path), *b = xstrdup(path);
    size_t n = strlen(path);
    bool contents = n >= 2 && !strcmp(path + n - 2, "/.");
    *parent = xstrdup(contents ? path : dirname(a));
    *name = xstrdup(contents ? "." : basename(b));
}

/* The source's directory, resolved in the container's root (in_root >= 0) or on the host. */
static int open_source_dir(int in_root, const char *parent, struct imgfs_err *err)
{
    if (in_root >= 0) {
        int fd = rootfs_open(in_root, parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0, err);
        return fd < 0 ? err_ctx(err, "source `%s`", parent) : fd;
    }
    int fd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    return fd < 0 ? err_sys(err, errno, "source `%s`", parent) : fd;
}

/* ---- tar streams (cp - ...) ---- */

static int tar_fail(struct archive *a, const char *what, struct imgfs_err *err)
{
    return err_set(err, EIO, "%s: %s", what,
                   archive_error_string(a) ? archive_error_string(a) : "?");
}

static int tar_entry(struct archive *a, int sdir, const char *sname, const char *path, int depth,
                     struct imgfs_err *err)
{
    if (depth > 256)
        return err_set(err, ELOOP, "`%s`: directories nested too deep", path);
    struct stat st;
    if (fstatat(sdir, sname, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return err_sys(err, errno, "`%s`", path);
    if (S_ISSOCK(st.st_mode))
        return 0;
    struct archive_entry *e = archive_entry_new();
    archive_entry_copy_stat(e, &st);
    /* the names Docker's streams carry: root's, numbers for everyone else */
    if (st.st_uid == 0)
        archive_entry_set_uname(e, "root");
    if (st.st_gid == 0)
        archive_entry_set_gname(e, "root");
    archive_entry_set_pathname(e, path);
    int r = 0;
    cleanup_close int fd = -1;
    if (S_ISLNK(st.st_mode)) {
        char target[4096];
        ssize_t n = readlinkat(sdir, sname, target, sizeof target - 1);
        if (n < 0) {
            archive_entry_free(e);
            return err_sys(err, errno, "reading the link `%s`", path);
        }
        target[n] = 0;
        archive_entry_set_symlink(e, target);
    } else if (S_ISREG(st.st_mode)) {
        fd = openat(sdir, sname, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0) {
            archive_entry_free(e);
            return err_sys(err, errno, "opening `%s`", path);
        }
    } else if (!S_ISDIR(st.st_mode)) {
        archive_entry_set_size(e, 0);
    }
    if (S_ISDIR(st.st_mode))
        archive_entry_set_size(e, 0);
    archive_entry_set_nlink(e, 1); /* every file in full: no hardlink entries */
    if (archive_write_header(a, e) != ARCHIVE_OK)
        r = tar_fail(a, "writing the tar stream", err);
    archive_entry_free(e);
    if (r < 0)
        return -1;
    if (fd >= 0) {
        char buf[1 << 16];
        for (;;) {
            ssize_t n = read(fd, buf, sizeof buf);
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0)
                return err_sys(err, errno, "reading `%s`", path);
            if (n == 0)
                break;
            if (archive_write_data(a, buf, (size_t)n) < 0)
                return tar_fail(a, "writing the tar stream", err);
        }
        return 0;
    }
    if (!S_ISDIR(st.st_mode))
        return 0;
    cleanup_close int d = openat(sdir, sname, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    int dd = d >= 0 ? dup(d) : -1;
    DIR *dir = dd >= 0 ? fdopendir(dd) : NULL;
    if (!dir) {
        if (dd >= 0)
            close(dd);
        return err_sys(err, errno, "reading `%s`", path);
    }
    struct dirent *de;
    while (r == 0 && (de = readdir(dir)))
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) {
            cleanup_free char *sub = xasprintf("%s/%s", path, de->d_name);
            r = tar_entry(a, d, de->d_name, sub, depth + 1, err);
        }
    closedir(dir);
    return r;
}

/* cp CONTAINER:SRC -: SRC as a tar stream on stdout, named by its last component (as Docker) */
static int tar_out(int sdir, const char *sname, struct imgfs_err *err)
{
    struct archive *a = archive_write_new();
    if (!a || archive_write_set_format_pax_restricted(a) != ARCHIVE_OK ||
        archive_write_open_fd(a, STDOUT_FILENO) != ARCHIVE_OK) {
        int r = tar_fail(a, "starting the tar stream", err);
        archive_write_free(a);
        return r;
    }
    int r = tar_entry(a, sdir, sname, sname, 0, err);
    if (archive_write_close(a) != ARCHIVE_OK && r == 0)
        r = tar_fail(a, "ending the tar stream", err);
    archive_write_free(a);
    return r;
}

/* cp - CONTAINER:DEST: extract the tar stream on stdin into directory `ddir`. Nothing may leave
 * it: no absolute names, no `..`, nothing written through a symlink (libarchive's SECURE_*),
 * while the process works from inside ddir. */
static int tar_in(int ddir, struct imgfs_err *err)
{
    cleanup_close int cwd = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (cwd < 0 || fchdir(ddir) < 0)
        return err_sys(err, errno, "entering the destination directory");
    struct archive *in = archive_read_new();
    struct archive *out = archive_write_disk_new();
    archive_read_support_format_all(in);
    archive_read_support_filter_all(in);
    archive_write_disk_set_options(
        out, ARCHIVE_EXTRACT_OWNER | ARCHIVE_EXTRACT_PERM | ARCHIVE_EXTRACT_TIME |
                 ARCHIVE_EXTRACT_SECURE_SYMLINKS | ARCHIVE_EXTRACT_SECURE_NODOTDOT |
                 ARCHIVE_EXTRACT_SECURE_NOABSOLUTEPATHS | ARCHIVE_EXTRACT_UNLINK);
    int r = 0;
    if (archive_read_open_fd(in, STDIN_FILENO, 1 << 16) != ARCHIVE_OK) {
        r = tar_fail(in, "reading the tar stream on stdin", err);
        goto done;
    }
    for (;;) {
        struct archive_entry *e;
        int h = archive_read_next_header(in, &e);
        if (h == ARCHIVE_EOF)
            break;
        if (h != ARCHIVE_OK && h != ARCHIVE_WARN) {
            r = tar_fail(in, "reading the tar stream on stdin", err);
            break;
        }
        if (archive_write_header(out, e) != ARCHIVE_OK) {
            r = err_set(err, EINVAL, "extracting `%s`: %s", archive_entry_pathname(e),
                        archive_error_string(out));
            break;
        }
        const void *block;
        size_t size;
        la_int64_t offset;
        int d;
        while ((d = archive_read_data_block(in, &block, &size, &offset)) == ARCHIVE_OK)
            if (archive_write_data_block(out, block, size, offset) != ARCHIVE_OK) {
                d = ARCHIVE_FATAL;
                break;
            }
        if (d != ARCHIVE_EOF) {
            r = err_set(err, EIO, "extracting `%s`: %s", archive_entry_pathname(e),
                        archive_error_string(d == ARCHIVE_FATAL ? out : in));
            break;
        }
        if (archive_write_finish_entry(out) != ARCHIVE_OK) {
            r = err_set(err, EIO, "extracting `%s`: %s", archive_entry_pathname(e),
                        archive_error_string(out));
            break;
        }
    }
done:
    archive_read_free(in);
    archive_write_free(out);
    if (fchdir(cwd) < 0 && r == 0)
        r = err_sys(err, errno, "leaving the destination directory");
    return r;
}

/* The copy itself, with the container's root open as `root`. */
static int copy_in_root(int root, const char *src, const char *dest, bool to_container,
                        unsigned flags, struct imgfs_err *err)
{
    if (to_container && !strcmp(src, "-")) {
        struct imgfs_err ignored;
        cleanup_close int ddir =
            rootfs_open(root, dest, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0, &ignored);
        if (ddir < 0)
            return err_set(err, ENOTDIR, "destination \"%s\" must be a directory", dest);
        return tar_in(ddir, err);
    }
    int in_root = to_container ? -1 : root;
    cleanup_free char *sparent = NULL, *sname = NULL;
    split_source(src, &sparent, &sname);
    cleanup_close int sdir = open_source_dir(in_root, sparent, err);
    if (sdir < 0)
        return -1;
    struct stat st;
    if (fstatat(sdir, sname, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return err_sys(err, errno, "Could not find the file %s%s", src,
                       to_container ? "" : " in the container");
    /* -L: the source itself is followed (in the container: inside its root); the copy keeps
     * the name the user gave */
    cleanup_free char *label = xstrdup(!strcmp(sname, ".") ? "." : sname);
    for (int hops = 0; (flags & CTR_COPY_FOLLOW) && S_ISLNK(st.st_mode); hops++) {
        char target[4096];
        ssize_t n = readlinkat(sdir, sname, target, sizeof target - 1);
        if (n < 0 || hops > 40)
            return n < 0 ? err_sys(err, errno, "following `%s`", src)
                         : err_set(err, ELOOP, "following `%s`: too many links", src);
        target[n] = 0;
        cleanup_free char *next =
            target[0] == '/' ? xstrdup(target) : xasprintf("%s/%s", sparent, target);
        free(sparent);
        free(sname);
        split_source(next, &sparent, &sname);
        close(sdir);
        sdir = open_source_dir(in_root, sparent, err);
        if (sdir < 0)
            return -1;
        if (fstatat(sdir, sname, &st, AT_SYMLINK_NOFOLLOW) < 0)
            return err_sys(err, errno, "following `%s` to `%s`", src, next);
    }
    if (!to_container && !strcmp(dest, "-"))
        return tar_out(sdir, strcmp(sname, ".") ? sname : ".", err);
    cleanup_close int ddir = -1;
    cleanup_free char *dname = NULL;
    if (target(to_container ? root : -1, dest, label, &ddir, &dname, err) < 0)
        return -1;
    if (!strcmp(sname, ".") && !strcmp(dname, ".")) /* dir/. into a directory: its entries */
        return ctr_copy_contents(sdir, ddir, flags, err);
    if (!strcmp(dname, "."))
        return ctr_copy_contents(sdir, ddir, flags, err);
    return copy_entry(sdir, sname, ddir, dname, 0, flags, err);
}

/* ---- a container that is not running: its image and upper layer, put together here ---- */

/* In a child with a mount namespace of its own: the overlay (image + the container's upper,
 * with a work directory of this copy's own: the container's was used `volatile` and overlayfs
 * refuses it again) on RUN_DIR/containers/ID/rootfs, the container's volumes and binds on it,
 * then the copy. Nothing of it exists on the host; it all goes with the child. */
static int copy_stopped_child(const char *dir, const char *lower, const char *work, const char *src,
                              const char *dest, bool to_container, unsigned flags,
                              struct imgfs_err *err)
{
    if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
        return err_sys(err, errno, "a mount namespace for the copy");
    cleanup_free char *target = xasprintf("%s/rootfs", dir);
    cleanup_free char *opts =
        xasprintf("lowerdir=%s,upperdir=%s/upper,workdir=%s", lower, dir, work);
    if (mount("overlay", target, "overlay", 0, opts) < 0)
        return err_sys(err, errno, "mounting the container's rootfs (%s)", opts);
    cleanup_close int root = open(target, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (root < 0)
        return err_sys(err, errno, "opening `%s`", target);
    cleanup_free char *config = xasprintf("%s/config.json", dir);
    json_t *c = json_load_file(config, 0, NULL);
    size_t i;
    json_t *m;
    json_array_foreach(json_object_get(c, "Mounts"), i, m)
    {
        const char *source = json_string_value(json_object_get(m, "Source"));
        const char *to = json_string_value(json_object_get(m, "Destination"));
        if (!source || !*source || !to)
            continue; /* tmpfs: nothing kept */
        /* a container that never started has no mount points yet: made in its upper, as its
         * start would */
        struct stat sst;
        if (stat(source, &sst) < 0)
            continue; /* a volume removed with -f meanwhile: nothing to show */
        struct imgfs_err ignored = {0};
        cleanup_close int at =
            rootfs_open(root, to, O_PATH, S_ISDIR(sst.st_mode) ? S_IFDIR : S_IFREG, err);
        if (at < 0) {
            json_decref(c);
            return err_ctx(err, "mount point `%s`", to);
        }
        char self[64];
        snprintf(self, sizeof self, "/proc/self/fd/%d", at);
        if (mount(source, self, NULL, MS_BIND | MS_REC, NULL) < 0) {
            json_decref(c);
            return err_sys(err, errno, "mounting `%s` on `%s`", source, to);
        }
        if (!json_is_true(json_object_get(m, "RW"))) {
            cleanup_close int again = rootfs_open(root, to, O_PATH, 0, &ignored);
            snprintf(self, sizeof self, "/proc/self/fd/%d", again);
            if (again < 0 || mount(NULL, self, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY, NULL) < 0) {
                json_decref(c);
                return err_sys(err, errno, "making `%s` read-only", to);
            }
        }
    }
    json_decref(c);
    return copy_in_root(root, src, dest, to_container, flags, err);
}

static int copy_stopped(const char *store_root, const char *run_dir, const struct ctr_state *s,
                        const char *src, const char *dest, bool to_container, unsigned flags,
                        struct imgfs_err *err)
{
    if (!s->image_id || !s->mount_key)
        return err_set(err, ENOTSUP,
                       "container %.12s runs a rootfs directory, not an image: cp needs it running",
                       s->id);
    cleanup_free char *dir = ctr_dir(run_dir, s->id);
    cleanup_free char *lock_path = xasprintf("%s/lock", dir);
    /* held for the copy: a start meanwhile waits (its monitor takes this lock) */
    cleanup_close int lock = open(lock_path, O_RDWR | O_CLOEXEC);
    if (lock < 0)
        return err_sys(err, errno, "container %.12s: `%s`", s->id, lock_path);
    if (flock(lock, LOCK_EX | LOCK_NB) < 0)
        return err_set(err, EAGAIN, "container %.12s started meanwhile: try again", s->id);
    struct ctr_image *ci = NULL;
    const char *lower = NULL;
    if (ctr_image_open(store_root, s->image_id, &ci, err) < 0)
        return err_ctx(err, "the image of container %.12s", s->id);
    int r = -1;
    bool made = false;
    cleanup_free char *work = xasprintf("%s/cp-work.XXXXXX", dir);
    if (ctr_image_acquire(run_dir, ci, &lower, err) < 0)
        goto out;
    if (!mkdtemp(work)) {
        err_sys(err, errno, "creating `%s`", work);
        goto out;
    }
    made = true;
    int pipefd[2];
    if (pipe2(pipefd, O_CLOEXEC) < 0) {
        err_sys(err, errno, "pipe");
        goto out;
    }
    pid_t pid = fork();
    if (pid < 0) {
        err_sys(err, errno, "fork");
        close(pipefd[0]);
        close(pipefd[1]);
        goto out;
    }
    if (pid == 0) {
        close(pipefd[0]);
        struct imgfs_err child = {0};
        int cr = copy_stopped_child(dir, lower, work, src, dest, to_container, flags, &child);
        if (cr < 0) {
            (void)!write(pipefd[1], &child.code, sizeof child.code);
            (void)!write(pipefd[1], child.msg, strlen(child.msg));
        }
        _exit(cr < 0 ? 1 : 0);
    }
    close(pipefd[1]);
    char msg[sizeof err->msg + sizeof(int)];
    ssize_t n, got = 0;
    while ((n = read(pipefd[0], msg + got, sizeof msg - 1 - (size_t)got)) > 0 ||
           (n < 0 && errno == EINTR))
        if (n > 0)
            got += n;
    close(pipefd[0]);
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    if (got > (ssize_t)sizeof(int)) {
        int code;
        memcpy(&code, msg, sizeof code);
        msg[got] = 0;
        err_set(err, code, "%s", msg + sizeof(int));
    } else if (!WIFEXITED(st) || WEXITSTATUS(st)) {
        err_set(err, EIO, "the copy ended without saying why");
    } else {
        r = 0;
    }
out:
    if (made) { /* overlayfs leaves a work/work it owns (mode 000) */
        struct imgfs_err ignored;
        ctr_remove_tree(work, &ignored);
    }
    struct imgfs_err ignored;
    ctr_image_release(ci, &ignored);
    ctr_image_free(ci);
    return r;
}

static int open_root(const char *run_dir, const struct ctr_state *s, struct imgfs_err *err)
{
    cleanup_free char *p = xasprintf("/proc/%d/root", (int)s->init_pid);
    int fd = open(p, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return err_sys(err, errno, "opening `%s`", p);
    if (!ctr_is_live(run_dir, s->id)) { /* the pid may have been reused since */
        close(fd);
        return err_set(err, EAGAIN, "container %.12s ended", s->id);
    }
    return fd;
}

int ctr_copy(const char *store_root, const char *run_dir, const struct ctr_state *s,
             const char *src, const char *dest, bool to_container, unsigned flags,
             struct imgfs_err *err)
{
    /* As Docker: what goes into the container keeps its owners and times (its daemon extracts
     * the CLI's tar as root), what comes out keeps its times and, with -a, its owners (without,
     * it is the caller's); a tar stream always carries both */
    flags |= COPY_TIMES;
    if (to_container)
        flags |= CTR_COPY_ARCHIVE;
    if (s->status == CTR_RUNNING && s->init_pid > 0 && ctr_is_live(run_dir, s->id)) {
        cleanup_close int root = open_root(run_dir, s, err);
        if (root >= 0)
            return copy_in_root(root, src, dest, to_container, flags, err);
        if (err->code != EAGAIN)
            return -1;
        err_clear(err); /* it ended meanwhile: copy as for a stopped one */
    }
    return copy_stopped(store_root, run_dir, s, src, dest, to_container, flags, err);
}

int ctr_copy_tree(const char *src, const char *dst, struct imgfs_err *err)
{
    size_t n = strlen(src);
    if (n >= 2 && !strcmp(src + n - 2, "/.")) {
        cleanup_free char *dir = strndup(src, n - 2);
        struct stat st;
        if (stat(dir, &st) < 0)
            return err_sys(err, errno, "`%s`", dir);
        if (!S_ISDIR(st.st_mode))
            return err_set(err, ENOTDIR, "`%s` is not a directory", dir);
        return copy_dir(AT_FDCWD, dir, AT_FDCWD, dst, &st, 0, CTR_COPY_ARCHIVE, err);
    }
    return copy_entry(AT_FDCWD, src, AT_FDCWD, dst, 0, CTR_COPY_ARCHIVE, err);
}
