/* imgfs kill — send a signal to containers' PID 1 (which passes it to the command). */
#include "../runner/runner.h"
#include "cli.h"

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static const char usage[] = "Usage: imgfs kill [OPTIONS] CONTAINER...\n\n"
                            "Send a signal (default SIGKILL) to running containers.\n\n"
                            "Options:\n"
                            "  -s, --signal SIG  signal name (TERM, SIGHUP...) or number\n"
                            "  -h, --help        show this help\n";

static int parse_signal(const char *s)
{
    char *end;
    long n = strtol(s, &end, 10);
    if (!*end && end != s)
        return n > 0 && n < NSIG ? (int)n : -1;
    if (!strncasecmp(s, "SIG", 3))
        s += 3;
    for (int i = 1; i < NSIG; i++) {
        const char *name = sigabbrev_np(i);
        if (name && !strcasecmp(name, s))
            return i;
    }
    return -1;
}

static int kill_one(const char *run_dir, struct ctr_state *s, void *ctx, struct imgfs_err *err)
{
    return ctr_kill(run_dir, s, *(int *)ctx, err);
}

int cmd_kill(int argc, char **argv, struct cli *cli)
{
    static const struct option longopts[] = {
        {"signal", required_argument, NULL, 's'}, {"help", no_argument, NULL, 'h'}, {0}};
    int sig = SIGKILL, c;
    while ((c = cli_getopt(argc, argv, "s:h", longopts)) != -1) {
        switch (c) {
        case 's':
            if ((sig = parse_signal(optarg)) < 0) {
                /* Docker's daemon refuses it: its words, its status */
                cli_error("kill", "Invalid signal: %s", optarg);
                return 1;
            }
            break;
        case 'h':
            fputs(usage, stdout);
            return 0;
        default:
            return cli_usage_error("kill");
        }
    }
    if (optind >= argc) {
        return cli_wrong_args("kill", "requires at least 1 argument");
    }
    return cli_each_container(cli, "kill", false, optind, argc, argv, kill_one, &sig);
}
