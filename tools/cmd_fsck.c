#include "../fs/image.h"
#include "../fs/layer.h"
#include "../fs/store.h"
#include "../fs/view.h"
#include "cli.h"

#include <stdio.h>
#include <string.h>

static const char usage[] =
    "Usage: imgfs fsck\n\n"
    "Re-hash every chunk and document, and check every record an image is read through: its\n"
    "manifest and config, each layer table (decoded, every chunk it names present with the\n"
    "right length), and its view (decoded, and the very view its layers make). Exits 1 and\n"
    "names each problem and the image it belongs to when the store is damaged.\n";

struct fsck {
    struct store_read *r;
    uint64_t chunks, blobs, problems, images, layers;
    uint64_t remote; /* absent chunks a lazy pull recorded a registry location for */
    struct digest *layers_seen;
    size_t n_layers_seen;
};

static void problem(struct fsck *f, const char *fmt, const struct digest *d, const char *more)
{
    char s[DIGEST_STR_SIZE];
    digest_str(d, s);
    printf(fmt, s, more ? more : "");
    putchar('\n');
    f->problems++;
}

static int check_chunk(void *ctx, const struct digest *key, const void *data, size_t len)
{
    struct fsck *f = ctx;
    struct digest got;
    digest_of(data, len, &got);
    f->chunks++;
    if (!digest_equal(&got, key))
        problem(f, "corrupt: chunk %s: its content does not match its hash%s", key, NULL);
    return 0;
}

static void check_layer(struct fsck *f, const struct digest *id)
{
    for (size_t i = 0; i < f->n_layers_seen; i++)
        if (digest_equal(&f->layers_seen[i], id))
            return;
    f->layers_seen = xrealloc(f->layers_seen, (f->n_layers_seen + 1) * sizeof *id);
    f->layers_seen[f->n_layers_seen++] = *id;
    f->layers++;
    struct imgfs_err err = {0};
    const void *table;
    size_t len;
    if (store_get(f->r, STORE_LAYER, id, &table, &len, &err) < 0) {
        problem(f, "missing: layer %s%s", id, NULL);
        return;
    }
    struct layer_reader rd;
    struct layer_entry e;
    int rc = layer_reader_init(&rd, table, len, &err);
    while (rc == 0 && (rc = layer_next(&rd, &e, &err)) > 0) {
        rc = 0;
        for (uint32_t k = 0; k < e.n_extents; k++) {
            const void *data;
            size_t n;
            struct store_remote loc;
            char src[1024];
            if (!store_chunk_present(f->r, &e.extents[k].chunk) &&
                store_remote_get(f->r, &e.extents[k].chunk, &loc, src, sizeof src, &err) == 0) {
                /* not here yet, but fetchable: a lazily pulled image */
                f->remote++;
                if (loc.size != e.extents[k].length)
                    problem(f, "corrupt: remote record of chunk %s has the wrong length for file `%s`",
                            &e.extents[k].chunk, e.path);
            } else if (store_chunk_get(f->r, &e.extents[k].chunk, false, &data, &n, &err) < 0) {
                char where[4200];
                snprintf(where, sizeof where, " (file `%s` of a layer)", e.path);
                problem(f, "missing: chunk %s%s", &e.extents[k].chunk, where);
            } else if (n != e.extents[k].length) {
                problem(f, "corrupt: chunk %s has the wrong length for file `%s`",
                        &e.extents[k].chunk, e.path);
            }
        }
    }
    if (rc < 0)
        problem(f, "corrupt: layer %s: %s", id, err.msg);
    layer_reader_free(&rd);
}

/* Documents (manifests, configs) are content-addressed like chunks. */
static int check_blob(void *ctx, const struct digest *key, const void *data, size_t len)
{
    struct fsck *f = ctx;
    struct digest got;
    digest_of(data, len, &got);
    f->blobs++;
    if (!digest_equal(&got, key))
        problem(f, "corrupt: document %s: its content does not match its hash%s", key, NULL);
    return 0;
}

static int check_image(void *ctx, const struct store_image_entry *e)
{
    struct fsck *f = ctx;
    struct imgfs_err err = {0};
    struct image img;
    char more[4400];
    f->images++;
    if (image_load(f->r, &e->manifest, &img, &err) < 0) {
        snprintf(more, sizeof more, " (%s): %s", e->name, err.msg);
        problem(f, "broken: image %s%s", &e->manifest, more);
        return 0;
    }
    if (image_check_view(f->r, &img, &err) < 0) {
        snprintf(more, sizeof more, " (%s): %s", e->name, err.msg);
        problem(f, "broken: image %s%s", &e->manifest, more);
    }
    for (size_t i = 0; i < img.n_layers; i++) {
        uint64_t before = f->problems;
        check_layer(f, &img.layers[i]);
        if (f->problems > before) {
            snprintf(more, sizeof more, " (%s): layer %zu is damaged (above)", e->name, i + 1);
            problem(f, "broken: image %s%s", &e->manifest, more);
        }
    }
    image_free(&img);
    return 0;
}

int cmd_fsck(int argc, char **argv, struct cli *cli)
{
    if (cli_wants_help(argc, argv)) {
        fputs(usage, stdout);
        return 0;
    }
    if (argc != 1) {
        if (argv[1][0] != '-')
            return cli_wrong_args("fsck", "accepts no arguments");
        cli_error("fsck", "unknown flag: %s", argv[1]);
        return cli_usage_error("fsck");
    }
    struct store *s = cli_store_open(cli, "fsck", true);
    if (!s)
        return 1;
    struct imgfs_err err = {0};
    struct fsck f = {0};
    if (store_read_begin(s, &f.r, &err) < 0) {
        cli_report("fsck", &err);
        store_close(s);
        return 1;
    }
    if (store_foreach(f.r, STORE_CHUNK, check_chunk, &f) != 0) {
        printf("unreadable: the chunk database (the walk over it stopped early)\n");
        f.problems++;
    }
    if (store_foreach(f.r, STORE_BLOB, check_blob, &f) != 0) {
        printf("unreadable: the document database (the walk over it stopped early)\n");
        f.problems++;
    }
    if (store_image_foreach(f.r, check_image, &f) != 0) {
        printf("unreadable: the image names (the walk over them stopped early)\n");
        f.problems++;
    }
    if (f.remote)
        printf("%llu chunk references are remote (lazily pulled, fetched on first read)\n",
               (unsigned long long)f.remote);
    printf("checked %llu chunks, %llu documents, %llu layers, %llu image names: %llu problem%s\n",
           (unsigned long long)f.chunks, (unsigned long long)f.blobs, (unsigned long long)f.layers,
           (unsigned long long)f.images, (unsigned long long)f.problems,
           f.problems == 1 ? "" : "s");
    free(f.layers_seen);
    store_read_end(f.r);
    store_close(s);
    return f.problems ? 1 : 0;
}
