/* imgfs rm — remove containers: their state and writable layer. */
#include "../runner/runner.h"
#include "cli.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

static const char usage[] = "Usage: imgfs rm [OPTIONS] CONTAINER...\n\n"
                            "Remove stopped containers (state, log and writable layer).\n\n"
                            "Options:\n"
                            "  -f, --force      kill running containers first\n"
                            "  -v, --volumes    remove the container's anonymous volumes too\n"
                            "                   (named ones are kept, as Docker)\n"
                            "  -h, --help       show this help\n";

struct rm_options {
    bool force, volumes;
};

static int remove_one(const char *run_dir, struct ctr_state *s, void *ctx, struct imgfs_err *err)
{
    const struct rm_options *o = ctx;
    char **anonymous = o->volumes ? ctr_anonymous_volumes(run_dir, s->id) : NULL;
    int r = ctr_remove(run_dir, s, o->force, err);
    if (r == 0)
        ctr_anonymous_volumes_remove(run_dir, anonymous);
    ctr_strv_free(anonymous);
    return r;
}

int cmd_rm(int argc, char **argv, struct cli *cli)
{
    static const struct option longopts[] = {{"force", no_argument, NULL, 'f'},
                                             {"volumes", no_argument, NULL, 'v'},
                                             {"help", no_argument, NULL, 'h'},
                                             {0}};
    struct rm_options o = {0};
    int c;
    while ((c = cli_getopt(argc, argv, "fvh", longopts)) != -1) {
        switch (c) {
        case 'f':
            o.force = true;
            break;
        case 'v':
            o.volumes = true;
            break;
        case 'h':
            fputs(usage, stdout);
            return 0;
        default:
            return cli_usage_error("rm");
        }
    }
    if (optind >= argc) {
        return cli_wrong_args("rm", "requires at least 1 argument");
    }
    return cli_each_container(cli, "rm", o.force, optind, argc, argv, remove_one, &o);
}
