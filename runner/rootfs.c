/* rootfs.c — the container's filesystem: overlay, volumes, /proc, /dev, /sys, masked paths,
 * pivot_root. Runs in the container's init, inside its own mount namespace, so nothing here is
 * visible on the host and everything goes away with the namespace.
 *
 * The image is untrusted: every path inside it is resolved with openat2(RESOLVE_IN_ROOT) against
 * the container's root and mounted on through /proc/self/fd/N (the host's /proc, still there before
 * pivot_root), so a symlink such as `dev -> ../../../etc` stays inside the root. Staying inside is
 * not enough: `proc -> /` resolves to the root itself, and procfs mounted there is reachable as
 * `/..` with no mask and a writable /proc/sys (core_pattern: code run as root on the host). So
 * every target is checked where it resolved to (check_target): /proc and /sys must be ordinary
 * directories at exactly that path (runc's rule since CVE-2019-19921), nothing else may land on the
 * root or inside the kernel file systems, and the masks must land on them. */
#include "ctr_internal.h"

#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <string.h>
#include <linux/magic.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

static int sys_openat2(int dirfd, const char *path, int flags, uint64_t resolve)
{
    struct open_how how = {
        .flags = (uint64_t)flags | O_CLOEXEC,
        .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS | resolve,
    };
    int fd;
    do
        fd = (int)syscall(SYS_openat2, dirfd, path, &how, sizeof how);
    while (fd < 0 && (errno == EINTR || errno == EAGAIN));
    return fd;
}

static int open_depth(int rootfd, const char *path, int flags, mode_t create, int depth,
                      struct imgfs_err *err);

int rootfs_open(int rootfd, const char *path, int flags, mode_t create, struct imgfs_err *err)
{
    return open_depth(rootfd, path, flags, create, 0, err);
}

static int open_depth(int rootfd, const char *path, int flags, mode_t create, int depth,
                      struct imgfs_err *err)
{
    if (depth > 16)
        return err_set(err, ELOOP, "too many symlinks creating `%s` in the container", path);
    while (*path == '/')
        path++;
    if (!*path)
        path = ".";
    int fd = sys_openat2(rootfd, path, flags, 0);
    if (fd >= 0 || errno != ENOENT || !create)
        return fd >= 0 ? fd : err_sys(err, errno, "opening `/%s` in the container", path);

    /* Make the parent (recursively, through this same function) and then the last component
     * relative to the parent's descriptor: mkdirat/openat on one name never follows a symlink out.
     */
    cleanup_free char *copy = xstrdup(path);
    char *slash = strrchr(copy, '/');
    const char *last = copy;
    cleanup_close int parent = -1;
    if (slash) {
        *slash = 0;
        last = slash + 1;
        parent = open_depth(rootfd, copy, O_PATH | O_DIRECTORY, S_IFDIR, depth + 1, err);
    } else {
        parent = fcntl(rootfd, F_DUPFD_CLOEXEC, 3);
    }
    if (parent < 0)
        return -1;
    if (!*last || !strcmp(last, ".") || !strcmp(last, ".."))
        return err_set(err, EINVAL, "bad path `/%s` in the container", path);
    if (S_ISDIR(create)) {
        if (mkdirat(parent, last, 0755) < 0 && errno != EEXIST)
            return err_sys(err, errno, "creating directory `/%s` in the container", path);
    } else {
        int f = openat(parent, last, O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0644);
        if (f < 0 && errno != EEXIST)
            return err_sys(err, errno, "creating `/%s` in the container", path);
        if (f >= 0)
            close(f);
    }
    fd = sys_openat2(rootfd, path, flags, 0);
    if (fd >= 0)
        return fd;
    /* a dangling symlink: create what it points to, inside the root like everything else */
    char target[4096];
    ssize_t n = readlinkat(parent, last, target, sizeof target - 1);
    if (errno != ENOENT || n <= 0)
        return err_sys(err, errno, "opening `/%s` in the container", path);
    target[n] = 0;
    cleanup_free char *next =
        target[0] == '/' ? xstrdup(target) : xasprintf("%s/%s", slash ? copy : "", target);
    return open_depth(rootfd, next, flags, create, depth + 1, err);
}

static int mount_fd(const char *source, int fd, const char *fstype, unsigned long flags,
                    const char *data)
{
    char target[64];
    snprintf(target, sizeof target, "/proc/self/fd/%d", fd);
    return mount(source, target, fstype, flags, data);
}

/* The container's root while it is built: its descriptor and its path as the kernel names it. */
struct root {
    int fd;
    char path[PATH_MAX];
    size_t len;
};

static int fd_path(int fd, char *out, size_t len)
{
    char self[64];
    snprintf(self, sizeof self, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(self, out, len - 1);
    if (n < 0)
        return -1;
    if ((size_t)n >= len - 1) {
        errno = ENAMETOOLONG;
        return -1;
    }
    out[n] = 0;
    return 0;
}

/* What a mount target may resolve to. */
enum target {
    TARGET_KERNEL, /* /proc, /sys: an ordinary directory at exactly that path */
    TARGET_RUNNER, /* /dev, /etc/hosts...: anywhere inside but the root, /proc and /sys */
    /* -v, --tmpfs: anywhere inside but the root and /proc (runc's checkProcMount; volumes under
     * /sys such as /sys/fs/cgroup are the user's choice) */
    TARGET_USER,
};

static bool path_under(const char *path, const char *dir)
{
    size_t n = strlen(dir);
    return !strncmp(path, dir, n) && (path[n] == 0 || path[n] == '/');
}

/* Where did `fd`, opened for target `path`, really land? The kernel's name for it (d_path through
 * /proc/self/fd, as runc checks its mount-on-fd targets) must be strictly below the root. */
static int check_target(const struct root *root, int fd, const char *path, enum target kind,
                        struct imgfs_err *err)
{
    char where[PATH_MAX];
    if (fd_path(fd, where, sizeof where) < 0)
        return err_sys(err, errno, "mount target `%s`: finding where it resolved to", path);
    if (strncmp(where, root->path, root->len) || (where[root->len] && where[root->len] != '/'))
        return err_set(err, EXDEV, "mount target `%s` resolves outside the container's root (`%s`)",
                       path, where);
    const char *rel = where + root->len;
    if (!*rel)
        return err_set(err, EINVAL,
                       "mount target `%s` resolves to the container's root directory (a symlink "
                       "in the image?): refusing to mount over the root",
                       path);
    if (kind != TARGET_KERNEL &&
        (path_under(rel, "/proc") || (kind == TARGET_RUNNER && path_under(rel, "/sys"))))
        return err_set(err, EINVAL,
                       "mount target `%s` resolves to `%s`, inside a kernel file system: refused",
                       path, rel);
    return 0;
}

/* /proc or /sys (`name` without the slash): an ordinary directory of the image, made when missing.
 * A symlink there is refused, never followed: runc's rule since CVE-2019-19921, with its words. */
static int open_kernel_dir(const struct root *root, const char *name, struct imgfs_err *err)
{
    struct stat st;
    if (fstatat(root->fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
        if (errno != ENOENT)
            return err_sys(err, errno, "`/%s` in the container", name);
        if (mkdirat(root->fd, name, 0755) < 0 && errno != EEXIST)
            return err_sys(err, errno, "creating directory `/%s` in the container", name);
    } else if (S_ISLNK(st.st_mode)) {
        char link[256] = "";
        ssize_t n = readlinkat(root->fd, name, link, sizeof link - 1);
        if (n > 0)
            link[n] = 0;
        return err_set(err, ELOOP,
                       "`/%s` in the image is a symlink (to `%s`): %s must be mounted on an "
                       "ordinary directory",
                       name, link, name);
    } else if (!S_ISDIR(st.st_mode)) {
        return err_set(err, ENOTDIR,
                       "`/%s` in the image is not a directory: %s must be mounted on an ordinary "
                       "directory",
                       name, name);
    }
    int fd = openat(root->fd, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return err_sys(err, errno, "opening `/%s` in the container", name);
    return fd;
}

static int open_target(const struct root *root, const char *path, enum target kind, mode_t create,
                       struct imgfs_err *err)
{
    int fd = kind == TARGET_KERNEL ? open_kernel_dir(root, path + 1, err)
                                   : rootfs_open(root->fd, path, O_PATH, create, err);
    if (fd < 0)
        return -1;
    if (check_target(root, fd, path, kind, err) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Mount at `path` in the container: a new file system (`fstype`), or with MS_BIND `source`. */
static int mount_in(const struct root *root, const char *path, const char *source,
                    const char *fstype, unsigned long flags, const char *data, mode_t create,
                    enum target kind, struct imgfs_err *err)
{
    cleanup_close int fd = open_target(root, path, kind, create, err);
    if (fd < 0)
        return err_ctx(err, "mounting %s", path);
    bool bind = flags & MS_BIND;
    if (mount_fd(source, fd, fstype, bind ? flags & ~MS_RDONLY : flags, data) < 0)
        return err_sys(err, errno, "mounting %s on `%s`", fstype ? fstype : source, path);
    /* a bind mount ignores MS_RDONLY: it takes a remount */
    if (bind && (flags & MS_RDONLY)) {
        cleanup_close int again = open_target(root, path, kind, 0, err);
        if (again < 0)
            return -1;
        if (mount_fd(NULL, again, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY, NULL) < 0)
            return err_sys(err, errno, "making `%s` read-only", path);
    }
    return 0;
}

/* A directory we made in a file system we just mounted (`dir`, our /dev): no image data below. */
static int mount_below(int dir, const char *name, const char *fstype, unsigned long flags,
                       const char *data, struct imgfs_err *err)
{
    cleanup_close int fd = openat(dir, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 || mount_fd(fstype, fd, fstype, flags, data) < 0)
        return err_sys(err, errno, "mounting %s on `/dev/%s`", fstype, name);
    return 0;
}

static const struct {
    const char *name;
    unsigned major, minor;
} devices[] = {
    {"null", 1, 3},   {"zero", 1, 5},    {"full", 1, 7},
    {"random", 1, 8}, {"urandom", 1, 9}, {"tty", 5, 0},
};

static int setup_dev(const struct root *root, bool tty, int64_t shm_bytes, struct imgfs_err *err)
{
    if (mount_in(root, "/dev", "tmpfs", "tmpfs", MS_NOSUID | MS_STRICTATIME, "mode=755,size=65536k",
                 S_IFDIR, TARGET_RUNNER, err) < 0)
        return -1;
    /* the tmpfs just mounted (the same resolution again: nothing else runs in the container) */
    cleanup_close int dev = open_target(root, "/dev", TARGET_RUNNER, 0, err);
    if (dev < 0)
        return -1;
    struct statfs sfs;
    if (fstatfs(dev, &sfs) < 0 || sfs.f_type != TMPFS_MAGIC)
        return err_set(err, EIO, "`/dev` in the container is not the tmpfs just mounted there");
    mode_t old = umask(0);
    for (size_t i = 0; i < sizeof devices / sizeof devices[0]; i++)
        if (mknodat(dev, devices[i].name, S_IFCHR | 0666,
                    makedev(devices[i].major, devices[i].minor)) < 0) {
            umask(old);
            return err_sys(err, errno, "creating /dev/%s", devices[i].name);
        }
    umask(old);
    static const char *const links[][2] = {
        {"/proc/self/fd", "fd"},       {"/proc/self/fd/0", "stdin"}, {"/proc/self/fd/1", "stdout"},
        {"/proc/self/fd/2", "stderr"}, {"pts/ptmx", "ptmx"},         {"/proc/kcore", "core"},
    };
    for (size_t i = 0; i < sizeof links / sizeof links[0]; i++)
        if (symlinkat(links[i][0], dev, links[i][1]) < 0)
            return err_sys(err, errno, "creating /dev/%s", links[i][1]);
    if (mkdirat(dev, "pts", 0755) < 0 || mkdirat(dev, "shm", 01777) < 0 ||
        mkdirat(dev, "mqueue", 0755) < 0)
        return err_sys(err, errno, "creating directories in /dev");
    /* below our own tmpfs: whatever the image had at dev/pts, dev/shm... is hidden under it */
    char shm_opts[64];
    snprintf(shm_opts, sizeof shm_opts, "mode=1777,size=%lld",
             (long long)(shm_bytes > 0 ? shm_bytes : 64 << 20));
    if (mount_below(dev, "pts", "devpts", MS_NOSUID | MS_NOEXEC,
                    "newinstance,ptmxmode=0666,mode=0620,gid=5", err) < 0 ||
        mount_below(dev, "shm", "tmpfs", MS_NOSUID | MS_NOEXEC | MS_NODEV, shm_opts, err) < 0 ||
        mount_below(dev, "mqueue", "mqueue", MS_NOSUID | MS_NOEXEC | MS_NODEV, NULL, err) < 0)
        return -1;
    if (tty) {
        /* /dev/console: the container's terminal, bound on later by the init (it owns the pty) */
        int f = openat(dev, "console", O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
        if (f < 0)
            return err_sys(err, errno, "creating /dev/console");
        close(f);
    }
    return 0;
}

/* --device: the node at its container path (missing directories made), with the host node's
 * mode and owner, as runc makes them; resolved inside the root like every other target. */
static int make_devices(const struct ctr_rootfs *r, const struct root *root, struct imgfs_err *err)
{
    for (size_t i = 0; i < r->n_devices; i++) {
        const struct ctr_device *d = &r->devices[i];
        cleanup_free char *a = xstrdup(d->container);
        char *slash = strrchr(a, '/');
        *slash = 0;
        const char *base = slash + 1;
        cleanup_close int dir = a[0] ? open_target(root, a, TARGET_RUNNER, S_IFDIR, err)
                                     : fcntl(root->fd, F_DUPFD_CLOEXEC, 3);
        if (dir < 0)
            return err_ctx(err, "--device %s", d->container);
        cleanup_close int at = openat(dir, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (at < 0)
            return err_sys(err, errno, "--device %s", d->container);
        if (!*base || unlinkat(at, base, 0) < 0) {
            if (*base && errno != ENOENT)
                return err_sys(err, errno, "--device: replacing `%s`", d->container);
        }
        mode_t type = d->type == 'b' ? S_IFBLK : S_IFCHR;
        mode_t old = umask(0);
        int made = mknodat(at, base, type | d->mode, makedev(d->major, d->minor));
        umask(old);
        if (made < 0)
            return err_sys(err, errno, "--device: creating `%s`", d->container);
        if (fchownat(at, base, d->uid, d->gid, AT_SYMLINK_NOFOLLOW) < 0)
            return err_sys(err, errno, "--device: owner of `%s`", d->container);
    }
    return 0;
}

/* Docker's masked and read-only paths (moby oci/defaults.go). */
static const char *const masked_paths[] = {
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
};
static const char *const readonly_paths[] = {
    "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
};

/* A masked or read-only path: below /proc or /sys without a symlink, on procfs or sysfs (never
 * somewhere an image's symlink could send it). -1 with ENOENT in err->code: not there, skip it. */
static int open_kernel_path(const struct root *root, const char *path, struct imgfs_err *err)
{
    int fd = sys_openat2(root->fd, path + 1, O_PATH, RESOLVE_NO_SYMLINKS);
    if (fd < 0)
        return err_sys(err, errno, "opening `%s` in the container", path);
    struct statfs sfs;
    if (fstatfs(fd, &sfs) < 0 || (sfs.f_type != PROC_SUPER_MAGIC && sfs.f_type != SYSFS_MAGIC)) {
        close(fd);
        return err_set(err, EXDEV, "`%s` in the container is not on procfs or sysfs", path);
    }
    if (check_target(root, fd, path, TARGET_KERNEL, err) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static int mask_paths(const struct root *root, struct imgfs_err *err)
{
    for (size_t i = 0; i < sizeof masked_paths / sizeof masked_paths[0]; i++) {
        cleanup_close int fd = open_kernel_path(root, masked_paths[i], err);
        if (fd < 0) {
            if (err->code == ENOENT)
                continue;
            return -1;
        }
        struct stat st;
        if (fstat(fd, &st) < 0)
            return err_sys(err, errno, "stat `%s`", masked_paths[i]);
        int r = S_ISDIR(st.st_mode)
                    ? mount_fd("tmpfs", fd, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
                               "size=0")
                    : mount_fd("/dev/null", fd, NULL, MS_BIND, NULL);
        if (r < 0)
            return err_sys(err, errno, "masking `%s`", masked_paths[i]);
    }
    for (size_t i = 0; i < sizeof readonly_paths / sizeof readonly_paths[0]; i++) {
        cleanup_close int fd = open_kernel_path(root, readonly_paths[i], err);
        if (fd < 0) {
            if (err->code == ENOENT)
                continue;
            return -1;
        }
        char self[64];
        snprintf(self, sizeof self, "/proc/self/fd/%d", (int)fd);
        if (mount(self, self, NULL, MS_BIND | MS_REC, NULL) < 0)
            return err_sys(err, errno, "binding `%s`", readonly_paths[i]);
        cleanup_close int again = open_kernel_path(root, readonly_paths[i], err);
        if (again < 0)
            return -1;
        if (mount_fd(NULL, again, NULL,
                     MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
            return err_sys(err, errno, "making `%s` read-only", readonly_paths[i]);
    }
    return 0;
}

int rootfs_open_volume(const struct ctr_mount *m, struct imgfs_err *err)
{
    int fd = open_tree(AT_FDCWD, m->source, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE);
    if (fd < 0)
        return err_sys(err, errno, "volume source `%s`", m->source);
    if (m->readonly) {
        struct mount_attr attr = {.attr_set = MOUNT_ATTR_RDONLY};
        if (mount_setattr(fd, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof attr) < 0) {
            int e = errno;
            close(fd);
            return err_sys(err, e, "making volume `%s` read-only", m->source);
        }
    }
    return fd;
}

/* /sys/fs/cgroup: on v2 a cgroup2 mount in the container's cgroup namespace. On v1 the container's
 * own v1 cgroups, read-only — what runc does on v1 without a
 * cgroup namespace: a tmpfs with one directory per hierarchy, each a bind of the container's
 * directory in it (mountinfo's root field and /proc/self/cgroup then agree, so tools and language
 * runtimes that look up their limits find memory.limit_in_bytes, cpu.cfs_quota_us, pids.max).
 * Joint hierarchies get Docker's symlinks (cpu -> cpu,cpuacct). --privileged: read-write. */
static int setup_cgroups(const struct ctr_rootfs *r, const struct root *root, struct imgfs_err *err)
{
    if (!r->n_cgroups && !r->cgroup2)
        return 0;
    cleanup_close int at = open_kernel_path(root, "/sys/fs/cgroup", err);
    if (at < 0)
        return err->code == ENOENT ? (err_clear(err), 0) : -1;
    if (r->cgroup2) {
        /* v2, what runc and crun mount: the hierarchy as this cgroup namespace sees it, i.e. the
         * container's own group and nothing above it */
        unsigned long f = MS_NOSUID | MS_NODEV | MS_NOEXEC | (r->privileged ? 0 : MS_RDONLY);
        if (mount_fd("cgroup2", at, "cgroup2", f, NULL) < 0)
            return err_sys(err, errno, "mounting cgroup2 on /sys/fs/cgroup");
        return 0;
    }
    static const char opts[] = "mode=755,size=64k";
    const unsigned long flags = MS_NOSUID | MS_NODEV | MS_NOEXEC;
    if (mount_fd("cgroup", at, "tmpfs", flags, opts) < 0)
        return err_sys(err, errno, "mounting a tmpfs on /sys/fs/cgroup");
    cleanup_close int dir =
        sys_openat2(root->fd, "sys/fs/cgroup", O_PATH | O_DIRECTORY, RESOLVE_NO_SYMLINKS);
    struct statfs sfs;
    if (dir < 0 || fstatfs(dir, &sfs) < 0 || sfs.f_type != TMPFS_MAGIC)
        return err_set(err, EIO, "/sys/fs/cgroup is not the tmpfs just mounted there");
    const unsigned long ro = r->privileged ? 0 : MS_RDONLY;
    for (size_t i = 0; i < r->n_cgroups; i++) {
        const char *name = r->cgroup_mounts[i];
        if (mkdirat(dir, name, 0755) < 0 && errno != EEXIST)
            return err_sys(err, errno, "creating /sys/fs/cgroup/%s", name);
        cleanup_close int t = openat(dir, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (t < 0 || mount_fd(r->cgroup_dirs[i], t, NULL, MS_BIND, NULL) < 0)
            return err_sys(err, errno, "binding `%s` on /sys/fs/cgroup/%s", r->cgroup_dirs[i],
                           name);
        cleanup_close int again = openat(dir, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (again < 0 || mount_fd(NULL, again, NULL, MS_BIND | MS_REMOUNT | flags | ro, NULL) < 0)
            return err_sys(err, errno, "making /sys/fs/cgroup/%s read-only", name);
        if (strchr(name, ',')) {
            cleanup_free char *parts = xstrdup(name);
            char *save = NULL;
            for (char *p = strtok_r(parts, ",", &save); p; p = strtok_r(NULL, ",", &save))
                if (symlinkat(name, dir, p) < 0 && errno != EEXIST)
                    return err_sys(err, errno, "creating /sys/fs/cgroup/%s", p);
        }
    }
    if (mount_fd(NULL, dir, NULL, MS_REMOUNT | flags | ro, opts) < 0)
        return err_sys(err, errno, "making /sys/fs/cgroup read-only");
    return 0;
}

static int setup_mounts(const struct ctr_rootfs *r, const struct root *root, struct imgfs_err *err)
{
    for (size_t i = 0; i < r->n_mounts; i++) {
        const struct ctr_mount *m = &r->mounts[i];
        if (m->tmpfs) {
            if (mount_in(root, m->target, "tmpfs", "tmpfs",
                         MS_NOSUID | MS_NODEV | MS_NOEXEC | (m->readonly ? MS_RDONLY : 0),
                         m->options ? m->options : "mode=1777", S_IFDIR, TARGET_USER, err) < 0)
                return -1;
            continue;
        }
        struct stat st;
        if (fstat(r->volume_fds[i], &st) < 0)
            return err_sys(err, errno, "volume `%s`", m->source);
        cleanup_close int target =
            open_target(root, m->target, TARGET_USER, S_ISDIR(st.st_mode) ? S_IFDIR : S_IFREG, err);
        if (target < 0)
            return err_ctx(err, "volume target `%s`", m->target);
        if (move_mount(r->volume_fds[i], "", target, "",
                       MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
            return err_sys(err, errno, "mounting volume `%s` on `%s`", m->source, m->target);
        /* The clone was made in our copy of the host's mounts, before they were made private,
         * so it is a peer of the host's source mount when that is shared: set its propagation
         * (Docker's rprivate unless bind-propagation says otherwise), so no mount made below it
         * in the container reaches the host. rslave: the host's new mounts below the source
         * appear in the container, nothing goes back; rshared: both ways (ctr_mount_parse
         * checked, as Docker, that the source's mount propagates at all). */
        cleanup_close int mounted = open_target(root, m->target, TARGET_USER, 0, err);
        if (mounted < 0)
            return err_ctx(err, "volume target `%s`", m->target);
        const char *p = m->propagation ? m->propagation : "rprivate";
        unsigned long prop = (strstr(p, "shared")  ? MS_SHARED
                              : strstr(p, "slave") ? MS_SLAVE
                                                   : MS_PRIVATE) |
                             (p[0] == 'r' ? MS_REC : 0);
        if (mount_fd(NULL, mounted, NULL, prop, NULL) < 0)
            return err_sys(err, errno, "setting the propagation of `%s` (%s)", m->target, p);
    }
    return 0;
}

static int bind_etc_files(const struct ctr_rootfs *r, const struct root *root,
                          struct imgfs_err *err)
{
    static const char *const files[] = {"hosts", "hostname", "resolv.conf"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char src[4096], dst[64];
        snprintf(src, sizeof src, "%s/%s", r->etc_dir, files[i]);
        if (access(src, F_OK) < 0)
            continue;
        snprintf(dst, sizeof dst, "/etc/%s", files[i]);
        if (mount_in(root, dst, src, NULL, MS_BIND, NULL, S_IFREG, TARGET_RUNNER, err) < 0) {
            /* a read-only rootfs without the file: Docker fails too; an image without /etc
             * could not create it either */
            if (r->read_only && err->code == EROFS)
                continue;
            return -1;
        }
    }
    return 0;
}

/* Nothing may sit on top of the root: every mount above went through check_target, and this
 * says so again where it matters (a mount on the root's own dentry is stacked over it). */
static int check_root_uncovered(const struct ctr_rootfs *r, const struct root *root,
                                struct imgfs_err *err)
{
    cleanup_close int top = open(r->target, O_PATH | O_DIRECTORY | O_CLOEXEC);
    struct statx a, b;
    if (top < 0 || statx(root->fd, "", AT_EMPTY_PATH, STATX_MNT_ID, &a) < 0 ||
        statx(top, "", AT_EMPTY_PATH, STATX_MNT_ID, &b) < 0)
        return err_sys(err, errno, "checking the rootfs `%s`", r->target);
    if (!(a.stx_mask & b.stx_mask & STATX_MNT_ID) || a.stx_mnt_id != b.stx_mnt_id)
        return err_set(err, EIO, "something is mounted over the container's root `%s`", r->target);
    return 0;
}

int rootfs_setup(const struct ctr_rootfs *r, struct imgfs_err *err)
{
    /* our mounts must not propagate back to the host's namespace */
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
        return err_sys(err, errno, "making mounts private");
    /* --read-only too: the overlay is writable while the runner makes the mount points of
     * --tmpfs, -v and /etc files the image lacks (in the upper, as Docker and runc create
     * them), and becomes read-only (this mount's flag) just before pivot_root. volatile: no sync of
     * the upper file system when the overlay goes away. Without it every container's end waits for
     * an ext4 journal commit (~60 ms here). An upper dir is mounted once and thrown away with the
     * container, so there is nothing a crash could leave inconsistent that anyone would mount
     * again. */
    char opts[8192];
    int n = snprintf(opts, sizeof opts, "lowerdir=%s,upperdir=%s,workdir=%s,volatile", r->lower,
                     r->upper, r->work);
    if (n < 0 || (size_t)n >= sizeof opts)
        return err_set(err, ENAMETOOLONG, "overlay options too long");
    if (mount("overlay", r->target, "overlay", 0, opts) < 0)
        return err_sys(err, errno, "mounting overlay on `%s` (%s)", r->target, opts);
    struct root root = {.fd = open(r->target, O_PATH | O_DIRECTORY | O_CLOEXEC)};
    cleanup_close int rootfd = root.fd;
    if (rootfd < 0)
        return err_sys(err, errno, "opening the rootfs `%s`", r->target);
    if (fd_path(rootfd, root.path, sizeof root.path) < 0)
        return err_sys(err, errno, "finding the rootfs `%s`", r->target);
    root.len = strcmp(root.path, "/") ? strlen(root.path) : 0;

    if (mount_in(&root, "/proc", "proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL, S_IFDIR,
                 TARGET_KERNEL, err) < 0)
        return -1;
    if (setup_dev(&root, r->tty, r->shm_bytes, err) < 0)
        return -1;
    unsigned long sysflags = MS_NOSUID | MS_NODEV | MS_NOEXEC | (r->privileged ? 0 : MS_RDONLY);
    if (mount_in(&root, "/sys", "sysfs", "sysfs", sysflags, NULL, S_IFDIR, TARGET_KERNEL, err) < 0)
        return -1;
    if (setup_cgroups(r, &root, err) < 0)
        return -1;
    if (r->etc_dir && bind_etc_files(r, &root, err) < 0)
        return -1;
    if (setup_mounts(r, &root, err) < 0)
        return -1;
    if (make_devices(r, &root, err) < 0)
        return -1;
    if (!r->privileged && mask_paths(&root, err) < 0)
        return -1;
    if (check_root_uncovered(r, &root, err) < 0)
        return -1;
    if (r->read_only && mount_fd(NULL, rootfd, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY, NULL) < 0)
        return err_sys(err, errno, "making the rootfs read-only");

    /* pivot_root(".", ".") stacks the old root on the new one; detaching it leaves only ours
     * (the way runc does it: no directory for the old root inside the image) */
    if (fchdir(rootfd) < 0)
        return err_sys(err, errno, "entering the rootfs");
    if (syscall(SYS_pivot_root, ".", ".") < 0)
        return err_sys(err, errno, "pivot_root");
    if (umount2(".", MNT_DETACH) < 0)
        return err_sys(err, errno, "detaching the old root");
    if (chdir("/") < 0)
        return err_sys(err, errno, "chdir /");
    return 0;
}
