/* imgfs top — the processes of a container, as docker top shows them: the host's ps, its rows
 * kept for the container's processes (those in its pid namespace). */
#include "../runner/runner.h"
#include "cli.h"

#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

static const char usage[] =
    "Usage: imgfs top CONTAINER [ps OPTIONS]\n\n"
    "Display the running processes of a container: the host's ps (default options -ef), only\n"
    "the rows of the container's processes (host pids, as in Docker).\n\n"
    "Options:\n"
    "  -h, --help   show this help\n";

static bool has_pid(const pid_t *pids, size_t n, long pid)
{
    for (size_t i = 0; i < n; i++)
        if (pids[i] == pid)
            return true;
    return false;
}

int cmd_top(int argc, char **argv, struct cli *cli)
{
    /* "+": the first non-option is the container; what follows it is ps's */
    int hrc = cli_help_only(argc, argv, "top", usage, true);
    if (hrc != -1)
        return hrc;
    if (optind >= argc)
        return cli_wrong_args("top", "requires at least 1 argument");
    argc -= optind - 1;
    argv += optind - 1;
    struct imgfs_err err = {0};
    struct ctr_state s;
    int found = cli_find_container(cli, "top", argv[1], &s);
    if (found != 0)
        return found;
    pid_t *pids;
    size_t n;
    int r = ctr_pids(cli->run_dir, &s, &pids, &n, &err);
    ctr_state_free(&s);
    if (r < 0) {
        cli_report("top", &err);
        return 1;
    }
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) < 0) {
        free(pids);
        cli_error("top", "pipe: %s", strerror(errno));
        return 1;
    }
    pid_t child = fork();
    if (child == 0) {
        dup2(fds[1], 1);
        char **args = xcalloc((size_t)argc + 2, sizeof *args);
        args[0] = "ps";
        if (argc == 2)
            args[1] = "-ef";
        else
            for (int i = 2; i < argc; i++)
                args[i - 1] = argv[i];
        execvp("ps", args);
        fprintf(stderr, "imgfs top: running ps: %s\n", strerror(errno));
        _exit(127);
    }
    close(fds[1]);
    FILE *in = child > 0 ? fdopen(fds[0], "r") : NULL;
    int rc = 0, pid_col = -1;
    char *line = NULL;
    size_t cap = 0;
    for (int row = 0; in && getline(&line, &cap, in) >= 0; row++) {
        char copy[4096];
        snprintf(copy, sizeof copy, "%s", line);
        int col = 0;
        long value = -1;
        for (char *save, *f = strtok_r(copy, " \t\n", &save); f;
             f = strtok_r(NULL, " \t\n", &save), col++) {
            if (row == 0 && !strcmp(f, "PID"))
                pid_col = col;
            if (row > 0 && col == pid_col)
                value = strtol(f, NULL, 10);
        }
        if (row == 0 && pid_col < 0) {
            cli_error("top", "Couldn't find PID field in ps output");
            rc = 1;
            break;
        }
        if (row == 0 || has_pid(pids, n, value))
            fputs(line, stdout);
    }
    free(line);
    if (in)
        fclose(in);
    else
        close(fds[0]);
    int status = 0;
    if (child > 0)
        waitpid(child, &status, 0);
    if (child < 0 || !WIFEXITED(status) || WEXITSTATUS(status))
        rc = 1;
    free(pids);
    return rc;
}
