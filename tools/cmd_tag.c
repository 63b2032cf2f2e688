#include "../fs/image.h"
#include "../fs/store.h"
#include "cli.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

static const char usage[] = "Usage: imgfs tag SOURCE_IMAGE TARGET_NAME\n\n"
                            "Give an image another name (REPOSITORY[:TAG]).\n";

int cmd_tag(int argc, char **argv, struct cli *cli)
{
    int hrc = cli_help_only(argc, argv, "tag", usage, false);
    if (hrc != -1)
        return hrc;
    argc -= optind - 1;
    argv += optind - 1;
    if (argc != 3) {
        return cli_wrong_args("tag", "requires 2 arguments");
    }
    if (!cli_valid_name(argv[2])) {
        cli_error("tag", "invalid image name `%s`: use lowercase letters, digits, `._-/` and an "
                  "optional `:TAG`", argv[2]);
        return 1;
    }
    struct store *s = cli_store_open(cli, "tag", false);
    if (!s)
        return 1;
    struct imgfs_err err = {0};
    struct store_read *r;
    struct store_batch *b = NULL;
    struct digest d;
    int status = 1;
    if (store_read_begin(s, &r, &err) < 0)
        goto out;
    int rc = image_resolve(r, argv[1], &d, &err);
    store_read_end(r);
    if (rc < 0 || store_batch_begin(s, &b, &err) < 0)
        goto out;
    store_batch_tag(b, argv[2], &d);
    if (store_batch_commit(b, &err) < 0)
        goto out;
    status = 0;
out:
    if (status)
        cli_report("tag", &err);
    store_close(s);
    return status;
}
