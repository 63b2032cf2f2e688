/* pull.h — bringing an image from a registry into the store (docs/registry.md).
 *
 * pull_image resolves REF (registry_resolve: the index, the platform's manifest), fetches and
 * verifies the config, and streams every layer blob through the tar import (import_layer): no
 * temporary file holds a layer. While a layer streams, its compressed bytes are hashed (they must
 * be the manifest's digest and size) and so are its uncompressed bytes (they must be the config's
 * diff_id); a layer that fails either check, or a broken download, fails the pull. Layers are
 * pulled in parallel (`jobs` at a time). A broken transfer resumes with a Range request from where
 * it stopped (registry_get_blob).
 *
 * What is stored: the canonical image (layers named by their canonical tar digest, its manifest,
 * config and view: what mount, run and export use) and, as blobs, the index, manifest and config
 * exactly as served; the canonical manifest names them (image.h, struct image_source). The image
 * is tagged with the reference's store name and with REPO@<registry digest>, so a later pull by
 * digest or tag of the same image finds it without downloading anything. Nothing is named until
 * everything is stored and verified: a failed pull changes no name.
 *
 * Lazy pulls (issue 6, sections 2-3) are a different layer path over the same resolve and
 * commit: pull_resolve gives what a lazy pull needs, pull_commit names the result. */
#ifndef IMGFS_PULL_H
#define IMGFS_PULL_H

#include "digest.h"
#include "reference.h"
#include "registry.h"
#include "util.h"

#include <stdbool.h>
#include <stdint.h>

struct store;
struct store_batch;
struct image_layer;

enum pull_event_kind {
    PULL_RESOLVED,       /* the manifest is known: n_layers, digest = registry digest */
    PULL_UP_TO_DATE,     /* the store has the image already: nothing to download */
    PULL_LAYER_EXISTS,   /* layer `layer` is in the store already (pulled before) */
    PULL_LAYER_START,    /* downloading layer `layer`: total = its size */
    PULL_LAYER_PROGRESS, /* done bytes of total */
    PULL_LAYER_DONE,     /* verified and stored */
    PULL_LAYER_WHOLE,    /* a lazy pull pulls layer `layer` whole: `note` says why */
    PULL_DONE,           /* named: digest = the registry digest */
};

struct pull_event {
    enum pull_event_kind kind;
    size_t layer, n_layers;      /* 0-based layer index */
    const struct digest *digest; /* the layer blob's, or the image's registry digest */
    uint64_t done, total;        /* bytes */
    const char *note;            /* PULL_LAYER_WHOLE: why */
};

struct pull_options {
    const char *platform;             /* "os/arch[/variant]"; NULL = linux/amd64 */
    struct registry_options registry; /* TLS, credentials, budget */
    unsigned jobs;                    /* layers at a time; 0 = 3 (Docker's default) */
    /* Called for every event, one call at a time (from the pulling threads). */
    void (*event)(void *ctx, const struct pull_event *e);
    void *event_ctx;
};

/* The parts of a pull before and after the layers, for other layer paths (lazy pulls). */
struct pull_plan {
    struct ref ref;
    char *name; /* the store name (ref_store_name) */
    struct registry_client *client;
    struct registry_image image; /* index, manifest, descriptors */
    struct buf config;           /* as served, verified against its descriptor */
    struct digest *diff_ids;     /* the config's rootfs.diff_ids, one per layer */
    char *registry_name;         /* "REPO@sha256:..." of the registry digest (store name) */
};
/* Parse `ref`, open a client, resolve the manifest and fetch the config; checks the config has
 * one diff_id per layer. */
int pull_resolve(const char *ref, const struct pull_options *o, struct pull_plan *out,
                 struct imgfs_err *err);
/* Put the served documents into `b`, commit the canonical image of `layers` (image_commit_source)
 * and tag it with plan->name and plan->registry_name. */
int pull_commit(struct store_batch *b, const struct pull_plan *p, const struct image_layer *layers,
                struct digest *out, struct imgfs_err *err);
void pull_plan_free(struct pull_plan *p);
/* Pull layers i of the plan with want[i] whole, as pull_image does (a blob pulled before by any
 * image is reused); the lazy path uses it for the layers that cannot be read lazily. Each layer's
 * content is committed unnamed: the caller holds a batch open meanwhile (against gc). Layer i's
 * result goes to layers[i], with its file table in tables[i] (caller frees; layers[i].table
 * points into it). */
int pull_layers(struct store *s, const struct pull_options *o, struct pull_plan *plan,
                const bool *want, struct image_layer *layers, struct buf *tables,
                struct imgfs_err *err);

/* The tags of the repository `repo` (a reference; its tag or digest is not looked at), for
 * `pull --all-tags`: registry_list_tags. */
int pull_list_tags(const char *repo, const struct pull_options *o, char ***tags, size_t *n,
                   struct imgfs_err *err);

/* Pull `ref` into `s`. On success the canonical manifest digest goes to *out (may be NULL) and
 * the store name to *name (caller frees; may be NULL). */
int pull_image(struct store *s, const char *ref, const struct pull_options *o, struct digest *out,
               char **name, struct imgfs_err *err);

#endif
