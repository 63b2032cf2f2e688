/* imgfs wait — block until containers stop, then print their exit codes (as docker wait). */
#include "../runner/runner.h"
#include "cli.h"

#include <getopt.h>
#include <stdio.h>

static const char usage[] =
    "Usage: imgfs wait CONTAINER [CONTAINER...]\n\n"
    "Block until one or more containers stop, then print their exit codes, one a line.\n"
    "A created container is waited for until it has been started and has ended.\n"
    "A container started with --rm is gone once it ends: its exit code cannot be read then\n"
    "(an error says so; Docker's daemon can keep it for its waiters, a daemonless monitor not).\n\n"
    "Options:\n"
    "  -h, --help   show this help\n";

int cmd_wait(int argc, char **argv, struct cli *cli)
{
    int hrc = cli_help_only(argc, argv, "wait", usage, false);
    if (hrc != -1)
        return hrc;
    if (optind >= argc) {
        return cli_wrong_args("wait", "requires at least 1 argument");
    }
    int rc = 0;
    for (int i = optind; i < argc; i++) {
        struct imgfs_err err = {0};
        struct ctr_state s;
        if (ctr_find(cli->run_dir, argv[i], &s, &err) < 0) {
            cli_report("wait", &err);
            rc = 1;
            continue;
        }
        char id[65];
        snprintf(id, sizeof id, "%s", s.id);
        ctr_state_free(&s);
        if (ctr_wait(cli->run_dir, id, &err) < 0 || ctr_find(cli->run_dir, id, &s, &err) < 0) {
            if (err.code == ENOENT)
                cli_error("wait",
                          "container %.12s was removed when it ended (--rm): its exit "
                          "code is gone",
                          id);
            else
                cli_report("wait", &err);
            rc = 1;
            continue;
        }
        printf("%d\n", s.status == CTR_EXITED ? s.exit_code : -1);
        fflush(stdout);
        ctr_state_free(&s);
    }
    return rc;
}
