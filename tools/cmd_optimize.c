/* imgfs optimize — record a start-up (docs/lazy.md): which files CMD reads, in order, from IMAGE.
 * The image is mounted privately with a trace (mount_options.trace_path), CMD runs in a container
 * on that mount (`imgfs run` of the directory), and the trace is kept with the image; `imgfs push`
 * then writes those files first in their layers, before the eStargz prefetch landmark, and a lazy
 * mount fetches them in the background while the container starts. */
#include "../fs/lazy.h"
#include "../fs/mount.h"
#include "../fs/store.h"
#include "cli.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

static const char usage[] =
    "Usage: imgfs optimize IMAGE -- COMMAND [ARG...]\n\n"
    "Run COMMAND in a container of IMAGE (no network) and record which files its start-up reads,\n"
    "in the order of their first read. The list is kept with the image: `imgfs push` writes those\n"
    "files first in their layers, before the eStargz prefetch landmark, and a lazy mount of the\n"
    "pushed image fetches them in the background, in large requests, as the container starts.\n";

int cmd_optimize(int argc, char **argv, struct cli *cli)
{
    if (argc >= 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
        fputs(usage, stdout);
        return 0;
    }
    if (argc < 4 || strcmp(argv[2], "--")) {
        cli_error("optimize", "wants IMAGE -- COMMAND [ARG...]");
        return cli_usage_error("optimize");
    }
    const char *image = argv[1];
    struct imgfs_err err = {0};
    struct store *s = cli_store_open(cli, "optimize", true);
    if (!s)
        return EXIT_IMGFS_FAILED;
    struct store_read *r;
    struct digest manifest;
    int rc = store_read_begin(s, &r, &err);
    if (rc == 0) {
        rc = store_image_resolve(r, image, &manifest, &err);
        store_read_end(r);
    }
    store_close(s);
    if (rc < 0) {
        cli_report("optimize", &err);
        return EXIT_IMGFS_FAILED;
    }
    if (mkdir_p(cli->run_dir, 0700, &err) < 0) {
        cli_report("optimize", &err);
        return EXIT_IMGFS_FAILED;
    }
    cleanup_free char *dir = xasprintf("%s/optimize.XXXXXX", cli->run_dir);
    if (!mkdtemp(dir)) {
        err_sys(&err, errno, "creating `%s`", dir);
        cli_report("optimize", &err);
        return EXIT_IMGFS_FAILED;
    }
    cleanup_free char *mnt = xasprintf("%s/rootfs", dir);
    cleanup_free char *trace = xasprintf("%s/trace", dir);
    int ret = EXIT_IMGFS_FAILED;
    bool mounted = false;
    if (mkdir(mnt, 0700) < 0) {
        err_sys(&err, errno, "creating `%s`", mnt);
        goto out;
    }
    struct mount_options o = {.trace_path = trace, .allow_other = geteuid() == 0};
    if (mount_image(cli->root, image, mnt, &o, &err) < 0)
        goto out;
    mounted = true;
    /* the command in a container on the traced mount: `imgfs run` of a rootfs directory */
    pid_t pid = fork();
    if (pid < 0) {
        err_sys(&err, errno, "fork");
        goto out;
    }
    if (pid == 0) {
        size_t n = (size_t)argc - 3;
        char **args = xcalloc(n + 12, sizeof *args);
        size_t k = 0;
        args[k++] = "imgfs";
        args[k++] = "--root";
        args[k++] = (char *)cli->root;
        args[k++] = "--run-dir";
        args[k++] = (char *)cli->run_dir;
        args[k++] = "run";
        args[k++] = "--rm";
        args[k++] = "--network";
        args[k++] = "none";
        args[k++] = mnt;
        for (size_t i = 0; i < n; i++)
            args[k++] = argv[3 + i];
        execv("/proc/self/exe", args);
        _exit(127);
    }
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    if (mount_unmount(mnt, false, &err) < 0)
        goto out;
    mounted = false;
    char **paths;
    size_t n;
    struct buf b = {0};
    if (read_file(trace, 64u << 20, &b, &err) < 0 && err.code != ENOENT)
        goto out;
    /* one path per line, "/usr/bin/go": layer paths have no leading slash */
    paths = NULL;
    n = 0;
    for (size_t i = 0; i < b.len;) {
        const uint8_t *nl = memchr(b.data + i, '\n', b.len - i);
        size_t end = nl ? (size_t)(nl - b.data) : b.len;
        size_t start = i;
        while (start < end && b.data[start] == '/')
            start++;
        if (end > start) {
            paths = xrealloc(paths, (n + 1) * sizeof *paths);
            paths[n++] = strndup((const char *)b.data + start, end - start);
        }
        i = end + 1;
    }
    buf_free(&b);
    rc = lazy_trace_save(cli->root, &manifest, (const char *const *)paths, n, &err);
    for (size_t i = 0; i < n; i++)
        free(paths[i]);
    free(paths);
    if (rc < 0)
        goto out;
    if (!WIFEXITED(st) || WEXITSTATUS(st))
        fprintf(stderr, "imgfs optimize: note: the command did not exit 0; its reads are kept\n");
    printf("Recorded %zu files read by the start-up of %s; imgfs push writes them first\n", n,
           image);
    ret = 0;
out:
    if (ret)
        cli_report("optimize", &err);
    if (mounted)
        mount_unmount(mnt, true, &err);
    unlink(trace);
    rmdir(mnt);
    rmdir(dir);
    return ret;
}
