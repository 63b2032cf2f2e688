#include "../fs/image.h"
#include "../fs/reference.h"
#include "../fs/store.h"
#include "../fs/view.h"
#include "cli.h"

#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static const char usage[] =
    "Usage: imgfs images [OPTIONS] [REPOSITORY[:TAG]]\n\n"
    "List images (only REPOSITORY's, or that one tag, when given).\n\n"
    "Options:\n"
    "  -q, --quiet      only image IDs\n"
    "      --format TMPL  a Go template per image (docs/cli.md), \"table TMPL\"\n"
    "                   with headers; fields: .ID .Repository .Tag .Digest\n"
    "                   .CreatedSince .CreatedAt .Size\n"
    "      --digests    show the digest a registry knows each image by (recorded by pull\n"
    "                   and push; the stored manifest's for local images)\n"
    "      --json       one JSON array\n"
    "  -h, --help       show this help\n";

struct listing {
    struct store_read *r;
    bool quiet, digests;
    json_t *json;
    const char *repo, *tag; /* the REPOSITORY[:TAG] filter, or NULL */
    struct cli_format fmt;
    int rc;
};

/* Docker's CREATED: when the image was made, its config's `created` (0 without one) */
static int64_t image_created(struct store_read *r, const struct digest *config)
{
    const void *data;
    size_t len;
    struct imgfs_err ignored;
    int64_t t = 0;
    if (store_get(r, STORE_BLOB, config, &data, &len, &ignored) == 0) {
        json_t *c = json_loadb(data, len, 0, NULL);
        t = cli_parse_time(json_string_value(json_object_get(c, "created")));
        json_decref(c);
    }
    return t;
}

static int is_named(void *ctx, const struct store_image_entry *e)
{
    return strncmp(e->name, "sha256:", 7) && digest_equal(&e->manifest, ctx);
}

static int list_one(void *ctx, const struct store_image_entry *e)
{
    struct listing *l = ctx;
    /* the record an unnamed import leaves ("sha256:MANIFEST") is no row of its own once the
     * image has a name: Docker lists an image ID once, under its names */
    if (!strncmp(e->name, "sha256:", 7) &&
        store_image_foreach(l->r, is_named, (void *)&e->manifest) > 0)
        return 0;
    char hex[DIGEST_HEX_LEN + 1], size[32], when[64], config_hex[DIGEST_HEX_LEN + 1];
    digest_hex(&e->manifest, hex);
    /* IMAGE ID is Docker's: the config digest (the manifest's is DIGEST without a registry's) */
    struct digest config;
    struct imgfs_err ignored;
    int64_t created = 0;
    if (image_config_digest(l->r, &e->manifest, &config, &ignored) == 0) {
        digest_hex(&config, config_hex);
        created = image_created(l->r, &config);
    } else {
        snprintf(config_hex, sizeof config_hex, "%s", "<corrupt>");
    }
    struct view_header h;
    uint64_t bytes = cli_view_header(l->r, &e->manifest, &h) ? h.total_size : 0;
    cleanup_free char *repo = NULL;
    const char *tag = "<none>";
    bool by_digest = false;
    if (!ref_split_name(e->name, &repo, &tag, &by_digest))
        repo = xstrdup(strncmp(e->name, "sha256:", 7) ? e->name : "<none>");
    if (by_digest) {
        /* a REPO@DIGEST name whose image also has a tag in REPO is shown in that tag's row */
        if (cli_repo_has_tag(l->r, repo, &e->manifest))
            return 0;
        tag = "<none>";
    }
    /* DIGEST: what the registry knows the image by in this repository (pull and push record
     * it), else the stored manifest's digest */
    cleanup_free char *repo_digest =
        by_digest ? xstrdup(strchr(e->name, '@') + 1) : cli_repo_digest(l->r, repo, &e->manifest);
    char shown[DIGEST_STR_SIZE];
    if (repo_digest)
        snprintf(shown, sizeof shown, "%s", repo_digest);
    else
        snprintf(shown, sizeof shown, "sha256:%s", hex);
    if (l->repo && (strcmp(repo, l->repo) || (l->tag && strcmp(tag, l->tag))))
        return 0;
    if (l->json) {
        json_array_append_new(
            l->json, json_pack("{s:s, s:s+, s:s, s:s, s:s+, s:s, s:I, s:I}", "Name", e->name, "Id",
                               "sha256:", config_hex, "Repository", repo, "Tag", tag, "Digest",
                               "sha256:", hex, "RepoDigest", shown, "Size", (json_int_t)bytes,
                               "Created", (json_int_t)(created > 0 ? created : e->tagged_at)));
        return 0;
    }
    if (l->quiet) {
        printf("%.12s\n", config_hex);
        return 0;
    }
    cli_human_size(bytes, size, sizeof size);
    /* a config without `created`: Docker's N/A and Go's zero time */
    char ago[48], at[64] = "0001-01-01 00:00:00 +0000 UTC", id[13];
    snprintf(when, sizeof when, "N/A");
    if (created > 0) {
        cli_human_duration((int64_t)time(NULL) - created, ago, sizeof ago);
        snprintf(when, sizeof when, "%s ago", ago);
        time_t t = (time_t)created;
        struct tm tm;
        localtime_r(&t, &tm);
        strftime(at, sizeof at, "%Y-%m-%d %H:%M:%S %z %Z", &tm);
    }
    snprintf(id, sizeof id, "%.12s", config_hex);
    /* Containers, SharedSize, UniqueSize: Docker's N/A outside `system df -v` */
    json_t *row = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "ID", id,
                            "Repository", repo, "Tag", tag, "Digest", shown, "CreatedSince", when,
                            "CreatedAt", at, "Size", size, "VirtualSize", size, "Containers", "N/A",
                            "SharedSize", "N/A", "UniqueSize", "N/A");
    if (cli_format_row(&l->fmt, row) < 0)
        l->rc = 1;
    json_decref(row);
    return 0;
}

int cmd_images(int argc, char **argv, struct cli *cli)
{
    static const struct option opts[] = {
        {"quiet", no_argument, 0, 'q'}, {"digests", no_argument, 0, 'D'},
        {"json", no_argument, 0, 'j'},  {"format", required_argument, 0, 'F'},
        {"help", no_argument, 0, 'h'},  {0, 0, 0, 0}};
    struct listing l = {0};
    bool json = false;
    const char *format = NULL;
    int c;
    while ((c = cli_getopt(argc, argv, "qh", opts)) != -1) {
        switch (c) {
        case 'q':
            l.quiet = true;
            break;
        case 'D':
            l.digests = true;
            break;
        case 'j':
            json = true;
            break;
        case 'F':
            format = optarg;
            break;
        case 'h':
            fputs(usage, stdout);
            return 0;
        default:
            return cli_usage_error("images");
        }
    }
    if (argc - optind > 1) {
        return cli_wrong_args("images", "requires at most 1 argument");
    }
    cleanup_free char *filter_repo = NULL;
    if (optind < argc) {
        const char *want = argv[optind], *colon = strrchr(want, ':');
        if (colon && !strchr(colon, '/')) {
            filter_repo = strndup(want, (size_t)(colon - want));
            l.tag = colon + 1;
        } else {
            filter_repo = xstrdup(want);
        }
        l.repo = filter_repo;
    }
    bool formatted = !json && !l.quiet;
    if (formatted) {
        static const char plain[] =
            "table {{.Repository}}\\t{{.Tag}}\\t{{.ID}}\\t{{.CreatedSince}}\\t{{.Size}}";
        static const char digests[] = "table {{.Repository}}\\t{{.Tag}}\\t{{.Digest}}\\t{{.ID}}"
                                      "\\t{{.CreatedSince}}\\t{{.Size}}";
        json_t *headers = json_pack(
            "{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "ID", "IMAGE ID",
            "Repository", "REPOSITORY", "Tag", "TAG", "Digest", "DIGEST", "CreatedSince", "CREATED",
            "CreatedAt", "CREATED AT", "Size", "SIZE", "VirtualSize", "VIRTUAL SIZE", "Containers",
            "CONTAINERS", "SharedSize", "SHARED SIZE", "UniqueSize", "UNIQUE SIZE");
        int r =
            cli_format_begin(&l.fmt, "images", format, l.digests ? digests : plain, headers, NULL);
        json_decref(headers);
        if (r)
            return r;
    }
    struct imgfs_err err = {0};
    struct store *s;
    if (store_open(cli->root, STORE_READONLY, &s, &err) < 0) {
        if (err.code == ENOENT) { /* no store yet: no images */
            if (json)
                puts("[]");
            else if (formatted)
                cli_format_end(&l.fmt);
            return 0;
        }
        cli_report("images", &err);
        return 1;
    }
    if (store_read_begin(s, &l.r, &err) < 0) {
        cli_report("images", &err);
        store_close(s);
        return 1;
    }
    if (json)
        l.json = json_array();
    store_image_foreach(l.r, list_one, &l);
    if (formatted)
        cli_format_end(&l.fmt);
    if (l.json) {
        char *out = json_dumps(l.json, JSON_INDENT(2));
        puts(out);
        free(out);
        json_decref(l.json);
    }
    store_read_end(l.r);
    store_close(s);
    return l.rc;
}
