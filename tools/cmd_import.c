#include "../fs/import.h"
#include "../fs/store.h"
#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

static const char usage[] =
    "Usage: imgfs import [OPTIONS] SOURCE\n\n"
    "Import an image into the store. SOURCE is a rootfs tarball (plain, gzip, xz, zstd, bzip2,\n"
    "...), a `docker save` archive, an OCI image layout (directory or tar), or - for standard\n"
    "input. Prints the image digest.\n\n"
    "Options:\n"
    "  -t, --tag NAME   name the image (default: the archive's own names, else untagged)\n"
    "  -c, --change INSTRUCTION\n"
    "                   set the config of a rootfs image, as a Dockerfile line: CMD,\n"
    "                   ENTRYPOINT, ENV, EXPOSE, LABEL, STOPSIGNAL, USER, VOLUME, WORKDIR\n"
    "                   (repeatable), e.g. -c 'CMD [\"/app\"]' -c 'EXPOSE 8080'\n"
    "      --max-size SIZE\n"
    "                   refuse an import whose files hold more than SIZE bytes of content in\n"
    "                   all (after decompression; holes of sparse files do not count); suffixes\n"
    "                   k, m, g, t; 0 = no limit (default 256g, or IMGFS_IMPORT_MAX_SIZE)\n"
    "      --max-files N\n"
    "                   refuse an import of more than N entries in all its layers; 0 = no limit\n"
    "                   (default 4000000, or IMGFS_IMPORT_MAX_FILES)\n"
    "  -q, --quiet      print nothing on success\n"
    "  -h, --help       show this help\n";

/* --max-size / --max-files, or their environment variables; false after printing an error. */
static bool set_limit(uint64_t *limit, const char *value, const char *what, bool bytes)
{
    if (!value)
        return true;
    if (bytes && cli_parse_bytes(value, limit) == 0)
        return true;
    char *end;
    errno = 0;
    unsigned long long n = strtoull(value, &end, 10);
    if (!bytes && !errno && end != value && !*end && *value != '-') {
        *limit = n;
        return true;
    }
    cli_error("import", "invalid %s `%s`", what, value);
    return false;
}

int cmd_import(int argc, char **argv, struct cli *cli)
{
    enum { OPT_MAX_SIZE = 256, OPT_MAX_FILES };
    static const struct option opts[] = {{"tag", required_argument, 0, 't'},
                                         {"change", required_argument, 0, 'c'},
                                         {"max-size", required_argument, 0, OPT_MAX_SIZE},
                                         {"max-files", required_argument, 0, OPT_MAX_FILES},
                                         {"quiet", no_argument, 0, 'q'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    const char *name = NULL;
    bool quiet = false;
    struct import_limits limits;
    import_limits_init(&limits);
    if (!set_limit(&limits.max_bytes, getenv("IMGFS_IMPORT_MAX_SIZE"), "IMGFS_IMPORT_MAX_SIZE",
                   true) ||
        !set_limit(&limits.max_files, getenv("IMGFS_IMPORT_MAX_FILES"), "IMGFS_IMPORT_MAX_FILES",
                   false))
        return 125;
    cleanup_free char **changes = xcalloc(argc + 1, sizeof *changes);
    size_t n_changes = 0;
    int c;
    while ((c = cli_getopt(argc, argv, "+t:c:qh", opts)) != -1) {
        switch (c) {
        case 't':
            name = optarg;
            break;
        case 'c':
            changes[n_changes++] = optarg;
            break;
        case OPT_MAX_SIZE:
            if (!set_limit(&limits.max_bytes, optarg, "--max-size", true))
                return 125;
            break;
        case OPT_MAX_FILES:
            if (!set_limit(&limits.max_files, optarg, "--max-files", false))
                return 125;
            break;
        case 'q':
            quiet = true;
            break;
        case 'h':
            fputs(usage, stdout);
            return 0;
        default:
            return cli_usage_error("import");
        }
    }
    if (optind + 1 != argc)
        return cli_wrong_args("import", "requires exactly 1 argument (the SOURCE)");
    if (name && !cli_valid_name(name)) {
        cli_error("import",
                  "invalid image name `%s`: use lowercase letters, digits, `._-/` and "
                  "an optional `:TAG`",
                  name);
        return 1;
    }
    struct store *s = cli_store_open(cli, "import", false);
    if (!s)
        return 1;
    struct imgfs_err err = {0};
    struct digest d;
    int rc = import_source(s, argv[optind], name, changes, &limits, &d, NULL, &err);
    store_close(s);
    if (rc < 0) {
        cli_report("import", &err);
        if (err.code == EFBIG)
            fputs("imgfs import: raise the limit with --max-size / --max-files (or "
                  "IMGFS_IMPORT_MAX_SIZE / IMGFS_IMPORT_MAX_FILES)\n",
                  stderr);
        return 1;
    }
    if (!quiet) {
        char str[DIGEST_STR_SIZE];
        digest_str(&d, str);
        puts(str);
    }
    return 0;
}
