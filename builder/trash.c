/* trash.c — removing a build's step directories after it has returned.
 *
 * On a file system mounted with `discard` (this project's ext4 hosts), removing a directory
 * frees its block with a synchronous discard (ext4_free_blocks -> blkdev_issue_discard, 2-3 ms
 * each): a RUN's upper directory holding a Go build cache (256 directories) takes ~0.9 s to
 * remove, longer than the rest of a one-line rebuild's own work. So what a build no longer needs
 * is renamed (instant, same file system) into one batch directory, ROOT/trash/batch.XXXXXX,
 * and when the build ends the batch goes to `imgfs __remove-trash` (build_trash_main): a
 * detached process in a session of its own, stdin/stdout/stderr on /dev/null and no other
 * descriptor than the batch's lock, so that nobody waiting for the build's output or its locks
 * waits for it. It holds the batch's `.lock` (taken by the build before it starts: there is no
 * moment where the batch is unlocked and not yet removed) until the batch is gone, and
 * ROOT/trash/.lock shared: whoever takes that one exclusively has waited for every remover. A batch
 * whose lock is free was left by a killed build or remover: the next build and `imgfs gc`
 * remove it (build_trash_sweep). */
#include "builder.h"
#include "internal.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

extern char **environ;

/* The batch of this build, made on first use; under b->mu. */
static int trash_batch(struct build *b)
{
    if (b->trash_lock >= 0)
        return 0;
    cleanup_free char *trash = xasprintf("%s/trash", b->o->root);
    if (mkdir(trash, 0700) < 0 && errno != EEXIST)
        return -1;
    if ((size_t)snprintf(b->trash, sizeof b->trash, "%s/batch.XXXXXX", trash) >= sizeof b->trash ||
        !mkdtemp(b->trash))
        return -1;
    cleanup_free char *lock = xasprintf("%s/.lock", b->trash);
    int fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0 || flock(fd, LOCK_EX) < 0) {
        if (fd >= 0)
            close(fd);
        rmdir(b->trash);
        return -1;
    }
    b->trash_lock = fd;
    return 0;
}

void build_discard(struct build *b, const char *dir)
{
    const char *base = strrchr(dir, '/');
    base = base ? base + 1 : dir;
    pthread_mutex_lock(&b->mu);
    bool moved = false;
    if (trash_batch(b) == 0) {
        cleanup_free char *to = xasprintf("%s/%s", b->trash, base);
        moved = rename(dir, to) == 0;
    }
    pthread_mutex_unlock(&b->mu);
    if (!moved)
        build_remove_tree(dir);
}

void build_trash_release(struct build *b)
{
    if (b->trash_lock < 0)
        return;
    /* the batch's lock goes to the remover as its fd 3; fd 4 is ROOT/trash/.lock, held shared
     * by every remover while it runs, so that one can wait for them all (tests/lib.sh) */
    int lock = fcntl(b->trash_lock, F_DUPFD_CLOEXEC, 10);
    cleanup_free char *all_path = xasprintf("%s/trash/.lock", b->o->root);
    int all = open(all_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (all >= 0) {
        int moved = fcntl(all, F_DUPFD_CLOEXEC, 10);
        close(all);
        all = moved;
    }
    while (all >= 0 && flock(all, LOCK_SH) < 0 && errno == EINTR)
        ;
    char *args[] = {"imgfs", "__remove-trash", b->trash, NULL};
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    sigset_t none, dfl;
    sigemptyset(&none);
    sigfillset(&dfl);
    pid_t pid;
    int rc = -1;
    if (lock >= 0 && all >= 0 && posix_spawn_file_actions_init(&fa) == 0) {
        if (posix_spawnattr_init(&at) == 0) {
            if (!posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0) &&
                !posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0) &&
                !posix_spawn_file_actions_adddup2(&fa, 1, 2) &&
                !posix_spawn_file_actions_adddup2(&fa, lock, 3) &&
                !posix_spawn_file_actions_adddup2(&fa, all, 4) &&
                !posix_spawn_file_actions_addclosefrom_np(&fa, 5) &&
                !posix_spawn_file_actions_addchdir_np(&fa, "/") &&
                !posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK |
                                                   POSIX_SPAWN_SETSIGDEF) &&
                !posix_spawnattr_setsigmask(&at, &none) &&
                !posix_spawnattr_setsigdefault(&at, &dfl))
                rc = posix_spawn(&pid, "/proc/self/exe", &fa, &at, args, environ);
            posix_spawnattr_destroy(&at);
        }
        posix_spawn_file_actions_destroy(&fa);
    }
    if (lock >= 0)
        close(lock);
    if (all >= 0)
        close(all);
    /* the remover could not start: the build removes the batch itself, as before */
    if (rc != 0)
        build_remove_tree(b->trash);
    close(b->trash_lock);
    b->trash_lock = -1;
    b->trash[0] = 0;
}

int build_trash_main(int argc, char **argv)
{
    if (argc != 3 || strncmp(strrchr(argv[2], '/') ? strrchr(argv[2], '/') + 1 : "", "batch.", 6))
        return 2;
    /* fd 3, the batch's lock, and fd 4, ROOT/trash/.lock shared, stay held until we exit */
    build_remove_tree(argv[2]);
    return 0;
}

/* Remove every PARENT/PREFIX* whose lock file LOCK in it nobody holds. A missing lock file
 * counts as free: a step directory is locked right after it is made and a batch right after, and
 * a remover deletes its batch's lock among the rest; removing what another is removing is
 * harmless. */
static void sweep(const char *parent, const char *prefix, const char *lock_name)
{
    DIR *d = opendir(parent);
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (strncmp(de->d_name, prefix, strlen(prefix)))
            continue;
        cleanup_free char *dir = xasprintf("%s/%s", parent, de->d_name);
        cleanup_free char *lock = xasprintf("%s/%s", dir, lock_name);
        int fd = open(lock, O_RDONLY | O_CLOEXEC);
        if (fd < 0 || flock(fd, LOCK_EX | LOCK_NB) == 0)
            build_remove_tree(dir);
        if (fd >= 0)
            close(fd);
    }
    closedir(d);
}

void build_sweep(const char *root)
{
    cleanup_free char *tmp = xasprintf("%s/tmp", root);
    cleanup_free char *trash = xasprintf("%s/trash", root);
    sweep(tmp, "build-step.", "lock");
    sweep(trash, "batch.", ".lock");
}
