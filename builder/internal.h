/* internal.h — what the builder's files share (not a public contract: builder.h is). */
#ifndef IMGFS_BUILDER_INTERNAL_H
#define IMGFS_BUILDER_INTERNAL_H

#include "../fs/digest.h"
#include "../fs/util.h"
#include "../fs/view.h"

#include <jansson.h>

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct store_read;
struct layer_builder;

/* ---- rootfs.c: an image's tree, read without trusting it ---- */

/* Resolve absolute `path` in the view as openat2(RESOLVE_IN_ROOT) would: symlinks are followed
 * (an absolute target or ".." never leaves the root), at most 40 of them; the last component is
 * followed only with follow_last. *out: the resolved path, relative to the root ("" = the root,
 * no leading or trailing "/"; caller frees), including the components that do not exist. *ino:
 * the inode of the whole path, 0 when some part is missing. ENOTDIR when a part that must be a
 * directory is not one; ELOOP past 40 links. */
int rootfs_resolve(const struct view *v, const char *path, bool follow_last, char **out,
                   uint32_t *ino, struct imgfs_err *err);

/* Read a regular file of the image (symlinks resolved in the root), at most `limit` bytes.
 * ENOENT when absent. */
int rootfs_read_file(struct store_read *r, const struct view *v, const char *path, size_t limit,
                     struct buf *out, struct imgfs_err *err);

/* Resolve "USER[:GROUP]" (names or numbers) with the image's /etc/passwd and /etc/group, as
 * BuildKit does: a user name alone takes its passwd entry's group, a number alone the same
 * number. A name that the image does not know is an error naming it. */
int rootfs_resolve_owner(struct store_read *r, const struct view *v, const char *spec,
                         uint32_t *uid, uint32_t *gid, struct imgfs_err *err);

/* ---- the executor's state (build.c) ---- */

struct df_file;
struct df_instruction;
struct df_ignore;
struct store;
struct build_options;
struct build_result;

/* The state of a stage while it is built: its config and layers, and the cache chain that names
 * its filesystem. */
struct bstate {
    json_t *config;        /* the whole image config (config, history, author, created...) */
    struct digest *layers; /* diff_ids, bottom first */
    uint64_t *sizes;
    size_t n_layers;
    struct digest chain; /* cache chain: the filesystem's identity */
    int64_t time;        /* the time of the last layer (history times of metadata steps) */
    char **args;         /* the stage's ARGs in effect: "K=V", or "K" without a value */
    bool cmd_set;        /* CMD given in this stage (ENTRYPOINT keeps it) */
    struct digest image; /* with has_image: the stored image these layers are (FROM's) */
    bool has_image;
    bool step_cached; /* the current step's result came from the cache */
    bool step_empty;  /* ... and it made no layer */
    /* with has_lower_image: a stored image that is the first lower_layers layers (FROM's,
     * kept when layers are added): what a RUN mounts under the layers above it (lowers.c) */
    struct digest lower_image;
    size_t lower_layers;
    bool has_lower_image;
    /* the merged tree, built on demand (state_view) and dropped when a layer is added */
    void *view_copy;
    struct view view;
    bool have_view;
};

struct stage {
    char *name; /* `AS name`, lower case, or NULL */
    size_t index;
    const struct df_instruction *from;
    size_t first, end; /* its instructions after FROM: [first, end) */
    char *base;        /* FROM's image after expansion */
    int base_stage;    /* index of the stage FROM names, or -1 */
    int n_steps;       /* instructions that show as steps */
    struct bstate st;
    /* the stages it needs that are known before it runs (FROM, COPY --from, RUN --mount from=
     * without variables): the scheduler starts it once they are built */
    size_t *deps;
    size_t n_deps;
    /* under build.mu: */
    bool needed;  /* the target needs it: the scheduler builds it */
    bool started; /* a thread builds it (or built it) */
    bool built, failed;
    struct stage *waits_for; /* the stage its thread waits for (cycle detection) */
    int step;                /* the step it is running (progress) */
    pthread_mutex_t view_mu; /* stage_view: readers of a built stage make its view once */
    bool have_view_mu;
    int failed_status; /* a RUN's exit status when it failed */
};

/* A layer of this build as a directory a RUN can stack as an overlay lower (lowers.c): a RUN's
 * upper directory, or a layer written out from its table. `dir` is a step directory
 * (ROOT/tmp/build-step.*, locked while the build lives: build_sweep removes it after a
 * crash); the tree is `upper` in it. */
struct build_layer_dir {
    struct digest layer;
    char *dir;
    char upper[4200];
    int lock_fd;
};

/* A registry image the build pulls, once for all its stages (build.c). */
struct build_pull {
    char *ref;
    bool done; /* the pull ended: rc, and pulled or err */
    int rc;
    struct digest pulled;
    struct imgfs_err err;
};

/* The build's hold on the shared mount of an image its RUNs run on (exec.c). */
struct ctr_mount_holder;
struct build_hold {
    struct digest image;
    struct ctr_mount_holder *holder;
};

struct build {
    const struct build_options *o;
    struct df_file *file;
    struct store *s;
    struct df_ignore *ignore;
    int context_fd;    /* -1 without a context */
    char **meta_args;  /* ARGs before the first FROM, with build args applied: "K=V" / "K" */
    char **build_args; /* "K=V" */
    bool *build_arg_used;
    struct stage *stages;
    size_t n_stages;
    int64_t now;
    /* Independent stages build in threads (at most one per CPU); these are shared and under mu:
     * the step counter, the result's counts, the build args used, which stages are built, the
     * running build containers (so that Ctrl-C or a failed stage ends them all). cond is
     * broadcast when a stage ends. */
    pthread_mutex_t mu;
    pthread_cond_t cond;
    int step; /* last step number given out */
    struct build_result *res;
    bool stop;       /* a stage failed: the others stop at their next step */
    pid_t *monitors; /* build containers' monitors (build_exec) */
    size_t n_monitors;
    /* layer directories a RUN may stack (lowers.c), under mu */
    struct build_layer_dir *dirs;
    size_t n_dirs;
    struct lazy *lazy; /* the store's fetcher: chunks of lazily pulled images a step reads */
    /* the shared mounts of the images RUNs ran on, held until the build ends (exec.c), under
     * mu */
    struct build_hold *holds;
    size_t n_holds;
    /* the registry images pulled (or being pulled) by this build, under mu (build.c) */
    struct build_pull **pulls;
    size_t n_pulls;
    /* the batch of directories to remove once the build has returned (trash.c), under mu */
    char trash[4096];
    int trash_lock; /* -1 until the batch is made */
};

/* True when the build must stop: Ctrl-C, or another stage failed. */
bool build_stopping(struct build *b);
/* Its error: EINTR "interrupted", or ECANCELED when another stage failed. Returns -1. */
int build_stop_error(struct build *b, struct imgfs_err *err);
/* Track a build container's monitor so that a stop ends it (build_exec). */
void build_monitor_add(struct build *b, pid_t pid);
/* Remove DIR and everything below it, best effort, never crossing into a mount (exec.c). */
void build_remove_tree(const char *dir);
/* DIR (a step directory of ours, ROOT/tmp/...) is no longer needed: moved into the build's
 * trash batch, removed after the build by build_trash_release's remover (trash.c); removed
 * here when it cannot be moved. */
void build_discard(struct build *b, const char *dir);
/* At the build's end: hand the trash batch, if any, to a detached remover. */
void build_trash_release(struct build *b);
void build_monitor_remove(struct build *b, pid_t pid);

/* The merged tree of a state (built from its layers when needed). */
int state_view(struct build *b, struct bstate *st, struct store_read *r, const struct view **v,
               struct imgfs_err *err);
/* The merged tree of a built stage that other threads may read at the same time. */
int stage_view(struct build *b, struct stage *sg, struct store_read *r, const struct view **v,
               struct imgfs_err *err);
/* Look up a variable in the stage's environment for expansion (args, then ENV; ENV wins). */
char **state_expand_env(const struct bstate *st);
/* Expand one word / words of an instruction in the state's environment, noting the build args
 * used. Errors name the instruction's line. */
int build_expand(struct build *b, const struct bstate *st, const struct df_instruction *ins,
                 const char *word, char **out, struct imgfs_err *err);
int build_expand_words(struct build *b, const struct bstate *st, const struct df_instruction *ins,
                       const char *word, char ***out, size_t *n, struct imgfs_err *err);
/* A layer step's cache: look `key` up; on a hit the layer is appended to the state. */
int cache_lookup(struct build *b, struct bstate *st, const struct digest *key, bool *hit,
                 struct imgfs_err *err);
/* Record a new layer (or none: `layer` NULL) under `key` in batch `bt` and append it. */
struct store_batch;
int cache_record(struct build *b, struct store_batch *bt, struct bstate *st,
                 const struct digest *key, const struct digest *layer, uint64_t size,
                 struct imgfs_err *err);
/* Append a history entry to the state's config. */
void state_history(struct bstate *st, const char *created_by, bool empty_layer, int64_t when);
/* Commit the state as an image: unnamed (an intermediate for RUN) when names is NULL. */
int state_commit(struct build *b, struct bstate *st, char *const *names, struct digest *out,
                 struct imgfs_err *err);
/* An image FROM or COPY --from names, from the store or pulled from its registry (fs/image.h
 * struct image; image_free it). ENOENT when it is not in the store and names no registry; a
 * failed pull is an error naming `ins`'s line. A registry image is pulled lazily (only its
 * metadata; the build's fetcher brings the chunks a step reads: RUN over it, COPY from it); an
 * image none of whose layers has an eStargz TOC is pulled whole, and a lazy pull pulls whole the
 * layers that lack one (each with a note). */
struct image;
int build_load_image(struct build *b, const char *ref, const struct df_instruction *ins,
                     struct image *img, struct imgfs_err *err);
/* Commit the state's first n layers (with its config) as an unnamed image. */
int state_commit_layers(struct build *b, struct bstate *st, size_t n, struct digest *out,
                        struct imgfs_err *err);
/* The stage a --from names (a stage name, case-insensitive, or its index); NULL when none. */
struct stage *build_find_stage(struct build *b, const char *ref);
/* Build a stage (and what it needs) if not built yet, in this thread; when another thread builds
 * it, wait for that. A stage waiting, through others, for itself is an error (a cycle). */
int build_stage(struct build *b, struct stage *sg, struct imgfs_err *err);

/* copy.c: COPY and ADD. run.c: RUN. */
int copy_step(struct build *b, struct stage *sg, const struct df_instruction *ins,
              struct imgfs_err *err);
int run_step(struct build *b, struct stage *sg, const struct df_instruction *ins,
             struct imgfs_err *err);
/* RUN --mount=type=bind of context path `rel` (cleaned, "" the context): what the command sees
 * is the context as BuildKit sends it — what .dockerignore excludes absent, owners 0:0. Its
 * digest as COPY's key takes it (content, mode, never owners or mtimes) goes to *out. When the
 * host tree is not that (something under `rel` excluded, an owner not 0:0), the tree as sent is
 * written to DIR/src, DIR a step directory (build_step_dir: `dir`, *lock_fd; the caller removes
 * it); else dir[0] is 0 and the host path is what is sent. Errors name `ins`'s line. */
int context_bind(struct build *b, struct stage *sg, const struct df_instruction *ins,
                 const char *rel, struct digest *out, char *dir, size_t dir_size, int *lock_fd,
                 struct imgfs_err *err);
/* WORKDIR's directory (made with the USER's owner when missing). */
int workdir_step(struct build *b, struct stage *sg, const struct df_instruction *ins,
                 const char *dir, struct imgfs_err *err);

/* lowers.c: what a RUN runs on. *image: the image to mount (the state's stored bottom image,
 * or a commit of its bottom layers); *lowers: the directories of the layers above it, top first,
 * NULL-terminated (NULL when none; the caller frees it with strv_free). */
int build_lowers(struct build *b, struct bstate *st, struct digest *image, char ***lowers,
                 struct imgfs_err *err);
/* Keep a finished RUN's upper directory (ex gives it up) as the directory of `layer`. */
struct build_exec;
void build_keep_upper(struct build *b, struct build_exec *ex, const struct digest *layer);
/* Remove every kept directory (at the end of the build). */
void build_lowers_free(struct build *b);

/* exec.c: run a command on an overlay over a store image (the runner's build entry point). */
/* A RUN --mount as the step's monitor makes it: the runner's bind or tmpfs, whose source may be
 * a path in an image (mounted by the monitor for the step: from=STAGE|IMAGE), a copy (rw: the
 * command's writes are discarded with the step) or a cache directory seeded from an image. */
struct build_mount {
    char *source; /* host path; with image: the path inside it ("" its root) */
    char *target;
    bool readonly, tmpfs;
    char *options;     /* tmpfs options */
    const char *image; /* "sha256:..." of a stored image whose tree `source` is in, or NULL */
    bool copy;         /* bind a copy of source, made for the step and removed with it */
    /* a fresh cache directory (source) gets the contents of seed_path in image first */
    const char *seed_image, *seed_path;
};
struct build_exec {
    const struct digest *image; /* the image mounted at the bottom (build_lowers) */
    char **lowers;              /* directories stacked on it, top first, or NULL */
    char **argv, **env;
    const char *user, *workdir, *network;
    /* the command's stdout and stderr, as they come */
    void (*output)(void *ctx, const char *data, size_t len);
    void *output_ctx;
    const struct build_mount *mounts;
    size_t n_mounts;
    /* out: the container's id, and its overlay directories (ROOT/tmp/build-step.*: `upper` is
     * the step's changes), kept until build_exec_release */
    char id[65];
    char dir[4096], upper[4200];
    pid_t pid;
    int lock_fd; /* -1 when none */
};
int build_exec(struct build *b, struct build_exec *ex, int *status, struct imgfs_err *err);
/* A fresh step directory ROOT/tmp/build-step.XXXXXX with an empty `upper` and `work` in it and
 * its `lock` held (*lock_fd) while the caller uses it. */
int build_step_dir(struct build *b, char *dir, size_t size, int *lock_fd, struct imgfs_err *err);
void build_exec_release(struct build *b, struct build_exec *ex);
/* At the build's end, once no step runs: let go of the image mounts its RUNs held, unmounting
 * those no container uses. */
void build_holds_release(struct build *b);

/* Hash helpers for cache keys: a digest over length-prefixed fields. */
struct digest_ctx;
void key_str(struct digest_ctx *c, const char *s);
void key_digest(struct digest_ctx *c, const struct digest *d);

/* ---- strings: NULL-terminated vectors, the runner's helpers (runner/user.c) ---- */
char **strv_append(char **v, const char *s); /* takes a copy */
size_t strv_len(char *const *v);
void strv_free(char **v);
char **strv_dup(char *const *v);

#endif
