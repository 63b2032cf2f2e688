/* layer.h — a layer's file table: every tar entry of the layer, in order, with its content as
 * references to chunks. Stored in the `layer` database under the layer's diff_id, which is the
 * SHA-256 of the canonical tar that layer_tar_write() produces from the table; so a layer
 * exported and imported again has the same diff_id. One exception: a lazily pulled layer is
 * stored under the registry's diff_id (its canonical tar cannot be hashed before its content is
 * there); export computes its canonical digest (docs/lazy.md). Encoding: docs/store.md. */
#ifndef IMGFS_LAYER_H
#define IMGFS_LAYER_H

#include "digest.h"
#include "util.h"

#include <stdbool.h>
#include <stdint.h>

struct archive;
struct archive_entry;
struct store_read;

enum layer_kind {
    LAYER_REG = 1,
    LAYER_DIR,
    LAYER_SYMLINK,
    LAYER_HARDLINK, /* `link` names an earlier entry of the same layer */
    LAYER_CHAR,
    LAYER_BLOCK,
    LAYER_FIFO,
    LAYER_SOCKET,
};

struct layer_extent {
    uint64_t offset; /* in the file; gaps between extents are holes (read as zeros) */
    uint32_t length;
    struct digest chunk;
};

struct layer_xattr {
    const char *name;
    const uint8_t *value;
    uint32_t len;
};

/* A decoded entry. When it comes from layer_next(), every pointer points into the table and is
 * valid as long as the table is. */
struct layer_entry {
    const char *path; /* relative ("usr/bin/env"), no "./", no trailing "/", never ".." parts;
                         arbitrary bytes except NUL; "" is the layer's root directory */
    enum layer_kind kind;
    uint32_t mode; /* permission bits incl. setuid/setgid/sticky (07777) */
    uint32_t uid, gid;
    int64_t mtime_sec;
    uint32_t mtime_nsec;
    uint64_t size; /* regular files: logical size, holes included */
    uint32_t rdev_major, rdev_minor;
    const char *link; /* symlink target or hardlink target path; NULL otherwise */
    const char *uname, *gname; /* may be NULL */
    uint32_t n_xattrs;
    const struct layer_xattr *xattrs;
    uint32_t n_extents;
    const struct layer_extent *extents;
};

/* Whiteouts are kept in the table as the entries they are in the tar ("dir/.wh.name",
 * "dir/.wh..wh..opq", regular files of size 0); the view applies them. */
#define LAYER_WHITEOUT_PREFIX ".wh."
#define LAYER_OPAQUE_NAME     ".wh..wh..opq"

/* ---- encoding ---- */
struct layer_writer {
    struct buf out;
    uint64_t entries;
};
void layer_writer_init(struct layer_writer *w);
void layer_writer_add(struct layer_writer *w, const struct layer_entry *e);
/* Finish: the encoded table is w->out (owned by the caller afterwards). */
void layer_writer_finish(struct layer_writer *w);

/* ---- decoding ---- */
struct layer_reader {
    const uint8_t *p, *end;
    uint64_t entries_left;
    /* scratch owned by the reader, reused per entry */
    struct layer_xattr *xattrs;
    uint32_t xattrs_cap;
    struct layer_extent *extents;
    uint32_t extents_cap;
};
int layer_reader_init(struct layer_reader *r, const void *table, size_t len,
                      struct imgfs_err *err);
/* 1 and an entry, 0 at the end, -1 on a malformed table. */
int layer_next(struct layer_reader *r, struct layer_entry *e, struct imgfs_err *err);
void layer_reader_free(struct layer_reader *r);

/* ---- tar ---- */

/* Fill a libarchive entry with the canonical header of `e` (pax format; no atime/ctime; names
 * as bytes). The one definition of a canonical header, shared by import (to compute the diff_id)
 * and export (to write it), so both agree byte for byte. A regular file whose extents leave holes
 * gets the sparse map of its data runs (written as a pax sparse file, GNU format 1.0); one without
 * holes is written plainly. */
void layer_entry_to_archive(const struct layer_entry *e, struct archive_entry *ae);

/* A run of file data, [offset, offset + length); what lies between runs is a hole. */
struct layer_run {
    uint64_t offset, length;
};
/* Replace the sparse map of a canonical regular-file entry (its size already set) by `runs`
 * (ordered, not overlapping; empty ones are ignored), with layer_entry_to_archive's rule: runs that
 * cover the whole file mean a plain file. Import uses it before the data (and so the extents) are
 * known. */
void layer_archive_set_runs(struct archive_entry *ae, const struct layer_run *runs, size_t n);

/* Write the `len` zero bytes of a hole to a canonical writer. For a sparse entry the pax writer
 * skips them without reading, so this costs nothing per byte: a 1 PiB hole is a million calls. */
int layer_tar_write_hole(struct archive *out, uint64_t len, struct imgfs_err *err);
/* A libarchive writer with the canonical options (pax restricted, no compression), writing to
 * `write_fn`. */
struct archive *layer_tar_writer_new(void *ctx,
                                     ssize_t (*write_fn)(struct archive *, void *, const void *,
                                                         size_t));
/* Write a whole layer as its canonical tar to an already-opened canonical writer (does not close
 * it). Chunk data comes from the store via store_chunk_get (verified). */
int layer_tar_write(struct store_read *r, const void *table, size_t len, struct archive *out,
                    struct imgfs_err *err);

#endif
