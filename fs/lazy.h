/* lazy.h — lazy pulls: an image whose file tables and view are in the store while its chunks stay
 * in the registry until something reads them (docs/lazy.md).
 *
 * lazy_pull fetches a manifest, its config and each eStargz layer's footer and TOC (at most two
 * Range requests per layer, layers in parallel), stores the TOCs as layer file tables, records in
 * the store's `remote` database where every absent chunk lives (blob, compressed range, registry
 * repository) and commits the image: it can be mounted and run at once. Chunks the store holds
 * already, from any image, are not recorded: they are never fetched.
 *
 * The fetcher (lazy_attach) is what a FUSE daemon installs as the store's fetch hook: a read that
 * needs absent chunks fetches them with one Range request per run of adjacent chunks of one blob
 * (up to LAZY_RUN_MAX compressed bytes; several runs of one blob, such as those around a file
 * already present, in one multi-range request of up to LAZY_RANGES_MAX ranges), verifies each
 * chunk's SHA-256, stores them (one small write transaction per run) and returns. Concurrent
 * readers of a chunk share one fetch; a chunk a reader finds present never waits for anything.
 * Every fetch has a time budget (retries included): past it the read fails (EIO) and a later read
 * tries again.
 *
 * Thread-safety: a `struct lazy` serves any number of threads at once. */
#ifndef IMGFS_LAZY_H
#define IMGFS_LAZY_H

#include "digest.h"
#include "registry.h"
#include "util.h"

#include <stdbool.h>
#include <stdint.h>

struct store;
struct view;

#define LAZY_RUN_MAX            (4u << 20)
#define LAZY_RANGES_MAX         16 /* runs of one blob asked for in one multi-range request */
#define LAZY_DEFAULT_TIMEOUT_MS 5000

struct lazy_options {
    unsigned fetch_timeout_ms;        /* budget per fetch, retries included; 0 = 5 s */
    struct registry_options registry; /* TLS and credentials for the registries chunks come from */
    const char *image;                /* for messages: the image being served */
    /* lazy_complete: called after each request with the uncompressed bytes fetched so far and
     * the total still remote when it began (from the fetching thread; NULL: none) */
    void (*progress)(void *ctx, uint64_t done, uint64_t total);
    void *progress_ctx;
};

struct lazy_stats {
    uint64_t requests;       /* Range requests made */
    uint64_t bytes_fetched;  /* compressed bytes received */
    uint64_t chunks_fetched; /* verified and stored */
    uint64_t chunk_bytes;    /* their uncompressed size */
    uint64_t failures;       /* fetches that ended in an error */
};

struct lazy;
/* Install a fetcher on `s` (store_set_fetcher). The store must outlive it; detach before closing
 * the store. */
int lazy_attach(struct store *s, const struct lazy_options *o, struct lazy **out,
                struct imgfs_err *err);
void lazy_detach(struct lazy *l);
void lazy_get_stats(struct lazy *l, struct lazy_stats *out);

/* Index the remote chunks of the view its reads come from (mount: the image's view), in blob
 * order: a read's fetch may then take the chunks that follow it in the blob (readahead, see
 * docs/lazy.md). Without it there is none. Call before the first read; the fetcher keeps its own
 * copy of what it needs. */
int lazy_readahead_index(struct lazy *l, const struct view *v, struct imgfs_err *err);
/* LANDMARK (0) is the default */
enum lazy_prefetch { LAZY_PREFETCH_LANDMARK, LAZY_PREFETCH_NONE, LAZY_PREFETCH_ALL };
/* Start fetching in the background, behind reads (it pauses while a read fetches): the chunks of
 * the view that lie before their layer's prefetch landmark (LAZY_PREFETCH_LANDMARK: what a
 * recorded start-up reads, in large requests), or every absent chunk (LAZY_PREFETCH_ALL). The view
 * must stay valid until lazy_detach, which stops the thread. */
int lazy_prefetch_start(struct lazy *l, const struct view *v, enum lazy_prefetch what,
                        struct imgfs_err *err);
/* Fetch every absent chunk of the view now (imgfs pull of a lazily pulled image). */
int lazy_fetch_all(struct lazy *l, const struct view *v, struct imgfs_err *err);

/* Bytes of an image's chunks present in the store and still remote (distinct chunks). */
struct lazy_usage {
    uint64_t present_bytes, remote_bytes, missing_bytes; /* missing: absent and no remote record */
    uint64_t present_chunks, remote_chunks, missing_chunks;
};
int lazy_usage(struct store *s, const struct view *v, struct lazy_usage *out,
               struct imgfs_err *err);
/* lazy_usage of image `manifest` (its stored view). */
int lazy_image_usage(struct store *s, const struct digest *manifest, struct lazy_usage *out,
                     struct imgfs_err *err);

/* Fetch every absent chunk of image `manifest` (`imgfs pull` of a lazily pulled image: afterwards
 * it works offline). What was present and remote before goes to *before. */
int lazy_complete(struct store *s, const struct digest *manifest, const struct lazy_options *o,
                  struct lazy_usage *before, struct imgfs_err *err);

/* A recorded start-up (imgfs optimize): the paths of the files it read, in the order of their
 * first read, kept as ROOT/traces/<manifest hex>. push writes them first in their layers, before
 * the prefetch landmark; a lazy mount then fetches them in the background. No trace: 0 paths. */
int lazy_trace_save(const char *root, const struct digest *manifest, const char *const *paths,
                    size_t n, struct imgfs_err *err);
int lazy_trace_load(const char *root, const struct digest *manifest, char ***paths, size_t *n,
                    struct imgfs_err *err);
/* Keep what a mount's trace file (mount_options.trace_path: one "/path" per line, in first-read
 * order; absent = nothing read) recorded as image `manifest`'s start-up (lazy_trace_save); the
 * number of files to *n. */
int lazy_trace_record(const char *root, const struct digest *manifest, const char *trace_file,
                      size_t *n, struct imgfs_err *err);

/* What a lazy pull was told about a registry — --tls-verify, --ca-file, --authfile (absolute
 * paths), or that the host was an insecure one (registry_host_insecure) then — kept in
 * ROOT/registries/HOST.json, so that the fetches that come later from that registry (the mount
 * daemon's, `imgfs pull`'s completion) talk to it the same way whatever their own command line or
 * environment. The fetcher applies it where its own options say nothing (TLS: tls_verify AUTO and
 * no ca_file; credentials: no auth_file). lazy_pull calls it; mount and run call it when given
 * those options for an image they already have. Nothing to remember (defaults, a secure host)
 * removes the file. */
int lazy_registry_remember(const char *root, const char *host, const struct registry_options *o,
                           struct imgfs_err *err);

struct pull_options;
/* Lazily pull `ref` (see above). Layers without an eStargz TOC (plain gzip, zstd, uncompressed)
 * cannot be read lazily: *whole is set and nothing is stored; the caller pulls the image
 * normally. The canonical manifest digest goes to *out, the store name to *name (caller frees;
 * may be NULL). */
int lazy_pull(struct store *s, const char *ref, const struct pull_options *o, struct digest *out,
              char **name, bool *whole, struct imgfs_err *err);

#endif
