/* import.h — bringing images into the store.
 *
 * import_layer reads one layer (a tar stream) and stores its file contents as chunks and its file
 * table as a layer record, all through a store batch, so nothing is visible until the caller
 * commits the image. It is a loop over the tar's members feeding a layer builder (layerbuild.h),
 * which checks every member as untrusted input (normalised names, no ".." parts, hardlinks only to
 * earlier members) and computes the canonical diff_id. */
#ifndef IMGFS_IMPORT_H
#define IMGFS_IMPORT_H

#include "digest.h"
#include "image.h"
#include "layerbuild.h"
#include "util.h"

struct archive;
struct store;
struct store_batch;

/* A libarchive reader that takes tar in every format and compression libarchive knows. */
struct archive *import_tar_reader_new(void);

/* A tar reader whose decompression runs in a second thread, so that decompressing (zlib, xz, zstd
 * are single-threaded) overlaps with chunking, hashing and storing. The source is a file, or a
 * libarchive-style read callback (which is then called from the second thread only). */
struct import_stream;
int import_stream_open_file(const char *path, struct import_stream **out, struct archive **tar,
                            struct imgfs_err *err);
int import_stream_open_cb(void *ctx,
                          ssize_t (*read_fn)(struct archive *, void *ctx, const void **buf),
                          struct import_stream **out, struct archive **tar, struct imgfs_err *err);
/* While the tar reader waits more than 100 ms for input (a stalled pipe or network), commit what
 * `b` wrote so far (store_batch_flush): the batch keeps the store's lock, as it must, but no LMDB
 * write transaction, which would stall every other writer of the store meanwhile. */
void import_stream_flush_when_idle(struct import_stream *s, struct store_batch *b);
/* Free the tar reader and stop the thread. Returns -1 with the decompressor's own error when it
 * had one (a corrupt gzip stream, say): the tar reader then saw only garbage or a truncated
 * stream, so the caller should report this error instead of its own. With `tar_failed`, the rest
 * of the stream is decompressed first, so that a checksum error at its end is found. */
int import_stream_close(struct import_stream *s, bool tar_failed, struct imgfs_err *err);
/* For pulls: like import_stream_open_cb, and every uncompressed byte is hashed on its way to the
 * tar reader. import_stream_finish then decompresses the rest of the stream (what the tar reader
 * left: end-of-archive blocks, padding), closes it like import_stream_close, and gives the SHA-256
 * of the whole uncompressed stream — the diff_id an image config lists for the layer. */
int import_stream_open_cb_hashed(void *ctx,
                                 ssize_t (*read_fn)(struct archive *, void *ctx, const void **buf),
                                 struct import_stream **out, struct archive **tar,
                                 struct imgfs_err *err);
int import_stream_finish(struct import_stream *s, struct digest *uncompressed,
                         struct imgfs_err *err);

/* What one import may bring in, so that a small archive cannot keep it busy for days or fill the
 * store: content bytes (as read, after decompression; holes of sparse files are not content and
 * cost nothing) and entries, over all the layers of the import. 0 = no limit. Going over is EFBIG,
 * found at the member's header, before its data is read. */
struct import_limits {
    uint64_t max_bytes, max_files;
    uint64_t bytes, files; /* used so far; import_layer_limited adds to them */
};
#define IMPORT_DEFAULT_MAX_BYTES (256ull << 30) /* 256 GiB */
#define IMPORT_DEFAULT_MAX_FILES 4000000ull
/* The defaults above, nothing used yet. */
void import_limits_init(struct import_limits *l);

/* Read every member of `in` (opened by the caller, positioned before the first header). `what`
 * names the source in errors ("layer 2 of foo.tar"). A member's sparse map (GNU, pax) is taken
 * as declared: holes stay holes (layer_builder_add_runs). import_layer applies the default limits
 * to this one layer; import_layer_limited counts against `limits`, shared by the layers of one
 * import. */
int import_layer(struct store_batch *b, struct archive *in, const char *what,
                 struct layer_build_result *out, struct imgfs_err *err);
/* import_layer, leaving out the members at the layer's root named in `skip` (NULL-terminated):
 * for eStargz blobs, whose TOC and prefetch landmark are members a plain runtime extracts but
 * are not part of the image imgfs keeps (docs/formats.md). */
int import_layer_skip(struct store_batch *b, struct archive *in, const char *what,
                      const char *const *skip, struct layer_build_result *out,
                      struct imgfs_err *err);
int import_layer_limited(struct store_batch *b, struct archive *in, const char *what,
                         struct import_limits *limits, struct layer_build_result *out,
                         struct imgfs_err *err);

/* The images an archive import committed, in the archive's order: each one's config digest
 * (Docker's image ID) and the names it was given (normalized; none for an unnamed one). */
struct import_images {
    struct import_image {
        struct digest manifest, config;
        char **names;
        size_t n_names;
    } * v;
    size_t n;
};
void import_images_free(struct import_images *l);

/* Import SOURCE: a rootfs tarball (any compression), a `docker save` archive, an OCI image layout
 * (directory or tar), or "-" for stdin (any of those). Tags `name` when not NULL (for archives that
 * carry names of their own and no `name` is given, those are used). `changes` (NULL-terminated, may
 * be NULL) are Dockerfile-style config changes for a rootfs (image_config_edit). `limits` bounds
 * the whole import (NULL: the defaults). The manifest digest goes to *out (the first image's, for
 * an archive of several); `images` (may be NULL) gets every image an archive held (left empty for
 * a rootfs). Atomic: on failure no name changes. */
int import_source(struct store *s, const char *source, const char *name, char *const *changes,
                  struct import_limits *limits, struct digest *out, struct import_images *images,
                  struct imgfs_err *err);

#endif
