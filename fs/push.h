/* push.h — uploading an image from the store to a registry (docs/registry.md, docs/formats.md).
 *
 * push_image takes the image's layers `jobs` at a time; each is encoded (push_encode_layer) into a
 * temporary file under ROOT/tmp (the blob's digest must be known before the upload: HEAD checks
 * it, the final PUT names it), then uploaded: HEAD (the registry has it: skipped),
 * else a cross-repository mount when imgfs pushed the same blob to another repository of that
 * registry before (ROOT/pushed-blobs, a bounded cache of hints), else an upload (monolithic up to
 * chunk_size, chunked PATCHes beyond). Then the config, then the manifest
 * under the reference's tag (or digest). The pushed manifest's digest is recorded as the image's
 * name REPO@sha256:... (Docker's RepoDigests), so `imgfs images --digests` shows it.
 *
 * What is pushed is imgfs's own form: each layer is push_encode_layer's eStargz blob of the stored
 * layer, the config is the image's config with rootfs.diff_ids set to those blobs' uncompressed
 * digests, and the manifest an OCI image manifest with the eStargz annotations
 * (estargz_image_json). A pulled image is pushed in that form too: its layers
 * are not the registry's original blobs (imgfs keeps their content, not their bytes), so its
 * pushed digest differs from the one it was pulled by. Output is deterministic: the same image
 * pushed twice, from two stores, gives the same blobs and manifest. */
#ifndef IMGFS_PUSH_H
#define IMGFS_PUSH_H

#include "digest.h"
#include "estargz.h"
#include "registry.h"
#include "util.h"

#include <stdint.h>

struct store;
struct store_read;

#define PUSH_SPARSE_LIMIT_DEFAULT (4ull << 30)

/* THE function that turns a stored layer (its file table) into the blob imgfs pushes, written
 * to `fd`: an eStargz blob (estargz_write: a gzip member per FastCDC chunk, the TOC, the footer),
 * which every runtime pulls as a plain tar+gzip layer and imgfs mounts lazily. */
int push_encode_layer(struct store_read *r, const void *table, size_t table_len,
                      const struct estargz_write_options *o, int fd, struct estargz_result *out,
                      struct imgfs_err *err);

enum push_event_kind {
    PUSH_PREPARED,        /* the layers are known (n_layers), `from` = the target repository
                           * ("HOST/PATH"); each layer is encoded before its upload */
    PUSH_LAYER_PREPARING, /* encoding layer `layer`: digest = the stored layer's */
    PUSH_LAYER_EXISTS,    /* the registry has the blob */
    PUSH_LAYER_MOUNTED,   /* mounted from another repository (`from`) */
    PUSH_LAYER_START,     /* uploading: total = size */
    PUSH_LAYER_PROGRESS,  /* done of total */
    PUSH_LAYER_DONE,      /* uploaded */
    PUSH_DONE,            /* the manifest is in: digest = its digest, total = its size,
                           * `from` = the tag (or digest) it was put under */
};
struct push_event {
    enum push_event_kind kind;
    size_t layer, n_layers;
    const struct digest *digest;
    uint64_t done, total;
    const char *from;
};

struct push_options {
    struct registry_options registry;
    size_t chunk_size; /* 0 = monolithic up to 16 MiB, chunked beyond */
    unsigned jobs;     /* layers uploaded at a time; 0 = 3 */
    /* the holes of sparse files are written out as zeros (tar+gzip and eStargz have no holes): at
     * most this many bytes of them in the whole image, else EFBIG before anything is encoded or
     * sent; 0 = PUSH_SPARSE_LIMIT_DEFAULT */
    uint64_t sparse_limit;
    /* Called for every event, one call at a time (from the uploading threads). */
    void (*event)(void *ctx, const struct push_event *e);
    void *event_ctx;
};

/* Push the local image `image` (a name or digest) to `ref` (NULL = image's own name). The pushed
 * manifest's digest goes to *out (may be NULL). */
int push_image(struct store *s, const char *image, const char *ref, const struct push_options *o,
               struct digest *out, struct imgfs_err *err);

/* The tags the store has for repository `repo` (a reference whose tag or digest is not looked
 * at; names by digest are left out), in name order, for `push --all-tags`. Caller frees each and
 * the array. */
int push_local_tags(struct store *s, const char *repo, char ***tags, size_t *n,
                    struct imgfs_err *err);

#endif
