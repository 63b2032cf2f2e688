/* util.h — the error convention and scope-bound cleanup shared by fs/, builder/ and runner/.
 *
 * Error convention: every fallible function returns 0 (or a non-negative count) on success and -1 on
 * failure, after filling a caller-provided `struct imgfs_err`. Each layer that passes a failure up may
 * add context with err_ctx() ("importing layer 2: reading `usr/bin/x`: ..."). Only tools/ prints. */
#ifndef IMGFS_UTIL_H
#define IMGFS_UTIL_H

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

struct imgfs_err {
    int code;       /* an errno value (EIO, ENOENT, EINVAL, ENOSPC, ...), 0 when no error is set */
    char msg[2048]; /* human-readable, most general context first */
};

/* Set the error (overwriting any earlier one) and return -1. */
int err_set(struct imgfs_err *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Like err_set, with ": strerror(code)" appended. */
int err_sys(struct imgfs_err *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Prepend "context: " to the message already set and return -1. */
int err_ctx(struct imgfs_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void err_clear(struct imgfs_err *err);

/* Scope-bound cleanup, in crun's manner. */
static inline void cleanup_free_fn(void *p)
{
    free(*(void **)p);
}
static inline void cleanup_close_fn(int *fd)
{
    if (*fd >= 0)
        close(*fd);
}
#define cleanup_free  __attribute__((cleanup(cleanup_free_fn)))
#define cleanup_close __attribute__((cleanup(cleanup_close_fn)))

/* Hand a scope-bound value to someone else: returns it and resets the variable. */
#define get_and_reset(p)                                                                           \
    ({                                                                                             \
        __typeof__(*(p)) _v = *(p);                                                                \
        *(p) = 0;                                                                                  \
        _v;                                                                                        \
    })
#define take_fd(fd)                                                                                \
    ({                                                                                             \
        int _fd = *(fd);                                                                           \
        *(fd) = -1;                                                                                \
        _fd;                                                                                       \
    })

/* Allocation that never returns NULL: out of memory aborts (there is nothing sane to do). */
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
/* Room for element `n` of an array of `n` elements of `size` bytes that only ever grows through
 * xgrow: its capacity is implied by `n` (doubled whenever `n` is 0 or a power of two), so `n`
 * appends cost O(n) copying, where a realloc to n + 1 elements per append is quadratic (with ASan,
 * and with any allocator that cannot grow the block in place: a 64 KiB line took minutes). */
void *xgrow(void *p, size_t n, size_t size);
char *xstrdup(const char *s);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* A growable byte buffer. */
struct buf {
    uint8_t *data;
    size_t len, cap;
};
void buf_reserve(struct buf *b, size_t extra);
void buf_append(struct buf *b, const void *data, size_t len);
void buf_free(struct buf *b);

/* Full reads and writes that retry EINTR and short transfers. Return 0 or -1 with errno set;
 * read_full returns the number of bytes read (less than len only at end of file). */
ssize_t read_full(int fd, void *data, size_t len);
/* Open `path` (relative to `dirfd`) for reading, without blocking on it — a FIFO or a device would
 * wait forever for a writer or hang the read — and only when it is a regular file (fstat'ed after
 * the open, so it is the file that was opened). `flags` adds to O_RDONLY|O_CLOEXEC|O_NOCTTY (e.g.
 * O_NOFOLLOW). The descriptor is blocking again on return; *st (may be NULL) is its fstat. Errors:
 * errno of the open, or EINVAL "is a fifo, not a regular file" (the caller adds the name). */
int open_regular(int dirfd, const char *path, int flags, struct stat *st, struct imgfs_err *err);
/* "fifo", "socket", "character device", "block device", "directory", "symlink", "regular file" */
const char *file_type_name(mode_t mode);
int write_full(int fd, const void *data, size_t len);
/* Read a whole file (at most `limit` bytes; EFBIG past it). */
int read_file(const char *path, size_t limit, struct buf *out, struct imgfs_err *err);
/* Write a file atomically: temp file in the same directory, fsync, rename. */
int write_file_atomic(const char *path, const void *data, size_t len, int mode,
                      struct imgfs_err *err);
/* mkdir -p */
int mkdir_p(const char *path, int mode, struct imgfs_err *err);
/* Show `name` as this process's command line (ps, /proc/PID/cmdline) and its first word, cut to 15
 * bytes, as its comm. Nothing may use argv afterwards: its strings are overwritten. Best effort. */
void proc_set_title(const char *name);

#endif
