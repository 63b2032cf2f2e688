#include "cli.h"
#include "../fs/reference.h"
#include "../fs/registry.h"
#include "../fs/store.h"
#include "../fs/template.h"
#include "../fs/view.h"
#include "../runner/runner.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct store *cli_store_open(const struct cli *cli, const char *verb, bool readonly)
{
    struct imgfs_err err = {0};
    struct store *s;
    if (store_open(cli->root, readonly ? STORE_READONLY : 0, &s, &err) < 0) {
        cli_report(verb, &err);
        return NULL;
    }
    return s;
}

void cli_human_duration(int64_t secs, char *buf, size_t len)
{
    /* go-units' HumanDuration, which Docker's CLI prints: hours rounded, then days, weeks,
     * months, years */
    int64_t hours = (secs + 1800) / 3600;
    if (secs < 1)
        snprintf(buf, len, "Less than a second");
    else if (secs == 1)
        snprintf(buf, len, "1 second");
    else if (secs < 60)
        snprintf(buf, len, "%lld seconds", (long long)secs);
    else if (secs / 60 == 1)
        snprintf(buf, len, "About a minute");
    else if (secs < 3600)
        snprintf(buf, len, "%lld minutes", (long long)secs / 60);
    else if (hours == 1)
        snprintf(buf, len, "About an hour");
    else if (hours < 48)
        snprintf(buf, len, "%lld hours", (long long)hours);
    else if (hours < 24 * 7 * 2)
        snprintf(buf, len, "%lld days", (long long)hours / 24);
    else if (hours < 24 * 30 * 2)
        snprintf(buf, len, "%lld weeks", (long long)hours / 24 / 7);
    else if (hours < 24 * 365 * 2)
        snprintf(buf, len, "%lld months", (long long)hours / 24 / 30);
    else
        snprintf(buf, len, "%lld years", (long long)secs / 3600 / 24 / 365);
}

int64_t cli_parse_time(const char *s)
{
    struct tm tm = {0};
    if (!s || !strptime(s, "%Y-%m-%dT%H:%M:%S", &tm) || tm.tm_year < 70)
        return 0;
    return (int64_t)timegm(&tm);
}

void cli_human_size(uint64_t bytes, char *buf, size_t len)
{
    static const char *const units[] = {"B", "kB", "MB", "GB", "TB"};
    double v = (double)bytes;
    int u = 0;
    while (v >= 1000 && u < 4) {
        v /= 1000;
        u++;
    }
    if (u == 0)
        snprintf(buf, len, "%lluB", (unsigned long long)bytes);
    else
        snprintf(buf, len, "%.*f%s", v < 10 ? 2 : v < 100 ? 1 : 0, v, units[u]);
}

const char *cli_container_in(const struct ctr_state *list, size_t n, const struct digest *manifest)
{
    char hex[DIGEST_HEX_LEN + 1];
    digest_hex(manifest, hex);
    for (size_t i = 0; i < n; i++)
        if (list[i].mount_key && !strcmp(list[i].mount_key, hex))
            return list[i].id;
    return NULL;
}

/* The id of a container made from the image whose manifest is `manifest`, or NULL. */
char *cli_container_of(const struct cli *cli, const struct digest *manifest)
{
    struct ctr_state *list;
    size_t n;
    struct imgfs_err ignored;
    if (ctr_list(cli->run_dir, &list, &n, &ignored) < 0)
        return NULL;
    const char *id = cli_container_in(list, n, manifest);
    char *out = id ? xstrdup(id) : NULL;
    ctr_state_list_free(list, n);
    return out;
}

bool cli_prune_confirm(const char *warning)
{
    fprintf(stderr, "WARNING! %s\nAre you sure you want to continue? [y/N] ", warning);
    char line[64];
    bool yes = fgets(line, sizeof line, stdin) &&
               (!strcmp(line, "y\n") || !strcmp(line, "Y\n") || !strcmp(line, "yes\n") ||
                !strcmp(line, "y") || !strcmp(line, "yes"));
    /* Docker's prune verbs print the total after a "no" too */
    if (!yes)
        cli_prune_total(false, 0);
    return yes;
}

void cli_prune_deleted(bool *any, const char *heading, const char *name)
{
    if (!*any)
        printf("%s\n", heading);
    *any = true;
    printf("%s\n", name);
}

void cli_prune_total(bool any, uint64_t bytes)
{
    char h[32];
    cli_human_size(bytes, h, sizeof h);
    printf("%sTotal reclaimed space: %s\n", any ? "\n" : "", h);
}

bool cli_platform_valid(const char *p)
{
    size_t parts = 0;
    for (const char *q = p;; q++) {
        size_t n = strcspn(q, "/");
        if (n == 0 || ++parts > 3)
            return false;
        q += n;
        if (!*q)
            return parts >= 2;
    }
}

int cli_parse_bytes(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || !(v >= 0))
        return -1;
    const char *units = "bkmgt";
    const char *u = *end ? strchr(units, tolower((unsigned char)*end)) : NULL;
    if (u && *u) {
        v *= (double)(1ull << (10 * (u - units)));
        end++;
        if (u != units && (*end == 'b' || *end == 'B'))
            end++;
    }
    if (*end || v >= 18446744073709551615.0)
        return -1;
    *out = (uint64_t)v;
    return 0;
}

bool cli_wants_help(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--"))
            break;
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help"))
            return true;
    }
    return false;
}

bool cli_valid_name(const char *name)
{
    struct ref r;
    struct imgfs_err err;
    if (!strncmp(name, "sha256:", 7) || ref_parse(name, &r, &err) < 0)
        return false;
    bool ok = !r.has_digest;
    ref_free(&r);
    return ok;
}

bool cli_view_header(struct store_read *r, const struct digest *manifest, struct view_header *h)
{
    const void *data;
    size_t len;
    struct imgfs_err err;
    return store_get(r, STORE_VIEW, manifest, &data, &len, &err) == 0 &&
           view_header_of(data, len, h) == 0;
}

int cli_each_container(const struct cli *cli, const char *verb, bool missing_ok, int optind_,
                       int argc, char **argv,
                       int (*act)(const char *run_dir, struct ctr_state *s, void *ctx,
                                  struct imgfs_err *err),
                       void *ctx)
{
    int rc = 0;
    for (int i = optind_; i < argc; i++) {
        struct imgfs_err err = {0};
        struct ctr_state s;
        if (ctr_find(cli->run_dir, argv[i], &s, &err) < 0) {
            cli_report(verb, &err);
            if (!missing_ok || err.code != ENOENT)
                rc = 1;
            continue;
        }
        if (act(cli->run_dir, &s, ctx, &err) < 0) {
            cli_report(verb, &err);
            rc = 1;
        } else {
            printf("%s\n", argv[i]);
        }
        ctr_state_free(&s);
    }
    return rc;
}

/* getopt_long takes any unambiguous prefix of a long option ("--priv" for "--privileged"); Docker
 * does not, and a script relying on a prefix would break the day a second option shares it. The
 * option just returned stands at argv[optind-1], or at argv[optind-2] when its value was the next
 * word (GNU getopt permutes skipped operands only on the following call). */
static const char *option_word(char **argv)
{
    const char *word = argv[optind - 1];
    if (optarg && optarg == argv[optind - 1] && optind >= 2 && argv[optind - 2][0] == '-')
        word = argv[optind - 2];
    return word;
}

static bool long_option_spelled_out(char **argv, const struct option *o)
{
    const char *word = option_word(argv);
    if (strncmp(word, "--", 2))
        return true; /* a short option */
    size_t n = strcspn(word + 2, "=");
    return strlen(o->name) == n && !strncmp(word + 2, o->name, n);
}

int cli_getopt(int argc, char **argv, const char *shortopts, const struct option *longopts)
{
    /* our own messages, in Docker's words; ':' makes a missing value distinguishable */
    char spec[128];
    bool posix = shortopts[0] == '+';
    const char *rest = shortopts + posix + (shortopts[posix] == ':');
    snprintf(spec, sizeof spec, "%s:%s", posix ? "+" : "", rest);
    opterr = 0;
    int index = -1;
    int c = getopt_long(argc, argv, spec, longopts, &index);
    const char *verb = argv[0];
    if (c == '?') {
        if (!strncmp(argv[optind - 1], "--", 2))
            cli_error(verb, "unknown flag: %.*s", (int)strcspn(argv[optind - 1], "="),
                      argv[optind - 1]);
        else
            cli_error(verb, "unknown shorthand flag: '%c' in %s", optopt, argv[optind - 1]);
        return '?';
    }
    if (c == ':') {
        if (!strncmp(argv[optind - 1], "--", 2))
            cli_error(verb, "flag needs an argument: %s", argv[optind - 1]);
        else
            cli_error(verb, "flag needs an argument: '%c' in -%c", optopt, optopt);
        return '?';
    }
    if (c != -1 && index >= 0 && !long_option_spelled_out(argv, &longopts[index])) {
        const char *word = argv[optind - 1];
        if (optarg && optarg == word && optind >= 2)
            word = argv[optind - 2];
        cli_error(verb, "unknown flag: %.*s", (int)strcspn(word, "="), word);
        return '?';
    }
    return c;
}

const char *cli_flag_typed(char **argv, int c)
{
    static char buf[64];
    const char *word = option_word(argv);
    if (!strncmp(word, "--", 2))
        snprintf(buf, sizeof buf, "%.*s", (int)strcspn(word, "="), word);
    else
        snprintf(buf, sizeof buf, "-%c", c);
    return buf;
}

int cli_find_container(const struct cli *cli, const char *verb, const char *ref,
                       struct ctr_state *out)
{
    struct imgfs_err err = {0};
    if (ctr_find(cli->run_dir, ref, out, &err) == 0)
        return 0;
    cli_report(verb, &err);
    /* Docker's 1 for a missing container or an ambiguous prefix; 125 when imgfs itself failed */
    return err.code == ENOENT || err.code == EINVAL ? 1 : EXIT_IMGFS_FAILED;
}

int cli_wrong_args(const char *verb, const char *requirement)
{
    cli_error(verb, "'imgfs %s' %s", verb, requirement);
    return cli_usage_error(verb);
}

int cli_help_only(int argc, char **argv, const char *verb, const char *usage, bool in_order)
{
    static const struct option longopts[] = {{"help", no_argument, NULL, 'h'}, {0}};
    int c = cli_getopt(argc, argv, in_order ? "+h" : "h", longopts);
    if (c == -1)
        return -1;
    if (c != 'h')
        return cli_usage_error(verb);
    fputs(usage, stdout);
    return 0;
}

int cli_usage_error(const char *verb)
{
    fprintf(stderr, "See 'imgfs %s --help'.\n", verb);
    return EXIT_IMGFS_FAILED;
}

int cli_registry_option(int c, const char *arg, struct registry_options *o, const char *verb)
{
    switch (c) {
    case CLI_REGISTRY_OPT_TLS:
        if (!arg || !strcmp(arg, "true") || !strcmp(arg, "1")) {
            o->tls_verify = REGISTRY_TLS_VERIFY;
        } else if (!strcmp(arg, "false") || !strcmp(arg, "0")) {
            o->tls_verify = REGISTRY_TLS_NO_VERIFY;
        } else {
            cli_error(verb, "--tls-verify wants true or false, not `%s`", arg);
            return -1;
        }
        return 0;
    case CLI_REGISTRY_OPT_AUTHFILE: {
        /* absolute, as --ca-file (it need not exist yet: login creates it) */
        static char abs_auth[PATH_MAX];
        char cwd[PATH_MAX];
        if (arg[0] != '/' && getcwd(cwd, sizeof cwd) &&
            snprintf(abs_auth, sizeof abs_auth, "%s/%s", cwd, arg) < (int)sizeof abs_auth)
            arg = abs_auth;
        o->auth_file = arg;
        return 0;
    }
    case CLI_REGISTRY_OPT_CAFILE: {
        /* absolute: a lazily pulled image's fetches use it later, from a daemon in "/" (one
         * --ca-file per command: the last one given) */
        static char abs[PATH_MAX];
        if (!realpath(arg, abs)) {
            cli_error(verb, "--ca-file `%s`: %s", arg, strerror(errno));
            return -1;
        }
        o->ca_file = abs;
        return 0;
    }
    default:
        return -1;
    }
}

struct repo_digest_scan {
    const char *repo;
    size_t repo_len;
    const struct digest *manifest;
    bool want_tag; /* looking for a tagged name (else a digest name) */
    char *found;
};

static int repo_digest_one(void *ctx, const struct store_image_entry *e)
{
    struct repo_digest_scan *sc = ctx;
    if (strncmp(e->name, sc->repo, sc->repo_len) || !digest_equal(&e->manifest, sc->manifest))
        return 0;
    char sep = e->name[sc->repo_len];
    if ((sc->want_tag && sep == ':') || (!sc->want_tag && sep == '@')) {
        sc->found = xstrdup(e->name + sc->repo_len + 1);
        return 1;
    }
    return 0;
}

char *cli_repo_digest(struct store_read *r, const char *repo, const struct digest *manifest)
{
    struct repo_digest_scan sc = {repo, strlen(repo), manifest, false, NULL};
    store_image_foreach(r, repo_digest_one, &sc);
    return sc.found;
}

bool cli_repo_has_tag(struct store_read *r, const char *repo, const struct digest *manifest)
{
    struct repo_digest_scan sc = {repo, strlen(repo), manifest, true, NULL};
    store_image_foreach(r, repo_digest_one, &sc);
    bool found = sc.found != NULL;
    free(sc.found);
    return found;
}

/* ---- --format for listings (ps, images) ---- */

int cli_template_check(const char *verb, const char *tmpl, int parse_status)
{
    struct imgfs_err err = {0};
    if (tmpl_check(tmpl, &err) == 0)
        return 0;
    if (err.code == ENOTSUP) {
        cli_report(verb, &err);
        return cli_usage_error(verb);
    }
    /* Docker's words: "template parsing error: template: :1: unclosed action" */
    cli_error(verb, "template parsing error: %s", err.msg);
    return parse_status;
}

int cli_format_begin(struct cli_format *f, const char *verb, const char *format,
                     const char *default_table, json_t *headers, const char *known)
{
    memset(f, 0, sizeof *f);
    f->verb = verb;
    f->known = known ? json_loads(known, 0, NULL) : NULL;
    const char *t = format ? format : default_table;
    if (!strncmp(t, "table", 5) && (!t[5] || isspace((unsigned char)t[5]))) {
        f->table = true;
        t += 5;
        while (*t == ' ')
            t++;
        if (!*t)
            t = default_table + 6; /* "table" alone: the default columns */
    }
    f->tmpl = t;
    int rc = cli_template_check(verb, f->tmpl, default_table ? 1 : 64);
    if (rc) {
        cli_format_end(f);
        return rc;
    }
    struct imgfs_err err = {0};
    /* the headers have every field a row has: a field Docker's rows lack fails here, before any
     * row is printed and also when there is none, as Docker's */
    if (headers) {
        char *h;
        if (tmpl_render(f->tmpl, headers, f->known, &h, &err) < 0) {
            cli_report(verb, &err);
            cli_format_end(f);
            return err.code == ENOENT ? 1 : cli_usage_error(verb);
        }
        if (!f->table) {
            free(h);
            return 0;
        }
        f->rows = xrealloc(f->rows, (f->n + 1) * sizeof *f->rows);
        f->rows[f->n++] = h;
    }
    return 0;
}

int cli_format_row(struct cli_format *f, json_t *row)
{
    struct imgfs_err err = {0};
    char *line;
    if (tmpl_render(f->tmpl, row, f->known, &line, &err) < 0) {
        cli_report(f->verb, &err);
        return -1;
    }
    if (!f->table) {
        puts(line);
        free(line);
        return 0;
    }
    f->rows = xrealloc(f->rows, (f->n + 1) * sizeof *f->rows);
    f->rows[f->n++] = line;
    return 0;
}

/* Go's text/tabwriter as Docker sets it up (minimum width 10, padding 3): every tab-ended cell
 * is padded to its column's width; the text after a line's last tab is not. */
void cli_format_end(struct cli_format *f)
{
    size_t widths[64] = {0};
    for (size_t i = 0; i < f->n; i++) {
        size_t col = 0;
        for (char *p = f->rows[i], *tab; (tab = strchr(p, '\t')) && col < 64; p = tab + 1, col++) {
            size_t w = (size_t)(tab - p) + 3;
            if (w < 10)
                w = 10;
            if (w > widths[col])
                widths[col] = w;
        }
    }
    for (size_t i = 0; i < f->n; i++) {
        size_t col = 0;
        char *p = f->rows[i], *tab;
        for (; (tab = strchr(p, '\t')) && col < 64; p = tab + 1, col++)
            printf("%-*.*s", (int)widths[col], (int)(tab - p), p);
        puts(p);
        free(f->rows[i]);
    }
    free(f->rows);
    f->rows = NULL;
    f->n = 0;
    json_decref(f->known);
    f->known = NULL;
}
