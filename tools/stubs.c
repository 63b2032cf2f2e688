/* TEMPORARY while the verbs are being written in parallel: weak stand-ins that a real cmd_*.c
 * overrides. Must be deleted before the session ends. */
#include "cli.h"

#include <stdio.h>

#define X(name, help)                                                                              \
    __attribute__((weak)) int cmd_##name(int argc, char **argv, struct cli *cli)                   \
    {                                                                                              \
        (void)argc, (void)argv, (void)cli;                                                         \
        fprintf(stderr, "imgfs %s: not written yet\n", #name);                                     \
        return EXIT_IMGFS_FAILED;                                                                  \
    }
IMGFS_VERBS(X)
#undef X
