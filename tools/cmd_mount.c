/* imgfs mount — an image as a read-only directory tree (fs/mount.h). */
#include "../fs/lazy.h"
#include "../fs/mount.h"
#include "../fs/registry.h"
#include "cli.h"

#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

static void mount_usage(FILE *f)
{
    fprintf(f,
            "Usage: imgfs mount [OPTIONS] IMAGE DIR\n\n"
            "Mount IMAGE (a name, a digest or a unique digest prefix) read-only on the\n"
            "directory DIR, through FUSE, without unpacking it. Returns once the mount is\n"
            "live, leaving a daemon that serves it until `imgfs umount DIR`.\n\n"
            "The mount is nosuid and nodev, and only the user who made it can enter it:\n"
            "an image is untrusted, its setuid programs must not make anyone root.\n\n"
            "Options:\n"
            "      --allow-other  let other users in (the kernel still checks file modes)\n"
            "      --suid         honour the image's setuid/setgid bits (root only; with\n"
            "                     --allow-other any user can then run them as their owner)\n"
            "  -f, --foreground   serve in this process until unmounted (SIGINT/SIGTERM unmount)\n"
            "  -d, --debug        print every FUSE request (implies --foreground)\n"
            "      --threads N    at most N worker threads (default: libfuse's)\n"
            "      --fetch-timeout DURATION\n"
            "                     a lazily pulled image: how long a read may wait for its\n"
            "                     chunks, retries included, before it fails with EIO\n"
            "                     (default 5s; 500ms, 2s, 1m)\n"
            "      --prefetch WHAT  a lazily pulled image: what to fetch in the background,\n"
            "                     behind reads: `trace` or `landmark` (the recorded start-up's\n"
            "                     files, the default), `all` (everything) or `none`\n"
            "      --tls-verify[=BOOL], --ca-file FILE, --authfile FILE\n"
            "                     IMAGE from a registry: how its lazy pull and every later\n"
            "                     fetch of its content talk to the registry (see `imgfs pull\n"
            "                     --help`); remembered for that registry\n"
            "  -h, --help         show this help\n");
}

int cmd_mount(int argc, char **argv, struct cli *cli)
{
    static const struct option longopts[] = {
        {"foreground", no_argument, NULL, 'f'},
        {"debug", no_argument, NULL, 'd'},
        {"threads", required_argument, NULL, 'T'},
        {"allow-other", no_argument, NULL, 'A'},
        {"suid", no_argument, NULL, 'S'},
        {"fetch-timeout", required_argument, NULL, 'F'},
        {"prefetch", required_argument, NULL, 'P'},
        {"help", no_argument, NULL, 'h'},
        CLI_REGISTRY_OPTIONS,
        {0},
    };
    struct mount_options o = {0};
    struct registry_options ro = {0};
    int c;
    while ((c = cli_getopt(argc, argv, "+:fdh", longopts)) != -1) {
        switch (c) {
        case 'f':
            o.foreground = true;
            break;
        case 'd':
            o.debug = o.foreground = true;
            break;
        case 'T': {
            char *end;
            errno = 0;
            long n = strtol(optarg, &end, 10);
            if (errno || *end || end == optarg || n < 1 || n > 1024) {
                cli_error("mount", "--threads wants a number from 1 to 1024, not `%s`", optarg);
                return EXIT_IMGFS_FAILED;
            }
            o.threads = (int)n;
            break;
        }
        case 'A':
            o.allow_other = true;
            break;
        case 'F':
            if (cli_parse_fetch_timeout("mount", optarg, &o.fetch_timeout_ms) < 0)
                return EXIT_IMGFS_FAILED;
            break;
        case 'P':
            if (cli_parse_prefetch("mount", optarg, &o.prefetch) < 0)
                return EXIT_IMGFS_FAILED;
            break;
        case 'S':
            if (geteuid() != 0) {
                cli_error("mount", "--suid needs root (FUSE mounts of other users are nosuid)");
                return EXIT_IMGFS_FAILED;
            }
            o.suid = true;
            break;
        case 'h':
            mount_usage(stdout);
            return 0;
        default:
            if (cli_registry_option(c, optarg, &ro, "mount") == 0)
                break;
            return cli_usage_error("mount");
        }
    }
    if (argc - optind != 2)
        return cli_wrong_args("mount", "requires exactly 2 arguments, IMAGE and DIR");
    struct imgfs_err err = {0};
    if (cli_lazy_ensure(cli, argv[optind], &ro, "mount") < 0)
        return EXIT_IMGFS_FAILED;
    if (mount_image(cli->root, argv[optind], argv[optind + 1], &o, &err) < 0) {
        cli_report("mount", &err);
        return EXIT_IMGFS_FAILED;
    }
    return 0;
}
