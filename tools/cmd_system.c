/* imgfs system df — what images and containers take, in Docker's table. */
#include "../fs/store.h"
#include "../runner/runner.h"
#include "cli.h"

#include <ftw.h>
#include <stdio.h>
#include <string.h>

static const char usage[] =
    "Usage: imgfs system df\n\n"
    "Show the space images and containers use. Images: how many distinct images have names,\n"
    "how many of them containers use (ACTIVE), and the bytes the store holds for all of them\n"
    "(chunks are shared between images, so no per-image reclaimable figure exists: RECLAIMABLE\n"
    "is `-`; `imgfs du` has the dedup ratio). Containers: how many, how many run, and the bytes\n"
    "of their writable layers (RECLAIMABLE: those of stopped ones, which `container prune`\n"
    "frees).\n\n"
    "Options:\n"
    "  -h, --help   show this help\n";

struct image_set {
    struct digest *d;
    size_t n;
};

static int add_image(void *ctx, const struct store_image_entry *e)
{
    struct image_set *set = ctx;
    for (size_t i = 0; i < set->n; i++)
        if (digest_equal(&set->d[i], &e->manifest))
            return 0;
    set->d = xrealloc(set->d, (set->n + 1) * sizeof *set->d);
    set->d[set->n++] = e->manifest;
    return 0;
}

static uint64_t tree_bytes;
static int add_size(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)path, (void)ftw;
    if (type == FTW_F)
        tree_bytes += (uint64_t)st->st_size;
    return 0;
}

static int df(struct cli *cli)
{
    struct imgfs_err err = {0};
    struct ctr_state *list;
    size_t n;
    if (ctr_list(cli->run_dir, &list, &n, &err) < 0) {
        cli_report("system df", &err);
        return 1;
    }
    struct image_set set = {0};
    struct store_usage u = {0};
    struct store *s = NULL;
    if (store_open(cli->root, STORE_READONLY, &s, &err) == 0) {
        struct store_read *r;
        if (store_usage(s, &u, &err) < 0 || store_read_begin(s, &r, &err) < 0) {
            cli_report("system df", &err);
            store_close(s);
            ctr_state_list_free(list, n);
            return 1;
        }
        store_image_foreach(r, add_image, &set);
        store_read_end(r);
        store_close(s);
    } else if (err.code != ENOENT) { /* no store yet: no images */
        cli_report("system df", &err);
        ctr_state_list_free(list, n);
        return 1;
    }
    size_t active_images = 0;
    for (size_t i = 0; i < set.n; i++)
        active_images += cli_container_in(list, n, &set.d[i]) != NULL;
    size_t running = 0;
    uint64_t ctr_bytes = 0, ctr_free = 0;
    for (size_t j = 0; j < n; j++) {
        cleanup_free char *upper = ctr_upper_path(cli->run_dir, list[j].id);
        tree_bytes = 0;
        nftw(upper, add_size, 16, FTW_PHYS);
        ctr_bytes += tree_bytes;
        if (list[j].status == CTR_RUNNING)
            running++;
        else
            ctr_free += tree_bytes;
    }
    char is[32], cs[32], cf[32], pct[48];
    cli_human_size(u.chunk_bytes, is, sizeof is);
    cli_human_size(ctr_bytes, cs, sizeof cs);
    cli_human_size(ctr_free, cf, sizeof cf);
    snprintf(pct, sizeof pct, "%s (%d%%)", cf, ctr_bytes ? (int)(ctr_free * 100 / ctr_bytes) : 0);
    printf("%-16s%-10s%-10s%-10s%s\n", "TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE");
    printf("%-16s%-10zu%-10zu%-10s%s\n", "Images", set.n, active_images, is, "-");
    printf("%-16s%-10zu%-10zu%-10s%s\n", "Containers", n, running, cs, pct);
    /* volumes: active = used by a container (running or not), reclaimable = the others' bytes */
    struct ctr_volume *vols = NULL;
    size_t n_vols = 0, active_vols = 0;
    uint64_t vol_bytes = 0, vol_free = 0;
    if (ctr_volume_list(cli->root, &vols, &n_vols, &err) < 0) {
        cli_report("system df", &err);
        err_clear(&err);
    }
    for (size_t i = 0; i < n_vols; i++) {
        uint64_t b = ctr_volume_size(&vols[i]);
        char **users = ctr_volume_users(cli->run_dir, vols[i].mountpoint);
        vol_bytes += b;
        if (users)
            active_vols++;
        else
            vol_free += b;
        ctr_strv_free(users);
    }
    ctr_volume_list_free(vols, n_vols);
    char vs[32], vf[32], vpct[48];
    cli_human_size(vol_bytes, vs, sizeof vs);
    cli_human_size(vol_free, vf, sizeof vf);
    snprintf(vpct, sizeof vpct, "%s (%d%%)", vf, vol_bytes ? (int)(vol_free * 100 / vol_bytes) : 0);
    printf("%-16s%-10zu%-10zu%-10s%s\n", "Local Volumes", n_vols, active_vols, vs, vpct);
    free(set.d);
    ctr_state_list_free(list, n);
    return 0;
}

int cmd_system(int argc, char **argv, struct cli *cli)
{
    if (argc < 2 || cli_wants_help(argc, argv)) {
        fputs(usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? EXIT_IMGFS_FAILED : 0;
    }
    if (strcmp(argv[1], "df") || argc > 2) {
        cli_error("system", "unknown command `%s` (known: df)", argv[argc > 2 ? 2 : 1]);
        return cli_usage_error("system");
    }
    return df(cli);
}
