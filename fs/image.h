/* image.h — an image in the store: an OCI manifest (always schemaVersion 2, media type
 * application/vnd.oci.image.manifest.v1+json), its config, and its layers, bottom first.
 *
 * Canonical form: imgfs stores every layer uncompressed and names it by its diff_id, so the manifest
 * it keeps lists each layer as `application/vnd.oci.image.layer.v1.tar` with digest = diff_id. The
 * image digest is the SHA-256 of that manifest; export writes exactly these blobs, so
 * import(export(x)) has x's digest. */
#ifndef IMGFS_IMAGE_H
#define IMGFS_IMAGE_H

#include "digest.h"
#include "util.h"

#include <stdbool.h>
#include <stdint.h>

struct store_read;
struct store_batch;

/* The parts of an OCI image config that running an image needs. Arrays are NULL-terminated; a
 * NULL array means "not set" (which differs from an empty one for Entrypoint and Cmd). */
struct image_config {
    char **env;        /* "KEY=value" */
    char **entrypoint;
    char **cmd;
    char *working_dir; /* NULL when unset */
    char *user;        /* NULL when unset */
    char **exposed_ports; /* "80/tcp" */
    char **volumes;
    char **labels;        /* "key=value" */
    char *stop_signal;
    char *architecture, *os;
};
int image_config_parse(const char *json, size_t len, struct image_config *out,
                       struct imgfs_err *err);
void image_config_free(struct image_config *c);

/* Apply Dockerfile-style changes to a config, as `docker import --change` does: CMD, ENTRYPOINT
 * (JSON or shell form), ENV, EXPOSE, WORKDIR, USER, LABEL, VOLUME, STOPSIGNAL. `config_json` NULL
 * starts from a fresh linux/amd64 config. The new config (JSON) goes to *out (caller frees). */
int image_config_edit(const char *config_json, size_t len, char *const *changes, char **out,
                      size_t *out_len, struct imgfs_err *err);

/* Where a pulled image came from: the documents exactly as the registry served them (kept as
 * blobs, so `inspect` shows the registry's digest and push can say what it was). The canonical
 * manifest names them in its annotations (docs/formats.md, "Pulled images"). */
struct image_source {
    struct digest manifest; /* the platform's manifest as served */
    struct digest config;   /* the config as served */
    struct digest index;    /* the index / manifest list it was chosen from, when has_index */
    bool has_index;
};
#define IMAGE_ANNOT_SOURCE_MANIFEST "org.imgfs.source.manifest"
#define IMAGE_ANNOT_SOURCE_CONFIG   "org.imgfs.source.config"
#define IMAGE_ANNOT_SOURCE_INDEX    "org.imgfs.source.index"

struct image {
    struct digest digest;        /* of the manifest */
    struct digest config_digest;
    char *manifest_json;
    size_t manifest_len;
    char *config_json;
    size_t config_len;
    size_t n_layers;
    struct digest *layers;       /* diff_ids, bottom first */
    uint64_t *layer_sizes;       /* canonical tar size of each layer */
    struct image_config config;
    bool has_source; /* pulled from a registry: */
    struct image_source source;
};
/* The digest a registry knows a pulled image by (its index when there was one, else its
 * manifest); the image's own digest for other images. */
const struct digest *image_registry_digest(const struct image *img);
/* Load an image by manifest digest. */
int image_load(struct store_read *r, const struct digest *manifest, struct image *out,
               struct imgfs_err *err);
/* The config digest of the image whose manifest is `manifest` (Docker's image ID). */
int image_config_digest(struct store_read *r, const struct digest *manifest, struct digest *config,
                        struct imgfs_err *err);
/* store_image_resolve, then what Docker users type: the image ID, a config digest ("sha256:HEX")
 * or a unique prefix of one (4 hex digits or more), among the named images. A name or a manifest
 * digest (prefix) found by store_image_resolve wins. EINVAL when a prefix fits more than one image,
 * ENOENT when nothing fits. */
int image_resolve(struct store_read *r, const char *ref, struct digest *manifest,
                  struct imgfs_err *err);
/* Resolve a reference (image_resolve) and load it. */
int image_load_ref(struct store_read *r, const char *ref, struct image *out,
                   struct imgfs_err *err);
void image_free(struct image *img);
/* fsck of an image's view: the stored view must open, and be byte for byte the view its layers
 * make (view_build over their tables, as image_commit wrote it) — so a flipped bit anywhere in it
 * (a chunk digest, a size, a name) is found before a read through a mount fails with EIO.
 * ENOENT: no view or a layer table is missing; EIO: it differs or does not open. */
int image_check_view(struct store_read *r, const struct image *img, struct imgfs_err *err);

/* One layer handed to image_commit: its diff_id, canonical tar size and file table. */
struct image_layer {
    struct digest diff_id;
    uint64_t size;
    const void *table;
    size_t table_len;
};

/* Make an image from layers (bottom first) and a config: `config_json` is the image's original
 * config (NULL for a bare rootfs: a fresh linux/amd64 config is made). rootfs.diff_ids is set to
 * the layers' diff_ids; everything else in the config is kept. Puts config, manifest and the merged
 * view into the batch and tags `name` (when not NULL). The manifest digest goes to *out. */
int image_commit(struct store_batch *b, const char *config_json, size_t config_len,
                 const struct image_layer *layers, size_t n_layers, const char *name,
                 struct digest *out, struct imgfs_err *err);
/* image_commit for a pulled image: the canonical manifest also names `source` (whose blobs the
 * caller puts in the batch). */
int image_commit_source(struct store_batch *b, const char *config_json, size_t config_len,
                        const struct image_layer *layers, size_t n_layers,
                        const struct image_source *source, const char *name, struct digest *out,
                        struct imgfs_err *err);

/* The config and manifest image_commit_source stores for these layers (the config's
 * rootfs.diff_ids set to theirs; sorted keys, compact), with their digests; nothing is stored.
 * Free with image_documents_free. */
struct image_documents {
    char *config, *manifest;
    size_t config_len, manifest_len;
    struct digest config_digest, manifest_digest;
};
int image_documents(const char *config_json, size_t config_len, const struct image_layer *layers,
                    size_t n_layers, const struct image_source *source, struct image_documents *out,
                    struct imgfs_err *err);
void image_documents_free(struct image_documents *d);

/* Make an image of `parent`'s layers (NULL: none, `FROM scratch`) with `layers` on top, and a
 * config: `config_json`, or the parent's when NULL (a fresh one without a parent). The parent's
 * file tables are read through `r` (a read begun after the batch, so gc cannot have freed them);
 * the view is built for the whole new stack. Otherwise as image_commit. */
int image_commit_on(struct store_batch *b, struct store_read *r, const struct image *parent,
                    const char *config_json, size_t config_len, const struct image_layer *layers,
                    size_t n_layers, const char *name, struct digest *out, struct imgfs_err *err);

/* One `history` entry of a config (Docker's fields). */
struct image_history {
    int64_t created;        /* unix seconds, also the config's `created`; -1: not written */
    const char *created_by; /* "RUN /bin/sh -c make", "imgfs commit", NULL */
    const char *comment;    /* NULL or "" : none */
    const char *author;     /* NULL or "": none; also the config's `author` */
    bool empty_layer;       /* a step that made no layer (ENV, CMD...) */
};
/* Append a history entry to a config (NULL: a fresh one); the new JSON to *out (caller frees). */
int image_config_add_history(const char *config_json, size_t len, const struct image_history *h,
                             char **out, size_t *out_len, struct imgfs_err *err);

#endif
