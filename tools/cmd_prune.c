/* imgfs container prune / imgfs image prune — Docker's cleanup verbs. */
#include "../fs/image.h"
#include "../fs/reference.h"
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
    "Usage: imgfs image prune [-a] [-f]\n\n"
    "Free the images no name refers to (Docker's dangling images: in imgfs an untagged image\n"
    "is content no name reaches, which is what `imgfs gc` frees). With -a, first remove the\n"
    "names of every image no container (in any state) was made from, as Docker's -a.\n\n"
    "Options:\n"
    "  -a, --all     also remove the images no container uses, not just dangling ones\n"
    "  -f, --force   do not ask for confirmation\n"
    "  -h, --help    show this help\n";

static uint64_t tree_bytes;
static int add_size(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)path, (void)ftw;
    if (type == FTW_F)
        tree_bytes += (uint64_t)st->st_size;
    return 0;
}

/* -f/--force, -h and, where `all` is not NULL, -a/--all; returns -1 to stop with *rc */
static int prune_options(int argc, char **argv, const char *verb, const char *usage, bool *force,
                         bool *all, int *rc)
{
    static const struct option with_all[] = {{"force", no_argument, NULL, 'f'},
                                             {"help", no_argument, NULL, 'h'},
                                             {"all", no_argument, NULL, 'a'},
                                             {0}};
    static const struct option without_all[] = {
        {"force", no_argument, NULL, 'f'}, {"help", no_argument, NULL, 'h'}, {0}};
    int c;
    while ((c = cli_getopt(argc, argv, all ? "fha" : "fh", all ? with_all : without_all)) != -1) {
        if (c == 'f') {
            *force = true;
            continue;
        }
        if (c == 'a' && all) {
            *all = true;
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
    if (prune_options(argc, argv, "container prune", container_usage, &force, NULL, &rc) < 0)
        return rc;
    if (!force && !cli_prune_confirm("This will remove all stopped containers."))
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

struct unused_images {
    const struct ctr_state *ctrs; /* every container (ctr_list), read once */
    size_t n_ctrs;
    struct digest *manifest; /* per name: its image */
    bool *used;              /* per name: a container was made from its image */
    char **names;
    size_t n;
};

static int collect_names(void *ctx, const struct store_image_entry *e)
{
    struct unused_images *u = ctx;
    const char *user = cli_container_in(u->ctrs, u->n_ctrs, &e->manifest);
    u->manifest = xrealloc(u->manifest, (u->n + 1) * sizeof *u->manifest);
    u->used = xrealloc(u->used, (u->n + 1) * sizeof *u->used);
    u->names = xrealloc(u->names, (u->n + 1) * sizeof *u->names);
    u->manifest[u->n] = e->manifest;
    u->used[u->n] = user != NULL;
    u->names[u->n++] = xstrdup(e->name);
    return 0;
}

/* Docker's order of an image's references: by their full names ("docker.io/library/bb:2") */
static char *full_name(const char *name)
{
    struct ref ref;
    struct imgfs_err ignored = {0};
    if (ref_parse(name, &ref, &ignored) < 0)
        return xstrdup(name);
    char *full = ref_full_name(&ref);
    ref_free(&ref);
    return full;
}

/* Docker's prune -a untags an image's references one by one, in that order, and the last one of
 * an image a container uses is refused (a conflict it skips): that name stays. keep[i] marks it. */
static void mark_kept(const struct unused_images *u, bool *keep)
{
    for (size_t i = 0; i < u->n; i++) {
        bool first = u->used[i];
        for (size_t k = 0; k < i && first; k++)
            first = !digest_equal(&u->manifest[k], &u->manifest[i]);
        if (!first)
            continue;
        size_t last = i;
        cleanup_free char *best = full_name(u->names[i]);
        for (size_t k = i + 1; k < u->n; k++) {
            if (!digest_equal(&u->manifest[k], &u->manifest[i]))
                continue;
            cleanup_free char *f = full_name(u->names[k]);
            if (strcmp(f, best) > 0) {
                free(best);
                best = get_and_reset(&f);
                last = k;
            }
        }
        keep[last] = true;
    }
}

/* -a: remove the names of the images no container uses, printing Docker's "untagged: NAME" lines
 * and "deleted: IMAGE-ID" once per image (its last name); gc then frees their content. */
static int untag_unused(struct store *s, const struct cli *cli, bool *any, struct imgfs_err *err)
{
    struct ctr_state *ctrs = NULL;
    size_t n_ctrs = 0;
    if (ctr_list(cli->run_dir, &ctrs, &n_ctrs, err) < 0)
        return -1;
    struct unused_images u = {.ctrs = ctrs, .n_ctrs = n_ctrs};
    struct store_read *r;
    if (store_read_begin(s, &r, err) < 0) {
        ctr_state_list_free(ctrs, n_ctrs);
        return -1;
    }
    int ret =
        store_image_foreach(r, collect_names, &u) < 0 ? err_set(err, EIO, "listing the images") : 0;
    struct digest *config = xcalloc(u.n + 1, sizeof *config);
    for (size_t i = 0; i < u.n && ret == 0; i++)
        ret = image_config_digest(r, &u.manifest[i], &config[i], err);
    store_read_end(r);
    bool *keep = xcalloc(u.n + 1, sizeof *keep);
    mark_kept(&u, keep);
    size_t untag = 0;
    for (size_t i = 0; i < u.n; i++)
        untag += !keep[i];
    struct store_batch *b = NULL;
    if (ret == 0 && untag && store_batch_begin(s, &b, err) == 0) {
        for (size_t i = 0; i < u.n; i++)
            if (!keep[i])
                store_batch_untag(b, u.names[i]);
        ret = store_batch_commit(b, err);
    } else if (ret == 0 && untag)
        ret = -1;
    /* names come in name order, so an image's names are not together: an unused image is
     * deleted with the last of its names */
    for (size_t i = 0; i < u.n && ret == 0; i++) {
        if (keep[i])
            continue;
        cleanup_free char *line = xasprintf("untagged: %s", u.names[i]);
        cli_prune_deleted(any, "Deleted Images:", line);
        bool later = u.used[i];
        for (size_t k = i + 1; k < u.n; k++)
            later = later || digest_equal(&u.manifest[k], &u.manifest[i]);
        if (!later) {
            char id[DIGEST_STR_SIZE];
            digest_str(&config[i], id);
            printf("deleted: %s\n", id);
        }
    }
    for (size_t i = 0; i < u.n; i++)
        free(u.names[i]);
    free(u.names);
    free(u.manifest);
    free(u.used);
    free(keep);
    free(config);
    ctr_state_list_free(ctrs, n_ctrs);
    return ret;
}

int cmd_image_prune(int argc, char **argv, struct cli *cli)
{
    bool force = false, all = false;
    int rc = 0;
    if (prune_options(argc, argv, "image prune", image_usage, &force, &all, &rc) < 0)
        return rc;
    if (!force && !cli_prune_confirm(all ? "This will remove all images without at least one "
                                           "container associated to them."
                                         : "This will remove all dangling images."))
        return 0;
    struct store *s = cli_store_open(cli, "image prune", false);
    if (!s)
        return 1;
    struct imgfs_err err = {0};
    struct store_gc_stats st;
    bool any = false;
    int r = all ? untag_unused(s, cli, &any, &err) : 0;
    if (r == 0)
        r = store_gc(s, &st, &err);
    store_close(s);
    if (r < 0) {
        cli_report("image prune", &err);
        return 1;
    }
    cli_prune_total(any, st.bytes_freed);
    return 0;
}
