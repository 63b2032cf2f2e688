/* imgfs logs — a detached container's output (stdout and stderr, in order). */
#include "../runner/runner.h"
#include "cli.h"

#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/inotify.h>

static const char usage[] =
    "Usage: imgfs logs [OPTIONS] CONTAINER\n\n"
    "Show the output of a container started with -d (stdout and stderr interleaved as written).\n\n"
    "Options:\n"
    "  -f, --follow     keep printing new output until the container ends\n"
    "  -h, --help       show this help\n";

static int copy_out(int fd)
{
    char buf[65536];
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return (int)n;
        if (write_full(1, buf, (size_t)n) < 0)
            return -1;
    }
}

int cmd_logs(int argc, char **argv, struct cli *cli)
{
    static const struct option longopts[] = {
        {"follow", no_argument, NULL, 'f'}, {"help", no_argument, NULL, 'h'}, {0}};
    bool follow = false;
    int c;
    while ((c = cli_getopt(argc, argv, "fh", longopts)) != -1) {
        switch (c) {
        case 'f':
            follow = true;
            break;
        case 'h':
            fputs(usage, stdout);
            return 0;
        default:
            fprintf(stderr, "See 'imgfs logs --help'.\n");
            return EXIT_IMGFS_FAILED;
        }
    }
    if (optind + 1 != argc) {
        cli_error("logs", "wants exactly one CONTAINER");
        return EXIT_IMGFS_FAILED;
    }
    struct imgfs_err err = {0};
    struct ctr_state s;
    if (ctr_find(cli->run_dir, argv[optind], &s, &err) < 0) {
        cli_report("logs", &err);
        return err.code == ENOENT ? 1 : EXIT_IMGFS_FAILED; /* Docker's 1 for no such container */
    }
    cleanup_free char *path = ctr_log_path(cli->run_dir, s.id);
    cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        /* a foreground container wrote to its terminal: there is no log */
        ctr_state_free(&s);
        return 0;
    }
    cleanup_close int in = follow ? inotify_init1(IN_CLOEXEC | IN_NONBLOCK) : -1;
    if (in >= 0)
        inotify_add_watch(in, path, IN_MODIFY);
    int rc = 0;
    for (;;) {
        if (copy_out(fd) < 0) {
            rc = 1;
            break;
        }
        if (!follow || s.status != CTR_RUNNING)
            break;
        /* the lock tells when the container ended; inotify when there is more to read */
        struct ctr_state now;
        struct imgfs_err ignored;
        if (ctr_find(cli->run_dir, s.id, &now, &ignored) < 0 || now.status != CTR_RUNNING) {
            if (now.name)
                ctr_state_free(&now);
            copy_out(fd);
            break;
        }
        ctr_state_free(&now);
        struct pollfd p = {in, POLLIN, 0};
        if (poll(&p, 1, 200) > 0) {
            char ev[4096];
            while (read(in, ev, sizeof ev) > 0)
                ;
        }
    }
    ctr_state_free(&s);
    return rc;
}
