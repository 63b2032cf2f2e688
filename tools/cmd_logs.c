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
    "  -n, --tail N     only the last N lines (\"all\": every line, the default)\n"
    "  -h, --help       show this help\n";

/* Where the last n lines of the file start (a final line without a newline counts as one). */
static off_t tail_offset(int fd, long n)
{
    off_t end = lseek(fd, 0, SEEK_END), pos = end;
    if (end <= 0 || n < 0)
        return 0;
    long seen = 0;
    char buf[65536];
    bool last_byte = true;
    while (pos > 0) {
        size_t len = pos > (off_t)sizeof buf ? sizeof buf : (size_t)pos;
        pos -= (off_t)len;
        if (pread(fd, buf, len, pos) != (ssize_t)len)
            return 0;
        for (size_t i = len; i-- > 0;) {
            if (buf[i] == '\n' && !(last_byte && pos + (off_t)i == end - 1)) {
                if (++seen == n)
                    return pos + (off_t)i + 1;
            }
            last_byte = false;
        }
    }
    return 0;
}

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
    static const struct option longopts[] = {{"follow", no_argument, NULL, 'f'},
                                             {"tail", required_argument, NULL, 'n'},
                                             {"help", no_argument, NULL, 'h'},
                                             {0}};
    bool follow = false;
    long tail = -1;
    int c;
    while ((c = cli_getopt(argc, argv, "fn:h", longopts)) != -1) {
        switch (c) {
        case 'f':
            follow = true;
            break;
        case 'n': {
            char *end;
            tail = strcmp(optarg, "all") ? strtol(optarg, &end, 10) : -1;
            if (strcmp(optarg, "all") && (*end || end == optarg || tail < 0)) {
                cli_error("logs", "invalid argument \"%s\" for \"%s\" flag: not a number", optarg,
                          cli_flag_typed(argv, c));
                return cli_usage_error("logs");
            }
            break;
        }
        case 'h':
            fputs(usage, stdout);
            return 0;
        default:
            fprintf(stderr, "See 'imgfs logs --help'.\n");
            return EXIT_IMGFS_FAILED;
        }
    }
    if (optind + 1 != argc) {
        return cli_wrong_args("logs", "requires 1 argument");
    }
    struct ctr_state s;
    int found = cli_find_container(cli, "logs", argv[optind], &s);
    if (found != 0)
        return found;
    cleanup_free char *path = ctr_log_path(cli->run_dir, s.id);
    cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        /* a foreground container wrote to its terminal: there is no log */
        ctr_state_free(&s);
        return 0;
    }
    if (tail >= 0) {
        off_t start = tail == 0 ? lseek(fd, 0, SEEK_END) : tail_offset(fd, tail);
        if (lseek(fd, start, SEEK_SET) < 0) {
            cli_error("logs", "seeking in `%s`: %s", path, strerror(errno));
            ctr_state_free(&s);
            return 1;
        }
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
        if (!follow || (s.status != CTR_RUNNING && s.status != CTR_RESTARTING))
            break;
        /* the lock tells when the container ended; inotify when there is more to read */
        struct ctr_state now;
        struct imgfs_err ignored;
        if (ctr_find(cli->run_dir, s.id, &now, &ignored) < 0 ||
            (now.status != CTR_RUNNING && now.status != CTR_RESTARTING)) {
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
