/* imgfs optimize — record a start-up (docs/lazy.md): which files CMD reads, in order, from IMAGE.
 * It is `imgfs run --rm --network none --record-trace IMAGE CMD...` (tools/cmd_run.c): the image
 * mounted privately with a trace, CMD run in a container on it, the list kept with the image;
 * `imgfs push` then writes those files first in their layers, before the eStargz prefetch
 * landmark, and a lazy mount fetches them in the background while the container starts. */
#include "cli.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

static const char usage[] =
    "Usage: imgfs optimize IMAGE -- COMMAND [ARG...]\n\n"
    "Run COMMAND in a container of IMAGE (no network) and record which files its start-up reads,\n"
    "in the order of their first read. The list is kept with the image: `imgfs push` writes those\n"
    "files first in their layers, before the eStargz prefetch landmark, and a lazy mount of the\n"
    "pushed image fetches them in the background, in large requests, as the container starts.\n"
    "The same as `imgfs run --rm --network none --record-trace IMAGE COMMAND [ARG...]`.\n";

int cmd_optimize(int argc, char **argv, struct cli *cli)
{
    if (argc >= 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
        fputs(usage, stdout);
        return 0;
    }
    if (argc < 4 || strcmp(argv[2], "--")) {
        return cli_wrong_args("optimize", "requires IMAGE -- COMMAND [ARG...]");
    }
    size_t n = (size_t)argc - 3;
    char **args = xcalloc(n + 8, sizeof *args);
    size_t k = 0;
    args[k++] = "run";
    args[k++] = "--rm";
    args[k++] = "--network";
    args[k++] = "none";
    args[k++] = "--record-trace";
    args[k++] = "--"; /* IMAGE and COMMAND's options are not run's */
    args[k++] = argv[1];
    for (size_t i = 0; i < n; i++)
        args[k++] = argv[3 + i];
    optind = 1;
    int rc = cmd_run((int)k, args, cli);
    free(args);
    /* the reads are kept whatever the command's status (run notes a failure): optimize itself
     * failed only when run did */
    return rc == EXIT_IMGFS_FAILED ? rc : 0;
}
