#include "../fs/lazy.h"
#include "../fs/pull.h"
#include "../fs/reference.h"
#include "../fs/store.h"
#include "cli.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static const char usage[] =
    "Usage: imgfs pull [OPTIONS] REF\n\n"
    "Download an image from a registry into the store. REF is [HOST[:PORT]/]PATH[:TAG][@DIGEST];\n"
    "without a host it is on docker.io (library/ for one-part names), as with docker.\n\n"
    "Options:\n"
    "  -a, --all-tags              every tagged image of the repository (REF without a tag)\n"
    "      --platform OS/ARCH[/VARIANT]  the image of an index to pull (default linux/amd64)\n"
    "  -q, --quiet                 print only the image's full name\n"
    "      --json                  one JSON event per line (resolved, layer progress, done)\n"
    "  -j, --jobs N                layers downloaded at a time (default 3)\n"
    "      --lazy                  fetch only the metadata (manifest, config, each eStargz "
    "layer's\n"
    "                              table of contents); file content comes on first read. A\n"
    "                              later pull without --lazy fetches the rest. Layers that\n"
    "                              are not eStargz are pulled whole (with a "
    "note)\n" CLI_REGISTRY_HELP "  -h, --help                  show this help\n";

struct pull_ui {
    struct cli_progress pg;
    char digest[DIGEST_STR_SIZE]; /* the registry's */
    bool up_to_date;
};

static const char *kind_name(enum pull_event_kind k)
{
    switch (k) {
    case PULL_RESOLVED:
        return "resolved";
    case PULL_UP_TO_DATE:
        return "up-to-date";
    case PULL_LAYER_EXISTS:
        return "layer-exists";
    case PULL_LAYER_START:
        return "layer-start";
    case PULL_LAYER_PROGRESS:
        return "layer-progress";
    case PULL_LAYER_DONE:
        return "layer-done";
    case PULL_LAYER_WHOLE:
        return "layer-whole";
    case PULL_DONE:
        return "done";
    }
    return "?";
}

static void on_event(void *ctx, const struct pull_event *e)
{
    struct pull_ui *ui = ctx;
    char ds[DIGEST_STR_SIZE] = "";
    if (e->digest)
        digest_str(e->digest, ds);
    bool per_layer = e->kind != PULL_RESOLVED && e->kind != PULL_DONE && e->kind != PULL_UP_TO_DATE;
    if (ui->pg.mode == CLI_PROGRESS_JSON) {
        if (e->kind == PULL_LAYER_PROGRESS && !cli_progress_json_due(&ui->pg, e->done == e->total))
            return;
        struct cli_progress_json_layer l = {e->layer, e->done, e->total, NULL};
        cli_progress_json(kind_name(e->kind), e->digest, per_layer ? &l : NULL, e->n_layers);
        return;
    }
    switch (e->kind) {
    case PULL_RESOLVED:
        snprintf(ui->digest, sizeof ui->digest, "%s", ds);
        cli_progress_start(&ui->pg, e->n_layers);
        break;
    case PULL_UP_TO_DATE:
        ui->up_to_date = true; /* said in docker's Status line at the end */
        break;
    case PULL_LAYER_EXISTS:
        cli_progress_update(&ui->pg, e->layer, e->digest, "Already exists", false, e->done,
                            e->total);
        break;
    case PULL_LAYER_START:
    case PULL_LAYER_PROGRESS:
        cli_progress_update(&ui->pg, e->layer, e->digest, "Downloading", true, e->done, e->total);
        break;
    case PULL_LAYER_DONE:
        cli_progress_update(&ui->pg, e->layer, e->digest, "Pull complete", false, e->done,
                            e->total);
        break;
    case PULL_LAYER_WHOLE:
        fprintf(stderr, "imgfs pull: note: %s: pulling this layer whole\n", e->note);
        break;
    case PULL_DONE:
        break;
    }
}

/* One image: docker's first lines, the pull (lazy or not), and for an image pulled lazily before,
 * the rest of it. */
static int pull_one(struct store *s, const char *ref, bool lazy, struct pull_options *o,
                    struct pull_ui *ui, char **name, struct imgfs_err *err)
{
    if (ui->pg.mode == CLI_PROGRESS_TTY || ui->pg.mode == CLI_PROGRESS_PLAIN) {
        /* docker's first lines; a reference that does not parse is reported by the pull */
        struct ref r;
        struct imgfs_err ignored = {0};
        if (ref_parse(ref, &r, &ignored) == 0) {
            char buf[DIGEST_STR_SIZE];
            if (!r.tag && !r.has_digest)
                printf("Using default tag: latest\n");
            printf("%s: Pulling from %s\n", ref_registry_reference(&r, buf), ref_path(&r));
            ref_free(&r);
        }
        err_clear(&ignored);
        fflush(stdout);
    }
    struct digest d;
    bool whole = false;
    if (lazy) {
        int rc = lazy_pull(s, ref, o, &d, name, &whole, err);
        if (rc < 0 && whole) {
            /* not lazily readable: say so in one line and pull it normally */
            fprintf(stderr, "imgfs pull: note: %s: pulling the image whole\n", err->msg);
            err_clear(err);
            return pull_image(s, ref, o, &d, name, err);
        }
        if (rc == 0 && ui->pg.mode == CLI_PROGRESS_PLAIN)
            printf("Pulled lazily: content is fetched on first read\n");
        return rc;
    }
    if (pull_image(s, ref, o, &d, name, err) < 0)
        return -1;
    /* an image pulled lazily before: fetch what is still remote */
    struct lazy_options lo = {.registry = o->registry, .image = ref};
    struct lazy_usage before;
    if (lazy_complete(s, &d, &lo, &before, err) < 0)
        return -1;
    if (before.remote_bytes && ui->pg.mode != CLI_PROGRESS_QUIET &&
        ui->pg.mode != CLI_PROGRESS_JSON)
        printf("Fetched the rest of a lazily pulled image: %llu bytes in %llu chunks\n",
               (unsigned long long)before.remote_bytes, (unsigned long long)before.remote_chunks);
    return 0;
}

int cmd_pull(int argc, char **argv, struct cli *cli)
{
    static const struct option opts[] = {{"platform", required_argument, 0, 'P'},
                                         {"quiet", no_argument, 0, 'q'},
                                         {"json", no_argument, 0, 'J'},
                                         {"jobs", required_argument, 0, 'j'},
                                         {"lazy", no_argument, 0, 'L'},
                                         {"all-tags", no_argument, 0, 'a'},
                                         {"help", no_argument, 0, 'h'},
                                         CLI_REGISTRY_OPTIONS,
                                         {0, 0, 0, 0}};
    struct pull_options o = {0};
    bool lazy = false, all = false;
    struct pull_ui ui = {.pg.mode = isatty(STDOUT_FILENO) ? CLI_PROGRESS_TTY : CLI_PROGRESS_PLAIN};
    int c;
    while ((c = cli_getopt(argc, argv, "aqj:h", opts)) != -1) {
        switch (c) {
        case 'P':
            if (!cli_platform_valid(optarg)) {
                cli_error("pull",
                          "invalid argument \"%s\" for \"--platform\" flag: want OS/ARCH[/VARIANT]",
                          optarg);
                return EXIT_IMGFS_FAILED;
            }
            o.platform = optarg;
            break;
        case 'L':
            lazy = true;
            break;
        case 'a':
            all = true;
            break;
        case 'q':
            ui.pg.mode = CLI_PROGRESS_QUIET;
            break;
        case 'J':
            ui.pg.mode = CLI_PROGRESS_JSON;
            break;
        case 'j': {
            char *end;
            unsigned long n = strtoul(optarg, &end, 10);
            if (*end || !n || n > 64) {
                cli_error("pull", "--jobs wants a number from 1 to 64, not `%s`", optarg);
                return EXIT_IMGFS_FAILED;
            }
            o.jobs = (unsigned)n;
            break;
        }
        case 'h':
            fputs(usage, stdout);
            return 0;
        default:
            if (cli_registry_option(c, optarg, &o.registry, "pull") == 0)
                break;
            return cli_usage_error("pull");
        }
    }
    if (optind + 1 != argc) {
        return cli_wrong_args("pull", "requires exactly 1 argument");
    }
    const char *ref = argv[optind];
    struct ref r;
    struct imgfs_err err = {0};
    bool parsed = ref_parse(ref, &r, &err) == 0;
    if (parsed && all && (r.tag || r.has_digest)) {
        ref_free(&r);
        cli_error("pull", "tag can't be used with --all-tags/-a");
        return EXIT_REFUSED;
    }
    /* the name docker prints last: the full one (docker.io/library/busybox:latest), without a tag
     * for --all-tags */
    cleanup_free char *full = !parsed ? NULL : all ? ref_repository(&r) : ref_full_name(&r);
    cleanup_free char *familiar = parsed && all ? ref_familiar_repository(&r) : NULL;
    if (parsed)
        ref_free(&r);
    if (!parsed) {
        err_ctx(&err, "%s", ref);
        cli_report("pull", &err);
        return EXIT_REFUSED;
    }
    char **tags = NULL;
    size_t n_tags = 1;
    if (all && pull_list_tags(ref, &o, &tags, &n_tags, &err) < 0) {
        cli_report("pull", &err);
        return EXIT_REFUSED;
    }
    struct store *s = cli_store_open(cli, "pull", false);
    if (!s) {
        registry_tags_free(tags, n_tags);
        return EXIT_REFUSED;
    }
    o.event = on_event;
    o.event_ctx = &ui;
    cleanup_free char *name = NULL;
    bool downloaded = false;
    int rc = 0;
    for (size_t i = 0; i < n_tags && rc == 0; i++) {
        cleanup_free char *tagged = all ? xasprintf("%s:%s", ref, tags[i]) : NULL;
        free(name);
        name = NULL;
        ui.up_to_date = false;
        rc = pull_one(s, tagged ? tagged : ref, lazy, &o, &ui, &name, &err);
        downloaded = downloaded || !ui.up_to_date;
        if (rc == 0 && all && ui.pg.mode != CLI_PROGRESS_QUIET && ui.pg.mode != CLI_PROGRESS_JSON)
            printf("Digest: %s\n", ui.digest); /* docker's, after each tag */
    }
    registry_tags_free(tags, all ? n_tags : 0);
    store_close(s);
    cli_progress_free(&ui.pg);
    if (rc < 0) {
        fflush(stdout);
        cli_report("pull", &err);
        return EXIT_REFUSED;
    }
    if (ui.pg.mode == CLI_PROGRESS_QUIET) {
        puts(full);
    } else if (ui.pg.mode != CLI_PROGRESS_JSON) {
        if (!all)
            printf("Digest: %s\n", ui.digest);
        if (!all || n_tags)
            printf("Status: %s for %s\n",
                   downloaded ? "Downloaded newer image" : "Image is up to date",
                   all ? familiar : name);
        puts(full);
    }
    return 0;
}
