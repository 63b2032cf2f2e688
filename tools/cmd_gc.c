#include "../fs/store.h"
#include "cli.h"

#include <stdio.h>

static const char usage[] =
    "Usage: imgfs gc\n\n"
    "Free every chunk, layer and document that no image name and no mounted image references.\n"
    "Waits for imports in progress.\n";

int cmd_gc(int argc, char **argv, struct cli *cli)
{
    if (cli_wants_help(argc, argv)) {
        fputs(usage, stdout);
        return 0;
    }
    if (argc != 1) {
        cli_error("gc", "unexpected argument `%s`", argv[1]);
        return 1;
    }
    struct store *s = cli_store_open(cli, "gc", false);
    if (!s)
        return 1;
    struct imgfs_err err = {0};
    struct store_gc_stats st;
    int rc = store_gc(s, &st, &err);
    store_close(s);
    if (rc < 0) {
        cli_report("gc", &err);
        return 1;
    }
    char h[32];
    cli_human_size(st.bytes_freed, h, sizeof h);
    printf("Freed %llu chunks (%s), %llu layers, %llu views, %llu documents\n",
           (unsigned long long)st.chunks_freed, h, (unsigned long long)st.layers_freed,
           (unsigned long long)st.views_freed, (unsigned long long)st.blobs_freed);
    return 0;
}
