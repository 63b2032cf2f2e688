/* imgfs diff — a container's changes to its image's files, as docker diff. */
#include "../runner/runner.h"
#include "cli.h"

#include <getopt.h>
#include <stdio.h>

static const char usage[] =
    "Usage: imgfs diff CONTAINER\n\n"
    "List the changes to the files of a container's image, from its writable layer (running or\n"
    "not): A added, C changed (a file written, or a directory with changes below), D deleted.\n"
    "The mount points imgfs makes for /etc/hosts, /etc/hostname, /etc/resolv.conf, /proc, /sys\n"
    "and /dev are not listed (Docker keeps them in a layer of their own).\n\n"
    "Options:\n"
    "  -h, --help   show this help\n";

static int print_line(void *ctx, const char *line)
{
    (void)ctx;
    puts(line);
    return 0;
}

int cmd_diff(int argc, char **argv, struct cli *cli)
{
    int hrc = cli_help_only(argc, argv, "diff", usage, false);
    if (hrc != -1)
        return hrc;
    if (argc - optind != 1)
        return cli_wrong_args("diff", "requires exactly 1 argument");
    struct ctr_state s;
    int found = cli_find_container(cli, "diff", argv[optind], &s);
    if (found != 0)
        return found;
    struct imgfs_err err = {0};
    int rc = ctr_diff(cli->root, cli->run_dir, &s, print_line, NULL, &err);
    ctr_state_free(&s);
    if (rc < 0) {
        cli_report("diff", &err);
        return 1;
    }
    return 0;
}
