/* imgfs save / imgfs load — Docker's names for `export -f docker` and `import`. */
#include "../fs/image.h"
#include "../fs/import.h"
#include "../fs/oci.h"
#include "../fs/store.h"
#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

static const char save_usage[] =
    "Usage: imgfs save [-o FILE] IMAGE [IMAGE...]\n\n"
    "Write images as one docker-save archive (docker load reads it), as\n"
    "`imgfs export -f docker` does for one. Without -o, to standard output when it is not a\n"
    "terminal. Each image is in it once, with the names given for it; a layer is written once.\n\n"
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
    if (!output && isatty(1)) {
        cli_error("save", "cowardly refusing to save to a terminal. Use the -o flag or "
                          "redirect");
        return 1;
    }
    /* Docker's daemon refuses a missing image: exit 1, the message under save's name, before
     * anything is fetched or written */
    struct store *s = cli_store_open(cli, "save", false);
    if (!s)
        return EXIT_IMGFS_FAILED;
    struct imgfs_err err = {0};
    struct store_read *r;
    int found = store_read_begin(s, &r, &err);
    bool began = found == 0;
    for (int i = optind; i < argc && found == 0; i++) {
        struct digest d;
        found = image_resolve(r, argv[i], &d, &err);
    }
    if (began)
        store_read_end(r);
    store_close(s);
    if (found < 0) {
        cli_report("save", &err);
        return err.code == ENOENT ? 1 : EXIT_IMGFS_FAILED;
    }
    for (int i = optind; i < argc; i++)
        if (cli_lazy_complete(cli, argv[i], "save") < 0)
            return EXIT_IMGFS_FAILED;
    if (store_open(cli->root, STORE_READONLY, &s, &err) < 0) {
        cli_report("save", &err);
        return EXIT_IMGFS_FAILED;
    }
    int rc = oci_export(s, (const char *const *)argv + optind, (size_t)(argc - optind),
                        EXPORT_DOCKER, output ? output : "-", &err);
    store_close(s);
    if (rc < 0) {
        cli_report("save", &err);
        return EXIT_IMGFS_FAILED;
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
    struct import_images loaded = {0};
    int rc = import_source(s, input, NULL, NULL, &limits, &d, &loaded, &err);
    store_close(s);
    if (rc < 0) {
        import_images_free(&loaded);
        cli_report("load", &err);
        return 1;
    }
    /* as docker load: each image of the archive in its order, a line per name it carries, the
     * image ID (config digest) for one without */
    for (size_t i = 0; i < loaded.n && !quiet; i++) {
        size_t named = 0;
        for (size_t k = 0; k < loaded.v[i].n_names; k++)
            if (!strchr(loaded.v[i].names[k], '@')) {
                printf("Loaded image: %s\n", loaded.v[i].names[k]);
                named++;
            }
        if (!named) {
            char str[DIGEST_STR_SIZE];
            digest_str(&loaded.v[i].config, str);
            printf("Loaded image ID: %s\n", str);
        }
    }
    if (!loaded.n && !quiet) { /* a rootfs tar: no archive names */
        char str[DIGEST_STR_SIZE];
        digest_str(&d, str);
        printf("Loaded image ID: %s\n", str);
    }
    import_images_free(&loaded);
    return 0;
}
