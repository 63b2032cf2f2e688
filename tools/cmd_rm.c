/* imgfs rm — remove containers: their state and writable layer. */
#include "../runner/runner.h"
#include "cli.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

static const char usage[] = "Usage: imgfs rm [OPTIONS] CONTAINER...\n\n"
                            "Remove stopped containers (state, log and writable layer).\n\n"
                            "Options:\n"
                            "  -f, --force      kill running containers first\n"
                            "  -h, --help       show this help\n";

static int remove_one(const char *run_dir, struct ctr_state *s, void *ctx, struct imgfs_err *err)
{
    return ctr_remove(run_dir, s, *(bool *)ctx, err);
}

int cmd_rm(int argc, char **argv, struct cli *cli)
{
    static const struct option longopts[] = {
        {"force", no_argument, NULL, 'f'}, {"help", no_argument, NULL, 'h'}, {0}};
    bool force = false;
    int c;
    while ((c = cli_getopt(argc, argv, "fh", longopts)) != -1) {
        switch (c) {
        case 'f':
            force = true;
            break;
        case 'h':
            fputs(usage, stdout);
            return 0;
        default:
            fprintf(stderr, "See 'imgfs rm --help'.\n");
            return EXIT_IMGFS_FAILED;
        }
    }
    if (optind >= argc) {
        cli_error("rm", "wants at least one CONTAINER");
        return EXIT_IMGFS_FAILED;
    }
    return cli_each_container(cli, "rm", optind, argc, argv, remove_one, &force);
}
