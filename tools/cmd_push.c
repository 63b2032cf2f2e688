#include "../fs/push.h"
#include "../fs/reference.h"
#include "../fs/registry.h"
#include "../fs/store.h"
#include "cli.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static const char usage[] =
    "Usage: imgfs push [OPTIONS] IMAGE [REF]\n\n"
    "Upload a local image to a registry: to REF ([HOST[:PORT]/]PATH[:TAG]), or to IMAGE's own\n"
    "name. Layers the registry has are skipped, layers imgfs pushed to another repository of the\n"
    "same registry are mounted from there. Prints, as docker does, the repository first and\n"
    "TAG: digest: DIGEST size: BYTES (the pushed manifest) last.\n\n"
    "Options:\n"
    "  -a, --all-tags              every tag the store has for the repository IMAGE (and REF,\n"
    "                              when given, is a repository too)\n"
    "  -q, --quiet                 print only the reference pushed to, as docker push -q\n"
    "                              (HOST/PATH:TAG; the digest is on the last line without -q)\n"
    "      --json                  one JSON event per line\n"
    "  -j, --jobs N                layers uploaded at a time (default 3)\n"
    "      --sparse-limit SIZE     the holes of sparse files are pushed as zeros (layers have\n"
    "                              no holes): refuse an image with more than SIZE of them\n"
    "                              (default 4g)\n"
    "      --chunk-size BYTES      upload blobs above this size in chunks of it (default "
    "16MiB)\n" CLI_REGISTRY_HELP "  -h, --help                  show this help\n";

struct push_ui {
    struct cli_progress pg;
    char *tag; /* what the manifest went up under (PUSH_DONE) */
    uint64_t manifest_size;
    bool header_said;
};

static const char *kind_name(enum push_event_kind k)
{
    switch (k) {
    case PUSH_PREPARED:
        return "prepared";
    case PUSH_LAYER_PREPARING:
        return "layer-preparing";
    case PUSH_LAYER_EXISTS:
        return "layer-exists";
    case PUSH_LAYER_MOUNTED:
        return "layer-mounted";
    case PUSH_LAYER_START:
        return "layer-start";
    case PUSH_LAYER_PROGRESS:
        return "layer-progress";
    case PUSH_LAYER_DONE:
        return "layer-done";
    case PUSH_DONE:
        return "done";
    }
    return "?";
}

static void on_event(void *ctx, const struct push_event *e)
{
    struct push_ui *ui = ctx;
    if (ui->pg.mode == CLI_PROGRESS_JSON) {
        if (e->kind == PUSH_LAYER_PROGRESS && !cli_progress_json_due(&ui->pg, e->done == e->total))
            return;
        struct cli_progress_json_layer l = {e->layer, e->done, e->total, e->from};
        bool per_layer = e->kind != PUSH_PREPARED && e->kind != PUSH_DONE;
        cli_progress_json(kind_name(e->kind), e->digest, per_layer ? &l : NULL, e->n_layers);
        return;
    }
    switch (e->kind) {
    case PUSH_PREPARED:
        /* once: --all-tags pushes every tag to one repository, as docker says it */
        if (ui->pg.mode != CLI_PROGRESS_QUIET && !ui->header_said) {
            ui->header_said = true;
            printf("The push refers to repository [%s]\n", e->from);
            fflush(stdout);
        }
        cli_progress_start(&ui->pg, e->n_layers);
        break;
    case PUSH_LAYER_PREPARING:
        /* active: a bar on a terminal, no line of its own otherwise */
        cli_progress_update(&ui->pg, e->layer, e->digest, "Preparing", true, 0, 0);
        break;
    case PUSH_LAYER_EXISTS:
        cli_progress_update(&ui->pg, e->layer, e->digest, "Layer already exists", false, e->done,
                            e->total);
        break;
    case PUSH_LAYER_MOUNTED: {
        char status[96];
        snprintf(status, sizeof status, "Mounted from %s", e->from);
        cli_progress_update(&ui->pg, e->layer, e->digest, status, false, e->done, e->total);
        break;
    }
    case PUSH_LAYER_START:
    case PUSH_LAYER_PROGRESS:
        cli_progress_update(&ui->pg, e->layer, e->digest, "Pushing", true, e->done, e->total);
        break;
    case PUSH_LAYER_DONE:
        cli_progress_update(&ui->pg, e->layer, e->digest, "Pushed", false, e->done, e->total);
        break;
    case PUSH_DONE:
        free(ui->tag);
        ui->tag = xstrdup(e->from);
        ui->manifest_size = e->total;
        break;
    }
}

/* One image: lazily pulled content fetched first, the push, docker's last line. -1 with `err`
 * to report, 1 when the failure was reported already. */
static int push_one(struct cli *cli, const char *image, const char *ref, struct push_options *o,
                    struct push_ui *ui, struct imgfs_err *err)
{
    if (cli_lazy_complete(cli, image, "push") < 0)
        return 1;
    struct store *s = cli_store_open(cli, "push", false);
    if (!s)
        return 1;
    struct digest d;
    int rc = push_image(s, image, ref, o, &d, err);
    store_close(s);
    if (rc < 0)
        return -1;
    char ds[DIGEST_STR_SIZE];
    digest_str(&d, ds);
    if (ui->pg.mode != CLI_PROGRESS_JSON && ui->pg.mode != CLI_PROGRESS_QUIET) /* docker's last line, which scripts parse */
        printf("%s: digest: %s size: %llu\n", ui->tag, ds, (unsigned long long)ui->manifest_size);
    fflush(stdout);
    return 0;
}

int cmd_push(int argc, char **argv, struct cli *cli)
{
    static const struct option opts[] = {{"all-tags", no_argument, 0, 'a'},
                                         {"quiet", no_argument, 0, 'q'},
                                         {"json", no_argument, 0, 'J'},
                                         {"chunk-size", required_argument, 0, 'C'},
                                         {"jobs", required_argument, 0, 'j'},
                                         {"sparse-limit", required_argument, 0, 'S'},
                                         {"help", no_argument, 0, 'h'},
                                         CLI_REGISTRY_OPTIONS,
                                         {0, 0, 0, 0}};
    struct push_options o = {0};
    bool all = false;
    struct push_ui ui = {.pg.mode = isatty(STDOUT_FILENO) ? CLI_PROGRESS_TTY : CLI_PROGRESS_PLAIN};
    int c;
    while ((c = cli_getopt(argc, argv, "aqj:h", opts)) != -1) {
        switch (c) {
        case 'a':
            all = true;
            break;
        case 'q':
            ui.pg.mode = CLI_PROGRESS_QUIET;
            break;
        case 'J':
            ui.pg.mode = CLI_PROGRESS_JSON;
            break;
        case 'C': {
            char *end;
            unsigned long long n = strtoull(optarg, &end, 10);
            if (*end || n < 1024 || n > (1ull << 32)) {
                cli_error("push", "--chunk-size wants bytes from 1024 to 4GiB, not `%s`", optarg);
                return EXIT_IMGFS_FAILED;
            }
            o.chunk_size = (size_t)n;
            break;
        }
        case 'j': {
            char *end;
            unsigned long n = strtoul(optarg, &end, 10);
            if (*end || !n || n > 64) {
                cli_error("push", "--jobs wants a number from 1 to 64, not `%s`", optarg);
                return EXIT_IMGFS_FAILED;
            }
            o.jobs = (unsigned)n;
            break;
        }
        case 'S': {
            uint64_t n;
            if (cli_parse_bytes(optarg, &n) < 0 || !n) {
                cli_error("push", "--sparse-limit wants a size such as 4g or 1t, not `%s`", optarg);
                return EXIT_IMGFS_FAILED;
            }
            o.sparse_limit = n;
            break;
        }
        case 'h':
            fputs(usage, stdout);
            return 0;
        default:
            if (cli_registry_option(c, optarg, &o.registry, "push") == 0)
                break;
            return cli_usage_error("push");
        }
    }
    if (optind + 1 != argc && optind + 2 != argc) {
        return cli_wrong_args("push", "requires IMAGE and an optional REF");
    }
    const char *image = argv[optind];
    const char *ref = optind + 1 < argc ? argv[optind + 1] : NULL;
    struct imgfs_err err = {0};
    if (all) {
        /* docker's rule: --all-tags takes a repository */
        for (int i = optind; i < argc; i++) {
            struct ref r;
            if (ref_parse(argv[i], &r, &err) < 0) {
                err_ctx(&err, "%s", argv[i]);
                cli_report("push", &err);
                return EXIT_REFUSED;
            }
            bool tagged = r.tag || r.has_digest;
            ref_free(&r);
            if (tagged) {
                cli_error("push", "tag can't be used with --all-tags/-a");
                return EXIT_REFUSED;
            }
        }
    }
    char **tags = NULL;
    size_t n_tags = 1;
    if (all) {
        struct store *s = cli_store_open(cli, "push", true);
        if (!s)
            return EXIT_REFUSED;
        int rc = push_local_tags(s, image, &tags, &n_tags, &err);
        store_close(s);
        if (rc == 0 && !n_tags)
            err_set(&err, ENOENT, "An image does not exist locally with the repository: %s", image);
        if (rc < 0 || !n_tags) {
            cli_report("push", &err);
            return EXIT_REFUSED;
        }
    }
    if (!all && (ui.pg.mode == CLI_PROGRESS_TTY || ui.pg.mode == CLI_PROGRESS_PLAIN)) {
        /* docker's first line for a name without a tag; one that does not parse is reported by
         * the push */
        struct ref r;
        struct imgfs_err ignored = {0};
        if (ref_parse(ref ? ref : image, &r, &ignored) == 0) {
            if (!r.tag && !r.has_digest)
                printf("Using default tag: latest\n");
            ref_free(&r);
        }
        err_clear(&ignored);
    }
    o.event = on_event;
    o.event_ctx = &ui;
    int rc = 0;
    for (size_t i = 0; i < n_tags && rc == 0; i++) {
        cleanup_free char *one = all ? xasprintf("%s:%s", image, tags[i]) : NULL;
        cleanup_free char *to = all && ref ? xasprintf("%s:%s", ref, tags[i]) : NULL;
        rc = push_one(cli, one ? one : image, all ? to : ref, &o, &ui, &err);
    }
    if (rc == 0 && ui.pg.mode == CLI_PROGRESS_QUIET) {
        /* docker push -q's one line: the reference pushed to, fully qualified, ":latest" added
         * (the repository alone for --all-tags) */
        struct ref r;
        if (ref_parse(ref ? ref : image, &r, &err) == 0) {
            cleanup_free char *name = all ? ref_repository(&r) : ref_full_name(&r);
            puts(name);
            ref_free(&r);
        }
        err_clear(&err);
    }
    registry_tags_free(tags, all ? n_tags : 0);
    cli_progress_free(&ui.pg);
    free(ui.tag);
    if (rc < 0) {
        fflush(stdout);
        cli_report("push", &err);
    }
    return rc ? EXIT_REFUSED : 0;
}
