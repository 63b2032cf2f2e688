/* mount.h — `imgfs mount`: an image as a read-only FUSE filesystem (libfuse3 low-level API).
 *
 * The image never changes, so the kernel is told to cache everything (entries, attributes, pages,
 * directories, symlinks) for a very long time. Reads are answered from the LMDB map without copies.
 * The daemon holds a store lease on the image for as long as it is mounted, so gc never frees it.
 */
#ifndef IMGFS_MOUNT_H
#define IMGFS_MOUNT_H

#include "util.h"

#include <stdbool.h>

struct mount_options {
    bool foreground;  /* serve in this process until unmounted */
    bool debug;       /* libfuse debug output (implies foreground) */
    bool allow_other; /* let other users (and containers' user ids) in */
    bool suid;        /* honour the image's setuid bits (root only); nosuid otherwise */
    int threads;      /* worker threads, 0 = libfuse default */
    /* lazily pulled images (fs/lazy.h): the budget of a read that fetches (0 = 5 s) and what to
     * fetch in the background (LAZY_PREFETCH_*: the recorded start-up's range by default) */
    unsigned fetch_timeout_ms;
    int prefetch;
    /* record a start-up: append each file's path, at its first READ, to this file (absolute) */
    const char *trace_path;
    /* without foreground: the daemon's log, made empty at the mount, gets every message the
     * keeper and the daemon send to syslog too (one line each, a UTC time first) */
    const char *log_path;
};

/* Mount image `ref` from the store at `root` on `dir`. Without foreground the call returns once the
 * mount is live, leaving two processes of its own: a keeper that holds the FUSE connection and
 * restarts the daemon serving it whenever that dies (docs/mount.md); errors found before that (no
 * such image, `dir` missing, not a directory or already a mount point) are returned, not logged.
 * The daemon holds none of the caller's file descriptors. Mounting over a non-empty directory is
 * allowed (as in fuse3). */
int mount_image(const char *root, const char *ref, const char *dir, const struct mount_options *o,
                struct imgfs_err *err);
/* Is `dir` an imgfs mount that nobody serves any more (its keeper and daemon are gone: the kernel
 * answers ENOTCONN)? Asks the daemon of a live mount one STATFS. */
bool mount_is_dead(const char *dir);
/* Unmount `dir` (fusermount3 -u semantics; `lazy` detaches even when busy). With `root` (the store
 * the mount was made from), the call returns once the mount's keeper has released its lease on
 * the image (at most 10 s), so that a gc right after it frees what only the mount kept; a keeper
 * that serves on (a busy mount detached with `lazy`) keeps its lease and the call returns as soon
 * as it has said so. Foreground mounts are not waited for. NULL: no wait. */
int mount_unmount(const char *root, const char *dir, bool lazy, struct imgfs_err *err);

#endif
