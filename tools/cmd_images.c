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

static const char usage[] = "Usage: imgfs images [OPTIONS]\n\n"
                            "List images.\n\n"
                            "Options:\n"
                            "  -q, --quiet      only image IDs\n"
                            "      --digests    show the digest a registry knows each image by (recorded by pull\n"
                            "                   and push; the stored manifest's for local images)\n"
                            "      --json       one JSON array\n"
                            "  -h, --help       show this help\n";

struct listing {
    struct store_read *r;
    bool quiet, digests;
    json_t *json;
};

static void ago(int64_t t, char *buf, size_t len)
{
    int64_t d = time(NULL) - t;
    if (d < 60)
        snprintf(buf, len, "%s", "Less than a minute ago");
    else if (d < 3600)
        snprintf(buf, len, "%lld minutes ago", (long long)d / 60);
    else if (d < 86400)
        snprintf(buf, len, "%lld hours ago", (long long)d / 3600);
    else
        snprintf(buf, len, "%lld days ago", (long long)d / 86400);
}

static int list_one(void *ctx, const struct store_image_entry *e)
{
    struct listing *l = ctx;
    char hex[DIGEST_HEX_LEN + 1], size[32], when[64];
    digest_hex(&e->manifest, hex);
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
    cleanup_free char *repo_digest = by_digest ? xstrdup(strchr(e->name, '@') + 1)
                                               : cli_repo_digest(l->r, repo, &e->manifest);
    char shown[DIGEST_STR_SIZE];
    if (repo_digest)
        snprintf(shown, sizeof shown, "%s", repo_digest);
    else
        snprintf(shown, sizeof shown, "sha256:%s", hex);
    if (l->json) {
        json_array_append_new(l->json,
                              json_pack("{s:s, s:s, s:s, s:s+, s:s, s:I, s:I}", "Name",
                                        e->name, "Repository", repo, "Tag", tag, "Digest",
                                        "sha256:", hex, "RepoDigest", shown, "Size",
                                        (json_int_t)bytes, "Created", (json_int_t)e->tagged_at));
        return 0;
    }
    if (l->quiet) {
        printf("%.12s\n", hex);
        return 0;
    }
    cli_human_size(bytes, size, sizeof size);
    ago(e->tagged_at, when, sizeof when);
    if (l->digests)
        printf("%-30s %-12s %-71s %-24s %s\n", repo, tag, shown, when, size);
    else
        printf("%-30s %-12s %-12.12s %-24s %s\n", repo, tag, hex, when, size);
    return 0;
}

int cmd_images(int argc, char **argv, struct cli *cli)
{
    static const struct option opts[] = {{"quiet", no_argument, 0, 'q'},
                                         {"digests", no_argument, 0, 'D'},
                                         {"json", no_argument, 0, 'j'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    struct listing l = {0};
    bool json = false;
    int c;
    while ((c = cli_getopt(argc, argv, "qh", opts)) != -1) {
        switch (c) {
        case 'q': l.quiet = true; break;
        case 'D': l.digests = true; break;
        case 'j': json = true; break;
        case 'h': fputs(usage, stdout); return 0;
        default:
            return cli_usage_error("images");
        }
    }
    if (optind != argc) {
        cli_error("images", "unexpected argument `%s`", argv[optind]);
        return 1;
    }
    struct imgfs_err err = {0};
    struct store *s;
    if (store_open(cli->root, STORE_READONLY, &s, &err) < 0) {
        if (err.code == ENOENT) { /* no store yet: no images */
            if (json)
                puts("[]");
            else if (!l.quiet)
                printf("%-30s %-12s %-12s %-24s %s\n", "REPOSITORY", "TAG", "IMAGE ID", "CREATED",
                       "SIZE");
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
    else if (!l.quiet)
        printf("%-30s %-12s %-*s %-24s %s\n", "REPOSITORY", "TAG", l.digests ? 71 : 12,
               l.digests ? "DIGEST" : "IMAGE ID", "CREATED", "SIZE");
    store_image_foreach(l.r, list_one, &l);
    if (l.json) {
        char *out = json_dumps(l.json, JSON_INDENT(2));
        puts(out);
        free(out);
        json_decref(l.json);
    }
    store_read_end(l.r);
    store_close(s);
    return 0;
}
