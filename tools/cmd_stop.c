/* imgfs stop — SIGTERM, then SIGKILL after a grace period. */
#include "../runner/runner.h"
#include "cli.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

static const char usage[] = "Usage: imgfs stop [OPTIONS] CONTAINER...\n\n"
                            "Stop containers: SIGTERM, then SIGKILL after the grace period.\n\n"
                            "Options:\n"
                            "  -t, --time SECS  seconds to wait before SIGKILL (default: the\n"
                            "                   container's --stop-timeout, else 10)\n"
                            "  -h, --help       show this help\n";

static int stop_one(const char *run_dir, struct ctr_state *s, void *ctx, struct imgfs_err *err)
{
    return ctr_stop(run_dir, s, *(int *)ctx, err);
}

int cmd_stop(int argc, char **argv, struct cli *cli)
{
    static const struct option longopts[] = {
        {"time", required_argument, NULL, 't'}, {"help", no_argument, NULL, 'h'}, {0}};
    int timeout = -1, c; /* -1: the container's --stop-timeout, else 10 */
    while ((c = cli_getopt(argc, argv, "t:h", longopts)) != -1) {
        switch (c) {
        case 't': {
            char *end;
            long v = strtol(optarg, &end, 10);
            if (*end || end == optarg || v < 0 || v > 86400) {
                cli_error("stop", "bad --time `%s`", optarg);
                return EXIT_IMGFS_FAILED;
            }
            timeout = (int)v;
            break;
        }
        case 'h':
            fputs(usage, stdout);
            return 0;
        default:
            return cli_usage_error("stop");
        }
    }
    if (optind >= argc) {
        return cli_wrong_args("stop", "requires at least 1 argument");
    }
    return cli_each_container(cli, "stop", false, optind, argc, argv, stop_one, &timeout);
}
