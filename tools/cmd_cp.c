/* imgfs cp — copy files between a running container and the host (docker cp). */
#include "../runner/runner.h"
#include "cli.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

static const char usage[] =
    "Usage: imgfs cp CONTAINER:SRC_PATH DEST_PATH\n"
    "       imgfs cp SRC_PATH CONTAINER:DEST_PATH\n\n"
    "Copy files or directories between a running container and the host, as docker cp: into\n"
    "DEST_PATH when it is a directory, else as DEST_PATH; SRC_PATH ending in /. copies a\n"
    "directory's contents. Paths in the container are resolved inside its root (a symlink\n"
    "never leads out of it; links in a copied tree are copied as links). Differences from\n"
    "Docker: the container must be running, `-` (a tar stream) is not taken, devices and\n"
    "fifos are skipped, and copied files belong to the user running imgfs.\n\n"
    "Options:\n"
    "  -h, --help   show this help\n";

/* "name:path" names a container (a colon before any slash, as Docker decides) */
static const char *container_part(const char *arg, char **name)
{
    const char *colon = strchr(arg, ':');
    const char *slash = strchr(arg, '/');
    if (!colon || (slash && slash < colon) || arg[0] == '.' || colon == arg)
        return NULL;
    *name = strndup(arg, (size_t)(colon - arg));
    return colon + 1;
}

int cmd_cp(int argc, char **argv, struct cli *cli)
{
    static const struct option longopts[] = {{"help", no_argument, NULL, 'h'}, {0}};
    int c;
    while ((c = cli_getopt(argc, argv, "h", longopts)) != -1) {
        if (c == 'h') {
            fputs(usage, stdout);
            return 0;
        }
        return cli_usage_error("cp");
    }
    if (argc - optind != 2) {
        cli_error("cp", "requires exactly 2 arguments");
        return cli_usage_error("cp");
    }
    cleanup_free char *from = NULL, *to = NULL;
    const char *src = argv[optind], *dest = argv[optind + 1];
    const char *src_path = container_part(src, &from), *dest_path = container_part(dest, &to);
    if (!strcmp(src, "-") || !strcmp(dest, "-")) {
        cli_error("cp", "`-` (a tar stream on stdin or stdout) is not supported");
        return cli_usage_error("cp");
    }
    if (!!src_path == !!dest_path) {
        cli_error("cp", src_path ? "copying between containers is not supported"
                                 : "must specify at least one container source");
        return cli_usage_error("cp");
    }
    const char *ctr = src_path ? from : to;
    struct imgfs_err err = {0};
    struct ctr_state s;
    int found = cli_find_container(cli, "cp", ctr, &s);
    if (found != 0)
        return found;
    unsigned flags = 0;
    int r = src_path ? ctr_copy(cli->root, cli->run_dir, &s, src_path, dest, false, flags, &err)
                     : ctr_copy(cli->root, cli->run_dir, &s, src, dest_path, true, flags, &err);
    ctr_state_free(&s);
    if (r < 0) {
        cli_report("cp", &err);
        return 1;
    }
    return 0;
}
