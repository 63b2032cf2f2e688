/* imgfs container prune / imgfs image prune — Docker's cleanup verbs. */
#include "../fs/store.h"
#include "../runner/runner.h"
#include "cli.h"

#include <ftw.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

static const char container_usage[] =
    "Usage: imgfs container prune [-f]\n\n"
    "Remove all stopped containers (and their writable layers).\n\n"
    "Options:\n"
    "  -f, --force   do not ask for confirmation\n"
    "  -h, --help    show this help\n";

static const char image_usage[] =
    "Usage: imgfs image prune [-f]\n\n"
    "Free the images no name refers to (Docker's dangling images: in imgfs an untagged image\n"
    "is content no name reaches, which is what `imgfs gc` frees). `-a` (also images no\n"
    "container uses) is not supported yet: remove such names with `imgfs rmi`.\n\n"
    "Options:\n"
    "  -f, --force   do not ask for confirmation\n"
    "  -h, --help    show this help\n";

static bool confirm(const char *warning)
{
    fprintf(stderr, "WARNING! %s\nAre you sure you want to continue? [y/N] ", warning);
    char line[64];
    if (!fgets(line, sizeof line, stdin))
        return false;
    return !strcmp(line, "y\n") || !strcmp(line, "Y\n") || !strcmp(line, "yes\n") ||
           !strcmp(line, "y") || !strcmp(line, "yes");
}

static uint64_t tree_bytes;
static int add_size(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)path, (void)ftw;
    if (type == FTW_F)
        tree_bytes += (uint64_t)st->st_size;
    return 0;
}

/* -f/--force and -h; returns -1 to stop with *rc */
static int prune_options(int argc, char **argv, const char *verb, const char *usage, bool *force,
                         int *rc)
{
    static const struct option longopts[] = {
        {"force", no_argument, NULL, 'f'}, {"help", no_argument, NULL, 'h'}, {0}};
    int c;
    while ((c = cli_getopt(argc, argv, "fh", longopts)) != -1) {
        if (c == 'f') {
            *force = true;
            continue;
        }
        if (c == 'h') {
            fputs(usage, stdout);
            *rc = 0;
        } else {
            *rc = cli_usage_error(verb);
        }
        return -1;
    }
    if (optind != argc) {
        *rc = cli_wrong_args(verb, "accepts no arguments");
        return -1;
    }
    return 0;
}

int cmd_container_prune(int argc, char **argv, struct cli *cli)
{
    bool force = false;
    int rc = 0;
    if (prune_options(argc, argv, "container prune", container_usage, &force, &rc) < 0)
        return rc;
    if (!force && !confirm("This will remove all stopped containers."))
        return 0;
    struct imgfs_err err = {0};
    struct ctr_state *list;
    size_t n;
    if (ctr_list(cli->run_dir, &list, &n, &err) < 0) {
        cli_report("container prune", &err);
        return EXIT_IMGFS_FAILED;
    }
    uint64_t total = 0;
    bool any = false;
    for (size_t i = 0; i < n; i++) {
        if (list[i].status == CTR_RUNNING || list[i].status == CTR_RESTARTING)
            continue;
        cleanup_free char *upper = ctr_upper_path(cli->run_dir, list[i].id);
        tree_bytes = 0;
        nftw(upper, add_size, 16, FTW_PHYS);
        if (ctr_remove(cli->run_dir, &list[i], false, &err) < 0) {
            cli_report("container prune", &err);
            rc = 1;
            continue;
        }
        cli_prune_deleted(&any, "Deleted Containers:", list[i].id);
        total += tree_bytes;
    }
    ctr_state_list_free(list, n);
    cli_prune_total(any, total);
    return rc;
}

int cmd_image_prune(int argc, char **argv, struct cli *cli)
{
    bool force = false;
    int rc = 0;
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "-a") || !strcmp(argv[i], "--all")) {
            cli_error("image prune",
                      "%s is not supported yet (remove the names with imgfs rmi, "
                      "then imgfs image prune)",
                      argv[i]);
            return cli_usage_error("image prune");
        }
    if (prune_options(argc, argv, "image prune", image_usage, &force, &rc) < 0)
        return rc;
    if (!force && !confirm("This will remove all dangling images."))
        return 0;
    struct store *s = cli_store_open(cli, "image prune", false);
    if (!s)
        return 1;
    struct imgfs_err err = {0};
    struct store_gc_stats st;
    int r = store_gc(s, &st, &err);
    store_close(s);
    if (r < 0) {
        cli_report("image prune", &err);
        return 1;
    }
    cli_prune_total(false, st.bytes_freed);
    return 0;
}
