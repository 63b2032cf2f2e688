/* test_runner_log.c — the container log's pure parts (runner/log.c): Docker's --since/--until
 * time forms, the record's time format, and records written by the monitor's writer read back
 * (line cutting, partial lines, escaping, bytes that are not UTF-8). */
#include "../../runner/ctr_internal.h"
#include "unit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const int64_t S = 1000000000;

static int64_t parse(const char *s, int64_t now)
{
    struct imgfs_err err = {0};
    int64_t out = -1;
    return ctr_log_time_parse(s, now, &out, &err) == 0 ? out : -1;
}

int main(void)
{
    int64_t now = 1796185201 * S + 5;
    CHECK(parse("10m", now) == now - 600 * S, "a duration back from now");
    CHECK(parse("1h30m", now) == now - 5400 * S, "a compound duration");
    CHECK(parse("1.5s", now) == now - 1500000000, "a fractional duration");
    CHECK(parse("250ms", now) == now - 250000000, "milliseconds");
    CHECK(parse("2026-12-02T04:19:57Z", now) == 1796185197 * S, "RFC 3339 in UTC");
    CHECK(parse("2026-12-02T04:19:57.5Z", now) == 1796185197 * S + 500000000, "with a fraction");
    CHECK(parse("2026-12-02T06:19:57+02:00", now) == 1796185197 * S, "with a zone offset");
    CHECK(parse("2026-12-02T04:19:57.140299372Z", now) == 1796185197 * S + 140299372,
          "nanoseconds");
    setenv("TZ", "UTC", 1);
    tzset();
    CHECK(parse("2026-12-02", now) == 1796169600 * S, "the date alone, local time");
    CHECK(parse("2026-12-02T04:19", now) == 1796185140 * S, "no seconds, local time");
    CHECK(parse("1796185197", now) == 1796185197 * S, "Unix seconds");
    CHECK(parse("1796185197.25", now) == 1796185197 * S + 250000000, "Unix seconds.fraction");
    CHECK(parse("yesterday", now) == -1, "a word is refused");
    CHECK(parse("", now) == -1, "empty is refused");
    CHECK(parse("10x", now) == -1, "an unknown unit is refused");
    CHECK(parse("2026-13-02", now) == -1, "month 13 is refused");
    CHECK(parse("2026-12-02T04:19:57+0200", now) == -1, "a zone without a colon is refused");

    char when[40];
    ctr_log_time_format(1796185197 * S + 140, when);
    CHECK(!strcmp(when, "2026-12-02T04:19:57.000000140Z"), "nine digits, as docker logs -t");

    /* the writer's records, read back */
    char path[] = "/tmp/test_runner_log.XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0, "a temp file");
    close(fd);
    struct ctr_log *l = NULL;
    struct imgfs_err err = {0};
    CHECK(ctr_log_open(path, &l, &err) == 0, "open the log");
    ctr_log_write(l, CTR_STDOUT, "one\ntw", 6);
    static const char err_text[] = "err \"q\" \\ \t\x01\xff\n\0nul\n";
    ctr_log_write(l, CTR_STDERR, err_text, sizeof err_text - 1);
    ctr_log_write(l, CTR_STDOUT, "o\n", 2);
    char *big = malloc(40000);
    memset(big, 'a', 40000);
    ctr_log_write(l, CTR_STDOUT, big, 40000);
    free(big);
    ctr_log_write(l, CTR_STDOUT, "\nend", 4);
    ctr_log_close(l);

    FILE *f = fopen(path, "re");
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    const char *want[] = {"one\n", "err \"q\" \\ \t\x01\xef\xbf\xbd\n", "\0nul\n", "two\n"};
    const size_t want_len[] = {4, 16, 5, 4};
    size_t k = 0, big_bytes = 0, big_records = 0;
    bool end_seen = false;
    int64_t last = 0;
    while ((n = getline(&line, &cap, f)) > 0) {
        struct ctr_log_entry e;
        CHECK(ctr_log_parse(line, (size_t)n - 1, &e) == 0, "record %zu parses", k);
        CHECK(e.time_ns > last, "record %zu: later than the one before", k);
        last = e.time_ns;
        if (!e.data)
            break;
        if (k < 4) {
            CHECK(e.len == want_len[k] && !memcmp(e.data, want[k], e.len), "record %zu: text", k);
            CHECK(e.stream == (k == 1 || k == 2 ? CTR_STDERR : CTR_STDOUT), "record %zu: stream",
                  k);
            CHECK(e.time_ns > 1700000000 * S, "record %zu: a time", k);
        } else if (e.data[0] == 'a') {
            big_bytes += e.len;
            big_records++;
        } else {
            end_seen = !strcmp(e.data, "end");
        }
        free(e.data);
        k++;
    }
    CHECK(big_records == 3 && big_bytes == 40001, "a 40000-byte line: 16 KiB records (%zu, %zu)",
          big_records, big_bytes);
    CHECK(end_seen, "an unfinished last line is written at close, without a newline");
    struct ctr_log_entry e;
    CHECK(ctr_log_parse("imgfs: raw", 10, &e) == -1, "a raw line is not a record");
    CHECK(ctr_log_parse("{\"log\":1}", 9, &e) == -1, "a record needs its fields");
    free(line);
    fclose(f);
    unlink(path);
    return unit_summary();
}
