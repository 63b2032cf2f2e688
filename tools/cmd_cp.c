/* imgfs cp — copy files between a container (running, created or exited) and the host (docker
 * cp). */
#include "../runner/runner.h"
#include "cli.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

static const char usage[] =
    "Usage: imgfs cp [OPTIONS] CONTAINER:SRC_PATH DEST_PATH|-\n"
    "       imgfs cp [OPTIONS] SRC_PATH|- CONTAINER:DEST_PATH\n\n"
    "Copy files or directories between a container and the host, as docker cp: into DEST_PATH\n"
    "when it is a directory, else as DEST_PATH; SRC_PATH ending in /. copies a directory's\n"
    "contents. The container may be running, created or exited (then its image and kept\n"
    "writable layer, with its volumes, are what is read and written). Paths in the container\n"
    "are resolved inside its root (a symlink never leads out of it; links in a copied tree are\n"
    "copied as links). `-` as DEST_PATH writes a tar stream of SRC_PATH on stdout; `-` as\n"
    "SRC_PATH extracts a tar stream from stdin into the directory DEST_PATH (owners as in the\n"
    "stream). As Docker's: copies into a container keep their owners and times; copies out of\n"
    "it keep their times and belong to the user running imgfs unless -a. Sockets are not\n"
    "copied.\n\n"
    "Options:\n"
    "  -a, --archive       copying out of the container: keep owners (uid/gid) too\n"
    "  -L, --follow-link   follow a symlink that SRC_PATH itself is\n"
    "  -q, --quiet         (accepted; imgfs prints no progress)\n"
    "  -h, --help          show this help\n";

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
    static const struct option longopts[] = {{"archive", no_argument, NULL, 'a'},
                                             {"follow-link", no_argument, NULL, 'L'},
                                             {"quiet", no_argument, NULL, 'q'},
                                             {"help", no_argument, NULL, 'h'},
                                             {0}};
    unsigned flags = 0;
    int c;
    while ((c = cli_getopt(argc, argv, "aLqh", longopts)) != -1) {
        if (c == 'h') {
            fputs(usage, stdout);
            return 0;
        }
        if (c == 'a')
            flags |= CTR_COPY_ARCHIVE;
        else if (c == 'L')
            flags |= CTR_COPY_FOLLOW;
        else if (c != 'q')
            return cli_usage_error("cp");
    }
    if (argc - optind != 2)
        return cli_wrong_args("cp", "requires 2 arguments");
    cleanup_free char *from = NULL, *to = NULL;
    const char *src = argv[optind], *dest = argv[optind + 1];
    const char *src_path = container_part(src, &from), *dest_path = container_part(dest, &to);
    if (!strcmp(src, "-") && !strcmp(dest, "-")) {
        cli_error("cp", "invalid destination: `-` is the source already (one side must be a "
                        "container path)");
        return 1;
    }
    /* Docker's words and status: its client refuses these after parsing, as plain errors (1) */
    if (!!src_path == !!dest_path) {
        cli_error("cp", src_path ? "copying between containers is not supported"
                                 : "must specify at least one container source");
        return 1;
    }
    const char *ctr = src_path ? from : to;
    struct imgfs_err err = {0};
    struct ctr_state s;
    int found = cli_find_container(cli, "cp", ctr, &s);
    if (found != 0)
        return found;
    int r = src_path ? ctr_copy(cli->root, cli->run_dir, &s, src_path, dest, false, flags, &err)
                     : ctr_copy(cli->root, cli->run_dir, &s, src, dest_path, true, flags, &err);
    ctr_state_free(&s);
    if (r < 0) {
        cli_report("cp", &err);
        return 1;
    }
    return 0;
}
