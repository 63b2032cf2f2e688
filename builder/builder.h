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

/* --ssh ID=SOCKET: an SSH agent socket RUN --mount=type=ssh,id=ID forwards ("default" when the
 * mount names none) */
struct build_ssh {
    const char *id;
    const char *socket; /* host path of the agent's socket */
};

/* What happens during a build, for a progress display. `step` numbers steps from 1 across the
 * whole build; `name` is "[STAGE i/n] INSTRUCTION" as BuildKit shows it. All may be NULL. Stages
 * that do not depend on each other build at the same time, so several steps may be active at
 * once: the calls come from several threads, at the same time. */
struct build_progress {
    void *ctx;
    void (*step_start)(void *ctx, int step, const char *name);
    void (*step_output)(void *ctx, int step, const char *data, size_t len);
    /* cached: the step's result came from the build cache */
    void (*step_done)(void *ctx, int step, bool cached, double seconds);
    /* the step failed (its error comes back from build_run); canceled: it stopped because
     * another stage failed or the build was interrupted */
    void (*step_failed)(void *ctx, int step, bool canceled);
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
    const struct build_ssh *ssh;
    size_t n_ssh;
    int64_t source_date_epoch; /* >= 0: SOURCE_DATE_EPOCH (timestamps, mtimes clamped) */
    const struct build_progress *progress;
    /* set (by a signal handler) to stop the build before its next step; a running RUN ends
     * with the signal, which its container gets too */
    volatile int *interrupted;
};

struct build_result {
    struct digest image; /* the manifest digest */
    int steps, cached;   /* steps run and of those taken from the cache */
};

/* Build. On a step failure, err names the step and FILE:LINE; a RUN that exits non-zero sets
 * err->code = ECHILD and *failed_status to its exit status. */
int build_run(const struct build_options *o, struct build_result *out, int *failed_status,
              struct imgfs_err *err);

/* `imgfs __build-step SPEC_FD OUT_FD ERR_FD` (hidden; tools/main.c): a RUN step's container
 * monitor, exec'ed by the build for each step, so that it starts as a fresh, single-threaded
 * process. Reads the step (JSON) from SPEC_FD, runs the container with its output on OUT_FD,
 * writes an error that kept it from starting to ERR_FD. Returns the command's exit status, or
 * 125 (CTR_EXIT_FAILED) when it never started. Not for people. */
int build_exec_main(int argc, char **argv);

/* `imgfs __remove-trash ROOT/trash/batch.XXXXXX` (hidden; tools/main.c): removes the batch of
 * step directories a build handed over (builder/trash.c), holding the batch's lock, inherited
 * as fd 3, until it is gone. Not for people. */
int build_trash_main(int argc, char **argv);
/* Remove what builds and removers that died left in the store: step directories nobody holds
 * (ROOT/tmp/build-step.*) and trash batches nobody is removing (ROOT/trash/batch.*). Every
 * build does this first; `imgfs gc` too. */
void build_sweep(const char *root);

/* ---- the Go fast path (gofast.c), like ko ---- */

#define BUILD_GO_DEFAULT_BASE "static:latest"

struct build_go_options {
    const char *root;    /* the store */
    const char *package; /* what `go build` builds: "./cmd/server", ".", an import path */
    const char *dir;     /* where go runs (the module); NULL: the current directory */
    const char *base;    /* the base image; NULL: BUILD_GO_DEFAULT_BASE (tools/mkbase.sh) */
    char **tags;         /* NULL-terminated names, or NULL */
    /* >= 0: the time of the layer's files, `created` and history; -1: 0 (1970), so the same
     * binary always gives the same image digest, as ko does */
    int64_t source_date_epoch;
    const struct build_progress *progress; /* 2 steps: go build, the layer; go's output */
};

/* `imgfs build --go`: `go build -trimpath -buildvcs=false` on the host with CGO_ENABLED=0,
 * GOOS=linux, GOARCH=amd64 and the user's own environment (GOCACHE, GOPATH, GOFLAGS: a warm
 * build cache stays warm), then one layer on the base: /app (0755) and /app/NAME (0755, root),
 * NAME being the binary's name as go chose it (the package's last path element). The config is
 * the base's with Entrypoint ["/app/NAME"] and no Cmd. ENOENT when there is no `go` on PATH or no
 * base image; ECHILD when the compile failed (go's messages went to progress->step_output). */
int build_go(const struct build_go_options *o, struct build_result *out, struct imgfs_err *err);

#endif
