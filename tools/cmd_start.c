/* imgfs start and imgfs restart — run created or stopped containers again with their stored
 * options (ctr_start, ctr_restart in runner/runner.h). */
#include "../runner/runner.h"
#include "cli.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static const char usage_start[] =
    "Usage: imgfs start [OPTIONS] CONTAINER...\n\n"
    "Start created or stopped containers with the options they were created (or run) with. A\n"
    "stopped container keeps its writable layer and its log. Detached, the name of each one\n"
    "started is printed; a running one is left as it is (and its name printed, as Docker).\n\n"
    "Options:\n"
    "  -a, --attach       stay with the container (one only): its output on ours, our exit\n"
    "                     status is its own\n"
    "  -i, --interactive  with -a: our stdin is its stdin\n"
    "  -h, --help         show this help\n";

static const char usage_restart[] =
    "Usage: imgfs restart [OPTIONS] CONTAINER...\n\n"
    "Stop containers (as imgfs stop) and start them again detached (as imgfs start).\n\n"
    "Options:\n"
    "  -t, --time SECS  seconds to wait for the stop before SIGKILL (default: the\n"
    "                   container's --stop-timeout, else 10)\n"
    "  -h, --help       show this help\n";

int cmd_start(int argc, char **argv, struct cli *cli)
{
    static const struct option longopts[] = {{"attach", no_argument, NULL, 'a'},
                                             {"interactive", no_argument, NULL, 'i'},
                                             {"help", no_argument, NULL, 'h'},
                                             {0}};
    struct ctr_start_options o = {.store_root = cli->root};
    int c;
    while ((c = cli_getopt(argc, argv, "aih", longopts)) != -1) {
        switch (c) {
        case 'a':
            o.attach = true;
            break;
        case 'i':
            o.interactive = true;
            break;
        case 'h':
            fputs(usage_start, stdout);
            return 0;
        default:
            return cli_usage_error("start");
        }
    }
    if (optind >= argc) {
        return cli_wrong_args("start", "requires at least 1 argument");
    }
    if (o.interactive)
        o.attach = true; /* Docker: -i attaches too */
    if (o.attach && argc - optind > 1) {
        cli_error("start", "you cannot start and attach multiple containers at once");
        return 1;
    }
    int rc = 0;
    for (int i = optind; i < argc; i++) {
        struct ctr_state s;
        int found = cli_find_container(cli, "start", argv[i], &s);
        if (found) {
            rc = 1;
            continue;
        }
        struct imgfs_err err = {0};
        if (o.attach && s.tty && o.interactive && !isatty(STDIN_FILENO)) {
            cli_error("start", "the input device is not a TTY");
            ctr_state_free(&s);
            return 1;
        }
        int status = 0;
        if (ctr_start(cli->run_dir, &s, &o, &status, &err) < 0) {
            cli_report("start", &err);
            rc = 1;
        } else if (o.attach && status < 0) {
            cli_error("start",
                      "container %s is running already; imgfs cannot attach to it (see "
                      "`imgfs attach --help`): use logs -f or exec",
                      argv[i]);
            rc = 1;
        } else if (o.attach) {
            rc = status;
        } else {
            printf("%s\n", argv[i]);
            fflush(stdout);
        }
        ctr_state_free(&s);
    }
    if (rc == 1 && !o.attach)
        cli_error("start", "failed to start containers");
    return rc;
}

int cmd_restart(int argc, char **argv, struct cli *cli)
{
    static const struct option longopts[] = {
        {"time", required_argument, NULL, 't'}, {"help", no_argument, NULL, 'h'}, {0}};
    int timeout = -1, c;
    while ((c = cli_getopt(argc, argv, "t:h", longopts)) != -1) {
        switch (c) {
        case 't': {
            char *end;
            long v = strtol(optarg, &end, 10);
            if (*end || end == optarg || v < -1 || v > 86400) {
                cli_error("restart",
                          "invalid argument \"%s\" for \"%s\" flag: strconv.ParseInt: parsing "
                          "\"%s\": invalid syntax",
                          optarg, cli_flag_typed(argv, c), optarg);
                return cli_usage_error("restart");
            }
            timeout = (int)v;
            break;
        }
        case 'h':
            fputs(usage_restart, stdout);
            return 0;
        default:
            return cli_usage_error("restart");
        }
    }
    if (optind >= argc) {
        return cli_wrong_args("restart", "requires at least 1 argument");
    }
    struct ctr_start_options o = {.store_root = cli->root};
    int rc = 0;
    for (int i = optind; i < argc; i++) {
        struct ctr_state s;
        if (cli_find_container(cli, "restart", argv[i], &s)) {
            rc = 1;
            continue;
        }
        struct imgfs_err err = {0};
        if (ctr_restart(cli->run_dir, &s, timeout, &o, &err) < 0) {
            cli_report("restart", &err);
            rc = 1;
        } else {
            printf("%s\n", argv[i]);
            fflush(stdout);
        }
        ctr_state_free(&s);
    }
    return rc;
}
