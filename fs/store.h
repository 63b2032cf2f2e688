/* store.h — the content-addressed LMDB store. The schema is written down in docs/store.md.
 *
 * One LMDB environment per root directory (`--root`, IMGFS_ROOT, default /var/lib/imgfs). Named
 * databases:
 *   chunk  sha256(32 bytes) -> the chunk's bytes, exactly (served zero-copy from the map)
 *   blob   sha256           -> small content-addressed documents: OCI manifests and configs
 *   layer  diff_id sha256   -> the layer's file table (layer.h)
 *   view   manifest sha256  -> the image's merged tree (view.h)
 *   image  name             -> manifest sha256 (32 bytes) + tagging time (int64 seconds, LE)
 *   remote chunk sha256     -> where to fetch an absent chunk (filled by later, lazy-pull work)
 *   meta   "schema"         -> "1"
 *
 * Concurrency: any number of processes may open one store. Readers never block (LMDB MVCC). Writes
 * go through a batch: content-addressed records (chunks, blobs, layers, views) are committed in
 * batches of about 64 MiB as they come; names (the only thing that makes an image visible) are
 * written in the batch's final transaction. A batch holds a shared lock on `ROOT/lock` for its
 * whole life and gc an exclusive one, so gc never frees the chunks of an import in progress; a
 * killed import leaves only unreferenced records, which the next gc frees. A mounted image holds a
 * lease (a locked file under ROOT/leases) so gc keeps everything it references even after `rmi`.
 *
 * Thread-safety: a `struct store` may be shared by threads; a `struct store_read` and a
 * `struct store_batch` belong to one thread at a time. Never use a store across fork(). */
#ifndef IMGFS_STORE_H
#define IMGFS_STORE_H

#include "digest.h"
#include "util.h"

#include <stdbool.h>
#include <stdint.h>

#define STORE_DEFAULT_ROOT "/var/lib/imgfs"

enum store_db {
    STORE_CHUNK,
    STORE_BLOB,
    STORE_LAYER,
    STORE_VIEW,
    STORE_CACHE,
    STORE_REMOTE,
    STORE_DB_COUNT
};

/* The build cache (`buildcache` database, written by builder/): key = a build step's cache key,
 * value = this struct as bytes. gc treats a record younger than IMGFS_BUILD_CACHE_KEEP seconds
 * (default STORE_CACHE_KEEP_DEFAULT) as a root for its layer; an older one is deleted unless a
 * named image still uses the layer. store_get/store_batch_put/store_foreach take STORE_CACHE. */
struct store_cache_value {
    int64_t created;     /* when the step ran (unix seconds), also its history time */
    struct digest layer; /* the layer's diff_id (zero with STORE_CACHE_EMPTY_LAYER) */
    uint64_t size;       /* its canonical tar size */
    uint32_t flags;
    uint32_t reserved;
};
enum { STORE_CACHE_EMPTY_LAYER = 1 }; /* the step changed no file (history: empty_layer) */
#define STORE_CACHE_KEEP_DEFAULT (7 * 24 * 3600)

struct store;

enum { STORE_READONLY = 1 };

/* Open (creating when absent and not STORE_READONLY) the store at `root`. */
int store_open(const char *root, unsigned flags, struct store **out, struct imgfs_err *err);
void store_close(struct store *s);
const char *store_root(const struct store *s);

/* A function that fetches absent chunks into the store (lazy pulls, fs/lazy.h). Returns 0 when
 * every one of them is now present (committed: a read transaction begun afterwards sees it), -1
 * with err set otherwise. Called from any thread, several at once. NULL (the default) means absent
 * chunks are errors. Set it before threads use the store. */
typedef int (*store_fetch_fn)(void *ctx, struct store *s, const struct digest *chunks, size_t n,
                              struct imgfs_err *err);
void store_set_fetcher(struct store *s, store_fetch_fn fn, void *ctx);
bool store_has_fetcher(const struct store *s);
/* Does the store hold any remote record (has anything been pulled lazily)? */
bool store_has_remote(struct store *s);

/* Make the chunks present before a read needs them: the absent ones among them are handed to the
 * fetcher in one call (so that it can fetch neighbours together). A no-op without a fetcher. A
 * reader that calls this before store_read_begin finds them in its snapshot. */
int store_chunks_ensure(struct store *s, const struct digest *chunks, size_t n,
                        struct imgfs_err *err);

/* Store fetched (already verified) chunks in one small write transaction, without the batch lock:
 * content-addressed records that a lease keeps alive (the fetching daemon holds one). One data
 * sync per call, not per chunk. A crash loses at most this call's chunks (fetched again later). */
struct store_chunk_in {
    struct digest digest;
    const void *data;
    size_t len;
};
int store_chunks_put(struct store *s, const struct store_chunk_in *chunks, size_t n,
                     struct imgfs_err *err);

/* Where an absent chunk can be fetched (the `remote` database): decompress blob `blob` of the
 * registry repository `source` ("host[:port]/repository") from compressed byte `offset` (a gzip
 * member start) up to at most `end`, skip `inner` bytes; the next `size` bytes are the chunk. */
struct store_remote {
    struct digest blob;
    uint64_t offset, end, inner;
    uint32_t size;
    uint8_t flags; /* STORE_REMOTE_PREFETCH: before its layer's prefetch landmark */
    const char *source;
};
enum { STORE_REMOTE_PREFETCH = 1 };

/* ---- reading ---- */

/* A read transaction: a consistent snapshot. Cheap to begin and end; pointers returned by the
 * getters below stay valid until store_read_end. */
struct store_read;
int store_read_begin(struct store *s, struct store_read **out, struct imgfs_err *err);
void store_read_end(struct store_read *r);

/* The one function every chunk read goes through. Returns the chunk's bytes (a pointer into the
 * map). An absent chunk is handed to the fetcher (if any); without one, or when fetching fails, the
 * error is EIO. With `verify`, the bytes are re-hashed and a mismatch is EIO too. */
int store_chunk_get(struct store_read *r, const struct digest *d, bool verify, const void **data,
                    size_t *len, struct imgfs_err *err);
bool store_chunk_present(struct store_read *r, const struct digest *d);

/* The remote record of `chunk` (source copied into source[source_size]). ENOENT when none. */
int store_remote_get(struct store_read *r, const struct digest *chunk, struct store_remote *out,
                     char *source, size_t source_size, struct imgfs_err *err);

/* Records by key (blob, layer, view). ENOENT when absent. */
int store_get(struct store_read *r, enum store_db db, const struct digest *key, const void **data,
              size_t *len, struct imgfs_err *err);

/* Resolve an image reference: a name ("debian:12", "busybox" meaning "busybox:latest"), a full
 * "sha256:<hex>" manifest digest, or a unique prefix of one (at least 12 hex digits). ENOENT when
 * there is no such image. */
int store_image_resolve(struct store_read *r, const char *ref, struct digest *manifest,
                        struct imgfs_err *err);
/* Normalise a name: add ":latest" when there is no tag. Caller frees. */
char *store_name_normalize(const char *name);

struct store_image_entry {
    const char *name; /* valid during the callback */
    struct digest manifest;
    int64_t tagged_at;
};
/* Call fn for every name in name order; a non-zero return stops the walk and is returned. -1
 * also when the walk could not be completed (an LMDB read error). */
int store_image_foreach(struct store_read *r,
                        int (*fn)(void *ctx, const struct store_image_entry *e), void *ctx);
/* Walk every key of a database (used by gc, fsck and du). Same stopping rule and errors. */
int store_foreach(struct store_read *r, enum store_db db,
                  int (*fn)(void *ctx, const struct digest *key, const void *data, size_t len),
                  void *ctx);

/* ---- writing ---- */

struct store_batch;
int store_batch_begin(struct store *s, struct store_batch **out, struct imgfs_err *err);
/* Content-addressed puts; an existing record is left as it is (same key, same content). */
int store_batch_put(struct store_batch *b, enum store_db db, const struct digest *key,
                    const void *data, size_t len, struct imgfs_err *err);
/* Record (overwriting) where chunk `chunk` can be fetched. gc drops it with the chunk's last
 * reference. */
int store_batch_put_remote(struct store_batch *b, const struct digest *chunk,
                           const struct store_remote *loc, struct imgfs_err *err);
/* Whether a content-addressed record is in the store (committed or in this batch): a writer can
 * skip making a record that is already there (image_commit skips an existing view). */
bool store_batch_has(struct store_batch *b, enum store_db db, const struct digest *key);
/* Whether any put of this batch added a record (false: everything was in the store already). */
bool store_batch_wrote(const struct store_batch *b);
/* Name changes, applied in the final transaction. tag overwrites; untag of a missing name is
 * ENOENT at commit. */
void store_batch_tag(struct store_batch *b, const char *name, const struct digest *manifest);
void store_batch_untag(struct store_batch *b, const char *name);
/* Commit the content-addressed records written so far (names still wait for the commit), so the
 * batch holds no LMDB write transaction — LMDB has one writer at a time, so an open one stalls gc,
 * every other import and the lazy fetcher — while its producer waits for input. */
int store_batch_flush(struct store_batch *b, struct imgfs_err *err);
/* Commit everything (durably) and free the batch. On failure nothing named becomes visible. */
int store_batch_commit(struct store_batch *b, struct imgfs_err *err);
/* Drop the batch; what was already flushed stays unreferenced until gc. */
void store_batch_abort(struct store_batch *b);

/* Hold the store's gc lock shared on a descriptor of its own (returned in *fd; close it to let
 * go): gc waits while it is held, so what a long writer such as a build puts in through several
 * batches stays in the store before anything names it. Independent of the batches' own lock. */
int store_pin(struct store *s, int *fd, struct imgfs_err *err);

/* ---- leases and garbage collection ---- */

/* Keep an image's records alive while it is in use (a mount). Released by store_lease_release or
 * by the death of the process. */
struct store_lease;
int store_lease_take(struct store *s, const struct digest *manifest, struct store_lease **out,
                     struct imgfs_err *err);
void store_lease_release(struct store_lease *l);
/* Say what holds the lease: `note` (one short line, a mount's device for the FUSE keeper) is
 * written into the lease file, where store_lease_held finds it. */
int store_lease_note(struct store_lease *l, const char *note, struct imgfs_err *err);
/* Whether a live process holds a lease under `root` whose note is `note` (without opening the
 * store: a look at ROOT/leases, which leaves stale files to gc). */
bool store_lease_held(const char *root, const char *note);

struct store_gc_stats {
    uint64_t chunks_freed, bytes_freed, blobs_freed, layers_freed, views_freed, remotes_freed;
    uint64_t traces_freed; /* ROOT/traces entries of images no longer stored */
};
/* Free every record no name and no live lease reaches, and the recorded start-ups
 * (ROOT/traces) of the images freed. Waits for imports in progress. Refuses
 * (an error naming the image and the damage, nothing freed) when a named or mounted image cannot
 * be loaded — its manifest, config or a layer table is missing or corrupt — since what it uses
 * could then not be marked; `imgfs rmi` of the name lets gc free it. A lease whose manifest is
 * gone altogether (an rmi'd image whose records a gc already freed) keeps nothing. */
int store_gc(struct store *s, struct store_gc_stats *stats, struct imgfs_err *err);

/* Implemented by the image model (image.c): report every record an image references to `mark`;
 * store_gc_mark_layer: a layer record and its chunks (for the build cache). Both fail (ENOENT for
 * a missing record, EIO/EINVAL for a corrupt one) when a record cannot be read: marking must not
 * silently mark less than the image uses. */
int store_gc_mark_image(struct store_read *r, const struct digest *manifest,
                        void (*mark)(void *ctx, enum store_db db, const struct digest *d),
                        void *ctx, struct imgfs_err *err);
int store_gc_mark_layer(struct store_read *r, const struct digest *diff_id,
                        void (*mark)(void *ctx, enum store_db db, const struct digest *d),
                        void *ctx, struct imgfs_err *err);
/* Delete every build cache record (`imgfs gc --build-cache`); the next store_gc frees what only
 * they kept. *dropped: how many. */
int store_cache_drop(struct store *s, uint64_t *dropped, struct imgfs_err *err);

struct store_usage {
    uint64_t chunks, chunk_bytes; /* distinct chunks and their bytes: what is stored */
    uint64_t map_bytes;           /* size of the LMDB data file */
};
int store_usage(struct store *s, struct store_usage *u, struct imgfs_err *err);

#endif
