/* imgfs save / imgfs load — Docker's names for `export -f docker` and `import`. */
#include "../fs/image.h"
#include "../fs/import.h"
#include "../fs/store.h"
#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

static const char save_usage[] =
    "Usage: imgfs save [-o FILE] IMAGE\n\n"
    "Write an image as a docker-save archive (docker load reads it), as\n"
    "`imgfs export -f docker`. Without -o, to standard output when it is not a terminal.\n"
    "One IMAGE per archive (Docker takes several: not supported yet).\n\n"
    "Options:\n"
    "  -o, --output FILE   write to FILE\n"
    "  -h, --help          show this help\n";

static const char load_usage[] =
    "Usage: imgfs load [-i FILE] [-q]\n\n"
    "Load the images of a docker-save archive (or an OCI layout tar) from FILE or standard\n"
    "input, with the archive's names, as `imgfs import` does; prints \"Loaded image: NAME\".\n\n"
    "Options:\n"
    "  -i, --input FILE   read FILE instead of standard input\n"
    "  -q, --quiet        print nothing on success\n"
    "  -h, --help         show this help\n";

int cmd_save(int argc, char **argv, struct cli *cli)
{
    static const struct option longopts[] = {
        {"output", required_argument, NULL, 'o'}, {"help", no_argument, NULL, 'h'}, {0}};
    const char *output = NULL;
    int c;
    while ((c = cli_getopt(argc, argv, "o:h", longopts)) != -1) {
        if (c == 'o') {
            output = optarg;
            continue;
        }
        if (c == 'h') {
            fputs(save_usage, stdout);
            return 0;
        }
        return cli_usage_error("save");
    }
    if (argc - optind < 1) {
        return cli_wrong_args("save", "requires at least 1 argument");
    }
    if (argc - optind > 1) {
        cli_error("save", "several images in one archive are not supported yet");
        return cli_usage_error("save");
    }
    char *args[] = {"export",     "-f", "docker", "-o", (char *)(output ? output : "-"),
                    argv[optind], NULL};
    if (!output && isatty(1)) {
        cli_error("save", "cowardly refusing to save to a terminal. Use the -o flag or "
                          "redirect");
        return 1;
    }
    /* Docker's daemon refuses a missing image: exit 1, the message under save's name */
    struct store *s = cli_store_open(cli, "save", false);
    if (!s)
        return EXIT_IMGFS_FAILED;
    struct imgfs_err err = {0};
    struct store_read *r;
    struct digest d;
    int found = store_read_begin(s, &r, &err);
    if (found == 0) {
        found = image_resolve(r, argv[optind], &d, &err);
        store_read_end(r);
    }
    store_close(s);
    if (found < 0) {
        cli_report("save", &err);
        return err.code == ENOENT ? 1 : EXIT_IMGFS_FAILED;
    }
    optind = 1;
    return cmd_export(6, args, cli);
}

struct names_ctx {
    const struct digest *d;
    int n;
};

static int print_name(void *ctx, const struct store_image_entry *e)
{
    struct names_ctx *nc = ctx;
    if (digest_equal(&e->manifest, nc->d) && !strchr(e->name, '@')) {
        printf("Loaded image: %s\n", e->name);
        nc->n++;
    }
    return 0;
}

int cmd_load(int argc, char **argv, struct cli *cli)
{
    static const struct option longopts[] = {{"input", required_argument, NULL, 'i'},
                                             {"quiet", no_argument, NULL, 'q'},
                                             {"help", no_argument, NULL, 'h'},
                                             {0}};
    const char *input = "-";
    bool quiet = false;
    int c;
    while ((c = cli_getopt(argc, argv, "i:qh", longopts)) != -1) {
        if (c == 'i')
            input = optarg;
        else if (c == 'q')
            quiet = true;
        else if (c == 'h') {
            fputs(load_usage, stdout);
            return 0;
        } else
            return cli_usage_error("load");
    }
    if (optind != argc) {
        return cli_wrong_args("load", "accepts no arguments");
    }
    if (!strcmp(input, "-") && isatty(0)) {
        cli_error("load", "requested load from stdin, but stdin is empty");
        return cli_usage_error("load");
    }
    struct store *s = cli_store_open(cli, "load", false);
    if (!s)
        return 1;
    struct imgfs_err err = {0};
    struct digest d;
    struct import_limits limits;
    import_limits_init(&limits);
    int rc = import_source(s, input, NULL, NULL, &limits, &d, &err);
    if (rc < 0) {
        store_close(s);
        cli_report("load", &err);
        return 1;
    }
    if (!quiet) {
        struct store_read *r;
        struct names_ctx nc = {&d, 0};
        if (store_read_begin(s, &r, &err) == 0) {
            store_image_foreach(r, print_name, &nc);
            store_read_end(r);
        }
        if (!nc.n) {
            char str[DIGEST_STR_SIZE];
            digest_str(&d, str);
            printf("Loaded image ID: %s\n", str);
        }
    }
    store_close(s);
    return 0;
}
