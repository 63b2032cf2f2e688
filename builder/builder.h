/* builder.h — building images from Dockerfiles (the executor; the language is dockerfile.h).
 *
 * build_run() parses the Dockerfile, works out which stages the target needs, and builds them in
 * the store: FROM a local image, `scratch` or an earlier stage; metadata instructions change only
 * the config; COPY/ADD read straight from the context directory into a new layer; RUN runs through
 * the runner on an overlay over the mounted parent and its upper directory becomes the layer.
 * docs/builder.md has the reasons.
 *
 * Build cache: each layer step has a key (parent + instruction after expansion + the build args it
 * uses + the content digests of its inputs: content, mode, owner, never mtimes). A key found in the
 * store's `buildcache` database (fs/store.h) reuses its layer without running anything.
 *
 * Atomicity: every layer goes into the store through batches; only the final commit names the
 * image (every -t NAME at once). A failed or interrupted build names nothing and leaves no mount
 * or container behind (what it wrote is unreferenced until gc).
 *
 * The builder prints nothing: progress goes through `struct build_progress` (tools/ renders it).
 * Errors follow util.h's convention; a Dockerfile error or a failed step names FILE:LINE. */
#ifndef IMGFS_BUILDER_H
#define IMGFS_BUILDER_H

#include "../fs/digest.h"
#include "../fs/util.h"

#include <stdbool.h>
#include <stdint.h>

struct build_secret {
    const char *id;
    const char *src; /* host file */
};

/* What happens during a build, for a progress display. `step` numbers steps from 1 across the
 * whole build; `name` is "[stage N/M] INSTRUCTION" as BuildKit shows it. All may be NULL. Called
 * from the building thread(s); the builder serialises the calls. */
struct build_progress {
    void *ctx;
    void (*step_start)(void *ctx, int step, const char *name);
    void (*step_output)(void *ctx, int step, const char *data, size_t len);
    /* cached: the step's result came from the build cache */
    void (*step_done)(void *ctx, int step, bool cached, double seconds);
    /* a message for the user (a warning, "writing image ..."), without newline */
    void (*note)(void *ctx, const char *msg);
};

enum build_network { BUILD_NET_PRIVATE, BUILD_NET_HOST, BUILD_NET_NONE };

struct build_options {
    const char *root;    /* the store */
    const char *run_dir; /* runtime state (mounts) */
    const char *context; /* the context directory; NULL: no context (Dockerfile from stdin) */
    const char *dockerfile_path; /* for messages and FILE.dockerignore ("Dockerfile") */
    const char *dockerfile;      /* its text */
    size_t dockerfile_len;
    char **tags;        /* NULL-terminated names to give the image, or NULL */
    char **build_args;  /* "K=V" or "K" (our environment's value), NULL-terminated or NULL */
    char **labels;      /* "K=V", NULL-terminated or NULL */
    const char *target; /* the stage to build; NULL: the last */
    bool no_cache;
    bool pull; /* accepted; every base is local today */
    enum build_network network;
    const struct build_secret *secrets;
    size_t n_secrets;
    int64_t source_date_epoch; /* >= 0: SOURCE_DATE_EPOCH (timestamps, mtimes clamped) */
    const struct build_progress *progress;
};

struct build_result {
    struct digest image; /* the manifest digest */
    int steps, cached;   /* steps run and of those taken from the cache */
};

/* Build. On a step failure, err names the step and FILE:LINE; a RUN that exits non-zero sets
 * err->code = ECHILD and *failed_status to its exit status. */
int build_run(const struct build_options *o, struct build_result *out, int *failed_status,
              struct imgfs_err *err);

#endif
