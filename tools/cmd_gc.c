#include "../builder/builder.h"
#include "../fs/store.h"
#include "cli.h"

#include <stdio.h>
#include <string.h>

static const char usage[] =
    "Usage: imgfs gc [--build-cache]\n\n"
    "Free every chunk, layer and document that no image name, no mounted image and no young\n"
    "build cache record references. Waits for imports and builds in progress.\n\n"
    "Options:\n"
    "      --build-cache   drop the whole build cache first (the next builds run every step)\n";

int cmd_gc(int argc, char **argv, struct cli *cli)
{
    if (cli_wants_help(argc, argv)) {
        fputs(usage, stdout);
        return 0;
    }
    bool build_cache = argc == 2 && !strcmp(argv[1], "--build-cache");
    if (argc != 1 && !build_cache) {
        if (argv[1][0] != '-')
            return cli_wrong_args("gc", "accepts no arguments");
        cli_error("gc", "unknown flag: %s", argv[1]);
        return cli_usage_error("gc");
    }
    struct store *s = cli_store_open(cli, "gc", false);
    if (!s)
        return 1;
    /* the step directories of killed builds and the batches of killed removers */
    build_sweep(cli->root);
    struct imgfs_err err = {0};
    struct store_gc_stats st;
    uint64_t dropped = 0;
    int rc = build_cache ? store_cache_drop(s, &dropped, &err) : 0;
    if (rc == 0)
        rc = store_gc(s, &st, &err);
    store_close(s);
    if (rc < 0) {
        cli_report("gc", &err);
        return 1;
    }
    if (build_cache)
        printf("Dropped %llu build cache records\n", (unsigned long long)dropped);
    char h[32];
    cli_human_size(st.bytes_freed, h, sizeof h);
    printf("Freed %llu chunks (%s), %llu layers, %llu views, %llu documents\n",
           (unsigned long long)st.chunks_freed, h, (unsigned long long)st.layers_freed,
           (unsigned long long)st.views_freed, (unsigned long long)st.blobs_freed);
    if (st.traces_freed)
        printf("Removed %llu recorded start-ups of removed images\n",
               (unsigned long long)st.traces_freed);
    return 0;
}
