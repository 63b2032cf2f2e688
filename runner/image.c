/* image.c — a store image as a container's rootfs: resolve it, load its config, and mount it
 * once, shared by every container (and build step) using it. `imgfs run` and the builder share
 * this; runner.h has the contract. */
#include "ctr_internal.h"
#include "../fs/digest.h"
#include "../fs/image.h"
#include "../fs/mount.h"
#include "../fs/store.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>

struct ctr_image {
    char *store_root;
    char digest[DIGEST_STR_SIZE];
    char key[DIGEST_HEX_LEN + 1];
    char config_id[DIGEST_STR_SIZE]; /* Docker's image ID: the config digest */
    struct image img;
    /* ctr_image_acquire: a hidden holder that keeps the shared mount referenced */
    struct ctr_mount_holder *holder;
    char *dir;
    /* a lazily pulled image: how the shared mount fetches when this process mounts it */
    unsigned fetch_timeout_ms;
    int prefetch;
};

int ctr_image_open(const char *store_root, const char *ref, struct ctr_image **out,
                   struct imgfs_err *err)
{
    struct store *s;
    struct store_read *r;
    if (store_open(store_root, STORE_READONLY, &s, err) < 0)
        return -1;
    if (store_read_begin(s, &r, err) < 0) {
        store_close(s);
        return -1;
    }
    struct ctr_image *ci = xcalloc(1, sizeof *ci);
    int rc = image_load_ref(r, ref, &ci->img, err);
    store_read_end(r);
    /* the container must not hold the store: LMDB must not be used across fork */
    store_close(s);
    if (rc < 0) {
        free(ci);
        return -1;
    }
    ci->store_root = xstrdup(store_root);
    digest_str(&ci->img.digest, ci->digest);
    digest_hex(&ci->img.digest, ci->key);
    digest_str(&ci->img.config_digest, ci->config_id);
    *out = ci;
    return 0;
}

void ctr_image_free(struct ctr_image *ci)
{
    if (!ci)
        return;
    struct imgfs_err ignored;
    ctr_image_release(ci, &ignored);
    image_free(&ci->img);
    free(ci->store_root);
    free(ci);
}

const struct image *ctr_image_get(const struct ctr_image *ci)
{
    return &ci->img;
}

const char *ctr_image_digest(const struct ctr_image *ci)
{
    return ci->digest;
}

/* Mount the image in a child that keeps none of our descriptors: the FUSE daemon it leaves behind
 * must not hold the container's lock (or anything else of ours) open. */
static int mount_in_child(const char *dir, void *p, struct imgfs_err *err)
{
    struct ctr_image *ci = p;
    int pipefd[2];
    if (pipe2(pipefd, O_CLOEXEC) < 0)
        return err_sys(err, errno, "pipe");
    pid_t pid = fork();
    if (pid < 0)
        return err_sys(err, errno, "fork");
    if (pid == 0) {
        if (dup3(pipefd[1], 3, 0) < 0)
            _exit(1);
        close_range(4, ~0U, 0);
        /* the daemon must not keep the pipe either */
        fcntl(3, F_SETFD, FD_CLOEXEC);
        /* the containers' lower: their user ids must get in, their setuid programs work (as in
         * Docker); other host users are kept out by the 0700 directory above it (runner/state.c) */
        struct mount_options o = {.allow_other = true,
                                  .suid = true,
                                  .fetch_timeout_ms = ci->fetch_timeout_ms,
                                  .prefetch = ci->prefetch};
        /* the daemon's log beside the mount point, RUN_DIR/images/KEY/mount.log: what the monitor
         * quotes when a container dies of SIGBUS */
        cleanup_free char *log = xasprintf("%.*s/mount.log", (int)(strrchr(dir, '/') - dir), dir);
        o.log_path = log;
        struct imgfs_err e = {0};
        if (mount_image(ci->store_root, ci->digest, dir, &o, &e) < 0) {
            (void)!write(3, e.msg, strlen(e.msg));
            _exit(1);
        }
        _exit(0);
    }
    close(pipefd[1]);
    /* the daemon the child leaves behind inherits the pipe: wait for the child, not for EOF */
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    char msg[sizeof err->msg];
    fcntl(pipefd[0], F_SETFL, O_NONBLOCK);
    ssize_t n = read(pipefd[0], msg, sizeof msg - 1);
    close(pipefd[0]);
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
        return 0;
    msg[n > 0 ? n : 0] = 0;
    return err_set(err, EIO, "%s", n > 0 ? msg : "the mount helper failed");
}

void ctr_image_set_lazy(struct ctr_image *ci, unsigned fetch_timeout_ms, int prefetch)
{
    ci->fetch_timeout_ms = fetch_timeout_ms;
    ci->prefetch = prefetch;
}

void ctr_image_spec(struct ctr_image *ci, struct ctr_spec *spec)
{
    spec->image_id = ci->config_id;
    spec->config = &ci->img.config;
    spec->mount_key = ci->key;
    spec->do_mount = mount_in_child;
    spec->mount_ctx = ci;
}

struct ctr_mount_holder {
    char id[65];
    char key[DIGEST_HEX_LEN + 1];
    char *run_dir;
    int lock;
};

int ctr_mount_holder_new(const char *run_dir, const char *mount_key, struct ctr_mount_holder **out,
                         struct imgfs_err *err)
{
    struct ctr_mount_holder *h = xcalloc(1, sizeof *h);
    ctr_new_id(h->id);
    snprintf(h->key, sizeof h->key, "%s", mount_key);
    h->lock = ctr_hidden_dir_create(run_dir, h->id, h->key, err);
    if (h->lock < 0) {
        free(h);
        return -1;
    }
    h->run_dir = xstrdup(run_dir);
    *out = h;
    return 0;
}

const char *ctr_mount_holder_id(const struct ctr_mount_holder *h)
{
    return h->id;
}

int ctr_mount_holder_free(struct ctr_mount_holder *h, struct imgfs_err *err)
{
    if (!h)
        return 0;
    /* the reference goes first, while our lock still says the holder is alive: nobody else
     * may drop it (and unmount) in between */
    int rc = ctr_mount_release(h->run_dir, h->key, h->id, err);
    cleanup_free char *hd = ctr_hidden_dir(h->run_dir, h->id);
    struct imgfs_err ignored;
    ctr_remove_tree(hd, &ignored);
    close(h->lock);
    free(h->run_dir);
    free(h);
    return rc;
}

int ctr_image_hold(const char *run_dir, struct ctr_image *ci, const char *holder_id,
                   struct imgfs_err *err)
{
    cleanup_free char *dir = NULL;
    return ctr_mount_acquire(run_dir, ci->key, holder_id, mount_in_child, ci, &dir, err);
}

int ctr_image_acquire(const char *run_dir, struct ctr_image *ci, const char **dir,
                      struct imgfs_err *err)
{
    if (ci->dir) {
        *dir = ci->dir;
        return 0;
    }
    struct ctr_mount_holder *h;
    if (ctr_mount_holder_new(run_dir, ci->key, &h, err) < 0)
        return -1;
    if (ctr_mount_acquire(run_dir, ci->key, h->id, mount_in_child, ci, &ci->dir, err) < 0) {
        struct imgfs_err ignored;
        ctr_mount_holder_free(h, &ignored);
        return -1;
    }
    ci->holder = h;
    *dir = ci->dir;
    return 0;
}

int ctr_image_release(struct ctr_image *ci, struct imgfs_err *err)
{
    if (!ci->dir)
        return 0;
    int rc = ctr_mount_holder_free(ci->holder, err);
    ci->holder = NULL;
    free(ci->dir);
    ci->dir = NULL;
    return rc;
}
