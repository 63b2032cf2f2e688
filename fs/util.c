#include "util.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

int err_set(struct imgfs_err *err, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    err->code = code ? code : EIO;
    return -1;
}

int err_sys(struct imgfs_err *err, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    if (n >= 0 && (size_t)n < sizeof err->msg)
        snprintf(err->msg + n, sizeof err->msg - n, ": %s", strerror(code));
    err->code = code ? code : EIO;
    return -1;
}

int err_ctx(struct imgfs_err *err, const char *fmt, ...)
{
    char prefix[512], old[sizeof err->msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, err->msg, sizeof old);
    size_t n = strnlen(prefix, sizeof prefix - 1);
    memcpy(err->msg, prefix, n);
    if (n + 2 < sizeof err->msg) {
        memcpy(err->msg + n, ": ", 2);
        n += 2;
    }
    size_t rest = strnlen(old, sizeof old - 1);
    if (rest > sizeof err->msg - 1 - n)
        rest = sizeof err->msg - 1 - n;
    memcpy(err->msg + n, old, rest);
    err->msg[n + rest] = 0;
    if (!err->code)
        err->code = EIO;
    return -1;
}

void err_clear(struct imgfs_err *err)
{
    err->code = 0;
    err->msg[0] = 0;
}

static void out_of_memory(void)
{
    static const char m[] = "imgfs: out of memory\n";
    (void)!write(2, m, sizeof m - 1);
    abort();
}

void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        out_of_memory();
    return p;
}

void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p)
        out_of_memory();
    return p;
}

void *xrealloc(void *p, size_t n)
{
    p = realloc(p, n ? n : 1);
    if (!p)
        out_of_memory();
    return p;
}

void *xgrow(void *p, size_t n, size_t size)
{
    if (n & (n - 1))
        return p;
    size_t cap = n ? 2 * n : 1;
    if (cap > SIZE_MAX / size)
        out_of_memory();
    return xrealloc(p, cap * size);
}

char *xstrdup(const char *s)
{
    char *p = strdup(s);
    if (!p)
        out_of_memory();
    return p;
}

char *xasprintf(const char *fmt, ...)
{
    char *s;
    va_list ap;
    va_start(ap, fmt);
    int n = vasprintf(&s, fmt, ap);
    va_end(ap);
    if (n < 0)
        out_of_memory();
    return s;
}

void buf_reserve(struct buf *b, size_t extra)
{
    if (b->len + extra <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra)
        cap *= 2;
    b->data = xrealloc(b->data, cap);
    b->cap = cap;
}

void buf_append(struct buf *b, const void *data, size_t len)
{
    if (!len)
        return;
    buf_reserve(b, len);
    memcpy(b->data + b->len, data, len);
    b->len += len;
}

void buf_free(struct buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

const char *file_type_name(mode_t mode)
{
    switch (mode & S_IFMT) {
    case S_IFREG: return "regular file";
    case S_IFDIR: return "directory";
    case S_IFLNK: return "symlink";
    case S_IFIFO: return "fifo";
    case S_IFSOCK: return "socket";
    case S_IFCHR: return "character device";
    case S_IFBLK: return "block device";
    default: return "file of unknown type";
    }
}

int open_regular(int dirfd, const char *path, int flags, struct stat *st, struct imgfs_err *err)
{
    struct stat local;
    if (!st)
        st = &local;
    int fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK | flags);
    if (fd < 0 && errno == ELOOP && (flags & O_NOFOLLOW))
        return err_set(err, ELOOP, "is a symlink, not a regular file");
    if (fd < 0)
        return err_sys(err, errno, "opening");
    if (fstat(fd, st) < 0) {
        err_sys(err, errno, "fstat");
        close(fd);
        return -1;
    }
    if (!S_ISREG(st->st_mode)) {
        err_set(err, EINVAL, "is a %s, not a regular file", file_type_name(st->st_mode));
        close(fd);
        return -1;
    }
    if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) < 0) {
        err_sys(err, errno, "fcntl");
        close(fd);
        return -1;
    }
    return fd;
}

ssize_t read_full(int fd, void *data, size_t len)
{
    size_t done = 0;
    while (done < len) {
        ssize_t n = read(fd, (char *)data + done, len - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        if (n == 0)
            break;
        done += n;
    }
    return done;
}

int write_full(int fd, const void *data, size_t len)
{
    size_t done = 0;
    while (done < len) {
        ssize_t n = write(fd, (const char *)data + done, len - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        done += n;
    }
    return 0;
}

int read_file(const char *path, size_t limit, struct buf *out, struct imgfs_err *err)
{
    cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return err_sys(err, errno, "opening `%s`", path);
    for (;;) {
        buf_reserve(out, 65536);
        ssize_t n = read(fd, out->data + out->len, out->cap - out->len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return err_sys(err, errno, "reading `%s`", path);
        if (n == 0)
            return 0;
        out->len += n;
        if (out->len > limit)
            return err_set(err, EFBIG, "`%s` is larger than %zu bytes", path, limit);
    }
}

int write_file_atomic(const char *path, const void *data, size_t len, int mode,
                      struct imgfs_err *err)
{
    cleanup_free char *tmp = xasprintf("%s.tmp.%d", path, (int)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0)
        return err_sys(err, errno, "creating `%s`", tmp);
    if (write_full(fd, data, len) < 0 || fsync(fd) < 0) {
        int e = errno;
        close(fd);
        unlink(tmp);
        return err_sys(err, e, "writing `%s`", tmp);
    }
    close(fd);
    if (rename(tmp, path) < 0) {
        int e = errno;
        unlink(tmp);
        return err_sys(err, e, "renaming `%s` to `%s`", tmp, path);
    }
    return 0;
}

int mkdir_p(const char *path, int mode, struct imgfs_err *err)
{
    /* Mostly the directory or its parent is there already: one mkdir then, not one per component
     * (a container start calls this for ~6 paths 6-8 components deep) */
    if (mkdir(path, mode) == 0 || errno == EEXIST)
        return 0;
    if (errno != ENOENT)
        return err_sys(err, errno, "creating directory `%s`", path);
    cleanup_free char *p = xstrdup(path);
    for (char *s = p + 1; *s; s++) {
        if (*s != '/')
            continue;
        *s = 0;
        if (mkdir(p, mode) < 0 && errno != EEXIST)
            return err_sys(err, errno, "creating directory `%s`", p);
        *s = '/';
    }
    if (mkdir(p, mode) < 0 && errno != EEXIST)
        return err_sys(err, errno, "creating directory `%s`", p);
    return 0;
}

/* The argv area's bounds are fields 48 and 49 of /proc/self/stat: overwrite it with the name. */
void proc_set_title(const char *name)
{
    char comm[16];
    snprintf(comm, sizeof comm, "%.*s", (int)strcspn(name, " "), name);
    prctl(PR_SET_NAME, (unsigned long)comm, 0, 0, 0);
    char stat[4096];
    int fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    ssize_t n = read(fd, stat, sizeof stat - 1);
    close(fd);
    if (n <= 0)
        return;
    stat[n] = 0;
    char *p = strrchr(stat, ')'); /* the comm field may hold spaces */
    unsigned long start = 0, end = 0;
    for (int field = 2; p && field < 49; field++) {
        p = strchr(p + 1, ' ');
        if (p && field + 1 == 48)
            start = strtoul(p + 1, NULL, 10);
        else if (p && field + 1 == 49)
            end = strtoul(p + 1, NULL, 10);
    }
    if (!start || end <= start + 1)
        return;
    size_t len = strlen(name);
    if (len > end - start - 1)
        len = end - start - 1; /* the area cannot grow: cut the name */
    memset((void *)start, 0, end - start);
    memcpy((void *)start, name, len);
}
