/* runner.h — containers: start one on a rootfs directory, and manage the ones that run.
 *
 * Shape of a container (docs/runner.md has the reasons):
 *
 *   imgfs run ──(foreground: is itself)── monitor ──clone(new mnt,pid,uts,ipc,net ns)──> init (PID
 * 1) └─> command
 *
 * The monitor owns the container's life: it holds the cgroup and the network helpers, writes the
 * state file and records the exit status. Without -d the `imgfs run` process is the monitor (no
 * extra fork on the start path); with -d a detached monitor is forked and `imgfs run` returns once
 * the command started. The init sets up the rootfs inside its own mount namespace (overlayfs upper
 * per container over the image's read-only rootfs, then pivot_root), so every container mount
 * vanishes with the namespace and none can leak on the host. It then forks the command, reaps
 * zombies, forwards signals, and exits with the command's status (128+N when the command died of
 * signal N).
 *
 * State lives under RUN_DIR/containers/ID/: `state.json`, `lock` (held by the monitor for its whole
 * life: a container whose lock is free has no monitor, whatever its state file says), `ctr.log`,
 * `upper/` and `work/` (the writable layer).
 *
 * All functions follow util.h's error convention. */
#ifndef IMGFS_RUNNER_H
#define IMGFS_RUNNER_H

#include "../fs/util.h"

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct image_config;

/* Exit statuses, as Docker's. */
#define CTR_EXIT_FAILED         125 /* imgfs itself failed: the command never started */
#define CTR_EXIT_NOT_EXECUTABLE 126
#define CTR_EXIT_NOT_FOUND      127
/* The image mount under the container died (its keeper and daemon are gone): the container was
 * stopped, as Docker reports 255 for a container whose runtime it lost. */
#define CTR_EXIT_ROOTFS_LOST 255

/* --restart: what the monitor of a container does when its command ends (Docker's policies) */
enum ctr_restart_policy {
    CTR_RESTART_NO,
    CTR_RESTART_ON_FAILURE, /* restart after a non-zero exit, at most restart_max times (0: no
                               limit) */
    CTR_RESTART_ALWAYS,
    CTR_RESTART_UNLESS_STOPPED, /* as always: only a daemon's restart tells them apart, and there is
                                   no daemon (docs/runner.md, "Restart policies") */
};
/* Parse "no", "on-failure[:N]", "always", "unless-stopped" with Docker's messages: EDOM when N is
 * not an integer (what Docker's client refuses), EINVAL for a policy or count its daemon refuses.
 */
int ctr_restart_parse(const char *s, enum ctr_restart_policy *policy, int *max,
                      struct imgfs_err *err);
/* The policy's name as Docker's HostConfig.RestartPolicy.Name has it ("no", "on-failure", ...) */
const char *ctr_restart_name(enum ctr_restart_policy policy);

/* -v HOST:CTR[:ro], -v NAME:CTR, -v CTR (an anonymous volume), --tmpfs CTR[:OPTIONS] and
 * --mount type=bind|volume|tmpfs,... */
struct ctr_mount {
    char *source; /* host path (bind, a volume's data directory) or NULL (tmpfs, a volume not
                   * made yet: ctr_volumes_prepare sets it) */
    char *target; /* absolute path inside the container */
    bool readonly;
    bool tmpfs;
    char *options;     /* tmpfs options ("size=64m,mode=1777"), NULL for the default */
    bool volume;       /* a volume of the store root (ROOT/volumes/NAME/_data) */
    char *volume_name; /* its name; NULL for a new anonymous one (a random id is made) */
    bool anonymous;    /* removed with the container by rm -v and run --rm */
    bool nocopy;       /* volume-nocopy: an empty volume is not filled from the image */
    bool mount_flag;   /* given with --mount (inspect: HostConfig.Mounts, not Binds) */
    char *propagation; /* bind-propagation (private, rprivate, shared, ...); NULL: rprivate */
};

/* Parse one --mount value (Docker's keys: type, source/src, target/destination/dst, readonly/ro,
 * bind-propagation, bind-nonrecursive, volume-nocopy, volume-label, tmpfs-size, tmpfs-mode) with
 * Docker's messages (EINVAL). A bind source must exist (ENOENT), unlike -v. */
int ctr_mount_parse(const char *spec, struct ctr_mount *out, struct imgfs_err *err);
void ctr_mount_free(struct ctr_mount *m);

/* --device HOST[:CONTAINER[:PERMISSIONS]] */
struct ctr_device {
    char *host, *container; /* absolute paths */
    char type;              /* 'c' or 'b' */
    unsigned major, minor;
    mode_t mode; /* the host node's permission bits */
    uid_t uid;
    gid_t gid;
    char perms[4]; /* some of "rwm" */
};
/* Parse and stat one --device value and append what it names to *devs (*n entries, realloc'ed):
 * the node, or for a directory every node below it (lexical order, symlinks not followed, the
 * same relative paths below CONTAINER), as Docker. EINVAL / ENOENT / ENOTBLK (not a node, or a
 * directory without one) with Docker's messages; nothing is appended on error. */
int ctr_device_parse(const char *spec, struct ctr_device **devs, size_t *n, struct imgfs_err *err);

struct ctr_spec {
    char id[65];          /* 64 hex digits (ctr_new_id) */
    const char *name;     /* --name, or NULL: a name is made from the id */
    const char *image;    /* the reference the user gave, for ps */
    const char *image_id; /* the image ID (config digest, "sha256:..."), for ps, or NULL */
    const char *lower;    /* the image's rootfs directory (its FUSE mount) */
    /* The shared image mount: with mount_key set, ctr_run acquires RUN_DIR/images/KEY/rootfs
     * (calling do_mount(dir, mount_ctx) when it is not mounted yet) and uses it instead of lower.
     */
    const char *mount_key;
    int (*do_mount)(const char *dir, void *ctx, struct imgfs_err *err);
    void *mount_ctx;
    const struct image_config *config; /* the image's config; NULL = empty */

    char **command;    /* argv after IMAGE (NULL or empty: the image's Cmd) */
    char **entrypoint; /* --entrypoint as one word list; NULL = not given */
    char **env;        /* -e/--env-file entries, "K=V" or "K" (taken from our environment) */
    const char *workdir, *user, *hostname;

    bool tty, interactive, detach, remove, read_only;
    /* --init: imgfs-init is the container's PID 1 (reaps orphans, passes signals on) and the
     * command its child. Without it the command is PID 1 itself, as in Docker: it gets only the
     * signals it has handlers for, and orphans are its to reap. */
    bool init;
    /* -a/--attach without stdout (stderr): in the foreground that stream goes to the log only */
    bool mute_stdout, mute_stderr;
    bool privileged, no_new_privileges;
    struct ctr_mount *mounts;
    size_t n_mounts;
    char **cap_add, **cap_drop; /* NULL-terminated, or NULL */
    const char *seccomp;        /* NULL = default profile, "unconfined", or a JSON path */

    int64_t memory_bytes, pids_limit; /* 0 = no limit */
    double cpus;

    const char *network; /* "private" (default), "host" or "none" */
    char **publish;      /* -p specs, NULL-terminated, or NULL */
    bool publish_all;    /* -P: the image's EXPOSEd ports too, each on a free host port */

    /* NULL-terminated lists, or NULL: --label K=V (over the image's labels), --add-host
     * "NAME:IP" lines added to /etc/hosts, --dns servers, --dns-search domains and --dns-option
     * options for /etc/resolv.conf (any of the three replaces the host's or slirp's file) */
    char **labels, **add_hosts, **dns, **dns_search, **dns_options;
    char **group_add;           /* --group-add gids or group names, NULL-terminated, or NULL */
    bool pid_host, ipc_host;    /* --pid host, --ipc host: no namespace of the container's own */
    int64_t shm_bytes;          /* --shm-size of /dev/shm; 0 = Docker's 64 MiB */
    struct ctr_ulimit *ulimits; /* --ulimit, set on the container's processes */
    size_t n_ulimits;
    struct ctr_device *devices; /* --device: made in /dev and allowed by the cgroup */
    size_t n_devices;
    const char *stop_signal; /* --stop-signal; NULL = the image's StopSignal, else SIGTERM */
    bool has_stop_timeout;   /* --stop-timeout given: `stop` without -t waits stop_timeout s */
    int stop_timeout;
    enum ctr_restart_policy restart; /* --restart; not with hidden or remove */
    int restart_max;                 /* on-failure:N; 0 = no limit */

    const char *run_dir; /* state root (required: ctr_run and ctr_create refuse NULL) */

    /* For build steps (the builder's RUN): */
    bool hidden; /* not in `ps`, no name, no state file: RUN_DIR/containers/.ID, removed at its end
                  */
    /* The overlay's upper and work directories, chosen by the caller and left in place at the
     * end (the builder makes a layer of the upper). NULL: the container's own, removed with it.
     * Both on one file system; the work directory empty. */
    const char *upper_dir, *work_dir;
    /* Read-only layers stacked above the image (top first: an earlier step's upper directory
     * is a valid one, its whiteouts apply), NULL-terminated, or NULL. Not with read_only. Paths
     * must not contain ':', ',' or '\\' (overlayfs option syntax). */
    char **lowers;
    /* With redirect_output, the command's stdout and stderr go to these descriptors (the same
     * one for both is fine; a pipe the caller reads, for instance); stdin is /dev/null unless
     * interactive. Without it, a foreground container uses ours. */
    bool redirect_output;
    int stdout_fd, stderr_fd;
};

/* --ulimit NAME=SOFT[:HARD] (Docker's names: nofile, nproc, core, stack, memlock, ...; -1 =
 * unlimited) */
struct ctr_ulimit {
    int resource; /* RLIMIT_* */
    uint64_t soft, hard;
};
/* Parse one --ulimit value with Docker's messages (EINVAL). */
int ctr_ulimit_parse(const char *s, struct ctr_ulimit *out, struct imgfs_err *err);

/* A fresh random container id. */
void ctr_new_id(char id[65]);

/* Start the container. A foreground ctr_run takes SIGCHLD, SIGINT, SIGTERM, SIGHUP, SIGQUIT,
 * SIGUSR1/2, SIGWINCH and SIGCONT through a signalfd in the calling thread (passing them on to the
 * container): every other thread of the process must keep them blocked, or the end of the
 * container is never seen. Foreground: returns once it ended, with its exit status in *status.
 * Detached (spec->detach): returns once the command is running (status 0) in a monitor that
 * outlives the caller. -1 with err when the container could not be started (the caller exits 125);
 * an exec failure of the command itself is an exit status (126, 127), not an error. */
int ctr_run(const struct ctr_spec *spec, int *status, struct imgfs_err *err);

struct ctr_state;
/* docker create: the container's directory, name, stored spec (RUN_DIR/containers/ID/spec.json:
 * everything `start` needs again) and its inspect config, state "created"; nothing runs. `run` is
 * create + start in one go (ctr_run). Not for hidden containers. */
int ctr_create(const struct ctr_spec *spec, struct imgfs_err *err);
/* How `start` runs a created or exited container. */
struct ctr_start_options {
    const char *store_root; /* where its image is (reopened by its manifest digest) */
    bool attach;            /* -a: a foreground monitor, as `run` without -d; else detached */
    bool interactive;       /* -i: stdin (only with attach) */
};
/* docker start: run the container again with its stored spec. An exited container keeps its
 * writable layer and log; its restart count is reset. A running (or restarting) one is left
 * alone: 0 with *status = -1, as Docker's start of a running container succeeds. Otherwise as
 * ctr_run: *status is the exit status when attached, 0 once running when detached. ENOENT when
 * its image is gone from the store. */
int ctr_start(const char *run_dir, const struct ctr_state *s, const struct ctr_start_options *o,
              int *status, struct imgfs_err *err);

/* ---- state ---- */

/* CTR_RESTARTING: its command ended and the monitor waits before starting it again (--restart) */
enum ctr_status { CTR_CREATED, CTR_RUNNING, CTR_EXITED, CTR_RESTARTING };

struct ctr_state {
    char id[65];
    char *name, *image, *image_id, *command; /* command: for ps, words joined by spaces */
    char *mount_key;
    enum ctr_status status;
    int exit_code; /* valid when CTR_EXITED; -1 when the monitor died unrecorded */
    char *error;   /* why imgfs ended it ("rootfs lost: ..."), or NULL */
    int64_t created, started, finished; /* unix seconds; 0 = not yet */
    int64_t
        created_ns; /* nanoseconds past `created`'s second: orders containers made in one second */
    pid_t monitor_pid, init_pid; /* init_pid: the container's PID 1 as seen from the host */
    bool remove, tty;
    /* what exec needs to give a process the container's identity */
    char **env;
    char *workdir, *user;
    uint64_t caps;
    char *seccomp; /* NULL = default */
    bool no_new_privileges;
    char *stop_signal; /* the image's StopSignal ("SIGQUIT", "3"), or NULL */
    int stop_timeout;  /* --stop-timeout; -1: Docker's default (10 s) */
    enum ctr_restart_policy restart;
    int restart_max, restart_count; /* restart_count: restarts by the policy since the last start */
    bool oom_killed; /* the memory limit killed a process of the last run (inspect's OOMKilled) */
};

/* Load every container under run_dir, with the status made true: a container whose monitor is
 * gone is reported exited (and its leftovers are cleaned); a running one whose image mount died
 * is stopped and reported exited with CTR_EXIT_ROOTFS_LOST and `error` set. Sorted newest first. */
int ctr_list(const char *run_dir, struct ctr_state **out, size_t *n, struct imgfs_err *err);
/* Find one container by full id, unique id prefix or name. ENOENT / EINVAL (ambiguous). */
int ctr_find(const char *run_dir, const char *ref, struct ctr_state *out, struct imgfs_err *err);
void ctr_state_free(struct ctr_state *s);
void ctr_state_list_free(struct ctr_state *s, size_t n);
const char *ctr_status_name(const struct ctr_state *s);

/* A container name Docker accepts: [a-zA-Z0-9][a-zA-Z0-9_.-]*. */
bool ctr_name_valid(const char *name);
/* Make container `id` (whose directory exists) the holder of `name`: EINVAL for a name Docker
 * refuses, EEXIST (Docker's "Conflict..." message) when a container that still exists holds it.
 * Atomic across processes: of any number of concurrent claims of one name, one succeeds. */
int ctr_name_claim(const char *run_dir, const char *name, const char *id, struct imgfs_err *err);

/* The container as `docker inspect` shows it (Id, Created, Path, Args, State, Image, Name,
 * HostConfig, Mounts, Config, NetworkSettings.Ports): a new JSON object (jansson's json_t). */
struct json_t;
struct json_t *ctr_inspect(const char *run_dir, const struct ctr_state *s);

/* Give the container a new name, claimed as ctr_name_claim does (EEXIST when taken); the old
 * name is released. A running container keeps the new name when it ends. */
int ctr_rename(const char *run_dir, const struct ctr_state *s, const char *name,
               struct imgfs_err *err);

/* docker cp: copy `src` to `dest`, one of them inside the container (to_container: dest),
 * resolved in its root (symlinks stay inside it; those in the copied tree are copied as links).
 * Docker's rules: into dest when it is a directory, else as dest; "dir/." copies the contents.
 * A running container is reached through its init's root; a created or exited one through its
 * image and kept upper layer, put together in a private mount namespace of a child process.
 * As Docker: copies into the container keep their owners and times; copies out keep their times,
 * and their owners with CTR_COPY_ARCHIVE (-a; without, they are the caller's). CTR_COPY_FOLLOW
 * follows a
 * symlink that is the source itself (-L; inside the container, resolved in its root), and
 * `src` or `dest` "-" is a tar stream on stdout (from the container) or stdin (into it). */
#define CTR_COPY_ARCHIVE 0x1
#define CTR_COPY_FOLLOW  0x2
int ctr_copy(const char *store_root, const char *run_dir, const struct ctr_state *s,
             const char *src, const char *dest, bool to_container, unsigned flags,
             struct imgfs_err *err);
/* Copy a host tree as `ctr_copy -a` copies (symlinks as symlinks, modes, owners and times kept;
 * devices and fifos left out): `src` to the path `dst`, or with src "DIR/." DIR's entries into
 * the existing directory dst (merged over what it holds). For a build step's rw and seeded
 * mounts. */
int ctr_copy_tree(const char *src, const char *dst, struct imgfs_err *err);

/* ---- volumes: ROOT/volumes/NAME/_data (store_root: the store's root directory) ---- */

struct ctr_volume {
    char *name, *mountpoint; /* mountpoint: the data directory containers see */
    int64_t created;         /* unix seconds */
    char **labels;           /* "K=V", NULL-terminated, or NULL */
    bool anonymous;          /* made for a container (-v CTR, the image's VOLUME) */
};
/* Docker's rule for local volume names: [a-zA-Z0-9][a-zA-Z0-9_.-]+ */
bool ctr_volume_name_valid(const char *name);
/* EINVAL with Docker's message for a name ctr_volume_name_valid refuses ("create X: ..."). */
int ctr_volume_name_error(const char *name, struct imgfs_err *err);
/* Create a volume (name NULL: a random id), or get it back when it exists (as Docker). EINVAL
 * with Docker's message for a bad name. */
int ctr_volume_create(const char *store_root, const char *name, char *const *labels, bool anonymous,
                      struct ctr_volume *out, struct imgfs_err *err);
/* ENOENT: "get NAME: no such volume" */
int ctr_volume_get(const char *store_root, const char *name, struct ctr_volume *out,
                   struct imgfs_err *err);
/* Every volume, sorted by name. */
int ctr_volume_list(const char *store_root, struct ctr_volume **out, size_t *n,
                    struct imgfs_err *err);
void ctr_volume_free(struct ctr_volume *v);
void ctr_volume_list_free(struct ctr_volume *v, size_t n);
/* Ids of the containers under run_dir (running or not) that mount the volume whose data
 * directory is `mountpoint`, NULL-terminated (free with ctr_strv_free), or NULL for none. */
char **ctr_volume_users(const char *run_dir, const char *mountpoint);
void ctr_strv_free(char **v);
/* Remove a volume: EBUSY ("remove NAME: volume is in use - [ID]") while a container uses it,
 * unless force. */
int ctr_volume_remove(const char *store_root, const char *run_dir, const char *name, bool force,
                      struct imgfs_err *err);
/* Bytes of the files in the volume (apparent sizes, as Docker's `system df`). */
uint64_t ctr_volume_size(const struct ctr_volume *v);
/* Before ctr_run: an anonymous volume for each of the image's VOLUMEs that no mount covers,
 * and every volume mount's volume created (when new) and its source set. spec->mounts may be
 * reallocated; the caller frees the entries (ctr_mount_free) and the array. */
int ctr_volumes_prepare(const char *store_root, struct ctr_spec *spec, struct imgfs_err *err);
/* The data directories of the anonymous volumes container `id` mounts, read before it is removed;
 * removed after it with ctr_anonymous_volumes_remove (those no other container uses). */
char **ctr_anonymous_volumes(const char *run_dir, const char *id);
void ctr_anonymous_volumes_remove(const char *run_dir, char **mountpoints);

/* The host pids of a running container's processes (those in its pid namespace), for `top`;
 * *out is malloc'd. */
int ctr_pids(const char *run_dir, const struct ctr_state *s, pid_t **out, size_t *n,
             struct imgfs_err *err);

/* A running container's resource use (`stats`), from its cgroups (v1 or v2) and network
 * namespace. mem_limit is the host's memory when the container has no limit. A container that is
 * not running: 0 and every count 0, as Docker shows it. */
struct ctr_stats {
    uint64_t cpu_ns, mem_usage, mem_limit, pids, net_rx, net_tx;
};
int ctr_stats(const char *run_dir, const struct ctr_state *s, struct ctr_stats *st,
              struct imgfs_err *err);

/* Send a signal to the container's PID 1, which passes it to the command. */
int ctr_kill(const char *run_dir, const struct ctr_state *s, int sig, struct imgfs_err *err);
/* The image's StopSignal (default SIGTERM), wait `timeout` seconds for the container to end (its
 * monitor to let go of the lock), then SIGKILL. timeout < 0: the container's --stop-timeout, else
 * 10 s. The restart policy does not bring a stopped container back (until the next start); one
 * waiting to restart ends at once. A container that is not running: 0, as Docker. */
int ctr_stop(const char *run_dir, const struct ctr_state *s, int timeout, struct imgfs_err *err);
/* docker restart: stop (as ctr_stop), then start detached (as ctr_start). */
int ctr_restart(const char *run_dir, const struct ctr_state *s, int timeout,
                const struct ctr_start_options *o, struct imgfs_err *err);
/* Remove an exited container's state and writable layer; `force` kills a running one first. */
int ctr_remove(const char *run_dir, const struct ctr_state *s, bool force, struct imgfs_err *err);
/* Wait until the container is no longer running (monitor lock free); a created one is waited for
 * until it has been started and has ended, as Docker's wait. ENOENT when it is removed first. */
int ctr_wait(const char *run_dir, const char *id, struct imgfs_err *err);
/* Path of the container's log file (caller frees). */
char *ctr_log_path(const char *run_dir, const char *id);

/* ---- the log: Docker's json-file format, one record per line (runner/log.c) ---- */
enum { CTR_STDOUT = 0, CTR_STDERR = 1 };
struct ctr_log_entry {
    int stream;      /* CTR_STDOUT or CTR_STDERR */
    int64_t time_ns; /* when the monitor read it (Unix ns, UTC) */
    char *data;      /* the text, a line with its newline (or a part of a longer one); free() */
    size_t len;
};
/* Parse one line of the log (without its newline). -1 when it is not a record: a line imgfs
 * itself wrote there raw (a detached monitor's own stderr), which a reader shows as stderr. */
int ctr_log_parse(const char *line, size_t len, struct ctr_log_entry *e);
/* --since/--until values, as Docker takes them: RFC 3339 (a zone or local time, the date alone,
 * fractions), Unix seconds[.fraction], or a Go duration before `now` ("10m", "1h30m"). Unix ns. */
int ctr_log_time_parse(const char *s, int64_t now_ns, int64_t *out_ns, struct imgfs_err *err);
/* RFC 3339 with nine fraction digits in UTC, as `docker logs -t` prints it */
void ctr_log_time_format(int64_t ns, char out[40]);
/* `docker diff`: the container's changes to its image (running or not), from its writable layer
 * against the image's view: fn gets "A /path" (added), "C /path" (changed: a file written or its
 * metadata, a directory with changes below) or "D /path" (deleted: a whiteout), in path order
 * (a directory before its entries); the runner's mount points (ctr_mount_points) are no change.
 * A directory replaced whole (overlayfs's opaque one, `rm -rf d; mkdir d`) is changed, what is in
 * it now added or changed, and the image's entries it hides deleted, as Docker lists them. */
int ctr_diff(const char *store_root, const char *run_dir, const struct ctr_state *s,
             int (*fn)(void *ctx, const char *line), void *ctx, struct imgfs_err *err);
/* Path of the container's writable layer, its overlay upper directory (caller frees): what
 * `commit` makes a layer of. */
char *ctr_upper_path(const char *run_dir, const char *id);
/* The paths (relative to the root, NULL-terminated) where the runner creates an empty file or
 * directory as a mount point when the image has none: an upper directory holds them, but they
 * are not the container's changes (layer_dir_options.mount_points). */
extern const char *const ctr_mount_points[];

/* exec: run a command in a running container with its namespaces, cgroup, user, capabilities and
 * seccomp filter. Returns the command's exit status in *status. */
struct ctr_exec_spec {
    char **argv;
    char **env; /* extra -e entries */
    const char *workdir, *user;
    bool tty, interactive;
};
/* ESRCH when the container is not running. */
int ctr_exec(const char *run_dir, const struct ctr_state *s, const struct ctr_exec_spec *e,
             int *status, struct imgfs_err *err);

/* ---- a store image as a container's rootfs (shared by `run` and the builder) ---- */

/* An image resolved in the store at `store_root` (a name, digest or digest prefix), its config
 * loaded; the store is closed again before this returns (a container must not hold LMDB across
 * its fork). ENOENT when there is no such image. */
struct ctr_image;
struct image;
int ctr_image_open(const char *store_root, const char *ref, struct ctr_image **out,
                   struct imgfs_err *err);
/* Releases the mount held by ctr_image_acquire, if any. */
void ctr_image_free(struct ctr_image *ci);
/* The loaded image (manifest, config, layers), valid while ci is. */
const struct image *ctr_image_get(const struct ctr_image *ci);
/* "sha256:<hex>" of the manifest. */
const char *ctr_image_digest(const struct ctr_image *ci);
/* Point a spec at the image: image_id, config, mount_key and do_mount (the shared mount of
 * RUN_DIR/images/KEY/rootfs, made in a child that keeps none of our descriptors). The spec's
 * `image` (the name for ps) stays the caller's. ci must outlive ctr_run. */
void ctr_image_spec(struct ctr_image *ci, struct ctr_spec *spec);
/* A lazily pulled image (docs/lazy.md): the fetch budget of a read (0 = 5 s) and what to fetch in
 * the background (LAZY_PREFETCH_*) when the shared mount is made for this ci; a mount already up
 * for other containers keeps its own. */
void ctr_image_set_lazy(struct ctr_image *ci, unsigned fetch_timeout_ms, int prefetch);
/* Keep the shared mount up between containers (a build's steps, reading the parent's
 * /etc/passwd for COPY --chown...) and get its directory (valid until release). A hidden holder
 * (RUN_DIR/containers/.ID, locked) counts as a user; if the process dies, the next ctr_list
 * drops the reference. Idempotent. */
int ctr_image_acquire(const char *run_dir, struct ctr_image *ci, const char **dir,
                      struct imgfs_err *err);
int ctr_image_release(struct ctr_image *ci, struct imgfs_err *err);

/* A holder of an image's shared mount that lives as long as the process that made it: a hidden
 * holder (RUN_DIR/containers/.ID, its lock held by this process; nothing is mounted yet) for the
 * image whose manifest digest's hex is `mount_key`. Another process (a build step's monitor) names
 * it to ctr_image_hold, which mounts the image if need be and counts the holder as a user, so the
 * mount outlives that process's containers. ctr_mount_holder_free drops the reference, unmounting
 * the image when no live container or holder uses it, and removes the holder; if the process
 * dies first, the next ctr_list drops the reference. Makes no process (safe in a threaded
 * caller). */
struct ctr_mount_holder;
int ctr_mount_holder_new(const char *run_dir, const char *mount_key, struct ctr_mount_holder **out,
                         struct imgfs_err *err);
/* The holder's id, for ctr_image_hold. */
const char *ctr_mount_holder_id(const struct ctr_mount_holder *h);
/* NULL is a no-op. The holder is freed even when unmounting fails (the error is returned). */
int ctr_mount_holder_free(struct ctr_mount_holder *h, struct imgfs_err *err);
/* Count `holder_id` (a ctr_mount_holder of the image, maybe of another process) as a user of ci's
 * shared mount under RUN_DIR, mounting it when it is not mounted. Idempotent. */
int ctr_image_hold(const char *run_dir, struct ctr_image *ci, const char *holder_id,
                   struct imgfs_err *err);

/* ---- the shared, reference-counted image mount ---- */

/* Make sure image `mount_key` (a manifest digest's hex) is mounted at RUN_DIR/images/KEY/rootfs,
 * calling `do_mount(dir, ctx)` when it is not, record container `id` as a user (a file
 * RUN_DIR/images/KEY/refs/ID) and return the directory (caller frees). ctr_mount_release drops the
 * reference and unmounts once no live container (one whose monitor holds its lock) refers to it.
 * Both serialize on RUN_DIR/images/KEY/lock. */
typedef int (*ctr_mount_fn)(const char *dir, void *ctx, struct imgfs_err *err);
int ctr_mount_acquire(const char *run_dir, const char *mount_key, const char *id,
                      ctr_mount_fn do_mount, void *ctx, char **dir, struct imgfs_err *err);
int ctr_mount_release(const char *run_dir, const char *mount_key, const char *id,
                      struct imgfs_err *err);

#endif
