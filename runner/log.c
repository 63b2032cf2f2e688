/* log.c — a container's log, RUN_DIR/containers/ID/ctr.log, in Docker's json-file format: one
 * JSON object per line, {"log":"TEXT","stream":"stdout"|"stderr","time":"RFC 3339, ns"}, written
 * by the monitor as it copies the container's output (docs/runner.md, "Logs"). */
#include "ctr_internal.h"

#include <ctype.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* Docker cuts a line this long into partial records ("log" without the newline) */
#define LOG_LINE_MAX 16384

struct ctr_log {
    int fd;
    struct buf pending[2]; /* per stream: the start of a line not ended yet */
    struct buf out;        /* the records of one write */
    int64_t last_ns;       /* the time of the last record: each one gets a later one */
    int64_t second;        /* the second `stamp` holds, formatted */
    char stamp[40];
};

int ctr_log_open(const char *path, struct ctr_log **out, struct imgfs_err *err)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0)
        return err_sys(err, errno, "creating `%s`", path);
    struct ctr_log *l = xcalloc(1, sizeof *l);
    l->fd = fd;
    *out = l;
    return 0;
}

/* Length of the valid UTF-8 sequence at s (at most n bytes), 0 when it is not one. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    if (s[0] < 0x80)
        return 1;
    size_t len = (s[0] & 0xe0) == 0xc0   ? 2
                 : (s[0] & 0xf0) == 0xe0 ? 3
                 : (s[0] & 0xf8) == 0xf0 ? 4
                                         : 0;
    if (!len || len > n || (len == 2 && s[0] < 0xc2))
        return 0;
    for (size_t i = 1; i < len; i++)
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    /* only the bytes of the sequence are read: len of them are there */
    uint32_t cp = len == 2   ? (s[0] & 0x1fu) << 6 | (s[1] & 0x3fu)
                  : len == 3 ? (s[0] & 0x0fu) << 12 | (s[1] & 0x3fu) << 6 | (s[2] & 0x3fu)
                             : (s[0] & 0x07u) << 18 | (s[1] & 0x3fu) << 12 | (s[2] & 0x3fu) << 6 |
                                   (s[3] & 0x3fu);
    if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
        (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
        return 0;
    return len;
}

void ctr_log_time_format(int64_t ns, char out[40])
{
    time_t t = (time_t)(ns / 1000000000);
    struct tm tm;
    gmtime_r(&t, &tm);
    size_t n = strftime(out, 40, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, 40 - n, ".%09ldZ", (long)(ns % 1000000000));
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* One record, appended to out. Bytes that are not UTF-8 become U+FFFD, as Go's encoder
 * (Docker's) writes them. Written by hand, not with jansson: a container printing a million
 * short lines made the monitor spend a second of CPU in json_pack/json_dumps alone; the escaping
 * below is JSON's (RFC 8259 §7), and `logs` reads the records back with jansson. */
/* Each record gets the time it is written at, later than the one before (so --since and --until
 * can tell two lines of one read apart, and the file's order is the time order); the date and
 * time of day are formatted once a second. */
static const char *record_time(struct ctr_log *l, char out[40])
{
    int64_t t = now_ns();
    if (t <= l->last_ns)
        t = l->last_ns + 1;
    l->last_ns = t;
    if (t / 1000000000 != l->second || !l->stamp[0]) {
        l->second = t / 1000000000;
        ctr_log_time_format(t, l->stamp);
    }
    memcpy(out, l->stamp, 40);
    snprintf(out + 20, 20, "%09ldZ", (long)(t % 1000000000)); /* after "YYYY-MM-DDTHH:MM:SS." */
    return out;
}

static void emit(struct ctr_log *l, int stream, const char *data, size_t len)
{
    struct buf *out = &l->out;
    char when[40];
    record_time(l, when);
    static const char hex[] = "0123456789abcdef";
    const unsigned char *s = (const unsigned char *)data;
    buf_reserve(out, len + 96);
    buf_append(out, "{\"log\":\"", 8);
    size_t run = 0; /* bytes copied as they are, waiting to be appended */
    for (size_t i = 0; i < len;) {
        size_t k = s[i] >= 0x20 && s[i] != '"' && s[i] != '\\' ? utf8_len(s + i, len - i) : 0;
        if (k) {
            i += k;
            run += k;
            continue;
        }
        buf_append(out, s + i - run, run);
        run = 0;
        char esc[6] = {'\\', 0};
        size_t n = 2;
        switch (s[i]) {
        case '"':
            esc[1] = '"';
            break;
        case '\\':
            esc[1] = '\\';
            break;
        case '\n':
            esc[1] = 'n';
            break;
        case '\t':
            esc[1] = 't';
            break;
        case '\r':
            esc[1] = 'r';
            break;
        default:
            if (s[i] < 0x20) {
                memcpy(esc + 1, "u00", 3);
                esc[4] = hex[s[i] >> 4];
                esc[5] = hex[s[i] & 15];
                n = 6;
            } else {
                memcpy(esc, "\xef\xbf\xbd", 3); /* not UTF-8: U+FFFD */
                n = 3;
            }
        }
        buf_append(out, esc, n);
        i++;
    }
    buf_append(out, s + len - run, run);
    const char *name = stream == CTR_STDERR ? "stderr" : "stdout";
    char tail[96];
    int n = snprintf(tail, sizeof tail, "\",\"stream\":\"%s\",\"time\":\"%s\"}\n", name, when);
    buf_append(out, tail, (size_t)n);
}

/* The records of one read go out in one write(2): whole lines only, so a reader of the file never
 * sees half a record, and a million short lines are not a million system calls. */
static void emit_all(struct ctr_log *l, int stream, const char *data, size_t len, bool flush)
{
    struct buf *p = &l->pending[stream == CTR_STDERR];
    l->out.len = 0;
    while (len) {
        const char *nl = memchr(data, '\n', len);
        size_t take = nl ? (size_t)(nl - data) + 1 : len;
        if (p->len + take > LOG_LINE_MAX)
            take = LOG_LINE_MAX - p->len;
        if (!p->len && (take == LOG_LINE_MAX || data[take - 1] == '\n')) {
            emit(l, stream, data, take); /* a whole line: no copy */
        } else {
            buf_append(p, data, take);
            if (p->data[p->len - 1] == '\n' || p->len == LOG_LINE_MAX) {
                emit(l, stream, (const char *)p->data, p->len);
                p->len = 0;
            }
        }
        data += take;
        len -= take;
    }
    if (flush && p->len) {
        emit(l, stream, (const char *)p->data, p->len);
        p->len = 0;
    }
    if (l->out.len)
        (void)!write_full(l->fd, l->out.data, l->out.len);
}

void ctr_log_write(struct ctr_log *l, int stream, const char *data, size_t len)
{
    emit_all(l, stream, data, len, false);
}

void ctr_log_flush(struct ctr_log *l)
{
    if (!l)
        return;
    emit_all(l, CTR_STDOUT, "", 0, true);
    emit_all(l, CTR_STDERR, "", 0, true);
}

void ctr_log_close(struct ctr_log *l)
{
    if (!l)
        return;
    ctr_log_flush(l);
    for (int i = 0; i < 2; i++)
        buf_free(&l->pending[i]);
    buf_free(&l->out);
    close(l->fd);
    free(l);
}

void ctr_log_note(const char *run_dir, const char *id, const char *line)
{
    cleanup_free char *path = ctr_log_path(run_dir, id);
    struct ctr_log l = {.fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC)};
    if (l.fd < 0)
        return; /* the container is gone, or never had a log */
    cleanup_free char *text = xasprintf("%s\n", line);
    emit_all(&l, CTR_STDERR, text, strlen(text), true);
    buf_free(&l.pending[1]);
    buf_free(&l.out);
    close(l.fd);
}

/* ---- reading ---- */

/* "2006-01-02T15:04:05[.999999999](Z|±07:00)"; without a zone (local_ok) it is local time.
 * Also the shorter "2006-01-02T15:04", "2006-01-02T15" and "2006-01-02" of Docker's --since. */
static int parse_rfc3339(const char *s, bool local_ok, int64_t *out)
{
    struct tm tm = {0};
    int n = 0;
    if (sscanf(s, "%4d-%2d-%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &n) != 3 || n != 10)
        return -1;
    const char *p = s + n;
    if (*p == 'T') {
        int k = 0;
        if (sscanf(p, "T%2d%n", &tm.tm_hour, &k) != 1 || k != 3)
            return -1;
        p += k;
        if (*p == ':') {
            if (sscanf(p, ":%2d%n", &tm.tm_min, &k) != 1 || k != 3)
                return -1;
            p += k;
            if (*p == ':') {
                if (sscanf(p, ":%2d%n", &tm.tm_sec, &k) != 1 || k != 3)
                    return -1;
                p += k;
            }
        }
    }
    int64_t frac = 0;
    if (*p == '.') {
        int digits = 0;
        for (p++; isdigit((unsigned char)*p); p++, digits++)
            if (digits < 9)
                frac = frac * 10 + (*p - '0');
        if (!digits)
            return -1;
        for (; digits < 9; digits++)
            frac *= 10;
    }
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    if (tm.tm_mon < 0 || tm.tm_mon > 11 || tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 ||
        tm.tm_min > 59 || tm.tm_sec > 60)
        return -1;
    time_t t;
    if (*p == 'Z' && !p[1]) {
        t = timegm(&tm);
    } else if ((*p == '+' || *p == '-') && isdigit((unsigned char)p[1])) {
        int hh, mm, k = 0;
        if (sscanf(p + 1, "%2d:%2d%n", &hh, &mm, &k) != 2 || k != 5 || p[6])
            return -1;
        t = timegm(&tm) - (*p == '+' ? 1 : -1) * (hh * 3600 + mm * 60);
    } else if (!*p && local_ok) {
        tm.tm_isdst = -1;
        t = mktime(&tm);
    } else {
        return -1;
    }
    *out = (int64_t)t * 1000000000 + frac;
    return 0;
}

/* Go's time.ParseDuration: [-]1h30m, 10m, 1.5s, 300ms (units ns us µs ms s m h) */
static int parse_duration(const char *s, int64_t *out)
{
    static const struct {
        const char *unit;
        double ns;
    } units[] = {{"ns", 1},  {"us", 1e3}, {"\xc2\xb5s", 1e3}, {"ms", 1e6},
                 {"s", 1e9}, {"m", 60e9}, {"h", 3600e9}};
    bool neg = *s == '-';
    if (*s == '-' || *s == '+')
        s++;
    if (!*s)
        return -1;
    double total = 0;
    while (*s) {
        char *end;
        if (!isdigit((unsigned char)*s) && *s != '.')
            return -1;
        double v = strtod(s, &end);
        if (end == s)
            return -1;
        s = end;
        size_t best = 0, which = 0;
        for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
            size_t ul = strlen(units[i].unit);
            if (!strncmp(s, units[i].unit, ul) && ul > best) {
                best = ul;
                which = i;
            }
        }
        if (!best)
            return -1;
        total += v * units[which].ns;
        s += best;
    }
    *out = (int64_t)(neg ? -total : total);
    return 0;
}

int ctr_log_time_parse(const char *s, int64_t now, int64_t *out, struct imgfs_err *err)
{
    int64_t d;
    if (*s && parse_duration(s, &d) == 0) {
        *out = now - d;
        return 0;
    }
    if (strchr(s, '-') && strchr(s + 1, '-')) {
        if (parse_rfc3339(s, true, out) == 0)
            return 0;
    } else if (*s) {
        /* Unix seconds, with an optional fraction */
        char *end;
        errno = 0;
        long long sec = strtoll(s, &end, 10);
        int64_t frac = 0;
        if (*end == '.') {
            int digits = 0;
            for (end++; isdigit((unsigned char)*end); end++, digits++)
                if (digits < 9)
                    frac = frac * 10 + (*end - '0');
            for (; digits < 9; digits++)
                frac *= 10;
        }
        if (end != s && !*end && !errno && sec >= 0) {
            *out = (int64_t)sec * 1000000000 + frac;
            return 0;
        }
    }
    return err_set(err, EINVAL, "failed to parse value as time or duration: \"%s\"", s);
}

int ctr_log_parse(const char *line, size_t len, struct ctr_log_entry *e)
{
    memset(e, 0, sizeof *e);
    json_t *o = json_loadb(line, len, JSON_ALLOW_NUL, NULL); /* output may hold NUL bytes */
    json_t *log = json_object_get(o, "log");
    const char *stream = json_string_value(json_object_get(o, "stream"));
    const char *when = json_string_value(json_object_get(o, "time"));
    if (!json_is_string(log) || !stream || !when || parse_rfc3339(when, false, &e->time_ns) < 0) {
        json_decref(o);
        return -1;
    }
    e->stream = !strcmp(stream, "stderr") ? CTR_STDERR : CTR_STDOUT;
    e->len = json_string_length(log);
    e->data = xmalloc(e->len + 1);
    memcpy(e->data, json_string_value(log), e->len + 1);
    json_decref(o);
    return 0;
}
