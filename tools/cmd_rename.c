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
    int hrc = cli_help_only(argc, argv, "rename", usage, false);
    if (hrc != -1)
        return hrc;
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
