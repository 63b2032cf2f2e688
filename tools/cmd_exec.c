/* imgfs exec — run a command in a running container. */
#include "../runner/runner.h"
#include "cli.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

static const char usage[] =
    "Usage: imgfs exec [OPTIONS] CONTAINER COMMAND [ARG...]\n\n"
    "Run a command in a running container: its namespaces, cgroups, capabilities and seccomp\n"
    "filter.\n\n"
    "Options:\n"
    "  -i, --interactive        keep stdin open\n"
    "  -t, --tty                allocate a pseudo-terminal\n"
    "  -e, --env KEY[=VALUE]    set an environment variable\n"
    "  -w, --workdir DIR        working directory inside the container\n"
    "  -u, --user USER[:GROUP]  user to run as\n"
    "  -h, --help               show this help\n";

int cmd_exec(int argc, char **argv, struct cli *cli)
{
    static const struct option longopts[] = {
        {"interactive", no_argument, NULL, 'i'},
        {"tty", no_argument, NULL, 't'},
        {"env", required_argument, NULL, 'e'},
        {"workdir", required_argument, NULL, 'w'},
        {"user", required_argument, NULL, 'u'},
        {"help", no_argument, NULL, 'h'},
        {0},
    };
    struct ctr_exec_spec e = {0};
    char **env = xcalloc(1, sizeof *env);
    size_t n_env = 0;
    int c, rc = EXIT_IMGFS_FAILED;
    while ((c = cli_getopt(argc, argv, "+ite:w:u:h", longopts)) != -1) {
        switch (c) {
        case 'i':
            e.interactive = true;
            break;
        case 't':
            e.tty = true;
            break;
        case 'e':
            env = xrealloc(env, (n_env + 2) * sizeof *env);
            env[n_env++] = optarg;
            env[n_env] = NULL;
            break;
        case 'w':
            e.workdir = optarg;
            break;
        case 'u':
            e.user = optarg;
            break;
        case 'h':
            fputs(usage, stdout);
            free(env);
            return 0;
        default:
            free(env);
            return cli_usage_error("exec");
        }
    }
    if (optind + 2 > argc) {
        free(env);
        return cli_wrong_args("exec", "requires at least 2 arguments");
    }
    e.env = env;
    e.argv = argv + optind + 1;
    struct imgfs_err err = {0};
    struct ctr_state s;
    int found = cli_find_container(cli, "exec", argv[optind], &s);
    if (found != 0) {
        free(env);
        return found;
    }
    int status = 0;
    if (ctr_exec(cli->run_dir, &s, &e, &status, &err) < 0) {
        cli_report("exec", &err);
        if (err.code == ESRCH) /* not running: Docker's daemon says so with 1 */
            rc = 1;
    } else
        rc = status;
    ctr_state_free(&s);
    free(env);
    /* We joined the container's pid namespace: a thread made now (LeakSanitizer's exit-time
     * tracer in the ASan build) would land inside it and never find us. Nothing is left to do. */
    fflush(stdout);
    fflush(stderr);
    _exit(rc);
}
