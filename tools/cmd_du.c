#include "../fs/lazy.h"
#include "../fs/store.h"
#include "../fs/view.h"
#include "cli.h"

#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

static const char usage[] =
    "Usage: imgfs du [--json]\n\n"
    "Show the store's logical bytes (the files of every image, each image counted once),\n"
    "stored bytes (distinct chunks) and the dedup ratio. When images were pulled lazily, also\n"
    "each image's bytes present in the store and still remote (fetched on first read).\n";

struct du {
    struct store_read *r;
    struct digest *seen;
    size_t n_seen;
    uint64_t logical, files;
    json_t *images;
    bool json, lazy;
    struct store *s;
};

static int du_one(void *ctx, const struct store_image_entry *e)
{
    struct du *d = ctx;
    uint64_t bytes = 0, files = 0;
    struct view_header h;
    if (cli_view_header(d->r, &e->manifest, &h)) {
        bytes = h.total_size;
        files = h.n_inodes;
    }
    struct lazy_usage lu = {0};
    struct imgfs_err ignored = {0};
    bool have_lazy = d->lazy && lazy_image_usage(d->s, &e->manifest, &lu, &ignored) == 0;
    if (d->json) {
        json_t *j = json_pack("{s:s, s:I, s:I}", "Name", e->name, "Logical", (json_int_t)bytes,
                              "Files", (json_int_t)files);
        if (have_lazy) {
            json_object_set_new(j, "Present", json_integer((json_int_t)lu.present_bytes));
            json_object_set_new(j, "Remote", json_integer((json_int_t)lu.remote_bytes));
        }
        json_array_append_new(d->images, j);
    } else {
        char human[32];
        cli_human_size(bytes, human, sizeof human);
        printf("%-40s %10llu %12s", e->name, (unsigned long long)files, human);
        if (have_lazy) {
            char p[32], r[32];
            cli_human_size(lu.present_bytes, p, sizeof p);
            cli_human_size(lu.remote_bytes, r, sizeof r);
            printf(" %12s %12s", p, r);
        }
        printf("\n");
    }
    for (size_t i = 0; i < d->n_seen; i++)
        if (digest_equal(&d->seen[i], &e->manifest))
            return 0;
    d->seen = xrealloc(d->seen, (d->n_seen + 1) * sizeof *d->seen);
    d->seen[d->n_seen++] = e->manifest;
    d->logical += bytes;
    d->files += files;
    return 0;
}

int cmd_du(int argc, char **argv, struct cli *cli)
{
    static const struct option opts[] = {
        {"json", no_argument, 0, 'j'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    struct du d = {0};
    int c;
    while ((c = cli_getopt(argc, argv, "h", opts)) != -1) {
        switch (c) {
        case 'j': d.json = true; break;
        case 'h': fputs(usage, stdout); return 0;
        default:
            return cli_usage_error("du");
        }
    }
    struct store *s = cli_store_open(cli, "du", true);
    if (!s)
        return 1;
    struct imgfs_err err = {0};
    struct store_usage u;
    if (store_read_begin(s, &d.r, &err) < 0 || store_usage(s, &u, &err) < 0) {
        cli_report("du", &err);
        store_close(s);
        return 1;
    }
    d.s = s;
    d.lazy = store_has_remote(s);
    if (d.json)
        d.images = json_array();
    else if (d.lazy)
        printf("%-40s %10s %12s %12s %12s\n", "IMAGE", "FILES", "LOGICAL", "PRESENT", "REMOTE");
    else
        printf("%-40s %10s %12s\n", "IMAGE", "FILES", "LOGICAL");
    store_image_foreach(d.r, du_one, &d);
    double ratio = u.chunk_bytes ? (double)d.logical / (double)u.chunk_bytes : 1.0;
    if (d.json) {
        json_t *j = json_pack("{s:o, s:I, s:I, s:I, s:f, s:I}", "Images", d.images, "Logical",
                              (json_int_t)d.logical, "Stored", (json_int_t)u.chunk_bytes,
                              "Chunks", (json_int_t)u.chunks, "DedupRatio", ratio, "StoreFile",
                              (json_int_t)u.map_bytes);
        char *out = json_dumps(j, JSON_INDENT(2));
        puts(out);
        free(out);
        json_decref(j);
    } else {
        char l[32], st[32], f[32];
        cli_human_size(d.logical, l, sizeof l);
        cli_human_size(u.chunk_bytes, st, sizeof st);
        cli_human_size(u.map_bytes, f, sizeof f);
        printf("\nLogical:     %llu bytes (%s)\n", (unsigned long long)d.logical, l);
        printf("Stored:      %llu bytes (%s) in %llu chunks\n", (unsigned long long)u.chunk_bytes,
               st, (unsigned long long)u.chunks);
        printf("Dedup ratio: %.2f\n", ratio);
        printf("Store file:  %llu bytes (%s)\n", (unsigned long long)u.map_bytes, f);
    }
    free(d.seen);
    store_read_end(d.r);
    store_close(s);
    return 0;
}
