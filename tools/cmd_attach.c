/* imgfs attach — not possible with this monitor; the help says why and what to use instead. */
#include "cli.h"

#include <stdio.h>

static const char usage[] =
    "Usage: imgfs attach CONTAINER\n\n"
    "Not supported: a detached container's monitor copies its output into the log file only\n"
    "(it serves no client, docs/runner.md) and its standard input is /dev/null, so there is\n"
    "no stream to attach to. Use `imgfs logs -f CONTAINER` to follow the output and\n"
    "`imgfs exec -it CONTAINER sh` for a shell inside.\n\n"
    "Options:\n"
    "  -h, --help   show this help\n";

int cmd_attach(int argc, char **argv, struct cli *cli)
{
    (void)cli;
    if (cli_wants_help(argc, argv)) {
        fputs(usage, stdout);
        return 0;
    }
    cli_error("attach", "not supported: a detached container's output goes only to its log "
                        "and its stdin is /dev/null; use `imgfs logs -f` or `imgfs exec -it` "
                        "(see 'imgfs attach --help')");
    return EXIT_IMGFS_FAILED;
}
