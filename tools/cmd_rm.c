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

int cmd_rm(int argc, char **argv, struct cli *cli)
{
    static const struct option longopts[] = {
        {"force", no_argument, NULL, 'f'}, {"help", no_argument, NULL, 'h'}, {0}};
    bool force = false;
    int c;
    while ((c = getopt_long(argc, argv, "fh", longopts, NULL)) != -1) {
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
    int rc = 0;
    for (int i = optind; i < argc; i++) {
        struct imgfs_err err = {0};
        struct ctr_state s;
        if (ctr_find(cli->run_dir, argv[i], &s, &err) < 0) {
            cli_report("rm", &err);
            rc = 1;
            continue;
        }
        if (ctr_remove(cli->run_dir, &s, force, &err) < 0) {
            cli_report("rm", &err);
            rc = 1;
        } else {
            printf("%s\n", argv[i]);
        }
        ctr_state_free(&s);
    }
    return rc;
}
