/* state.c — containers on disk: RUN_DIR/containers/ID/{state.json,lock,ctr.log,upper,work,...},
 * listing with a true status, kill/stop/rm, and the shared image mounts.
 *
 * Truth about liveness comes from the lock, not from the state file: the monitor holds an flock on
 * `lock` for its whole life, and the kernel drops it when the monitor dies however it dies. A
 * container whose lock is free and whose state still says running had its monitor killed; it is
 * reported exited and its leftovers outside its directory are freed on the spot. */
#include "ctr_internal.h"
#include "cgroup.h"
#include "../fs/mount.h"

#include <dirent.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <ctype.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <time.h>

char *ctr_dir(const char *run_dir, const char *id)
{
    return xasprintf("%s/containers/%s", run_dir, id);
}

char *ctr_log_path(const char *run_dir, const char *id)
{
    return xasprintf("%s/containers/%s/ctr.log", run_dir, id);
}

/* what rootfs.c mounts on (proc, sys, dev, the etc files written per container) */
const char *const ctr_mount_points[] = {
    "proc", "sys", "dev", "etc/hosts", "etc/hostname", "etc/resolv.conf", NULL};

char *ctr_upper_path(const char *run_dir, const char *id)
{
    return xasprintf("%s/containers/%s/upper", run_dir, id);
}

static const char *const status_names[] = {"created", "running", "exited", "restarting"};
#define N_STATUS (sizeof status_names / sizeof status_names[0])

const char *ctr_status_name(const struct ctr_state *s)
{
    return status_names[s->status];
}

static json_t *strv_json(char *const *v)
{
    json_t *a = json_array();
    for (size_t i = 0; v && v[i]; i++)
        json_array_append_new(a, json_string(v[i]));
    return a;
}

static json_t *str_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

int ctr_state_save(const char *run_dir, const struct ctr_state *s, struct imgfs_err *err)
{
    json_t *o = json_object();
    json_object_set_new(o, "id", json_string(s->id));
    json_object_set_new(o, "name", str_or_null(s->name));
    json_object_set_new(o, "image", str_or_null(s->image));
    json_object_set_new(o, "image_id", str_or_null(s->image_id));
    json_object_set_new(o, "command", str_or_null(s->command));
    json_object_set_new(o, "mount_key", str_or_null(s->mount_key));
    json_object_set_new(o, "status", json_string(status_names[s->status]));
    json_object_set_new(o, "exit_code", json_integer(s->exit_code));
    json_object_set_new(o, "error", str_or_null(s->error));
    json_object_set_new(o, "created", json_integer(s->created));
    json_object_set_new(o, "created_ns", json_integer(s->created_ns));
    json_object_set_new(o, "started", json_integer(s->started));
    json_object_set_new(o, "finished", json_integer(s->finished));
    json_object_set_new(o, "monitor_pid", json_integer(s->monitor_pid));
    json_object_set_new(o, "init_pid", json_integer(s->init_pid));
    json_object_set_new(o, "remove", json_boolean(s->remove));
    json_object_set_new(o, "tty", json_boolean(s->tty));
    json_object_set_new(o, "env", strv_json(s->env));
    json_object_set_new(o, "workdir", str_or_null(s->workdir));
    json_object_set_new(o, "user", str_or_null(s->user));
    json_object_set_new(o, "caps", json_integer((json_int_t)s->caps));
    json_object_set_new(o, "seccomp", str_or_null(s->seccomp));
    json_object_set_new(o, "no_new_privileges", json_boolean(s->no_new_privileges));
    json_object_set_new(o, "stop_signal", str_or_null(s->stop_signal));
    json_object_set_new(o, "stop_timeout",
                        s->stop_timeout >= 0 ? json_integer(s->stop_timeout) : json_null());
    json_object_set_new(o, "restart", json_string(ctr_restart_name(s->restart)));
    json_object_set_new(o, "restart_max", json_integer(s->restart_max));
    json_object_set_new(o, "restart_count", json_integer(s->restart_count));
    json_object_set_new(o, "oom_killed", json_boolean(s->oom_killed));
    char *text = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (!text)
        return err_set(err, ENOMEM, "encoding the container state");

    /* temp file + rename: readers see the old or the new state, never half. No fsync: the run
     * dir is runtime state (tmpfs in /run), and the start path should not wait for a disk. */
    cleanup_free char *path = xasprintf("%s/containers/%s/state.json", run_dir, s->id);
    cleanup_free char *tmp = xasprintf("%s.%d.tmp", path, (int)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        free(text);
        return err_sys(err, errno, "writing `%s`", tmp);
    }
    int r = write_full(fd, text, strlen(text));
    int e = errno;
    free(text);
    close(fd);
    if (r < 0 || rename(tmp, path) < 0) {
        if (r >= 0)
            e = errno;
        unlink(tmp);
        return err_sys(err, e, "writing `%s`", path);
    }
    return 0;
}

static char *get_str(json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? xstrdup(s) : NULL;
}

int ctr_state_load(const char *run_dir, const char *id, struct ctr_state *out,
                   struct imgfs_err *err)
{
    memset(out, 0, sizeof *out);
    cleanup_free char *path = xasprintf("%s/containers/%s/state.json", run_dir, id);
    json_error_t je;
    json_t *o = json_load_file(path, 0, &je);
    if (!o)
        return err_set(err, access(path, F_OK) < 0 ? ENOENT : EINVAL, "reading `%s`: %s", path,
                       je.text);
    snprintf(out->id, sizeof out->id, "%s", id);
    out->name = get_str(o, "name");
    out->image = get_str(o, "image");
    out->image_id = get_str(o, "image_id");
    out->command = get_str(o, "command");
    out->mount_key = get_str(o, "mount_key");
    const char *st = json_string_value(json_object_get(o, "status"));
    out->status = CTR_CREATED;
    for (size_t i = 0; st && i < N_STATUS; i++)
        if (!strcmp(st, status_names[i]))
            out->status = (enum ctr_status)i;
    out->exit_code = (int)json_integer_value(json_object_get(o, "exit_code"));
    out->error = get_str(o, "error");
    out->created = json_integer_value(json_object_get(o, "created"));
    out->created_ns = json_integer_value(json_object_get(o, "created_ns"));
    out->started = json_integer_value(json_object_get(o, "started"));
    out->finished = json_integer_value(json_object_get(o, "finished"));
    out->monitor_pid = (pid_t)json_integer_value(json_object_get(o, "monitor_pid"));
    out->init_pid = (pid_t)json_integer_value(json_object_get(o, "init_pid"));
    out->remove = json_is_true(json_object_get(o, "remove"));
    out->tty = json_is_true(json_object_get(o, "tty"));
    json_t *env = json_object_get(o, "env");
    out->env = xcalloc(json_array_size(env) + 1, sizeof *out->env);
    for (size_t i = 0; i < json_array_size(env); i++) {
        const char *e = json_string_value(json_array_get(env, i));
        out->env[i] = xstrdup(e ? e : "");
    }
    out->workdir = get_str(o, "workdir");
    out->user = get_str(o, "user");
    out->caps = (uint64_t)json_integer_value(json_object_get(o, "caps"));
    out->seccomp = get_str(o, "seccomp");
    out->no_new_privileges = json_is_true(json_object_get(o, "no_new_privileges"));
    out->stop_signal = get_str(o, "stop_signal");
    json_t *stop_t = json_object_get(o, "stop_timeout");
    out->stop_timeout = json_is_integer(stop_t) ? (int)json_integer_value(stop_t) : -1;
    const char *restart = json_string_value(json_object_get(o, "restart"));
    if (restart)
        ctr_restart_parse(restart, &out->restart, &out->restart_max, &(struct imgfs_err){0});
    out->restart_max = (int)json_integer_value(json_object_get(o, "restart_max"));
    out->restart_count = (int)json_integer_value(json_object_get(o, "restart_count"));
    out->oom_killed = json_is_true(json_object_get(o, "oom_killed"));
    if (!out->name)
        out->name = xasprintf("%.12s", id);
    json_decref(o);
    return 0;
}

void ctr_state_free(struct ctr_state *s)
{
    free(s->name);
    free(s->image);
    free(s->image_id);
    free(s->command);
    free(s->error);
    free(s->mount_key);
    strv_free(s->env);
    free(s->workdir);
    free(s->user);
    free(s->seccomp);
    free(s->stop_signal);
    memset(s, 0, sizeof *s);
}

void ctr_state_list_free(struct ctr_state *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        ctr_state_free(&s[i]);
    free(s);
}

/* Try the container's lock: returns a descriptor holding it (the monitor is gone), or -1 when a
 * monitor holds it (or there is no lock file). */
static int take_lock(const char *run_dir, const char *id)
{
    cleanup_free char *path = xasprintf("%s/containers/%s/lock", run_dir, id);
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return -1;
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

bool ctr_is_live(const char *run_dir, const char *id)
{
    cleanup_free char *path = xasprintf("%s/containers/%s/lock", run_dir, id);
    cleanup_close int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        /* a container being created (".ID", locked before it is renamed into place) */
        free(path);
        path = xasprintf("%s/containers/.%s/lock", run_dir, id);
        fd = open(path, O_RDWR | O_CLOEXEC);
        if (fd < 0)
            return false;
    }
    if (flock(fd, LOCK_SH | LOCK_NB) == 0)
        return false;
    return errno == EWOULDBLOCK;
}

void ctr_cleanup_dead(const char *run_dir, const struct ctr_state *s)
{
    struct imgfs_err ignored;
    cgroup_remove_by_id(s->id, &ignored);
    if (s->mount_key)
        ctr_mount_release(run_dir, s->mount_key, s->id, &ignored);
}

/* ---- containers whose image mount died ----
 * The shared mount of an image is served by a keeper and its daemon (fs/mount.c); while either
 * lives, a dead daemon is replaced and the containers never notice. When both are gone the kernel
 * answers every request on the mount with ENOTCONN: the containers on it have lost their root
 * file system. They are failed, not left "Up" on a rootfs that fails every read: a marker file
 * with the reason (read by the monitor when the init ends, and by settle_dead), a line in the
 * container's log, and SIGKILL to its init. */

#define LOST_FILE "rootfs-lost"

char *ctr_lost_reason(const char *run_dir, const char *id)
{
    cleanup_free char *path = xasprintf("%s/containers/%s/" LOST_FILE, run_dir, id);
    struct buf b = {0};
    struct imgfs_err ignored;
    if (read_file(path, 1024, &b, &ignored) < 0)
        return NULL;
    char *reason = strndup(b.data ? (const char *)b.data : "", b.len);
    buf_free(&b);
    return reason;
}

void ctr_lost_clear(const char *run_dir, const char *id)
{
    cleanup_free char *path = xasprintf("%s/containers/%s/" LOST_FILE, run_dir, id);
    unlink(path);
}

static void mark_stopped(const char *run_dir, const char *id);
static int signal_now(const char *run_dir, const char *id, int sig, struct imgfs_err *err);

/* Fail container `id` (running on the dead mount of image `key`): once, whoever sees it first. */
static void fail_lost_rootfs(const char *run_dir, const char *id, const char *key)
{
    cleanup_free char *path = xasprintf("%s/containers/%s/" LOST_FILE, run_dir, id);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd >= 0) {
        cleanup_free char *reason = xasprintf(
            "rootfs lost: the mount of image %.12s died (its FUSE daemon and keeper are gone)",
            key);
        (void)!write_full(fd, reason, strlen(reason));
        close(fd);
        cleanup_free char *line = xasprintf("imgfs: %s; the container is stopped", reason);
        ctr_log_note(run_dir, id, line);
    } else if (errno != EEXIST) {
        return; /* the container is gone */
    }
    struct ctr_state st;
    struct imgfs_err ignored;
    if (ctr_state_load(run_dir, id, &st, &ignored) < 0)
        return;
    if (st.status == CTR_RUNNING || st.status == CTR_RESTARTING) {
        mark_stopped(run_dir, id); /* lost for good: no restart onto the dead mount */
        signal_now(run_dir, id, SIGKILL, &ignored);
    }
    ctr_state_free(&st);
}

static int wait_lock(const char *run_dir, const char *id, int timeout_ms);

/* Whether the shared mount of image `key` is dead, asked once per key per listing. */
struct mount_health {
    char **keys;
    bool *dead;
    size_t n;
};

static bool mount_key_dead(struct mount_health *h, const char *run_dir, const char *key)
{
    for (size_t i = 0; i < h->n; i++)
        if (!strcmp(h->keys[i], key))
            return h->dead[i];
    cleanup_free char *root = xasprintf("%s/images/%s/rootfs", run_dir, key);
    h->keys = xrealloc(h->keys, (h->n + 1) * sizeof *h->keys);
    h->dead = xrealloc(h->dead, (h->n + 1) * sizeof *h->dead);
    h->keys[h->n] = xstrdup(key);
    h->dead[h->n] = mount_is_dead(root);
    return h->dead[h->n++];
}

static void mount_health_free(struct mount_health *h)
{
    for (size_t i = 0; i < h->n; i++)
        free(h->keys[i]);
    free(h->keys);
    free(h->dead);
}

char *ctr_hidden_dir(const char *run_dir, const char *id)
{
    return xasprintf("%s/containers/.%s", run_dir, id);
}

/* Every path of the shared image mounts and hidden containers starts with the run directory: a
 * NULL one would make them "(null)/images/..." in the cwd (seen once from a caller built against
 * other headers than the runner's objects), so refuse it where they are made. */
static int check_run_dir(const char *run_dir, struct imgfs_err *err)
{
    if (!run_dir || !*run_dir)
        return err_set(err, EINVAL, "no run directory given (the spec's run_dir is not set)");
    return 0;
}

int ctr_hidden_dir_create(const char *run_dir, const char *id, const char *mount_key,
                          struct imgfs_err *err)
{
    if (check_run_dir(run_dir, err) < 0)
        return -1;
    cleanup_free char *base = xasprintf("%s/containers", run_dir);
    if (mkdir_p(base, 0700, err) < 0)
        return -1;
    cleanup_free char *dir = ctr_hidden_dir(run_dir, id);
    if (mkdir(dir, 0700) < 0)
        return err_sys(err, errno, "creating `%s`", dir);
    cleanup_free char *lock = xasprintf("%s/lock", dir);
    int fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0 || flock(fd, LOCK_EX) < 0) {
        err_sys(err, errno, "locking `%s`", lock);
        if (fd >= 0)
            close(fd);
        return -1;
    }
    cleanup_free char *mark = xasprintf("%s/hidden", dir);
    cleanup_close int m = open(mark, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (m < 0 || write_full(m, mount_key ? mount_key : "", mount_key ? strlen(mount_key) : 0) < 0) {
        err_sys(err, errno, "writing `%s`", mark);
        close(fd);
        return -1;
    }
    return fd;
}

/* A hidden entry (".ID") whose process died: free its cgroup and image reference, remove it.
 * Entries without the `hidden` mark are starts of ordinary containers, not ours to touch. */
static void settle_dead_hidden(const char *run_dir, const char *id)
{
    cleanup_free char *dir = ctr_hidden_dir(run_dir, id);
    cleanup_free char *mark = xasprintf("%s/hidden", dir);
    struct buf key = {0};
    struct imgfs_err ignored;
    if (read_file(mark, 256, &key, &ignored) < 0) {
        buf_free(&key);
        return;
    }
    buf_append(&key, "", 1);
    cleanup_free char *lock = xasprintf("%s/lock", dir);
    cleanup_close int fd = open(lock, O_RDWR | O_CLOEXEC);
    if (fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) == 0) {
        cgroup_remove_by_id(id, &ignored);
        ctr_remove_tree(dir, &ignored);
        if (key.data[0])
            ctr_mount_release(run_dir, (const char *)key.data, id, &ignored);
    }
    buf_free(&key);
}

/* Make the state true for a container found with its lock free (we hold it in `lock`). */
static void settle_dead(const char *run_dir, struct ctr_state *s)
{
    bool changed = s->status == CTR_RUNNING || s->status == CTR_RESTARTING;
    if (changed) {
        s->status = CTR_EXITED;
        s->exit_code = -1; /* nobody recorded it: the monitor was killed */
        s->finished = (int64_t)time(NULL);
        char *lost = ctr_lost_reason(run_dir, s->id);
        if (lost) {
            free(s->error);
            s->error = lost;
            s->exit_code = CTR_EXIT_ROOTFS_LOST;
        }
    }
    ctr_cleanup_dead(run_dir, s);
    struct imgfs_err ignored;
    if (s->remove) {
        /* --rm whose monitor died: its anonymous volumes go too, as the monitor would have */
        char **anonymous = ctr_anonymous_volumes(run_dir, s->id);
        cleanup_free char *dir = ctr_dir(run_dir, s->id);
        ctr_remove_tree(dir, &ignored);
        ctr_anonymous_volumes_remove(run_dir, anonymous);
        strv_free(anonymous);
    } else if (changed) {
        ctr_state_save(run_dir, s, &ignored);
    }
}

static int cmp_created(const void *a, const void *b)
{
    const struct ctr_state *x = a, *y = b;
    if (x->created != y->created)
        return x->created < y->created ? 1 : -1;
    if (x->created_ns != y->created_ns)
        return x->created_ns < y->created_ns ? 1 : -1;
    return strcmp(x->id, y->id);
}

int ctr_list(const char *run_dir, struct ctr_state **out, size_t *n, struct imgfs_err *err)
{
    *out = NULL;
    *n = 0;
    cleanup_free char *base = xasprintf("%s/containers", run_dir);
    DIR *d = opendir(base);
    if (!d) {
        if (errno == ENOENT)
            return 0;
        return err_sys(err, errno, "listing `%s`", base);
    }
    size_t cap = 0;
    struct mount_health health = {0};
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.' && strlen(e->d_name) == 65)
            settle_dead_hidden(run_dir, e->d_name + 1);
        if (e->d_name[0] == '.' || strlen(e->d_name) != 64)
            continue;
        struct ctr_state s;
        cleanup_close int lock = take_lock(run_dir, e->d_name);
        struct imgfs_err ignored;
        if (ctr_state_load(run_dir, e->d_name, &s, &ignored) < 0) {
            /* no state and no monitor: a start that died half-way */
            if (lock >= 0) {
                cleanup_free char *dir = ctr_dir(run_dir, e->d_name);
                ctr_remove_tree(dir, &ignored);
            }
            continue;
        }
        if (lock >= 0 && s.status != CTR_CREATED) { /* created: no monitor yet, by design */
            settle_dead(run_dir, &s);
            if (s.remove) {
                ctr_state_free(&s);
                continue;
            }
        } else if (s.status == CTR_RUNNING && s.mount_key &&
                   mount_key_dead(&health, run_dir, s.mount_key)) {
            /* report what the monitor records once the init is gone */
            fail_lost_rootfs(run_dir, s.id, s.mount_key);
            /* bounded: a listing must not hang on a process that does not die */
            wait_lock(run_dir, s.id, 10000);
            ctr_state_free(&s);
            if (ctr_state_load(run_dir, e->d_name, &s, &ignored) < 0)
                continue; /* --rm: removed by its monitor */
        }
        if (*n == cap) {
            cap = cap ? 2 * cap : 16;
            *out = xrealloc(*out, cap * sizeof **out);
        }
        (*out)[(*n)++] = s;
    }
    closedir(d);
    mount_health_free(&health);
    if (*n)
        qsort(*out, *n, sizeof **out, cmp_created);
    return 0;
}

int ctr_find(const char *run_dir, const char *ref, struct ctr_state *out, struct imgfs_err *err)
{
    struct ctr_state *list;
    size_t n;
    if (ctr_list(run_dir, &list, &n, err) < 0)
        return -1;
    ssize_t found = -1;
    int matches = 0;
    for (size_t i = 0; i < n; i++) {
        if (!strcmp(list[i].name, ref) || !strcmp(list[i].id, ref)) {
            found = (ssize_t)i;
            matches = 1;
            break;
        }
        if (strlen(ref) >= 1 && !strncmp(list[i].id, ref, strlen(ref))) {
            found = (ssize_t)i;
            matches++;
        }
    }
    int r = 0;
    if (matches == 0)
        r = err_set(err, ENOENT, "no such container: %s", ref);
    else if (matches > 1)
        r = err_set(err, EINVAL, "container reference `%s` is ambiguous", ref);
    else {
        *out = list[found];
        memset(&list[found], 0, sizeof list[found]);
    }
    ctr_state_list_free(list, n);
    return r;
}

/* ---- the restart policy's brake ----
 * `stop`, `kill` and `rm -f` leave a `stopped` file in the container's directory before they
 * signal it: its monitor does not restart a container that has one (Docker: a container stopped
 * by hand stays stopped, whatever its policy), and ends at once when it is waiting to restart.
 * `start` removes it. */

#define STOPPED_FILE "stopped"

static void mark_stopped(const char *run_dir, const char *id)
{
    cleanup_free char *path = xasprintf("%s/containers/%s/" STOPPED_FILE, run_dir, id);
    int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    if (fd >= 0)
        close(fd);
}

bool ctr_stopped_by_hand(const char *run_dir, const char *id)
{
    cleanup_free char *path = xasprintf("%s/containers/%s/" STOPPED_FILE, run_dir, id);
    return access(path, F_OK) == 0;
}

void ctr_stopped_clear(const char *run_dir, const char *id)
{
    cleanup_free char *path = xasprintf("%s/containers/%s/" STOPPED_FILE, run_dir, id);
    unlink(path);
}

/* Signal what runs the container now: its init, or, between two runs of a restart policy, its
 * monitor (which then ends instead of restarting it). The state is read again: the monitor may
 * have restarted the command since the caller looked. Both pids are ours only while the monitor
 * holds the lock. */
static int signal_now(const char *run_dir, const char *id, int sig, struct imgfs_err *err)
{
    struct ctr_state now;
    if (ctr_state_load(run_dir, id, &now, err) < 0)
        return -1;
    int r = 0;
    pid_t pid = now.status == CTR_RUNNING && now.init_pid > 0         ? now.init_pid
                : now.status == CTR_RESTARTING && now.monitor_pid > 0 ? now.monitor_pid
                                                                      : 0;
    if (pid == 0 || !ctr_is_live(run_dir, id))
        r = err_set(err, EINVAL, "Container %s is not running", id);
    else if (kill(pid, pid == now.monitor_pid ? SIGTERM : sig) < 0 && errno != ESRCH)
        r = err_sys(err, errno, "signalling container %.12s", id);
    ctr_state_free(&now);
    return r;
}

int ctr_kill(const char *run_dir, const struct ctr_state *s, int sig, struct imgfs_err *err)
{
    if ((s->status != CTR_RUNNING && s->status != CTR_RESTARTING) || !ctr_is_live(run_dir, s->id))
        return err_set(err, EINVAL, "Container %s is not running", s->id);
    mark_stopped(run_dir, s->id);
    return signal_now(run_dir, s->id, sig, err);
}

/* Wait until the monitor releases the lock, at most timeout_ms (-1 forever). 0 when it did. */
static int wait_lock(const char *run_dir, const char *id, int timeout_ms)
{
    cleanup_free char *path = xasprintf("%s/containers/%s/lock", run_dir, id);
    cleanup_close int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return 0;
    /* flock has no timeout: poll it. Short steps first, as containers mostly end quickly. */
    int waited = 0, step = 1;
    while (flock(fd, LOCK_SH | LOCK_NB) < 0) {
        if (timeout_ms >= 0 && waited >= timeout_ms)
            return -1;
        poll(NULL, 0, step);
        waited += step;
        if (step < 50)
            step *= 2;
    }
    return 0;
}

int ctr_wait(const char *run_dir, const char *id, struct imgfs_err *err)
{
    /* created: no monitor to wait for yet. As Docker's wait, block until a start has run it; a
     * start holds the lock before it records "running", so the state is watched, not the lock.
     * Polled (a created container has nobody to tell us), short steps first. */
    for (int step = 1;; step = step < 100 ? step * 2 : 100) {
        struct ctr_state s;
        if (ctr_state_load(run_dir, id, &s, err) < 0)
            return err->code == ENOENT ? err_set(err, ENOENT, "no such container: %.12s", id) : -1;
        bool created = s.status == CTR_CREATED && !ctr_is_live(run_dir, id);
        ctr_state_free(&s);
        if (!created)
            break;
        poll(NULL, 0, step);
    }
    return wait_lock(run_dir, id, -1);
}

/* "SIGQUIT", "QUIT", "3"; SIGTERM for anything else */
static int stop_signal(const char *name)
{
    if (!name || !*name)
        return SIGTERM;
    char *end;
    long n = strtol(name, &end, 10);
    if (!*end)
        return n > 0 && n < NSIG ? (int)n : SIGTERM;
    if (!strncasecmp(name, "SIG", 3))
        name += 3;
    for (int i = 1; i < NSIG; i++) {
        const char *abbrev = sigabbrev_np(i);
        if (abbrev && !strcasecmp(abbrev, name))
            return i;
    }
    return SIGTERM;
}

int ctr_stop(const char *run_dir, const struct ctr_state *s, int timeout, struct imgfs_err *err)
{
    if ((s->status != CTR_RUNNING && s->status != CTR_RESTARTING) || !ctr_is_live(run_dir, s->id))
        return 0;    /* stopping a stopped container is fine, as in Docker */
    if (timeout < 0) /* not given: the container's --stop-timeout, else Docker's 10 s */
        timeout = s->stop_timeout >= 0 ? s->stop_timeout : 10;
    mark_stopped(run_dir, s->id);
    if (signal_now(run_dir, s->id, stop_signal(s->stop_signal), err) < 0 &&
        ctr_is_live(run_dir, s->id))
        return -1;
    if (wait_lock(run_dir, s->id, timeout * 1000) == 0)
        return 0;
    if (signal_now(run_dir, s->id, SIGKILL, err) < 0 && ctr_is_live(run_dir, s->id))
        return -1;
    return wait_lock(run_dir, s->id, -1);
}

int ctr_remove(const char *run_dir, const struct ctr_state *s, bool force, struct imgfs_err *err)
{
    if (ctr_is_live(run_dir, s->id)) {
        if (!force)
            return err_set(err, EBUSY,
                           "You cannot remove a running container %s. Stop the container before "
                           "attempting removal or force remove",
                           s->id);
        mark_stopped(run_dir, s->id);
        if (signal_now(run_dir, s->id, SIGKILL, err) < 0 && ctr_is_live(run_dir, s->id))
            return -1;
        wait_lock(run_dir, s->id, -1);
    }
    cleanup_close int lock = take_lock(run_dir, s->id);
    if (lock < 0 && ctr_is_live(run_dir, s->id))
        return err_set(err, EBUSY, "container %.12s was started again", s->id);
    ctr_cleanup_dead(run_dir, s);
    cleanup_free char *dir = ctr_dir(run_dir, s->id);
    if (ctr_remove_tree(dir, err) < 0)
        return err_ctx(err, "removing container %.12s", s->id);
    return 0;
}

/* ---- restart policies ---- */

static const char *const restart_names[] = {"no", "on-failure", "always", "unless-stopped"};

const char *ctr_restart_name(enum ctr_restart_policy policy)
{
    return restart_names[policy];
}

int ctr_restart_parse(const char *s, enum ctr_restart_policy *policy, int *max,
                      struct imgfs_err *err)
{
    const char *colon = strchr(s, ':');
    size_t n = colon ? (size_t)(colon - s) : strlen(s);
    *max = 0;
    if (n == 0 && !colon) { /* Docker takes an empty --restart as "no" */
        *policy = CTR_RESTART_NO;
        return 0;
    }
    size_t i;
    for (i = 0; i < sizeof restart_names / sizeof restart_names[0]; i++)
        if (strlen(restart_names[i]) == n && !strncmp(restart_names[i], s, n))
            break;
    if (i == sizeof restart_names / sizeof restart_names[0])
        return err_set(err, EINVAL, "invalid restart policy '%.*s'", (int)n, s);
    *policy = (enum ctr_restart_policy)i;
    if (!colon)
        return 0;
    char *end;
    errno = 0;
    long v = strtol(colon + 1, &end, 10);
    if (end == colon + 1 || *end || errno || v > INT32_MAX || v < INT32_MIN)
        return err_set(err, EDOM,
                       "invalid restart policy format: maximum retry count must be an integer");
    if (*policy != CTR_RESTART_ON_FAILURE)
        return err_set(err, EINVAL, "maximum retry count cannot be used with restart policy '%s'",
                       restart_names[i]);
    if (v < 0)
        return err_set(err, EINVAL, "maximum retry count cannot be negative");
    *max = (int)v;
    return 0;
}

/* ---- names ----
 *
 * RUN_DIR/names/NAME is a symlink to the id of the container that holds NAME, made under
 * RUN_DIR/names/.lock once that container's directory exists, so of two runs with one name exactly
 * one wins. A link whose container directory is gone (removed, or a run that died early) holds
 * nothing: no release is needed on any of the paths that remove a container. */

bool ctr_name_valid(const char *name)
{
    size_t n = strlen(name);
    if (!n || n > 200 || !isalnum((unsigned char)name[0]))
        return false;
    for (size_t i = 1; i < n; i++)
        if (!isalnum((unsigned char)name[i]) && !strchr("_.-", name[i]))
            return false;
    return true;
}

static bool container_dir_exists(const char *run_dir, const char *id)
{
    cleanup_free char *dir = ctr_dir(run_dir, id);
    cleanup_free char *creating = xasprintf("%s/containers/.%s", run_dir, id);
    return access(dir, F_OK) == 0 || access(creating, F_OK) == 0;
}

static int name_conflict(const char *name, const char *holder, struct imgfs_err *err)
{
    return err_set(err, EEXIST,
                   "Conflict. The container name \"/%s\" is already in use by container \"%s\". "
                   "You have to remove (or rename) that container to be able to reuse that name.",
                   name, holder);
}

/* The id NAME's link points at, in holder; false when there is no link. */
static bool name_holder(const char *link, char *holder, size_t size)
{
    ssize_t n = readlink(link, holder, size - 1);
    if (n <= 0)
        return false;
    holder[n] = 0;
    return true;
}

/* Containers made by an imgfs older than RUN_DIR/names have only their state file. The first
 * claim in a run directory links their names (under names/.lock) and leaves names/.linked, so that
 * from then on a link is the whole truth and a start does not read every container's state (with
 * a lock probe each and a statfs of each image's FUSE mount: a round trip to its daemon, ~0.2 ms
 * with one other container and more with each, docs/runner.md). */
static int names_link_unlinked(const char *run_dir, const char *dir, struct imgfs_err *err)
{
    cleanup_free char *mark = xasprintf("%s/.linked", dir);
    if (access(mark, F_OK) == 0)
        return 0;
    struct ctr_state *list = NULL;
    size_t count = 0;
    if (ctr_list(run_dir, &list, &count, err) < 0)
        return -1;
    int r = 0;
    for (size_t i = 0; i < count && !r; i++) {
        cleanup_free char *link = xasprintf("%s/%s", dir, list[i].name);
        char holder[80];
        if (name_holder(link, holder, sizeof holder) && container_dir_exists(run_dir, holder))
            continue;
        if ((unlink(link) < 0 && errno != ENOENT) || symlink(list[i].id, link) < 0)
            r = err_sys(err, errno, "linking the name `%s`", link);
    }
    ctr_state_list_free(list, count);
    if (r < 0)
        return r;
    int fd = open(mark, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return err_sys(err, errno, "creating `%s`", mark);
    close(fd);
    return 0;
}

int ctr_name_claim(const char *run_dir, const char *name, const char *id, struct imgfs_err *err)
{
    if (!ctr_name_valid(name))
        return err_set(err, EINVAL,
                       "Invalid container name (%s), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed",
                       name);
    cleanup_free char *dir = xasprintf("%s/names", run_dir);
    if (mkdir_p(dir, 0700, err) < 0)
        return -1;
    cleanup_free char *lock_path = xasprintf("%s/.lock", dir);
    cleanup_close int lock = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (lock < 0)
        return err_sys(err, errno, "opening `%s`", lock_path);
    while (flock(lock, LOCK_EX) < 0)
        if (errno != EINTR)
            return err_sys(err, errno, "locking `%s`", lock_path);
    if (names_link_unlinked(run_dir, dir, err) < 0)
        return -1;
    cleanup_free char *link = xasprintf("%s/%s", dir, name);
    char holder[80];
    if (name_holder(link, holder, sizeof holder) && strcmp(holder, id) &&
        container_dir_exists(run_dir, holder))
        return name_conflict(name, holder, err);
    if (unlink(link) < 0 && errno != ENOENT)
        return err_sys(err, errno, "removing the stale name `%s`", link);
    if (symlink(id, link) < 0)
        return err_sys(err, errno, "claiming the name `%s`", link);
    return 0;
}

/* ---- removing a tree: no symlink is followed, no mount point crossed ---- */

/* An entry readdir says is neither a directory nor of unknown type is unlinked without the stat
 * remove_at makes (no mount point to check: only a directory can be one), ~12 stats less at each
 * container's removal. false: not done here (anything else, or a failed unlink: remove_at then
 * decides and says why). */
static bool unlinked_by_type(int at, const struct dirent *e)
{
    if (e->d_type == DT_DIR || e->d_type == DT_UNKNOWN)
        return false;
    return unlinkat(at, e->d_name, 0) == 0;
}

static int remove_at(int at, const char *name, dev_t dev, struct imgfs_err *err)
{
    struct stat st;
    if (fstatat(at, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return errno == ENOENT ? 0 : err_sys(err, errno, "stat `%s`", name);
    if (S_ISDIR(st.st_mode)) {
        if (st.st_dev != dev) {
            /* a mount point: a leftover mount would otherwise be emptied through; detach it */
            int fd = openat(at, name, O_PATH | O_CLOEXEC | O_NOFOLLOW);
            if (fd >= 0) {
                char self[64];
                snprintf(self, sizeof self, "/proc/self/fd/%d", fd);
                umount2(self, MNT_DETACH);
                close(fd);
            }
            if (fstatat(at, name, &st, AT_SYMLINK_NOFOLLOW) < 0 || st.st_dev != dev)
                return err_set(err, EBUSY, "`%s` is still a mount point", name);
        }
        int fd = openat(at, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
            return err_sys(err, errno, "opening `%s`", name);
        DIR *d = fdopendir(fd);
        if (!d) {
            close(fd);
            return err_sys(err, errno, "opening `%s`", name);
        }
        struct dirent *e;
        int r = 0;
        while ((e = readdir(d)))
            if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") &&
                !unlinked_by_type(dirfd(d), e) && remove_at(dirfd(d), e->d_name, dev, err) < 0) {
                r = -1;
                break;
            }
        closedir(d);
        if (r < 0)
            return -1;
        if (unlinkat(at, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
            return err_sys(err, errno, "removing `%s`", name);
        return 0;
    }
    if (unlinkat(at, name, 0) < 0 && errno != ENOENT)
        return err_sys(err, errno, "removing `%s`", name);
    return 0;
}

int ctr_json_write(const char *dir, const char *name, struct json_t *o, struct imgfs_err *err)
{
    cleanup_free char *path = xasprintf("%s/%s", dir, name);
    cleanup_free char *tmp = xasprintf("%s.tmp", path);
    int r = json_dump_file(o, tmp, JSON_COMPACT);
    json_decref(o);
    if (r < 0 || rename(tmp, path) < 0) {
        unlink(tmp);
        return err_sys(err, errno ? errno : EIO, "writing `%s`", path);
    }
    return 0;
}

int ctr_remove_tree(const char *path, struct imgfs_err *err)
{
    struct stat st;
    if (lstat(path, &st) < 0)
        return errno == ENOENT ? 0 : err_sys(err, errno, "stat `%s`", path);
    return remove_at(AT_FDCWD, path, st.st_dev, err);
}

/* ---- the shared image mounts ---- */

static bool is_mounted(const char *dir)
{
    struct stat a, b;
    cleanup_free char *parent = xasprintf("%s/..", dir);
    if (stat(dir, &a) < 0 || stat(parent, &b) < 0)
        return false;
    return a.st_dev != b.st_dev;
}

static int lock_image(const char *run_dir, const char *key, struct imgfs_err *err)
{
    if (check_run_dir(run_dir, err) < 0)
        return -1;
    cleanup_free char *dir = xasprintf("%s/images/%s/refs", run_dir, key);
    if (mkdir_p(dir, 0700, err) < 0)
        return -1;
    /* The image's shared mount below is the containers' lower: allow_other and suid (their user
     * ids and setuid programs must work, as in Docker), so no other host user may reach it — also
     * when these directories existed before with a looser mode. */
    cleanup_free char *images = xasprintf("%s/images", run_dir);
    cleanup_free char *keydir = xasprintf("%s/images/%s", run_dir, key);
    if (chmod(images, 0700) < 0 || chmod(keydir, 0700) < 0)
        return err_sys(err, errno, "making `%s` private", keydir);
    cleanup_free char *path = xasprintf("%s/images/%s/lock", run_dir, key);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return err_sys(err, errno, "opening `%s`", path);
    while (flock(fd, LOCK_EX) < 0)
        if (errno != EINTR) {
            close(fd);
            return err_sys(err, errno, "locking `%s`", path);
        }
    return fd;
}

/* Fail every live container that refers to image `key`. */
static void fail_users(const char *run_dir, const char *key)
{
    cleanup_free char *refs = xasprintf("%s/images/%s/refs", run_dir, key);
    DIR *d = opendir(refs);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.' && ctr_is_live(run_dir, e->d_name))
            fail_lost_rootfs(run_dir, e->d_name, key);
    closedir(d);
}

int ctr_mount_acquire(const char *run_dir, const char *key, const char *id, ctr_mount_fn do_mount,
                      void *ctx, char **dir, struct imgfs_err *err)
{
    cleanup_close int lock = lock_image(run_dir, key, err);
    if (lock < 0)
        return -1;
    char *root = xasprintf("%s/images/%s/rootfs", run_dir, key);
    if (mount_is_dead(root)) {
        /* its keeper and daemon are gone: the containers on it lost their rootfs (they would not
         * be found later: the path is mounted again now); detach it and mount again */
        fail_users(run_dir, key);
        struct imgfs_err ignored;
        mount_unmount(NULL, root, true, &ignored);
    }
    if (!is_mounted(root)) {
        if (mkdir(root, 0755) < 0 && errno != EEXIST) {
            err_sys(err, errno, "creating `%s`", root);
            free(root);
            return -1;
        }
        if (do_mount(root, ctx, err) < 0) {
            free(root);
            return err_ctx(err, "mounting the image");
        }
    }
    cleanup_free char *ref = xasprintf("%s/images/%s/refs/%s", run_dir, key, id);
    int fd = open(ref, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        err_sys(err, errno, "creating `%s`", ref);
        free(root);
        return -1;
    }
    close(fd);
    *dir = root;
    return 0;
}

int ctr_mount_release(const char *run_dir, const char *key, const char *id, struct imgfs_err *err)
{
    cleanup_close int lock = lock_image(run_dir, key, err);
    if (lock < 0)
        return -1;
    cleanup_free char *refs = xasprintf("%s/images/%s/refs", run_dir, key);
    cleanup_free char *mine = xasprintf("%s/%s", refs, id);
    unlink(mine);
    DIR *d = opendir(refs);
    if (!d)
        return err_sys(err, errno, "listing `%s`", refs);
    bool used = false;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        if (ctr_is_live(run_dir, e->d_name)) {
            used = true;
        } else {
            cleanup_free char *stale = xasprintf("%s/%s", refs, e->d_name);
            unlink(stale);
        }
    }
    closedir(d);
    if (used)
        return 0;
    cleanup_free char *root = xasprintf("%s/images/%s/rootfs", run_dir, key);
    if ((is_mounted(root) || mount_is_dead(root)) && mount_unmount(NULL, root, true, err) < 0)
        return err_ctx(err, "unmounting the image");
    return 0;
}

/* ---- rename ---- */

int ctr_rename(const char *run_dir, const struct ctr_state *s, const char *name,
               struct imgfs_err *err)
{
    if (!strcmp(s->name, name))
        return err_set(err, EINVAL, "Renaming a container with the same name as its current name");
    if (ctr_name_claim(run_dir, name, s->id, err) < 0)
        return -1;
    struct ctr_state cur;
    if (ctr_state_load(run_dir, s->id, &cur, err) < 0)
        return err_ctx(err, "renaming container %.12s", s->id);
    char *old = cur.name;
    cur.name = (char *)name;
    int r = ctr_state_save(run_dir, &cur, err);
    cur.name = old;
    if (r == 0) { /* the old name's link now points at a container that no longer holds it */
        cleanup_free char *link = xasprintf("%s/names/%s", run_dir, old);
        char holder[80];
        ssize_t n = readlink(link, holder, sizeof holder - 1);
        if (n > 0 && (holder[n] = 0, !strcmp(holder, s->id)))
            unlink(link);
    }
    ctr_state_free(&cur);
    return r;
}

char *ctr_state_name_now(const char *run_dir, const char *id)
{
    struct ctr_state cur;
    struct imgfs_err ignored;
    if (ctr_state_load(run_dir, id, &cur, &ignored) < 0)
        return NULL;
    char *name = cur.name;
    cur.name = NULL;
    ctr_state_free(&cur);
    return name;
}

/* ---- top ---- */

int ctr_pids(const char *run_dir, const struct ctr_state *s, pid_t **out, size_t *n,
             struct imgfs_err *err)
{
    *out = NULL;
    *n = 0;
    if (s->status != CTR_RUNNING || s->init_pid <= 0 || !ctr_is_live(run_dir, s->id))
        return err_set(err, EINVAL, "container %.12s is not running", s->id);
    char want[64], path[64], link[64];
    snprintf(path, sizeof path, "/proc/%d/ns/pid", (int)s->init_pid);
    ssize_t len = readlink(path, want, sizeof want - 1);
    if (len < 0)
        return err_sys(err, errno, "reading `%s`", path);
    want[len] = 0;
    DIR *d = opendir("/proc");
    if (!d)
        return err_sys(err, errno, "reading /proc");
    struct dirent *e;
    size_t cap = 0;
    while ((e = readdir(d))) {
        char *end;
        long pid = strtol(e->d_name, &end, 10);
        if (*end || pid <= 0)
            continue;
        snprintf(path, sizeof path, "/proc/%ld/ns/pid", pid);
        ssize_t l = readlink(path, link, sizeof link - 1);
        if (l < 0)
            continue; /* gone meanwhile */
        link[l] = 0;
        if (strcmp(link, want))
            continue;
        if (*n == cap) {
            cap = cap ? cap * 2 : 16;
            *out = xrealloc(*out, cap * sizeof **out);
        }
        (*out)[(*n)++] = (pid_t)pid;
    }
    closedir(d);
    if (!ctr_is_live(run_dir, s->id)) { /* the pids may belong to others now */
        free(*out);
        *out = NULL;
        *n = 0;
        return err_set(err, EINVAL, "container %.12s ended", s->id);
    }
    return 0;
}
