/* imgfs rename — give a container a new name (claimed atomically, as run --name claims one). */
#include "../runner/runner.h"
#include "cli.h"

#include <getopt.h>
#include <stdio.h>

static const char usage[] = "Usage: imgfs rename CONTAINER NEW_NAME\n\n"
                            "Rename a container (running or not).\n\n"
                            "Options:\n"
                            "  -h, --help   show this help\n";

int cmd_rename(int argc, char **argv, struct cli *cli)
{
    static const struct option longopts[] = {{"help", no_argument, NULL, 'h'}, {0}};
    int c;
    while ((c = cli_getopt(argc, argv, "h", longopts)) != -1) {
        if (c == 'h') {
            fputs(usage, stdout);
            return 0;
        }
        return cli_usage_error("rename");
    }
    if (argc - optind != 2) {
        return cli_wrong_args("rename", "requires 2 arguments");
    }
    struct imgfs_err err = {0};
    struct ctr_state s;
    int found = cli_find_container(cli, "rename", argv[optind], &s);
    if (found != 0)
        return found;
    int r = ctr_rename(cli->run_dir, &s, argv[optind + 1], &err);
    ctr_state_free(&s);
    if (r < 0) {
        cli_report("rename", &err);
        return err.code == EINVAL || err.code == EEXIST ? 1 : EXIT_IMGFS_FAILED;
    }
    return 0;
}
