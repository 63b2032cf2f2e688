/* dockerfile.c — the Dockerfile parser (see dockerfile.h). Two passes, as BuildKit's:
 *  1. the syntax (frontend/dockerfile/parser): parser directives, comments, line continuations,
 *     heredocs, the split of each logical line into keyword, flags and arguments;
 *  2. unless DF_PARSE_SYNTAX_ONLY, the checks of frontend/dockerfile/instructions: known keywords,
 *     each instruction's flags and argument counts, and stages (df_check_instruction).
 * Nothing is expanded here: the executor expands words when it runs an instruction, with the
 * environment of that moment. */
#include "dockerfile.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

/* BuildKit reads lines with Go's bufio.Scanner, whose longest token is 64 KiB. */
#define MAX_LINE 65536
/* ONBUILD nests its trigger; BuildKit's syntax pass allows any depth, the checks one. */
#define MAX_NESTING 8

static const char *const keyword_names[] = {
    [DF_UNKNOWN] = "",        [DF_ADD] = "ADD",
    [DF_ARG] = "ARG",         [DF_CMD] = "CMD",
    [DF_COPY] = "COPY",       [DF_ENTRYPOINT] = "ENTRYPOINT",
    [DF_ENV] = "ENV",         [DF_EXPOSE] = "EXPOSE",
    [DF_FROM] = "FROM",       [DF_HEALTHCHECK] = "HEALTHCHECK",
    [DF_LABEL] = "LABEL",     [DF_MAINTAINER] = "MAINTAINER",
    [DF_ONBUILD] = "ONBUILD", [DF_RUN] = "RUN",
    [DF_SHELL] = "SHELL",     [DF_STOPSIGNAL] = "STOPSIGNAL",
    [DF_USER] = "USER",       [DF_VOLUME] = "VOLUME",
    [DF_WORKDIR] = "WORKDIR",
};
#define N_KEYWORDS (sizeof(keyword_names) / sizeof(*keyword_names))

const char *df_keyword_name(enum df_keyword keyword)
{
    return (size_t)keyword < N_KEYWORDS ? keyword_names[keyword] : "";
}

static enum df_keyword keyword_lookup(const char *s)
{
    for (size_t k = 1; k < N_KEYWORDS; k++)
        if (!strcasecmp(s, keyword_names[k]))
            return (enum df_keyword)k;
    return DF_UNKNOWN;
}

/* ---- small string helpers ---- */

static bool is_blank(char c) /* BuildKit's reWhitespace: [\t\v\f\r ] */
{
    return c == ' ' || c == '\t' || c == '\v' || c == '\f' || c == '\r';
}

static bool is_space(char c) /* unicode.IsSpace, for the ASCII range */
{
    return is_blank(c) || c == '\n';
}

static char *strndup_x(const char *s, size_t n)
{
    char *d = xmalloc(n + 1);
    memcpy(d, s, n);
    d[n] = 0;
    return d;
}

/* [s, *end) without leading/trailing white space. */
static const char *trim_span(const char *s, const char **end)
{
    while (s < *end && is_space(*s))
        s++;
    while (*end > s && is_space((*end)[-1]))
        (*end)--;
    return s;
}

static void buf_puts(struct buf *b, const char *s)
{
    buf_append(b, s, strlen(s));
}

static void buf_putc(struct buf *b, char c)
{
    buf_append(b, &c, 1);
}

static char *buf_take(struct buf *b)
{
    buf_putc(b, 0);
    char *s = (char *)b->data;
    *b = (struct buf){0};
    return s;
}

/* Go's strconv.Quote: printable characters as they are, the usual escapes, \xNN for other bytes
 * below 0x20, DEL and invalid UTF-8, \uNNNN for the C1 controls and a few invisible ones. */
static void go_quote(struct buf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    buf_putc(b, '"');
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        const char *esc = NULL;
        switch (c) {
        case '"':
            esc = "\\\"";
            break;
        case '\\':
            esc = "\\\\";
            break;
        case '\a':
            esc = "\\a";
            break;
        case '\b':
            esc = "\\b";
            break;
        case '\f':
            esc = "\\f";
            break;
        case '\n':
            esc = "\\n";
            break;
        case '\r':
            esc = "\\r";
            break;
        case '\t':
            esc = "\\t";
            break;
        case '\v':
            esc = "\\v";
            break;
        }
        if (esc) {
            buf_puts(b, esc);
            i++;
            continue;
        }
        if (c >= 0x20 && c < 0x7f) {
            buf_putc(b, (char)c);
            i++;
            continue;
        }
        /* a UTF-8 sequence? */
        size_t len = c >= 0xc2 && c < 0xe0   ? 2
                     : c >= 0xe0 && c < 0xf0 ? 3
                     : c >= 0xf0 && c < 0xf5 ? 4
                                             : 0;
        bool ok = len && i + len <= n;
        uint32_t cp = 0;
        if (ok) {
            cp = c & (0x7f >> len);
            for (size_t k = 1; k < len && ok; k++) {
                unsigned char cc = (unsigned char)s[i + k];
                ok = (cc & 0xc0) == 0x80;
                cp = cp << 6 | (cc & 0x3f);
            }
            /* overlong forms and surrogates are invalid */
            ok = ok && !(len == 3 && cp < 0x800) &&
                 !(len == 4 && (cp < 0x10000 || cp > 0x10ffff)) && !(cp >= 0xd800 && cp <= 0xdfff);
        }
        if (!ok) {
            char x[4] = {'\\', 'x', hex[c >> 4], hex[c & 15]};
            buf_append(b, x, 4);
            i++;
            continue;
        }
        if ((cp >= 0x80 && cp < 0xa0) || cp == 0xad || (cp >= 0x2028 && cp <= 0x202e) ||
            (cp >= 0x200b && cp <= 0x200f) || cp == 0xfeff) {
            char u[7] = {'\\',         'u', hex[cp >> 12], hex[(cp >> 8) & 15], hex[(cp >> 4) & 15],
                         hex[cp & 15], 0};
            buf_puts(b, u);
        } else {
            buf_append(b, s + i, len);
        }
        i += len;
    }
    buf_putc(b, '"');
}

/* ---- errors with a location ---- */

/* The message "NAME:START: what" and the snippet of lines start..end (with up to two lines of
 * context before), as BuildKit prints a location. */
static int vlocated_error(const char *name, const char *src, size_t src_len, unsigned start,
                          unsigned end, struct imgfs_err *err, int code, const char *fmt,
                          va_list ap)
{
    char what[1024];
    vsnprintf(what, sizeof(what), fmt, ap);
    if (end < start)
        end = start;
    struct buf b = {0};
    char head[1400];
    snprintf(head, sizeof(head), "%s:%u: %s", name, start, what);
    buf_puts(&b, head);
    if (src && start > 0) {
        unsigned first = start > 2 ? start - 2 : 1, last = end > start + 6 ? start + 6 : end;
        unsigned line = 1;
        bool any = false;
        size_t i = 0;
        if (src_len >= 3 && !memcmp(src, "\xef\xbb\xbf", 3))
            i = 3;
        while (i < src_len && line <= last) {
            const char *nl = memchr(src + i, '\n', src_len - i);
            size_t len = nl ? (size_t)(nl - (src + i)) : src_len - i;
            if (line >= first) {
                if (!any)
                    buf_puts(&b, "\n--------------------");
                any = true;
                char pre[32];
                snprintf(pre, sizeof(pre), "\n%4u | %s", line,
                         line >= start && line <= end ? ">>> " : "    ");
                buf_puts(&b, pre);
                size_t show = len > 200 ? 200 : len;
                while (show && src[i + show - 1] == '\r')
                    show--;
                buf_append(&b, src + i, show);
                if (show < len && len > 200)
                    buf_puts(&b, "...");
            }
            i += len + 1;
            line++;
        }
        if (any)
            buf_puts(&b, "\n--------------------");
    }
    buf_putc(&b, 0);
    err->code = code;
    snprintf(err->msg, sizeof(err->msg), "%s", (char *)b.data);
    buf_free(&b);
    return -1;
}

int df_error_at(const struct df_file *file, unsigned start, unsigned end, struct imgfs_err *err,
                int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vlocated_error(file->name, file->source_, file->source_len_, start, end ? end : start, err,
                   code, fmt, ap);
    va_end(ap);
    return -1;
}

/* ---- the parsed data ---- */

static void instruction_free(struct df_instruction *ins)
{
    free(ins->keyword_text);
    free(ins->original);
    for (size_t i = 0; i < ins->n_flags; i++)
        free(ins->flags[i].name), free(ins->flags[i].value);
    free(ins->flags);
    for (size_t i = 0; i < ins->n_args; i++)
        free(ins->args[i].s);
    free(ins->args);
    for (size_t i = 0; i < ins->n_kvs; i++)
        free(ins->kvs[i].key), free(ins->kvs[i].value);
    free(ins->kvs);
    for (size_t i = 0; i < ins->n_heredocs; i++)
        free(ins->heredocs[i].name), free(ins->heredocs[i].content);
    free(ins->heredocs);
    if (ins->inner) {
        instruction_free(ins->inner);
        free(ins->inner);
    }
    memset(ins, 0, sizeof(*ins));
}

void df_file_free(struct df_file *file)
{
    if (!file)
        return;
    for (size_t i = 0; i < file->n_instructions; i++)
        instruction_free(&file->instructions[i]);
    free(file->instructions);
    for (size_t i = 0; i < file->n_warnings; i++)
        free(file->warnings[i]);
    free(file->warnings);
    free(file->name);
    free(file->syntax);
    free(file->check);
    free(file->source_);
    free(file);
}

const struct df_flag *df_flag_find(const struct df_instruction *ins, const char *name)
{
    for (size_t i = ins->n_flags; i-- > 0;)
        if (!strcmp(ins->flags[i].name, name))
            return &ins->flags[i];
    return NULL;
}

static void add_arg(struct df_instruction *ins, const char *s, size_t n)
{
    ins->args = xgrow(ins->args, ins->n_args, sizeof(*ins->args));
    ins->args[ins->n_args++] = (struct df_str){strndup_x(s, n), n};
}

static void add_kv(struct df_instruction *ins, char *key, char *value, bool equals)
{
    ins->kvs = xgrow(ins->kvs, ins->n_kvs, sizeof(*ins->kvs));
    ins->kvs[ins->n_kvs++] = (struct df_kv){key, value, equals};
}

static void add_warning(struct df_file *file, char *w)
{
    file->warnings = xgrow(file->warnings, file->n_warnings, sizeof(*file->warnings));
    file->warnings[file->n_warnings++] = w;
}

/* A list of words (for flags and parse_words). */
struct wordlist {
    char **w;
    size_t n;
};

static void wl_push(struct wordlist *l, struct buf *word)
{
    l->w = xgrow(l->w, l->n, sizeof(*l->w));
    l->w[l->n++] = buf_take(word);
}

static void wl_free(struct wordlist *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->w[i]);
    free(l->w);
    *l = (struct wordlist){0};
}

/* ---- the syntax: one logical line ---- */

struct parser {
    const char *name;
    char escape;
    unsigned flags;
    struct imgfs_err *err;
};

/* BuildKit's extractBuilderFlags: the leading `--words` of `line`, with quotes and escapes
 * removed, up to the first word not starting with "--" or a bare "--". Returns where the
 * arguments start. */
static const char *split_flags(const struct parser *p, const char *line, struct wordlist *flags)
{
    enum { SPACES, WORD, QUOTE } phase = SPACES;
    struct buf word = {0};
    char quote = 0;
    bool blank_ok = false;
    size_t n = strlen(line);
    for (size_t pos = 0; pos <= n; pos++) {
        char c = pos < n ? line[pos] : 0;
        if (phase == SPACES) {
            if (pos == n)
                break;
            if (is_space(c))
                continue;
            if (c != '-' || pos + 1 == n || line[pos + 1] != '-') {
                buf_free(&word);
                return line + pos;
            }
            phase = WORD;
        }
        if (pos == n) {
            bool dashdash = word.len == 2 && !memcmp(word.data, "--", 2);
            if (!dashdash && (blank_ok || word.len))
                wl_push(flags, &word);
            break;
        }
        if (phase == WORD) {
            if (is_space(c)) {
                phase = SPACES;
                if (word.len == 2 && !memcmp(word.data, "--", 2)) {
                    buf_free(&word);
                    return line + pos;
                }
                if (blank_ok || word.len)
                    wl_push(flags, &word);
                word.len = 0;
                blank_ok = false;
                continue;
            }
            if (c == '\'' || c == '"') {
                quote = c;
                blank_ok = true;
                phase = QUOTE;
                continue;
            }
            if (c == p->escape) {
                if (pos + 1 == n)
                    continue;
                c = line[++pos];
            }
            buf_putc(&word, c);
            continue;
        }
        /* QUOTE */
        if (c == quote) {
            phase = WORD;
            continue;
        }
        if (c == p->escape) {
            if (pos + 1 == n) {
                phase = WORD;
                continue;
            }
            c = line[++pos];
        }
        buf_putc(&word, c);
    }
    buf_free(&word);
    return line + n;
}

/* BuildKit's parseWords (ENV, LABEL, ARG): split on unquoted white space; quotes and escape
 * tokens stay in the words. */
static void parse_words(const struct parser *p, const char *rest, struct wordlist *out)
{
    enum { SPACES, WORD, QUOTE } phase = SPACES;
    struct buf word = {0};
    char quote = 0;
    bool blank_ok = false;
    size_t n = strlen(rest);
    for (size_t pos = 0; pos <= n; pos++) {
        char c = pos < n ? rest[pos] : 0;
        if (phase == SPACES) {
            if (pos == n)
                break;
            if (is_space(c))
                continue;
            phase = WORD;
        }
        if (pos == n) {
            if (blank_ok || word.len)
                wl_push(out, &word);
            break;
        }
        if (phase == WORD) {
            if (is_space(c)) {
                phase = SPACES;
                if (blank_ok || word.len)
                    wl_push(out, &word);
                word.len = 0;
                blank_ok = false;
                continue;
            }
            if (c == '\'' || c == '"') {
                quote = c;
                blank_ok = true;
                phase = QUOTE;
            }
            if (c == p->escape) {
                if (pos + 1 == n)
                    continue;
                buf_putc(&word, c);
                c = rest[++pos];
            }
            buf_putc(&word, c);
            continue;
        }
        /* QUOTE */
        if (c == quote)
            phase = WORD;
        if (c == p->escape && quote != '\'') {
            if (pos + 1 == n) {
                phase = WORD;
                continue;
            }
            buf_putc(&word, c);
            c = rest[++pos];
        }
        buf_putc(&word, c);
    }
    buf_free(&word);
}

/* Split on runs of [\t\v\f\r ] (the text is already trimmed). */
static void split_blanks(struct df_instruction *ins, const char *rest)
{
    if (!*rest)
        return;
    const char *s = rest;
    for (;;) {
        const char *e = s;
        while (*e && !is_blank(*e))
            e++;
        add_arg(ins, s, (size_t)(e - s));
        if (!*e)
            return;
        while (is_blank(*e))
            e++;
        s = e;
    }
}

enum json_result { JSON_OK, JSON_NOT_ARRAY, JSON_NOT_STRINGS };

/* An exec-form array: `[` after optional white space, valid JSON, strings only. */
static enum json_result parse_json(struct df_instruction *ins, const char *rest)
{
    while (is_space(*rest))
        rest++;
    if (*rest != '[')
        return JSON_NOT_ARRAY;
    json_error_t jerr;
    json_t *a = json_loads(rest, JSON_ALLOW_NUL, &jerr);
    if (!a || !json_is_array(a)) {
        json_decref(a);
        return JSON_NOT_ARRAY;
    }
    size_t i;
    json_t *v;
    json_array_foreach(a, i, v)
    {
        if (!json_is_string(v)) {
            json_decref(a);
            return JSON_NOT_STRINGS;
        }
    }
    json_array_foreach(a, i, v) add_arg(ins, json_string_value(v), json_string_length(v));
    ins->json = true;
    json_decref(a);
    return JSON_OK;
}

static int not_strings(const struct parser *p)
{
    return err_set(p->err, EINVAL,
                   "when using JSON array syntax, arrays must be comprised of strings only");
}

/* RUN, CMD, ENTRYPOINT, SHELL: exec form, or the whole rest as one string. */
static int parse_maybe_json(const struct parser *p, struct df_instruction *ins, const char *rest)
{
    if (!*rest)
        return 0;
    enum json_result r = parse_json(ins, rest);
    if (r == JSON_NOT_STRINGS)
        return not_strings(p);
    if (r == JSON_NOT_ARRAY)
        add_arg(ins, rest, strlen(rest));
    return 0;
}

/* ADD, COPY, VOLUME: exec form, or the blank-separated words. */
static int parse_maybe_json_list(const struct parser *p, struct df_instruction *ins,
                                 const char *rest)
{
    enum json_result r = parse_json(ins, rest);
    if (r == JSON_NOT_STRINGS)
        return not_strings(p);
    if (r == JSON_NOT_ARRAY)
        split_blanks(ins, rest);
    return 0;
}

static void go_quote_str(char *out, size_t size, const char *s)
{
    struct buf b = {0};
    go_quote(&b, s, strlen(s));
    buf_putc(&b, 0);
    snprintf(out, size, "%s", (char *)b.data);
    buf_free(&b);
}

/* ENV and LABEL: `KEY VALUE...` (legacy) or `K=V ...`. */
static int parse_name_val(const struct parser *p, struct df_instruction *ins, const char *rest)
{
    struct wordlist words = {0};
    parse_words(p, rest, &words);
    int rc = 0;
    if (!words.n)
        goto out;
    if (!strchr(words.w[0], '=')) {
        const char *e = rest;
        while (*e && !is_blank(*e))
            e++;
        if (!*e) {
            rc = err_set(p->err, EINVAL, "%s must have two arguments",
                         ins->keyword == DF_ENV ? "ENV" : "LABEL");
            goto out;
        }
        const char *v = e;
        while (is_blank(*v))
            v++;
        add_kv(ins, strndup_x(rest, (size_t)(e - rest)), xstrdup(v), false);
        goto out;
    }
    for (size_t i = 0; i < words.n; i++) {
        char *eq = strchr(words.w[i], '=');
        if (!eq) {
            char q[600];
            go_quote_str(q, sizeof(q), words.w[i]);
            rc = err_set(p->err, EINVAL,
                         "Syntax error - can't find = in %s. Must be of the form: name=value", q);
            goto out;
        }
        add_kv(ins, strndup_x(words.w[i], (size_t)(eq - words.w[i])), xstrdup(eq + 1), true);
    }
out:
    wl_free(&words);
    return rc;
}

static int parse_arg(const struct parser *p, struct df_instruction *ins, const char *rest)
{
    struct wordlist words = {0};
    parse_words(p, rest, &words);
    for (size_t i = 0; i < words.n; i++) {
        const char *w = words.w[i];
        add_arg(ins, w, strlen(w));
        const char *eq = strchr(w, '=');
        if (eq)
            add_kv(ins, strndup_x(w, (size_t)(eq - w)), xstrdup(eq + 1), true);
        else
            add_kv(ins, xstrdup(w), NULL, false);
    }
    wl_free(&words);
    return 0;
}

static int parse_healthcheck(const struct parser *p, struct df_instruction *ins, const char *rest)
{
    size_t sep = 0;
    while (rest[sep] && !is_space(rest[sep]))
        sep++;
    if (!sep)
        return 0;
    add_arg(ins, rest, sep);
    const char *cmd = rest + sep;
    while (is_space(*cmd))
        cmd++;
    return parse_maybe_json(p, ins, cmd);
}

static int node_from_line(const struct parser *p, const char *line, unsigned depth,
                          struct df_instruction *ins);

/* Fill `ins` from one logical line (BuildKit's newNodeFromLine). */
static int node_from_line(const struct parser *p, const char *line, unsigned depth,
                          struct df_instruction *ins)
{
    const char *end = line + strlen(line);
    const char *s = trim_span(line, &end);
    const char *k = s;
    while (k < end && !is_blank(*k))
        k++;
    ins->keyword_text = strndup_x(s, (size_t)(k - s));
    ins->keyword = keyword_lookup(ins->keyword_text);
    ins->original = xstrdup(line);
    const char *rest_start = k;
    while (rest_start < end && is_blank(*rest_start))
        rest_start++;
    cleanup_free char *after = strndup_x(rest_start, (size_t)(end - rest_start));
    struct wordlist flags = {0};
    const char *args = rest_start < end ? split_flags(p, after, &flags) : after;
    if (flags.n) {
        ins->flags = xcalloc(flags.n, sizeof(*ins->flags));
        for (size_t i = 0; i < flags.n; i++) {
            const char *f = flags.w[i] + 2; /* every flag word starts with "--" */
            const char *eq = strchr(f, '=');
            ins->flags[i].name = eq ? strndup_x(f, (size_t)(eq - f)) : xstrdup(f);
            ins->flags[i].value = eq ? xstrdup(eq + 1) : NULL;
        }
        ins->n_flags = flags.n;
    }
    wl_free(&flags);
    const char *aend = args + strlen(args);
    const char *a = trim_span(args, &aend);
    cleanup_free char *rest = strndup_x(a, (size_t)(aend - a));

    switch (ins->keyword) {
    case DF_ADD:
    case DF_COPY:
    case DF_VOLUME:
        return parse_maybe_json_list(p, ins, rest);
    case DF_RUN:
    case DF_CMD:
    case DF_ENTRYPOINT:
    case DF_SHELL:
        return parse_maybe_json(p, ins, rest);
    case DF_ARG:
        return parse_arg(p, ins, rest);
    case DF_ENV:
    case DF_LABEL:
        return parse_name_val(p, ins, rest);
    case DF_EXPOSE:
    case DF_FROM:
        split_blanks(ins, rest);
        return 0;
    case DF_HEALTHCHECK:
        return parse_healthcheck(p, ins, rest);
    case DF_MAINTAINER:
    case DF_STOPSIGNAL:
    case DF_USER:
    case DF_WORKDIR:
        if (*rest)
            add_arg(ins, rest, strlen(rest));
        return 0;
    case DF_ONBUILD:
        if (!*rest)
            return 0;
        if (depth >= MAX_NESTING)
            return err_set(p->err, EINVAL, "ONBUILD nested more than %d deep", MAX_NESTING);
        ins->inner = xcalloc(1, sizeof(*ins->inner));
        return node_from_line(p, rest, depth + 1, ins->inner);
    case DF_UNKNOWN:
        return 0;
    }
    return 0;
}

/* ---- heredocs ---- */

static bool lookup_none(void *ctx, const char *name, const char **value)
{
    (void)ctx, (void)name, (void)value;
    return false;
}

static size_t count_quotes(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += *s == '\'' || *s == '"';
    return n;
}

/* BuildKit's ParseHeredoc on one word: `[N]<<[-][ ]NAME` where NAME has no '<'. Returns 1 and
 * fills `h` for a heredoc, 0 when the word is none, -1 on a lexing error. */
static int heredoc_from_word(const char *word, struct df_heredoc *h, struct imgfs_err *err)
{
    const char *s = word;
    unsigned fd = 0;
    while (*s >= '0' && *s <= '9') {
        fd = fd * 10 + (unsigned)(*s - '0');
        if (fd > 1000000)
            fd = 1000000;
        s++;
    }
    if (strncmp(s, "<<", 2))
        return 0;
    s += 2;
    bool chomp = *s == '-';
    if (chomp)
        s++;
    while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\f' || *s == '\r')
        s++;
    if (!*s || strchr(s, '<'))
        return 0;
    char **words = NULL, **raw = NULL;
    size_t n = 0, n_raw = 0;
    if (df_expand_words(s, '\\', DF_EXPAND_SKIP_UNSET, lookup_none, NULL, &words, &n, NULL, err) <
        0)
        return -1;
    int rc = 0;
    if (n != 1)
        goto out;
    if (df_expand_words(s, '\\', DF_EXPAND_SKIP_UNSET | DF_EXPAND_RAW_QUOTES, lookup_none, NULL,
                        &raw, &n_raw, NULL, err) < 0) {
        rc = -1;
        goto out;
    }
    if (n_raw != 1) {
        rc =
            err_set(err, EINVAL, "internal lexing of heredoc produced inconsistent results: %s", s);
        goto out;
    }
    *h = (struct df_heredoc){
        .name = xstrdup(words[0]),
        .expand = count_quotes(words[0]) == count_quotes(raw[0]),
        .chomp = chomp,
        .fd = fd,
    };
    rc = 1;
out:
    df_words_free(words);
    df_words_free(raw);
    return rc;
}

static bool can_contain_heredoc(const struct df_instruction *ins)
{
    if (ins->keyword == DF_ONBUILD && ins->inner)
        ins = ins->inner;
    return (ins->keyword == DF_RUN || ins->keyword == DF_COPY || ins->keyword == DF_ADD) &&
           !ins->json;
}

/* The heredocs named on a line, in order (BuildKit's heredocsFromLine). */
static int heredocs_from_line(const char *line, struct df_instruction *ins, struct imgfs_err *err)
{
    char **words = NULL;
    size_t n = 0;
    struct imgfs_err ignored;
    /* BuildKit ignores a lexing failure of the whole line here: then there are no heredocs */
    if (df_expand_words(line, '\\',
                        DF_EXPAND_RAW_QUOTES | DF_EXPAND_RAW_ESCAPES | DF_EXPAND_SKIP_UNSET,
                        lookup_none, NULL, &words, &n, NULL, &ignored) < 0)
        return 0;
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        struct df_heredoc h;
        int r = heredoc_from_word(words[i], &h, err);
        if (r < 0) {
            rc = -1;
            break;
        }
        if (r == 0)
            continue;
        ins->heredocs = xgrow(ins->heredocs, ins->n_heredocs, sizeof(*ins->heredocs));
        ins->heredocs[ins->n_heredocs++] = h;
    }
    df_words_free(words);
    return rc;
}

/* ---- the file ---- */

struct reader {
    const char *text;
    size_t len, pos;
    unsigned line; /* lines read so far */
};

/* The next physical line, its newline included. */
static bool next_line(struct reader *r, const char **s, size_t *n)
{
    if (r->pos >= r->len)
        return false;
    const char *start = r->text + r->pos;
    const char *nl = memchr(start, '\n', r->len - r->pos);
    *n = nl ? (size_t)(nl - start) + 1 : r->len - r->pos;
    *s = start;
    r->pos += *n;
    r->line++;
    return true;
}

static size_t trim_newline(const char *s, size_t n)
{
    while (n && (s[n - 1] == '\n' || s[n - 1] == '\r'))
        n--;
    return n;
}

static bool is_comment(const char *s, size_t n)
{
    while (n && is_space(*s))
        s++, n--;
    return n && *s == '#';
}

/* Parser directives: `# escape=`, `# syntax=`, `# check=` at the very top. */
struct directives {
    bool done, seen_escape, seen_syntax, seen_check;
};

static int directive_line(struct parser *p, struct directives *d, struct df_file *file,
                          const char *s, size_t n)
{
    if (d->done)
        return 0;
    if (!n || *s != '#') {
        d->done = true;
        return 0;
    }
    s++, n--;
    while (n && is_space(*s))
        s++, n--;
    /* ^([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$ */
    size_t k = 0;
    if (!n || !((s[0] | 0x20) >= 'a' && (s[0] | 0x20) <= 'z')) {
        d->done = true;
        return 0;
    }
    while (k < n && ((s[k] >= 'a' && s[k] <= 'z') || (s[k] >= 'A' && s[k] <= 'Z') ||
                     (s[k] >= '0' && s[k] <= '9')))
        k++;
    size_t i = k;
    while (i < n && is_space(s[i]) && s[i] != '\v')
        i++;
    if (i >= n || s[i] != '=') {
        d->done = true;
        return 0;
    }
    i++;
    while (i < n && is_space(s[i]) && s[i] != '\v')
        i++;
    size_t vend = n;
    while (vend > i && is_space(s[vend - 1]) && s[vend - 1] != '\v')
        vend--;
    if (vend == i) {
        d->done = true;
        return 0;
    }
    char key[16];
    if (k >= sizeof(key)) {
        d->done = true;
        return 0;
    }
    for (size_t j = 0; j < k; j++)
        key[j] = (char)(s[j] | 0x20);
    key[k] = 0;
    bool *seen = !strcmp(key, "escape")   ? &d->seen_escape
                 : !strcmp(key, "syntax") ? &d->seen_syntax
                 : !strcmp(key, "check")  ? &d->seen_check
                                          : NULL;
    if (!seen) {
        d->done = true;
        return 0;
    }
    if (*seen)
        return err_set(p->err, EINVAL, "only one %s parser directive can be used", key);
    *seen = true;
    char *value = strndup_x(s + i, vend - i);
    if (!strcmp(key, "escape")) {
        if (strcmp(value, "`") && strcmp(value, "\\")) {
            err_set(p->err, EINVAL, "invalid escape token '%s' does not match ` or \\", value);
            free(value);
            return -1;
        }
        p->escape = value[0];
        free(value);
    } else if (!strcmp(key, "syntax")) {
        add_warning(file, xasprintf("the syntax directive is ignored (imgfs parses the Dockerfile "
                                    "itself): %s",
                                    value));
        file->syntax = value;
    } else {
        add_warning(file, xasprintf("the check directive is ignored (imgfs runs no build "
                                    "checks): %s",
                                    value));
        file->check = value;
    }
    return 0;
}

static void add_instruction(struct df_file *file, struct df_instruction *ins)
{
    file->instructions =
        xgrow(file->instructions, file->n_instructions, sizeof(*file->instructions));
    file->instructions[file->n_instructions++] = *ins;
    memset(ins, 0, sizeof(*ins));
}

/* Remove a trailing continuation (the escape token, then only blanks, not itself escaped).
 * Returns true when the line ends there (no continuation). */
static bool trim_continuation(const struct parser *p, struct buf *line)
{
    size_t n = line->len;
    const char *s = (const char *)line->data;
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        n--;
    if (!n || s[n - 1] != p->escape || (n >= 2 && s[n - 2] == p->escape))
        return true;
    line->len = n - 1;
    return false;
}

static int parse_syntax(struct parser *p, const char *text, size_t len, struct df_file *file,
                        unsigned *err_start, unsigned *err_end)
{
    struct reader r = {.text = text, .len = len};
    struct directives d = {0};
    struct buf line = {0}, content = {0};
    struct df_instruction ins = {0};
    const char *s;
    size_t n;
    int rc = -1;
    if (len >= 3 && !memcmp(text, "\xef\xbb\xbf", 3))
        r.pos = 3;
    while (next_line(&r, &s, &n)) {
        *err_start = *err_end = r.line;
        if (n > MAX_LINE) {
            err_set(p->err, EINVAL, "dockerfile line greater than max allowed size of %d",
                    MAX_LINE - 1);
            goto out;
        }
        size_t m = trim_newline(s, n);
        while (m && is_space(*s))
            s++, m--;
        if (directive_line(p, &d, file, s, m) < 0)
            goto out;
        unsigned start = r.line;
        line.len = 0;
        if (!is_comment(s, m))
            buf_append(&line, s, m);
        bool eol = trim_continuation(p, &line);
        if (eol && !line.len)
            continue;
        bool empty_continuation = false;
        while (!eol && next_line(&r, &s, &n)) {
            *err_end = r.line;
            if (n > MAX_LINE) {
                err_set(p->err, EINVAL, "dockerfile line greater than max allowed size of %d",
                        MAX_LINE - 1);
                goto out;
            }
            m = trim_newline(s, n);
            if (directive_line(p, &d, file, s, m) < 0)
                goto out;
            if (is_comment(s, m))
                continue;
            size_t k = 0;
            while (k < m && is_space(s[k]))
                k++;
            if (k == m) {
                empty_continuation = true;
                continue;
            }
            size_t before = line.len;
            buf_append(&line, s, m);
            struct buf tail = {.data = line.data + before, .len = m, .cap = m};
            eol = trim_continuation(p, &tail);
            line.len = before + tail.len;
        }
        buf_putc(&line, 0);
        const char *logical = (const char *)line.data;
        *err_start = start;
        *err_end = r.line;
        if (empty_continuation)
            add_warning(file, xasprintf("%s:%u: Empty continuation line found in: %s (empty "
                                        "continuation lines will become errors in a future "
                                        "release)",
                                        p->name, start, logical));
        if (node_from_line(p, logical, 0, &ins) < 0)
            goto out;
        if (can_contain_heredoc(&ins) && strstr(logical, "<<")) {
            if (heredocs_from_line(logical, &ins, p->err) < 0)
                goto out;
            for (size_t h = 0; h < ins.n_heredocs; h++) {
                struct df_heredoc *doc = &ins.heredocs[h];
                bool terminated = false;
                content.len = 0;
                while (next_line(&r, &s, &n)) {
                    m = trim_newline(s, n);
                    const char *t = s;
                    size_t tm = m;
                    if (doc->chomp)
                        while (tm && *t == '\t')
                            t++, tm--;
                    if (tm == strlen(doc->name) && !memcmp(t, doc->name, tm)) {
                        terminated = true;
                        break;
                    }
                    if (doc->chomp)
                        while (n && *s == '\t')
                            s++, n--;
                    buf_append(&content, s, n);
                }
                *err_end = r.line;
                if (!terminated) {
                    err_set(p->err, EINVAL, "unterminated heredoc");
                    goto out;
                }
                buf_putc(&content, 0);
                doc->content = xstrdup((const char *)content.data);
            }
        }
        for (struct df_instruction *i = &ins; i; i = i->inner)
            i->start_line = start, i->end_line = r.line;
        add_instruction(file, &ins);
    }
    if (!file->n_instructions) {
        *err_start = *err_end = r.line ? r.line : 1;
        err_set(p->err, EINVAL, "file with no instructions");
        goto out;
    }
    rc = 0;
out:
    instruction_free(&ins);
    buf_free(&line);
    buf_free(&content);
    return rc;
}

/* ---- the checks (BuildKit's instructions package) ---- */

enum flag_type { FLAG_STRING, FLAG_BOOL, FLAG_STRINGS };
struct flag_def {
    enum df_keyword keyword;
    const char *name;
    enum flag_type type;
};
static const struct flag_def flag_defs[] = {
    {DF_FROM, "platform", FLAG_STRING},
    {DF_RUN, "mount", FLAG_STRINGS},
    {DF_RUN, "network", FLAG_STRING},
    {DF_RUN, "security", FLAG_STRING},
    {DF_ADD, "chown", FLAG_STRING},
    {DF_ADD, "chmod", FLAG_STRING},
    {DF_ADD, "link", FLAG_BOOL},
    {DF_ADD, "keep-git-dir", FLAG_BOOL},
    {DF_ADD, "checksum", FLAG_STRING},
    {DF_ADD, "unpack", FLAG_BOOL},
    {DF_ADD, "exclude", FLAG_STRINGS},
    {DF_COPY, "chown", FLAG_STRING},
    {DF_COPY, "from", FLAG_STRING},
    {DF_COPY, "chmod", FLAG_STRING},
    {DF_COPY, "link", FLAG_BOOL},
    {DF_COPY, "exclude", FLAG_STRINGS},
    {DF_COPY, "parents", FLAG_BOOL},
    {DF_HEALTHCHECK, "interval", FLAG_STRING},
    {DF_HEALTHCHECK, "timeout", FLAG_STRING},
    {DF_HEALTHCHECK, "start-period", FLAG_STRING},
    {DF_HEALTHCHECK, "start-interval", FLAG_STRING},
    {DF_HEALTHCHECK, "retries", FLAG_STRING},
};

static int check_flags(const struct df_instruction *ins, struct imgfs_err *err)
{
    for (size_t i = 0; i < ins->n_flags; i++) {
        const struct df_flag *f = &ins->flags[i];
        const struct flag_def *def = NULL;
        for (size_t k = 0; k < sizeof(flag_defs) / sizeof(*flag_defs); k++)
            if (flag_defs[k].keyword == ins->keyword && !strcmp(flag_defs[k].name, f->name))
                def = &flag_defs[k];
        if (!def)
            return err_set(err, EINVAL, "unknown flag: --%s", f->name);
        if (def->type != FLAG_STRINGS)
            for (size_t j = 0; j < i; j++)
                if (!strcmp(ins->flags[j].name, f->name))
                    return err_set(err, EINVAL, "duplicate flag specified: --%s", f->name);
        if (def->type == FLAG_BOOL) {
            if (f->value && !*f->value)
                return err_set(err, EINVAL, "missing a value on flag: --%s", f->name);
            if (f->value && strcasecmp(f->value, "true") && strcasecmp(f->value, "false"))
                return err_set(err, EINVAL, "expecting boolean value for flag --%s, not: %s",
                               f->name, f->value);
        } else if (!f->value) {
            return err_set(err, EINVAL, "missing a value on flag: --%s", f->name);
        }
    }
    return 0;
}

int df_duration_parse(const char *s, int64_t *ns)
{
    static const struct {
        const char *unit;
        double scale;
    } units[] = {{"ns", 1},   {"us", 1e3}, {"\xc2\xb5s", 1e3}, {"\xce\xbcs", 1e3},
                 {"ms", 1e6}, {"s", 1e9},  {"m", 60e9},        {"h", 3600e9}};
    const char *p = s;
    bool neg = false;
    if (*p == '-' || *p == '+')
        neg = *p++ == '-';
    if (!strcmp(p, "0")) {
        *ns = 0;
        return 0;
    }
    if (!*p)
        return -1;
    double total = 0;
    while (*p) {
        const char *num = p;
        double v = 0, frac = 0, scale = 1;
        while (*p >= '0' && *p <= '9')
            v = v * 10 + (*p++ - '0');
        bool digits = p > num;
        if (*p == '.') {
            p++;
            const char *f = p;
            while (*p >= '0' && *p <= '9')
                frac = frac * 10 + (*p++ - '0'), scale *= 10;
            digits = digits || p > f;
        }
        if (!digits)
            return -1;
        size_t k = 0, best = 0, blen = 0;
        for (k = 0; k < sizeof(units) / sizeof(*units); k++) {
            size_t l = strlen(units[k].unit);
            if (!strncmp(p, units[k].unit, l) && l > blen)
                best = k, blen = l;
        }
        if (!blen)
            return -1;
        total += (v + frac / scale) * units[best].scale;
        p += blen;
    }
    if (total > 9.2e18)
        return -1;
    *ns = (int64_t)(neg ? -total : total);
    return 0;
}

static int check_healthcheck(const struct df_instruction *ins, struct imgfs_err *err)
{
    if (!ins->n_args)
        return err_set(err, EINVAL, "HEALTHCHECK requires at least one argument");
    const char *type = ins->args[0].s;
    if (!strcasecmp(type, "NONE")) {
        if (ins->n_args > 1)
            return err_set(err, EINVAL, "HEALTHCHECK NONE takes no arguments");
        return 0;
    }
    if (check_flags(ins, err) < 0)
        return -1;
    for (size_t i = 0; i < ins->n_flags; i++) {
        const struct df_flag *f = &ins->flags[i];
        if (!strcmp(f->name, "retries")) {
            char *end;
            errno = 0;
            long long v = strtoll(f->value, &end, 10);
            if (!*f->value || *end || errno)
                return err_set(err, EINVAL, "invalid --retries: %s", f->value);
            if (v < 0)
                return err_set(err, EINVAL, "--retries cannot be negative (%lld)", v);
            continue;
        }
        int64_t ns;
        if (!*f->value)
            continue;
        if (df_duration_parse(f->value, &ns) < 0)
            return err_set(err, EINVAL, "invalid --%s: time: invalid duration \"%s\"", f->name,
                           f->value);
        if (ns != 0 && ns < 1000000)
            return err_set(err, EINVAL, "Interval \"%s\" cannot be less than 1ms", f->name);
    }
    if (strcasecmp(type, "CMD")) {
        char q[600];
        go_quote_str(q, sizeof(q), type);
        return err_set(err, EINVAL, "Unknown type %s in HEALTHCHECK (try CMD)", q);
    }
    if (ins->n_args < 2)
        return err_set(err, EINVAL, "Missing command after HEALTHCHECK CMD");
    return 0;
}

static bool valid_stage_name(const char *s)
{
    if (!(*s >= 'a' && *s <= 'z') && !(*s >= 'A' && *s <= 'Z'))
        return false;
    for (s++; *s; s++)
        if (!((*s | 0x20) >= 'a' && (*s | 0x20) <= 'z') && !(*s >= '0' && *s <= '9') &&
            !strchr("-_.", *s))
            return false;
    return true;
}

static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b), row[32];
    if (la >= 31 || lb >= 31)
        return 99;
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t prev = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t cur = row[j];
            size_t sub = prev + ((a[i - 1] | 0x20) != (b[j - 1] | 0x20));
            size_t best = row[j] + 1 < row[j - 1] + 1 ? row[j] + 1 : row[j - 1] + 1;
            row[j] = sub < best ? sub : best;
            prev = cur;
        }
    }
    return row[lb];
}

int df_check_instruction(const struct df_instruction *ins, struct imgfs_err *err)
{
    const char *name = df_keyword_name(ins->keyword);
    if (ins->keyword != DF_HEALTHCHECK && ins->keyword != DF_UNKNOWN && check_flags(ins, err) < 0)
        return -1;
    for (size_t i = 0; ins->json && i < ins->n_args; i++)
        if (strlen(ins->args[i].s) != ins->args[i].len)
            return err_set(err, EINVAL, "%s: an exec-form argument contains a NUL character", name);
    switch (ins->keyword) {
    case DF_UNKNOWN: {
        const char *best = NULL;
        size_t best_d = 3;
        for (size_t k = 1; k < N_KEYWORDS; k++) {
            size_t d = edit_distance(ins->keyword_text, keyword_names[k]);
            if (d < best_d && d < strlen(ins->keyword_text))
                best = keyword_names[k], best_d = d;
        }
        if (best)
            return err_set(err, EINVAL, "unknown instruction: %s (did you mean %s?)",
                           ins->keyword_text, best);
        return err_set(err, EINVAL, "unknown instruction: %s", ins->keyword_text);
    }
    case DF_ENV:
    case DF_LABEL:
        if (!ins->n_kvs)
            return err_set(err, EINVAL, "%s requires at least one argument", name);
        for (size_t i = 0; i < ins->n_kvs; i++)
            if (!*ins->kvs[i].key)
                return err_set(err, EINVAL, "%s names can not be blank", name);
        return 0;
    case DF_ARG:
        if (!ins->n_kvs)
            return err_set(err, EINVAL, "ARG requires at least one argument");
        for (size_t i = 0; i < ins->n_kvs; i++)
            if (!*ins->kvs[i].key)
                return err_set(err, EINVAL, "ARG names can not be blank");
        return 0;
    case DF_MAINTAINER:
    case DF_WORKDIR:
    case DF_USER:
    case DF_STOPSIGNAL:
        if (ins->n_args != 1)
            return err_set(err, EINVAL, "%s requires exactly one argument", name);
        return 0;
    case DF_ADD:
    case DF_COPY: {
        if (ins->n_args < 2)
            return err_set(err, EINVAL,
                           "%s requires at least two arguments, but only one was provided. "
                           "Destination could not be determined",
                           name);
        struct df_heredoc h;
        struct imgfs_err ignored;
        if (heredoc_from_word(ins->args[ins->n_args - 1].s, &h, &ignored) == 1) {
            free(h.name);
            return err_set(err, EINVAL, "%s cannot accept a heredoc as a destination", name);
        }
        return 0;
    }
    case DF_FROM:
        if (ins->n_args == 3 && !strcasecmp(ins->args[1].s, "as")) {
            if (!valid_stage_name(ins->args[2].s)) {
                char q[600];
                go_quote_str(q, sizeof(q), ins->args[2].s);
                return err_set(err, EINVAL,
                               "invalid name for build stage: %s, name can't start with a number "
                               "or contain symbols",
                               q);
            }
            return 0;
        }
        if (ins->n_args != 1)
            return err_set(err, EINVAL, "FROM requires either one or three arguments");
        return 0;
    case DF_ONBUILD:
        if (!ins->inner)
            return err_set(err, EINVAL, "ONBUILD requires at least one argument");
        if (ins->inner->keyword == DF_ONBUILD)
            return err_set(err, EINVAL, "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed");
        if (ins->inner->keyword == DF_MAINTAINER || ins->inner->keyword == DF_FROM)
            return err_set(err, EINVAL, "%s isn't allowed as an ONBUILD trigger",
                           df_keyword_name(ins->inner->keyword));
        return 0;
    case DF_HEALTHCHECK:
        return check_healthcheck(ins, err);
    case DF_EXPOSE:
        if (!ins->n_args)
            return err_set(err, EINVAL, "EXPOSE requires at least one argument");
        return 0;
    case DF_VOLUME:
        if (!ins->n_args)
            return err_set(err, EINVAL, "VOLUME requires at least one argument");
        for (size_t i = 0; i < ins->n_args; i++) {
            const char *e = ins->args[i].s + ins->args[i].len;
            if (trim_span(ins->args[i].s, &e) == e)
                return err_set(err, EINVAL, "VOLUME specified can not be an empty string");
        }
        return 0;
    case DF_SHELL:
        if (!ins->n_args)
            return err_set(err, EINVAL, "SHELL requires at least one argument");
        if (!ins->json)
            return err_set(err, EINVAL, "SHELL requires the arguments to be in JSON form");
        return 0;
    case DF_RUN:
    case DF_CMD:
    case DF_ENTRYPOINT:
        return 0;
    }
    return 0;
}

/* ---- entry points ---- */

int df_parse(const char *name, const char *text, size_t len, unsigned flags, struct df_file **out,
             struct imgfs_err *err)
{
    struct df_file *file = xcalloc(1, sizeof(*file));
    file->name = xstrdup(name);
    file->source_ = strndup_x(text, len);
    file->source_len_ = len;
    struct parser p = {.name = name, .escape = '\\', .flags = flags, .err = err};
    unsigned start = 0, end = 0;
    const char *nul = memchr(text, 0, len);
    if (nul) {
        unsigned line = 1;
        for (const char *c = text; c < nul; c++)
            line += *c == '\n';
        err_set(err, EINVAL, "file contains a NUL byte");
        start = end = line;
        goto fail;
    }
    if (parse_syntax(&p, text, len, file, &start, &end) < 0)
        goto fail;
    file->escape = p.escape;
    if (!(flags & DF_PARSE_SYNTAX_ONLY)) {
        bool stage = false;
        for (size_t i = 0; i < file->n_instructions; i++) {
            const struct df_instruction *ins = &file->instructions[i];
            start = ins->start_line, end = ins->end_line;
            if (df_check_instruction(ins, err) < 0)
                goto fail;
            if (ins->keyword == DF_FROM)
                stage = true;
            else if (!stage && ins->keyword != DF_ARG) {
                err_set(err, EINVAL, "no build stage in current context");
                goto fail;
            }
        }
    }
    *out = file;
    return 0;
fail:;
    char what[sizeof(err->msg)];
    snprintf(what, sizeof(what), "%s", err->msg);
    df_error_at(file, start, end, err, err->code ? err->code : EINVAL, "%s", what);
    df_file_free(file);
    return -1;
}

/* ---- the dump ---- */

static void dump_instruction(struct buf *b, const struct df_instruction *ins)
{
    for (const char *k = ins->keyword_text; *k; k++)
        buf_putc(b, (char)(*k >= 'A' && *k <= 'Z' ? *k + 32 : *k));
    if (ins->n_flags) {
        buf_puts(b, " [");
        for (size_t i = 0; i < ins->n_flags; i++) {
            struct buf f = {0};
            buf_puts(&f, "--");
            buf_puts(&f, ins->flags[i].name);
            if (ins->flags[i].value) {
                buf_putc(&f, '=');
                buf_puts(&f, ins->flags[i].value);
            }
            if (i)
                buf_putc(b, ' ');
            go_quote(b, (const char *)f.data, f.len);
            buf_free(&f);
        }
        buf_putc(b, ']');
    }
    if (ins->inner) {
        buf_puts(b, " (");
        dump_instruction(b, ins->inner);
        buf_putc(b, ')');
    }
    if (ins->keyword == DF_ENV || ins->keyword == DF_LABEL) {
        for (size_t i = 0; i < ins->n_kvs; i++) {
            const struct df_kv *kv = &ins->kvs[i];
            buf_putc(b, ' ');
            go_quote(b, kv->key, strlen(kv->key));
            buf_putc(b, ' ');
            go_quote(b, kv->value, strlen(kv->value));
            buf_puts(b, kv->equals ? " \"=\"" : " \"\"");
        }
    }
    for (size_t i = 0; i < ins->n_args; i++) {
        buf_putc(b, ' ');
        go_quote(b, ins->args[i].s, ins->args[i].len);
    }
    /* BuildKit gives an unknown instruction one empty argument node */
    if (ins->keyword == DF_UNKNOWN)
        buf_puts(b, " \"\"");
}

char *df_dump(const struct df_file *file)
{
    struct buf b = {0};
    for (size_t i = 0; i < file->n_instructions; i++) {
        struct buf one = {0};
        dump_instruction(&one, &file->instructions[i]);
        /* as Go's Dump, trimmed: an empty keyword leaves no leading blank */
        size_t skip = 0;
        while (skip < one.len && one.data[skip] == ' ')
            skip++;
        buf_putc(&b, '(');
        buf_append(&b, one.data + skip, one.len - skip);
        buf_puts(&b, ")\n");
        buf_free(&one);
    }
    return buf_take(&b);
}
