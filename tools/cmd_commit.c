/* imgfs commit — a container's changes (its overlay upper directory) as a new image, like
 * `docker commit`. The work is image_from_upper (fs/layerbuild.h). */
#include "../fs/digest.h"
#include "../fs/layerbuild.h"
#include "../fs/store.h"
#include "../runner/runner.h"
#include "cli.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static const char usage[] =
    "Usage: imgfs commit [OPTIONS] CONTAINER [REPOSITORY[:TAG]]\n\n"
    "Create a new image from a container's changes: its writable layer becomes one new layer on\n"
    "the container's image (deleted files as OCI whiteouts). Prints the image digest.\n\n"
    "Options:\n"
    "  -a, --author TEXT         author (e.g. \"Jane Doe <jane@example.com>\")\n"
    "  -c, --change INSTRUCTION  apply a Dockerfile config line to the image: CMD, ENTRYPOINT,\n"
    "                            ENV, EXPOSE, LABEL, STOPSIGNAL, USER, VOLUME, WORKDIR\n"
    "                            (repeatable)\n"
    "  -m, --message TEXT        commit message (the history entry's comment)\n"
    "  -p, --pause               accepted for Docker compatibility; imgfs does not pause a "
    "running\n"
    "                            container (files it writes during the commit may be torn)\n"
    "  -q, --quiet               print nothing on success\n"
    "  -h, --help                show this help\n\n"
    "With SOURCE_DATE_EPOCH set, the image's creation time is that time and later file times\n"
    "are clamped to it, so the same changes give the same digest.\n";

int cmd_commit(int argc, char **argv, struct cli *cli)
{
    static const struct option opts[] = {{"author", required_argument, 0, 'a'},
                                         {"change", required_argument, 0, 'c'},
                                         {"message", required_argument, 0, 'm'},
                                         {"pause", optional_argument, 0, 'p'},
                                         {"quiet", no_argument, 0, 'q'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    struct image_from_upper_options o = {.created = (int64_t)time(NULL), .mtime_clamp = -1};
    bool quiet = false;
    cleanup_free char **changes = xcalloc((size_t)argc + 1, sizeof *changes);
    size_t n_changes = 0;
    int c;
    while ((c = cli_getopt(argc, argv, "+a:c:m:pqh", opts)) != -1) {
        switch (c) {
        case 'a':
            o.author = optarg;
            break;
        case 'c':
            changes[n_changes++] = optarg;
            break;
        case 'm':
            o.comment = optarg;
            break;
        case 'p':
            break;
        case 'q':
            quiet = true;
            break;
        case 'h':
            fputs(usage, stdout);
            return 0;
        default:
            return cli_usage_error("commit");
        }
    }
    if (optind >= argc || argc - optind > 2) {
        return cli_wrong_args("commit", "requires at least 1 and at most 2 arguments");
    }
    const char *ref = argv[optind];
    cleanup_free char *name = optind + 1 < argc ? store_name_normalize(argv[optind + 1]) : NULL;
    if (name && !cli_valid_name(name)) {
        cli_error("commit",
                  "invalid image name `%s`: use lowercase letters, digits, `._-/` and "
                  "an optional `:TAG`",
                  argv[optind + 1]);
        return EXIT_IMGFS_FAILED;
    }
    const char *sde = getenv("SOURCE_DATE_EPOCH");
    if (sde && *sde) {
        char *end;
        long long v = strtoll(sde, &end, 10);
        if (*end || v < 0) {
            cli_error("commit", "SOURCE_DATE_EPOCH `%s` is not a number of seconds", sde);
            return EXIT_IMGFS_FAILED;
        }
        o.created = o.mtime_clamp = v;
    }
    o.name = name;
    o.mount_points = ctr_mount_points;
    o.changes = changes;

    struct imgfs_err err = {0};
    struct ctr_state st;
    int found = cli_find_container(cli, "commit", ref, &st);
    if (found != 0)
        return found;
    int rc = 1;
    cleanup_free char *upper = ctr_upper_path(cli->run_dir, st.id);
    /* the stored image itself (its manifest): two images may share a config */
    cleanup_free char *parent = st.mount_key ? xasprintf("sha256:%s", st.mount_key) : NULL;
    if (!parent) {
        cli_error("commit",
                  "container %.12s runs a rootfs directory, not an image: nothing to "
                  "commit it on",
                  st.id);
        goto out;
    }
    o.parent = parent;
    o.created_by = st.command;
    struct store *s = cli_store_open(cli, "commit", false);
    if (!s)
        goto out;
    struct digest d;
    int r = image_from_upper(s, upper, &o, &d, &err);
    store_close(s);
    if (r < 0) {
        err_ctx(&err, "container %.12s", st.id);
        cli_report("commit", &err);
        goto out;
    }
    if (!quiet) {
        char str[DIGEST_STR_SIZE];
        digest_str(&d, str);
        puts(str);
    }
    rc = 0;
out:
    ctr_state_free(&st);
    return rc;
}
