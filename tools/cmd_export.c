/* imgfs export — write an image as an OCI layout tar, a docker-save archive or a rootfs tar. */
#include "../fs/oci.h"
#include "../fs/store.h"
#include "cli.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static void export_usage(FILE *f)
{
    fprintf(f,
            "Usage: imgfs export [OPTIONS] IMAGE\n\n"
            "Write an image as a tar archive.\n\n"
            "Options:\n"
            "  -o, --output FILE      write to FILE (\"-\": standard output; the default when\n"
            "                         standard output is not a terminal)\n"
            "  -f, --format FORMAT    oci (an OCI image layout, the default), estargz (an OCI\n"
            "                         layout with eStargz layers, lazily pullable), docker\n"
            "                         (docker save format), or rootfs (the image's merged tree)\n"
            "  -h, --help             show this help\n\n"
            "A lazily pulled image's content still in the registry is fetched first.\n");
}

int cmd_export(int argc, char **argv, struct cli *cli)
{
    static const struct option opts[] = {
        {"output", required_argument, NULL, 'o'},
        {"format", required_argument, NULL, 'f'},
        {"help", no_argument, NULL, 'h'},
        {0},
    };
    const char *output = NULL, *format_name = "oci";
    int c;
    while ((c = cli_getopt(argc, argv, "o:f:h", opts)) != -1) {
        switch (c) {
        case 'o':
            output = optarg;
            break;
        case 'f':
            format_name = optarg;
            break;
        case 'h':
            export_usage(stdout);
            return 0;
        default:
            export_usage(stderr);
            return EXIT_IMGFS_FAILED;
        }
    }
    if (optind + 1 != argc)
        return cli_wrong_args("export", "requires exactly 1 argument");
    const char *ref = argv[optind];
    enum export_format format;
    if (!strcmp(format_name, "oci"))
        format = EXPORT_OCI;
    else if (!strcmp(format_name, "estargz"))
        format = EXPORT_ESTARGZ;
    else if (!strcmp(format_name, "docker"))
        format = EXPORT_DOCKER;
    else if (!strcmp(format_name, "rootfs"))
        format = EXPORT_ROOTFS;
    else {
        cli_error("export", "unknown format `%s` (oci, estargz, docker or rootfs)", format_name);
        return EXIT_IMGFS_FAILED;
    }
    if (!output)
        output = "-";
    if (!strcmp(output, "-") && isatty(STDOUT_FILENO)) {
        cli_error("export", "refusing to write a tar archive to a terminal; use -o FILE or a pipe");
        return EXIT_IMGFS_FAILED;
    }

    if (cli_lazy_complete(cli, ref, "export") < 0)
        return EXIT_IMGFS_FAILED;
    struct imgfs_err err = {0};
    struct store *s;
    if (store_open(cli->root, STORE_READONLY, &s, &err) < 0) {
        cli_report("export", &err);
        return EXIT_IMGFS_FAILED;
    }
    int ret = oci_export(s, &ref, 1, format, output, &err);
    store_close(s);
    if (ret < 0) {
        cli_report("export", &err);
        return EXIT_IMGFS_FAILED;
    }
    return 0;
}
