/* layerbuild.h — making a layer entry by entry: the one path by which every layer enters the store.
 *
 * A layer builder takes entries (struct layer_entry metadata, plus content for regular files),
 * cuts file content into chunks (FastCDC, fs/chunker.h) that go into a store batch, encodes the
 * file table (fs/layer.h) and hashes the layer's canonical tar on the way (layer_entry_to_archive,
 * the one definition of a canonical header), so the diff_id is known when the last entry is in.
 * Nothing is named: the caller commits an image with the layer (image_commit, image_commit_on).
 *
 * Users: the tar import (import_layer feeds it every member), the builder's COPY/ADD (entries
 * straight from the build context, no copy of it) and layer_from_upper (an overlayfs upper
 * directory, i.e. a RUN step's or a container's changes).
 *
 * Every entry is checked as untrusted input: the path is normalised ("./a//b/" -> "a/b", a
 * leading "/" dropped); a path with a ".." part, a name part longer than NAME_MAX, a path or
 * symlink target of PATH_MAX or more, and a hardlink to anything but an earlier non-directory entry
 * of the same layer are errors naming the entry. After any error the builder can only be freed.
 *
 * Not thread-safe: one builder belongs to one thread, like its batch. */
#ifndef IMGFS_LAYERBUILD_H
#define IMGFS_LAYERBUILD_H

#include "digest.h"
#include "layer.h"
#include "util.h"

#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>

struct store_batch;
struct layer_builder;

struct layer_build_result {
    struct digest diff_id; /* SHA-256 of the layer's canonical tar */
    uint64_t size;         /* canonical tar size */
    struct buf table;      /* the encoded file table (also put in the batch); caller frees */
    uint64_t files, bytes; /* entries and content bytes read */
};

/* `what` names the layer in errors ("layer 2 of foo.tar", "RUN step 3"); it is copied. */
int layer_builder_open(struct store_batch *b, const char *what, struct layer_builder **out,
                       struct imgfs_err *err);
/* Free a builder (after finish, or to abandon it: what went into the batch stays unreferenced). */
void layer_builder_free(struct layer_builder *lb);

/* Add an entry without content: a directory, symlink, hardlink, device, fifo, socket, or a
 * regular file of size 0. `e->extents` is ignored. */
int layer_builder_add(struct layer_builder *lb, const struct layer_entry *e, struct imgfs_err *err);

/* Content of a regular file as blocks in increasing offset order: return 1 with a block (valid
 * until the next call) and its offset in the file, 0 at the end, -1 with err set. Data past
 * e->size is an error. layer_builder_add_data takes the whole file for data: a gap before a
 * block, or a file that ends early, is stored as zeros (hashed and chunked like any data). */
typedef int (*layer_data_fn)(void *ctx, const void **data, size_t *len, uint64_t *offset,
                             struct imgfs_err *err);
int layer_builder_add_data(struct layer_builder *lb, const struct layer_entry *e,
                           layer_data_fn next, void *ctx, struct imgfs_err *err);
/* The same for a file with holes, its data runs declared up front (a tar member's sparse map, a
 * file's SEEK_DATA segments; ordered, within e->size, empty ones ignored). The canonical header
 * (a pax sparse file when there are holes, docs/store.md) is hashed before the data is read, so
 * the data must be exactly these runs: anything else is an error ("does not match its sparse
 * map"). Holes cost nothing: they are not read, hashed, chunked or stored. */
int layer_builder_add_runs(struct layer_builder *lb, const struct layer_entry *e,
                           const struct layer_run *runs, size_t n_runs, layer_data_fn next,
                           void *ctx, struct imgfs_err *err);
/* A regular file's content from a descriptor (read with pread from offset 0, e->size bytes; holes
 * found with SEEK_DATA/SEEK_HOLE, before reading, stay holes; a file that changes while it is read
 * is an error). */
int layer_builder_add_fd(struct layer_builder *lb, const struct layer_entry *e, int fd,
                         struct imgfs_err *err);

/* OCI whiteouts, written as Docker writes them: `path` ("etc/motd") is deleted from the layers
 * below ("etc/.wh.motd": an empty regular file, mode 0600, owner 0:0 and, unlike Docker, mtime
 * 0, so a digest never depends on when a file was deleted); the directory `dir` hides everything
 * below it in lower layers ("DIR/.wh..wh..opq": an empty regular file with the directory's
 * permission bits, owner and mtime; dir->path names it, the rest of *dir is ignored). */
int layer_builder_add_whiteout(struct layer_builder *lb, const char *path, struct imgfs_err *err);
int layer_builder_add_opaque(struct layer_builder *lb, const struct layer_entry *dir,
                             struct imgfs_err *err);

/* Close the layer: the table goes into the batch under the diff_id, the result to *out. */
int layer_builder_finish(struct layer_builder *lb, struct layer_build_result *out,
                         struct imgfs_err *err);

/* ---- directory trees ---- */

/* The layer kind of a file type (st_mode & S_IFMT); 0 for none a layer can hold. */
enum layer_kind layer_kind_from_mode(mode_t mode);
/* Metadata of a file as a layer entry: kind, mode (07777), uid, gid, mtime, size (regular files),
 * rdev. No path, link, names or xattrs. Returns -1 (EINVAL) for a file type a layer cannot hold. */
int layer_entry_from_stat(const struct stat *st, struct layer_entry *e, struct imgfs_err *err);

struct layer_dir_options {
    const char *prefix; /* where the tree's contents go in the layer ("" or NULL: its root) */
    bool include_root;  /* an entry for the directory itself, at `prefix` (not when prefix is "") */
    /* An overlayfs upper directory: character devices 0/0 become whiteouts, a directory with
     * the overlay's `opaque` xattr = "y" gets an opaque marker, a file with its `whiteout` xattr
     * (the "xwhiteout" form) is a whiteout, and the overlay's own xattrs are not kept; a file's
     * own xattr that overlayfs stored escaped (`trusted.overlay.overlay.X`) is kept as what it
     * is (`trusted.overlay.X`). A redirect or metacopy xattr (overlay features imgfs never turns
     * on) is an error: such an upper does not hold the whole change. */
    bool overlay_upper;
    /* The overlay was mounted with `userxattr` (its xattrs are `user.overlay.*`); otherwise they
     * are `trusted.overlay.*` (the runner's mounts), and `user.overlay.*` are the files' own. */
    bool overlay_userxattr;
    int64_t mtime_clamp; /* >= 0: later mtimes become this one (SOURCE_DATE_EPOCH); -1: none */
    /* Paths (relative to the tree, normalised; NULL-terminated, or NULL) where an empty regular
     * file or an empty directory is a mount point the runner made, not a change: left out (as
     * BuildKit removes the mount points it created). */
    const char *const *mount_points;
    /* Called for every entry before it is added, with its path relative to the tree's root and
     * its entry (path already prefixed; fields may be changed: owner, mode, mtime, path). Return
     * 0 to add it, 1 to leave it (and, for a directory, everything below) out, -1 with err set to
     * fail. NULL: everything. */
    int (*edit)(void *ctx, const char *rel, struct layer_entry *e, struct imgfs_err *err);
    void *edit_ctx;
};

/* Add the tree under the directory `dirfd` (not closed): every entry in a deterministic order
 * (parents before children, names sorted bytewise), so the same tree gives the same diff_id. Files
 * with several links inside the tree become hardlinks to the first path added; xattrs are kept;
 * symlinks are never followed. The tree should not change while it is read (a file changing
 * under it gives a torn but well-formed entry). */
int layer_builder_add_tree(struct layer_builder *lb, int dirfd, const struct layer_dir_options *o,
                           struct imgfs_err *err);

/* The changes an overlayfs upper directory holds, as one layer (the tree of `upper` with
 * overlay_upper set), in batch `b`. `mtime_clamp` and `mount_points` as above (a container's:
 * ctr_mount_points in runner/runner.h). */
int layer_from_upper(struct store_batch *b, const char *upper, int64_t mtime_clamp,
                     const char *const *mount_points, struct layer_build_result *out,
                     struct imgfs_err *err);

/* ---- committing ---- */

struct store;
struct image_from_upper_options {
    const char *parent;   /* the image the upper was made over (a reference), NULL: scratch */
    char *const *changes; /* Dockerfile config lines (image_config_edit), NULL-terminated or NULL */
    const char *created_by; /* the history entry (image_history) */
    const char *comment, *author;
    int64_t created;                 /* unix seconds; -1: none */
    int64_t mtime_clamp;             /* as above; -1: none */
    const char *const *mount_points; /* as above */
    const char *name;                /* the tag, or NULL: untagged */
};
/* `docker commit`: the upper directory as one new layer on the parent, the parent's config edited
 * and given a history entry, in one batch of its own. Atomic: on failure no name changes. */
int image_from_upper(struct store *s, const char *upper, const struct image_from_upper_options *o,
                     struct digest *out, struct imgfs_err *err);

#endif
