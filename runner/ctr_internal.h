/* ctr_internal.h — what the runner's own files share (not a public contract). */
#ifndef IMGFS_CTR_INTERNAL_H
#define IMGFS_CTR_INTERNAL_H

#include "runner.h"

#include <signal.h>
#include <stdbool.h>
#include <sys/types.h>

/* ---- rootfs.c: the container's filesystem, set up by its init inside its mount namespace ---- */

struct ctr_rootfs {
    const char *lower;        /* image rootfs */
    const char *upper, *work; /* NULL with read_only */
    const char *target;  /* empty directory to build the root on (RUN_DIR/containers/ID/rootfs) */
    const char *etc_dir; /* directory with hosts, hostname, resolv.conf to bind in, or NULL */
    bool read_only, privileged, tty;
    int64_t shm_bytes; /* 0: 64 MiB */
    const struct ctr_mount *mounts;
    size_t n_mounts;
    int *volume_fds; /* one detached mount (open_tree) per bind mount, opened before setup */
    const struct ctr_device *devices; /* --device: nodes made at their container paths */
    size_t n_devices;
    /* cgroup v1: the container's directory in each hierarchy (host paths) and the hierarchy's
     * name under /sys/fs/cgroup, bound read-only at /sys/fs/cgroup/NAME */
    const char *cgroup_mounts[8], *cgroup_dirs[8];
    size_t n_cgroups;
    /* cgroup v2: a cgroup2 mount at /sys/fs/cgroup, made in the container's cgroup namespace (its
     * root is the container's group), read-only unless privileged */
    bool cgroup2;
};
/* Mount everything and pivot_root into it. After it returns, "/" is the container's root. */
int rootfs_setup(const struct ctr_rootfs *r, struct imgfs_err *err);
/* Open `path` under the directory `rootfd` as if rootfd were "/" (symlinks included: openat2
 * RESOLVE_IN_ROOT, magic links refused). With `create` (S_IFDIR or S_IFREG) missing components are
 * made as directories and the last one as `create` says. */
int rootfs_open(int rootfd, const char *path, int flags, mode_t create, struct imgfs_err *err);
/* Clone host path `source` as a detached bind mount (read-only when asked). Runs before setup. */
int rootfs_open_volume(const struct ctr_mount *m, struct imgfs_err *err);

/* ---- cp.c ---- */
/* Copy the entries of directory `from` into directory `to` (CTR_COPY_ARCHIVE: owners and times
 * too); links are copied as links, never followed. */
int ctr_copy_contents(int from, int to, unsigned flags, struct imgfs_err *err);

/* ---- device.c ---- */
/* The cgroup v1 rules ("c 1:3 rwm") that allow the --device nodes (NULL-terminated, or NULL). */
char **ctr_device_rules(const struct ctr_device *d, size_t n);

/* ---- volume.c ---- */
/* Fill each new, empty volume of spec (not volume-nocopy) with what the image (spec->lower) has
 * at its target, owners and modes kept, as Docker does on a volume's first use. */
int ctr_volumes_populate(const struct ctr_spec *spec, struct imgfs_err *err);

/* ---- user.c: identity and command line from the image config and the options ---- */

struct ctr_user {
    uid_t uid;
    gid_t gid;
    gid_t groups[64];
    size_t n_groups;
    char home[256];
};
/* Resolve "name", "uid", "name:group", "uid:gid"... in /etc/passwd and /etc/group under rootfd
 * (the container's root). NULL or "" = root. */
int user_resolve(int rootfd, const char *spec, struct ctr_user *out, struct imgfs_err *err);
/* Docker's rules for Entrypoint/Cmd overrides. Returns a NULL-terminated vector (free with
 * strv_free); EINVAL when there is no command at all. */
char **user_command(const struct image_config *c, char **entrypoint, char **command,
                    struct imgfs_err *err);
/* The container's environment: default PATH, HOSTNAME, the image's Env, then -e entries. */
char **user_env(const struct image_config *c, char **extra, const char *hostname, bool tty);
/* Set HOME when the environment lacks it. */
void user_env_home(char ***env, const char *home);
/* Find argv0 along PATH from env, as the command will see its root. Returns 0 with the path in
 * out, or the exit status (126, 127) with a message in err. */
int user_find_executable(const char *argv0, char *const *env, char *out, size_t len,
                         struct imgfs_err *err);
/* Switch to the user: setgroups, setgid, setuid, keeping capabilities (PR_SET_KEEPCAPS). */
int user_switch(const struct ctr_user *u, struct imgfs_err *err);
/* --group-add GROUP: a gid or a name from the image's /etc/group, added to u's groups */
int user_group_add(int rootfd, const char *group, struct ctr_user *u, struct imgfs_err *err);

/* ---- container.c ---- */
struct ctr_seccomp;
/* A process about to become the container's command (or an exec'd one): everything between fork
 * and execve. Errors are printed on its stderr and end it with 125/126/127. */
struct ctr_proc {
    char **argv, **env;
    uint64_t caps;
    const struct ctr_seccomp *seccomp;
    bool no_new_privileges;
    struct ctr_user user;
    int workdir;   /* O_PATH descriptor of the working directory, or -1 */
    int tty_slave; /* made the controlling terminal and stdio, or -1 */
};
__attribute__((noreturn)) void ctr_proc_exec(const struct ctr_proc *p, const sigset_t *mask);
/* ctr_proc_exec in two halves: everything up to the confinement (setsid, terminal, working
 * directory, seccomp, user, capabilities; mask NULL leaves the signal mask as it is), then the
 * PATH lookup and execve. */
int ctr_proc_setup(const struct ctr_proc *p, const sigset_t *mask, struct imgfs_err *err);
__attribute__((noreturn)) void ctr_proc_execve(const struct ctr_proc *p);
/* Until `child` ends: pass each signal of `set` (all blocked) on to it — with sent_only only those
 * a process sent (si_code <= 0), not the terminal's — reap every child, then _exit with child's
 * status (128+N for signal N). */
__attribute__((noreturn)) void ctr_relay_until_exit(pid_t child, const sigset_t *set,
                                                    bool sent_only);
/* Print `imgfs: MESSAGE` on stderr and _exit(status). */
__attribute__((noreturn)) void ctr_proc_fail(int status, const struct imgfs_err *err);

/* ---- helpers ---- */
char **strv_dup(char *const *v);
size_t strv_len(char *const *v);
void strv_free(char **v);
char **strv_append(char **v, const char *s); /* takes a copy */
char *strv_join(char *const *v, const char *sep);

/* ---- inspect.c ---- */
struct json_t;
/* A word list as a JSON array of strings (a new reference); NULL as null. */
struct json_t *ctr_json_words(char *const *v);
/* Write DIR/config.json: what `inspect` shows of the container's making (Path, Args, Config,
 * HostConfig, Mounts in Docker's shapes). argv and env are the command and environment it got. */
int ctr_config_write(const char *dir, const struct ctr_spec *spec, char *const *argv,
                     char *const *env, struct imgfs_err *err);

/* ---- state.c ---- */
char *ctr_dir(const char *run_dir, const char *id);
int ctr_state_save(const char *run_dir, const struct ctr_state *s, struct imgfs_err *err);
/* The name in the container's state file now (caller frees), NULL when it cannot be read. */
char *ctr_state_name_now(const char *run_dir, const char *id);
int ctr_state_load(const char *run_dir, const char *id, struct ctr_state *out,
                   struct imgfs_err *err);
/* Is a monitor holding the container's lock? */
bool ctr_is_live(const char *run_dir, const char *id);
/* Release everything a dead container holds outside its directory (cgroup, image mount). */
void ctr_cleanup_dead(const char *run_dir, const struct ctr_state *s);
/* Why the container was failed by ctr_fail_lost_rootfs (caller frees), or NULL. */
char *ctr_lost_reason(const char *run_dir, const char *id);
/* Forget it (a start of the container on a mount that works again). */
void ctr_lost_clear(const char *run_dir, const char *id);
/* Hidden containers (build steps) and image-mount holders (ctr_image_acquire) live in
 * RUN_DIR/containers/.ID: never listed, never renamed into place. A `hidden` file, written once
 * the lock is held, marks them and holds the image mount key they reference (may be empty), so
 * ctr_list can clean up after one whose process died. */
char *ctr_hidden_dir(const char *run_dir, const char *id);
/* Create it (and RUN_DIR/containers) with its lock held; returns the lock's descriptor. */
int ctr_hidden_dir_create(const char *run_dir, const char *id, const char *mount_key,
                          struct imgfs_err *err);
/* `stop`, `kill` or `rm -f` asked for the container to end: its restart policy must not bring it
 * back (a `stopped` file in its directory); `start` clears it. */
bool ctr_stopped_by_hand(const char *run_dir, const char *id);
void ctr_stopped_clear(const char *run_dir, const char *id);
/* Remove a directory tree without following symlinks or crossing mounts. */
int ctr_remove_tree(const char *path, struct imgfs_err *err);
/* Write O as DIR/NAME through a temporary file and a rename (readers see the old file or the
 * new one, never half of one; no fsync: the run directory does not outlive a boot). Takes O. */
int ctr_json_write(const char *dir, const char *name, struct json_t *o, struct imgfs_err *err);

/* ---- spec.c: what `start` needs to run a created or exited container again ---- */
/* Write DIR/spec.json: the spec's options (env entries without a value resolved from our
 * environment, a seccomp profile by absolute path, -P's ports as chosen). Not the image itself:
 * only its manifest digest (mount_key), to be opened again. */
int ctr_spec_save(const char *dir, const struct ctr_spec *spec, struct imgfs_err *err);
/* A spec read back; its strings live as long as it does. */
struct ctr_saved_spec {
    struct ctr_spec spec;
    struct json_t *json;
    char ***lists; /* the word lists made for spec, freed with it */
    size_t n_lists;
};
int ctr_spec_load(const char *dir, struct ctr_saved_spec *out, struct imgfs_err *err);
void ctr_saved_spec_free(struct ctr_saved_spec *s);

/* ---- log.c: the monitor's side of the log ---- */
struct ctr_log;
int ctr_log_open(const char *path, struct ctr_log **out, struct imgfs_err *err);
/* Output of `stream` as it came: cut into lines (at most 16 KiB each, as Docker), each line one
 * record with its own time (later than the last one's); the records of one call go out in one
 * write(2). */
void ctr_log_write(struct ctr_log *l, int stream, const char *data, size_t len);
/* Writes what is left of an unfinished line (the end of a run); NULL is fine. */
void ctr_log_flush(struct ctr_log *l);
/* Flushes and closes. NULL is fine. */
void ctr_log_close(struct ctr_log *l);
/* imgfs's own line (a stderr record) in container id's log, if it has one */
void ctr_log_note(const char *run_dir, const char *id, const char *line);

/* ---- pty.c ---- */
/* Until child `pid` ends: relay `in` (-1: none) to the pty `master` (-1: none) and the master to
 * `out`, pass signals read from `sigfd` to pid (SIGWINCH: copy our window size). Closes master.
 * Returns pid's wait status. */
int pty_relay(int master, pid_t pid, int sigfd, int in, int out);
/* The monitor's relay, pty_relay with the container's output in separate streams: until `pid`
 * ends, our input to the pty master, the master's output (the stdout stream) and the stdout and
 * stderr pipes to `to` (each -1: not copied) and to the log, signals from sigfd passed on to pid.
 * Closes master and pipes. Returns pid's wait status. */
struct ctr_relay {
    pid_t pid;
    int sigfd;
    int in;       /* or -1 */
    int master;   /* or -1 */
    int pipes[2]; /* read ends of the container's stdout and stderr, or -1 */
    int to[2];    /* our stdout and stderr, or -1 */
    struct ctr_log *log;
    /* or -1: when it becomes readable, watch(watch_arg) is called once; non-zero from it kills
     * the container (SIGKILL to pid), whose end is then waited for as always */
    int watch_fd;
    int (*watch)(void *watch_arg);
    void *watch_arg;
};
int ctr_relay(struct ctr_relay *r);
int pty_raw_begin(int fd, void *saved, size_t saved_len);
void pty_raw_end(int fd, const void *saved);

#endif
