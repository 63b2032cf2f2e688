#include "../fs/import.h"
#include "../fs/store.h"
#include "cli.h"

#include <getopt.h>
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
    "  -q, --quiet      print nothing on success\n"
    "  -h, --help       show this help\n";

int cmd_import(int argc, char **argv, struct cli *cli)
{
    static const struct option opts[] = {{"tag", required_argument, 0, 't'},
                                         {"change", required_argument, 0, 'c'},
                                         {"quiet", no_argument, 0, 'q'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    const char *name = NULL;
    bool quiet = false;
    cleanup_free char **changes = xcalloc(argc + 1, sizeof *changes);
    size_t n_changes = 0;
    int c;
    while ((c = cli_getopt(argc, argv, "+t:c:qh", opts)) != -1) {
        switch (c) {
        case 't': name = optarg; break;
        case 'c': changes[n_changes++] = optarg; break;
        case 'q': quiet = true; break;
        case 'h': fputs(usage, stdout); return 0;
        default:
            return cli_usage_error("import");
        }
    }
    if (optind + 1 != argc) {
        cli_error("import", "expected exactly one SOURCE (see 'imgfs import --help')");
        return 1;
    }
    if (name && !cli_valid_name(name)) {
        cli_error("import", "invalid image name `%s`: use lowercase letters, digits, `._-/` and "
                  "an optional `:TAG`", name);
        return 1;
    }
    struct store *s = cli_store_open(cli, "import", false);
    if (!s)
        return 1;
    struct imgfs_err err = {0};
    struct digest d;
    int rc = import_source(s, argv[optind], name, changes, &d, &err);
    store_close(s);
    if (rc < 0) {
        cli_report("import", &err);
        return 1;
    }
    if (!quiet) {
        char str[DIGEST_STR_SIZE];
        digest_str(&d, str);
        puts(str);
    }
    return 0;
}
