/* imgfs umount — undo `imgfs mount`; the daemon exits when its mount is gone. */
#include "../fs/mount.h"
#include "cli.h"

#include <getopt.h>
#include <stdio.h>

static void umount_usage(FILE *f)
{
    fprintf(f, "Usage: imgfs umount [-l] DIR\n\n"
               "Unmount an image mounted with `imgfs mount`. DIR must be an imgfs mount.\n\n"
               "Options:\n"
               "  -l, --lazy   detach now even when busy; the mount goes once unused\n"
               "  -h, --help   show this help\n");
}

int cmd_umount(int argc, char **argv, struct cli *cli)
{
    static const struct option longopts[] = {
        {"lazy", no_argument, NULL, 'l'},
        {"help", no_argument, NULL, 'h'},
        {0},
    };
    bool lazy = false;
    int c;
    while ((c = cli_getopt(argc, argv, "+lh", longopts)) != -1) {
        switch (c) {
        case 'l':
            lazy = true;
            break;
        case 'h':
            umount_usage(stdout);
            return 0;
        default:
            return cli_usage_error("umount");
        }
    }
    if (argc - optind != 1)
        return cli_wrong_args("umount", "requires exactly 1 argument, DIR");
    struct imgfs_err err = {0};
    if (mount_unmount(cli->root, argv[optind], lazy, &err) < 0) {
        cli_report("umount", &err);
        return EXIT_IMGFS_FAILED;
    }
    return 0;
}
