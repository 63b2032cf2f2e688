/* imgfs history — an image's history (its config's history[]), as docker history. */
#include "../fs/image.h"
#include "../fs/layer.h"
#include "../fs/store.h"
#include "cli.h"

#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static const char usage[] =
    "Usage: imgfs history [OPTIONS] IMAGE\n\n"
    "Show the history of an image: a row per entry of its config's history, newest first.\n"
    "IMAGE is the image ID on the top row and <missing> below (imgfs keeps no intermediate\n"
    "images, as Docker shows pulled ones); SIZE is the bytes of the layer's files, 0B for a\n"
    "step that made none.\n\n"
    "Options:\n"
    "      --format TMPL  a Go template per row (docs/cli.md), \"table TMPL\" with headers;\n"
    "                     fields: .ID .CreatedSince .CreatedAt .CreatedBy .Size .Comment\n"
    "  -H, --human        human sizes and dates (the default, the only form)\n"
    "      --no-trunc     do not shorten the ID and CREATED BY\n"
    "  -q, --quiet        only the IDs\n"
    "  -h, --help         show this help\n";

static const char default_format[] =
    "table {{.ID}}\\t{{.CreatedSince}}\\t{{.CreatedBy}}\\t{{.Size}}\\t{{.Comment}}";

/* An RFC 3339 time as Unix seconds; 0 for none (or Go's zero time, year 1) */
/* A layer's size as Docker counts it: the bytes of its files */
static uint64_t layer_bytes(struct store_read *r, const struct digest *diff_id)
{
    const void *table;
    size_t len;
    struct imgfs_err err;
    struct layer_reader lr;
    if (store_get(r, STORE_LAYER, diff_id, &table, &len, &err) < 0 ||
        layer_reader_init(&lr, table, len, &err) < 0)
        return 0;
    uint64_t bytes = 0;
    struct layer_entry e;
    while (layer_next(&lr, &e, &err) == 1)
        if (e.kind == LAYER_REG)
            bytes += e.size;
    layer_reader_free(&lr);
    return bytes;
}

/* one row of Docker's history table */
static json_t *history_row(json_t *h, const char *id, uint64_t size, bool no_trunc)
{
    const char *by = json_string_value(json_object_get(h, "created_by"));
    const char *comment = json_string_value(json_object_get(h, "comment"));
    const char *created = json_string_value(json_object_get(h, "created"));
    int64_t t = cli_parse_time(created);
    char since[96] = "N/A", at[64] = "0001-01-01T00:00:00Z", human[32];
    if (t > 0) {
        char d[64];
        cli_human_duration((int64_t)time(NULL) - t, d, sizeof d);
        snprintf(since, sizeof since, "%s ago", d);
        struct tm tm;
        time_t tt = (time_t)t;
        localtime_r(&tt, &tm);
        strftime(at, sizeof at, "%Y-%m-%dT%H:%M:%S%z", &tm);
    }
    cli_human_size(size, human, sizeof human);
    /* Docker: tabs as spaces, and 45 characters with an ellipsis unless --no-trunc */
    cleanup_free char *shown = xstrdup(by ? by : "");
    for (char *c = shown; *c; c++)
        if (*c == '\t')
            *c = ' ';
    if (!no_trunc && strlen(shown) > 45) {
        shown[44] = 0;
        char *cut = xasprintf("%s…", shown);
        free(shown);
        shown = cut;
    }
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "ID", id, "CreatedSince", since, "CreatedAt",
                     at, "CreatedBy", shown, "Size", human, "Comment", comment ? comment : "");
}

int cmd_history(int argc, char **argv, struct cli *cli)
{
    static const struct option longopts[] = {
        {"format", required_argument, NULL, 'F'}, {"human", no_argument, NULL, 'H'},
        {"no-trunc", no_argument, NULL, 'T'},     {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},         {0}};
    const char *format = NULL;
    bool no_trunc = false, quiet = false;
    int c;
    while ((c = cli_getopt(argc, argv, "Hqh", longopts)) != -1) {
        switch (c) {
        case 'F':
            format = optarg;
            break;
        case 'H':
            break;
        case 'T':
            no_trunc = true;
            break;
        case 'q':
            quiet = true;
            break;
        case 'h':
            fputs(usage, stdout);
            return 0;
        default:
            return cli_usage_error("history");
        }
    }
    if (argc - optind != 1)
        return cli_wrong_args("history", "requires exactly 1 argument");
    if (quiet)
        format = "{{.ID}}";
    struct store *s = cli_store_open(cli, "history", true);
    if (!s)
        return 1;
    struct imgfs_err err = {0};
    struct store_read *r = NULL;
    struct image img = {0};
    if (store_read_begin(s, &r, &err) < 0 || image_load_ref(r, argv[optind], &img, &err) < 0) {
        if (err.code == ENOENT) /* Docker's daemon's words */
            cli_error("history", "Error response from daemon: No such image: %s", argv[optind]);
        else
            cli_report("history", &err);
        if (r)
            store_read_end(r);
        store_close(s);
        return 1;
    }
    json_t *headers = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "ID", "IMAGE", "CreatedSince",
                                "CREATED", "CreatedAt", "CREATED AT", "CreatedBy", "CREATED BY",
                                "Size", "SIZE", "Comment", "COMMENT");
    struct cli_format fmt;
    int rc = cli_format_begin(&fmt, "history", format, default_format, headers, NULL);
    json_decref(headers);
    if (rc) {
        image_free(&img);
        store_read_end(r);
        store_close(s);
        return rc;
    }
    json_t *config = json_loadb(img.config_json, img.config_len, 0, NULL);
    json_t *history = json_object_get(config, "history");
    size_t n = json_array_size(history);
    /* the layer of each entry that made one, bottom first */
    size_t *layer = xcalloc(n + 1, sizeof *layer), next = 0;
    for (size_t i = 0; i < n; i++)
        layer[i] = json_is_true(json_object_get(json_array_get(history, i), "empty_layer"))
                       ? SIZE_MAX
                       : next++;
    char hex[DIGEST_HEX_LEN + 1], id[DIGEST_STR_SIZE];
    digest_hex(&img.config_digest, hex);
    snprintf(id, sizeof id, no_trunc ? "sha256:%s" : "%.12s", hex);
    for (size_t i = n; i-- > 0;) {
        uint64_t size = layer[i] < img.n_layers ? layer_bytes(r, &img.layers[layer[i]]) : 0;
        json_t *row =
            history_row(json_array_get(history, i), i == n - 1 ? id : "<missing>", size, no_trunc);
        if (cli_format_row(&fmt, row) < 0)
            rc = 1;
        json_decref(row);
    }
    cli_format_end(&fmt);
    free(layer);
    json_decref(config);
    image_free(&img);
    store_read_end(r);
    store_close(s);
    return rc;
}
