/* estargz.h — eStargz layers (stargz-snapshotter's docs/estargz.md), written and read.
 *
 * An eStargz layer is an ordinary tar+gzip OCI layer whose gzip stream is a concatenation of
 * members cut at known places: every chunk of file content starts a member, the last tar entry
 * `stargz.index.json` (the TOC: every entry with its chunks' compressed offsets and SHA-256) starts
 * one, and a 51-byte empty member (the footer) ends the blob and holds the TOC's offset. A reader
 * can so fetch the footer, then the TOC, then any chunk, each with one Range request.
 *
 * imgfs writes its layers this way with its own FastCDC chunks as the eStargz chunks, so a TOC's
 * `chunkDigest` is exactly the key of that chunk in the store: a chunk held from any image is
 * recognised before it is fetched. It reads eStargz from other tools too (per-file or fixed-size
 * chunks of any size, several chunks in one member via `innerOffset`). Decisions: docs/formats.md.
 */
#ifndef IMGFS_ESTARGZ_H
#define IMGFS_ESTARGZ_H

#include "digest.h"
#include "util.h"

#include <stdbool.h>
#include <stdint.h>

struct store_read;

#define ESTARGZ_FOOTER_SIZE     51
#define ESTARGZ_TOC_NAME        "stargz.index.json"
#define ESTARGZ_PREFETCH_NAME   ".prefetch.landmark"
#define ESTARGZ_NOPREFETCH_NAME ".no.prefetch.landmark"
/* Layer descriptor annotations */
#define ESTARGZ_ANNOTATION_TOC_DIGEST        "containerd.io/snapshot/stargz/toc.digest"
#define ESTARGZ_ANNOTATION_UNCOMPRESSED_SIZE "io.containers.estargz.uncompressed-size"

/* Limits on what a reader accepts (a TOC is untrusted input). */
#define ESTARGZ_TOC_MAX     (256u << 20) /* uncompressed TOC JSON */
#define ESTARGZ_ENTRIES_MAX (8u << 20)
#define ESTARGZ_CHUNK_MAX   (64u << 20) /* uncompressed size of one chunk */

/* ---- writing ---- */

struct estargz_write_options {
    /* Paths (as in the layer table: "usr/bin/go") of the files to put first, in this order, before
     * the prefetch landmark; parent directories move with them. NULL/0: none, and the layer starts
     * with the no-prefetch landmark. Paths not in the layer are ignored. */
    const char *const *prefetch;
    size_t n_prefetch;
};

struct estargz_result {
    struct digest blob; /* SHA-256 of the compressed blob: the layer's digest in a manifest */
    uint64_t blob_size;
    struct digest
        diff_id; /* SHA-256 of the whole uncompressed stream (TOC and landmark included) */
    uint64_t uncompressed_size;
    struct digest toc_digest; /* SHA-256 of the TOC JSON: the toc.digest annotation */
    uint64_t toc_offset;
};

/* Receives the blob in order; returns 0, or -1 with err set to stop the write. */
typedef int (*estargz_sink_fn)(void *ctx, const void *data, size_t len, struct imgfs_err *err);

/* Write a stored layer (its file table, layer.h) as an eStargz blob to `sink`. Chunk data is read
 * through store_chunk_get (verified). Deterministic: the same table and options give the same bytes
 * (fixed gzip level and header, member layout fixed by the table). */
int estargz_write(struct store_read *r, const void *table, size_t table_len,
                  const struct estargz_write_options *o, estargz_sink_fn sink, void *sink_ctx,
                  struct estargz_result *out, struct imgfs_err *err);

/* The config and manifest of an image whose layers were written by estargz_write (layers[i] for
 * img->layers[i]): the config is the image's own with rootfs.diff_ids set to the eStargz streams'
 * diff_ids; the manifest lists each layer as tar+gzip with its size, digest and the two eStargz
 * annotations. Compact JSON with sorted keys (deterministic). The caller frees both strings. */
struct image;
int estargz_image_json(const struct image *img, const struct estargz_result *layers, char **config,
                       size_t *config_len, char **manifest, size_t *manifest_len,
                       struct imgfs_err *err);

#define ESTARGZ_MT_LAYER    "application/vnd.oci.image.layer.v1.tar+gzip"
#define ESTARGZ_MT_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define ESTARGZ_MT_CONFIG   "application/vnd.oci.image.config.v1+json"

/* ---- reading ---- */

/* The TOC's offset from the last ESTARGZ_FOOTER_SIZE bytes of a blob of `blob_size` bytes. EINVAL
 * (with a message saying why) when this is no eStargz footer. */
int estargz_footer_parse(const void *footer, size_t len, uint64_t blob_size, uint64_t *toc_offset,
                         struct imgfs_err *err);

/* Where one chunk lives in the blob: decompress from `offset` (a gzip member start; the member
 * and those after it up to `end`), skip `inner` bytes, and the next `size` bytes are the chunk. */
struct estargz_chunk {
    struct digest digest;
    uint64_t offset, end;
    uint64_t inner;
    uint32_t size;
};

struct estargz_toc {
    struct buf table;             /* the layer's file table (layer.h encoding), landmarks hidden */
    struct estargz_chunk *chunks; /* one per distinct chunk digest, sorted by offset */
    size_t n_chunks;
    uint64_t toc_offset;
    uint64_t prefetch_end;  /* compressed offset of `.prefetch.landmark`; 0 when there is none */
    uint64_t content_bytes; /* sum of the chunks' uncompressed sizes */
    struct digest toc_digest;
};

/* Parse the compressed TOC: the blob's bytes [toc_offset, blob_size - ESTARGZ_FOOTER_SIZE). When
 * `expect` is not NULL, the TOC JSON must hash to it (the layer's toc.digest annotation). Every
 * name, offset and size is checked: `..` parts, offsets past the TOC, chunks that do not tile
 * their file, wrong JSON types, too many entries or bytes are errors (EINVAL) naming the entry. A
 * non-empty regular file without `chunkDigest` (legacy stargz) is ENOTSUP: pull such a layer
 * whole. */
int estargz_toc_parse(const void *data, size_t len, uint64_t toc_offset,
                      const struct digest *expect, struct estargz_toc *out, struct imgfs_err *err);
void estargz_toc_free(struct estargz_toc *t);

/* Extract and verify one chunk from the blob bytes [c->offset, c->end) at `data` (len bytes, may
 * be shorter than the range when the chunk ends earlier). Writes c->size bytes to `out`. A chunk
 * whose SHA-256 differs is EIO and nothing is written to out that a caller may use. */
int estargz_chunk_extract(const void *data, size_t len, const struct estargz_chunk *c, void *out,
                          struct imgfs_err *err);

#endif
