/* view.h — an image's merged tree, flattened once (at import) from its layers with OCI whiteouts
 * applied, so that serving it never walks layers. Stored in the `view` database under the manifest
 * digest; the encoding (docs/store.md) is a header followed by fixed-size tables and a string pool:
 *
 *   inodes   struct view_inode[n_inodes]   inode number i+1 is inodes[i]; 1 is the root directory
 *   dirents  struct view_dirent[n_dirents] each directory's entries contiguous, sorted by name
 *                                          (memcmp order, shorter first on a common prefix)
 *   extents  struct view_extent[n_extents] each regular file's extents contiguous, by offset
 *   xattrs   struct view_xattr[n_xattrs]   each inode's xattrs contiguous, sorted by name
 *   strings  bytes                         names, symlink targets, xattr names and values
 *
 * All integers little-endian (the tables are used in place; imgfs runs on little-endian hosts). */
#ifndef IMGFS_VIEW_H
#define IMGFS_VIEW_H

#include "digest.h"
#include "util.h"

#include <stdbool.h>
#include <stdint.h>

#define VIEW_MAGIC "IMGFSVW1"

struct view_header {
    char magic[8];
    uint32_t n_inodes, n_dirents, n_extents, n_xattrs;
    uint64_t strings_len;
    uint64_t total_size; /* sum of regular files' sizes, for du/inspect */
};

struct view_inode {
    uint32_t mode; /* st_mode: type and permission bits */
    uint32_t uid, gid;
    uint32_t nlink;
    uint64_t size;  /* regular: bytes; symlink: target length; directory: number of entries */
    int64_t mtime_sec;
    uint32_t mtime_nsec;
    uint32_t rdev_major, rdev_minor;
    uint32_t first; /* directory: first dirent; regular: first extent; symlink: string offset */
    uint32_t count; /* directory: dirents; regular: extents */
    uint32_t xattr_first, xattr_count;
    uint32_t parent; /* directories: the parent's inode number (root: itself) */
};

struct view_dirent {
    uint32_t name_off, name_len;
    uint32_t ino;
    uint32_t reserved;
};

struct view_extent {
    uint64_t offset;
    uint32_t length;
    uint32_t reserved;
    struct digest chunk;
};

struct view_xattr {
    uint32_t name_off, name_len; /* name not NUL-terminated in the pool */
    uint32_t value_off, value_len;
};

/* A view opened over an encoded blob. The blob must stay valid and unchanged while the view is used
 * (view_open does not copy it: a FUSE daemon copies it once into its own memory first). */
struct view {
    const struct view_header *hdr;
    const struct view_inode *inodes;
    const struct view_dirent *dirents;
    const struct view_extent *extents;
    const struct view_xattr *xattrs;
    const char *strings;
};

/* Check every index and offset of the blob (a corrupt view must not crash a daemon). */
int view_open(const void *blob, size_t len, struct view *v, struct imgfs_err *err);

/* A view as stored: LMDB promises no alignment for values, and the map may move under a later
 * writer, so a view is used from a copy of its own. *copy (the caller frees it) holds the tables. */
int view_open_copy(const void *stored, size_t len, void **copy, struct view *v,
                   struct imgfs_err *err);
/* Just the header of a stored view (for sizes and counts), read without alignment assumptions.
 * Returns -1 when the blob is too short or not a view. */
int view_header_of(const void *stored, size_t len, struct view_header *h);

/* NULL when ino is out of range. */
const struct view_inode *view_inode(const struct view *v, uint64_t ino);
/* Child of directory `dir` named name[0..len): its inode number, or 0 when absent. O(log n). */
uint32_t view_lookup(const struct view *v, uint64_t dir, const char *name, size_t len);
/* Resolve a slash-separated path from the root without following symlinks; 0 when absent. */
uint32_t view_lookup_path(const struct view *v, const char *path);
/* The idx-th entry of directory `dir` (NULL past the end); its name is strings + name_off. */
const struct view_dirent *view_dirent_at(const struct view *v, uint64_t dir, uint32_t idx);
static inline const char *view_string(const struct view *v, uint32_t off)
{
    return v->strings + off;
}

/* ---- building ---- */
struct layer_table {
    const void *data;
    size_t len;
};
/* Merge layers (bottom first) into an encoded view, appended to *out. Errors: a hardlink to a
 * path not in its own layer, a path whose parent is not a directory... each names the layer and
 * the path. */
int view_build(const struct layer_table *layers, size_t n, struct buf *out, struct imgfs_err *err);

#endif
