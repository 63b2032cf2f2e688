/* imgfs logs — a container's output from its log (runner/log.c: Docker's json-file records),
 * stdout and stderr apart, filtered by time. */
#include "../runner/runner.h"
#include "cli.h"

#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/inotify.h>
#include <time.h>

static const char usage[] =
    "Usage: imgfs logs [OPTIONS] CONTAINER\n\n"
    "Show a container's output (detached or not): its stdout on our stdout, its stderr on our\n"
    "stderr, in the order the monitor read them.\n\n"
    "Options:\n"
    "  -f, --follow        keep printing new output until the container ends\n"
    "  -n, --tail N        only the last N lines (\"all\": every line, the default)\n"
    "  -t, --timestamps    show when each line was read (RFC 3339, nanoseconds, UTC)\n"
    "      --since TIME    only lines from TIME on: RFC 3339 (2026-12-02T10:00:00Z), Unix\n"
    "                      seconds, or a duration before now (10m, 1h30m)\n"
    "      --until TIME    only lines up to TIME (the same forms)\n"
    "  -h, --help          show this help\n";

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

struct log_filter {
    bool timestamps;
    int64_t since, until; /* Unix ns, both inclusive as Docker's; 0 = none */
};

/* Print the complete records in b (keeping an unfinished last line there for the next read). */
static int print_records(struct buf *b, const struct log_filter *f)
{
    size_t start = 0;
    int rc = 0;
    for (;;) {
        const char *line = (const char *)b->data + start;
        const char *nl = memchr(line, '\n', b->len - start);
        if (!nl)
            break;
        size_t len = (size_t)(nl - line);
        start += len + 1;
        struct ctr_log_entry e;
        if (ctr_log_parse(line, len, &e) < 0) {
            /* a line imgfs wrote raw (a detached monitor's own stderr) */
            if (write_full(2, line, len + 1) < 0)
                rc = -1;
            continue;
        }
        if ((!f->since || e.time_ns >= f->since) && (!f->until || e.time_ns <= f->until)) {
            int fd = e.stream == CTR_STDERR ? 2 : 1;
            char when[40];
            if (f->timestamps) {
                ctr_log_time_format(e.time_ns, when);
                size_t n = strlen(when);
                when[n] = ' ';
                if (write_full(fd, when, n + 1) < 0)
                    rc = -1;
            }
            if (write_full(fd, e.data, e.len) < 0)
                rc = -1;
        }
        free(e.data);
    }
    memmove(b->data, b->data + start, b->len - start);
    b->len -= start;
    return rc;
}

static int copy_out(int fd, struct buf *b, const struct log_filter *f)
{
    for (;;) {
        buf_reserve(b, 65536);
        ssize_t n = read(fd, b->data + b->len, 65536);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return (int)n;
        b->len += (size_t)n;
        if (print_records(b, f) < 0)
            return -1;
    }
}

static int parse_time(char **argv, int c, const char *value, int64_t *out)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    struct imgfs_err err = {0};
    if (ctr_log_time_parse(value, (int64_t)now.tv_sec * 1000000000 + now.tv_nsec, out, &err) == 0)
        return 0;
    cli_error("logs", "invalid value for \"%s\": %s", cli_flag_typed(argv, c) + 2, err.msg);
    return -1;
}

int cmd_logs(int argc, char **argv, struct cli *cli)
{
    enum { OPT_SINCE = 256, OPT_UNTIL };
    static const struct option longopts[] = {{"follow", no_argument, NULL, 'f'},
                                             {"tail", required_argument, NULL, 'n'},
                                             {"timestamps", no_argument, NULL, 't'},
                                             {"since", required_argument, NULL, OPT_SINCE},
                                             {"until", required_argument, NULL, OPT_UNTIL},
                                             {"help", no_argument, NULL, 'h'},
                                             {0}};
    struct log_filter filter = {0};
    bool follow = false;
    long tail = -1;
    int c;
    while ((c = cli_getopt(argc, argv, "fn:th", longopts)) != -1) {
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
        case 't':
            filter.timestamps = true;
            break;
        case OPT_SINCE:
        case OPT_UNTIL:
            if (parse_time(argv, c, optarg, c == OPT_SINCE ? &filter.since : &filter.until) < 0)
                return cli_usage_error("logs");
            break;
        case 'h':
            fputs(usage, stdout);
            return 0;
        default:
            return cli_usage_error("logs");
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
        /* a container of an older imgfs, run in the foreground: it has no log */
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
    struct buf pending = {0};
    for (;;) {
        if (copy_out(fd, &pending, &filter) < 0) {
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
            copy_out(fd, &pending, &filter);
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
    buf_free(&pending);
    ctr_state_free(&s);
    return rc;
}
